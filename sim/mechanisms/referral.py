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
from sim.config import CHANNELS
from sim.graph.csr import unique_sorted
from sim.kernels import jit
from sim.mechanisms import register
from sim.mechanisms.base import Mechanism, MechanismConfig
from sim.schema import param, require

REFERRAL = CHANNELS.index("referral")
ORGANIC = CHANNELS.index("organic")
MAX_DELAY_DAYS = 60  # an invitation not acted upon within two months is forgotten
#: from this success probability up, numpy's ``Generator.geometric`` draws by sequential search
GEOMETRIC_SEARCH_FROM = 0.333333333333333333333333


@jit
def _geometric_delays(u, p, cap, out):
    """``min(X - 1, cap)`` for geometric ``X`` (success probability ``p``), by numpy's sequential
    search from the uniform ``u[i]``: for ``p >= GEOMETRIC_SEARCH_FROM`` the very numbers
    ``np.minimum(rng.geometric(p, n) - 1, cap)`` gives when ``u = rng.random(n)``, the generator
    left in the same state (tests/test_perf4_share.py checks it). Stops at ``cap``.

    A kernel because numpy's geometric pays a C call per variate and needs a pass for the cap."""
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
def _bucket_by_delay(target, senders, edge, delay, window, receiver, sender, edge_out, channel, end):
    """The invitations sent (``target >= 0``; ``delay`` holds one delay per invitation sent, in
    order) ordered by delay, keeping the order they were sent in within a delay (a stable counting
    sort): their receiver, sender, edge and channel (organic past the attribution ``window``).
    ``end[d]`` is where delay ``d`` ends in that order.

    A kernel because numpy needs a filter, a sort and a gather per column; this is two passes."""
    end[:] = 0
    for j in range(delay.size):
        end[delay[j]] += 1
    total = 0
    for d in range(end.size):  # end[d] becomes where delay d starts, then is advanced to its end
        count = end[d]
        end[d] = total
        total += count
    j = 0
    for i in range(target.size):
        if target[i] < 0:
            continue
        d = delay[j]
        j += 1
        k = end[d]
        end[d] = k + 1
        receiver[k] = target[i]
        sender[k] = senders[i]
        edge_out[k] = edge[i]
        channel[k] = ORGANIC if d + 1 > window else REFERRAL


