"""Result folders under attack: sweeps resumed over broken or duplicated run folders, a sweep aimed at
another kind of folder, sweeps too large to make, and sweeps stopped by SIGTERM."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import sim
from sim import folders
from sim import runs as run_files
from sim.experiment import check_sweep, is_complete, load_sweep
from sim.runs import write_run_folder

TINY = ["population.size=500", "horizon=5"]
SIM = [sys.executable, "-m", "sim.cli"]


def sweep(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*SIM, "run", "-m", *args], capture_output=True, text=True, timeout=timeout)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "runs").iterdir())


def test_a_run_folder_is_complete_only_while_its_manifest_matches_every_file(tmp_path):
    result = sim.simulate(sim.compose("default", TINY))
    path = write_run_folder(result, tmp_path, plots=False, name="r")
    assert is_complete(path)
    manifest = folders.read_manifest(path)
    assert manifest["run"] == "r" and set(run_files.RUN_FILES) <= set(manifest["files"])
    for attack in (lambda: (path / "summary.json").write_text((path / "summary.json").read_text()[:-20]),  # truncated
                   lambda: (path / "daily.parquet").write_bytes(b""),  # 0 bytes
                   lambda: (path / "cohorts.parquet").unlink(),  # missing
                   lambda: (path / folders.MANIFEST).write_text("{\"run\": "),  # the manifest itself cut short
                   lambda: (path / folders.MANIFEST).unlink()):  # written by a version without manifests, or half-copied
        path = write_run_folder(result, tmp_path, plots=False, name=f"r{len(list(tmp_path.iterdir()))}")
        assert is_complete(path)
        attack()
        assert not is_complete(path)


def test_a_resumed_sweep_replaces_broken_run_folders_once_and_collects_each_job_once(tmp_path):
    folder = tmp_path / "sweep"
    args = ["seed=0,1,2", *TINY, f"hydra.sweep.dir={folder}", "hydra.launcher.n_jobs=1"]
    assert sweep(*args).returncode == 0
    runs = folder / "runs"
    (runs / "seed=0" / "daily.parquet").write_bytes(b"")  # a 0-byte parquet
    text = (runs / "seed=1" / "summary.json").read_text()
    (runs / "seed=1" / "summary.json").write_text(text[: len(text) // 2])  # truncated JSON
    (runs / "seed=2" / "cohorts.parquet").unlink()  # a missing file
    for _ in range(2):  # resumed twice: replaced the first time, skipped the second
        again = sweep(*args)
        assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
        assert names(folder) == ["seed=0", "seed=1", "seed=2"]
        assert all(is_complete(runs / n) for n in names(folder))
        horizon = pd.read_parquet(folder / "horizon.parquet")
        assert sorted(horizon["seed"]) == [0, 1, 2]
    assert again.stderr.count("already complete, skipped") == 3
    assert not [p for p in runs.iterdir() if p.name.startswith(".")]


def test_a_job_written_twice_is_collected_once(tmp_path):
    """``seed=2`` and ``seed=2-2``: the same job written by two sweeps into one folder at once."""
    runs = tmp_path / "runs"
    for seed, copies in ((1, 1), (2, 2)):
        result = sim.simulate(sim.compose("default", TINY, seed=seed))
        result.summary["sweep"] = {"seed": seed}
        for _ in range(copies):
            write_run_folder(result, runs, plots=False, name=f"seed={seed}")
    assert sorted(p.name for p in runs.iterdir()) == ["seed=1", "seed=2", "seed=2-2"]
    s = load_sweep(tmp_path)
    assert sorted(s.horizon["seed"]) == [1, 2] and list(s.horizon["run"]) == ["seed=1", "seed=2"]
    assert sorted(s.daily["run"].unique()) == ["seed=1", "seed=2"]


def test_a_job_finished_elsewhere_is_kept_and_the_second_copy_dropped(tmp_path):
    """The second of two identical sweeps to finish a job finds it complete: no ``-2`` folder."""
    result = sim.simulate(sim.compose("default", TINY, seed=2))
    first = write_run_folder(result, tmp_path, plots=False, name="seed=2", replace=True)
    inode = first.stat().st_ino
    again = write_run_folder(result, tmp_path, plots=False, name="seed=2", replace=True)
    assert again == first and first.stat().st_ino == inode
    assert [p.name for p in tmp_path.iterdir()] == ["seed=2"]


def test_a_job_published_by_another_writer_between_look_and_rename_is_kept(tmp_path, monkeypatch):
    """The race of two identical sweeps: the name is free when looked at, and the other sweep's
    copy of the job lands there just before our rename."""
    result = sim.simulate(sim.compose("default", TINY, seed=2))
    runs = tmp_path / "runs"
    other = write_run_folder(result, tmp_path / "other", plots=False, name="seed=2")
    real, raced = os.rename, []

    def rename(src, dst):
        if Path(dst) == runs / "seed=2" and not raced:
            raced.append(real(other, dst))
        return real(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    assert write_run_folder(result, runs, plots=False, name="seed=2", replace=True) == runs / "seed=2"
    assert raced and [p.name for p in runs.iterdir()] == ["seed=2"] and is_complete(runs / "seed=2")


def test_two_identical_sweeps_into_one_folder_make_each_run_once(tmp_path):
    folder = tmp_path / "sweep"
    args = [*SIM, "run", "-m", "seed=0,1,2,3", "population.size=3000", "horizon=30", f"hydra.sweep.dir={folder}",
            "hydra.launcher.n_jobs=1"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    assert names(folder) == [f"seed={s}" for s in range(4)]
    assert sorted(pd.read_parquet(folder / "horizon.parquet")["seed"]) == [0, 1, 2, 3]


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def test_a_sweep_aimed_at_a_comparison_folder_is_refused_and_changes_nothing(tmp_path):
    done = subprocess.run([*SIM, "compare", "-q", "scenario=default,default", "replicates=2", "workers=1", *TINY, f"out={tmp_path}"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    comparison = Path(done.stdout.strip())
    before = _digests(comparison)
    proc = sweep("seed=0,1", *TINY, f"hydra.sweep.dir={comparison}")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"error: hydra.sweep.dir = {str(comparison)!r}: the folder holds results of another kind")
    assert _digests(comparison) == before and not (comparison / "runs").exists()


def test_a_sweep_is_refused_by_a_points_folder_and_resumes_its_own(tmp_path):
    folder = tmp_path / "sweep"
    assert sweep("seed=0,1", *TINY, f"hydra.sweep.dir={folder}").returncode == 0
    assert sweep("seed=0,1,2", *TINY, f"hydra.sweep.dir={folder}").returncode == 0  # its own: resumed and extended
    assert names(folder) == ["seed=0", "seed=1", "seed=2"]
    points = tmp_path / "points"
    points.mkdir()
    (points / "points.json").write_text("{}")
    proc = sweep("seed=0,1", *TINY, f"hydra.sweep.dir={points}")
    assert proc.returncode == 2 and "the folder holds a multirun over points" in proc.stderr
    assert sorted(p.name for p in points.iterdir()) == ["points.json"]


def test_a_sweep_of_ten_million_jobs_is_refused_at_once(tmp_path):
    t0 = time.monotonic()
    proc = sweep("seed=range(0,10000000)", *TINY, f"hydra.sweep.dir={tmp_path / 'sweep'}", timeout=120)
    assert proc.returncode == 2 and time.monotonic() - t0 < 60
    assert proc.stderr == ("error: seed=range(0,10000000): the sweep has 10,000,000 jobs; allowed is at most 100,000 per sweep "
                           "(split it into several sweeps into the same hydra.sweep.dir)\n")
    assert not (tmp_path / "sweep").exists()


def test_a_range_of_numbers_is_validated_by_its_ends_not_value_by_value():
    code = f"from sim.experiment import check_sweep; check_sweep(['seed=range(0,100000)', *{TINY!r}])"
    try:  # value by value took about 25 ms each: 40 minutes
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("validating a range of 100,000 seeds took over a minute")
    assert done.returncode == 0, done.stderr
    with pytest.raises(sim.ConfigError, match=r"^horizon = 36600: allowed is a number in \[1, 36500\]"):
        check_sweep(["horizon=range(36000,36700,100)", "population.size=500"])


def test_a_terminated_sweep_says_what_was_kept_and_how_to_resume(tmp_path):
    folder = tmp_path / "sweep"
    args = [*SIM, "run", "-m", "seed=range(0,30)", "population.size=20000", "horizon=100", f"hydra.sweep.dir={folder}",
            "hydra.launcher.n_jobs=1"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = folder / "runs"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (runs.is_dir() and any(not p.name.startswith(".") for p in runs.iterdir())):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # to the sweep only, as SLURM's preemption signal reaches it
    _, err = proc.communicate(timeout=120)
    kept = [p for p in runs.iterdir() if not p.name.startswith(".")]
    assert proc.returncode == 143, err
    assert err.splitlines()[-1] == (f"terminated: the sweep stopped with {len(kept)} of 30 runs complete, kept in {runs}; "
                                    f"rerun the same command with hydra.sweep.dir={folder} to resume it")
    assert 1 <= len(kept) < 30 and all(is_complete(p) for p in kept)
    assert not [p for p in runs.iterdir() if p.name.startswith(".")]  # no temporary left
    assert "Traceback" not in err and not (folder / "sweep.parquet").exists()


def test_a_table_reads_back_as_it_was_written_with_only_its_text_columns_dictionary_encoded(tmp_path):
    import numpy as np
    import pyarrow.parquet as pq

    frame = pd.DataFrame({
        "channel": pd.Series(["all", "referral", "", "all"] * 50, dtype="str"),
        "name": pd.Series(["a", None, "b", "c"] * 50, dtype=object),
        "kind": pd.Categorical(["x", "y", "x", "x"] * 50),
        "day": np.arange(200, dtype=np.int32), "users": np.arange(200, dtype=np.int64) * 3,
        "share": np.r_[np.linspace(0, 1, 199), np.nan], "open": np.arange(200) % 3 == 0,
    })
    folders.write_table(frame, tmp_path / "t.parquet")
    frame.to_parquet(tmp_path / "default.parquet", index=False)  # (pandas' own choices: text read back as str)
    back = pd.read_parquet(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(back, pd.read_parquet(tmp_path / "default.parquet"), check_exact=True)
    pd.testing.assert_frame_equal(back.drop(columns="name"), frame.drop(columns="name"), check_exact=True)
    columns = pq.ParquetFile(tmp_path / "t.parquet").metadata.row_group(0)
    encoded = {columns.column(i).path_in_schema: "RLE_DICTIONARY" in columns.column(i).encodings for i in range(columns.num_columns)}
    assert encoded == {"channel": True, "name": True, "kind": True, "day": False, "users": False, "share": False, "open": False}


def test_the_run_tables_read_back_as_the_run_made_them(tmp_path):
    result = sim.simulate(sim.compose("all_mechanisms", ["population.size=2000", "horizon=40"]))
    back = sim.load_run(write_run_folder(result, tmp_path, plots=False))
    for table in ("daily", "cohorts", "channels"):
        pd.testing.assert_frame_equal(getattr(back, table), getattr(result, table), check_exact=True)


def _sum_of_orders(first: int) -> int:
    return first + folders.next_order() + folders.next_order()


def test_a_helper_takes_further_orders_and_a_large_one_is_sent_while_it_still_prepares():
    helper = folders.HelperProcess(lambda first: sum(first) + _sum_of_orders(0), prepare=lambda: time.sleep(1.0)).start()
    try:
        large = list(range(200_000))  # (beyond a pipe's buffer: a plain send would wait for the child to read it)
        t0 = time.monotonic()
        helper.send(large, more=True, background=True)
        assert time.monotonic() - t0 < 0.5
        helper.send(1, more=True)
        helper.send(2)
        assert helper.wait() == sum(large) + 3
    finally:
        helper.stop()


def test_a_helper_that_fails_before_reading_a_background_order_makes_the_next_call_raise_its_error():
    def fail():
        raise ValueError("could not prepare")

    helper = folders.HelperProcess(lambda order: order, prepare=fail).start()
    try:
        helper.send(bytes(4 << 20), more=True, background=True)  # (more than the order pipe holds, 1 MiB: read or refused)
        with pytest.raises(ValueError, match="could not prepare"):
            helper.send(1)
    finally:
        helper.stop()
    assert helper.pid is None
