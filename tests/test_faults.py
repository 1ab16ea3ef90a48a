"""Faults: a run killed at any moment leaves either a complete run folder or none."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import pytest

from sim import cli
from sim.runs import RUN_FILES, remove_stale_temporaries


def complete(folder) -> bool:
    return all((folder / f).is_file() for f in RUN_FILES) and len(list((folder / "plots").glob("*.png"))) >= 6


def kill_at_delays(cmd, delays, out, is_complete, what: str) -> None:
    """Start ``cmd`` once per delay, SIGKILL it after that many seconds, and check that every visible
    folder in ``out`` is complete and no hidden temporary survives the stale-temporary cleanup."""
    for delay in delays:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for folder in out.iterdir():
            if not folder.name.startswith("."):
                assert is_complete(folder), f"partial {what} folder after a kill at {delay}s: {folder.name}"
    remove_stale_temporaries(out)
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]


@pytest.mark.slow
def test_a_run_killed_at_any_moment_leaves_no_partial_run_folder(tmp_path):
    cmd = [sys.executable, "-m", "sim.cli", "run", "-q", "population.size=20000", "horizon=150", f"out={tmp_path}"]
    kill_at_delays(cmd, (1.0, 2.5, 4.0, 5.5, 7.0), tmp_path, complete, "run")


def test_an_interrupted_run_cleans_up_after_itself(tmp_path):
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "sim.cli", "run", "-q", "population.size=20000", "horizon=3000", f"out={out}"]
    # Test runners (xdist workers) may ignore SIGINT, and children inherit that: restore the default,
    # as in a terminal, so the run sees Ctrl+C.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not out.exists() and time.time() < deadline:  # the results folder appears once the run starts
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted: nothing was written" in err
    assert list(out.iterdir()) == []


def test_stale_temporaries_of_dead_writers_are_removed_but_live_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f".tmp-p{dead.pid}-x-abc").mkdir()
    (tmp_path / f".tmp-p{os.getpid()}-y-abc").mkdir()
    removed = remove_stale_temporaries(tmp_path)
    assert [p.name for p in removed] == [f".tmp-p{dead.pid}-x-abc"]
    assert (tmp_path / f".tmp-p{os.getpid()}-y-abc").exists()


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT])
@pytest.mark.parametrize("command", [
    ["run", "-q", "--no-plots", "population.size=500", "horizon=5"],
    ["compare", "-q", "--no-plots", "scenario=default,default", "replicates=2", "workers=1", "population.size=500", "horizon=5"],
])
def test_a_write_failure_is_one_line_exit_2_and_leaves_nothing(tmp_path, monkeypatch, capsys, command, err):
    """A full disk (ENOSPC), a lost permission, a read-only file system or a quota mid-write."""
    import pandas as pd

    def full(self, path, *args, **kwargs):
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    code = cli.main([*command, f"out={tmp_path}"])
    message = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in message, message
    assert message.startswith(f"error: out = {str(tmp_path)!r}: could not write ") and f"({os.strerror(err)}); nothing was kept" in message
    assert list(tmp_path.iterdir()) == []  # no run folder, and no hidden temporary either


def test_a_nearly_full_disk_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    import shutil

    from sim import runs

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 * 2**30, 10 * 2**30 - 2**20, 2**20))
    monkeypatch.setattr(runs, "simulate", lambda *a, **k: pytest.fail("simulated although the results could not be written"))
    assert cli.main(["run", "-q", "population.size=500", "horizon=5", f"out={tmp_path}"]) == 2
    message = capsys.readouterr().err.strip()
    assert message == f"error: out = {str(tmp_path)!r}: only 1.0 MB free on its disk; results need at least 64 MB"


@pytest.mark.slow
def test_a_comparison_killed_at_any_moment_leaves_no_partial_folder(tmp_path):
    cmd = [sys.executable, "-m", "sim.cli", "compare", "-q", "scenario=default,referral_double", "replicates=2", "workers=1",
           "population.size=3000", "horizon=60", f"out={tmp_path}"]
    needed = ("config.yaml", "daily.parquet", "horizon.parquet", "differences.parquet", "table.parquet", "report.html")
    kill_at_delays(cmd, (2.0, 4.0, 6.0, 8.0), tmp_path, lambda folder: all((folder / f).is_file() for f in needed), "comparison")
