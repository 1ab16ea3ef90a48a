"""Graph generators and the edge-list loader."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from sim.graph import CompleteGraph, Graph, load_edgelist
from sim.graph.csr import INDEX
from sim.graph.generators import barabasi_albert, erdos_renyi, holme_kim, lattice, random_regular, stochastic_block, watts_strogatz
from sim.schema import ConfigError

N = 5000


def assert_simple_symmetric(g: Graph) -> None:
    rows = np.repeat(np.arange(g.n), g.degree)
    assert not np.any(rows == g.indices), "self-loop"
    fwd = set(zip(rows.tolist(), g.indices.tolist()))
    assert all((v, u) in fwd for u, v in fwd), "not symmetric"
    assert len(fwd) == g.indices.size, "duplicate edge"
    for node in range(0, g.n, max(1, g.n // 50)):
        nb = g.neighbours(node)
        assert np.all(np.diff(nb) > 0), "rows must be sorted"


@pytest.mark.parametrize("make", [
    lambda rng: erdos_renyi(N, 10, rng),
    lambda rng: barabasi_albert(N, 10, rng),
    lambda rng: holme_kim(N, 10, 0.5, rng),
    lambda rng: watts_strogatz(N, 10, 0.1, rng),
    lambda rng: stochastic_block(N, 10, 250, 0.8, rng),
    lambda rng: random_regular(N, 10, rng),
], ids=["er", "ba", "holme_kim", "ws", "sbm", "regular"])
def test_generators_give_simple_graphs_with_the_requested_mean_degree(make):
    g = make(np.random.default_rng(1))
    assert g.n == N
    assert_simple_symmetric(g)
    assert 9.0 <= g.avg_degree <= 10.05


def test_preferential_attachment_has_heavy_tails_and_holme_kim_clusters():
    rng = np.random.default_rng(2)
    er, ba, hk = erdos_renyi(N, 10, rng), barabasi_albert(N, 10, rng), holme_kim(N, 10, 0.8, rng)
    assert ba.degree.max() > 8 * er.degree.max() / 2  # hubs
    c_er = nx.average_clustering(er.to_networkx())
    c_hk = nx.average_clustering(hk.to_networkx())
    assert c_hk > 5 * c_er
    # Holme-Kim as networkx builds it, for scale: our vectorised version should be comparable.
    c_nx = nx.average_clustering(nx.powerlaw_cluster_graph(N, 5, 0.8, seed=1))
    assert c_hk > 0.6 * c_nx


def test_small_world_lattice_keeps_clustering_with_little_rewiring():
    rng = np.random.default_rng(3)
    ws0 = watts_strogatz(2000, 10, 0.0, rng)
    assert nx.average_clustering(ws0.to_networkx()) == pytest.approx(2 / 3, abs=0.01)  # ring lattice: 3(k-2)/(4(k-1))
    ws = watts_strogatz(2000, 10, 0.1, rng)
    assert nx.average_clustering(ws.to_networkx()) > 0.4


@pytest.mark.parametrize("n", [98, 128, 144, 1001])
def test_centola_networks_give_everyone_six_neighbours_clustered_or_not(n):
    """The triangular lattice: 6 neighbours each, who are each other's neighbours (clustering 0.4, as
    in a hexagon of neighbours); the random regular graph: exactly 6 friends each, clustering near a
    random graph's 5 / n."""
    rng = np.random.default_rng(n)
    clustered, random = lattice(n, 6), random_regular(n, 6, rng)
    for g in (clustered, random):
        assert_simple_symmetric(g)
        assert (g.degree == 6).all()
    assert nx.average_clustering(clustered.to_networkx()) == pytest.approx(0.4)
    assert nx.average_clustering(random.to_networkx()) < 0.1


@pytest.mark.parametrize("degree", [4, 8])
def test_square_lattices_have_the_degree_asked_for(degree):
    g = lattice(400, degree)
    assert_simple_symmetric(g)
    assert (g.degree == degree).all()


def test_random_regular_keeps_degrees_when_their_sum_is_odd_or_the_graph_large():
    odd = random_regular(145, 5, np.random.default_rng(0))  # 725 stubs: one person has 4 friends
    assert sorted(np.bincount(odd.degree)[4:6].tolist()) == [1, 144]
    big = random_regular(200_000, 6, np.random.default_rng(1))
    assert (big.degree == 6).all()


def test_block_model_puts_the_homophily_share_of_edges_inside_communities():
    g = stochastic_block(N, 10, 200, 0.8, np.random.default_rng(4))
    u, v = g.edges()
    inside = np.mean(g.community[u] == g.community[v])
    assert inside == pytest.approx(0.8, abs=0.02)


def test_generators_are_deterministic_for_a_seed():
    for make in (lambda rng: holme_kim(2000, 8, 0.5, rng), lambda rng: random_regular(2000, 6, rng)):
        a, b = make(np.random.default_rng(9)), make(np.random.default_rng(9))
        assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)


