"""Watching a run while it simulates: snapshots of its curves, and a small view of its social graph.

:class:`Watcher` is a progress callback for :func:`sim.simulate`: after every simulated day it
records the states of a small sample of people, and every few days (at most a few times a second)
it hands a :class:`Snapshot` of the daily series to the page. The simulation itself is the one
``sim run`` performs; nothing here changes it.

The graph sample is a connected neighbourhood of a few hundred people around one of the first
users, drawn from the run's own graph; its layout is computed once (networkx spring layout) and the
people are then coloured by their lifecycle state day by day.
"""

from __future__ import annotations

import io
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim.vocabulary import STATE_NAMES, State

GRAPH_SAMPLE = 300  # people shown in the graph view
RETENTION_AGES = 60  # days of the retention curve shown while running


class Stopped(Exception):
    """Raised from the progress callback to stop a run the page no longer wants."""


@dataclass(frozen=True)
class GraphSample:
    """A connected neighbourhood of the social graph: people, edges among them and a layout."""

    nodes: np.ndarray  # person ids
    edges: np.ndarray  # (m, 2) positions into ``nodes``
    xy: np.ndarray  # (len(nodes), 2) layout

    @property
    def empty(self) -> bool:
        return self.nodes.size == 0


@dataclass(frozen=True)
class Snapshot:
    """What the page shows of a run after ``day`` (0-based) of ``horizon`` days."""

    day: int
    horizon: int
    daily: pd.DataFrame
    retention: np.ndarray  # day-N retention, index = age in days
    graph: GraphSample
    graph_states: np.ndarray  # (days so far, len(graph.nodes)) lifecycle states, int8
    seconds: float

    @property
    def progress(self) -> float:
        return (self.day + 1) / self.horizon

    @property
    def done(self) -> bool:
        return self.day + 1 >= self.horizon


def neighbourhood(graph, start: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``size`` people reached by breadth-first search from ``start`` (a connected sample).

    Whole rings of friends are added while they fit; from the ring that does not fit, the people
    with the most friends already in the sample come first (ties at random), so the sample is a
    tight neighbourhood rather than a star. Each of them is a friend of someone in the sample."""
    taken = np.array([start], dtype=np.int64)
    seen = np.zeros(graph.n, dtype=bool)
    seen[start] = True
    frontier = taken
    while taken.size < size and frontier.size:
        _, friends = graph.neighbours_of(frontier)
        ring, links = np.unique(friends[~seen[friends]], return_counts=True)
        if ring.size == 0:
            break
        room = size - taken.size
        if ring.size > room:
            ring = np.sort(ring[np.lexsort((rng.random(ring.size), -links))[:room]])
        ring = ring.astype(np.int64)
        seen[ring] = True
        taken = np.concatenate([taken, ring])
        frontier = ring
    return taken


def sample_graph(model, size: int = GRAPH_SAMPLE, seed: int = 0) -> GraphSample:
    """A connected neighbourhood around one of the first users, with a spring layout."""
    import networkx as nx

    graph = model.graph
    if getattr(graph, "well_mixed", False) or not hasattr(graph, "indptr"):
        return GraphSample(np.zeros(0, np.int64), np.zeros((0, 2), np.int64), np.zeros((0, 2)))
    rng = np.random.default_rng(seed)
    users = np.flatnonzero(model.pop.state >= State.ACTIVE)
    has_friends = graph.degree > 0
    pool = users[has_friends[users]] if users.size else np.flatnonzero(has_friends)
    if pool.size == 0:
        return GraphSample(np.zeros(0, np.int64), np.zeros((0, 2), np.int64), np.zeros((0, 2)))
    nodes = neighbourhood(graph, int(rng.choice(pool)), size, rng)
    position = np.full(graph.n, -1, dtype=np.int64)
    position[nodes] = np.arange(nodes.size)
    src, friends = graph.neighbours_of(nodes)
    dst = position[friends]
    keep = (dst >= 0) & (src < dst)
    edges = np.column_stack([src[keep], dst[keep]])
    g = nx.Graph()
    g.add_nodes_from(range(nodes.size))
    g.add_edges_from(map(tuple, edges))
    layout = nx.spring_layout(g, seed=seed, iterations=60)
    xy = np.array([layout[i] for i in range(nodes.size)])
    return GraphSample(nodes, edges, xy)


class Watcher:
    """Progress callback for :func:`sim.simulate` that publishes snapshots while the run goes on.

    ``publish(snapshot)`` is called at most every ``every_seconds`` (and at least ``every_days``
    apart), and always for the last day; since the page is drawn in the publishing thread, the
    simulation is also given at least twice the time the last drawing took, so that a slow page
    slows the updates, not the run. ``should_stop()`` returning True stops the run (``Stopped`` is
    raised out of ``sim.simulate``). ``clock`` gives the time in seconds (tests pass their own).
    """

    def __init__(self, publish: Callable[[Snapshot], None], should_stop: Callable[[], bool] = lambda: False,
                 every_seconds: float = 0.3, every_days: int = 3, graph_size: int = GRAPH_SAMPLE,
                 clock: Callable[[], float] = time.perf_counter):
        self.publish, self.should_stop, self.clock = publish, should_stop, clock
        self.every_seconds, self.every_days = every_seconds, every_days
        self.graph_size = graph_size
        self.graph: GraphSample | None = None
        self.states: list[np.ndarray] = []
        self.t0 = clock()
        self.next_time = -np.inf
        self.last_day = -np.inf
        self.published = 0

    def __call__(self, model) -> None:
        if self.should_stop():
            raise Stopped()
        if self.graph is None:
            self.graph = sample_graph(model, self.graph_size, seed=model.cfg.seed)
        self.states.append(model.pop.state[self.graph.nodes].astype(np.int8))
        now = self.clock()
        last = model.day + 1 >= model.cfg.horizon
        if last or (now >= self.next_time and model.day - self.last_day >= self.every_days):
            self.last_day = model.day
            self.published += 1
            self.publish(self.snapshot(model))
            end = self.clock()
            self.next_time = end + max(self.every_seconds, 2.0 * (end - now))

    def snapshot(self, model) -> Snapshot:
        daily = model.metrics.daily(model.economics)
        retention = model.metrics.retention_curve(max_age=RETENTION_AGES)
        return Snapshot(model.day, model.cfg.horizon, daily, retention, self.graph, np.array(self.states),
                        self.clock() - self.t0)


def state_counts(states: np.ndarray) -> dict[str, int]:
    """People of the graph sample in each lifecycle state."""
    counts = np.bincount(states, minlength=len(STATE_NAMES))
    return {name: int(c) for name, c in zip(STATE_NAMES, counts)}


def zip_folder(folder: Path) -> bytes:
    """The folder as a zip archive (entries under the folder's own name)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, Path(folder.name) / path.relative_to(folder))
    return buffer.getvalue()


def run_folder_zip(result) -> tuple[str, bytes]:
    """Write ``result``'s run folder (with plots and report) to a temporary place and zip it."""
    with tempfile.TemporaryDirectory(prefix="sim-dash-") as tmp:
        path = result.save(tmp, plots=True)
        return f"{path.name}.zip", zip_folder(path)
