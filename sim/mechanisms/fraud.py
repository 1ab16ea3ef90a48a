"""Fraud (羊毛党, 刷单): fake accounts and fake orders that farm the platform's incentives.

What it models: fraud rings respond to what there is to farm. Each day they weigh the haul of one
fake account on its first day — sign-up rewards (new-user coupons of the promotions mechanism,
welcome points of the loyalty programme), one subsidised order (the deepest promotion discount open
to everyone) and a day of check-in points — net of the chance of being caught and of the cost of an
account (``account_cost_rmb``), and register fake accounts at a rate that saturates in that haul
(``attack_rate`` per 1,000 users at most; ``farm_half_rmb`` is the haul at which they run at half
rate). Every attempt passes the platform's screening (:meth:`Fraud.screen`): a share
``detection_rate`` is caught, and screening costs ``check_cost_rmb`` x detection_rate / (1 -
detection_rate) per event (catching the last fraudsters costs ever more). Accounts that pass farm
their sign-up rewards, check in every day while the loyalty programme pays, and place fake orders
during promotions; each fake order is screened again, and a caught order bans its account. A sweep of
the existing fake accounts screens ``sweep_rate`` of them again each day.

Everything farmed by undetected fraud is booked in the ``fraud_farmed`` account, the screening cost in
``fraud_screening`` (both of category ``fraud``, so the daily ``fraud_loss`` column is the whole cost
of fraud). Fake accounts are not people of the population: they are counted apart
(``fake_accounts``) and never appear among users, orders or GMV.

Referral reward abuse (fake invitees) belongs to the referral mechanism, which screens its fake
invitations with the same :meth:`Fraud.screen` (and may register accounts that pass with
:meth:`Fraud.add_fake_accounts`), so both draw on one detection rate and one screening cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim import behaviour as bh
from sim.mechanisms.base import Mechanism, MechanismConfig, register
from sim.schema import param


@dataclass(frozen=True)
class FraudConfig(MechanismConfig):
    detection_rate: float = param(0.5, lo=0, hi=0.99, unit="probability", doc="chance the platform's screening catches a fraudulent event")
    check_cost_rmb: float = param(0.2, lo=0, hi=1000, unit="RMB per screened event", doc="screening cost per event at detection rate 0.5 (x odds of the rate in general)")
    attack_rate: float = param(10.0, lo=0, hi=1000, unit="fake sign-ups per 1,000 users per day", doc="attempts of fraud rings at a saturating haul")
    farm_half_rmb: float = param(10.0, lo=0, hi=1e6, lo_open=True, unit="RMB", doc="expected haul of a fake account at which rings run at half their rate")
    account_cost_rmb: float = param(1.0, lo=0, hi=1000, unit="RMB per fake account", doc="what a fake account costs the ring (phone numbers, devices)")
    fake_orders_per_account: float = param(0.3, lo=0, hi=100, unit="orders per fake account per day", doc="fake orders placed during promotions at a saturating subsidy")
    sweep_rate: float = param(0.05, lo=0, hi=1, unit="fraction per day", doc="share of existing fake accounts screened again each day")


@register
class Fraud(Mechanism):
    name = "fraud"
    Config = FraudConfig
    columns = ("fake_accounts_created", "fake_accounts_banned", "fake_accounts", "fake_orders", "fraud_screened", "fraud_caught")
    accounts = {"fraud_farmed": "fraud", "fraud_screening": "fraud"}

    def setup(self, model) -> None:
        self.fakes = 0  # undetected fake accounts
        c = self.config
        self.cost_per_check = c.check_cost_rmb * c.detection_rate / (1.0 - c.detection_rate)

    # ------------------------------------------------------------------ the shared interface
    def screen(self, model, attempts: int, rng: np.random.Generator) -> int:
        """Screen ``attempts`` fraudulent events with the caller's ``rng``; returns how many were caught.

        Books the screening cost (``fraud_screening``). Used by this mechanism and by others whose
        rewards are abused (the referral mechanism's fake invitations)."""
        attempts = int(attempts)
        if attempts <= 0:
            return 0
        caught = int(rng.binomial(attempts, self.config.detection_rate))
        model.economics.book("fraud_screening", attempts * self.cost_per_check)
        model.today.count("fraud_screened", attempts)
        model.today.count("fraud_caught", caught)
        return caught

    def add_fake_accounts(self, model, count: int) -> None:
        """Register fake accounts that passed screening elsewhere (they are swept like these)."""
        self.fakes += int(count)
        model.today.count("fake_accounts_created", int(count))

    def loot(self, model) -> dict[str, float]:
        """What there is to farm today (RMB): at sign-up, per subsidised order, per day of check-ins."""
        out = {"signup": 0.0, "order": 0.0, "daily": 0.0}
        for m in model.mechanisms:
            for key, value in m.farmable(model).items():
                out[key] += value
        return out

    # ------------------------------------------------------------------ the daily round
    def settle(self, model) -> None:
        c, today = self.config, model.today
        rng = self.rng(model)
        loot = self.loot(model)
        users = model.pop.count_users()
        farmed = 0.0
        # New fake accounts, in proportion to the expected first-day haul.
        haul = (1.0 - c.detection_rate) * (loot["signup"] + loot["order"] + loot["daily"]) - c.account_cost_rmb
        rate = c.attack_rate * users / 1000.0 * float(bh.incentive_response(max(haul, 0.0), c.farm_half_rmb))
        attempts = int(rng.poisson(rate))
        passed = attempts - self.screen(model, attempts, rng)
        self.fakes += passed
        farmed += passed * loot["signup"]
        today.count("fake_accounts_created", passed)
        # Check-in farming by every fake account.
        farmed += self.fakes * loot["daily"]
        # Fake orders during promotions; a caught order bans its account.
        if loot["order"] > 0 and self.fakes:
            lam = self.fakes * c.fake_orders_per_account * float(bh.incentive_response(loot["order"], c.farm_half_rmb))
            orders = int(rng.poisson(lam))
            caught = self.screen(model, orders, rng)
            farmed += (orders - caught) * loot["order"]
            banned = min(caught, self.fakes)
            self.fakes -= banned
            today.count("fake_orders", orders)
            today.count("fake_accounts_banned", banned)
        # The sweep: a share of the existing fake accounts is screened again.
        swept = self.screen(model, int(rng.binomial(self.fakes, c.sweep_rate)), rng) if self.fakes else 0
        self.fakes -= swept
        today.count("fake_accounts_banned", swept)
        model.economics.book("fraud_farmed", farmed)
        today.count("fake_accounts", self.fakes)
