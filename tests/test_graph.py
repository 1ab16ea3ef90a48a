"""Graph generators and the edge-list loader."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from sim.graph import CompleteGraph, Graph, load_edgelist
from sim.graph.generators import barabasi_albert, erdos_renyi, holme_kim, stochastic_block, watts_strogatz
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
    lambda rng: stochastic_block(N, 10, 20, 0.8, rng),
], ids=["er", "ba", "holme_kim", "ws", "sbm"])
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


def test_block_model_puts_the_homophily_share_of_edges_inside_communities():
    g = stochastic_block(N, 10, 25, 0.8, np.random.default_rng(4))
    u, v = g.edges()
    inside = np.mean(g.community[u] == g.community[v])
    assert inside == pytest.approx(0.8, abs=0.02)


def test_generators_are_deterministic_for_a_seed():
    a = holme_kim(2000, 8, 0.5, np.random.default_rng(9))
    b = holme_kim(2000, 8, 0.5, np.random.default_rng(9))
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
                     ("dropped 1 self-loop", "merged 1 duplicate edge", "graph has 2 connected components; the largest holds 66.7% of nodes (kept as is)")]
    summary = json.loads((Path(captured.out.strip()) / "summary.json").read_text())
    assert summary["graph_notes"] == [n.removeprefix("note: ") for n in notes]


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
            "graph=edgelist", f"graph.path={path}", "horizon=5", f"out={out}"]
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    notes = [ln for ln in captured.err.splitlines() if ln.startswith("note: ")]
    assert notes == [f"note: graph.path = {str(path)!r}: dropped 1 self-loop"]
    assert "dropped 1 self-loop" in (Path(captured.out.strip()) / "report.html").read_text()
