"""Property-based tests: random valid configurations keep every invariant.

Hypothesis draws configurations across graphs, contagion rules, mechanisms and behaviour settings;
for each, every person is in exactly one state every day, counts and money are non-negative, the
accounting identities hold, and the same seed reproduces the run exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim
from sim.config import CHANNELS
from sim.population import STATE_NAMES


@st.composite
def configs(draw):
    kind = draw(st.sampled_from(["er", "ba", "holme_kim", "ws", "sbm", "complete"]))
    overrides = [
        f"population.size={draw(st.integers(50, 1500))}",
        f"horizon={draw(st.integers(1, 40))}",
        f"graph={kind}",
        f"graph.avg_degree={draw(st.floats(1, 12))}",
        f"adoption.contagion={draw(st.sampled_from(['simple', 'complex']))}",
        f"adoption.threshold={draw(st.integers(1, 3))}",
        f"adoption.external_rate={draw(st.floats(0, 0.05))}",
        f"adoption.seed_fraction={draw(st.floats(0, 0.05))}",
        f"mechanisms.referral.enabled={draw(st.booleans())}",
        f"mechanisms.referral.inviter_reward={draw(st.floats(0, 100))}",
        f"mechanisms.referral.invitee_reward={draw(st.floats(0, 100))}",
        f"mechanisms.referral.per_inviter_cap={draw(st.integers(0, 5))}",
        f"mechanisms.paid_acquisition.enabled={draw(st.booleans())}",
        f"mechanisms.paid_acquisition.budget_per_1000={draw(st.floats(0, 1000))}",
        f"behaviour.churn.base_hazard={draw(st.floats(0, 3))}",
        f"behaviour.churn.dormant_after_days={draw(st.integers(1, 20))}",
        f"behaviour.churn.churn_after_days={draw(st.integers(21, 60))}",
        f"behaviour.purchase.conversion={draw(st.floats(0, 5))}",
        f"behaviour.social.saturation={draw(st.floats(0.01, 1))}",
        f"population.frailty_cv={draw(st.floats(0, 3))}",
    ]
    return sim.compose("default", overrides, seed=draw(st.integers(0, 2**32)))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_random_valid_configurations_keep_every_invariant(cfg):
    r = sim.simulate(cfg)
    d = r.daily
    assert len(d) == cfg.horizon
    assert (d[[f"n_{s}" for s in STATE_NAMES]].sum(axis=1) == r.model.pop.n).all()
    numeric = d.drop(columns=["profit", "contribution"]).select_dtypes("number")  # (the two results may be negative)
    assert np.isfinite(numeric.to_numpy()).all() and (numeric.to_numpy() >= 0).all()
    assert (d[[f"new_{c}" for c in CHANNELS]].sum(axis=1) == d["new_users"]).all()
    costs = ["goods_cost", "variable_cost", "incentive_cost", "fraud_loss", "acquisition_cost", "operating_cost"]
    assert np.allclose(d["profit"], d["revenue"] - d[costs].sum(axis=1))
    assert (d["dau"] <= d["mau"]).all()


@settings(max_examples=8, deadline=None)
@given(configs())
def test_random_configurations_are_reproducible(cfg):
    pd.testing.assert_frame_equal(sim.simulate(cfg).daily, sim.simulate(cfg).daily, check_exact=True)


def _numeric_leaves():
    import dataclasses

    from sim.config import SegmentConfig, SimConfig
    from sim.mechanisms import REGISTRY
    from sim.schema import _unwrap_optional, leaves

    rows = [*leaves(SimConfig), *leaves(SegmentConfig, "population.segments.deal_seeker")]
    for name, cls in REGISTRY.items():
        rows += leaves(cls.Config, f"mechanisms.{name}")
    out = []
    for key, tp, f in rows:
        tp, _ = _unwrap_optional(tp)
        if tp in (int, float) and isinstance(f, dataclasses.Field):
            out.append((key, tp, f.metadata))
    return out


NUMERIC = _numeric_leaves()


def test_every_numeric_setting_has_a_finite_range():
    """No setting is open-ended: a value of 1e308 (or inf) is refused at the edge, not met as a numpy
    overflow in the middle of a run."""
    import math

    for key, _, meta in NUMERIC:
        assert meta.get("lo") is not None and meta.get("hi") is not None, key
        assert math.isfinite(meta["lo"]) and math.isfinite(meta["hi"]) and abs(meta["hi"]) <= 2**63, key


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(picks=st.lists(st.sampled_from([k for k, _, _ in NUMERIC if not k.startswith(("seed", "population.size", "horizon"))]),
                      min_size=1, max_size=6, unique=True), top=st.booleans())
def test_settings_at_the_ends_of_their_ranges_run_without_numpy_warnings(picks, top):
    """Any allowed value, however extreme, runs without a library warning (overflow, invalid value)."""
    import warnings

    from hypothesis import assume

    from sim.schema import ConfigError

    meta = {k: (tp, m) for k, tp, m in NUMERIC}
    overrides = []
    for key in picks:
        tp, m = meta[key]
        value = m["hi"] if top else m["lo"]
        if value == m["lo"] and m.get("lo_open"):
            value = m["lo"] + 1e-6
        overrides.append(f"{key}={int(value) if tp is int else float(value)!r}")
    try:
        cfg = sim.compose("all_mechanisms", ["population.size=300", "horizon=12", "graph.avg_degree=6", *overrides])
    except ConfigError:
        assume(False)  # settings that contradict each other (shares not summing to 1, ...)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sim.simulate(cfg)
