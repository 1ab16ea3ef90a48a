"""Multi-year dynamics: a market that grows, demand that grows with tenure and with the catalogue,
and marketing that follows revenue."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim
from sim.schema import ConfigError

BASE = ["population.size=6000", "horizon=240"]
GROWING = "population.entry=[{day:0,share:0.4},{day:200,share:1}]"


def daily(*overrides: str, seed: int = 0) -> pd.DataFrame:
    return sim.run("default", [*BASE, *overrides], seed=seed).daily


def test_the_market_follows_its_curve_and_nobody_outside_it_joins():
    d = daily(GROWING)
    expected = np.interp(d["day"], [0, 200], [0.4, 1.0]) * 6000
    assert np.all(np.abs(d["market_size"] - expected) < 4 * np.sqrt(6000 * 0.25) + 1)
    assert d["market_size"].is_monotonic_increasing and d["market_size"].iloc[-1] == 6000
    # every person counted is in the market: the states add up to it
    states = d[[f"n_{s}" for s in ("potential", "aware", "active", "loyal", "dormant", "churned")]].sum(axis=1)
    assert (states == d["market_size"]).all()


def test_settings_per_1000_people_follow_the_market():
    """The ad budget is per 1,000 people in the market: spend follows the market as it grows."""
    d = daily(GROWING, "mechanisms.referral.enabled=false", "population.size=40000")
    budget = 5.0 * d["market_size"] / 1000  # the default 5 RMB a day per 1,000 people
    for days in (slice(1, 40), slice(90, 130), slice(200, 240)):
        assert d["acquisition_cost"].iloc[days].mean() == pytest.approx(budget.iloc[days].mean(), rel=0.1), days


def test_a_market_there_from_the_start_is_no_market_at_all():
    """A curve at 1 from day 0 draws entry days (its own stream) but changes nothing else."""
    a, b = daily(), daily("population.entry=[{day:0,share:1}]")
    pd.testing.assert_frame_equal(a, b, check_exact=True)


@pytest.mark.parametrize("curve, message", [
    ("[{day:10,share:0.5},{day:5,share:1}]", "days must increase"),
    ("[{day:0,share:0.8},{day:5,share:0.5},{day:9,share:1}]", "shares must not fall"),
    ("[{day:0,share:0.5},{day:100,share:0.9}]", "the last share must be 1"),
])
def test_a_curve_that_cannot_be_a_market_is_refused(curve, message):
    with pytest.raises(ConfigError) as err:
        sim.compose("default", [f"population.entry={curve}"])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_growing_market_is_refused_for_classic_diffusion_models():
    with pytest.raises(ConfigError, match="platform's own adoption"):
        sim.compose("ic", [GROWING])


def spend_per_buyer(*overrides: str) -> float:
    d = daily(*overrides, "horizon=400")
    return float(d["gmv_365"].iloc[-1] / d["active_buyers_365"].iloc[-1])


def test_demand_grows_with_tenure_and_the_catalogue():
    base = spend_per_buyer()
    assert spend_per_buyer("behaviour.purchase.tenure_elasticity=3") > 1.1 * base
    assert spend_per_buyer("catalogue.breadth_growth=1") > 1.1 * base


def test_without_growth_settings_demand_is_untouched():
    a = daily()
    b = daily("behaviour.purchase.tenure_elasticity=0", "catalogue.breadth_growth=0",
              "mechanisms.paid_acquisition.revenue_share=0")
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_marketing_that_follows_revenue_spends_more_when_revenue_is_higher():
    base = daily()
    follow = daily("mechanisms.paid_acquisition.revenue_share=0.5")
    assert (follow["acquisition_cost"].iloc[1:] >= base["acquisition_cost"].iloc[1:] * 0.99).mean() > 0.9
    assert follow["acquisition_cost"].sum() > 1.2 * base["acquisition_cost"].sum()
    assert follow["cumulative_users"].iloc[-1] > base["cumulative_users"].iloc[-1]
