"""Referral's invitation queue (chains of reused blocks per due day) hands out each day exactly what
a dict of per-due-day buckets filled by a stable sort on the delay would."""

from __future__ import annotations

import numpy as np
import pytest

from sim.graph.csr import INDEX


def _queue_reference(days, seed):
    """A dict of per-due-day buckets: a stable sort by delay, one slice per day."""
    from sim.mechanisms.referral import ORGANIC, REFERRAL

    queue, out = {}, []
    for day, (target, senders, edge, delay, window) in enumerate(days):
        bucket = queue.pop(day, [])
        cols = [np.concatenate(c) if c else np.zeros(0, np.int64) for c in zip(*bucket)] if bucket else [np.zeros(0, np.int64)] * 4
        receiver, sender, e, channel = cols
        late = channel == ORGANIC
        out.append((receiver[~late], sender[~late], e[~late], receiver[late], sender[late], e[late]))
        sent = target >= 0
        order = np.argsort(delay, kind="stable")
        ch = np.where(delay + 1 > window, ORGANIC, REFERRAL).astype(np.int8)
        cols = (target[sent].astype(np.int64)[order], senders[sent][order], edge[sent][order], ch[order])
        d_sorted = delay[order]
        for d in np.unique(delay):
            sel = d_sorted == d
            queue.setdefault(day + 1 + int(d), []).append(tuple(c[sel] for c in cols))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_referral_queue_equals_the_per_day_buckets(seed):
    from sim.mechanisms.referral import MAX_DELAY_DAYS, _Queue

    rng = np.random.default_rng(seed)
    days = []
    p = rng.uniform(0.02, 1.0)
    for _ in range(150):
        n = int(rng.integers(0, 400)) if rng.random() < 0.9 else 0
        target = np.where(rng.random(n) < 0.8, rng.integers(0, 1000, n), -1).astype(INDEX)
        senders, edge = rng.integers(0, 1000, n), rng.integers(0, 10**6, n)
        delay = np.minimum(rng.geometric(p, int((target >= 0).sum())) - 1, MAX_DELAY_DAYS)
        days.append((target, senders, edge, delay, int(rng.integers(0, 10))))
    expected = _queue_reference(days, seed)
    q = _Queue(blocks=int(rng.integers(1, 5)))  # small: the queue grows
    for day, (target, senders, edge, delay, window) in enumerate(days):
        got = q.take(day)
        for g, w in zip(got, expected[day]):
            assert g.dtype == np.int64 and np.array_equal(g, w)
        q.push(target, senders, edge, delay, day, window)