@dataclass(frozen=True)
class ReferralConfig(MechanismConfig):
    inviter_reward: float = param(10.0, lo=0, hi=10_000, unit="RMB per accepted invite", doc="reward to the inviter when an invitee joins (face value; see reward_form)")
    invitee_reward: float = param(5.0, lo=0, hi=10_000, unit="RMB per accepted invite", doc="reward to the invitee on joining (0: one-sided)")
    reward_form: Literal["cash", "coupon", "points"] = param("cash", doc="cash (paid on acceptance) | coupon (paid when used on a later order) | points (paid as used on later orders)")
    invites_per_visit: float = param(0.2, lo=0, hi=50, unit="invitations per visit", doc="invitations an average user sends per visit with no reward")
    reward_uplift: float = param(4.0, lo=0, hi=100, unit="multiplier", doc="at saturating reward, invitations per visit are (1 + reward_uplift) times the unrewarded rate")
    reward_half_rmb: float = param(15.0, lo=0, lo_open=True, unit="RMB", doc="reward at which the response to it is half its maximum")
    conversion: float = param(0.2, lo=0, hi=1, unit="probability", doc="chance a first invitation to a fresh person converts with no invitee reward")
    invitee_uplift: float = param(1.5, lo=0, hi=100, unit="multiplier", doc="at saturating invitee reward, conversion is (1 + invitee_uplift) times the base")
    per_inviter_cap: int = param(20, lo=0, hi=1_000_000, unit="rewarded invites per inviter", doc="lifetime rewarded acceptances per inviter; 0 means no cap")
    tier_multipliers: tuple[float, ...] = param((1.0,), lo=0, hi=100, unit="multiplier per tier", doc="the k-th rewarded invite of an inviter pays tier_multipliers[k] x inviter_reward (the last value holds beyond the list)")
    frailty_multiplier: float = param(0.85, lo=0, lo_open=True, unit="multiplier", doc="churn frailty of referred users relative to others (selection for fit)")
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
        # Invitations waiting to be acted upon, in buckets by due day: {day: [(receiver, sender, edge,
        # channel, probability), ...]} in the order they were sent (speed: a day takes its own bucket
        # instead of filtering every waiting invitation).
        self.queue: dict[int, list[tuple[np.ndarray, ...]]] = {}
        self.coupon_offer: tuple | None = None
        self.late = (np.zeros(0, np.int64), np.zeros(0, np.int64))

    # ------------------------------------------------------------------ rewards and tiers
    def _cap_left(self, idx: np.ndarray, already: np.ndarray | int = 0) -> np.ndarray:
        cap = self.config.per_inviter_cap
        return np.ones(idx.size, dtype=bool) if cap == 0 else self.rewarded[idx] + already < cap

    def _inviter_reward(self, idx: np.ndarray, already: np.ndarray | int = 0) -> np.ndarray:
        """Face value of the next rewarded invite of ``idx`` (0 past the cap), tier included."""
        done = self.rewarded[idx] + already
        value = self.config.inviter_reward * self.tiers[np.minimum(done, self.tiers.size - 1)]
        cap = self.config.per_inviter_cap
        return value if cap == 0 else np.where(done < cap, value, 0.0)

    def _motivation(self, idx: np.ndarray) -> np.ndarray:
        """``1 + reward_uplift x incentive_response(perceived next reward)`` of inviters ``idx``.

        The reward depends on an inviter's rewarded count only through its tier and the cap, so
        the response is computed once per tier (the same elementwise expressions, so the same
        values) and looked up: a gather instead of a chain of passes over the visitors."""
        c = self.config
        tiers = self.tiers.size
        value = np.append(c.inviter_reward * self.tiers, 0.0)  # per tier, and past the cap
        table = 1.0 + c.reward_uplift * bh.incentive_response(value * self.perceived, c.reward_half_rmb)
        done = self.rewarded[idx]
        k = np.minimum(done, tiers - 1)
        if c.per_inviter_cap:
            k = np.where(done < c.per_inviter_cap, k, tiers)
        return table[k]

    # ------------------------------------------------------------------ invitations
    def exposure(self, model) -> None:
        """Invitations due today reach their receivers (evaluated in today's adoption stage)."""
        bucket = self.queue.pop(model.day, None)
        if bucket is None:
            self.late = (np.zeros(0, np.int64), np.zeros(0, np.int64))
            return
        receiver, sender, edge, channel, prob = (np.concatenate(cols) for cols in zip(*bucket))
        late = channel == ORGANIC
        self.late = receiver[late], sender[late]
        for ch, sel in ((REFERRAL, ~late), (ORGANIC, late)):
            model.today.exposures.add(receiver[sel], ch, prob[sel], sender[sel], edge[sel])

    def share(self, model) -> None:
        c, pop, today = self.config, model.pop, model.today
        rng = self.rng(model)
        v = today.visitors
        motivation = self._motivation(v)
        mean = c.invites_per_visit * pop.param("invite_propensity", v) * motivation * bh.sharing_propensity(pop, v, model.day, model.cfg.behaviour.social)
        n = bh.stochastic_round(mean, rng.random(v.size))
        senders = np.repeat(v, n)
        # an inviter who finds no friend left to invite sends nothing (target -1: skipped)
        target, edge = model.graph.sample_neighbours_where(senders, rng, pop.non_users_view())
        sent = int(np.count_nonzero(target >= 0))
        today.count("invites_sent", sent)
        p = min(c.conversion * (1.0 + c.invitee_uplift * bh.incentive_response(c.invitee_reward * self.perceived, c.reward_half_rmb)), 1.0)
        self._schedule(model, rng, target, senders, edge, sent, p)
        self._farm(model, rng, v)

    def _schedule(self, model, rng, target, senders, edge, sent: int, p: float) -> None:
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
        # Into the buckets of their due days, keeping the order they were sent in within each day.
        cols = (np.empty(sent, np.int64), np.empty(sent, np.int64), np.empty(sent, np.int64), np.empty(sent, np.int8))
        end = np.empty(MAX_DELAY_DAYS + 1, np.int64)
        _bucket_by_delay(target, senders, edge, delay, c.attribution_window_days, *cols, end)
        cols = (*cols, np.full(sent, p))
        b = 0
        for d in np.flatnonzero(np.diff(end, prepend=0)).tolist():
            e = int(end[d])
            self.queue.setdefault(model.day + 1 + d, []).append(tuple(col[b:e] for col in cols))
            b = e

    def adoption(self, model) -> None:
        c, pop, today = self.config, model.pop, model.today
        new = today.new_users
        self._count_late_joins(model)
        new = new[pop.channel[new] == REFERRAL]
        if new.size == 0:
            return
        today.count("invites_accepted", new.size)
        inviters = pop.referrer[new]
        # Several friends of one inviter can accept on the same day: count them in turn (cap, tiers).
        within = bh.rank_within(inviters)
        inviter_value = self._inviter_reward(inviters, within)
        paid = inviter_value > 0
        np.add.at(self.rewarded, inviters[paid], 1)
        invitee_value = np.full(new.size, c.invitee_reward)
        self._grant(model, np.concatenate([inviters[paid], new]), np.concatenate([inviter_value[paid], invitee_value]))

    def _count_late_joins(self, model) -> None:
        """Joins through an invitation acted on after the attribution window (credited to organic)."""
        receiver, sender = self.late
        if receiver.size == 0:
            return
        pop = model.pop
        hit = (pop.joined_day[receiver] == model.day) & (pop.channel[receiver] == ORGANIC) & (pop.referrer[receiver] == sender)
        if hit.any():
            model.today.count("referral_unattributed_joins", unique_sorted(receiver[hit]).size)

    def _grant(self, model, who: np.ndarray, value: np.ndarray) -> None:
        """Give rewards of face value ``value`` (RMB) in the configured form."""
        keep = value > 0
        who, value = who[keep], value[keep]
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
        farmers = visitors[self.farmer[visitors]]
        farmers = farmers[self._cap_left(farmers)]
        if farmers.size == 0 or c.fakes_per_farm_visit == 0:
            return
        value = self._inviter_reward(farmers) + c.invitee_reward
        profit = np.maximum(value * self.perceived - c.fake_account_cost_rmb, 0.0)
        n = rng.poisson(c.fakes_per_farm_visit * bh.incentive_response(profit, c.reward_half_rmb))
        owner = np.repeat(farmers, n)
        if owner.size == 0:
            return
        within = bh.rank_within(owner)
        rewarded = self._cap_left(owner, within)
        owner, within = owner[rewarded], within[rewarded]
        attempts = owner.size
        model.today.count("referral_fake_accounts", attempts)
        fraud = model.get_mechanism("fraud")
        caught = min(int(fraud.screen(model, attempts, rng)), attempts) if fraud is not None and attempts else 0
        paid = np.ones(attempts, dtype=bool)
        if caught:
            paid[rng.choice(attempts, size=caught, replace=False)] = False
        owner, within = owner[paid], bh.rank_within(owner[paid])
        if owner.size == 0:
            return
        loss = self._inviter_reward(owner, within) + c.invitee_reward
        np.add.at(self.rewarded, owner, 1)
        # Fakes are not simulated people: their coupons and points are booked at expected redemption.
        amount = float(loss.sum()) * (1.0 if self.cash else c.redemption)
        model.today.count("referral_fakes_paid", owner.size)
        if amount > 0:
            model.economics.book("referral_fraud", amount)
