"""Two cores for one large run: a compiled pass over many people done in two halves at once.

Most of a day of a large market (a million people) is spent in compiled passes that loop over
people, each person's result written to its own slot: visit chances, churn hazards, the sampling of
neighbours. The compiled functions release the GIL (``sim.compiled.jit``), so such a pass can run
its first half on a helper thread while the calling thread runs the second half. Every element is
computed by the same code from the same inputs in either case, so the results are bit for bit the
same with one thread or two; only passes whose elements are independent (no element reads what
another writes, nothing summed across elements) are split this way.

A pass may be split when it is long enough to pay for the hand-over (:data:`MIN_SPLIT` elements)
and this process may use a second core (:func:`enabled`): the machine gives it two or more, and it
is not a worker of a process pool, whose workers already keep the cores busy (pools call
:func:`single` in each worker). Whether two halves are faster depends on more than the length:
whether the columns a pass reads fit in the CPU's cache (two cores share its bandwidth), and
whether another process holds the second core (then the helper's half waits for it). So each pass
is timed, per element and per length within a factor of two, both ways (:class:`_Timing`), and done the faster way; the slower way is
tried again now and then, as the market grows or the machine gets busier. Timing chooses only the
speed: the results are the same either way.

``SIM_THREADS=1`` in the environment keeps every run on one thread; ``SIM_THREADS=2`` splits every
pass long enough, untimed (as the tests do), even where the machine reports one core.

A pass given to :func:`run` has two more arguments than its elements need, ``lo`` and ``hi``: it
does elements ``lo`` to ``hi - 1`` of ``n``. A pass that keeps some elements (a filter) compacts what
it keeps of its range to the start of that range and returns how many; :func:`joined` then brings
the halves' kept elements together, in order, as one pass over all would have left them.
"""

from __future__ import annotations

import itertools
import operator
import os
import queue
import threading
import time

#: The shortest pass (elements) that may be split in two. Handing half a pass to the helper thread
#: and taking it back costs 10-30 microseconds on the 2-core machine of the benchmarks; a pass over
#: people takes about 5 ns per element where their columns fit in cache (100,000 people: passes
#: there are shorter than this, and splitting them made the run 4-12 % slower) and 20-80 ns where
#: they do not (a million: a cache miss per column read), where passes of 32,768 elements and more
#: ran 1.2-2x faster in halves; the timing decides the rest.
MIN_SPLIT = 32_768

#: Of a pass's calls, the first :data:`TRIALS` alternate one thread and two; after them one call in
#: :data:`RETRY_EVERY` goes the way that was slower, so the timing follows a growing market and a
#: machine that gets busier or quieter (a cost of 1/16 of the difference when nothing changed).
TRIALS = 4
RETRY_EVERY = 16

_ENV = "SIM_THREADS"


class _Helper:
    """The helper thread (a daemon, started at the first split) and the queues to and from it.
    Jobs carry a number, so an answer left over from a pass the caller stopped waiting for is never
    taken for a later one's. ``claim`` holds the thread splitting a pass now (one at a time: a server
    may simulate in several threads; the others do their passes whole): it is taken and let go by
    single dictionary operations, so that a Ctrl+C landing anywhere cannot leave it held."""

    def __init__(self):
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.answers: queue.SimpleQueue = queue.SimpleQueue()
        self.numbers = itertools.count()
        self.sent = self.done = -1  # the numbers of the last job sent and of the last one done
        self.claim: dict[str, int] = {}
        threading.Thread(target=self._work, name="growth-sim second half", daemon=True).start()

    def _work(self) -> None:
        while True:
            number, kernel, args = self.jobs.get()
            try:
                answer = (number, kernel(*args), None)
            except BaseException as error:  # (handed to the caller, who raises it)
                answer = (number, None, error)
            self.done = number
            self.answers.put(answer)

    def send(self, kernel, args: tuple) -> int:
        number = next(self.numbers)
        self.jobs.put((number, kernel, args))
        self.sent = number
        return number

    def take(self, number: int):
        while True:
            got, value, error = self.answers.get()
            if got == number:
                if error is not None:
                    raise error
                return value

    def settle(self) -> None:
        """Wait until the helper has done every job sent: a pass that raises (an error in the
        caller's half, Ctrl+C) does so only once nothing writes into its arrays any more. A Ctrl+C
        during this wait (at most a half pass) is raised when it ends."""
        interrupted = None
        while self.done < self.sent:
            try:
                self.answers.get()  # (answers of finished jobs: nobody waits for them any more)
            except KeyboardInterrupt as exc:
                interrupted = exc
        if interrupted is not None:
            raise interrupted


