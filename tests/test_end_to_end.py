"""The run folder, from the command line and from Python."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import sim
from sim.runs import RUN_FILES

PLOTS = {"growth.png", "activity.png", "retention.png", "cohort_heatmap.png", "money.png", "viral.png", "mechanisms.png"}
DAILY_COLUMNS = ["day", "new_users", "cumulative_users", "dau", "wau", "mau", "active_users", "churned_users",
                 "reactivated_users", "orders", "buyers", "gmv", "revenue", "incentive_cost", "acquisition_cost",
                 "profit", "invites_sent", "invites_accepted", "k_factor", "category_gini",
                 *(f"new_{c}" for c in ("organic", "paid", "referral", "group_buy", "assist", "content", "distribution"))]


def assert_complete_run_folder(path: Path, horizon: int) -> None:
    assert path.is_dir()
    for name in RUN_FILES:
        assert (path / name).is_file(), name
    assert {p.name for p in (path / "plots").glob("*.png")} == PLOTS
    daily = pd.read_parquet(path / "daily.parquet")
    assert list(daily.columns[: len(DAILY_COLUMNS)]) == DAILY_COLUMNS
    assert len(daily) == horizon
    cohorts = pd.read_parquet(path / "cohorts.parquet")
    assert {"cohort_day", "age", "users", "retained", "revenue", "channel"} <= set(cohorts.columns)
    summary = json.loads((path / "summary.json").read_text())
    for key in ("seed", "version", "git_revision", "wall_seconds", "users_total", "profit", "retention_d1"):
        assert key in summary
    html = (path / "report.html").read_text()
    assert all(f"plots/{p}" in html for p in PLOTS)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp")]


@pytest.mark.slow
def test_the_demo_scenario_writes_a_complete_run_folder(tmp_path):
    """What `make demo` runs: the default scenario, 100,000 people for a year."""
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "run", f"out={tmp_path}"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.parent == tmp_path
    assert_complete_run_folder(path, 365)
    summary = json.loads((path / "summary.json").read_text())
    assert summary["population"] == 100_000 and summary["scenario"] == "default"
    # The shape the demo promises: word of mouth makes an S-curve (new users peak after the start,
    # then fall), most users leave early, and the business is measured in money.
    assert 20 < summary["peak_new_users_day"] < 300
    assert 0.10 < summary["retention_d1"] < 0.35 and summary["retention_d30"] < summary["retention_d1"] / 2
    assert summary["gmv"] > 0 and summary["incentive_cost"] > 0 and summary["acquisition_cost"] > 0


def test_python_api_writes_and_reads_back_a_run(tmp_path):
    result = sim.run("default", overrides=["population.size=2000", "horizon=40"], seed=2, out=tmp_path)
    assert_complete_run_folder(result.path, 40)
    back = sim.load_run(result.path)
    pd.testing.assert_frame_equal(back.daily, result.daily)
    assert back.config == result.config


def test_a_run_never_overwrites_an_earlier_one(tmp_path):
    cfg = sim.compose("default", ["population.size=1000", "horizon=10"])
    r = sim.simulate(cfg)
    first, second = r.save(tmp_path, plots=False), r.save(tmp_path, plots=False)
    assert first != second and first.is_dir() and second.is_dir()


def test_a_failure_while_writing_leaves_no_partial_folder(tmp_path, monkeypatch):
    from sim import plots

    r = sim.simulate(sim.compose("default", ["population.size=1000", "horizon=10"]))

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(plots, "run_plots", boom)
    with pytest.raises(RuntimeError):
        r.save(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cli_rerun_from_a_resolved_config_is_identical(tmp_path):
    args = [sys.executable, "-m", "sim.cli", "run", "-q", "--no-plots"]
    first = subprocess.run([*args, "population.size=1500", "horizon=30", "seed=4", f"out={tmp_path}"], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    path = Path(first.stdout.strip())
    again = subprocess.run([*args, "--config", str(path / "config.yaml")], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(path / "daily.parquet"), pd.read_parquet(Path(again.stdout.strip()) / "daily.parquet"))


def test_cli_unwritable_results_folder_fails_before_simulating(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "run", f"out={blocker}/runs", "population.size=500", "horizon=5"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: out = ") and "cannot create the results folder" in proc.stderr


def test_an_edge_list_sets_the_population_in_the_resolved_config(tmp_path):
    edges = tmp_path / "g.txt"
    edges.write_text("# nodes: 300\n" + "".join(f"{i} {(i * 7 + 1) % 300}\n" for i in range(300)))
    r = sim.simulate(sim.compose("default", ["graph=edgelist", f"graph.path={edges}", "horizon=5"]))
    assert r.config.population.size == 300 and r.summary["population"] == 300


def test_a_run_records_the_hash_of_every_input_and_a_rerun_warns_when_one_changed(tmp_path, capsys):
    """Provenance: summary.json lists each file read (scenario files, the edge list) with its sha256;
    `sim run --config` on that folder warns, in one line, when the edge list is no longer the same."""
    import hashlib
    import json

    from sim import cli

    edges = tmp_path / "friends.txt"
    edges.write_text("0 1\n1 2\n2 3\n3 0\n")
    assert cli.main(["run", "-q", "--no-plots", "graph=edgelist", f"graph.path={edges}", "adoption.seed_fraction=0.01", "horizon=3",
                     f"out={tmp_path / 'runs'}"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    inputs = json.loads((folder / "summary.json").read_text())["inputs"]
    assert inputs[str(edges.resolve())] == "sha256:" + hashlib.sha256(edges.read_bytes()).hexdigest()
    assert any(p.endswith("named/default.yaml") for p in inputs)
    assert cli.main(["run", "-q", "--no-plots", "--config", str(folder / "config.yaml")]) == 0
    assert "warning" not in capsys.readouterr().err  # same input: no warning
    edges.write_text("0 1\n1 2\n2 3\n3 0\n0 2\n")
    assert cli.main(["run", "-q", "--no-plots", "--config", str(folder / "config.yaml")]) == 0
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and str(edges.resolve()) in warnings[0] and "changed since the run" in warnings[0]
