"""The classic diffusion presets (``scenario=ic | lt | bass_network``, ``sim/diffusion.py``).

Against NDlib (Rossetti et al. 2018, ``ndlib`` 6.0.1, a test-only dependency), on the same graph:
a 1,000-node Holme-Kim graph (average degree 8, clustered, heavy-tailed) written as an edge list,
loaded by our model with ``graph=edgelist`` and handed to NDlib through ``Graph.to_networkx()``.

NDlib's semantics, read from its source (``ndlib/models/epidemics/IndependentCascadesModel.py``,
``ThresholdModel.py`` and ``ndlib/models/DiffusionModel.py``):
- seeds: model parameter ``fraction_infected`` makes ``int(n x fraction)`` nodes (at least one)
  infected, drawn uniformly with ``np.random.choice`` after ``np.random.seed(seed)``; they are the
  state of iteration 0, which changes nothing. Our seeds are the joiners of day 0, the same rule.
- independent cascade: in each later iteration every node infected in the previous one (status 1)
  tries each neighbour still susceptible (status 0) once, succeeding when a uniform draw is
  ``<= threshold`` of that edge (the edge parameter ``threshold`` is the activation probability; its
  default is 1 / degree of the trying node, so we set it on every edge to ``diffusion.probability``),
  then becomes removed (status 2) and never tries again. Adopted = status 1 or 2.
- linear threshold: a susceptible node with neighbours becomes infected when the share of its
  neighbours infected at the end of the previous iteration is ``>= threshold`` of the node (node
  parameter; NDlib's default is 0.1 for everyone, so we draw each node's threshold uniformly in
  [0, 1] for every run, the textbook model that ``diffusion.model=lt`` implements).

The settings (IC: edge probability 0.12 from 2 % seeds; LT: 5 % seeds) give final shares near 0.3
with nearly symmetric spreads; with fewer seeds IC's final share has a long left tail (every seed's
cascade dying early is rare but not negligible) and standard deviations of 30 runs become unstable.
Stated tolerance: over 30 runs each, the mean final adopted share agrees within 4 standard errors of
the difference of means (a false alarm about once in 16,000), and the standard deviations agree
within a factor of 2 (an F-ratio of 4 on 29 and 29 degrees of freedom has p < 0.001).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import sim
from sim.engine import GrowthModel
from sim.graph.generators import holme_kim

RUNS = 30
NODES = 1000


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory):
    g = holme_kim(NODES, 8, 0.5, np.random.default_rng(7))
    u, v = g.edges()
    path = tmp_path_factory.mktemp("diffusion") / "holme_kim_1000.txt"
    path.write_text(f"# nodes: {NODES}\n" + "".join(f"{a} {b}\n" for a, b in zip(u.tolist(), v.tolist())))
    return path


def run_until_quiet(cfg) -> GrowthModel:
    """Step until a day (after day 0) brings no adopter: IC and LT can never move again after one."""
    model = GrowthModel(cfg)
    while model.day + 1 < cfg.horizon:
        model.step()
        if model.day > 0 and model.today.new_users.size == 0:
            break
    return model


def our_final_shares(scenario: str, path, *overrides: str, runs: int = RUNS) -> np.ndarray:
    cfg = sim.compose(scenario, ["graph=edgelist", f"graph.path={path}", "horizon=100", *overrides])
    return np.array([(run_until_quiet(cfg.with_seed(s)).pop.joined_day >= 0).mean() for s in range(runs)])


def ndlib_final_shares(kind: str, nx_graph, fraction: float, probability: float = 0.0, runs: int = RUNS) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import ndlib.models.epidemics as ep
        import ndlib.models.ModelConfig as mc
    out = []
    for s in range(runs):
        model = (ep.IndependentCascadesModel if kind == "ic" else ep.ThresholdModel)(nx_graph, seed=s)
        config = mc.Configuration()
        config.add_model_parameter("fraction_infected", fraction)
        if kind == "ic":
            for e in nx_graph.edges():
                config.add_edge_configuration("threshold", e, probability)
        else:
            theta = np.random.default_rng(10_000 + s).random(nx_graph.number_of_nodes())
            for node in nx_graph.nodes():
                config.add_node_configuration("threshold", node, float(theta[node]))
        model.set_initial_status(config)
        while True:
            step = model.iteration(node_status=False)
            if step["iteration"] > 0 and not any(step["status_delta"].values()):
                break
        out.append(np.mean([status > 0 for status in model.status.values()]))
    return np.array(out)


def agree(a: np.ndarray, b: np.ndarray) -> tuple[bool, str]:
    se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    ratio = a.std(ddof=1) / b.std(ddof=1)
    text = f"ours {a.mean():.3f} sd {a.std(ddof=1):.3f}; ndlib {b.mean():.3f} sd {b.std(ddof=1):.3f}; {abs(a.mean() - b.mean()) / se:.1f} SE"
    return abs(a.mean() - b.mean()) < 4 * se and 0.5 < ratio < 2.0, text


@pytest.mark.slow
def test_independent_cascade_agrees_with_ndlib(graph_file):
    pytest.importorskip("ndlib")
    nx_graph = GrowthModel(sim.compose("ic", ["graph=edgelist", f"graph.path={graph_file}"])).graph.to_networkx()
    ours = our_final_shares("ic", graph_file, "diffusion.probability=0.12", "diffusion.seed_fraction=0.02")
    theirs = ndlib_final_shares("ic", nx_graph, 0.02, probability=0.12)
    ok, text = agree(ours, theirs)
    assert ok, text
    # The tolerance has power: a cascade with half again the edge probability is told apart.
    hotter = our_final_shares("ic", graph_file, "diffusion.probability=0.18", "diffusion.seed_fraction=0.02")
    assert not agree(hotter, theirs)[0]


@pytest.mark.slow
def test_linear_threshold_agrees_with_ndlib(graph_file):
    pytest.importorskip("ndlib")
    nx_graph = GrowthModel(sim.compose("lt", ["graph=edgelist", f"graph.path={graph_file}"])).graph.to_networkx()
    ours = our_final_shares("lt", graph_file, "diffusion.seed_fraction=0.05")
    theirs = ndlib_final_shares("lt", nx_graph, 0.05)
    ok, text = agree(ours, theirs)
    assert ok, text


def test_certain_cascade_reaches_everyone_in_breadth_first_order():
    """With probability 1 a node joins on the day equal to its hop distance from the nearest seed."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import shortest_path

    cfg = sim.compose("ic", ["graph=er", "graph.avg_degree=4", "population.size=2000", "horizon=40",
                             "diffusion.probability=1", "diffusion.seed_fraction=0.002"], seed=3)
    model = GrowthModel(cfg).run()
    g = model.graph
    seeds = np.flatnonzero(model.pop.joined_day == 0)
    adj = csr_matrix((np.ones(g.indices.size), g.indices, g.indptr), shape=(g.n, g.n))
    hops = shortest_path(adj, unweighted=True, indices=seeds).min(axis=0)
    reached = np.isfinite(hops)
    assert seeds.size == 4
    np.testing.assert_array_equal(model.pop.joined_day[reached], hops[reached].astype(int))
    assert np.all(model.pop.joined_day[~reached] == -1)


