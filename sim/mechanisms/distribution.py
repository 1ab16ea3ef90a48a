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
from sim.config import CHANNELS
from sim.kernels import jit
from sim.mechanisms import register
from sim.mechanisms.base import Mechanism, MechanismConfig
from sim.population import State
from sim.schema import param

DISTRIBUTION = CHANNELS.index("distribution")
NOBODY = -1


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
        earned[np.searchsorted(resellers, seller)] += c
    return paid[:k], earned


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
    earnings_half_rmb: float = param(2.0, lo=0, lo_open=True, unit="RMB per day", doc="average daily earnings that halve the chance of giving up")


@register
class Distribution(Mechanism):
    name = "distribution"
    Config = DistributionConfig
    columns = ("distribution_resellers", "distribution_recruited", "distribution_quit", "distribution_reach",
               "distribution_orders", "distribution_commissions_rmb")
    accounts = {"distribution_commissions": "incentive"}
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
        ok = target >= 0
        sender, target, edge = sender[ok], target[ok].astype(np.int64), edge[ok]
        today.count("distribution_reach", target.size)
        state = pop.state[target]
        out = state <= State.AWARE
        today.exposures.add(target[out], DISTRIBUTION, c.newcomer_conversion, sender[out], edge[out])
        today.count("invites_sent", int(np.count_nonzero(out)))
        users = (state >= State.ACTIVE) & (state <= State.DORMANT)
        reached = target[users]
        self.touched_by[reached] = sender[users]
        self.touched_day[reached] = model.day
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
        v = today.visitors
        pos = np.flatnonzero(self.touched_day[v] == model.day)
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
        self._update_earnings(model)
        self._quit(model)
        self._recruit(model)
        model.today.count("distribution_resellers", self.resellers.size)

    # ------------------------------------------------------------------ resellers
    def _update_earnings(self, model) -> None:
        r = self.resellers
        if r.size:
            w = 1.0 / self.config.earnings_days
            self.earnings[r] = (1.0 - w) * self.earnings[r] + w * self.earned_today

    def _quit(self, model) -> None:
        c, pop, r = self.config, model.pop, self.resellers
        if r.size == 0:
            return
        rng = self.rng(model)
        alive = (pop.state[r] >= State.ACTIVE) & (pop.state[r] <= State.DORMANT)
        judged = model.day - self.since[r] >= c.trial_days
        p = c.quit_rate * (1.0 - bh.incentive_response(self.earnings[r], c.earnings_half_rmb))
        quit = ~alive | (judged & (rng.random(r.size) < p))
        if quit.any():
            self.since[r[quit]] = -1
            self.resellers = r[~quit]
            model.today.count("distribution_quit", int(quit.sum()))

    def _recruit(self, model) -> None:
        c, pop, today = self.config, model.pop, model.today
        if self.resellers.size >= c.max_share * pop.count_users():
            return
        v = today.visitors
        deg = model.graph.degree[v]
        cand = v[(deg >= max(c.min_friends, 1)) & (self.since[v] < 0) & (pop.state[v] != State.DORMANT)]
        if cand.size == 0:
            return
        rng = self.rng(model)
        p = np.minimum(c.recruit_rate * self.pull * pop.param("invite_propensity", cand) * model.graph.degree[cand] / max(c.min_friends, 1), 1.0)
        new = cand[rng.random(cand.size) < p]
        if new.size:
            self.since[new] = model.day
            self.earnings[new] = 0.0
            self.resellers = np.sort(np.concatenate([self.resellers, new.astype(np.int64)]))
            today.count("distribution_recruited", new.size)
