"""``sim bench``: every part runs (tiny sizes), writes its record and plot; the helpers are right.

No timing is asserted (the machine is shared): only that the measurements exist and make sense.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import sim
from sim.bench import all_mechanisms_overrides, csr_independent_cascade, scaling_fit
from sim.engine import Streams
from sim.graph import build_graph
from sim.mechanisms import REGISTRY


def test_the_all_mechanisms_scenario_enables_every_registered_mechanism():
    assert sim.compose("all_mechanisms").enabled() == list(REGISTRY)


def test_all_mechanisms_means_every_registered_mechanism():
    cfg = sim.compose("all_mechanisms", ["population.size=1000", *all_mechanisms_overrides()])
    assert cfg.enabled() == list(REGISTRY)


def test_quick_bench_measures_every_part_and_writes_json_and_plot(tmp_path):
    done = subprocess.run([sys.executable, "-m", "sim.cli", "bench", "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    record = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert next(tmp_path.glob("*.png")).stat().st_size > 10_000
    assert [r["people"] for r in record["engine"]] == [2000, 5000]
    for row in record["engine"]:
        assert row["people_days_per_s"] > 0 and row["peak_mb"] > 50 and row["mechanisms"] == list(REGISTRY)
    assert record["reference"]["ratio"] > 0
    assert record["reference_busy"]["ratio"] > 0 and record["reference_busy"]["overrides"]
    assert record["ic"]["ndlib"]["node_steps_per_s"] > 0 and record["ic"]["ratio"] > 0
    assert record["scaling"]["fit_people"] is not None
    assert "people-days/s" in done.stdout and "engine / Mesa" in done.stdout and "engine / NDlib" in done.stdout
    for row in record["engine"]:  # kernel loading, timed where it happens: numba's import, dispatchers, loads
        parts = row["loading"]
        assert parts["numba"] > 0 and parts["dispatchers"] > 0 and row["first_time_s"] >= 0
        assert row["kernel_load_s"] == pytest.approx(parts["numba"] + parts["dispatchers"] + parts["loading"])
        assert parts["loaded"] == 0 or parts["loading"] > 0
    assert "each process first loads the compiled kernels" in done.stdout or "none loaded from the cache" in done.stdout
    assert record["horizons"]["long"]["days"] == 60 and record["horizons"]["short"]["days"] == 20
    assert record["large"]["people"] == 20_000 and record["large"]["peak_mb"] > 50
    commands = {c["label"]: c for c in record["commands"]}
    assert len(commands) == 6 and all(c["wall_s"] > 0 and c["cpu_s"] > 0 for c in commands.values())
    assert commands["sim run population.size=abc (refused)"]["exit"] == 2
    assert all(c["exit"] == 0 for label, c in commands.items() if "refused" not in label)
    run = commands["sim run scenario=all_mechanisms"]
    assert 0 < run["simulate_s"] < run["wall_s"] and run["outside_days_s"] == pytest.approx(run["wall_s"] - run["simulate_s"])
    assert 0 < record["folder"]["write_s"] and record["folder"]["people"] == 2000
    assert "whole commands" in done.stdout and "writing a run folder" in done.stdout and "horizons" in done.stdout
    ones, two = record["one_thread"], record["engine"][-1]
    assert len(ones) == 2 and two["people"] == 5000 and two["threads"] == "auto"
    for one in ones:
        assert one["people"] == 5000 and one["threads"] == "1"
        assert one["fingerprint"] == two["fingerprint"]  # one thread or two: the same run
    assert "one run on two cores, 5,000 people" in done.stdout and "the same results, bit for bit" in done.stdout


def test_bad_sizes_are_one_line_and_exit_code_2():
    done = subprocess.run([sys.executable, "-m", "sim.cli", "bench", "--sizes", "ten,20"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().startswith("error: --sizes")


@pytest.mark.parametrize("flags, message", [
    (["--sizes", "-5"], "error: --sizes = -5: allowed is a number in [2, 200000000] (people)"),
    (["--sizes", "10"], "error: --sizes = 10: allowed are people counts above the benchmark's degree (20)"),
    (["--sizes", "2000", "--horizon", "-3"], "error: --horizon = -3: allowed is a number in [1, 36500] (days)"),
    (["--horizon", "0"], "error: --horizon = 0: allowed is a number in [1, 36500] (days)"),
])
def test_sizes_or_a_horizon_the_model_refuses_are_one_line_exit_2_and_no_results_file(tmp_path, flags, message):
    done = subprocess.run([sys.executable, "-m", "sim.cli", "bench", "--quick", *flags, "--no-reference", "--no-ic", "--no-scaling",
                           "--no-horizons", "--no-large", "--no-commands", "--out", str(tmp_path / "bench")], capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stderr) == (2, message + "\n")
    assert not (tmp_path / "bench").exists()  # no record of failed measurements


def test_scaling_fit_reads_a_linear_cost_as_slope_one():
    rows = [{"people": n, "cpu_ms_per_day": 0.002 * n} for n in (1e4, 1e5, 1e6)]
    fit = scaling_fit(rows, "people")
    assert fit["loglog_slope"] == pytest.approx(1.0) and fit["linear_r2"] == pytest.approx(1.0)


def small_graph():
    cfg = sim.compose("default", ["population.size=3000"])
    return build_graph(cfg.graph, 3000, Streams(0).setup("graph"))


def test_csr_cascade_with_certain_transmission_reaches_the_whole_component():
    g = small_graph()
    seeds = np.array([5])
    steps, size = csr_independent_cascade(g, 1.0, seeds, np.random.default_rng(0))
    comp = g.components()
    assert size == int(np.sum(comp == comp[5]))


def test_csr_cascade_without_transmission_stays_at_its_seeds():
    steps, size = csr_independent_cascade(small_graph(), 0.0, np.array([1, 2, 3]), np.random.default_rng(0))
    assert (steps, size) == (1, 3)


def test_csr_cascade_agrees_with_ndlib_in_distribution():
    import ndlib.models.ModelConfig as mc
    import ndlib.models.epidemics as ep

    g = small_graph()
    nxg = g.to_networkx()
    p, seeds = 0.08, np.arange(0, 3000, 100)
    ours, theirs = [], []
    for run in range(8):
        ours.append(csr_independent_cascade(g, p, seeds, np.random.default_rng(run))[1])
        model = ep.IndependentCascadesModel(nxg, seed=run)
        config = mc.Configuration()
        config.add_model_initial_configuration("Infected", seeds.tolist())
        for u, v in nxg.edges():
            config.add_edge_configuration("threshold", (u, v), p)
        model.set_initial_status(config)
        while True:
            it = model.iteration(node_status=False)
            if model.actual_iteration > 1 and it["node_count"].get(1, 0) == 0:
                break
        theirs.append(3000 - it["node_count"].get(0, 0))
    a, b = np.array(ours, float), np.array(theirs, float)
    se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert abs(a.mean() - b.mean()) < 4 * se + 0.02 * b.mean()
