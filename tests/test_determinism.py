"""Same config and seed give bit-identical results; randomness only from the model's streams."""

from __future__ import annotations

import numpy as np
import pandas as pd

import sim
from conftest import simulate, small


def test_same_seed_gives_identical_daily_and_cohorts():
    a, b = simulate(seed=3), simulate(seed=3)
    pd.testing.assert_frame_equal(a.daily, b.daily, check_exact=True)
    pd.testing.assert_frame_equal(a.cohorts, b.cohorts, check_exact=True)


def test_different_seeds_differ():
    a, b = simulate(seed=3), simulate(seed=4)
    assert not a.daily["new_users"].equals(b.daily["new_users"])


def test_identical_daily_parquet_files(tmp_path):
    cfg = small(seed=5)
    paths = [sim.simulate(cfg).save(tmp_path / name, plots=False) for name in ("a", "b")]
    one, two = (pd.read_parquet(p / "daily.parquet") for p in paths)
    pd.testing.assert_frame_equal(one, two, check_exact=True)


def test_global_random_state_is_not_used():
    np.random.seed(1)
    a = simulate(seed=2)
    np.random.seed(99)
    b = simulate(seed=2)
    pd.testing.assert_frame_equal(a.daily, b.daily, check_exact=True)


def test_strategies_share_graph_and_people_for_a_seed():
    """Common random numbers: changing a mechanism leaves the graph and the people unchanged."""
    a = sim.GrowthModel(small(seed=1))
    b = sim.GrowthModel(small("mechanisms.referral.enabled=false", "mechanisms.paid_acquisition.budget_per_1000=3000", seed=1))
    assert np.array_equal(a.graph.indices, b.graph.indices)
    for col in ("segment", "frailty", "favourite", "satisfaction"):
        assert np.array_equal(getattr(a.pop, col), getattr(b.pop, col))


def test_daily_streams_do_not_depend_on_what_other_streams_consumed():
    from sim.engine import Streams

    s1, s2 = Streams(7), Streams(7)
    s1.new_day(4)
    s2.new_day(4)
    s1.today("exposure").random(1000)  # another subsystem draws a lot first
    assert np.array_equal(s1.today("visit").random(5), s2.today("visit").random(5))


def test_daily_streams_are_the_seed_sequence_generators():
    """The fast daily streams (seed words derived a block of days at a time) draw exactly what
    ``PCG64(SeedSequence(seed, spawn_key=(key(name), day + 1)))`` draws, for any seed size."""
    from sim.streams import Streams

    for seed in (0, 7, 2**32 + 5, 2**70 + 3):
        fast, slow = Streams(seed), Streams(seed)
        for day in (0, 1, 57, 398, 399, 400, 1234):
            fast.new_day(day)
            for name in ("visit", "mechanism.referral"):
                expected = slow._make(name, day + 1)
                assert np.array_equal(fast.today(name).random(4), expected.random(4))
                assert np.array_equal(fast.today(name).integers(0, 10**9, 3), expected.integers(0, 10**9, 3))


def test_fast_category_draws_equal_generator_choice():
    """``draw_choice`` replaces ``rng.choice(C, p=...)`` in the daily loop: the same draws and the
    same generator state afterwards, for many weight vectors (zeros included) and sizes."""
    from sim.streams import choice_cdf, draw_choice

    for seed in range(40):
        r = np.random.default_rng(seed)
        p = r.random(int(r.integers(1, 60))) ** 3
        p[r.random(p.size) < 0.2] = 0.0
        p[0] += 0.01
        p /= p.sum()
        for size in (0, 1, 7, 3000):
            slow, fast = np.random.default_rng(seed + 100), np.random.default_rng(seed + 100)
            expected = slow.choice(p.size, size=size, p=p)
            got = draw_choice(fast, choice_cdf(p), size)
            assert got.dtype == expected.dtype and np.array_equal(got, expected)
            assert slow.random() == fast.random()
