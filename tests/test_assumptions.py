"""The world seed and uncertain assumptions of a comparison: a fixed world, draws shared by every
strategy of a replicate, intervals with and without the assumptions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import sim
from sim.assumptions import COLUMN, central, quantile, uniform_number
from sim.engine import GrowthModel
from sim.experiment import replicate_config
from sim.plans import AssumptionSpec, replicate_seeds
from sim.streams import Streams

TINY = ("population.size=1500", "horizon=30")
CPI = "mechanisms.paid_acquisition.cac_rmb"
TRIPLE = ("triple_ads", "default", ["mechanisms.paid_acquisition.budget_per_1000=15"])


# ------------------------------------------------------------------------------ the world seed
def test_without_a_world_seed_the_world_is_built_as_before():
    """world_seed None: every stream that builds the model is the one the seed always gave
    (PCG64 of SeedSequence(seed, spawn_key=(key(name), 0))), so every result is bit-identical."""
    for seed in (0, 7, 2**40 + 3):
        for name in ("graph", "population", "catalogue", "market", "mechanism.referral"):
            before = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(Streams._key(name), 0))))
            assert np.array_equal(Streams(seed).setup(name).random(5), before.random(5))


def test_an_explicit_world_seed_equal_to_the_seed_changes_nothing():
    plain = sim.simulate(sim.compose("default", ["population.size=5000", "horizon=60"], seed=3))
    same = sim.simulate(sim.compose("default", ["population.size=5000", "horizon=60", "world_seed=3"], seed=3))
    pd.testing.assert_frame_equal(plain.daily, same.daily)
    other = sim.simulate(sim.compose("default", ["population.size=5000", "horizon=60", "world_seed=4"], seed=3))
    assert not plain.daily.equals(other.daily)


def test_the_world_seed_builds_the_world_and_the_seed_drives_behaviour():
    streams = Streams(5, world_seed=9)
    assert np.array_equal(streams.setup("graph").random(4), Streams(9).setup("graph").random(4))
    streams.new_day(3)
    ref = Streams(5)
    ref.new_day(3)
    assert np.array_equal(streams.today("visit").random(4), ref.today("visit").random(4))


def _world(cfg):
    model = GrowthModel(cfg)
    return model, (model.graph.indptr.copy(), model.graph.indices.copy(), model.catalogue.price_level.copy(), model.pop.segment.copy())


def test_a_fixed_world_is_the_same_graph_people_and_catalogue_in_every_replicate():
    cfg = sim.compose("default", list(TINY))
    a, b = replicate_seeds(0, 2)
    (_, fixed_a), (_, fixed_b) = _world(replicate_config(cfg, a, 0)), _world(replicate_config(cfg, b, 0))
    assert all(np.array_equal(x, y) for x, y in zip(fixed_a, fixed_b))
    (_, own_a), (_, own_b) = _world(replicate_config(cfg, a)), _world(replicate_config(cfg, b))
    assert not np.array_equal(own_a[2], own_b[2]) and not np.array_equal(own_a[1], own_b[1])


def test_a_fixed_world_narrows_the_replicate_spread_of_gmv():
    """With a catalogue whose price levels differ much between worlds, the price level is most of
    GMV's spread between replicates; holding the world fixed takes it out (and the comparison says so)."""
    overrides = ("population.size=2000", "horizon=60", "catalogue.price_spread=1.5", "catalogue.categories=5")
    varies = sim.compare(["default"], replicates=8, overrides=overrides, workers=2)
    fixed = sim.compare(["default"], replicates=8, overrides=overrides, workers=2, world="fixed")
    spread = {k: (c.horizon["gmv"].std() / c.horizon["gmv"].mean(), (c.horizon["gmv"] / c.horizon["orders"]).std())
              for k, c in (("varies", varies), ("fixed", fixed))}
    assert spread["fixed"][0] < 0.5 * spread["varies"][0] and spread["fixed"][1] < 0.5 * spread["varies"][1], spread
    assert fixed.world_seed == 0 and (fixed.horizon["world_seed"] == 0).all() and varies.world_seed is None
    assert "fixed across replicates at seed 0" in fixed.world and "drawn anew for each replicate" in varies.world


