"""Social graphs as compressed sparse rows (CSR), and the well-mixed ``complete`` graph.

Every graph offers the same small interface the engine needs: degrees, random neighbours (with the
id of the edge used, so per-edge state such as repeated invitations can be kept), the neighbours of
a set of nodes, and neighbour sums. Nothing here loops over people in Python.
"""

from __future__ import annotations

import numpy as np

from sim import halves
from sim.compiled import jit

INDEX = np.int32


def unique_sorted(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique hashes in recent numpy, which is far slower for int64 keys)."""
    s = np.sort(x)
    if s.size == 0:
        return s
    keep = np.empty(s.size, dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def _segments(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenate ``arange(s, s + c)`` for each pair, vectorised."""
    counts = counts.astype(np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    shift = np.repeat(starts.astype(np.int64) - (ends - counts), counts)
    return shift + np.arange(total, dtype=np.int64)


def scatter_add(target: np.ndarray, idx: np.ndarray, delta: int = 1) -> None:
    """``np.add.at(target, idx, delta)`` for an integer column and an integer ``delta``, faster.

    ``np.add.at`` costs about 250 ns per element; counting the repeats first costs a sort of ``idx``
    (few indices) or one ``bincount`` over the column (many). Integer sums do not depend on the
    order of addition, so the result is identical, wrap-around included. (Float columns keep
    ``np.add.at``: there the order of additions changes the rounding.)
    """
    if idx.size == 0:
        return
    if idx.size * 8 >= target.size:  # many: one pass over the column beats sorting idx
        # (adding the zero counts too: a plain pass is cheaper than finding and gathering the hits)
        counts = np.bincount(idx, minlength=target.size)
        if delta != 1:
            counts *= delta
        target += counts.astype(target.dtype, copy=False)
        return
    s = np.sort(idx)
    first = np.empty(s.size, dtype=bool)
    first[0] = True
    np.not_equal(s[1:], s[:-1], out=first[1:])
    start = first.nonzero()[0]
    hit = s[start]
    counts = np.empty(start.size, dtype=np.int64)
    counts[-1] = s.size - start[-1]
    np.subtract(start[1:], start[:-1], out=counts[:-1])
    target[hit] += (counts * delta).astype(target.dtype)


@jit
def _csr_from_edges(u, v, indptr, indices):
    """Undirected edges ``(u[k], v[k])`` as CSR rows: ``indptr`` (n + 1 entries) and ``indices``
    (room for both directions of every edge) are filled; rows in node order, each row's neighbours
    ascending, self-loops and repeats dropped. Returns how many entries of ``indices`` are used.

    A counting sort by row, a sort of each short row and one compacting pass; the rows are those
    of scipy's COO -> CSR conversion with ``sum_duplicates``, entry for entry
    (``tests/test_graph.py``)."""
    n = indptr.size - 1
    indptr[:] = 0
    for k in range(u.size):
        if u[k] != v[k]:
            indptr[u[k] + 1] += 1
            indptr[v[k] + 1] += 1
    for r in range(n):
        indptr[r + 1] += indptr[r]
    fill = indptr[:n].copy()
    for k in range(u.size):
        a, b = u[k], v[k]
        if a != b:
            indices[fill[a]] = b
            fill[a] += 1
            indices[fill[b]] = a
            fill[b] += 1
    out = 0
    start = 0
    for r in range(n):
        end = indptr[r + 1]
        row = indices[start:end]
        if row.size > 32:
            row.sort()
        else:  # insertion sort: the rows of a social graph are mostly short
            for i in range(1, row.size):
                x = row[i]
                j = i - 1
                while j >= 0 and row[j] > x:
                    row[j + 1] = row[j]
                    j -= 1
                row[j + 1] = x
        indptr[r] = out
        for i in range(row.size):
            if i == 0 or row[i] != row[i - 1]:
                indices[out] = row[i]  # out <= start + i: never ahead of what is still to be read
                out += 1
        start = end
    indptr[n] = out
    return out


@jit
def _sample_kernel(nodes, u, indptr, indices, target, edge, lo, hi):
    """``target[i]``, ``edge[i]`` for ``i`` in ``lo .. hi - 1``: the neighbour of ``nodes[i]`` at slot
    ``floor(u[i] x degree)`` of its CSR row and that slot (the edge id); -1, -1 for a node without
    neighbours. (Each ``i`` on its own: two halves may run at once, :mod:`sim.halves`.)"""
    for i in range(lo, hi):
        start = indptr[nodes[i]]
        deg = indptr[nodes[i] + 1] - start
        slot = start + np.int64(u[i] * deg)
        edge[i] = slot if deg > 0 else -1
        target[i] = indices[slot] if deg > 0 else -1


@jit
def _first_try(nodes, u, rows, accept, found, ok, lo, hi):
    """The gathers of the first try of :meth:`Graph.sample_neighbours_where` for ``lo .. hi - 1``: the
    neighbour of ``nodes[i]`` at slot ``floor(u[i] x degree)`` and that slot, and ``ok[i]``, whether
    ``accept`` takes it (rows without neighbours give -1, -1 and are ok: not retried).

    The gathers (the neighbour, then its ``accept``) come in loops without data-dependent
    branches, so the CPU overlaps the cache misses of many rows; the branching on the outcome comes
    after (:func:`_reject`). ``rows``: (indptr, indices); ``found``: (target, edge)."""
    (indptr, indices), (target, edge) = rows, found
    _sample_kernel(nodes, u, indptr, indices, target, edge, lo, hi)
    for i in range(lo, hi):
        t = target[i]
        ok[i] = accept[t] if t >= 0 else True


@jit
def _reject(ok, positions, target, edge, retry):
    """Where ``ok[j]`` is false: -1, -1 at ``positions[j]``, which goes to ``retry``. Returns how
    many went there (the outcome of a try, after its gathers)."""
    m = 0
    for j in range(positions.size):
        if not ok[j]:
            i = positions[j]
            target[i] = -1
            edge[i] = -1
            retry[m] = i
            m += 1
    return m


@jit
def _retry(nodes, todo, u, rows, accept, found, ok, lo, hi):
    """The gathers of one more try for the positions ``todo[lo:hi]`` (uniform ``u[j]`` for ``todo[j]``),
    as in :func:`_first_try`: the neighbour and slot written at ``todo[j]``, ``ok[j]`` whether
    ``accept`` takes it (:func:`_reject` then sends the rejected to the next try)."""
    (indptr, indices), (target, edge) = rows, found
    for j in range(lo, hi):
        i = todo[j]
        start = indptr[nodes[i]]
        slot = start + np.int64(u[j] * (indptr[nodes[i] + 1] - start))
        edge[i] = slot
        target[i] = indices[slot]
    for j in range(lo, hi):
        ok[j] = accept[target[todo[j]]]


@jit
def _add_to_rows(indptr, indices, nodes, target, delta):
    """``target[indices[indptr[v]:indptr[v + 1]]] += delta`` for each ``v`` of ``nodes``: one walk along
    their CSR rows."""
    for v in nodes:
        for j in range(indptr[v], indptr[v + 1]):
            target[indices[j]] += delta


@jit
def _add_to_rows_twice(indptr, indices, nodes, target, also, delta):
    """:func:`_add_to_rows` into two columns in the same walk (the rows are read once)."""
    for v in nodes:
        for j in range(indptr[v], indptr[v + 1]):
            k = indices[j]
            target[k] += delta
            also[k] += delta


class _Sampling:
    def sample_neighbours_where(self, nodes: np.ndarray, rng: np.random.Generator, accept: np.ndarray,
                                tries: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """A random neighbour with ``accept[neighbour]`` true, trying up to ``tries`` times per node;
        (-1, -1) where none was found (a person who looks for a friend not yet on the platform)."""
        target = np.full(nodes.size, -1, dtype=INDEX)
        edge = np.full(nodes.size, -1, dtype=np.int64)
        todo = np.arange(nodes.size)
        for attempt in range(tries):
            t, e = self._sample(nodes if attempt == 0 else nodes[todo], rng)
            ok = (t >= 0) & accept[np.maximum(t, 0)]
            target[todo[ok]], edge[todo[ok]] = t[ok], e[ok]
            todo = todo[~ok & (t >= 0)]
            if todo.size == 0:
                break
        return target, edge


class Graph(_Sampling):
    """An undirected simple graph held as CSR adjacency (``indptr``, ``indices``)."""

    well_mixed = False
    notes: tuple[str, ...] = ()  # repairs the edge-list loader made (dropped self-loops, ...), reported by runs

    def __init__(self, n: int, indptr: np.ndarray, indices: np.ndarray, community: np.ndarray | None = None):
        self.n = int(n)
        self.indptr = indptr
        self.indices = indices
        self.degree = np.diff(indptr).astype(INDEX)
        self.community = community

    @classmethod
    def from_edges(cls, n: int, u: np.ndarray, v: np.ndarray, community: np.ndarray | None = None) -> Graph:
        """Build from undirected edge endpoints; drops self-loops and duplicate edges.

        Both directions are counting-sorted into rows, and each row is sorted and cleared of repeats
        by one compiled pass (``_csr_from_edges``): rows in node order, each row's neighbours
        ascending, no duplicates.
        """
        idx = INDEX if n <= np.iinfo(INDEX).max else np.int64
        u, v = np.asarray(u), np.asarray(v)
        if u.size and (min(u.min(), v.min()) < 0 or max(u.max(), v.max()) >= n):  # the kernel writes by id
            raise ValueError(f"edge endpoints must lie in [0, {n})")
        indptr = np.empty(n + 1, dtype=np.int64)
        indices = np.empty(2 * u.size, dtype=idx)
        used = _csr_from_edges(u, v, indptr, indices)
        if used < 0.9 * indices.size:  # many repeats or loops (an edge list): give their room back
            return cls(n, indptr, indices[:used].copy(), community)
        return cls(n, indptr, indices[:used], community)

    # ------------------------------------------------------------------------ structure
    @property
    def n_edges(self) -> int:
        """Undirected edges."""
        return int(self.indices.size // 2)

    @property
    def avg_degree(self) -> float:
        return float(self.indices.size / max(self.n, 1))

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Each undirected edge once, as (u, v) with u < v."""
        rows = np.repeat(np.arange(self.n, dtype=INDEX), self.degree)
        keep = rows < self.indices
        return rows[keep], self.indices[keep]

    def neighbours(self, node: int) -> np.ndarray:
        return self.indices[self.indptr[node]:self.indptr[node + 1]]

    def neighbours_of(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All neighbours of ``nodes``: (source position in ``nodes``, neighbour)."""
        position, neighbour, _edge = self.ties_of(nodes)
        return position, neighbour

    def ties_of(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All ties of ``nodes``: (source position in ``nodes``, neighbour, edge id)."""
        counts = self.degree[nodes]
        slots = _segments(self.indptr[nodes], counts)
        return np.repeat(np.arange(nodes.size), counts), self.indices[slots], slots

    def add_to_neighbours(self, nodes: np.ndarray, target: np.ndarray, delta: int, also: np.ndarray | None = None) -> None:
        """``target[j] += delta`` for every neighbour j of every node in ``nodes`` (integer columns:
        the order of the additions does not matter, wrap-around included); the same additions into
        the column ``also`` when given, in the same walk along the rows."""
        if nodes.size:
            if also is None:
                _add_to_rows(self.indptr, self.indices, nodes, target, delta)
            else:
                _add_to_rows_twice(self.indptr, self.indices, nodes, target, also, delta)

    def neighbour_sum(self, x: np.ndarray) -> np.ndarray:
        """(A @ x): the sum of ``x`` over each node's neighbours."""
        csum = np.concatenate([[0], np.cumsum(x[self.indices], dtype=np.float64)])
        return csum[self.indptr[1:]] - csum[self.indptr[:-1]]

    # ------------------------------------------------------------------------ sampling
    def sample_neighbours(self, nodes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One uniformly random neighbour per node: (neighbour, edge id); -1 where a node has none."""
        return self._sample(nodes, rng)

    def _sample(self, nodes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        u = rng.random(nodes.size)
        target = np.empty(nodes.size, dtype=INDEX)
        edge = np.empty(nodes.size, dtype=np.int64)
        halves.run(_sample_kernel, nodes.size, nodes, u, self.indptr, self.indices, target, edge)
        return target, edge

    def sample_neighbours_where(self, nodes: np.ndarray, rng: np.random.Generator, accept: np.ndarray,
                                tries: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """A random neighbour with ``accept[neighbour]`` true, trying up to ``tries`` times per node;
        (-1, -1) where none was found (a person who looks for a friend not yet on the platform).

        The same draws and results as the generic version (:class:`_Sampling`): a uniform per node
        for the first try, then one per node still rejected for each retry; a kernel per try."""
        target = np.empty(nodes.size, dtype=INDEX)
        edge = np.empty(nodes.size, dtype=np.int64)
        if tries <= 0 or nodes.size == 0:
            target[:] = -1
            edge[:] = -1
            return target, edge
        todo, ok = np.empty(nodes.size, dtype=np.int64), np.empty(nodes.size, dtype=np.bool_)
        rows, found = (self.indptr, self.indices), (target, edge)
        halves.run(_first_try, nodes.size, nodes, rng.random(nodes.size), rows, accept, found, ok)
        m = _reject(ok, np.arange(nodes.size), target, edge, todo)
        if m and tries > 1:
            spare = np.empty(m, dtype=np.int64)
            for _ in range(tries - 1):
                if m == 0:
                    break
                halves.run(_retry, m, nodes, todo, rng.random(m), rows, accept, found, ok)
                m = _reject(ok, todo[:m], target, edge, spare)
                todo, spare = spare, todo
        return target, edge

    # ------------------------------------------------------------------------ analysis
    def to_networkx(self):
        import networkx as nx

        g = nx.Graph()
        g.add_nodes_from(range(self.n))
        u, v = self.edges()
        g.add_edges_from(zip(u.tolist(), v.tolist()))
        return g

    def clustering_sample(self, rng: np.random.Generator, nodes: int = 2000) -> float:
        """Mean local clustering coefficient over a random sample of nodes of degree >= 2."""
        cand = np.flatnonzero(self.degree >= 2)
        if cand.size == 0:
            return 0.0
        pick = rng.choice(cand, size=min(nodes, cand.size), replace=False)
        values = []
        for node in pick.tolist():  # analysis only, on a small sample
            nb = self.neighbours(node)  # rows are sorted, so membership is a binary search
            second = self.neighbours_of(nb)[1]
            pos = np.minimum(np.searchsorted(nb, second), nb.size - 1)
            links = int((nb[pos] == second).sum()) // 2
            k = nb.size
            values.append(2.0 * links / (k * (k - 1)))
        return float(np.mean(values))

    def components(self) -> np.ndarray:
        """Connected-component label per node."""
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import connected_components

        mat = csr_matrix((np.ones(self.indices.size, dtype=np.int8), self.indices, self.indptr), shape=(self.n, self.n))
        return connected_components(mat, directed=False)[1]

    def nbytes(self) -> int:
        return self.indptr.nbytes + self.indices.nbytes + self.degree.nbytes


class CompleteGraph(_Sampling):
    """A well-mixed population: everyone knows everyone; no edges are stored.

    Used for mean-field oracles (the Bass equation). Edge ids are -1, so per-edge memory such as
    repeated invitations from the same sender is not tracked.
    """

    well_mixed = True
    community = None

    def __init__(self, n: int):
        self.n = int(n)
        self.degree = np.full(self.n, self.n - 1, dtype=INDEX)

    @property
    def n_edges(self) -> int:
        return self.n * (self.n - 1) // 2

    @property
    def avg_degree(self) -> float:
        return float(self.n - 1)

    def sample_neighbours(self, nodes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self._sample(nodes, rng)

    def _sample(self, nodes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        other = rng.integers(0, self.n - 1, size=nodes.size)
        other = other + (other >= nodes)  # skip oneself
        return other.astype(INDEX), np.full(nodes.size, -1, dtype=np.int64)

    def add_to_neighbours(self, nodes: np.ndarray, target: np.ndarray, delta: int, also: np.ndarray | None = None) -> None:
        if nodes.size:
            for column in (target,) if also is None else (target, also):
                column += delta * nodes.size
                np.add.at(column, nodes, -delta)

    def neighbour_sum(self, x: np.ndarray) -> np.ndarray:
        return x.sum(dtype=np.float64) - x

    def nbytes(self) -> int:
        return self.degree.nbytes
