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
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sim.graph.csr import Graph
from sim.inputs import is_utf16, open_regular
from sim.schema import MAX_PEOPLE, ConfigError, clip, excerpt

_NODES_HEADER = re.compile(r"^\s*#\s*nodes\s*[:=]\s*(\d+)\s*$", re.I)
_SPLIT = re.compile(r"[\s,;]+")


@dataclass
class EdgeList:
    graph: Graph
    labels: list[str] | None  # original labels when ids were not integers
    notes: list[str] = field(default_factory=list)


def _edges(path: Path, where: str) -> Iterator[tuple[int, str, str | int]]:
    """The file's edges as (line number, u, v), and its ``# nodes: N`` header as (line number, "#", N)."""
    with open_regular(path, where) as fh:
        if is_utf16(fh.read(4)):
            raise ConfigError(f"{where}: the file is UTF-16 text; allowed is UTF-8 or ASCII (convert it, e.g. iconv -f UTF-16 -t UTF-8)")
        fh.seek(0)
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ConfigError(f"{path}:{lineno}: byte 0x{raw[exc.start]:02x} is not valid UTF-8; allowed is UTF-8 or ASCII text") from None
            header = _NODES_HEADER.match(line)
            if header:
                declared = int(header.group(1)) if len(header.group(1)) <= 12 else MAX_PEOPLE + 1
                if declared > MAX_PEOPLE:
                    raise ConfigError(f"{path}:{lineno}: # nodes: {clip(header.group(1), 20)}: allowed is at most {MAX_PEOPLE:,} "
                                      "(population.size's limit)")
                yield lineno, "#", declared
                continue
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            parts = [p for p in _SPLIT.split(text) if p]
            if len(parts) not in (2, 3):
                raise ConfigError(f"{path}:{lineno}: expected 'u v' (two node ids), got {excerpt(text, 60)}")
            if len(parts) == 3:
                try:
                    float(parts[2])
                except ValueError:
                    raise ConfigError(f"{path}:{lineno}: third column must be a numeric weight, got {excerpt(parts[2])}") from None
            yield lineno, parts[0], parts[1]


def _tokens(path: Path, where: str) -> tuple[list[tuple[int, str, str]], int | None]:
    rows, declared = [], None
    for row in _edges(path, where):
        if row[1] == "#":
            declared = int(row[2])
        else:
            rows.append(row)
    return rows, declared


def edgelist_extent(path: str | Path) -> tuple[int, int]:
    """(people, edge lines) of an edge list without loading it, for the memory estimate: people is
    the ``# nodes:`` header, else the largest whole-number id + 1, else (text labels) at most two
    per edge. A file that cannot be read gives (0, 0): loading it reports why."""
    declared, top, lines, labels = 0, -1, 0, False
    try:
        for row in _edges(Path(path).expanduser(), str(path)):
            if row[1] == "#":
                declared = int(row[2])
                continue
            lines += 1
            for t in row[1:]:
                if t.isdigit() and len(t) <= 12:
                    top = max(top, int(t))
                else:
                    labels = True
    except ConfigError:
        return 0, 0
    return max(declared, top + 1, 2 * lines if labels else 0), lines


def _integer_ids(p: Path, rows: list[tuple[int, str, str]], first: list[str], second: list[str]) -> bool:
    """Whether the ids are whole numbers (then each is checked to be below ``MAX_PEOPLE``), or
    text labels; a mix of whole numbers and other ids is refused at the first id that breaks it."""
    is_int = [t.lstrip("-").isdigit() for t in first + second]
    if not any(is_int):
        return False
    if not all(is_int):
        k = is_int.index(False)
        other = next(i for i, ok in enumerate(is_int) if ok)
        lineno, token = rows[k % len(rows)][0], (first + second)[k]
        raise ConfigError(f"{p}:{lineno}: node id {excerpt(token)} is not a whole number, but other ids are "
                          f"(line {rows[other % len(rows)][0]}); allowed are whole numbers in [0, {MAX_PEOPLE:,}) or text labels only")
    for k, t in enumerate(first + second):
        if len(t.lstrip("-")) > 10 and int(t) >= MAX_PEOPLE:  # would overflow int64, or allocate beyond any market
            raise ConfigError(f"{p}:{rows[k % len(rows)][0]}: node id {clip(t, 24)} is out of range; allowed is [0, {MAX_PEOPLE:,}) "
                              "(population.size's limit)")
    return True


def load_edgelist(path: str | Path) -> EdgeList:
    p = Path(path).expanduser()
    where = f"graph.path = {excerpt(str(path))}"
    rows, declared = _tokens(p, where)
    if not rows:
        raise ConfigError(f"{p}: no edges found (an empty graph cannot be simulated)")
    notes: list[str] = []
    labels: list[str] | None = None
    first = [r[1] for r in rows]
    second = [r[2] for r in rows]
    if _integer_ids(p, rows, first, second):
        u = np.array(first, dtype=np.int64)
        v = np.array(second, dtype=np.int64)
        bad = np.flatnonzero((u < 0) | (v < 0) | ((u >= declared) | (v >= declared) if declared else False))
        if bad.size:
            lineno, a, b = rows[int(bad[0])]
            limit = f"[0, {declared})" if declared else f"[0, {MAX_PEOPLE:,})"
            raise ConfigError(f"{p}:{lineno}: node id out of range in {excerpt(a)} {excerpt(b)}; allowed is {limit}")
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
