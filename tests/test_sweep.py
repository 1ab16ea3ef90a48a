"""Sweeps through Hydra's multirun: launchers, collection into tidy tables, resuming."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from sim.experiment import is_complete, load_sweep, run_name

TINY = ["population.size=1200", "horizon=20"]
SIM = [sys.executable, "-m", "sim.cli", "run", "-m"]


def sweep(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*SIM, *args], capture_output=True, text=True, timeout=timeout)


def test_a_sweep_over_two_reward_values_writes_both_and_collects_the_swept_column(tmp_path):
    folder = tmp_path / "sweep"
    proc = sweep("mechanisms.referral.inviter_reward=5,30", "seed=0,1", *TINY, f"hydra.sweep.dir={folder}")
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == folder
    runs = sorted(p.name for p in (folder / "runs").iterdir())
    assert runs == [f"mechanisms.referral.inviter_reward={r},seed={s}" for r in (30, 5) for s in (0, 1)]
    daily = pd.read_parquet(folder / "sweep.parquet")
    assert list(daily.columns[:4]) == ["mechanisms.referral.inviter_reward", "seed", "run", "day"]
    assert sorted(daily["mechanisms.referral.inviter_reward"].unique()) == [5, 30]
    assert len(daily) == 4 * 20 and "population.size" not in daily  # a fixed override is not a swept column
    horizon = pd.read_parquet(folder / "horizon.parquet").set_index(["mechanisms.referral.inviter_reward", "seed"])
    assert len(horizon) == 4
    for seed in (0, 1):  # paid per accepted invitation: a larger reward costs more per invitation accepted
        rich, poor = horizon.loc[(30, seed)], horizon.loc[(5, seed)]
        assert rich["incentive_cost"] / rich["invites_accepted"] > poor["incentive_cost"] / poor["invites_accepted"]
    assert (folder / "report.html").is_file() and (folder / "plots" / "sweep_mechanisms.referral.inviter_reward.png").is_file()
    assert (folder / "multirun.yaml").is_file()


def test_a_sweep_over_two_parameters_draws_a_heatmap():
    s = load_sweep_fixture()
    assert s.varied == ["mechanisms.referral.inviter_reward", "graph"]
    from sim import plots

    with tempfile.TemporaryDirectory() as d:
        figures = plots.sweep_plots(s, Path(d))
        assert set(figures) == {"sweep_mechanisms.referral.inviter_reward", "sweep_graph", "sweep_heatmap"}
        assert all(p.stat().st_size > 10_000 for p in figures.values())


def load_sweep_fixture():
    """A sweep folder made of real runs, without Hydra (the collector only reads run folders)."""
    import sim
    from sim.runs import write_run_folder

    root = Path(tempfile.mkdtemp())
    for reward in (5, 20):
        for graph in ("er", "holme_kim"):
            for seed in (0, 1):
                r = sim.simulate(sim.compose("default", ["population.size=600", "horizon=15", f"graph={graph}",
                                                         f"mechanisms.referral.inviter_reward={reward}"], seed=seed))
                r.summary["sweep"] = {"mechanisms.referral.inviter_reward": reward, "graph": graph, "seed": seed}
                write_run_folder(r, root / "runs", plots=False, name=f"reward={reward},graph={graph},seed={seed}")
    s = load_sweep(root)
    shutil.rmtree(root)
    return s


def test_a_bad_swept_value_stops_the_sweep_before_any_job(tmp_path):
    folder = tmp_path / "sweep"
    proc = sweep("mechanisms.referral.inviter_reward=5,-1", *TINY, f"hydra.sweep.dir={folder}")
    assert proc.returncode == 2
    assert proc.stderr == "error: mechanisms.referral.inviter_reward = -1.0: allowed is a number in [0, 10000] (RMB per accepted invite)\n"
    assert not (folder / "runs").exists()
    proc = sweep("scenario=default,referal_double", *TINY, f"hydra.sweep.dir={folder}")
    assert proc.returncode == 2 and "did you mean 'referral_double'?" in proc.stderr


def test_an_interrupted_sweep_resumes_and_skips_finished_runs(tmp_path):
    folder = tmp_path / "sweep"
    args = [*SIM, "seed=0,1,2,3,4,5", *TINY, f"hydra.sweep.dir={folder}", "hydra.launcher.n_jobs=1"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    runs = folder / "runs"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if runs.is_dir() and any(not p.name.startswith(".") for p in runs.iterdir()):
                break
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)  # kill the sweep and its workers mid-way
    finally:
        proc.wait(timeout=60)
    done = {p.name: p.stat().st_ino for p in runs.iterdir() if not p.name.startswith(".")}
    assert 1 <= len(done) < 6, done
    assert all(is_complete(runs / name) for name in done)  # a killed job leaves its run folder whole or absent
    assert not (folder / "sweep.parquet").exists()

    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    finished = {p.name: p.stat().st_ino for p in runs.iterdir()}
    assert set(finished) == {f"seed={s}" for s in range(6)}  # every job once, no leftovers
    for name, inode in done.items():  # the runs finished before the kill were skipped, not redone
        assert finished[name] == inode
        assert f"[sweep] {name}: already complete, skipped" in again.stderr
    assert len(pd.read_parquet(folder / "horizon.parquet")) == 6


def _failing(monkeypatch, fail):
    """``sim.runs.simulate`` calling ``fail()`` for the run of seed 1 instead of simulating it."""
    import sim.runs

    simulate = sim.runs.simulate
    monkeypatch.setattr(sim.runs, "simulate", lambda cfg, *a, **k: fail() if cfg.seed == 1 else simulate(cfg, *a, **k))


def test_a_failed_job_says_so_in_one_line_keeps_the_other_runs_and_resumes(tmp_path, monkeypatch, capsys):
    from sim import cli
    from sim.schema import SimulationError

    folder = tmp_path / "sweep"
    args = ["run", "-m", "seed=0,1,2", *TINY, f"hydra.sweep.dir={folder}", "hydra.launcher.n_jobs=1"]

    def broken():
        raise SimulationError("column dau: -1 on day 3")

    with monkeypatch.context() as patch:
        _failing(patch, broken)
        assert cli.main(args) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert "[sweep] seed=1: failed: column dau: -1 on day 3\n" in err
    assert err.splitlines()[-1] == (f"error: the run seed=1 failed: column dau: -1 on day 3; the complete runs are kept in "
                                    f"{folder / 'runs'}; rerun the same command with hydra.sweep.dir={folder} to resume it")
    assert not any(word in err for word in ("Traceback", "Error executing job", "HYDRA_FULL_ERROR"))  # (Hydra's own report)
    assert "HYDRA_FULL_ERROR" not in os.environ
    assert sorted(p.name for p in (folder / "runs").iterdir()) == ["seed=0", "seed=2"]
    assert cli.main(args) == 0  # resumed: the failed job only
    err = capsys.readouterr().err
    assert "[sweep] seed=0: already complete, skipped" in err and "[sweep] seed=2: already complete, skipped" in err
    assert len(pd.read_parquet(folder / "horizon.parquet")) == 3


def test_an_interruption_that_surfaces_as_another_error_inside_hydra_is_reported_as_the_interruption(tmp_path, monkeypatch, capsys):
    """SIGTERM landing inside OmegaConf's code (composing a job's configuration) can leave its state
    half-changed, so that what comes out is an AttributeError: the sweep still says what it kept."""
    import signal as signals

    from sim import cli

    folder = tmp_path / "sweep"

    def terminated_inside_omegaconf():
        try:
            cli._on_sigterm(signals.SIGTERM, None)
        except KeyboardInterrupt:
            raise AttributeError("'NoneType' object has no attribute '_invalidate_flags_cache'") from None

    _failing(monkeypatch, terminated_inside_omegaconf)
    code = cli.main(["run", "-m", "seed=0,1,2", *TINY, f"hydra.sweep.dir={folder}", "hydra.launcher.n_jobs=1"])
    err = capsys.readouterr().err
    kept = [p for p in (folder / "runs").iterdir() if not p.name.startswith(".")]
    assert code == 128 + signals.SIGTERM, err
    assert err.splitlines()[-1] == (f"terminated: the sweep stopped with {len(kept)} of 3 runs complete, kept in {folder / 'runs'}; "
                                    f"rerun the same command with hydra.sweep.dir={folder} to resume it")
    assert len(kept) == 2 and not any(word in err for word in ("Traceback", "Error executing job", "HYDRA_FULL_ERROR"))


def test_run_folder_names_are_safe_and_distinct():
    assert run_name("a.b=1,seed=2") == "a.b=1,seed=2"
    assert run_name("") == "run"
    odd = [run_name("x='a b'"), run_name("x='a_b'"), run_name("+mechanisms/referral=one_sided")]
    assert len(set(odd)) == 3 and not any("/" in n or " " in n for n in odd)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_ray_launcher_runs_two_jobs_on_a_local_ray_instance(tmp_path):
    """A Ray head node started here, on the loopback address; Hydra's Ray launcher sends it two jobs."""
    ray = shutil.which("ray", path=os.path.dirname(sys.executable))
    if ray is None:
        pytest.skip("ray is not installed (pip install -e '.[ray]')")
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    head = subprocess.Popen([ray, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                             "--include-dashboard=false", f"--temp-dir={temp}", "--block"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert head.poll() is None, "ray start exited"
            time.sleep(0.5)
        folder = tmp_path / "sweep"
        proc = sweep("hydra/launcher=ray", f"hydra.launcher.ray.init.address=127.0.0.1:{port}",
                     "+hydra.launcher.ray.init.object_store_memory=null", "seed=0,1", *TINY, f"hydra.sweep.dir={folder}")
        assert proc.returncode == 0, proc.stderr
        assert "Ray Launcher is launching 2 jobs" in proc.stderr and "Connected to Ray cluster" in proc.stderr
        assert sorted(p.name for p in (folder / "runs").iterdir()) == ["seed=0", "seed=1"]
        assert len(pd.read_parquet(folder / "horizon.parquet")) == 2
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(head.pid, signal.SIGKILL)  # what is left of the Ray processes in the group we started
        except ProcessLookupError:
            pass
        head.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)
