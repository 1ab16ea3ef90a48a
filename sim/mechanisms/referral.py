"""Referral programme (邀请有礼): users invite friends for a reward.

What it models: on each visit a user sends invitations to friends who are not yet users; the number
sent rises with the inviter's reward along a saturating response, and stops being rewarded past a
per-inviter cap. An invitation converts with a base probability raised by the invitee's reward, less
for people who have already received many invitations (saturation) and for repeats from the same
sender (fading) — both in ``sim.behaviour``. Referred users arrive through a friend, so they start
with at least one friend on the platform (lower churn hazard in the shared model) and are selected
for fit (``frailty_multiplier``): in the literature referred customers are about 18 % more likely to
stay and 16 % more valuable (Schmitt, Skiera and Van den Bulte 2011), and larger rewards bring more
customers at a lower profit per customer.

The programme's design choices:

- reward form: ``cash`` is paid on acceptance; a ``coupon`` is paid only if and when it is used on a
  later order within ``coupon_valid_days`` (a share ``redemption`` is ever used, the rest lapse): it
  lowers that order's price by about its face value, which also makes the holder likelier to buy;
  ``points`` (worth ``rmb_per_point``) accumulate and pay up to ``points_max_share`` of later orders
  as far as the balance goes, booked as they are used. Coupons and points feel worth less than cash
  (``noncash_value``) to the people deciding whether to invite or accept;
- tiers: the k-th rewarded invitation of an inviter pays ``tier_multipliers[k]`` times the reward
  (the last multiplier holds beyond the list), so a 5th invitation can pay more than the 1st;
- attribution window: people act on an invitation after a delay (``response_delay_days`` on
  average); who joins more than ``attribution_window_days`` after being invited still joins (the
  friend's word worked) but is credited to ``organic`` and earns nobody a reward;
- reward abuse: a few people (``abuse_share``, more among deal seekers) farm rewards with fake
  accounts and self-invites whenever a reward exceeds what a fake account costs them. Fake accounts
  are not people of the simulation: they are counted apart (``referral_fake_accounts``), screened by
  the ``fraud`` mechanism when it is enabled (which books its own detection cost), and the rewards
  paid to the undetected ones are booked as a fraud loss (``referral_fraud``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from sim import behaviour as bh
from sim import kernels
from sim.compiled import jit
from sim.kernels import bitmap, flagged
from sim.mechanisms.base import Mechanism, MechanismConfig, register
from sim.schema import param, require
from sim.vocabulary import CHANNELS

REFERRAL = CHANNELS.index("referral")
ORGANIC = CHANNELS.index("organic")
MAX_DELAY_DAYS = 60  # an invitation not acted upon within two months is forgotten
#: from this success probability up, numpy's ``Generator.geometric`` draws by sequential search
GEOMETRIC_SEARCH_FROM = 0.333333333333333333333333


#: the queue's lists, one per due day modulo this (due days run from tomorrow to MAX_DELAY_DAYS + 1 ahead)
QUEUE_SLOTS = MAX_DELAY_DAYS + 2
#: invitations per block of the queue: a due day's invitations lie in a chain of such blocks
BLOCK = 64


@dataclass(frozen=True)
class ReferralConfig(MechanismConfig):
    inviter_reward: float = param(10.0, lo=0, hi=10_000, unit="RMB per accepted invite", doc="reward to the inviter when an invitee joins (face value; see reward_form)")
    invitee_reward: float = param(5.0, lo=0, hi=10_000, unit="RMB per accepted invite", doc="reward to the invitee on joining (0: one-sided)")
    reward_form: Literal["cash", "coupon", "points"] = param("cash", doc="cash (paid on acceptance) | coupon (paid when used on a later order) | points (paid as used on later orders)")
    invites_per_visit: float = param(0.2, lo=0, hi=50, unit="invitations per visit", doc="invitations an average user sends per visit with no reward")
    reward_uplift: float = param(4.0, lo=0, hi=100, unit="multiplier", doc="at saturating reward, invitations per visit are (1 + reward_uplift) times the unrewarded rate")
    reward_half_rmb: float = param(15.0, lo=0, hi=1e6, lo_open=True, unit="RMB", doc="reward at which the response to it is half its maximum")
    conversion: float = param(0.2, lo=0, hi=1, unit="probability", doc="chance a first invitation to a fresh person converts with no invitee reward")
    invitee_uplift: float = param(1.5, lo=0, hi=100, unit="multiplier", doc="at saturating invitee reward, conversion is (1 + invitee_uplift) times the base")
    per_inviter_cap: int = param(20, lo=0, hi=1_000_000, unit="rewarded invites per inviter", doc="lifetime rewarded acceptances per inviter; 0 means no cap")
    tier_multipliers: tuple[float, ...] = param((1.0,), lo=0, hi=100, unit="multiplier per tier", doc="the k-th rewarded invite of an inviter pays tier_multipliers[k] x inviter_reward (the last value holds beyond the list)")
    frailty_multiplier: float = param(0.85, lo=0, hi=100, lo_open=True, unit="multiplier", doc="churn frailty of referred users relative to others (selection for fit)")
    # timing and attribution
    response_delay_days: float = param(1.0, lo=0, hi=30, unit="days", doc="mean extra days (geometric) between receiving an invitation and acting on it; 0: always the next day")
    attribution_window_days: int = param(7, lo=0, hi=MAX_DELAY_DAYS, unit="days", doc="who joins more than this many days after the invitation is credited to organic, unrewarded")
    # coupons and points
    noncash_value: float = param(0.6, lo=0, hi=1, unit="fraction of face value", doc="what a coupon or points feel worth, relative to cash, to people deciding to invite or accept")
    redemption: float = param(0.7, lo=0, hi=1, unit="probability", doc="chance a coupon or a points balance is ever used (the rest lapse unpaid)")
    coupon_valid_days: int = param(30, lo=1, hi=3650, unit="days", doc="a coupon lapses this many days after it was issued")
    rmb_per_point: float = param(0.01, lo=0, lo_open=True, hi=100, unit="RMB per point", doc="what one point pays for; a reward of R RMB is granted as R / rmb_per_point points")
    points_max_share: float = param(0.5, lo=0, hi=0.95, unit="fraction of an order", doc="most of an order's price points may pay")
    # reward abuse
    abuse_share: float = param(0.01, lo=0, hi=1, unit="fraction of people", doc="people who would farm rewards with fake accounts and self-invites (weighted to deal seekers)")
    fake_account_cost_rmb: float = param(4.0, lo=0, hi=10_000, unit="RMB per fake account", doc="what a fake account costs a farmer (phone number, device); farming starts above it")
    fakes_per_farm_visit: float = param(2.0, lo=0, hi=100, unit="fake accounts per visit", doc="fake accounts a farmer makes per visit when the profit per fake is far above its half-saturation")

    def check(self, path: str) -> None:
        require(len(self.tier_multipliers) > 0, f"{path}.tier_multipliers", [], "allowed is a list of at least one multiplier")


@register
class Referral(Mechanism):
    name = "referral"
    Config = ReferralConfig
    columns = ("referral_rewards_paid_rmb", "referral_rewards_issued_rmb", "referral_unattributed_joins",
               "referral_fake_accounts", "referral_fakes_paid")
    accounts = {"referral_rewards": "incentive", "referral_fraud": "fraud"}
    for_new_users = ("referral_rewards",)
    channels = ("referral",)

    def setup(self, model) -> None:
        c, pop = self.config, model.pop
        self.rewarded = pop.add_column("referral_rewarded", np.int32)
        self.tiers = np.asarray(c.tier_multipliers, dtype=np.float64)
        model.channel_frailty[REFERRAL] *= c.frailty_multiplier
        self.cash = c.reward_form == "cash"
        self.perceived = 1.0 if self.cash else c.noncash_value
        if c.reward_form == "coupon":
            self.coupon = pop.add_column("referral_coupon_rmb", np.float32)
            self.coupon_expiry = pop.add_column("referral_coupon_expiry", np.int32, -1)
        elif c.reward_form == "points":
            self.points = pop.add_column("referral_points", np.float64)
        setup_rng = model.streams.setup(f"mechanism.{self.name}")
        weight = pop.param("deal_sensitivity") / pop.seg["deal_sensitivity"][pop.segment].mean()
        self.farmer = pop.add_column("referral_farmer", bool)
        self.farmer[:] = setup_rng.random(pop.n) < c.abuse_share * weight
        self.farmer_bits = bitmap(self.farmer)  # (the farmers never change)
        # Invitations waiting to be acted upon, listed by due day in the order they were sent (speed:
        # a day takes its own list instead of filtering every waiting invitation).
        self.queue = _Queue()
        # Per tier, and past the cap (the last entry; see _tier): the inviter's reward, the
        # inviter's motivation to invite (1 + reward_uplift x incentive_response(perceived reward):
        # the reward depends on an inviter's rewarded count only through its tier and the cap), and
        # what a fake account brings its farmer (the inviter's and the invitee's rewards).
        self.inviter_value = np.append(c.inviter_reward * self.tiers, 0.0)
        response = bh.incentive_response(self.inviter_value * self.perceived, c.reward_half_rmb)
        self.motivation = 1.0 + c.reward_uplift * response
        self.fake_value = self.inviter_value + c.invitee_reward
        # An invitation's chance to convert, before the receiver's social response.
        self.p_accept = min(c.conversion * (1.0 + c.invitee_uplift * bh.incentive_response(c.invitee_reward * self.perceived, c.reward_half_rmb)), 1.0)
        self.coupon_offer: tuple | None = None
        self.late = (np.zeros(0, np.int64), np.zeros(0, np.int64))

    # ------------------------------------------------------------------ invitations
    def exposure(self, model) -> None:
        """Invitations due today reach their receivers (evaluated in today's adoption stage)."""
        receiver, sender, edge, late_receiver, late_sender, late_edge = self.queue.take(model.day)
        self.late = late_receiver, late_sender
        model.today.exposures.add(receiver, REFERRAL, self.p_accept, sender, edge)
        model.today.exposures.add(late_receiver, ORGANIC, self.p_accept, late_sender, late_edge)

    def share(self, model) -> None:
        c, pop, today = self.config, model.pop, model.today
        rng = self.rng(model)
        v = today.visitors
        sharing = bh.sharing_propensity(pop, v, model.day, model.cfg.behaviour.social)
        senders = _inviters(v, pop.segment, pop.seg["invite_propensity"], self.rewarded, self.motivation, self.tiers.size,
                            c.per_inviter_cap, c.invites_per_visit, sharing, rng.random(v.size))
        # an inviter who finds no friend left to invite sends nothing (target -1: skipped)
        target, edge = model.graph.sample_neighbours_where(senders, rng, pop.non_users_view())
        sent = int(np.count_nonzero(target >= 0))
        today.count("invites_sent", sent)
        self._schedule(model, rng, target, senders, edge, sent)
        self._farm(model, rng, v)

    def _schedule(self, model, rng, target, senders, edge, sent: int) -> None:
        """Invitations are acted upon after a geometric delay (the next day at the earliest); those
        acted upon after the attribution window lose their attribution. ``target`` is -1 where no
        invitation was sent; ``sent`` invitations were."""
        c = self.config
        if sent == 0:
            return
        p_act = 1.0 / (1.0 + c.response_delay_days)  # chance to act on a given day
        if p_act >= GEOMETRIC_SEARCH_FROM:
            delay = np.empty(sent, np.int64)
            _geometric_delays(rng.random(sent), p_act, MAX_DELAY_DAYS, delay)
        else:
            delay = np.minimum(rng.geometric(p_act, sent) - 1, MAX_DELAY_DAYS)
        self.queue.push(target, senders, edge, delay, model.day, c.attribution_window_days)

    def adoption(self, model) -> None:
        c, pop, today = self.config, model.pop, model.today
        self._count_late_joins(model)
        referred, inviters = _referred(today.new_users, pop.channel, pop.referrer)
        if referred.size == 0:
            return
        who, value = _rewards(referred, inviters, kernels.rank_within(inviters), self.rewarded, self.inviter_value,
                              self.tiers.size, c.per_inviter_cap, float(c.invitee_reward))
        today.count("invites_accepted", referred.size)
        self._grant(model, who, value)

    def _count_late_joins(self, model) -> None:
        """Joins through an invitation acted on after the attribution window (credited to organic)."""
        receiver, sender = self.late
        if receiver.size == 0:
            return
        pop = model.pop
        late = _late_joins(receiver, sender, model.day, pop.joined_day, pop.channel, pop.referrer)
        if late:
            model.today.count("referral_unattributed_joins", late)

    def _grant(self, model, who: np.ndarray, value: np.ndarray) -> None:
        """Give rewards of face value ``value`` (RMB, positive) in the configured form."""
        if who.size == 0:
            return
        today, c = model.today, self.config
        today.count("referral_rewards_issued_rmb", float(value.sum()))
        if self.cash:
            self._book(model, float(value.sum()))
            return
        used = self.rng(model).random(who.size) < c.redemption  # breakage is decided at issue
        who, value = who[used], value[used]
        if c.reward_form == "coupon":
            np.add.at(self.coupon, who, value.astype(np.float32))
            self.coupon_expiry[who] = model.day + c.coupon_valid_days
        else:
            np.add.at(self.points, who, value / c.rmb_per_point)

    def _book(self, model, amount: float) -> None:
        if amount > 0:
            model.economics.book("referral_rewards", amount)
            model.today.count("referral_rewards_paid_rmb", amount)

    # ------------------------------------------------------------------ coupons and points in use
    def browse(self, model) -> None:
        """A visiting coupon holder sees the coupon taken off the price of what they buy: a cut of
        about its face value on the holder's usual order (at most 95 %)."""
        self.coupon_offer = None
        if self.config.reward_form != "coupon":
            return
        pop, today = model.pop, model.today
        v = today.visitors
        lapsed = v[(self.coupon_expiry[v] >= 0) & (self.coupon_expiry[v] < model.day)]
        self.coupon[lapsed] = 0.0
        self.coupon_expiry[lapsed] = -1
        pos = np.flatnonzero(self.coupon[v] > 0)
        if pos.size == 0:
            return
        usual = pop.param("basket_rmb", v[pos]) * model.cfg.platform.price_level
        fraction = np.minimum(self.coupon[v[pos]] / usual, 0.95)
        today.offer_discount(pos, fraction)
        self.coupon_offer = (pos, fraction)

    def purchase(self, model) -> None:
        """Coupons are used up by the holder's order (the platform pays what the buyer saved); points
        pay up to ``points_max_share`` of an order, as far as the balance goes (a means of payment:
        the order's value is unchanged and the platform pays the points' part)."""
        if self.cash:
            return
        today = model.today
        buyers = today.visitors[today.core_positions]
        basket = today.basket[today.core_orders]
        if self.config.reward_form == "points":
            held = self.points[buyers] * self.config.rmb_per_point
            pay = np.minimum(held, self.config.points_max_share * basket)
            use = pay > 0
            self.points[buyers[use]] = np.maximum(self.points[buyers[use]] - pay[use] / self.config.rmb_per_point, 0.0)
            self._book(model, float(pay[use].sum()))
        elif self.coupon_offer is not None:
            pos, fraction = self.coupon_offer
            offered = np.full(today.visitors.size, -1, dtype=np.int64)
            offered[pos] = np.arange(pos.size)
            k = offered[today.core_positions]
            used = k >= 0
            f = fraction[k[used]]
            saved = basket[used] * f / (1.0 - f)  # what the buyer did not pay
            self.coupon[buyers[used]] = 0.0
            self.coupon_expiry[buyers[used]] = -1
            self._book(model, float(saved.sum()))

    # ------------------------------------------------------------------ reward abuse
    def _farm(self, model, rng, visitors: np.ndarray) -> None:
        """Farmers who visit make fake accounts 'invited' by themselves while a fake pays."""
        c = self.config
        tiers, cap = self.tiers.size, c.per_inviter_cap
        farmers, rate = _farm_rates(flagged(visitors, self.farmer_bits), self.rewarded, self.fake_value, tiers, cap,
                                    self.perceived, c.fake_account_cost_rmb, c.reward_half_rmb, c.fakes_per_farm_visit)
        if farmers.size == 0 or c.fakes_per_farm_visit == 0:
            return
        n = rng.poisson(rate)
        if not n.any():
            return
        owner = _farm_owners(farmers, n, self.rewarded, cap)
        attempts = owner.size
        model.today.count("referral_fake_accounts", attempts)
        caught = min(sum(int(m.screen(model, attempts, rng)) for m in model.mechanisms), attempts) if attempts else 0
        paid = np.ones(attempts, dtype=bool)
        if caught:
            paid[rng.choice(attempts, size=caught, replace=False)] = False
        loss = _pay_fakes(owner, paid, self.rewarded, self.fake_value, tiers, cap)
        if loss.size == 0:
            return
        # Fakes are not simulated people: their coupons and points are booked at expected redemption.
        amount = float(loss.sum()) * (1.0 if self.cash else c.redemption)
        model.today.count("referral_fakes_paid", loss.size)
        if amount > 0:
            model.economics.book("referral_fraud", amount)


class _Queue:
    """Invitations waiting to be acted upon: a list per due day, each a chain of blocks of ``BLOCK``
    invitations, the blocks reused once taken. A day's work is proportional to the invitations
    sent and due that day, and a list is read block by block (not entry by entry)."""

    def __init__(self, blocks: int = 4 * QUEUE_SLOTS) -> None:
        self.receiver = np.empty(blocks * BLOCK, np.int64)
        self.sender = np.empty(blocks * BLOCK, np.int64)
        self.edge = np.empty(blocks * BLOCK, np.int64)
        self.channel = np.empty(blocks * BLOCK, np.int8)
        self.block_next = np.empty(blocks, np.int64)
        self.free = np.arange(blocks - 1, -1, -1, dtype=np.int64)  # block 0 taken first
        self.n_free = blocks
        self.head = np.full(QUEUE_SLOTS, -1, np.int64)
        self.tail = np.full(QUEUE_SLOTS, -1, np.int64)
        self.fill = np.zeros(QUEUE_SLOTS, np.int64)

    def _grow(self, need: int) -> None:
        old = self.block_next.size
        new = max(2 * old, old + need - self.n_free)
        for name in ("receiver", "sender", "edge", "channel"):
            col = getattr(self, name)
            grown = np.empty(new * BLOCK, col.dtype)
            grown[:col.size] = col
            setattr(self, name, grown)
        self.block_next = np.concatenate([self.block_next, np.empty(new - old, np.int64)])
        free = np.empty(new, np.int64)
        free[:self.n_free] = self.free[:self.n_free]
        free[self.n_free:self.n_free + new - old] = np.arange(new - 1, old - 1, -1)
        self.free = free
        self.n_free += new - old

    def push(self, target, senders, edge, delay, day: int, window: int) -> None:
        need = delay.size // BLOCK + QUEUE_SLOTS  # at most one new block per BLOCK entries, and per list
        if self.n_free < need:
            self._grow(need)
        self.n_free = _enqueue((target, senders, edge, delay), day, window, self._entries(), self._lists(), self.n_free)

    def take(self, day: int) -> tuple[np.ndarray, ...]:
        *out, self.n_free = _take_due(day, self._entries(), self._lists(), self.n_free)
        return tuple(out)

    def _entries(self) -> tuple[np.ndarray, ...]:
        """The queue's entries, for its passes: receiver, sender, edge, channel (one per slot)."""
        return self.receiver, self.sender, self.edge, self.channel

    def _lists(self) -> tuple[np.ndarray, ...]:
        """The queue's lists, for its passes: block_next, and per due day head, tail, fill; the free blocks."""
        return self.block_next, self.head, self.tail, self.fill, self.free


# ====================================================================================== compiled passes
@jit
def _geometric_delays(u, p, cap, out):
    """``min(X - 1, cap)`` for geometric ``X`` (success probability ``p``), by numpy's sequential
    search from the uniform ``u[i]``: for ``p >= GEOMETRIC_SEARCH_FROM`` the very numbers
    ``np.minimum(rng.geometric(p, n) - 1, cap)`` gives when ``u = rng.random(n)``, the generator
    left in the same state (tests/test_referral.py checks it). Stops at ``cap``."""
    q = 1.0 - p
    for i in range(u.size):
        x = 0
        total = p
        prod = p
        while u[i] > total and x < cap:
            prod *= q
            total += prod
            x += 1
        out[i] = x


@jit
def _enqueue(sent, day, window, entries, lists, n_free):
    """Append the invitations ``sent`` (target, sender, edge, delay: ``target >= 0`` for those sent,
    ``delay`` one per invitation sent, in order) to the lists of their due days ``day + 1 + delay``,
    with their channel (organic past the attribution ``window``). A list (``head``, ``tail`` and the
    ``fill`` of its tail block, per due day modulo ``QUEUE_SLOTS``) is a chain of blocks of ``BLOCK``
    entries (``block_next``); a new block is taken from the end of ``free[:n_free]`` (there must be
    enough). Returns the free blocks left. One pass, and a due day's list keeps the order of sending."""
    target, senders, edge, delay = sent
    receiver, sender, edge_q, channel = entries
    block_next, head, tail, fill, free = lists
    j = 0
    for i in range(target.size):
        if target[i] < 0:
            continue
        d = delay[j]
        j += 1
        b = (day + 1 + d) % QUEUE_SLOTS
        t = tail[b]
        if t < 0 or fill[b] == BLOCK:
            n_free -= 1
            c = free[n_free]
            block_next[c] = -1
            if t < 0:
                head[b] = c
            else:
                block_next[t] = c
            tail[b] = c
            fill[b] = 0
            t = c
        s = t * BLOCK + fill[b]
        fill[b] += 1
        receiver[s] = target[i]
        sender[s] = senders[i]
        edge_q[s] = edge[i]
        channel[s] = ORGANIC if d + 1 > window else REFERRAL
    return n_free


@jit
def _take_due(day, entries, lists, n_free):
    """The invitations due on ``day`` in the order they were sent, split by channel: (receiver,
    sender, edge) of the attributed ones, the same of the late ones (organic), and the free blocks
    left once their blocks are freed. See :func:`_enqueue`."""
    receiver, sender, edge_q, channel = entries
    block_next, head, tail, fill, free = lists
    b = day % QUEUE_SLOTS
    n_ref = 0
    n_late = 0
    c = head[b]
    while c >= 0:
        end = c * BLOCK + (fill[b] if c == tail[b] else BLOCK)
        for s in range(c * BLOCK, end):
            if channel[s] == REFERRAL:
                n_ref += 1
            else:
                n_late += 1
        c = block_next[c]
    rr, rs, re = np.empty(n_ref, np.int64), np.empty(n_ref, np.int64), np.empty(n_ref, np.int64)
    lr, ls, le = np.empty(n_late, np.int64), np.empty(n_late, np.int64), np.empty(n_late, np.int64)
    i = 0
    k = 0
    c = head[b]
    while c >= 0:
        end = c * BLOCK + (fill[b] if c == tail[b] else BLOCK)
        for s in range(c * BLOCK, end):
            if channel[s] == REFERRAL:
                rr[i], rs[i], re[i] = receiver[s], sender[s], edge_q[s]
                i += 1
            else:
                lr[k], ls[k], le[k] = receiver[s], sender[s], edge_q[s]
                k += 1
        free[n_free] = c
        n_free += 1
        c = block_next[c]
    head[b] = -1
    tail[b] = -1
    return rr, rs, re, lr, ls, le, n_free


@jit
def _tier(done, tiers, cap):
    """Index into a per-tier table of an inviter with ``done`` rewarded invitations: the tier, or
    ``tiers`` (the entry for 'no reward') at or past the ``cap`` (0: none)."""
    if cap > 0 and done >= cap:
        return tiers
    return min(done, tiers - 1)


@jit
def _inviters(v, segment, propensity, rewarded, motivation, tiers, cap, per_visit, sharing, u):
    """``np.repeat(v, n)``: each visitor of ``v`` once per invitation they send today, ``n`` being
    ``stochastic_round(per_visit x propensity[segment] x motivation[tier] x sharing, u)`` as numpy
    computes it (the same products in the same order)."""
    n = np.empty(v.size, np.int64)
    total = 0
    for k in range(v.size):
        i = v[k]
        mean = per_visit * propensity[segment[i]] * motivation[_tier(rewarded[i], tiers, cap)] * sharing[k]
        n[k] = np.int64(np.floor(mean + u[k]))
        total += n[k]
    out = np.empty(total, v.dtype)
    j = 0
    for k in range(v.size):
        for _ in range(n[k]):
            out[j] = v[k]
            j += 1
    return out


@jit
def _farm_rates(farmers, rewarded, value, tiers, cap, perceived, cost, half, per_visit):
    """The ``farmers`` (who visit today) still under the ``cap`` and the mean number of fakes each
    makes today: ``per_visit x incentive_response(max(value[tier] x perceived - cost, 0), half)``
    (``value``: what a fake brings per tier, the invitee's reward included)."""
    keep = np.empty(farmers.size, farmers.dtype)
    m = 0
    for k in range(farmers.size):
        if cap == 0 or rewarded[farmers[k]] < cap:
            keep[m] = farmers[k]
            m += 1
    farmers = keep[:m]
    rate = np.empty(m, np.float64)
    for k in range(m):
        rate[k] = per_visit * bh.incentive_response(value[_tier(rewarded[farmers[k]], tiers, cap)] * perceived - cost, half)
    return farmers, rate


@jit
def _farm_owners(farmers, n, rewarded, cap):
    """``np.repeat(farmers, n)`` (distinct farmers), keeping only the fakes still under the ``cap``."""
    total = 0
    for k in range(farmers.size):
        total += n[k] if cap == 0 else min(n[k], max(cap - rewarded[farmers[k]], 0))
    out = np.empty(total, farmers.dtype)
    j = 0
    for k in range(farmers.size):
        keep = n[k] if cap == 0 else min(n[k], max(cap - rewarded[farmers[k]], 0))
        for _ in range(keep):
            out[j] = farmers[k]
            j += 1
    return out


@jit
def _pay_fakes(owner, paid, rewarded, value, tiers, cap):
    """The paid fakes' rewards (their owner's next tier, in turn; the invitee's reward included),
    each counted as one rewarded invitation of its owner (``np.add.at`` in order)."""
    loss = np.empty(owner.size, np.float64)
    m = 0
    for k in range(owner.size):
        if paid[k]:
            o = owner[k]
            loss[m] = value[_tier(rewarded[o], tiers, cap)]
            rewarded[o] += 1
            m += 1
    return loss[:m]


@jit
def _referred(new, channel, referrer):
    """Today's referred joins (the people of ``new`` whose channel is referral) and their inviters."""
    referred = np.empty(new.size, np.int64)
    m = 0
    for k in range(new.size):
        if channel[new[k]] == REFERRAL:
            referred[m] = new[k]
            m += 1
    inviters = np.empty(m, np.int64)
    for k in range(m):
        inviters[k] = referrer[referred[k]]
    return referred[:m], inviters


@jit
def _rewards(referred, inviters, within, rewarded, value, tiers, cap, invitee_reward):
    """The rewards of today's referred joins (:func:`_referred`): each inviter's next tier of ``value``
    (several friends of one inviter who join the same day count in turn, ``within``, up to the
    ``cap``), then the invitee's reward. Counts each rewarded inviter's invitation in ``rewarded``.
    Returns who gets a reward (value > 0) and its value: the inviters first, in order, then the
    invitees."""
    m = referred.size
    who = np.empty(2 * m, np.int64)
    amount = np.empty(2 * m, np.float64)
    w = 0
    for k in range(m):
        v = value[_tier(rewarded[inviters[k]] + within[k], tiers, cap)]
        if v > 0:
            who[w] = inviters[k]
            amount[w] = v
            w += 1
    for k in range(w):
        rewarded[who[k]] += 1
    if invitee_reward > 0:
        for k in range(m):
            who[w] = referred[k]
            amount[w] = invitee_reward
            w += 1
    return who[:w], amount[:w]


@jit
def _late_joins(receiver, sender, day, joined_day, channel, referrer):
    """How many distinct ``receiver`` joined today, organic, with the ``sender`` of a late
    invitation as referrer (one pass and a sort of the few hits, instead of four passes)."""
    hit = np.empty(receiver.size, np.int64)
    m = 0
    for k in range(receiver.size):
        r = receiver[k]
        if joined_day[r] == day and channel[r] == ORGANIC and referrer[r] == sender[k]:
            hit[m] = r
            m += 1
    return np.unique(hit[:m]).size
