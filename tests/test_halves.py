"""Two halves of a pass at once (sim.halves): the same results, bit for bit, as one thread."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import sim
from sim import behaviour as bh
from sim import halves
from sim.bench import all_mechanisms_overrides
from sim.schema import ConfigError


@pytest.fixture
def every_pass_split(monkeypatch):
    """Split every pass, however short (they are not, at the tests' sizes)."""
    monkeypatch.setattr(halves, "MIN_SPLIT", 1)
    monkeypatch.setattr(halves, "_allowed", True)
    monkeypatch.setattr(halves, "_timed", False)


def _fingerprint(result) -> str:
    h = hashlib.sha256()
    for table in (result.daily, result.cohorts, result.channels):
        h.update(table.to_csv().encode())
    return h.hexdigest()


def test_every_mechanism_gives_the_same_run_with_passes_split(monkeypatch):
    cfg = sim.compose("default", [*all_mechanisms_overrides(), "population.size=6000", "horizon=90"], seed=3)
    monkeypatch.setattr(halves, "_allowed", False)
    one = _fingerprint(sim.simulate(cfg))
    monkeypatch.setattr(halves, "MIN_SPLIT", 1)
    monkeypatch.setattr(halves, "_allowed", True)
    monkeypatch.setattr(halves, "_timed", False)
    calls = []
    run = halves.run
    monkeypatch.setattr(halves, "run", lambda kernel, n, *args: (calls.append(kernel.__name__), run(kernel, n, *args))[1])
    two = _fingerprint(sim.simulate(cfg))
    assert one == two
    assert {"_visit_probabilities", "_churn_hazards", "_decide_purchases", "_sample_kernel", "_show_part", "_keep_reachable"} <= set(calls)


def test_a_split_pass_equals_the_whole_pass(every_pass_split):
    rng = np.random.default_rng(1)
    n = 1001
    joined, satisfaction = rng.integers(0, 50, n).astype(np.int32), rng.random(n).astype(np.float32)
    novelty = rng.random(64)
    idx = rng.integers(0, n, 777)
    whole = np.empty(idx.size)
    bh._sharing(idx, 60, joined, satisfaction, novelty, whole, 0, idx.size)
    split = np.empty(idx.size)
    halves.run(bh._sharing, idx.size, idx, 60, joined, satisfaction, novelty, split)
    assert np.array_equal(whole, split)


def _fails_below(limit):
    def kernel(out, lo, hi):
        if lo < limit:
            raise ValueError(f"refused {lo}")
        out[lo:hi] = 1
    return kernel


def test_an_error_in_the_helpers_half_reaches_the_caller_and_the_helper_goes_on(every_pass_split):
    out = np.zeros(10)
    with pytest.raises(ValueError, match="refused 0"):
        halves.run(_fails_below(1), 10, out)  # (the first half, on the helper thread, fails)
    out[:] = 0
    halves.run(_fails_below(-1), 10, out)
    assert (out == 1).all()


def test_a_pass_that_raises_leaves_nothing_writing_and_the_next_one_splits(every_pass_split):
    """When the caller's half fails (or Ctrl+C lands), the pass raises only once the helper's half
    has finished writing: nothing changes the arrays after the exception."""
    def kernel(out, lo, hi):
        if lo == 0:
            time.sleep(0.3)  # (the helper's half, still running when the caller's half fails)
            out[lo:hi] = 1
        else:
            raise ValueError("the caller's half")

    out = np.zeros(8)
    with pytest.raises(ValueError, match="caller's half"):
        halves.run(kernel, 8, out)
    assert (out[:4] == 1).all()  # (written before the exception, not after)
    parts = halves.run(_fails_below(-1), 8, np.zeros(8))
    assert [lo for lo, _ in parts] == [0, 4]  # (the pass was let go: the next one is split)


def test_the_length_may_be_a_numpy_integer_but_not_a_float(monkeypatch):
    monkeypatch.setattr(halves, "_allowed", True)
    monkeypatch.setattr(halves, "_timed", True)
    monkeypatch.setattr(halves, "_timings", {})
    seen = []

    def kernel(lo, hi):
        seen.append(hi - lo)

    halves.run(kernel, np.int64(halves.MIN_SPLIT))
    assert sum(seen) == halves.MIN_SPLIT
    with pytest.raises(TypeError):
        halves.run(kernel, float(halves.MIN_SPLIT))


def test_short_passes_and_a_single_process_stay_on_one_thread(monkeypatch):
    seen = []

    def kernel(lo, hi):
        seen.append((lo, hi))

    monkeypatch.setattr(halves, "_allowed", True)
    monkeypatch.setattr(halves, "_timed", False)
    halves.run(kernel, halves.MIN_SPLIT - 1)
    halves.single()
    halves.run(kernel, halves.MIN_SPLIT * 3)
    assert seen == [(0, halves.MIN_SPLIT - 1), (0, halves.MIN_SPLIT * 3)]
    monkeypatch.setattr(halves, "_allowed", True)
    seen.clear()
    halves.run(kernel, 100_000)
    assert sorted(seen) == [(0, 50_000), (50_000, 100_000)]


@pytest.mark.parametrize(("setting", "allowed", "timed"), [("1", False, True), ("2", True, False)])
def test_sim_threads_decides(monkeypatch, setting, allowed, timed):
    monkeypatch.setenv("SIM_THREADS", setting)
    halves.reset()
    try:
        assert halves.enabled() is allowed and halves._timed is timed
    finally:
        halves.reset()


def test_the_timing_keeps_to_the_faster_way_and_tries_the_other_now_and_then(monkeypatch):
    """A pass faster whole is done whole after its trials, but for one call in RETRY_EVERY; when the
    halves become faster (the machine got quieter), it follows."""
    monkeypatch.setattr(halves, "_allowed", True)
    monkeypatch.setattr(halves, "_timed", True)
    monkeypatch.setattr(halves, "_timings", {})
    clock = [0.0]
    monkeypatch.setattr(halves.time, "perf_counter", lambda: clock[0])
    cost = {False: 1.0, True: 2.0}  # seconds per call, whole and in halves
    ways = []

    def in_halves(kernel, n, args):
        ways.append(True)
        clock[0] += cost[True]
        return [(0, None), (n // 2, None)]

    def kernel(lo, hi):  # (called whole: in halves goes through in_halves)
        ways.append(False)
        clock[0] += cost[False]

    monkeypatch.setattr(halves, "_in_halves", in_halves)
    for _ in range(2 * halves.RETRY_EVERY):
        halves.run(kernel, halves.MIN_SPLIT)
    assert ways[:halves.TRIALS] == [False, True] * (halves.TRIALS // 2)
    later = ways[halves.TRIALS:]
    assert later.count(True) == 1 and ways[halves.RETRY_EVERY]  # the slower way, tried again once in RETRY_EVERY calls
    cost[True] = 0.25  # the halves are now faster
    ways.clear()
    for _ in range(2 * halves.RETRY_EVERY):
        halves.run(kernel, halves.MIN_SPLIT)
    assert ways[-halves.RETRY_EVERY // 2:].count(False) <= 1


def test_a_bad_sim_threads_is_refused_in_one_line(monkeypatch):
    monkeypatch.setenv("SIM_THREADS", "four")
    halves.reset()
    try:
        with pytest.raises(ConfigError, match=r"SIM_THREADS='four'.*allowed are 1.*or unset or empty"):
            halves.enabled()
    finally:
        monkeypatch.delenv("SIM_THREADS")
        halves.reset()


def test_a_bad_sim_threads_from_the_command_line(tmp_path):
    env = {**os.environ, "SIM_THREADS": "many"}
    done = subprocess.run([sys.executable, "-m", "sim.cli", "run", "population.size=500", "horizon=5", f"out={tmp_path / 'r'}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "SIM_THREADS='many'" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_a_forked_child_decides_afresh_and_splits_with_its_own_helper(every_pass_split, monkeypatch):
    out = np.zeros(8)
    halves.run(_fails_below(-1), 8, out)  # the parent's helper thread exists now
    monkeypatch.setenv("SIM_THREADS", "2")  # (the child decides again, from the environment)
    pid = os.fork()
    if pid == 0:  # the child: no helper thread was copied; a split starts its own
        try:
            decided = halves._allowed is None
            child = np.zeros(8)
            parts = halves.run(_fails_below(-1), 8, child)
            os._exit(0 if decided and len(parts) == 2 and (child == 1).all() else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