def test_neighbour_sampling_and_sums_match_the_adjacency():
    g = erdos_renyi(500, 6, np.random.default_rng(5))
    rng = np.random.default_rng(0)
    nodes = np.repeat(np.arange(g.n), 3)
    target, edge = g.sample_neighbours(nodes, rng)
    has = g.degree[nodes] > 0
    assert np.all(g.indices[edge[has]] == target[has])
    assert np.all(target[~has] == -1)
    x = rng.random(g.n)
    expected = np.array([x[g.neighbours(i)].sum() for i in range(g.n)])
    assert np.allclose(g.neighbour_sum(x), expected)
    counts = np.zeros(g.n, dtype=np.int32)
    g.add_to_neighbours(np.array([0, 1]), counts, 1)
    assert counts.sum() == g.degree[0] + g.degree[1]


def test_sampling_only_accepted_neighbours():
    g = erdos_renyi(300, 10, np.random.default_rng(5))
    accept = np.zeros(g.n, dtype=bool)
    accept[::2] = True
    target, _ = g.sample_neighbours_where(np.arange(g.n), np.random.default_rng(1), accept, tries=10)
    assert np.all(accept[target[target >= 0]])
    assert (target >= 0).mean() > 0.9


def test_complete_graph_never_returns_oneself():
    g = CompleteGraph(10)
    nodes = np.repeat(np.arange(10), 200)
    target, edge = g.sample_neighbours(nodes, np.random.default_rng(0))
    assert np.all(target != nodes) and target.min() == 0 and target.max() == 9
    assert np.all(edge == -1)


