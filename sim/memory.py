"""How much memory a run will need, estimated from its configuration before anything is built.

The model's memory is a sum of arrays whose sizes the configuration fixes:

- the social graph: ``indices`` (int32) and the per-edge invitation memory (uint8) per directed
  edge, ``indptr`` (int64) and ``degree`` (int32) per person; while a generator builds it, the
  edge-endpoint arrays and the conversion to CSR hold several more copies per edge
  (``BUILD_BYTES_PER_EDGE``, per generator: the most a generator needs over the graph it makes);
- the people: about ``BYTES_PER_PERSON`` of columns (state, days, counters, satisfaction, need,
  ...), plus room for each enabled mechanism's own columns and arrays and the day's temporary arrays;
- the recorder: cohort arrays of (horizon + ages) x channels x ages (stored by the day they describe),
  and each person's last order day;
- the interpreter and the libraries (numpy, pandas, scipy, mesa, hydra): a fixed base.

The constants below were fitted to the peak resident memory of real runs (every mechanism on,
holme_kim graph of average degree 20, a year; ``/usr/bin/time -v``, and the peak of the simulated
days alone read from the kernel's high-water mark reset after the graph was built; all include the
0.22 GB of the interpreter and libraries):

============  ===============  ==========================  =========  ==========
people        peak (building)  peak of the simulated days  estimate   estimate
                                                           (build)    (days)
============  ===============  ==========================  =========  ==========
1,000,000     0.76 GB          0.64 GB                     0.81 GB    0.67 GB
3,000,000     1.76 GB          1.29 GB                     1.94 GB    1.44 GB
10,000,000    5.19 GB          3.45 GB                     5.89 GB    4.16 GB
============  ===============  ==========================  =========  ==========

Building the graph is the peak (holme_kim holds about 26 bytes per directed edge at its peak); while
the days run, the graph is about 5.4 bytes per directed edge, the people's columns 73 bytes per
person, the mechanisms' columns and arrays about 185 more with all thirteen on, and the recorder
40 MB to 70 MB. A run on a world whose graph an earlier run kept (:mod:`sim.graph.store`) reads it
back instead of generating it, about 4 bytes per directed edge and 24 per person, and the simulated
days are then the peak (ten million people: 4.2 GB estimated instead of 5.9). The estimate errs on
the high side. A configuration whose estimate exceeds the memory the machine has available is
refused before the run with one line (exit code 2).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sim.config import CHANNELS, SimConfig
from sim.schema import ConfigError, excerpt

BASE_BYTES = 250e6  # interpreter, numpy, pandas, scipy, mesa, hydra, matplotlib
BYTES_PER_PERSON = 129.0  # core columns (~79 B), kernel scratch (5 B) and the day's temporaries over users
BYTES_PER_PERSON_PER_MECHANISM = 11.0  # a mechanism's own columns and arrays (185 B measured for all 13)
BYTES_PER_EDGE = 5.0  # int32 neighbour index + uint8 invitation memory, per directed edge
#: peak while a generator builds a graph (endpoints, skeleton graph, CSR conversion), per directed
#: edge of the graph made, measured at 1,000,000 people of average degree 20 (rounded up); plus
#: ``BUILD_BYTES_PER_PERSON``
BUILD_BYTES_PER_EDGE = {"holme_kim": 27.0, "er": 32.0, "ba": 15.0, "ws": 15.0, "sbm": 23.0, "regular": 35.0}
BUILD_BYTES_PER_EDGE_OTHER = 40.0  # the other generators (lattice: at most a few edges per person)
BUILD_BYTES_PER_PERSON = 24.0  # indptr (int64), degrees and row counts
RECORDER_BYTES_PER_CELL = 16.0  # cohort retained (int32), alive (int32), gmv (float64)
ENTRY_BYTES_PER_PERSON = 8.0  # a growing market: the people in order of entry (int64)
RECORDER_BYTES_PER_PERSON = 4.0  # each person's last order day (int32), for the trailing-buyer columns
#: reading a kept graph back instead of generating it (:mod:`sim.graph.store`): its neighbour indices
#: (int32) per directed edge, and row pointers, degrees and the check of them per person (10M people
#: of degree 20: 0.85 GB measured above the base, 1.01 GB estimated)
READ_BYTES_PER_EDGE = 4.0
READ_BYTES_PER_PERSON = 24.0


@dataclass(frozen=True)
class MemoryEstimate:
    people: int
    directed_edges: int
    graph_bytes: float
    build_bytes: float
    people_bytes: float
    recorder_bytes: float
    generated: bool = True  # the graph is generated (False: a kept graph read back, build_bytes its reading)

    @property
    def peak_bytes(self) -> float:
        """Peak resident memory: the larger of building the graph and simulating on it."""
        return BASE_BYTES + max(self.build_bytes, self.graph_bytes + self.people_bytes + self.recorder_bytes)

    def describe(self) -> str:
        return (f"about {gb(self.peak_bytes)} ({self.people:,} people, {self.directed_edges:,} directed edges: "
                f"graph {gb(self.graph_bytes)}, people {gb(self.people_bytes)}, "
                f"{'building the graph' if self.generated else 'reading the kept graph back'} {gb(self.build_bytes)})")


def gb(x: float) -> str:
    return f"{x / 1e9:.2f} GB" if x >= 1e8 else f"{x / 1e6:.0f} MB"


def estimate(cfg: SimConfig, generated: bool = True) -> MemoryEstimate:
    """The memory a run of ``cfg`` needs (no graph is built; an edge list is sized by its largest node id
    or ``# nodes:`` header and its lines, read without loading it). ``generated=False``: the run reads
    its graph back from the graphs kept between runs (:mod:`sim.graph.store`) instead of generating
    it, which needs a fraction of generating's peak (a ten-million market: 1.0 GB against 5.6)."""
    g, n = cfg.graph, cfg.population.size
    build_per_edge = BUILD_BYTES_PER_EDGE.get(g.kind, BUILD_BYTES_PER_EDGE_OTHER)
    if g.kind == "complete":
        edges = 0
    elif g.kind == "edgelist":
        # The loaded graph has one node per id up to the largest (or the '# nodes:' header), and
        # two directed edges per line; loading holds Python tokens per line, so its build cost per
        # edge is larger.
        from sim.graph.loader import edgelist_extent

        n, lines = edgelist_extent(g.path) if g.path else (0, 0)
        n = max(n, 1)
        edges = 2 * lines
        build_per_edge = 120.0
    else:
        edges = int(n * g.avg_degree)
    mechanisms = len(cfg.enabled())
    days = cfg.horizon
    ages = min(days, 366)
    return MemoryEstimate(
        people=n,
        directed_edges=edges,
        graph_bytes=edges * BYTES_PER_EDGE + 12.0 * n,
        build_bytes=(edges * build_per_edge + BUILD_BYTES_PER_PERSON * n if generated
                     else edges * READ_BYTES_PER_EDGE + READ_BYTES_PER_PERSON * n),
        people_bytes=n * (BYTES_PER_PERSON + BYTES_PER_PERSON_PER_MECHANISM * mechanisms
                          + (ENTRY_BYTES_PER_PERSON if cfg.population.entry else 0.0)),
        recorder_bytes=(days + ages) * len(CHANNELS) * ages * RECORDER_BYTES_PER_CELL  # stored by the day described
        + n * RECORDER_BYTES_PER_PERSON,
        generated=generated,
    )


def available_bytes() -> float:
    """Memory this process can still use: MemAvailable, capped by a cgroup limit if there is one."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = float(line.split()[1]) * 1024
                break
    except OSError:
        pass
    if avail is None:
        try:
            avail = float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return float("inf")
    return min(avail, cgroup_available())


def _cgroup_dirs(proc_cgroup: str | os.PathLike, fs_root: str | os.PathLike) -> list[tuple[Path, str, str]]:
    """The memory cgroup folders of this process, innermost first, up to the root, as (folder,
    limit file, usage file): cgroup v2 (``0::/path``) and v1 (a ``memory`` controller line)."""
    root = Path(fs_root)
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        lines = []
    found = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        if controllers == "":
            base, files = root, ("memory.max", "memory.current")
        elif "memory" in controllers.split(","):
            base, files = root / "memory", ("memory.limit_in_bytes", "memory.usage_in_bytes")
        else:
            continue
        folder = base / rel.strip().lstrip("/")
        while True:  # the tightest limit on the way up holds (SLURM limits the job's folder, not the root)
            found.append((folder, *files))
            if folder == base or base not in folder.parents:
                break
            folder = folder.parent
    if not found:  # no /proc/self/cgroup: the root files, as a container shows them
        found = [(root, "memory.max", "memory.current"), (root / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes")]
    return found


def cgroup_available(proc_cgroup: str | os.PathLike = "/proc/self/cgroup", fs_root: str | os.PathLike = "/sys/fs/cgroup") -> float:
    """Memory left under the limits of this process's own cgroups (v1 and v2; inf without a limit)."""
    avail = float("inf")
    for folder, limit_file, usage_file in _cgroup_dirs(proc_cgroup, fs_root):
        try:
            limit = (folder / limit_file).read_text().strip()
            if limit.isdigit() and int(limit) < 1 << 60:
                avail = min(avail, float(int(limit) - int((folder / usage_file).read_text().strip())))
        except (OSError, ValueError):
            continue
    return avail


def check_memory(cfg: SimConfig, available: float | None = None, generated: bool = True) -> MemoryEstimate:
    """Refuse (ConfigError, one line) a configuration that will not fit in the available memory
    (``generated``: see :func:`estimate`)."""
    est = estimate(cfg, generated)
    avail = available_bytes() if available is None else available
    if est.peak_bytes > avail:
        if cfg.graph.kind == "edgelist":
            what, advice = f"graph.path = {excerpt(str(cfg.graph.path))}", "use a smaller graph (node ids are numbered from 0: renumber sparse ids)"
        else:
            what, advice = f"population.size = {cfg.population.size:,}", "use fewer people or a sparser graph (graph.avg_degree)"
        raise ConfigError(f"{what}: this run needs {est.describe()}, but only {gb(avail)} of memory is available; {advice}")
    return est
