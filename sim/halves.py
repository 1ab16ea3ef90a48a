"""Two cores for one large run: a compiled pass over many people done in two halves at once.

Most of a day of a large market (a million people) is spent in compiled passes that loop over
people, each person's result written to its own slot: visit chances, churn hazards, the sampling of
neighbours. The compiled functions release the GIL (``sim.compiled.jit``), so such a pass can run
its first half on a helper thread while the calling thread runs the second half. Every element is
computed by the same code from the same inputs in either case, so the results are bit for bit the
same with one thread or two; only passes whose elements are independent (no element reads what
another writes, nothing summed across elements) are split this way.

A pass is split only when it is long enough to pay for the hand-over (:data:`MIN_SPLIT` elements)
and this process may use a second core (:func:`enabled`): the machine gives it two or more, and it
is not a worker of a process pool, whose workers already keep the cores busy (pools call
:func:`single` in each worker). ``SIM_THREADS=1`` in the environment keeps every run on one thread;
``SIM_THREADS=2`` allows the second even where the machine reports one core.

A pass given to :func:`run` has two more arguments than its elements need, ``lo`` and ``hi``: it
does elements ``lo`` to ``hi - 1`` of ``n``.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading

#: The shortest pass (elements) split in two. Handing half a pass to the helper thread and taking
#: it back costs about 20-40 microseconds here; a pass over people takes 5-10 ns per element
#: (random reads of their columns), so below about 40,000 elements there is little to gain.
MIN_SPLIT = 40_000

_ENV = "SIM_THREADS"


class _Helper:
    """The helper thread (a daemon, started at the first split) and the queues to and from it.
    Jobs carry a number, so an answer left over from a pass the caller stopped waiting for
    (Ctrl+C) is never taken for a later one's."""

    def __init__(self):
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.answers: queue.SimpleQueue = queue.SimpleQueue()
        self.numbers = itertools.count()
        self.busy = threading.Lock()  # one caller at a time (a server may simulate in several threads)
        threading.Thread(target=self._work, name="growth-sim second half", daemon=True).start()

    def _work(self) -> None:
        while True:
            number, kernel, args = self.jobs.get()
            try:
                self.answers.put((number, kernel(*args), None))
            except BaseException as error:  # (handed to the caller, who raises it)
                self.answers.put((number, None, error))

    def take(self, number: int):
        while True:
            got, value, error = self.answers.get()
            if got == number:
                if error is not None:
                    raise error
                return value


_helper: _Helper | None = None
_allowed: bool | None = None  # None: not decided yet (see enabled)
_lock = threading.Lock()


def _forget_helper() -> None:
    """In a forked child: the parent's helper thread is not there (the child starts its own if it needs one)."""
    global _helper, _lock
    _helper, _lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_helper)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # (not on Linux)
        return os.cpu_count() or 1


def enabled() -> bool:
    """Whether passes may be split over two threads in this process (see the module docstring)."""
    global _allowed
    if _allowed is None:
        setting = os.environ.get(_ENV, "").strip()
        if setting not in ("", "1", "2"):
            from sim.schema import ConfigError

            raise ConfigError(f"{_ENV}={setting!r} in the environment: allowed are 1 (one thread per run) or 2 (two where a pass is long), or unset (two when the machine gives this process two cores)")
        if setting:
            _allowed = setting == "2"
        else:
            import multiprocessing

            _allowed = _cores() >= 2 and multiprocessing.parent_process() is None
    return _allowed


def single() -> None:
    """Keep this process's passes on one thread (a pool worker: the pool already uses the cores)."""
    global _allowed
    _allowed = False


def reset() -> None:
    """Decide again, from the environment and the machine, at the next pass (tests)."""
    global _allowed
    _allowed = None


def run(kernel, n: int, *args) -> None:
    """``kernel(*args, lo, hi)`` over elements ``0 .. n - 1``: in one call, or in two halves at once
    (``0 .. n // 2 - 1`` on the helper thread, the rest on this one) when ``n`` is at least
    :data:`MIN_SPLIT` and :func:`enabled`. The kernel writes its results into arrays among ``args``."""
    global _helper
    if n < MIN_SPLIT or not enabled():
        kernel(*args, 0, n)
        return
    with _lock:
        if _helper is None:
            _helper = _Helper()
        helper = _helper
    if not helper.busy.acquire(blocking=False):  # another thread of this process is splitting a pass
        kernel(*args, 0, n)
        return
    try:
        mid = n // 2
        number = next(helper.numbers)
        helper.jobs.put((number, kernel, (*args, 0, mid)))
        kernel(*args, mid, n)
        helper.take(number)
    finally:
        helper.busy.release()


__all__ = ["MIN_SPLIT", "enabled", "reset", "run", "single"]
