"""The share-stage kernels give exactly what the plain numpy code they replace gives."""

from __future__ import annotations

import numpy as np
import pytest

from sim import kernels
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


def _place_reference(people, team_ids, ids, members, team, team_size):
    """The numpy placement the kernel replaced (first entry per person, first come per team)."""
    first = kernels.rank_within(people) == 0
    rows = np.minimum(np.searchsorted(ids, team_ids), max(ids.size - 1, 0))
    is_open = (ids[rows] == team_ids) if ids.size else np.zeros(people.size, bool)
    idx = np.flatnonzero(first & is_open & (team[people] == -1))
    rows = np.searchsorted(ids, team_ids[idx])
    fit = kernels.rank_within(rows) < team_size - members[rows]
    idx, rows = idx[fit], rows[fit]
    placed = np.zeros(people.size, bool)
    placed[idx] = True
    team[people[idx]] = ids[rows]
    np.add.at(members, rows, 1)
    full = np.unique(rows[members[rows] >= team_size])
    return placed, rows, full


@pytest.mark.parametrize("seed", range(40))
def test_group_buy_placement_equals_the_numpy_ranks(seed):
    from sim.mechanisms.group_buy import _place

    rng = np.random.default_rng(seed)
    n, team_size = 50, int(rng.integers(2, 5))
    ids = np.sort(rng.choice(200, size=int(rng.integers(0, 30)), replace=False)).astype(np.int64)
    members = rng.integers(1, team_size, ids.size).astype(np.int32)
    team = np.full(n, -1, np.int64)
    busy = rng.random(n) < 0.3
    if ids.size:
        team[busy] = rng.choice(ids, int(busy.sum()))
    k = int(rng.integers(0, 80))
    people = rng.integers(0, n, k)
    team_ids = np.where(rng.random(k) < 0.8, rng.choice(ids, k) if ids.size else 0, rng.integers(0, 200, k)).astype(np.int64)
    m2, t2 = members.copy(), team.copy()
    placed_ref, rows_ref, full_ref = _place_reference(people, team_ids, ids, m2, t2, team_size)
    placed = np.zeros(k, bool)
    rows, full, seen = np.empty(k, np.int64), np.empty(k, np.int64), np.empty(k, np.int64)
    joins, filled = _place(people, team_ids, ids, members, team, team_size, placed, rows, full, seen)
    assert np.array_equal(placed, placed_ref)
    assert np.array_equal(rows[:joins], rows_ref)
    assert np.array_equal(np.sort(full[:filled]), full_ref)
    assert np.array_equal(members, m2) and np.array_equal(team, t2)


@pytest.mark.parametrize("seed", range(30))
def test_assist_click_count_equals_the_numpy_form(seed):
    from sim.mechanisms.assist import _count_clicks

    rng = np.random.default_rng(seed)
    needed = int(rng.integers(1, 5))
    ids = np.sort(rng.choice(100, size=int(rng.integers(0, 30)), replace=False)).astype(np.int64)
    clicks = rng.integers(0, needed, ids.size).astype(np.int32)
    request_ids = rng.integers(0, 100, int(rng.integers(0, 60))).astype(np.int64)
    ref = clicks.copy()
    live = request_ids[np.isin(request_ids, ids)]
    rows = np.searchsorted(ids, live)
    np.add.at(ref, rows, 1)
    done_ref = np.unique(rows[ref[rows] >= needed])
    done = np.empty(request_ids.size, np.int64)
    n_live, n_done = _count_clicks(request_ids, ids, clicks, needed, done)
    assert n_live == live.size and np.array_equal(clicks, ref)
    assert np.array_equal(np.sort(done[:n_done]), done_ref)


@pytest.mark.parametrize("name", ["group_buy", "assist"])
def test_pruned_demand_draws_pick_the_same_people(name, monkeypatch):
    """The bound on the opening (starting) probability only skips draws that could not succeed:
    with the bound disabled (a deal sensitivity below 0 switches it off) the run is the same."""
    import sim
    from sim.bench import all_mechanisms_overrides

    def run(prune: bool):
        cfg = sim.compose("all_mechanisms", ["population.size=4000", "horizon=60", *all_mechanisms_overrides()], seed=2)
        model = sim.GrowthModel(cfg)
        mech = model.get_mechanism(name)
        original = mech._open if name == "group_buy" else mech._start

        def hook(model, rng):
            seg = model.pop.seg["deal_sensitivity"]
            if not prune:  # make the bound's guard fail without changing p for anyone
                class Shifted(np.ndarray):
                    def min(self, *a, **k):
                        return -1.0
                model.pop.seg["deal_sensitivity"] = seg.view(Shifted)
            try:
                original(model, rng)
            finally:
                model.pop.seg["deal_sensitivity"] = seg
        monkeypatch.setattr(mech, "_open" if name == "group_buy" else "_start", hook)
        model.run()
        return model.metrics.daily(model.economics)

    a, b = run(True), run(False)
    assert a.equals(b)


@pytest.mark.parametrize("p", [1.0, 0.9, 0.5, 0.4, 1 / 3 + 1e-12, 0.333333333333333333333333])
def test_geometric_delays_equal_numpys_geometric(p):
    from sim.mechanisms.referral import GEOMETRIC_SEARCH_FROM, MAX_DELAY_DAYS, _geometric_delays

    assert p >= GEOMETRIC_SEARCH_FROM
    for cap in (MAX_DELAY_DAYS, 3):
        r1, r2 = np.random.default_rng(11), np.random.default_rng(11)
        want = np.minimum(r1.geometric(p, 200_000) - 1, cap)
        got = np.empty(200_000, np.int64)
        _geometric_delays(r2.random(200_000), p, cap, got)
        assert np.array_equal(got, want)
        assert r1.random() == r2.random()
