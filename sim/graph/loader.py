"""Loading a real social graph from an edge list.

Format: one edge per line, two node ids separated by whitespace or a comma; an optional third column
(a weight) is ignored; ``#`` starts a comment; blank lines are skipped. A header comment
``# nodes: N`` fixes the node count, so isolated people are kept and ids must lie in [0, N).
Without it, integer ids give nodes 0..max id, and any other labels are numbered in order of first
appearance.

Repairs are stated, never silent: self-loops and duplicate edges are dropped and reported in
``EdgeList.notes``. A line that is not an edge, an id out of range, a missing or empty file stop
loading with one line naming the file and the line number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.graph.csr import Graph
from sim.schema import ConfigError

_NODES_HEADER = re.compile(r"^\s*#\s*nodes\s*[:=]\s*(\d+)\s*$", re.I)
_SPLIT = re.compile(r"[\s,;]+")


@dataclass
class EdgeList:
    graph: Graph
    labels: list[str] | None  # original labels when ids were not integers
    notes: list[str] = field(default_factory=list)


def _tokens(path: Path) -> tuple[list[tuple[int, str, str]], int | None]:
    rows, declared = [], None
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            header = _NODES_HEADER.match(line)
            if header:
                declared = int(header.group(1))
                continue
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            parts = [p for p in _SPLIT.split(text) if p]
            if len(parts) not in (2, 3):
                raise ConfigError(f"{path}:{lineno}: expected 'u v' (two node ids), got {text[:60]!r}")
            if len(parts) == 3:
                try:
                    float(parts[2])
                except ValueError:
                    raise ConfigError(f"{path}:{lineno}: third column must be a numeric weight, got {parts[2]!r}") from None
            rows.append((lineno, parts[0], parts[1]))
    return rows, declared


def load_edgelist(path: str | Path) -> EdgeList:
    p = Path(path).expanduser()
    if not p.exists():
        raise ConfigError(f"graph.path = {str(path)!r}: no such file")
    if not p.is_file():
        raise ConfigError(f"graph.path = {str(path)!r}: not a file")
    rows, declared = _tokens(p)
    if not rows:
        raise ConfigError(f"{p}: no edges found (an empty graph cannot be simulated)")
    notes: list[str] = []
    labels: list[str] | None = None
    first = [r[1] for r in rows]
    second = [r[2] for r in rows]
    if all(t.lstrip("-").isdigit() for t in first + second):
        u = np.array(first, dtype=np.int64)
        v = np.array(second, dtype=np.int64)
        bad = np.flatnonzero((u < 0) | (v < 0) | ((u >= declared) | (v >= declared) if declared else False))
        if bad.size:
            lineno, a, b = rows[int(bad[0])]
            limit = f"[0, {declared})" if declared else "non-negative"
            raise ConfigError(f"{p}:{lineno}: node id out of range in {a!r} {b!r}; allowed is {limit}")
        n = declared if declared else int(max(u.max(), v.max())) + 1
    else:
        if declared:
            raise ConfigError(f"{p}: '# nodes: {declared}' needs integer node ids")
        index: dict[str, int] = {}
        u = np.array([index.setdefault(t, len(index)) for t in first], dtype=np.int64)
        v = np.array([index.setdefault(t, len(index)) for t in second], dtype=np.int64)
        labels = list(index)
        n = len(labels)
        notes.append(f"{n} text labels numbered 0..{n - 1} in order of first appearance")
    loops = int((u == v).sum())
    if loops:
        notes.append(f"dropped {loops} self-loop{'s' if loops > 1 else ''}")
    graph = Graph.from_edges(n, u, v)
    dups = int((u != v).sum()) - graph.n_edges
    if dups:
        notes.append(f"merged {dups} duplicate edge{'s' if dups > 1 else ''}")
    if graph.n_edges == 0:
        raise ConfigError(f"{p}: no edges left after dropping self-loops (an empty graph cannot be simulated)")
    comp = graph.components()
    n_comp = int(comp.max()) + 1
    if n_comp > 1:
        largest = np.bincount(comp).max() / n
        notes.append(f"graph has {n_comp} connected components; the largest holds {largest:.1%} of nodes (kept as is)")
    return EdgeList(graph, labels, notes)