def test_no_spread_leaves_only_the_seeds_adopted():
    """The presets switch off everything else: with edge probability 0, only the seeds ever join."""
    r = sim.simulate(sim.compose("ic", ["population.size=3000", "horizon=30", "diffusion.probability=0"]))
    assert r.daily["cumulative_users"].iloc[-1] == 30
    assert r.daily["new_users"].iloc[1:].sum() == 0
    assert r.summary["new_organic"] == 30 and r.daily["churned_users"].sum() == 0


def test_bass_on_the_complete_graph_follows_the_discrete_bass_recursion():
    """Mean field: F_t = F_{t-1} + (p + q F_{t-1}) (1 - F_{t-1}) from F_0 = 0. Stated tolerance: the
    mean of 3 runs of 50,000 people within 0.02 every day (early binomial noise shifts a single
    run's S-curve in time by a fraction of a day, up to about 0.015 in share on its steep part)."""
    p, q, n, days = 0.01, 0.3, 50_000, 40
    cfg = sim.compose("bass_network", ["graph=complete", f"population.size={n}", f"horizon={days}",
                                       f"diffusion.p={p}", f"diffusion.q={q}"])
    curves = []
    for seed in range(3):
        joined = GrowthModel(cfg.with_seed(seed)).run().pop.joined_day
        curves.append(np.bincount(joined[joined >= 0], minlength=days).cumsum() / n)
    expected = np.zeros(days)
    for t in range(1, days):
        expected[t] = expected[t - 1] + (p + q * expected[t - 1]) * (1 - expected[t - 1])
    assert np.max(np.abs(np.mean(curves, axis=0) - expected)) < 0.02
    assert expected[-1] > 0.99


def test_more_seeds_never_fewer_linear_threshold_adopters():
    """Seed sets are nested (the first k of one random order) and thresholds do not depend on them,
    so linear threshold, monotone in its seed set, can only reach more people from more seeds."""
    base = ["population.size=3000", "horizon=60", "graph=ws", "graph.avg_degree=6"]
    few = GrowthModel(sim.compose("lt", [*base, "diffusion.seed_fraction=0.02"], seed=5)).run()
    many = GrowthModel(sim.compose("lt", [*base, "diffusion.seed_fraction=0.2"], seed=5)).run()
    assert (few.pop.joined_day >= 0).sum() <= (many.pop.joined_day >= 0).sum()


def test_diffusion_is_deterministic_for_a_seed():
    cfg = sim.compose("lt", ["population.size=2000", "horizon=20"], seed=9)
    a, b = GrowthModel(cfg).run(), GrowthModel(cfg).run()
    np.testing.assert_array_equal(a.pop.joined_day, b.pop.joined_day)
