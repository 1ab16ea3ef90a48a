"""Vectorised random-graph generators (a million nodes with average degree 20 in seconds).

- ``er``: Erdos-Renyi G(n, m) with m = n * avg_degree / 2, by sampling pairs and topping up.
- ``ba``: Barabasi-Albert preferential attachment by the Batagelj-Brandes edge-copy algorithm
  (Phys. Rev. E 71, 036113, 2005), whose sequential recursion "copy the endpoint of a uniformly
  random earlier slot" is filled in order by one compiled pass (``sim.kernels.attachment_nodes``).
- ``holme_kim``: the Holme-Kim (2002) power-law cluster model: preferential attachment where, with
  probability ``triangle_prob``, each further link of a new node goes to a neighbour of its first
  target, closing a triangle. Vectorised by drawing the triad step on the attachment skeleton
  (a neighbour of the first target that is older than the new node).
- ``ws``: Watts-Strogatz ring lattice with each edge rewired with probability ``rewire``.
- ``sbm``: stochastic block model: equal communities of about ``community_size`` people and a fraction
  ``homophily`` of edges inside them (when a community is too small to hold that many ties, fewer).
- ``lattice``: a 2-D lattice, people in rows of about sqrt(n), each tied to its 4 (square), 6
  (triangular: the clustered lattice of Centola 2010, where a person's neighbours are each other's
  neighbours) or 8 (square with diagonals) nearest neighbours; the rows wrap into one another
  (helical boundaries), so everyone has the same number of neighbours whatever n.
- ``regular``: a random regular graph, everyone with exactly round(avg_degree) friends tied at random
  (the configuration model, its loops and double ties removed by degree-preserving swaps): the random
  counterpart of a lattice of the same degree (Centola 2010's random networks).

Multi-edges and self-loops produced by the samplers are removed, so realised mean degrees can fall
slightly short of ``avg_degree`` on small graphs; ``ba`` and ``holme_kim`` have mean degree 2m with
m = round(avg_degree / 2).
"""

from __future__ import annotations

import numpy as np

from sim import kernels
from sim.graph.csr import Graph, unique_sorted


def _pairs_topped_up(n: int, m: int, rng: np.random.Generator, draw) -> tuple[np.ndarray, np.ndarray]:
    """Call ``draw(k)`` for candidate pairs until ``m`` distinct non-loop undirected edges exist."""
    keys = np.zeros(0, dtype=np.int64)
    for _ in range(50):
        need = m - keys.size
        if need <= 0:
            break
        u, v = draw(int(need * 1.05) + 16)
        ok = u != v
        lo, hi = np.minimum(u[ok], v[ok]), np.maximum(u[ok], v[ok])
        keys = unique_sorted(np.concatenate([keys, lo.astype(np.int64) * n + hi]))
    if keys.size > m:  # drop a random surplus
        drop = rng.permutation(keys.size)[: keys.size - m] if keys.size < 4 * m else rng.choice(keys.size, keys.size - m, replace=False)
        keep = np.ones(keys.size, dtype=bool)
        keep[drop] = False
        keys = keys[keep]
    return keys // n, keys % n


