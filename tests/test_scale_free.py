"""Settings that scale with the market: the same scenario means the same at any market size."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.config import SimConfig
from sim.mechanisms import REGISTRY
from sim.schema import ConfigError, leaves

#: Units of amounts that only make sense for one market size (an ad budget in RMB a day is large in a
#: town and nothing in a country). Settings are per person, shares or per 1,000 people instead.
ABSOLUTE_UNITS = {"RMB per day", "installs per day", "orders per day", "people per day", "people per stream day",
                  "RMB per stream day", "users"}


def all_leaves():
    yield from leaves(SimConfig)
    for name, cls in REGISTRY.items():
        yield from leaves(cls.Config, f"mechanisms.{name}")


def test_no_setting_is_an_absolute_amount_per_day():
    absolute = [key for key, _tp, f in all_leaves() if f.metadata.get("unit") in ABSOLUTE_UNITS]
    assert absolute == []


def test_every_per_1000_setting_says_so_in_its_unit():
    for key, _tp, f in all_leaves():
        if key.endswith("_per_1000"):
            assert "per 1,000 people in the market" in f.metadata["unit"], key


@pytest.mark.parametrize("override, new", [
    ("adoption.seed_users=50", "adoption.seed_fraction"),
    ("mechanisms.paid_acquisition.daily_budget=500", "budget_per_1000"),
    ("mechanisms.content.live_reach=3000", "live_reach_share"),
    ("mechanisms.service.min_capacity=50", "min_capacity_per_1000"),
])
def test_an_old_absolute_key_is_refused_with_its_replacement(override, new):
    with pytest.raises(ConfigError) as err:
        sim.compose("default", [override])
    assert f"renamed to {new}" in str(err.value) and "\n" not in str(err.value)


def shares(people: int, seeds=range(3)) -> tuple[float, float]:
    """Mean share of the market acquired, and mean share of users who came through ads."""
    acquired, paid = [], []
    for seed in seeds:
        r = sim.run("default", [f"population.size={people}", "horizon=150"], seed=seed)
        acquired.append(r.summary["users_total"] / people)
        paid.append(r.summary["new_paid"] / r.summary["users_total"])
    return float(np.mean(acquired)), float(np.mean(paid))


@pytest.mark.slow
def test_the_default_scenario_takes_the_same_share_of_a_small_and_a_large_market():
    """Ten times the people: the same share of the market acquired and the same channel mix (with
    absolute budgets and seed users the small market was 74 % acquired, 44 % through ads; the large
    one 43 % and 12 %)."""
    small, large = shares(10_000), shares(80_000)
    assert small[0] == pytest.approx(large[0], rel=0.15), (small, large)
    assert small[1] == pytest.approx(large[1], abs=0.04), (small, large)


def test_seed_users_are_a_share_of_the_market():
    for people in (2_000, 20_000):
        model = sim.GrowthModel(sim.compose("default", [f"population.size={people}", "adoption.seed_fraction=0.01",
                                                        "adoption.external_rate=0", "mechanisms.paid_acquisition.enabled=false"]))
        model.step()
        assert model.today.new_users.size == people // 100
