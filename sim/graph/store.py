"""Generated social graphs kept between processes, as numba keeps compiled kernels.

A generated graph is a pure function of its settings (``graph.*``), the market size, the world seed
and the code that draws it: the same inputs always give the same CSR arrays. Generating a large one
is the longest step before a run's first day: about 0.2 s at 100,000 people, 2.4-6 s at a million
and 46 s or more at ten million (Holme-Kim, 20 friends on average), while reading its arrays back
takes 0.01 s at 100,000 and 0.07-0.1 s at a million. So a graph of :data:`MIN_PEOPLE` people or more
is kept in a file named by a hash of all its inputs, and a later run on the same world (another
strategy, another scenario with the same graph settings, the same command again) reads it back
instead of generating it (:func:`recall`, :func:`remember`, called by ``GrowthModel.make_graph``):
the run's results are the same, bit for bit.

What the key covers: the graph settings and the market size, the world seed (``world_seed``, or the
run's seed when it is not set), the sources of the whole model layer (any edit of the model, the
generators included, changes every key) and the installed numpy (whose random streams the
generators draw from). Graphs loaded from an edge list (``graph.kind=edgelist``) are read from their
file and never kept; the complete graph has no arrays to keep.

The files live in ``$SIM_CACHE_DIR/graphs`` (default ``~/.cache/growth-sim/graphs``, or under
``$XDG_CACHE_HOME``); ``SIM_CACHE_DIR=off`` turns this cache off, with the compositions'. A graph
takes 4 bytes per friendship end (two per friendship) and 8 per person: 85 MB at a million people
with 20 friends each. Beyond :data:`KEEP_BYTES` in all the least recently used go first. A file that
cannot be read, or whose arrays are not a valid graph of the size asked for, is a miss (and
removed), never an error; deleting the folder is always safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
import zipfile
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim import compositions
from sim.compiled import model_stamp
from sim.graph.csr import Graph

#: Bump when what is stored (or how the key is made) changes.
FORMAT = 1
#: Graphs of fewer people are generated every time (a few hundredths of a second at most).
MIN_PEOPLE = 50_000
#: The files kept, in bytes; beyond it the least recently used go first (a ten-million market's
#: graph, about 0.8 GB, fits).
KEEP_BYTES = 2 * 1024**3


def folder() -> Path | None:
    """Where graphs are kept, or None when ``SIM_CACHE_DIR=off``."""
    where = compositions.folder()
    return None if where is None else where.parent / "graphs"


def key(graph_cfg: Any, n: int, world_seed: int) -> str | None:
    """The name of the graph ``graph_cfg`` gives for ``n`` people from ``world_seed`` with this
    process's model layer (:func:`sim.compiled.model_stamp`); None when it is not kept (fewer than
    :data:`MIN_PEOPLE`, loaded from a file, or the complete graph)."""
    if n < MIN_PEOPLE or getattr(graph_cfg, "kind", None) in ("edgelist", "complete"):
        return None
    settings = asdict(graph_cfg) if is_dataclass(graph_cfg) else dict(graph_cfg)
    h = hashlib.sha256(f"growth-sim graphs {FORMAT}\0numpy {np.__version__}\0".encode())
    h.update(json.dumps({"graph": settings, "n": int(n), "world_seed": int(world_seed)}, sort_keys=True, default=repr).encode())
    h.update(b"\0" + model_stamp())
    return h.hexdigest()


def kept(name: str | None) -> bool:
    """Whether a graph is kept under ``name`` (to be read back by :func:`recall`, which checks it)."""
    where = folder()
    return name is not None and where is not None and (where / f"{name}.npz").is_file()


def recall(name: str | None, n: int) -> Graph | None:
    """The graph kept under ``name`` if its arrays are a valid graph of ``n`` people; else None (and a
    bad file is removed)."""
    where = folder()
    if name is None or where is None:
        return None
    path = where / f"{name}.npz"
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {k: stored[k] for k in stored.files}
    except (FileNotFoundError, PermissionError):  # (not kept, or another user's: generated, theirs left alone)
        return None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):  # (truncated, foreign, not ours)
        _drop(path)
        return None
    if not _valid(arrays, n):
        _drop(path)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # (recently used: kept longest)
    return Graph(n, arrays["indptr"], arrays["indices"], arrays.get("community"))


def _drop(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _valid(arrays: dict[str, np.ndarray], n: int) -> bool:
    """Whether ``arrays`` are the CSR of a graph of ``n`` people: the row pointers rise from 0 to the
    number of neighbour entries, every neighbour is a person, and communities (if any) are one per person."""
    indptr, indices = arrays.get("indptr"), arrays.get("indices")
    if indptr is None or indices is None or indptr.ndim != 1 or indices.ndim != 1 or indptr.size != n + 1:
        return False
    if indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu" or indptr[0] != 0 or indptr[-1] != indices.size:
        return False
    if np.any(indptr[1:] < indptr[:-1]) or (indices.size and (indices.min() < 0 or indices.max() >= n)):
        return False
    community = arrays.get("community")
    return community is None or (community.ndim == 1 and community.size == n)


def remember(name: str | None, graph: Graph) -> bool:
    """Keep ``graph`` under ``name`` (atomically: a reader sees the whole file or none), then drop the
    least recently used files beyond :data:`KEEP_BYTES`; whether it was kept. Any failure (a full or
    read-only disk) is silent. A graph with notes (repairs made while loading it) is not kept."""
    where = folder()
    if name is None or where is None or type(graph) is not Graph or graph.notes:
        return False
    arrays = {"indptr": graph.indptr, "indices": graph.indices}
    if graph.community is not None:
        arrays["community"] = np.asarray(graph.community)
    if sum(a.nbytes for a in arrays.values()) > KEEP_BYTES:  # (kept, it would push out every other and itself)
        return False
    try:
        where.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=where, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.chmod(tmp, 0o644)  # (as a file written by open(): others sharing SIM_CACHE_DIR may read it)
            os.replace(tmp, where / f"{name}.npz")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _prune(where, keep=where / f"{name}.npz")
    except (OSError, ValueError):
        return False
    return True


def _prune(where: Path, keep: Path) -> None:
    """Drop the least recently used graphs beyond :data:`KEEP_BYTES` (never ``keep``, the one just
    written), and files half-written by a process killed an hour or more ago."""
    stale = time.time() - 3600
    for path in where.glob(".*.tmp"):
        try:
            if path.stat().st_mtime < stale:
                path.unlink()
        except OSError:
            continue
    entries = []
    for path in where.glob("*.npz"):
        try:
            st = path.stat()
        except OSError:
            continue
        entries.append((st.st_mtime_ns, st.st_size, path))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= KEEP_BYTES:
            break
        if path != keep:
            path.unlink(missing_ok=True)
            total -= size


__all__ = ["FORMAT", "KEEP_BYTES", "MIN_PEOPLE", "folder", "key", "recall", "remember"]