def erdos_renyi(n: int, avg_degree: float, rng: np.random.Generator) -> Graph:
    m = min(int(round(n * avg_degree / 2)), n * (n - 1) // 2)
    u, v = _pairs_topped_up(n, m, rng, lambda k: (rng.integers(0, n, k), rng.integers(0, n, k)))
    return Graph.from_edges(n, u, v)


def _attachment_slots(n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """Batagelj-Brandes: the node at every slot of the 2*n*m edge-endpoint array.

    Slot 2s holds the new node of edge s; slot 2s+1 copies the node at a uniform slot r <= 2s, which
    makes the chance of being a target proportional to degree (filled in order by a compiled pass,
    ``sim.kernels.attachment_nodes``; pointers are int32 when the slots fit).
    """
    total = 2 * n * m
    idx = np.int32 if total < np.iinfo(np.int32).max else np.int64
    pos = np.arange(1, total, 2, dtype=np.int64)
    ptr = (rng.random(pos.size) * pos).astype(idx)  # uniform in [0, 2s]
    del pos
    return kernels.attachment_nodes(ptr, m)


def barabasi_albert(n: int, avg_degree: float, rng: np.random.Generator) -> Graph:
    m = max(1, int(round(avg_degree / 2)))
    slots = _attachment_slots(n, m, rng)
    return Graph.from_edges(n, slots[0::2], slots[1::2])


def holme_kim(n: int, avg_degree: float, triangle_prob: float, rng: np.random.Generator) -> Graph:
    m = max(1, int(round(avg_degree / 2)))
    slots = _attachment_slots(n, m, rng)
    new, target = slots[0::2], slots[1::2].copy()  # targets change (triad steps); new nodes are only read
    if m > 1 and triangle_prob > 0:
        later_of_node = np.ones(m, dtype=bool)
        later_of_node[0] = False  # = np.arange(new.size) % m != 0: not a node's first attachment
        triad = np.tile(later_of_node, n) & (rng.random(new.size) < triangle_prob)
        # The anchor's neighbours are taken from the attachment edges that survive (not themselves
        # turned into triad steps), so every triad step really closes a triangle.
        skeleton = Graph.from_edges(n, new[~triad], target[~triad])
        first = target[0::m]  # each node's first attachment target
        later = np.flatnonzero(triad)
        anchor = first[new[later]]
        rows = target.reshape(n, m)
        for _ in range(4):  # a few tries to find an older neighbour of the anchor, new to this node
            cand, _edge = skeleton.sample_neighbours(anchor, rng)
            ok = (cand >= 0) & (cand < new[later])
            maybe = np.flatnonzero(ok)  # no double edge (checked only where it can still matter)
            ok[maybe] = ~kernels.row_contains(rows, new[later[maybe]], cand[maybe])
            target[later[ok]] = cand[ok]
            later, anchor = later[~ok], anchor[~ok]
            if later.size == 0:
                break
    return Graph.from_edges(n, new, target)


def watts_strogatz(n: int, avg_degree: float, rewire: float, rng: np.random.Generator) -> Graph:
    half = max(1, int(round(avg_degree / 2)))
    half = min(half, (n - 1) // 2) or 1
    u = np.repeat(np.arange(n, dtype=np.int64), half)
    v = (u + np.tile(np.arange(1, half + 1, dtype=np.int64), n)) % n
    flip = rng.random(u.size) < rewire
    v[flip] = rng.integers(0, n, int(flip.sum()))
    return Graph.from_edges(n, u, v)


def stochastic_block(n: int, avg_degree: float, community_size: int, homophily: float, rng: np.random.Generator) -> Graph:
    c = max(1, min(int(round(n / community_size)), n))
    sizes = np.full(c, n // c, dtype=np.int64)
    sizes[: n % c] += 1
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    label = np.repeat(np.arange(c, dtype=np.int32), sizes)
    m = int(round(n * avg_degree / 2))
    m_in = int(round(m * homophily)) if c > 1 else m
    pair_weight = sizes * (sizes - 1) / 2.0
    m_in = min(m_in, int(pair_weight.sum()))

    def draw_inside(k: int):
        block = rng.choice(c, size=k, p=pair_weight / pair_weight.sum())
        return offsets[block] + rng.integers(0, sizes[block]), offsets[block] + rng.integers(0, sizes[block])

    def draw_across(k: int):
        u, v = rng.integers(0, n, k), rng.integers(0, n, k)
        v = np.where(label[u] == label[v], u, v)  # same-community pairs become loops and are dropped
        return u, v

    u1, v1 = _pairs_topped_up(n, m_in, rng, draw_inside)
    if c > 1 and m > m_in:
        u2, v2 = _pairs_topped_up(n, m - m_in, rng, draw_across)
        u1, v1 = np.concatenate([u1, u2]), np.concatenate([v1, v2])
    return Graph.from_edges(n, u1, v1, community=label)

#: the neighbour counts of the 2-D lattices
LATTICE_DEGREES = (4, 6, 8)


def lattice(n: int, avg_degree: float, rng: np.random.Generator | None = None) -> Graph:
    """A 2-D lattice in rows of ``w = round(sqrt(n))`` people: person i is tied to i +- 1 (along its
    row) and i +- w (across rows), plus i +- (w - 1) for the triangular lattice (degree 6) or also
    i +- (w + 1) for the square one with diagonals (degree 8), all modulo n. Deterministic (``rng``
    is not used)."""
    degree = int(avg_degree)
    if degree not in LATTICE_DEGREES:
        raise ValueError(f"lattice: degree {avg_degree} is not one of {LATTICE_DEGREES}")
    w = max(int(round(np.sqrt(n))), 2)
    offsets = {4: (1, w), 6: (1, w - 1, w), 8: (1, w - 1, w, w + 1)}[degree]
    u = np.repeat(np.arange(n, dtype=np.int64), len(offsets))
    v = (u + np.tile(np.asarray(offsets, dtype=np.int64), n)) % n
    return Graph.from_edges(n, u, v)  # tiny n: repeats and loops dropped (degrees fall short)


def random_regular(n: int, avg_degree: float, rng: np.random.Generator) -> Graph:
    """Everyone with ``d = round(avg_degree)`` friends at random (one person with d - 1 when n x d is
    odd): the configuration model (stubs paired at random), whose self-loops and double ties are then
    removed by swapping each with a random other tie (a-b, c-e -> a-c, b-e or a-e, b-c), which keeps
    every degree; a few rounds suffice, since a pairing has about (d^2 - 1) / 4 bad ties whatever n
    (Bollobás 1980)."""
    d = min(max(int(round(avg_degree)), 0), n - 1)
    stubs = rng.permutation(np.repeat(np.arange(n, dtype=np.int64), d)[: n * d - (n * d) % 2])
    u, v = stubs[0::2].copy(), stubs[1::2].copy()
    for _ in range(200):
        bad = _bad_ties(n, u, v)
        if bad.size == 0:
            break
        good = np.flatnonzero(~np.isin(np.arange(u.size), bad))
        if good.size == 0:
            break
        other = good[rng.permutation(good.size)[: bad.size]] if good.size >= bad.size else rng.choice(good, bad.size)
        other, first = np.unique(other, return_index=True)  # each partner serves one bad tie a round
        bad = bad[first]
        cross = rng.random(bad.size) < 0.5  # which of the two swaps
        a, b, c, e = u[bad], v[bad], u[other], v[other]
        u[bad], v[bad] = a, np.where(cross, c, e)
        u[other], v[other] = b, np.where(cross, e, c)
    return Graph.from_edges(n, u, v)  # any bad tie left after the rounds is dropped


def _bad_ties(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Positions of self-loops and of every repeat of a tie after its first."""
    key = np.minimum(u, v) * n + np.maximum(u, v)
    order = np.argsort(key, kind="stable")
    repeat = np.zeros(key.size, dtype=bool)
    repeat[order[1:]] = key[order[1:]] == key[order[:-1]]
    return np.flatnonzero(repeat | (u == v))
