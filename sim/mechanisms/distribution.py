"""Distribution (S2B2C resellers, 分销): well-connected users resell to their own circle for a commission.

What it models (seed document 004, S2B2C): the platform (S) supplies goods and logistics; small
resellers (B, KOC: users with many friends, more often social sharers) promote them to their circle
(C) and earn ``commission_rate`` of the downstream orders. Each day an active reseller posts to a
number of friends that grows with the commission on offer: friends on the platform are drawn to
visit and, trusting a friend's recommendation, buy more readily (their orders that day are credited
to source ``distribution``); friends not on the platform may join through the reseller (channel
``distribution``) and are then bound to that reseller (锁粉), who earns a commission on all their later
orders. Commissions are an incentive cost. Resellers are engaged (their own churn hazard is lower)
but give up reselling when it stops paying: each day a reseller quits with a probability that falls
with their recent earnings (an exponentially weighted average), after a trial period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim import behaviour as bh
from sim.compiled import jit
from sim.kernels import merge_sorted, positions_in, search_sorted
from sim.mechanisms.base import Mechanism, MechanismConfig, register
from sim.schema import param
from sim.vocabulary import ACTIVE, AWARE, DORMANT
from sim.vocabulary import CHANNELS

DISTRIBUTION = CHANNELS.index("distribution")
NOBODY = -1


@dataclass(frozen=True)
class DistributionConfig(MechanismConfig):
    commission_rate: float = param(0.1, lo=0, hi=0.9, unit="fraction of order value", doc="share of each downstream order paid to the reseller")
    commission_half: float = param(0.08, lo=0, lo_open=True, hi=1, unit="fraction of order value", doc="commission rate at which its pull on recruiting and posting is half its maximum")
    recruit_rate: float = param(0.03, lo=0, hi=1, unit="probability per visit", doc="chance a well-connected visitor (at min_friends, average propensity, saturating commission) becomes a reseller")
    min_friends: int = param(20, lo=0, hi=1_000_000, unit="friends", doc="only users with at least this many friends (KOC) are recruited")
    max_share: float = param(0.2, lo=0, hi=1, unit="fraction of users", doc="recruiting stops while resellers are this share of users")
    posts_per_day: float = param(10.0, lo=0, hi=1000, unit="friends reached per day", doc="friends an active reseller reaches per day at a saturating commission")
    visit_boost: float = param(1.0, lo=0, hi=10, unit="log-odds", doc="added to the visit log-odds of a friend who saw a reseller's post today")
    trust_uplift: float = param(0.5, lo=0, hi=10, unit="multiplier", doc="purchase intensity x (1 + trust_uplift) for a friend who saw a reseller's post today")
    newcomer_conversion: float = param(0.2, lo=0, hi=1, unit="probability", doc="chance a post makes a friend who is not a user join through the reseller")
    reseller_hazard_ratio: float = param(0.5, lo=0, hi=1, unit="hazard ratio", doc="churn hazard of an active reseller relative to other users")
    earnings_days: float = param(14.0, lo=1, hi=365, unit="days", doc="time scale of the reseller's running average of daily earnings")
    trial_days: int = param(21, lo=0, hi=365, unit="days", doc="days a new reseller tries before judging the earnings")
    quit_rate: float = param(0.05, lo=0, hi=1, unit="probability per day", doc="daily chance a reseller earning nothing gives up")
    earnings_half_rmb: float = param(2.0, lo=0, hi=1e6, lo_open=True, unit="RMB per day per reseller", doc="average daily earnings that halve the chance of giving up")
    platform_share: float = param(1.0, lo=0, hi=1, unit="fraction of the commissions", doc="share of the reseller commissions the platform pays (in S2B2C the supplier often funds them out of its price: set a share below 1)")


@register
class Distribution(Mechanism):
    name = "distribution"
    Config = DistributionConfig
    columns = ("distribution_resellers", "distribution_recruited", "distribution_quit", "distribution_reach",
               "distribution_orders", "distribution_commissions_rmb")
    accounts = {"distribution_commissions": "incentive"}
    funding = {"distribution_commissions": "platform_share"}
    channels = ("distribution",)

    def setup(self, model) -> None:
        pop, c = model.pop, self.config
        self.upline = pop.add_column("distribution_upline", np.int32, NOBODY)  # reseller a customer is bound to
        self.touched_by = pop.add_column("distribution_touched_by", np.int32, NOBODY)  # reseller whose post they saw
        self.touched_day = pop.add_column("distribution_touched_day", np.int32, -1)
        self.earnings = pop.add_column("distribution_earnings", np.float64)  # running average, RMB per day
        self.since = pop.add_column("distribution_since", np.int32, -1)  # day a reseller started, or -1
        self.resellers = np.zeros(0, np.int64)
        self.pull = bh.incentive_response(c.commission_rate, c.commission_half) / bh.incentive_response(1.0, c.commission_half)
        self.reached = np.zeros(0, np.int64)
        self.earned_today = np.zeros(0)  # per reseller (row of self.resellers), RMB today
        self.mark = np.zeros(pop.n, dtype=np.bool_)  # scratch of positions_in, all False

    # ------------------------------------------------------------------ daily hooks
    def exposure(self, model) -> None:
        """Active resellers post to friends: non-users may join through them, users are drawn in."""
        c, pop, today = self.config, model.pop, model.today
        self.reached = np.zeros(0, np.int64)
        r = self.resellers
        self.earned_today = np.zeros(r.size)
        if r.size == 0:
            return
        rng = self.rng(model)
        n = rng.poisson(c.posts_per_day * self.pull, r.size)
        sender = np.repeat(r, n)
        target, edge = model.graph.sample_neighbours(sender, rng)
        receiver, sender, edge, reached, found = _posts(sender, target, edge, pop.state, self.touched_by,
                                                        self.touched_day, model.day)
        today.count("distribution_reach", found)
        today.exposures.add(receiver, DISTRIBUTION, c.newcomer_conversion, sender, edge)
        today.count("invites_sent", receiver.size)
        self.reached = reached  # may repeat a friend: the visit boost is added once all the same

    def adoption(self, model) -> None:
        pop, today = model.pop, model.today
        new = today.new_users[pop.channel[today.new_users] == DISTRIBUTION]
        self.upline[new] = pop.referrer[new]
        if new.size:
            today.count("invites_accepted", new.size)  # a reseller's post to a non-user is an invitation

    def visit(self, model) -> None:
        if self.reached.size:  # a buffered += : a friend reached by several posts gets the boost once
            model.today.visit_boost[self.reached] += self.config.visit_boost

    def browse(self, model) -> None:
        today = model.today
        # the visitors who saw a post today (touched_day == today): those reached today
        pos = positions_in(today.visitors, self.reached, self.mark)
        if pos.size:
            today.boost_relevance(pos, 1.0 + self.config.trust_uplift)
            today.attribute(pos, "distribution")

    def _pay_commissions(self, model) -> None:
        """Commission on today's orders (of any kind) by friends who saw a post today, else by
        customers bound to a reseller, as long as that reseller is active."""
        today = model.today
        buyers, basket = today.buyers, today.basket
        if buyers.size == 0 or self.resellers.size == 0:
            return
        commission, earned = _commissions(buyers, basket, model.day, self.touched_day, self.touched_by, self.upline,
                                          self.since, self.resellers, self.config.commission_rate)
        if commission.size == 0:
            return
        self.earned_today += earned
        total = float(commission.sum())
        model.economics.book("distribution_commissions", total)
        today.count("distribution_commissions_rmb", total)
        today.count("distribution_orders", commission.size)

    def retention(self, model) -> None:
        r = self.resellers
        if r.size:
            model.today.hazard_ratio[r] *= self.config.reseller_hazard_ratio

    def settle(self, model) -> None:
        self._pay_commissions(model)
        self._update_earnings_and_quit(model)
        self._recruit(model)
        model.today.count("distribution_resellers", self.resellers.size)

    # ------------------------------------------------------------------ resellers
    def _update_earnings_and_quit(self, model) -> None:
        """The running average of earnings takes in today's; resellers no longer users quit, and
        after the trial the others give up with a chance that falls with their earnings."""
        c, pop, r = self.config, model.pop, self.resellers
        if r.size == 0:
            return
        rng = self.rng(model)
        p = _quit_chance(r, pop.state, self.since, self.earnings, self.earned_today, model.day, 1.0 / c.earnings_days,
                         c.trial_days, c.quit_rate, c.earnings_half_rmb)
        self.resellers, quit = _keep(r, rng.random(r.size), p, self.since)
        if quit:
            model.today.count("distribution_quit", quit)

    def _recruit(self, model) -> None:
        c, pop, today = self.config, model.pop, model.today
        if self.resellers.size >= c.max_share * pop.count_users():
            return
        least = max(c.min_friends, 1)
        cand, p = _candidates(today.visitors, model.graph.degree, least, self.since, pop.state, pop.segment,
                              pop.seg["invite_propensity"], c.recruit_rate * self.pull, float(least))
        if cand.size == 0:
            return
        rng = self.rng(model)
        new = _join(cand, rng.random(cand.size), p, self.since, self.earnings, model.day)
        joined = new.size
        if joined:
            self.resellers = merge_sorted(self.resellers, new)
        if joined:
            today.count("distribution_recruited", joined)

# ====================================================================================== compiled passes
@jit
def _posts(sender, target, edge, state, touched_by, touched_day, day):
    """What today's posts (``sender`` to ``target`` along ``edge``; ``target`` -1: no friend) reach:
    the posts to non-users (state up to ``AWARE``) as exposure events (receiver, sender, edge, in
    order), and the users (active, loyal or dormant) reached, in order with repeats, who are marked
    as touched by the sender today (a later post wins). Returns the events, the users and how many
    posts found a friend."""
    n = sender.size
    receiver = np.empty(n, dtype=np.int64)
    out_sender = np.empty(n, dtype=np.int64)
    out_edge = np.empty(n, dtype=np.int64)
    reached = np.empty(n, dtype=np.int64)
    m = r = found = 0
    for i in range(n):
        t = np.int64(target[i])
        if t < 0:
            continue
        found += 1
        s = state[t]
        if s <= AWARE:
            receiver[m] = t
            out_sender[m] = sender[i]
            out_edge[m] = edge[i]
            m += 1
        elif s <= DORMANT:
            reached[r] = t
            r += 1
            touched_by[t] = sender[i]
            touched_day[t] = day
    return receiver[:m], out_sender[:m], out_edge[:m], reached[:r], found


@jit
def _commissions(buyers, basket, day, touched_day, touched_by, upline, since, resellers, rate):
    """The reseller paid for each of today's orders: whoever's post the buyer saw today, else the
    reseller the buyer is bound to, if that reseller is active. Returns the commission of each paid
    order (in order) and the earnings per reseller (row of the sorted ``resellers``), summed in
    order as ``np.bincount`` does. A kernel: one pass instead of six gathers and a search."""
    paid = np.empty(buyers.size, dtype=np.float64)
    earned = np.zeros(resellers.size, dtype=np.float64)
    k = 0
    for i in range(buyers.size):
        b = buyers[i]
        seller = touched_by[b] if touched_day[b] == day else -1
        if seller < 0:
            seller = upline[b]
        if seller < 0 or since[seller] < 0:
            continue
        c = rate * basket[i]
        paid[k] = c
        k += 1
        earned[search_sorted(resellers, seller)] += c
    return paid[:k], earned


@jit
def _quit_chance(r, state, since, earnings, earned_today, day, w, trial_days, quit_rate, half):
    """Today's turn of the resellers ``r``: their running average of earnings moves towards today's
    (weight ``w``), and each gets the chance to give up today: 1 (no longer a user: quits), the
    quit chance ``quit_rate x (1 - incentive_response(earnings, half))`` once the trial is over, else 0."""
    p = np.empty(r.size, dtype=np.float64)
    for k in range(r.size):
        i = r[k]
        e = (1.0 - w) * earnings[i] + w * earned_today[k]
        earnings[i] = e
        s = state[i]
        if s < ACTIVE or s > DORMANT:
            p[k] = 2.0  # above any uniform: quits
        elif day - since[i] >= trial_days:
            p[k] = quit_rate * (1.0 - bh.incentive_response(e, half))
        else:
            p[k] = -1.0  # below any uniform: stays
    return p


@jit
def _keep(r, u, p, since):
    """The resellers of ``r`` who stay (``u >= p``), in order; those who quit lose the role.
    Returns the stayers and how many quit."""
    keep = np.empty(r.size, dtype=np.int64)
    m = 0
    for k in range(r.size):
        if u[k] < p[k]:
            since[r[k]] = -1
        else:
            keep[m] = r[k]
            m += 1
    return keep[:m], r.size - m


@jit
def _candidates(v, degree, min_friends, since, state, segment, propensity, scale, divisor):
    """Today's visitors who may become resellers (at least ``min_friends`` friends, not resellers,
    not dormant) and the chance of each, ``min(scale x propensity x degree / divisor, 1)`` as numpy
    computes it."""
    cand = np.empty(v.size, dtype=np.int64)
    p = np.empty(v.size, dtype=np.float64)
    m = 0
    for k in range(v.size):
        i = v[k]
        d = degree[i]
        if d >= min_friends and since[i] < 0 and state[i] != DORMANT:
            cand[m] = i
            p[m] = min(scale * propensity[segment[i]] * np.float64(d) / divisor, 1.0)
            m += 1
    return cand[:m], p[:m]


@jit
def _join(cand, u, p, since, earnings, day):
    """The candidates with ``u < p`` become resellers today: returns them sorted (the caller merges
    them into the sorted resellers with ``sim.kernels.merge_sorted``)."""
    new = np.empty(cand.size, dtype=np.int64)
    m = 0
    for k in range(cand.size):
        if u[k] < p[k]:
            i = cand[k]
            since[i] = day
            earnings[i] = 0.0
            new[m] = i
            m += 1
    return np.sort(new[:m])  # (visitors are not in order)
