"""Shared helpers: small, fast configurations of the real model."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

import sim

os.environ.setdefault("MPLBACKEND", "Agg")
# Compositions kept by the tests (sim.compositions) go to a folder of their own, not the user's cache.
_CACHE = tempfile.TemporaryDirectory(prefix="sim-test-cache-")
os.environ.setdefault("SIM_CACHE_DIR", _CACHE.name)

SMALL = ("population.size=3000", "horizon=60")


def small(*overrides: str, scenario: str = "default", seed: int = 0):
    """The default scenario shrunk to a few thousand people and two months, plus ``overrides``."""
    return sim.compose(scenario, [*SMALL, *overrides], seed=seed)


def simulate(*overrides: str, scenario: str = "default", seed: int = 0):
    return sim.simulate(small(*overrides, scenario=scenario, seed=seed))


@pytest.fixture(scope="session")
def default_small():
    return simulate()


# ------------------------------------------------------------------------------ compiled passes
# Tests that compare a compiled pass with its plain numpy form draw their inputs at this size.
N_PEOPLE = 5000


def random_states(rng, n: int = N_PEOPLE):
    """``n`` lifecycle states drawn uniformly from potential ... churned (int8, as the column)."""
    return rng.integers(0, 6, n).astype(np.int8)


def group_buy_model(seed, overrides=()):
    """A small model with group buying on, four days in, then need, need day and state scrambled."""
    cfg = sim.compose("default", ["population.size=800", "horizon=10", "mechanisms.group_buy.enabled=true", *overrides], seed=seed)
    model = sim.GrowthModel(cfg)
    for _ in range(4):
        model.step()
    rng = np.random.default_rng(seed)
    pop = model.pop
    pop.need[:] = (rng.random(pop.n) * 2).astype(np.float32)
    pop.need_day[:] = rng.integers(0, 4, pop.n)
    pop.state[:] = rng.integers(0, 6, pop.n)
    return model, rng
