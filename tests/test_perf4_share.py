"""The share-stage kernels give exactly what the plain numpy code they replace gives."""

from __future__ import annotations

import numpy as np
import pytest

from sim.graph.csr import INDEX, Graph


def _graph(seed: int, n: int = 60, m: int = 150, isolated: int = 5) -> Graph:
    """A random graph with a few nodes without neighbours (the last ``isolated`` ids among them)."""
    rng = np.random.default_rng(seed)
    u, v = rng.integers(0, n - isolated, m), rng.integers(0, n - isolated, m)
    return Graph.from_edges(n, u, v)


def _sample_reference(g: Graph, nodes: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """The numpy sampling the kernel replaced."""
    deg = g.degree[nodes]
    u = rng.random(nodes.size)
    slot = g.indptr[nodes] + (u * deg).astype(np.int64)
    has = deg > 0
    edge = np.where(has, slot, -1)
    target = np.where(has, g.indices[np.minimum(slot, g.indices.size - 1)], -1)
    return target.astype(INDEX), edge


def _where_reference(g: Graph, nodes, rng, accept, tries):
    """The numpy retry rounds the kernels replaced."""
    target = np.full(nodes.size, -1, dtype=INDEX)
    edge = np.full(nodes.size, -1, dtype=np.int64)
    todo = np.arange(nodes.size)
    for attempt in range(tries):
        t, e = _sample_reference(g, nodes if attempt == 0 else nodes[todo], rng)
        ok = (t >= 0) & accept[np.maximum(t, 0)]
        target[todo[ok]], edge[todo[ok]] = t[ok], e[ok]
        todo = todo[~ok & (t >= 0)]
        if todo.size == 0:
            break
    return target, edge


@pytest.mark.parametrize("seed", range(20))
def test_sample_neighbours_is_bit_identical_to_numpy(seed):
    g = _graph(seed)
    rng = np.random.default_rng(seed)
    nodes = rng.integers(0, g.n, 300).astype(np.int64 if seed % 2 else INDEX)
    a = g.sample_neighbours(nodes, np.random.default_rng(seed + 100))
    b = _sample_reference(g, nodes, np.random.default_rng(seed + 100))
    assert a[0].dtype == INDEX and a[1].dtype == np.int64
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("seed", range(30))
def test_sample_neighbours_where_is_bit_identical_to_numpy(seed):
    g = _graph(seed)
    rng = np.random.default_rng(seed)
    nodes = rng.integers(0, g.n, int(rng.integers(0, 400))).astype(np.int64 if seed % 2 else INDEX)
    accept = rng.random(g.n) < rng.choice([0.0, 0.2, 0.7, 1.0])
    tries = int(rng.integers(0, 5))
    r1, r2 = np.random.default_rng(seed + 7), np.random.default_rng(seed + 7)
    a = g.sample_neighbours_where(nodes, r1, accept, tries)
    b = _where_reference(g, nodes, r2, accept, tries)
    assert a[0].dtype == INDEX and a[1].dtype == np.int64
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert r1.random() == r2.random()  # the same draws were used up


@pytest.mark.parametrize("seed", range(20))
def test_referral_buckets_equal_a_stable_sort_by_delay(seed):
    from sim.mechanisms.referral import MAX_DELAY_DAYS, ORGANIC, REFERRAL, _bucket_by_delay

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 300))
    target = np.where(rng.random(n) < 0.8, rng.integers(0, 1000, n), -1).astype(INDEX)
    senders, edge = rng.integers(0, 1000, n), rng.integers(0, 10**6, n)
    sent = target >= 0
    delay = np.minimum(rng.geometric(rng.uniform(0.05, 1.0), int(sent.sum())) - 1, MAX_DELAY_DAYS)
    window = int(rng.integers(0, 10))
    cols = (np.empty(delay.size, np.int64), np.empty(delay.size, np.int64), np.empty(delay.size, np.int64), np.empty(delay.size, np.int8))
    end = np.empty(MAX_DELAY_DAYS + 1, np.int64)
    _bucket_by_delay(target, senders, edge, delay, window, *cols, end)
    order = np.argsort(delay, kind="stable")
    channel = np.where(delay + 1 > window, ORGANIC, REFERRAL).astype(np.int8)
    expected = (target[sent].astype(np.int64)[order], senders[sent][order], edge[sent][order], channel[order])
    for got, want in zip(cols, expected):
        assert np.array_equal(got, want)
    assert np.array_equal(end, np.cumsum(np.bincount(delay, minlength=MAX_DELAY_DAYS + 1)))