def test_a_comparison_without_assumptions_or_a_decision_has_neither_section(tmp_path):
    c = sim.compare(["default", "referral_double"], replicates=2, overrides=TINY, workers=1, out=tmp_path, plots=False)
    page = (c.path / "report.html").read_text()
    assert "The decision" not in page and "<h2>Assumptions</h2>" not in page and "drawn anew for each replicate" in page
    assert c.decision is None and c.noise is None and not (c.path / "decision.json").exists()


# ------------------------------------------------------------------------------ draws
def test_draws_follow_their_distributions():
    u = (np.arange(20_000) + 0.5) / 20_000  # an even grid of uniform numbers: means within 0.1 %
    tri = AssumptionSpec(triangular=(1.0, 2.0, 6.0))
    assert np.mean([quantile(tri, x) for x in u]) == pytest.approx(3.0, rel=1e-3)
    uni = AssumptionSpec(uniform=(10.0, 30.0))
    assert np.mean([quantile(uni, x) for x in u]) == pytest.approx(20.0, rel=1e-3)
    normal = AssumptionSpec(normal=(0.2, 0.1))
    draws = np.array([quantile(normal, x, (0.0, 1.0, False)) for x in u])
    assert draws.min() >= 0.0 and draws.max() <= 1.0  # truncated to the key's range
    assert np.mean(draws) > 0.2  # the cut lower tail moves the mean up
    logn = AssumptionSpec(lognormal=(4.0, 0.5))
    draws = np.array([quantile(logn, x) for x in u])
    assert np.median(draws) == pytest.approx(4.0, rel=1e-3) and np.std(np.log(draws)) == pytest.approx(0.5, rel=1e-2)
    pick = AssumptionSpec(choice=("a", "b", "c"), p=(0.2, 0.5, 0.3))
    counts = pd.Series([quantile(pick, x) for x in u]).value_counts(normalize=True)
    assert counts.to_dict() == pytest.approx({"a": 0.2, "b": 0.5, "c": 0.3}, abs=1e-3)


def test_central_values_are_medians_and_the_most_probable_choice():
    assert central(AssumptionSpec(uniform=(10.0, 30.0))) == 20.0
    assert central(AssumptionSpec(triangular=(0.0, 0.0, 1.0))) == pytest.approx(1 - math.sqrt(0.5))
    assert central(AssumptionSpec(lognormal=(4.0, 0.7))) == pytest.approx(4.0)
    assert central(AssumptionSpec(normal=(0.9, 0.5)), (0.0, 1.0, False)) < 0.9  # the median of what remains inside [0, 1]
    assert central(AssumptionSpec(choice=(2, 3, 5), p=(0.3, 0.3, 0.4))) == 5


def test_a_replicate_s_uniform_number_depends_on_seed_key_and_replicate_only():
    assert uniform_number(0, CPI, 3) == uniform_number(0, CPI, 3)
    assert len({uniform_number(0, CPI, r) for r in range(50)}) == 50
    assert uniform_number(0, CPI, 3) != uniform_number(1, CPI, 3) != uniform_number(0, "mechanisms.referral.conversion", 3)


def test_every_strategy_of_a_replicate_sees_the_same_draws_on_any_worker_count():
    kw = dict(overrides=TINY, assumptions={CPI: {"uniform": [15, 40]}, "mechanisms.referral.conversion": {"normal": [0.2, 0.05]}})
    one = sim.compare(["default", "referral_double"], replicates=3, workers=1, **kw)
    two = sim.compare(["default", "referral_double"], replicates=3, workers=2, **kw)
    pd.testing.assert_frame_equal(one.horizon, two.horizon)
    pd.testing.assert_frame_equal(one.noise, two.noise)
    columns = [c for c in one.horizon.columns if c.startswith(COLUMN)]
    assert len(columns) == 2
    per_replicate = one.horizon.groupby("replicate")[columns].nunique()
    assert (per_replicate == 1).all().all()  # one draw per replicate, whatever the strategy
    assert one.horizon.groupby("strategy")[columns[0]].nunique().eq(3).all()  # a new draw in each replicate
    assert (one.noise[f"{COLUMN}{CPI}"] == 27.5).all()  # the noise-only set: every assumption at its median


