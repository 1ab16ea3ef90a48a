"""Memory is estimated from the configuration before a run, and a run that cannot fit is refused."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import sim
from sim.memory import available_bytes, check_memory, estimate
from sim.schema import ConfigError


def cfg(*overrides: str):
    return sim.compose("default", list(overrides))


def test_estimate_grows_linearly_with_people_and_with_edges():
    a = estimate(cfg("population.size=100000"))
    b = estimate(cfg("population.size=200000"))
    c = estimate(cfg("population.size=100000", "graph.avg_degree=40"))
    assert b.graph_bytes == pytest.approx(2 * a.graph_bytes)
    assert b.people_bytes == pytest.approx(2 * a.people_bytes)
    assert c.directed_edges == 2 * a.directed_edges
    assert c.peak_bytes > a.peak_bytes


def test_estimate_covers_the_arrays_the_model_really_holds():
    config = cfg("population.size=20000", "horizon=3")
    model = sim.GrowthModel(config)
    model.run()
    held = model.graph.nbytes() + model.edge_sends.nbytes + model.pop.nbytes()
    est = estimate(config)
    assert est.graph_bytes + est.people_bytes >= held


def test_a_run_that_does_not_fit_is_refused_in_one_line():
    with pytest.raises(ConfigError) as err:
        check_memory(cfg("population.size=1000000"), available=100e6)
    message = str(err.value)
    assert "\n" not in message and "population.size = 1,000,000" in message and "available" in message
    check_memory(cfg("population.size=1000000"), available=64e9)  # fits: no error


def test_available_memory_is_read_from_the_machine():
    avail = available_bytes()
    assert np.isfinite(avail) and avail > 0


def test_command_line_refuses_a_huge_population_with_exit_code_2(tmp_path):
    huge = cfg("population.size=200000000")
    if estimate(huge).peak_bytes <= available_bytes():
        pytest.skip("this machine could hold 200 million people")
    done = subprocess.run([sys.executable, "-m", "sim.cli", "run", "population.size=200000000", f"out={tmp_path}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: population.size = 200,000,000") and "memory" in lines[0]
    assert not any(tmp_path.iterdir())
