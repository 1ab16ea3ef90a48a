"""Social graphs: vectorised generators, an edge-list loader and CSR adjacency.

``build_graph`` is the one entry point the engine uses; the registry below is the complete list of
graph kinds a configuration can name (nothing else can be instantiated from a config file).
"""

from __future__ import annotations

import numpy as np

from sim.graph.csr import CompleteGraph, Graph
from sim.graph.generators import barabasi_albert, erdos_renyi, holme_kim, lattice, random_regular, stochastic_block, watts_strogatz
from sim.graph.loader import EdgeList, load_edgelist

GENERATORS = {
    "er": lambda n, g, rng: erdos_renyi(n, g.avg_degree, rng),
    "ba": lambda n, g, rng: barabasi_albert(n, g.avg_degree, rng),
    "holme_kim": lambda n, g, rng: holme_kim(n, g.avg_degree, g.triangle_prob, rng),
    "ws": lambda n, g, rng: watts_strogatz(n, g.avg_degree, g.rewire, rng),
    "sbm": lambda n, g, rng: stochastic_block(n, g.avg_degree, g.community_size, g.homophily, rng),
    "lattice": lambda n, g, rng: lattice(n, g.avg_degree),
    "regular": lambda n, g, rng: random_regular(n, g.avg_degree, rng),
    "complete": lambda n, g, rng: CompleteGraph(n),
}


def build_graph(graph_cfg, n: int, rng: np.random.Generator) -> Graph | CompleteGraph:
    """The graph a configuration asks for (``edgelist`` is loaded with :func:`load_edgelist`; the
    loader's stated repairs are kept in ``graph.notes``, which runs report, and so is the market size
    the file sets when it differs from ``population.size``: the graph is the addressable market)."""
    if graph_cfg.kind == "edgelist":
        loaded = load_edgelist(graph_cfg.path)
        notes = list(loaded.notes)
        if loaded.graph.n != n:
            notes.append(f"{loaded.graph.n:,} people in the file set the market size (population.size = {n:,} is not used)")
        loaded.graph.notes = tuple(f"graph.path = {str(graph_cfg.path)!r}: {note}" for note in notes)
        return loaded.graph
    return GENERATORS[graph_cfg.kind](n, graph_cfg, rng)


__all__ = ["CompleteGraph", "EdgeList", "Graph", "GENERATORS", "build_graph", "load_edgelist"]
