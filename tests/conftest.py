"""Shared helpers: small, fast configurations of the real model."""

from __future__ import annotations

import os

import pytest

import sim

os.environ.setdefault("MPLBACKEND", "Agg")

SMALL = ("population.size=3000", "horizon=60")


def small(*overrides: str, scenario: str = "default", seed: int = 0):
    """The default scenario shrunk to a few thousand people and two months, plus ``overrides``."""
    return sim.compose(scenario, [*SMALL, *overrides], seed=seed)


def simulate(*overrides: str, scenario: str = "default", seed: int = 0):
    return sim.simulate(small(*overrides, scenario=scenario, seed=seed))


@pytest.fixture(scope="session")
def default_small():
    return simulate()