def test_an_assumption_on_a_switched_off_mechanism_adds_no_uncertainty():
    """Group buying is off in both strategies: its discount is drawn, but changes nothing, so the
    intervals with and without the assumptions are the same and its share of the variance is 0."""
    c = sim.compare(["default", "referral_double"], replicates=3, overrides=TINY, workers=1,
                    assumptions={"mechanisms.group_buy.discount": {"uniform": [0.1, 0.5]}})
    u = c.uncertainty.dropna(subset=["sd"])
    assert np.allclose(u["ci_low"], u["noise_ci_low"]) and np.allclose(u["ci_high"], u["noise_ci_high"])
    assert (u["assumption_share"].fillna(0) == 0).all()


def test_widening_an_assumption_never_narrows_the_interval_with_it():
    """Metamorphic: replicate r draws the same uniform number for a narrow and a wide range of the
    cost per install, so the wide draws are the narrow ones stretched; tripling the ad budget
    against the default then varies more in users acquired, and its interval is no narrower (the
    noise-only intervals are the same in both, both assumptions having the same median)."""
    def run(low, high):
        return sim.compare(["default", TRIPLE], replicates=6, overrides=TINY, workers=2,
                           assumptions={CPI: {"uniform": [low, high]}})

    narrow, wide = run(22.5, 32.5), run(5, 50)
    for metric in ("users_total", "acquisition_cost"):
        n = narrow.uncertainty.set_index("metric").loc[metric]
        w = wide.uncertainty.set_index("metric").loc[metric]
        assert w["ci_high"] - w["ci_low"] >= n["ci_high"] - n["ci_low"], metric
        assert w["noise_ci_low"] == n["noise_ci_low"] and w["noise_ci_high"] == n["noise_ci_high"]
        assert w["assumption_share"] >= n["assumption_share"] and w["assumption_share"] > 0.5, metric
    effects = wide.assumption_effects.set_index("assumption").loc[CPI]
    assert effects["metric"] == "users_end" and effects["spearman"] < 0  # dearer installs, fewer extra users


@pytest.mark.parametrize("assumptions, message", [
    ({"mechanisms.paid_acquisition.cac_rm": {"uniform": [15, 40]}}, "assumptions.mechanisms.paid_acquisition.cac_rm: unknown key (did you mean 'cac_rmb'?)"),
    ({"mechanisms.referral.enabled": {"uniform": [0, 1]}}, "a uniform distribution needs a numeric setting"),
    ({"mechanisms.referral.conversion": {"uniform": [0.1, 1.4]}}, "mechanisms.referral.conversion = 1.4: allowed is a number in [0, 1]"),
    ({"mechanisms.referral.inviter_reward": {"uniform": [5, 20]}}, "the strategies set this key differently"),
    ({"mechanisms.referral.conversion": {"normal": [5, 0.1]}}, "lies almost wholly outside the allowed range [0, 1]"),
    ({"mechanisms.referral.conversion": {"uniform": [0.3, 0.1]}}, "uniform = [0.3, 0.1]: low must be below high"),
    ({"mechanisms.referral.conversion": {"normal": [0.2, 0]}}, "the standard deviation must be above 0"),
    ({"mechanisms.group_buy.team_size": {"choice": [2, 3], "p": [0.5, 0.6]}}, "probabilities add up to 1"),
    ({"mechanisms.group_buy.team_size": {"uniform": [2, 4], "normal": [3, 1]}}, "allowed is one distribution"),
    ({"seed": {"uniform": [0, 10]}}, "seeds are not assumptions"),
])
def test_bad_assumptions_are_refused_before_any_run(assumptions, message):
    with pytest.raises(sim.ConfigError) as exc:
        sim.compare(["default", "referral_double"], replicates=2, overrides=TINY, workers=1, assumptions=assumptions)
    assert message in str(exc.value) and "\n" not in str(exc.value), str(exc.value)


def test_a_key_both_assumed_and_overridden_is_refused():
    with pytest.raises(sim.ConfigError, match="strategies.cheap.overrides sets this key too"):
        sim.compare({"base": "default", "cheap": {"scenario": "default", "overrides": [f"{CPI}=10"]}}, replicates=2,
                    overrides=TINY, assumptions={CPI: {"uniform": [15, 40]}})
    with pytest.raises(sim.ConfigError, match="overrides sets this key too"):
        sim.compare(["default", "referral_double"], replicates=2, overrides=(*TINY, f"{CPI}=10"), assumptions={CPI: {"uniform": [15, 40]}})
