"""Loyalty programme (会员体系): points, daily check-ins, membership tiers and paid membership.

What it models (seed document 003: tiers regular, silver, gold, points; seed 001: loyal users
repurchase about 40 % more, membership about +25 % repurchase):
- points: every RMB spent earns ``points_per_rmb`` points (more in higher tiers), new users get
  ``welcome_points``, worth ``point_value_rmb`` each; a visitor holding at least ``redeem_min_points``
  pays up to ``max_redeem_share`` of an order with points (with chance ``redeem_propensity``). The
  redeemed value is booked as an incentive cost when spent; the value of points held by users (not
  churned) is reported daily as ``points_liability`` (points of churned users lapse: breakage);
- check-ins (签到): a visitor checks in with chance ``checkin_rate`` and earns ``checkin_points``, more
  for a longer unbroken streak of daily check-ins (up to ``streak_cap`` days); a running streak raises
  the next day's visit log-odds (loss aversion: nobody wants to break a streak);
- tiers: lifetime spend of ``silver_spend_rmb`` / ``gold_spend_rmb`` makes a user silver / gold; a tier
  multiplies churn hazard (``*_hazard_ratio``) and purchase intensity (``*_repurchase``), and an upgrade
  raises satisfaction;
- paid membership (付费会员, optional): a visitor joins for ``fee_rmb`` per ``period_days`` with a chance
  that grows with the expected saving (``member_discount`` x their expected spend per period against
  the fee); members get the discount on every order, churn less (``paid_hazard_ratio``, partly the
  sunk cost) and renew with chance ``renewal`` if still engaged. Fees are revenue; discounts incentives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.compiled import jit
from sim.graph.csr import unique_sorted
from sim.kernels import nonzero_positions
from sim.mechanisms.base import Mechanism, MechanismConfig, register
from sim.schema import param, require
from sim.vocabulary import ACTIVE, DORMANT, State

TIERS = ("regular", "silver", "gold")


@dataclass(frozen=True)
class LoyaltyConfig(MechanismConfig):
    points_per_rmb: float = param(1.0, lo=0, hi=1000, unit="points per RMB", doc="points earned per RMB spent by a regular member")
    point_value_rmb: float = param(0.01, lo=0, hi=100, unit="RMB per point", doc="what a point is worth when redeemed")
    welcome_points: float = param(200.0, lo=0, hi=1e7, unit="points", doc="points given to every new user")
    redeem_min_points: float = param(500.0, lo=0, hi=1e9, unit="points", doc="balance needed before points can be redeemed")
    max_redeem_share: float = param(0.3, lo=0, hi=1, unit="fraction of an order", doc="largest share of an order payable with points")
    redeem_propensity: float = param(0.5, lo=0, hi=1, unit="probability per visit", doc="chance a visitor with enough points uses them")
    checkin_rate: float = param(0.5, lo=0, hi=1, unit="probability per visit", doc="chance a visitor checks in (签到)")
    checkin_points: float = param(10.0, lo=0, hi=1e6, unit="points", doc="points for a check-in on the first day of a streak")
    streak_bonus: float = param(0.2, lo=0, hi=10, unit="fraction per day", doc="extra check-in points per further day of the streak")
    streak_cap: int = param(7, lo=1, hi=365, unit="days", doc="streak length beyond which the bonus and the pull stop growing")
    streak_visit_uplift: float = param(0.4, lo=0, hi=10, unit="log-odds", doc="visit log-odds added the day after a check-in, at a full streak")
    silver_spend_rmb: float = param(300.0, lo=0, hi=1e9, unit="RMB", doc="lifetime spend that makes a user silver")
    gold_spend_rmb: float = param(1000.0, lo=0, hi=1e9, unit="RMB", doc="lifetime spend that makes a user gold")
    silver_hazard_ratio: float = param(0.85, lo=0, hi=1, unit="hazard ratio", doc="churn hazard of silver members relative to regular")
    gold_hazard_ratio: float = param(0.65, lo=0, hi=1, unit="hazard ratio", doc="churn hazard of gold members relative to regular")
    silver_repurchase: float = param(1.1, lo=1, hi=10, unit="multiplier", doc="purchase intensity of silver members")
    gold_repurchase: float = param(1.25, lo=1, hi=10, unit="multiplier", doc="purchase intensity of gold members (seed 001: membership +25 % repurchase)")
    silver_points_multiplier: float = param(1.25, lo=1, hi=10, unit="multiplier", doc="points earned per RMB by silver members relative to regular")
    gold_points_multiplier: float = param(1.5, lo=1, hi=10, unit="multiplier", doc="points earned per RMB by gold members relative to regular")
    upgrade_satisfaction: float = param(0.05, lo=0, hi=1, unit="satisfaction", doc="satisfaction gained on reaching a higher tier")
    paid_membership: bool = param(False, doc="offer a paid membership (fee, discount on every order)")
    fee_rmb: float = param(15.0, lo=0, hi=1e6, lo_open=True, unit="RMB per period", doc="membership fee")
    period_days: int = param(30, lo=1, hi=3650, unit="days", doc="length of a paid membership period")
    member_discount: float = param(0.05, lo=0, hi=0.9, unit="fraction of price", doc="discount members get on every order")
    uptake: float = param(0.02, lo=0, hi=1, unit="probability per visit", doc="chance a visitor joins when the expected saving far exceeds the fee")
    renewal: float = param(0.7, lo=0, hi=1, unit="probability", doc="chance an engaged member renews at the end of a period")
    paid_hazard_ratio: float = param(0.75, lo=0, hi=1, unit="hazard ratio", doc="churn hazard of paid members relative to others of their tier")
    paid_repurchase: float = param(1.15, lo=1, hi=10, unit="multiplier", doc="purchase intensity of paid members (they buy here to use what they paid for)")
    platform_share: float = param(1.0, lo=0, hi=1, unit="fraction of member discounts", doc="share of the member discounts the platform funds (points are always its own); 1, as for 88VIP's platform-wide discounts")

    def check(self, path: str) -> None:
        require(self.gold_spend_rmb >= self.silver_spend_rmb, f"{path}.gold_spend_rmb", self.gold_spend_rmb,
                f"must be at least silver_spend_rmb ({self.silver_spend_rmb})")


@register
class Loyalty(Mechanism):
    name = "loyalty"
    Config = LoyaltyConfig
    columns = ("points_issued", "points_redeemed", "points_liability", "checkins", "members_regular", "members_silver",
               "members_gold", "paid_members", "membership_fees")
    accounts = {"loyalty_points": "incentive", "member_discounts": "incentive", "membership_fees": "revenue"}
    funding = {"member_discounts": "platform_share"}

    def setup(self, model) -> None:
        c, pop = self.config, model.pop
        self.points = pop.add_column("loyalty_points", np.float64)
        self.tier = pop.add_column("loyalty_tier", np.int8)
        self.streak = pop.add_column("checkin_streak", np.int16)
        self.last_checkin = pop.add_column("last_checkin_day", np.int32, fill=-10)
        self.member_until = pop.add_column("paid_member_until", np.int32, fill=-1)
        self.hazard = np.array([1.0, c.silver_hazard_ratio, c.gold_hazard_ratio], dtype=np.float32)
        self.repurchase = np.array([1.0, c.silver_repurchase, c.gold_repurchase])
        self.earn = c.points_per_rmb * np.array([1.0, c.silver_points_multiplier, c.gold_points_multiplier])
        self.redeem_share = self.member_share = None
        self.checked_in = np.zeros(0, dtype=np.int64)  # who checked in on the last day
        # Expected spend per period of each segment: what a membership would save them.
        seg = pop.seg
        self.period_spend = seg["need_rate"] * seg["basket_rmb"] * model.cfg.platform.price_level * c.period_days

    def farmable(self, model) -> dict[str, float]:
        """What a fake account could farm (RMB): welcome points, and check-in points per day."""
        c = self.config
        full_streak = c.checkin_points * (1.0 + c.streak_bonus * (c.streak_cap - 1))
        return {"signup": c.welcome_points * c.point_value_rmb, "daily": full_streak * c.point_value_rmb}

    def _members(self, idx: np.ndarray, day: int) -> np.ndarray:
        return self.member_until[idx] >= day

    # ------------------------------------------------------------------ stage hooks
    def adoption(self, model) -> None:
        new = model.today.new_users
        if new.size and self.config.welcome_points:
            self.points[new] += self.config.welcome_points
            model.today.count("points_issued", new.size * self.config.welcome_points * self.config.point_value_rmb)

    def visit(self, model) -> None:
        c, pop = self.config, model.pop
        if c.streak_visit_uplift == 0:
            return
        # yesterday's check-ins, if they are still users
        _streak_pull(self.checked_in, pop.state, self.streak, c.streak_cap, c.streak_visit_uplift, model.today.visit_boost)

    def browse(self, model) -> None:
        c, pop, today, day = self.config, model.pop, model.today, model.day
        v = today.visitors
        self.redeem_share = self.member_share = None
        if v.size == 0:
            return
        rng = self.rng(model)
        u = rng.random(v.size)  # drawn here, used below as before: nothing else draws in between
        members = (self.tier, self.points, self.member_until)
        terms = (self.repurchase, c.paid_repurchase, max(c.redeem_min_points, 1e-9), c.redeem_propensity, c.point_value_rmb,
                 c.paid_membership)
        basket = (pop.segment, pop.seg["basket_rmb"], model.cfg.platform.price_level, c.max_redeem_share)
        factor, member, redeem, share = _visitor_offers(v, day, u, members, terms, basket)
        today.boost_relevance(slice(None), factor)  # every visitor
        if c.paid_membership and member.any():
            pos = np.flatnonzero(member)
            self.member_share = np.zeros(v.size)
            self.member_share[pos] = today.offer_discount(pos, c.member_discount)
        if redeem.size and c.point_value_rmb > 0:
            self.redeem_share = np.zeros(v.size)
            self.redeem_share[redeem] = today.offer_discount(redeem, share)

    def purchase(self, model) -> None:
        c, today = self.config, model.today
        if self.member_share is not None:
            _, cost = today.subsidy(self.member_share)
            model.economics.book("member_discounts", float(cost.sum()))
        if self.redeem_share is not None:
            used, cost = today.subsidy(self.redeem_share)
            # Points pay at most what the buyer holds (the expected basket may differ from the order).
            _redeem(today.visitors[used], cost, self.points, c.point_value_rmb)
            model.economics.book("loyalty_points", float(cost.sum()))
            today.count("points_redeemed", float(cost.sum()))

    def retention(self, model) -> None:
        pop, day = model.pop, model.day
        _hazard_ratios(pop.user_index, self.tier, self.hazard, self.member_until, day, self.config.paid_membership,
                       np.float32(self.config.paid_hazard_ratio), model.today.hazard_ratio)

    def settle(self, model) -> None:
        c, pop, today, day = self.config, model.pop, model.today, model.day
        rng = self.rng(model)
        if today.buyers.size:
            # points, then tiers (before the check-ins now: these touch neither tiers nor satisfaction)
            earned = _settle_orders(today.buyers, today.basket, self.tier, self.earn, self.points, pop.spend,
                                    pop.satisfaction, c.silver_spend_rmb, c.gold_spend_rmb, np.float32(c.upgrade_satisfaction))
            today.count("points_issued", float(earned.sum()) * c.point_value_rmb)
        self._checkins(model, rng)
        if c.paid_membership:
            self._paid_membership(model, rng)
        users = pop.user_index
        today.count("points_liability", float(self.points[users].sum()) * c.point_value_rmb)
        counts, members = _census(users, self.tier, self.member_until, day, c.paid_membership)
        for k, name in enumerate(TIERS):
            today.count(f"members_{name}", counts[k])
        today.count("paid_members", members)

    def _checkins(self, model, rng: np.random.Generator) -> None:
        c, day, v = self.config, model.day, model.today.visitors
        who, pts = _check_ins(v, rng.random(v.size), c.checkin_rate, day, self.streak, self.last_checkin, self.points,
                             c.checkin_points, c.streak_bonus, c.streak_cap)  # visitors are distinct people
        self.checked_in = who
        if who.size == 0:
            return
        model.today.count("checkins", who.size)
        model.today.count("points_issued", float(pts.sum()) * c.point_value_rmb)

    def _paid_membership(self, model, rng: np.random.Generator) -> None:
        c, pop, day, today = self.config, model.pop, model.day, model.today
        users = pop.user_index  # (read at once: no copy needed)
        due = users[self.member_until[users] == day]  # last day of a period: renew or lapse
        engaged = (pop.state[due] == State.ACTIVE) | (pop.state[due] == State.LOYAL)
        renew = due[engaged & (rng.random(due.size) < c.renewal)]
        v = unique_sorted(today.visitors)
        v = v[~self._members(v, day)]
        saving = c.member_discount * self.period_spend[pop.segment[v]] / c.fee_rmb
        join = v[rng.random(v.size) < c.uptake * saving / (1.0 + saving)]
        self.member_until[renew] = day + c.period_days
        self.member_until[join] = day + c.period_days
        fees = c.fee_rmb * (renew.size + join.size)
        model.economics.book("membership_fees", fees)
        today.count("membership_fees", fees)

# ====================================================================================== compiled passes
@jit
def _check_in(who, day, streak, last_checkin, points, checkin_points, streak_bonus, streak_cap):
    """Check-ins of the distinct people ``who`` today: the streak grows if they checked in
    yesterday, else restarts at 1; each earns ``checkin_points`` x (1 + bonus x (days - 1)), days capped.
    Returns the points of each. A kernel: one pass instead of five gathers and three scatters."""
    pts = np.empty(who.size, dtype=np.float64)
    for i in range(who.size):
        p = who[i]
        k = streak[p] + 1 if last_checkin[p] == day - 1 else 1
        streak[p] = k
        last_checkin[p] = day
        pts[i] = checkin_points * (1.0 + streak_bonus * (min(streak[p], streak_cap) - 1))
        points[p] += pts[i]
    return pts


@jit
def _check_ins(v, u, rate, day, streak, last_checkin, points, checkin_points, streak_bonus, streak_cap):
    """The visitors ``v`` whose uniform ``u`` is below ``rate`` check in (:func:`_check_in`): returns
    who and the points of each, in one call instead of a draw's mask, a gather and the kernel."""
    who = np.empty(v.size, dtype=v.dtype)
    m = 0
    for i in range(v.size):
        if u[i] < rate:
            who[m] = v[i]
            m += 1
    who = who[:m]
    return who, _check_in(who, day, streak, last_checkin, points, checkin_points, streak_bonus, streak_cap)


