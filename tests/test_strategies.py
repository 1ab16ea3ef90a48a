"""The strategy library: named strategies and platform presets that compose, differ and run."""

from __future__ import annotations

from functools import lru_cache

import pytest

import sim
from sim.config import available_scenarios, scenario_dirs
from sim.schema import to_plain

STRATEGIES = sorted(n for n, g in available_scenarios().items() if g == "strategy")
PLATFORM_MECHANISMS = {"recommendations", "promotions", "loyalty", "push", "winback", "fraud", "service"}


@lru_cache(maxsize=None)
def composed(name: str):
    return sim.compose(name)


def first_comment(name: str, group: str) -> str:
    path = scenario_dirs()[0] / group / f"{name}.yaml"
    return next(ln[1:].strip() for ln in path.read_text().splitlines() if ln.startswith("#") and "@package" not in ln)


def test_the_library_holds_at_least_ten_strategies_using_platform_mechanisms():
    using = [n for n in STRATEGIES if PLATFORM_MECHANISMS & set(composed(n).enabled())]
    assert len(using) >= 10, using


@pytest.mark.parametrize("name", STRATEGIES)
def test_each_strategy_states_its_idea_and_changes_the_default(name):
    assert len(first_comment(name, "strategy")) > 20
    base = to_plain(composed("default"))
    mine = to_plain(composed(name))
    base.pop("scenario"), mine.pop("scenario")
    assert mine != base


def test_the_control_has_no_social_features():
    cfg = sim.compose("plain_marketplace")
    assert cfg.enabled() == []
    assert first_comment("plain_marketplace", "platform").endswith("the control.")


def test_the_vertical_preset_is_a_narrow_loyal_shop():
    cfg, base = sim.compose("vertical"), sim.compose("default")
    assert cfg.catalogue.categories < base.catalogue.categories
    assert cfg.population.segments["loyal_value"].share > base.population.segments["loyal_value"].share
    assert {"recommendations", "loyalty"} <= set(cfg.enabled())


@pytest.mark.parametrize("name", [*STRATEGIES, "plain_marketplace", "vertical"])
def test_every_strategy_runs(name):
    r = sim.run(name, overrides=["population.size=2000", "horizon=25"], seed=1)
    assert len(r.daily) == 25 and r.summary["users_total"] > 0
