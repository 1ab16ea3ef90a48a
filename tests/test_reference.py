"""The plain Mesa reference model is the engine's statistical oracle.

Two independent implementations of the same core dynamics (one agent object per person on a
``mesa.discrete_space.Network`` against numpy columns over a CSR graph), run on the same graph over
several seeds, must agree in distribution on adoption, retention and orders: each mean difference
within four standard errors. The check has power: it tells the engine apart from a reference model
whose word of mouth converts half as often.
"""

from __future__ import annotations

import numpy as np
import pytest
from mesa.discrete_space import Network

import sim
from sim.bench import no_mechanisms_overrides
from sim.reference import ReferenceModel
from sim.schema import ConfigError

SMALL = ["population.size=4000", "horizon=120", *no_mechanisms_overrides()]
SEEDS = range(6)
METRICS = ("adoption_share", "orders_per_person", "retention_d1", "retention_d7", "users_end_share")


def engine_metrics(cfg) -> dict:
    r = sim.simulate(cfg)
    n = cfg.population.size
    return {"adoption_share": r.summary["adoption_share"], "orders_per_person": r.summary["orders"] / n,
            "retention_d1": r.summary["retention_d1"], "retention_d7": r.summary["retention_d7"],
            "users_end_share": r.summary["users_end"] / n}


def reference_metrics(cfg) -> dict:
    s = ReferenceModel(cfg).run().summary()
    n = cfg.population.size
    return {"adoption_share": s["adoption_share"], "orders_per_person": s["orders"] / n,
            "retention_d1": s["retention_d1"], "retention_d7": s["retention_d7"], "users_end_share": s["users_end"] / n}


def disagreements(a: list[dict], b: list[dict]) -> list[str]:
    """Metrics whose means differ by more than four standard errors of the difference."""
    out = []
    for m in METRICS:
        x, y = np.array([r[m] for r in a]), np.array([r[m] for r in b])
        se = np.sqrt(x.var(ddof=1) / x.size + y.var(ddof=1) / y.size)
        if abs(x.mean() - y.mean()) > 4 * se + 1e-9:
            out.append(f"{m}: engine {x.mean():.4f} vs reference {y.mean():.4f} (se {se:.4f})")
    return out


@pytest.fixture(scope="module")
def engine_runs():
    return [engine_metrics(sim.compose("core_growth", SMALL, seed=s)) for s in SEEDS]


def test_reference_and_engine_agree_in_distribution_on_a_small_graph(engine_runs):
    reference = [reference_metrics(sim.compose("core_growth", SMALL, seed=s)) for s in SEEDS]
    assert disagreements(engine_runs, reference) == []


def test_the_comparison_tells_apart_a_model_with_weaker_word_of_mouth(engine_runs):
    weaker = [reference_metrics(sim.compose("core_growth", [*SMALL, "adoption.word_of_mouth_conversion=0.15"], seed=s)) for s in SEEDS]
    assert any(d.startswith("adoption_share") for d in disagreements(engine_runs, weaker))


def test_reference_model_is_one_mesa_agent_per_person_on_a_network():
    cfg = sim.compose("core_growth", ["population.size=500", "horizon=5", *no_mechanisms_overrides()], seed=1)
    model = ReferenceModel(cfg)
    assert isinstance(model.grid, Network)
    assert len(model.agents) == 500
    assert all(p.cell.coordinate == p.unique_id - 1 for p in model.people[:20])
    model.run()
    assert len(model.daily["users"]) == 5


def test_reference_model_is_deterministic_with_a_seed():
    cfg = sim.compose("core_growth", ["population.size=800", "horizon=40", *no_mechanisms_overrides()], seed=4)
    assert ReferenceModel(cfg).run().daily == ReferenceModel(cfg).run().daily


def test_reference_model_refuses_platform_mechanisms():
    cfg = sim.compose("default", ["population.size=500", "horizon=5"])
    with pytest.raises(ConfigError, match="no platform mechanisms"):
        ReferenceModel(cfg)
