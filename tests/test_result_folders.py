"""Result folders under attack: sweeps too large to make."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

import sim
from sim.experiment import check_sweep

TINY = ["population.size=500", "horizon=5"]
SIM = [sys.executable, "-m", "sim.cli"]


def sweep(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*SIM, "run", "-m", *args], capture_output=True, text=True, timeout=timeout)


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
