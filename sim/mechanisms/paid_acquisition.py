"""Paid acquisition (买量): a daily ad budget buys installs at a rising marginal cost.

What it models: the average cost per install grows with daily volume (auction pressure: the
cheapest audiences are bought first) and as the addressable market shrinks. With average
CAC(n) = cac_rmb x (1 + n / volume_half) / remaining^saturation, spending the budget B on n installs
solves n x CAC(n) = B, a quadratic with a closed form; the marginal cost d(spend)/dn rises with B.
The budget and the auction's depth (``volume_half``) are set per 1,000 people in the market, so the
same settings buy the same share of the market at 10,000 and 10,000,000 people. A budget can also
follow revenue (``revenue_share``: marketing as a share of the last four weeks' revenue), as a
platform's marketing does over years.
Paid users are of lower quality than referred ones (``frailty_multiplier`` > 1): they did not come
through a friend and were bought partly with incentives they respond to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim import behaviour as bh
from sim.mechanisms.base import Mechanism, MechanismConfig, register
from sim.schema import param
from sim.vocabulary import CHANNELS

PAID = CHANNELS.index("paid")
REVENUE_WINDOW = 28  # days of revenue a budget that follows revenue looks back on


@dataclass(frozen=True)
class PaidAcquisitionConfig(MechanismConfig):
    budget_per_1000: float = param(5.0, lo=0, hi=1e7, unit="RMB per day per 1,000 people in the market", doc="ad spend per day for each 1,000 people in the addressable market (5 is 500 RMB a day at 100,000 people)")
    revenue_share: float = param(0.0, lo=0, hi=10, unit="fraction of revenue", doc="ad spend that follows revenue: this share of the mean daily revenue of the last four weeks is added to the budget (Pinduoduo's sales and marketing came to 100 % of revenue in 2018, 69 % in 2020 and 48 % in 2021, annual reports)")
    cac_rmb: float = param(25.0, lo=0, hi=1e6, lo_open=True, unit="RMB per install", doc="cost per install at low volume in a fresh market")
    volume_half_per_1000: float = param(2.0, lo=0, hi=1e6, lo_open=True, unit="installs per day per 1,000 people in the market", doc="daily installs at which the average cost per install has doubled: the depth of the ad auction grows with the market (2 is 200 installs a day at 100,000 people)")
    saturation: float = param(1.0, lo=0, hi=10, unit="exponent", doc="cost per install x (1 / remaining share of the market)^saturation")
    frailty_multiplier: float = param(1.3, lo=0, hi=100, lo_open=True, unit="multiplier", doc="churn frailty of paid users relative to organic ones")
    start_day: int = param(0, lo=0, hi=1_000_000, unit="day", doc="first day of the campaign")
    end_day: int = param(100_000, lo=0, hi=1_000_000, unit="day", doc="last day of the campaign")


@register
class PaidAcquisition(Mechanism):
    name = "paid_acquisition"
    Config = PaidAcquisitionConfig
    columns = ("paid_installs_bought",)
    accounts = {"paid_ads": "acquisition"}
    channels = ("paid",)

    def setup(self, model) -> None:
        model.channel_frailty[PAID] *= self.config.frailty_multiplier
        self.avg_cac = self.config.cac_rmb

    def exposure(self, model) -> None:
        c = self.config
        if not c.start_day <= model.day <= c.end_day:
            return
        rng = self.rng(model)
        remaining = model.pop.count_non_users() / model.pop.market_size()
        market = model.market_size()
        budget = bh.per_1000(c.budget_per_1000, market)
        if c.revenue_share and model.day > 0:
            recent = slice(max(0, model.day - REVENUE_WINDOW), model.day)
            budget += c.revenue_share * float(np.mean(model.economics.total("revenue", recent)))
        n, self.avg_cac = installs_for_budget(budget, c.cac_rmb,
                                              bh.per_1000(c.volume_half_per_1000, market), remaining, c.saturation)
        k = int(bh.stochastic_round(np.array([n]), rng.random(1))[0])
        model.today.exposures.add(model.sample_non_users(k, rng), PAID, 1.0)

    def adoption(self, model) -> None:
        today = model.today
        joined = int(np.count_nonzero(model.pop.channel[today.new_users] == PAID))
        if joined:
            model.economics.book("paid_ads", joined * self.avg_cac)
            today.count("paid_installs_bought", joined)


def installs_for_budget(budget: float, cac: float, volume_half: float, remaining: float, saturation: float) -> tuple[float, float]:
    """Expected installs bought with ``budget`` today, and their average cost per install."""
    if budget <= 0 or remaining <= 0:
        return 0.0, cac
    base = cac / remaining**saturation
    n = 0.5 * volume_half * (np.sqrt(1.0 + 4.0 * budget / (base * volume_half)) - 1.0)
    return float(n), float(base * (1.0 + n / volume_half))