# --------------------------------------------------------------------------------- edge lists
def write(tmp_path, text, name="g.txt"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_edgelist_whitespace_csv_and_comments(tmp_path):
    a = load_edgelist(write(tmp_path, "# a triangle and a tail\n0 1\n1\t2\n\n2 0  # closing\n2 3 0.5\n"))
    b = load_edgelist(write(tmp_path, "0,1\n1,2\n2,0\n2,3\n", "g.csv"))
    for el in (a, b):
        assert el.graph.n == 4 and el.graph.n_edges == 4
        assert_simple_symmetric(el.graph)


def test_edgelist_nodes_header_keeps_isolated_people(tmp_path):
    el = load_edgelist(write(tmp_path, "# nodes: 6\n0 1\n1 2\n"))
    assert el.graph.n == 6
    assert any("components" in note for note in el.notes)


def test_edgelist_text_labels_are_numbered(tmp_path):
    el = load_edgelist(write(tmp_path, "alice bob\nbob carol\n"))
    assert el.labels == ["alice", "bob", "carol"] and el.graph.n_edges == 2


def test_edgelist_repairs_are_stated(tmp_path):
    el = load_edgelist(write(tmp_path, "0 1\n1 0\n1 1\n1 2\n"))
    assert el.graph.n_edges == 2
    assert "dropped 1 self-loop" in el.notes
    assert "merged 1 duplicate edge" in el.notes


@pytest.mark.parametrize("text, message", [
    ("0 1\n1 2 3 4\n", r"g.txt:2: expected 'u v' \(two node ids\)"),
    ("0 1\n1\n", r"g.txt:2: expected 'u v'"),
    ("0 1\n1 2 heavy\n", r"g.txt:2: third column must be a numeric weight"),
    ("# nodes: 3\n0 1\n1 5\n", r"g.txt:3: node id out of range in '1' '5'; allowed is \[0, 3\)"),
    ("0 1\n-1 2\n", r"g.txt:2: node id out of range"),
    ("# only comments\n\n", r"g.txt: no edges found"),
    ("3 3\n", r"g.txt: no edges left after dropping self-loops"),
])
def test_edgelist_errors_name_file_and_line(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_edgelist(write(tmp_path, text))


def test_missing_edgelist_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_edgelist(tmp_path / "nope.txt")


def test_edgelist_repairs_reach_the_command_line_and_summary_json(tmp_path, capsys):
    import json

    from sim import cli

    path = tmp_path / "friends.txt"
    ring = "".join(f"{i} {(i + 1) % 40}\n" for i in range(40))
    other = "".join(f"{40 + i} {40 + (i + 1) % 20}\n" for i in range(20))
    path.write_text(ring + other + "3 3\n0 1\n")  # a self-loop, a duplicate edge, two components
    out = tmp_path / "runs"
    assert cli.main(["run", "-q", "--no-plots", "graph=edgelist", f"graph.path={path}", "horizon=5", f"out={out}"]) == 0
    captured = capsys.readouterr()
    notes = [ln for ln in captured.err.splitlines() if ln.startswith("note: ")]
    assert notes == [f"note: graph.path = {str(path)!r}: {n}" for n in
                     ("dropped 1 self-loop", "merged 1 duplicate edge", "graph has 2 connected components; the largest holds 66.7% of nodes (kept as is)",
                      "60 people in the file set the market size (population.size = 100,000 is not used)")]
    summary = json.loads((Path(captured.out.strip()) / "summary.json").read_text())
    assert summary["graph_notes"] == [n.removeprefix("note: ") for n in notes]


def test_an_edge_list_that_overrides_the_market_size_says_so(tmp_path):
    """The file sets the market size; a different population.size is reported, not silently dropped."""
    import sim

    path = tmp_path / "ring.txt"
    path.write_text("".join(f"{i} {(i + 1) % 40}\n" for i in range(40)))
    notes = {size: sim.simulate(sim.compose("default", ["graph=edgelist", f"graph.path={path}", f"population.size={size}",
                                                        "adoption.seed_fraction=0.15", "horizon=3"])).summary["graph_notes"]
             for size in (40, 5000)}
    assert notes[40] == []
    assert notes[5000] == [f"graph.path = {str(path)!r}: 40 people in the file set the market size (population.size = 5,000 is not used)"]


def test_a_generated_graph_has_no_notes():
    import sim

    assert sim.simulate(sim.compose("default", ["population.size=500", "horizon=3"])).summary["graph_notes"] == []


def test_edgelist_repairs_reach_the_comparison_once(tmp_path, capsys):
    """`sim compare` on an edge-list graph prints the loader's repairs once (not once per run)."""
    from sim import cli

    path = tmp_path / "friends.txt"
    path.write_text("".join(f"{i} {(i + 1) % 30}\n" for i in range(30)) + "4 4\n")  # a ring and a self-loop
    out = tmp_path / "cmp"
    args = ["compare", "-q", "--no-plots", "scenario=default,referral_double", "replicates=2", "workers=1",
            "graph=edgelist", f"graph.path={path}", "population.size=30", "adoption.seed_fraction=0.15", "horizon=5", f"out={out}"]
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    notes = [ln for ln in captured.err.splitlines() if ln.startswith("note: ")]
    assert notes == [f"note: graph.path = {str(path)!r}: dropped 1 self-loop"]
    assert "dropped 1 self-loop" in (Path(captured.out.strip()) / "report.html").read_text()


# ------------------------------------------------------------------------------ compiled passes against their numpy forms
def _random_graph(seed: int, n: int = 60, m: int = 150, isolated: int = 5) -> Graph:
    """A random graph with a few nodes without neighbours (the last ``isolated`` ids among them)."""
    rng = np.random.default_rng(seed)
    u, v = rng.integers(0, n - isolated, m), rng.integers(0, n - isolated, m)
    return Graph.from_edges(n, u, v)


def _sample_reference(g: Graph, nodes: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour sampling in numpy: one uniform per node, a slot of its CSR row (-1 without neighbours)."""
    deg = g.degree[nodes]
    u = rng.random(nodes.size)
    slot = g.indptr[nodes] + (u * deg).astype(np.int64)
    has = deg > 0
    edge = np.where(has, slot, -1)
    target = np.where(has, g.indices[np.minimum(slot, g.indices.size - 1)], -1)
    return target.astype(INDEX), edge


def _where_reference(g: Graph, nodes, rng, accept, tries):
    """Sampling accepted neighbours in numpy: retry rounds over the nodes still without one."""
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
    g = _random_graph(seed)
    rng = np.random.default_rng(seed)
    nodes = rng.integers(0, g.n, 300).astype(np.int64 if seed % 2 else INDEX)
    a = g.sample_neighbours(nodes, np.random.default_rng(seed + 100))
    b = _sample_reference(g, nodes, np.random.default_rng(seed + 100))
    assert a[0].dtype == INDEX and a[1].dtype == np.int64
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("seed", range(30))
def test_sample_neighbours_where_is_bit_identical_to_numpy(seed):
    g = _random_graph(seed)
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


def _scipy_csr(n, u, v):
    """The CSR of an edge list by scipy: COO -> CSR and sum_duplicates."""
    from scipy.sparse import coo_array
    keep = u != v
    u, v = u[keep], v[keep]
    mat = coo_array((np.ones(2 * u.size, dtype=np.int8), (np.concatenate([u, v]), np.concatenate([v, u]))), shape=(n, n)).tocsr()
    mat.sum_duplicates()
    return mat.indptr.astype(np.int64), mat.indices


@pytest.mark.parametrize("seed", range(5))
def test_csr_from_edges_equals_scipy(seed):
    from sim.graph.csr import Graph
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    k = int(rng.integers(0, 3000))
    u, v = rng.integers(0, n, k), rng.integers(0, n, k)  # loops and repeats included
    hub = rng.random(k) < 0.2  # a hub row far longer than the insertion-sort cut-off
    v[hub] = 0
    g = Graph.from_edges(n, u.astype(np.int32), v)
    indptr, indices = _scipy_csr(n, u, v)
    np.testing.assert_array_equal(g.indptr, indptr)
    np.testing.assert_array_equal(g.indices, indices)


def test_csr_from_edges_refuses_ids_out_of_range():
    from sim.graph.csr import Graph
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        Graph.from_edges(3, np.array([0, 1]), np.array([2, 3]))
