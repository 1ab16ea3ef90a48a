"""Service quality (服务体验): time-varying shocks from logistics overload and outages.

The domain documents blame complexity and poor service for most churn (seed 001: 70 %). The steady
part of that lives in the shared behaviour model (``behaviour.satisfaction``): the sign-up friction of
every new user (``onboarding_friction``) and a constant chance that an order goes wrong
(``service_failure_rate`` / ``service_failure_shock``). This mechanism adds what varies over time:
- delivery delays under load: logistics capacity is ``capacity_headroom`` times the recent mean of
  daily orders (it follows demand with a lag of ``capacity_memory_days``); orders beyond capacity are
  delivered late, and their buyers lose ``delay_shock`` satisfaction. A festival spike or fast growth
  therefore costs goodwill exactly when the most users are watching. Late orders can be compensated
  (``delay_compensation_rmb``, an incentive cost), which softens the shock along the shared
  saturating response to money;
- outages: on each day listed in ``outage_days`` the app is down: visit log-odds fall by
  ``outage_severity`` and users who had visited in the last week lose ``outage_shock`` satisfaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim import behaviour as bh
from sim.mechanisms.base import Mechanism, MechanismConfig, register
from sim.schema import param


@dataclass(frozen=True)
class ServiceConfig(MechanismConfig):
    capacity_headroom: float = param(1.5, lo=0, hi=1000, lo_open=True, unit="multiplier", doc="delivery capacity as a multiple of the recent mean of daily orders")
    capacity_memory_days: float = param(7.0, lo=0, hi=36_500, lo_open=True, unit="days", doc="time scale over which capacity follows demand")
    min_capacity_per_1000: float = param(0.5, lo=0, hi=1e9, unit="orders per day per 1,000 people in the market", doc="capacity of a brand-new platform (0.5 is 50 orders a day at 100,000 people)")
    delay_shock: float = param(0.08, lo=0, hi=1, unit="satisfaction per late order", doc="satisfaction lost by the buyer of a late order")
    delay_compensation_rmb: float = param(0.0, lo=0, hi=10_000, unit="RMB per late order", doc="compensation paid for a late order (0: none)")
    compensation_half_rmb: float = param(5.0, lo=0, hi=1e6, lo_open=True, unit="RMB", doc="compensation that halves the shock of a late order")
    outage_days: tuple[int, ...] = param(factory=tuple, lo=0, unit="days", doc="days on which the app is down")
    outage_severity: float = param(3.0, lo=0, hi=50, unit="log-odds", doc="visit log-odds lost on an outage day")
    outage_shock: float = param(0.05, lo=0, hi=1, unit="satisfaction", doc="satisfaction lost on an outage day by users active in the last week")


@register
class Service(Mechanism):
    name = "service"
    Config = ServiceConfig
    columns = ("delivery_capacity", "late_orders", "outage")
    accounts = {"delay_compensation": "incentive"}

    def setup(self, model) -> None:
        self.capacity = self._min_capacity(model) / self.config.capacity_headroom  # in orders per day of demand
        self.keep = float(np.exp(-1.0 / self.config.capacity_memory_days))
        self.outages = frozenset(self.config.outage_days)

    def _min_capacity(self, model) -> float:
        return bh.per_1000(self.config.min_capacity_per_1000, model.market_size())

    def visit(self, model) -> None:
        if model.day not in self.outages:
            return
        c, pop = self.config, model.pop
        users = pop.alive()
        model.today.visit_boost[users] -= np.float32(c.outage_severity)
        bh.nudge_satisfaction(pop, users[pop.last_visit[users] >= model.day - 7], -c.outage_shock)
        model.today.count("outage", 1)

    def settle(self, model) -> None:
        c, today = self.config, model.today
        orders = today.buyers.size
        capacity = max(self._min_capacity(model), c.capacity_headroom * self.capacity)
        today.count("delivery_capacity", capacity)
        if orders > capacity:
            rng = self.rng(model)
            late = today.buyers[rng.random(orders) < 1.0 - capacity / orders]
            relief = bh.incentive_response(c.delay_compensation_rmb, c.compensation_half_rmb)
            bh.nudge_satisfaction(model.pop, late, -c.delay_shock * (1.0 - relief))
            model.economics.book("delay_compensation", c.delay_compensation_rmb * late.size)
            today.count("late_orders", late.size)
        self.capacity = self.capacity * self.keep + orders * (1.0 - self.keep)
