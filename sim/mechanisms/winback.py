"""Win-back (召回): messages with a coupon to users who stopped coming.

What it models: a user whose last visit was ``after_days`` days ago is contacted (SMS, push, e-mail),
and again every ``every_days`` up to ``max_contacts`` contacts while they stay away. A contact brings
the user back with a chance that falls with the time since the last visit (the shared
``reactivation_probability``: ``success`` at the moment of lapsing, halving every
``half_life_days``), raised by the coupon it carries and lower for users who have already uninstalled
(churned). A user who comes back is reactivated (``model.reactivate``), visits that day, regains some
satisfaction and holds a coupon worth ``coupon_rmb`` off one order for ``coupon_days`` days.
Each contact costs ``cost_per_contact_rmb`` (booked as re-acquisition spend); coupons are booked as an
incentive cost when used, and orders using them are credited to ``promotion``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim import behaviour as bh
from sim.compiled import jit
from sim.mechanisms.base import Mechanism, MechanismConfig, register
from sim.schema import param
from sim.vocabulary import State

RETURN_LOGIT = 12.0  # a user who decided to come back opens the app today


@dataclass(frozen=True)
class WinbackConfig(MechanismConfig):
    after_days: int = param(30, lo=1, hi=36_500, unit="days without a visit", doc="when the first contact is made")
    every_days: int = param(30, lo=1, hi=36_500, unit="days", doc="time between further contacts")
    max_contacts: int = param(1, lo=1, hi=100, unit="contacts", doc="contacts per absence")
    success: float = param(0.15, lo=0, hi=1, unit="probability", doc="chance a contact without coupon brings back a user who has just lapsed")
    half_life_days: float = param(20.0, lo=0, hi=36_500, lo_open=True, unit="days", doc="days of absence that halve the chance of success")
    coupon_rmb: float = param(10.0, lo=0, hi=10_000, unit="RMB", doc="coupon carried by the contact (0: a plain message)")
    coupon_uplift: float = param(1.0, lo=0, hi=100, unit="multiplier", doc="at a saturating coupon, success is (1 + coupon_uplift) times the plain rate")
    coupon_half_rmb: float = param(10.0, lo=0, hi=1e6, lo_open=True, unit="RMB", doc="coupon value at which its effect is half the maximum")
    coupon_days: int = param(7, lo=1, hi=365, unit="days", doc="days the coupon stays valid after the return")
    churned_factor: float = param(0.4, lo=0, hi=1, unit="multiplier", doc="success for users who uninstalled, relative to dormant ones")
    cost_per_contact_rmb: float = param(0.1, lo=0, hi=1000, unit="RMB per contact", doc="cost of a message")
    return_satisfaction: float = param(0.05, lo=0, hi=1, unit="satisfaction", doc="satisfaction regained on coming back")
    platform_share: float = param(1.0, lo=0, hi=1, unit="fraction of the coupons", doc="share of the win-back coupons the platform funds (the rest the merchants)")


@register
class Winback(Mechanism):
    name = "winback"
    Config = WinbackConfig
    columns = ("winback_contacts", "winback_recovered", "winback_coupons_used")
    accounts = {"winback_messages": "acquisition", "winback_coupons": "incentive"}
    funding = {"winback_coupons": "platform_share"}

    def setup(self, model) -> None:
        self.coupon_until = model.pop.add_column("winback_coupon_until", np.int32, fill=-1)
        self.share = None

    def _due(self, model) -> np.ndarray:
        """Users whose absence today reaches a contact day of the schedule."""
        c, pop = self.config, model.pop
        due = []
        for k in range(c.max_contacts):
            last = model.day - c.after_days - k * c.every_days
            if last < 0:
                break
            due.append(np.flatnonzero(pop.last_visit == last))  # only people who joined have visited
        return np.concatenate(due) if due else np.zeros(0, dtype=np.int64)

    def visit(self, model) -> None:
        c, pop, today = self.config, model.pop, model.today
        due = self._due(model)
        if due.size == 0:
            return
        rng = self.rng(model)
        model.economics.book("winback_messages", c.cost_per_contact_rmb * due.size)
        today.count("winback_contacts", due.size)
        idle = model.day - pop.last_visit[due]
        p = bh.reactivation_probability(idle, c.success, c.half_life_days)
        p = p * (1.0 + c.coupon_uplift * bh.incentive_response(c.coupon_rmb, c.coupon_half_rmb))
        p = np.where(pop.state[due] == State.CHURNED, p * c.churned_factor, p)
        back = due[rng.random(due.size) < np.minimum(p, 1.0)]
        if back.size == 0:
            return
        lapsed = back[pop.state[back] >= State.DORMANT]
        model.reactivate(lapsed)
        today.visit_boost[back] += np.float32(RETURN_LOGIT)
        bh.nudge_satisfaction(pop, back, c.return_satisfaction)
        if c.coupon_rmb > 0:
            self.coupon_until[back] = model.day + c.coupon_days - 1
        today.count("winback_recovered", back.size)

    def browse(self, model) -> None:
        c, pop, today = self.config, model.pop, model.today
        v = today.visitors
        self.share = None
        pos, share = _holders(v, self.coupon_until, model.day, pop.segment, pop.seg["basket_rmb"],
                              model.cfg.platform.price_level, c.coupon_rmb)
        if pos.size == 0:
            return
        self.share = np.zeros(v.size)
        self.share[pos] = today.offer_discount(pos, share)
        today.attribute(pos, "promotion")

    def purchase(self, model) -> None:
        if self.share is None:
            return
        today = model.today
        used, cost = today.subsidy(self.share)
        self.coupon_until[today.visitors[used]] = -1
        model.economics.book("winback_coupons", float(cost.sum()))
        today.count("winback_coupons_used", used.size)

# ====================================================================================== compiled passes
@jit
def _holders(v, coupon_until, day, segment, basket_rmb, price_level, coupon_rmb):
    """The positions of today's visitors holding a valid coupon and the share of their expected
    basket (``basket_rmb`` of their segment x ``price_level``) it pays, at most 0.9: one pass instead
    of six numpy calls."""
    pos = np.empty(v.size, dtype=np.int64)
    share = np.empty(v.size, dtype=np.float64)
    m = 0
    for k in range(v.size):
        i = v[k]
        if coupon_until[i] >= day:
            pos[m] = k
            share[m] = min(0.9, coupon_rmb / (basket_rmb[segment[i]] * price_level))
            m += 1
    return pos[:m], share[:m]
