"""Money: GMV, revenue, costs and profit, booked daily into named accounts.

revenue = take rate x GMV + advertising + fees; costs = incentives (rewards, coupons, subsidies,
commissions) + acquisition (paid installs) + fraud losses; profit = revenue - costs.
Each mechanism declares its accounts and their category; every account becomes a daily column
(``revenue_<account>`` or ``cost_<account>``) so the source of every yuan can be traced.
Horizon measures (CAC by channel, cohort LTV, payback day) are computed in ``sim.metrics``.
"""

from __future__ import annotations

import numpy as np

CATEGORIES = ("revenue", "incentive", "acquisition", "fraud")


class Economics:
    def __init__(self, horizon: int):
        self.horizon = horizon
        self.category: dict[str, str] = {}
        self.daily: dict[str, np.ndarray] = {}
        self.gmv = np.zeros(horizon)
        self.day = 0
        self.declare("commission", "revenue")
        self.declare("ads", "revenue")

    def declare(self, account: str, category: str) -> None:
        if category not in CATEGORIES:
            raise ValueError(f"account {account!r}: category {category!r} is not one of {CATEGORIES}")
        if self.category.get(account, category) != category:
            raise ValueError(f"account {account!r} declared as {self.category[account]!r} and {category!r}")
        self.category[account] = category
        self.daily.setdefault(account, np.zeros(self.horizon))

    def book(self, account: str, amount: float) -> None:
        """Add ``amount`` (RMB, >= 0) to ``account`` for today."""
        if not amount >= 0 or amount == float("inf"):  # catches NaN too
            from sim.schema import SimulationError

            raise SimulationError(f"day {self.day}: account {account} = {amount} (must be a finite, non-negative number)")
        self.daily[account][self.day] += amount

    def book_gmv(self, amount: float) -> None:
        self.gmv[self.day] += amount

    def total(self, category: str, day: int | slice = slice(None)) -> np.ndarray | float:
        acc = [a for a, c in self.category.items() if c == category]
        if not acc:
            return np.zeros(self.horizon)[day]
        return np.sum([self.daily[a][day] for a in acc], axis=0)

    def columns(self) -> dict[str, np.ndarray]:
        """The daily money columns (before trimming to the days simulated)."""
        revenue = self.total("revenue")
        incentive = self.total("incentive")
        acquisition = self.total("acquisition")
        fraud = self.total("fraud")
        cols = {
            "gmv": self.gmv,
            "revenue": revenue,
            "incentive_cost": incentive,
            "acquisition_cost": acquisition,
            "fraud_loss": fraud,
            "profit": revenue - incentive - acquisition - fraud,
        }
        for account, category in self.category.items():
            prefix = "revenue" if category == "revenue" else "cost"
            cols[f"{prefix}_{account}"] = self.daily[account]
        return cols
