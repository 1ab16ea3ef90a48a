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


@pytest.mark.parametrize("text, people", [
    ("0 1\n1 150000000\n", 150_000_001),  # two lines of text, 150 million people once loaded
    ("# nodes: 120000000\n0 1\n0 2\n", 120_000_000),
    ("alice bob\nbob carol\n", 4),
])
def test_an_edge_list_is_sized_by_its_node_ids_not_its_bytes(tmp_path, text, people):
    path = tmp_path / "friends.txt"
    path.write_text(text)
    est = estimate(cfg("graph=edgelist", f"graph.path={path}"))
    assert est.people == people and est.directed_edges == 4
    if people > 1e8:
        with pytest.raises(ConfigError, match=rf"^graph.path = '{path}': this run needs about .* \({people:,} people"):
            check_memory(cfg("graph=edgelist", f"graph.path={path}"), available=8e9)


def _cgroup_tree(tmp_path, v2: bool, limit: int, usage: int):
    fs = tmp_path / "sys"
    rel = "system.slice/slurmstepd.scope/job_42/step_0"
    base = fs if v2 else fs / "memory"
    job = base / rel
    job.mkdir(parents=True)
    (base / ("memory.max" if v2 else "memory.limit_in_bytes")).write_text("max\n" if v2 else "9223372036854771712\n")
    (job / ("memory.max" if v2 else "memory.limit_in_bytes")).write_text(f"{limit}\n")
    (job / ("memory.current" if v2 else "memory.usage_in_bytes")).write_text(f"{usage}\n")
    proc = tmp_path / "cgroup"
    proc.write_text(f"0::/{rel}\n" if v2 else f"5:devices:/\n4:memory:/{rel}\n3:cpu,cpuacct:/{rel}\n0::/\n")
    return proc, fs


@pytest.mark.parametrize("v2", [True, False], ids=["cgroup_v2", "cgroup_v1"])
def test_the_memory_limit_of_the_process_own_cgroup_counts(tmp_path, v2):
    """SLURM limits the job's cgroup, not the root one: the limit is read where /proc/self/cgroup points."""
    from sim.memory import cgroup_available

    proc, fs = _cgroup_tree(tmp_path, v2, limit=4 * 2**30, usage=2**30)
    assert cgroup_available(proc, fs) == 3 * 2**30
    (proc.parent / "none").write_text("0::/\n")
    assert cgroup_available(proc.parent / "none", fs) == float("inf")


def test_estimate_covers_what_every_mechanism_holds():
    """With every mechanism on, the people's columns and the mechanisms' own arrays stay within the
    estimate's share for people."""
    from sim.bench import all_mechanisms_overrides

    config = cfg(*all_mechanisms_overrides(), "population.size=20000", "horizon=30")
    model = sim.GrowthModel(config)
    model.run()
    mechanisms = sum(v.nbytes for m in model.mechanisms for v in vars(m).values() if isinstance(v, np.ndarray))
    held = model.graph.nbytes() + model.edge_sends.nbytes + model.pop.nbytes() + mechanisms
    est = estimate(config)
    assert est.graph_bytes + est.people_bytes >= held


def test_building_the_default_graph_is_estimated_by_its_own_generator():
    """Each generator is sized by its own cost per edge: the default (holme_kim) needs less than a
    random regular graph of the same degree, and any kind fits in the old common bound of 40 bytes."""
    a = estimate(cfg("population.size=100000"))
    b = estimate(cfg("population.size=100000", "graph.kind=regular"))
    assert a.build_bytes < b.build_bytes <= 40.0 * b.directed_edges + 40.0 * b.people


def test_a_kept_graph_read_back_is_charged_its_reading_not_its_generation():
    big = cfg("population.size=10000000")
    generated, read_back = estimate(big), estimate(big, generated=False)
    assert read_back.build_bytes < generated.build_bytes / 4
    days = read_back.graph_bytes + read_back.people_bytes + read_back.recorder_bytes
    assert read_back.peak_bytes - generated.peak_bytes < 0 and read_back.build_bytes < days  # the days are the peak
    assert "reading the kept graph back" in read_back.describe() and "building the graph" in generated.describe()
    between = (read_back.peak_bytes + generated.peak_bytes) / 2
    check_memory(big, available=between, generated=False)  # fits
    with pytest.raises(ConfigError, match="building the graph"):
        check_memory(big, available=between)


def test_a_run_whose_graph_is_kept_is_not_refused_for_generating_it(monkeypatch, tmp_path):
    """Between the two estimates, a run on a world whose graph an earlier run kept goes ahead; the
    same run with nothing kept is refused (generating the graph is its peak)."""
    from sim import memory
    from sim.engine import GrowthModel

    monkeypatch.setenv("SIM_CACHE_DIR", str(tmp_path / "cache"))
    config = cfg("population.size=60000", "graph.kind=er", "graph.avg_degree=100", "horizon=20")
    between = (estimate(config, generated=False).peak_bytes + estimate(config).peak_bytes) / 2
    assert estimate(config).peak_bytes > between > estimate(config, generated=False).peak_bytes
    GrowthModel(config)  # generates the graph, and keeps it
    monkeypatch.setattr(memory, "available_bytes", lambda: between)
    model = GrowthModel(config)  # reads it back: fits
    assert model.graph.n == 60000
    monkeypatch.setenv("SIM_CACHE_DIR", str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="building the graph"):
        GrowthModel(config)
