"""The common contract, run on every registered mechanism (a new mechanism is covered by registering).

- its config is a frozen dataclass, off by default, every field documented;
- while disabled, none of its settings changes anything, and it draws no randomness;
- while enabled, it is deterministic, draws only from its own stream, keeps every person in exactly
  one state, books non-negative money and writes the columns it declares.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import sim
from sim.engine import GrowthModel, Streams
from sim.mechanisms import REGISTRY
from sim.population import STATE_NAMES

NAMES = list(REGISTRY)
BASE = ["population.size=2500", "horizon=45", *(f"mechanisms.{n}.enabled=false" for n in REGISTRY)]


def cfg_with(*overrides: str, seed: int = 0):
    return sim.compose("default", [*BASE, *overrides], seed=seed)


def changed_settings(name: str) -> list[str]:
    """Every numeric setting of a mechanism moved to another valid value."""
    cls = REGISTRY[name].Config
    out = []
    for f in dataclasses.fields(cls):
        default = getattr(cls(), f.name)
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            continue
        hi = f.metadata.get("hi")
        lo = f.metadata.get("lo") or 0
        new = default * 0.5 if default else 1
        if hi is not None and new > hi or new < lo or (f.metadata.get("lo_open") and new <= lo):
            new = (lo + hi) / 2 if hi is not None else lo + 1
        out.append(f"mechanisms.{name}.{f.name}={int(new) if isinstance(default, int) else new}")
    return out


@pytest.mark.parametrize("name", NAMES)
def test_config_is_frozen_off_by_default_and_documented(name):
    cls = REGISTRY[name].Config
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    assert cls().enabled is False
    for f in dataclasses.fields(cls):
        assert f.metadata.get("doc"), f"{name}.{f.name} has no doc"


@pytest.mark.parametrize("name", NAMES)
def test_disabled_mechanism_settings_change_nothing(name):
    base = sim.simulate(cfg_with())
    moved = sim.simulate(cfg_with(*changed_settings(name)))
    pd.testing.assert_frame_equal(base.daily, moved.daily, check_exact=True)


class RecordingStreams(Streams):
    """Streams that note which mechanism hook asked for which stream."""

    def __init__(self, seed):
        super().__init__(seed)
        self.current = "core"
        self.requests: set[tuple[str, str]] = set()

    def today(self, name):
        self.requests.add((self.current, name))
        return super().today(name)


def run_recording(cfg) -> RecordingStreams:
    model = GrowthModel(cfg)
    rec = RecordingStreams(cfg.seed)
    model.streams = rec
    for stage, hooks in model.hooks.items():
        def wrap(hook):
            def run(m):
                rec.current = hook.__self__.name
                try:
                    hook(m)
                finally:
                    rec.current = "core"
            return run
        model.hooks[stage] = [wrap(h) for h in hooks]
    model.run()
    return rec


@pytest.mark.parametrize("name", NAMES)
def test_mechanism_draws_only_from_its_own_stream(name):
    rec = run_recording(cfg_with(f"mechanisms.{name}.enabled=true"))
    own = {s for who, s in rec.requests if who == name}
    assert own <= {f"mechanism.{name}"}
    off = run_recording(cfg_with())
    assert not any(s == f"mechanism.{name}" for _, s in off.requests)


@pytest.mark.parametrize("name", NAMES)
def test_enabled_mechanism_is_deterministic_and_conserves_people(name):
    a = sim.simulate(cfg_with(f"mechanisms.{name}.enabled=true", seed=3))
    b = sim.simulate(cfg_with(f"mechanisms.{name}.enabled=true", seed=3))
    pd.testing.assert_frame_equal(a.daily, b.daily, check_exact=True)
    states = a.daily[[f"n_{s}" for s in STATE_NAMES]].sum(axis=1)
    assert (states == a.config.population.size).all()


@pytest.mark.parametrize("name", NAMES)
def test_enabled_mechanism_books_non_negative_money_and_declares_its_columns(name):
    r = sim.simulate(cfg_with(f"mechanisms.{name}.enabled=true"))
    cls = REGISTRY[name]
    for column in cls.columns:
        assert column in r.daily.columns
    for account, category in cls.accounts.items():
        col = f"{'revenue' if category == 'revenue' else 'cost'}_{account}"
        assert col in r.daily.columns and (r.daily[col] >= 0).all()
    numeric = r.daily.select_dtypes("number")
    assert np.isfinite(numeric.to_numpy()).all()


@pytest.mark.parametrize("name", ["(none)", "(all)", *NAMES])
def test_user_index_agrees_with_the_state_column_every_day(name):
    """For speed the engine keeps who is a user as an index (``pop.alive()``), who never joined as
    a mask and the number who ever joined; with any mechanism on they must agree with ``state``."""
    enable = {"(none)": [], "(all)": NAMES}.get(name, [name])
    model = GrowthModel(cfg_with(*(f"mechanisms.{n}.enabled=true" for n in enable), "horizon=40"))
    pop = model.pop
    for _ in range(40):
        model.step()
        assert np.array_equal(pop.alive(), np.flatnonzero(pop.users_mask())), f"day {model.day}"
        assert np.array_equal(pop.non_users_mask(), pop.state <= 1)
        assert pop.count_non_users() == np.count_nonzero(pop.state <= 1)
        assert np.array_equal(pop.state_counts(), np.bincount(pop.state, minlength=len(STATE_NAMES)))


# ------------------------------------------------------------------------------ compiled passes against their numpy forms
def test_the_registry_follows_the_hook_order():
    """The registry's order is ``HOOK_ORDER`` whatever order the modules are imported in; this pins
    the order itself (a change to it changes results, and users' baselines)."""
    from sim.mechanisms import REGISTRY

    assert list(REGISTRY) == ["paid_acquisition", "referral", "group_buy", "assist", "distribution", "content",
                              "recommendations", "promotions", "loyalty", "push", "winback", "fraud", "service"]