class _Timing:
    """Seconds per element of one pass, done whole (``one``) and in halves (``two``): for the way
    taken, the mean of the latest calls (an exponential moving average weighting the latest by 1/4);
    for the other way, its latest retry (older ones may be from a different market or machine)."""

    __slots__ = ("calls", "one", "two")

    def __init__(self):
        self.calls, self.one, self.two = 0, 0.0, 0.0

    def split_next(self) -> bool:
        """Whether the next call should be done in halves."""
        calls = self.calls
        self.calls += 1
        if calls < TRIALS:
            return calls % 2 == 1
        faster_in_halves = self.two < self.one
        return not faster_in_halves if calls % RETRY_EVERY == 0 else faster_in_halves

    def note(self, in_halves: bool, seconds: float, n: int) -> None:
        rate = seconds / n
        if self.calls <= TRIALS or (self.calls - 1) % RETRY_EVERY == 0:  # a trial or a retry: kept as it is
            taken = rate
        else:
            taken = 0.75 * (self.two if in_halves else self.one) + 0.25 * rate
        if in_halves:
            self.two = taken
        else:
            self.one = taken


_helper: _Helper | None = None
_allowed: bool | None = None  # None: not decided yet (see enabled)
_timed = True  # False under SIM_THREADS=2: every pass long enough is split
_timings: dict = {}  # (the compiled pass, its length's power of two) -> its _Timing
_lock = threading.Lock()


def _forget_helper() -> None:
    """In a forked child: the parent's helper thread is not there (the child starts its own if it
    needs one), and whether it may split is decided afresh (a worker of a fork-started pool may not)."""
    global _helper, _lock, _allowed
    _helper, _lock, _allowed = None, threading.Lock(), None


os.register_at_fork(after_in_child=_forget_helper)


def cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # (not on Linux)
        return os.cpu_count() or 1


def enabled() -> bool:
    """Whether passes may be split over two threads in this process (see the module docstring)."""
    global _allowed, _timed
    if _allowed is None:
        raw = os.environ.get(_ENV, "")
        setting = raw.strip()
        if setting not in ("", "1", "2"):
            from sim.schema import ConfigError

            raise ConfigError(f"{_ENV}={raw!r} in the environment: allowed are 1 (one thread per run) or 2 (two where a pass is long), or unset or empty (two when the machine gives this process two cores)")
        _timed = setting != "2"
        if setting:
            _allowed = setting == "2"
        else:
            import multiprocessing

            _allowed = cores() >= 2 and multiprocessing.parent_process() is None
    return _allowed


def single() -> None:
    """Keep this process's passes on one thread (a pool worker: the pool already uses the cores)."""
    global _allowed
    _allowed = False


def reset() -> None:
    """Decide again, from the environment and the machine, at the next pass, and forget the timings (tests)."""
    global _allowed, _timed
    _allowed, _timed = None, True
    _timings.clear()


def run(kernel, n: int, *args) -> list[tuple[int, object]]:
    """``kernel(*args, lo, hi)`` over elements ``0 .. n - 1``: in one call, or in two halves at once
    (``0 .. n // 2 - 1`` on the helper thread, the rest on this one) when ``n`` is at least
    :data:`MIN_SPLIT` and :func:`enabled`. The kernel writes its results into arrays among ``args``.
    Returns each part's ``lo`` and what the kernel returned for it, in order."""
    n = operator.index(n)  # (a numpy integer too; not a float)
    if n < MIN_SPLIT or not enabled():
        return [(0, kernel(*args, 0, n))]
    if not _timed:
        return _in_halves(kernel, n, args)
    key = kernel, n.bit_length()  # (timed per length within a factor of two: the cost per element depends on it)
    timing = _timings.get(key) or _timings.setdefault(key, _Timing())
    split = timing.split_next()
    start = time.perf_counter()
    parts = _in_halves(kernel, n, args) if split else [(0, kernel(*args, 0, n))]
    timing.note(len(parts) == 2, time.perf_counter() - start, n)  # (done whole if another thread was splitting)
    return parts


def _in_halves(kernel, n: int, args: tuple) -> list[tuple[int, object]]:
    global _helper
    with _lock:
        if _helper is None:
            _helper = _Helper()
        helper = _helper
    me = threading.get_ident()
    try:
        if helper.claim.setdefault("owner", me) != me:  # another thread of this process is splitting a pass
            return [(0, kernel(*args, 0, n))]
        mid = n // 2
        try:
            number = helper.send(kernel, (*args, 0, mid))
            second = kernel(*args, mid, n)
            first = helper.take(number)
        except BaseException:
            helper.settle()
            raise
        return [(0, first), (mid, second)]
    finally:
        if helper.claim.get("owner") == me:
            helper.claim.pop("owner", None)


def joined(parts: list[tuple[int, int]], *arrays) -> int:
    """The elements a filter kept, ``count`` at position ``lo`` of every one of ``arrays`` for each
    part ``(lo, count)`` (as :func:`run` returns them), moved together to the start of the arrays in
    order. Returns how many there are."""
    m = 0
    for lo, count in parts:
        if lo != m and count:
            for a in arrays:
                a[m:m + count] = a[lo:lo + count]  # (numpy copies overlapping ranges as memmove does)
        m += count
    return m


__all__ = ["MIN_SPLIT", "cores", "enabled", "joined", "reset", "run", "single"]