@jit
def _earn(buyers, basket, tier, earn, points):
    """Points for today's orders: ``basket x earn[tier]`` each, added to the buyer's points in order
    (as ``np.add.at``). Returns the points of each order."""
    earned = np.empty(buyers.size, dtype=np.float64)
    for k in range(buyers.size):
        p = buyers[k]
        e = basket[k] * earn[tier[p]]
        earned[k] = e
        points[p] += e
    return earned


@jit
def _settle_orders(buyers, basket, tier, earn, points, spend, satisfaction, silver, gold, gain):
    """Today's orders in one call: their points (:func:`_earn`, at the tiers before today's
    upgrades), then the tiers they reach (:func:`_upgrade`) while the buyers' tiers are in cache.
    Returns the points of each order."""
    earned = _earn(buyers, basket, tier, earn, points)
    _upgrade(buyers, spend, tier, satisfaction, silver, gold, gain)
    return earned


@jit
def _census(users, tier, member_until, day, paid):
    """Users per tier (as ``np.bincount``) and how many are paid members today (none without a paid
    membership, ``paid`` false: ``member_until`` is not read): one pass."""
    counts = np.zeros(3, dtype=np.int64)
    members = 0
    for i in users:
        counts[tier[i]] += 1
        if paid and member_until[i] >= day:
            members += 1
    return counts, members


@jit
def _streak_pull(on, state, streak, cap, uplift, visit_boost):
    """Yesterday's check-ins ``on`` (distinct people) who are still users get ``uplift x
    min(streak, cap) / cap`` visit log-odds today, in float32 as numpy adds it. One pass instead of
    a mask, two gathers and the arithmetic."""
    for i in on:
        s = state[i]
        if s >= ACTIVE and s <= DORMANT:
            x = uplift * np.float64(min(streak[i], cap)) / np.float64(cap)
            visit_boost[i] += np.float32(x)


@jit
def _hazard_ratios(users, tier, hazard, member_until, day, paid, paid_ratio32, hazard_ratio):
    """Users ``users``' churn hazard x their tier's ratio (``hazard``, float32), x ``paid_ratio32``
    for paid members (when ``paid``), in float32; users whose ratio is 1 are left alone. One pass
    instead of gathers, a mask and a scatter over all users."""
    for i in users:
        r = hazard[tier[i]]
        if paid and member_until[i] >= day:
            r = r * paid_ratio32
        if r != 1.0:
            hazard_ratio[i] *= r


@jit
def _redeem(buyers, cost, points, point_value):
    """Points pay for the redeemed orders of ``buyers``: each cost is capped at what the buyer's
    points are worth (in place), the points are taken (in order, as ``np.subtract.at``) and kept at
    least 0. Only buyers' points can fall below 0, so clipping them is numpy's clip of the whole
    column, without the pass over everyone."""
    for k in range(buyers.size):
        cost[k] = min(cost[k], points[buyers[k]] * point_value)
    for k in range(buyers.size):
        points[buyers[k]] -= cost[k] / point_value
    for k in range(buyers.size):
        p = buyers[k]
        points[p] = max(points[p], 0.0)


@jit
def _upgrade(buyers, spend, tier, satisfaction, silver, gold, gain):
    """Tiers of today's buyers (repeats allowed) from their lifetime spend: a buyer who reaches a
    higher tier moves up and gains ``gain`` satisfaction (within [0, 1]), once however many orders
    they placed (a repeat finds the tier already raised). One pass in place of a sort for
    distinct buyers and several gathers. Returns how many moved up."""
    up = 0
    for i in range(buyers.size):
        p = buyers[i]
        x = spend[p]
        new = 2 if x >= gold else (1 if x >= silver else 0)
        if new > tier[p]:
            tier[p] = new
            s = satisfaction[p] + gain
            satisfaction[p] = min(max(s, np.float32(0.0)), np.float32(1.0))
            up += 1
    return up


@jit
def _visitor_terms(v, day, u, members, terms):
    """Per visitor: the purchase-intensity factor of their tier (x ``paid_repurchase`` for paid
    members), whether they are paid members, whether they redeem points today (enough points and
    ``u[i]`` below ``propensity``) and what their points are worth (RMB). ``members``: the columns
    (tier, points, member_until); ``terms``: (repurchase by tier, paid_repurchase, min_points,
    propensity, point_value, paid). Without a paid membership (``paid`` false) nobody is a member
    and ``member_until`` is not read."""
    tier, points, member_until = members
    repurchase, paid_repurchase, min_points, propensity, point_value, paid = terms
    n = v.size
    factor = np.empty(n, dtype=np.float64)
    member = np.empty(n, dtype=np.bool_)
    can = np.empty(n, dtype=np.bool_)
    value = np.empty(n, dtype=np.float64)
    for i in range(n):
        p = v[i]
        f = repurchase[tier[p]]
        m = paid and member_until[p] >= day
        member[i] = m
        factor[i] = f * paid_repurchase if m else f
        x = points[p]
        value[i] = x * point_value
        can[i] = (x >= min_points) & (u[i] < propensity)
    return factor, member, can, value


@jit
def _visitor_offers(v, day, u, members, terms, basket):
    """:func:`_visitor_terms`, with the redeemers as positions and the share of their expected basket
    (``basket``: segment, basket_rmb by segment, price_level, max_share; the basket of their segment x
    ``price_level``) their points pay, at most ``max_share``: returns the factors, the members, the
    positions and the shares."""
    segment, basket_rmb, price_level, max_share = basket
    factor, member, can, value = _visitor_terms(v, day, u, members, terms)
    pos = nonzero_positions(can)
    share = np.empty(pos.size, dtype=np.float64)
    for k in range(pos.size):
        i = pos[k]
        share[k] = min(max_share, value[i] / (basket_rmb[segment[v[i]]] * price_level))
    return factor, member, pos, share
