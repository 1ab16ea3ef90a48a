"""``sim bench``: how fast and how big, measured side by side.

One command measures, each in a fresh subprocess (so that peak memory, read from the kernel's
``ru_maxrss``, belongs to that measurement alone):

1. this engine on 10k, 100k and 1M people (graph average degree 20, 365 days, every registered
   mechanism enabled): build time, time per simulated day, people-days per second, peak memory;
2. the plain Mesa reference model (``sim/reference``) against this engine on the same
   configuration (``scenario=core_growth``, the core dynamics without mechanisms, 10k people): the
   ratio of people-days per second, once as configured (a few hundred users a day) and once in a
   busy market (most people users at once: the Mesa model's cost grows with the users it steps, the
   engine's much less);
3. an independent cascade on the same Holme-Kim graph with NDlib's ``IndependentCascadesModel``
   against a vectorised cascade on this engine's CSR graph (``csr_independent_cascade`` below: the
   engine's own graph and neighbour gathers, not a full model run): the ratio of node-steps per
   second, and the mean final cascade sizes of both as a check that they compute the same thing;
4. scaling: the engine over a sweep of population sizes (degree 20) and of average degrees (100k
   people), with fits showing that the cost per simulated day grows linearly in people and in edges;
5. horizons: a five-year run against a one-year run at 100k people (cost per simulated day of both);
6. a market of ten million people, every mechanism, a year: time and peak memory (or the memory
   estimate's refusal where the machine has too little);
7. what a user waits for: whole commands, each a fresh process timed from outside (the median of a
   few runs), with the wall time each should stay within: commands that simulate nothing, ``sim run``
   of the default and of every mechanism with the part of the wall time outside the simulated days,
   writing a run folder (plots included), and loading the compiled kernels (a process's first tiny
   run minus a second one).

It writes ``results/bench/<date>.json`` and ``results/bench/<date>.png`` (the scaling plot) and prints
a table. Times are wall-clock seconds; CPU seconds are recorded too, and so is the load average,
because on a shared machine the wall time of a single-threaded numpy run stretches with the load.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

TABLE_SIZES = (10_000, 100_000, 1_000_000)
SCALING_SIZES = (10_000, 30_000, 100_000, 300_000, 1_000_000)
SCALING_DEGREES = (5, 10, 20, 40)
SCALING_DEGREE_PEOPLE = 100_000
DEGREE = 20
HORIZON = 365
REFERENCE_PEOPLE = 10_000
#: a busy market for the second reference comparison: most of the 10k people are users at once (about
#: 4,900 a day on average instead of about 300), where the Mesa model's cost per user shows
BUSY_MARKET = ("adoption.external_rate=0.02", "behaviour.churn.base_hazard=0.02")
LONG_HORIZON = 5 * 365
LONG_PEOPLE = 100_000
LARGE_PEOPLE = 10_000_000
#: Whole commands as a user types them, and the wall time each should stay within on a two-core
#: machine (runs write into a temporary folder that is removed afterwards).
COMMANDS = (
    ("sim keys", ("keys",), 0.5),
    ("sim scenarios", ("scenarios",), 0.5),
    ("sim config", ("config",), 0.5),
    ("sim run population.size=abc (refused)", ("run", "population.size=abc"), 0.5),
    ("sim run", ("run", "-q"), 3.0),
    ("sim run scenario=all_mechanisms", ("run", "-q", "scenario=all_mechanisms"), 3.5),
)
OUTSIDE_DAYS_TARGET = 1.5  # seconds of a `sim run` outside its simulated days (imports, composing, building, writing)
FOLDER_TARGET = 1.0  # seconds to write a run folder of 100k people, plots included
KERNEL_TARGET = 0.3  # seconds to load the compiled kernels in a fresh process
COMMAND_RUNS = 3
IC_PEOPLE = 10_000
IC_PROBABILITY = 0.1
IC_SEED_FRACTION = 0.01
IC_RUNS = 5


def all_mechanisms_overrides() -> list[str]:
    """Overrides enabling every registered mechanism (with its defaults unless the scenario sets them)."""
    from sim.mechanisms import REGISTRY

    return [f"mechanisms.{name}.enabled=true" for name in REGISTRY]


def no_mechanisms_overrides() -> list[str]:
    from sim.mechanisms import REGISTRY

    return [f"mechanisms.{name}.enabled=false" for name in REGISTRY]


# ================================================================================ workers
# Each runs in its own process: python -m sim.bench --worker '<json spec>' prints one JSON line.

def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def kernel_loading_line(rows: list[dict]) -> str:
    """What loading the compiled kernels cost the engine table's processes (their median), and its parts."""
    median = lambda key: float(np.median([r["loading"][key] for r in rows]))  # noqa: E731
    total, loaded = float(np.median([r["kernel_load_s"] for r in rows])), int(max(r["loading"]["loaded"] for r in rows))
    if loaded == 0:
        return "(kernel loading: none loaded from the cache; every kernel was compiled afresh, so run sim bench again)"
    first = [r["first_time_s"] for r in rows]
    return (f"(each process first loads the compiled kernels, cached on disk: {total:.2f} s{f', median of {len(rows)} processes' if len(rows) > 1 else ''}, "
            f"within {KERNEL_TARGET} s: {_verdict(total, KERNEL_TARGET)}; numba's import {median('numba'):.2f} s, its dispatchers "
            f"{median('dispatchers'):.2f} s, {loaded} kernels {median('loading'):.2f} s ({1e3 * median('loading') / loaded:.1f} ms each); "
            f"timed where it happens, not in the figures above. A tiny run's first time minus its second, which adds the "
            f"modules and memory it first needs: {_span(first)} s)")


def _span(values: list[float]) -> str:
    return f"{min(values):.2f}" if min(values) == max(values) else f"{min(values):.2f}-{max(values):.2f}"


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def worker_model(spec: dict) -> dict:
    """Build and run the engine (``kind=engine``) or the Mesa reference model (``kind=reference``)."""
    import sim

    cfg = sim.compose(spec["scenario"], spec["overrides"], seed=spec.get("seed", 0))
    warmup_s = kernel_load_s = first_time_s = 0.0
    loading = None
    graph_read_s = None
    if spec["kind"] == "reference":
        from sim.reference import ReferenceModel

        model, build_s, build_cpu = _timed(lambda: ReferenceModel(cfg))
    else:
        # Load the compiled kernels (sim.kernels, cached on disk) once, as any process does on its
        # first run, with a tiny run of the same scenario over the same days (some kernels are first
        # needed late: win-back's after a month, campaigns on their days): a one-off cost per
        # process, reported apart so that the time per day is the engine's steady state. The loading
        # is timed where it happens (numba's import, its dispatchers, each kernel's load:
        # sim.compiled.spent); the same tiny run again, kernels loaded, tells the tiny run's whole
        # first-time cost (imports of the modules it first needs, memory it first touches, too).
        from sim import compiled

        tiny = sim.compose(spec["scenario"], [*(o for o in spec["overrides"] if not o.startswith("population.size=")), "population.size=1000"])
        model_class = sim.GrowthModel  # (the engine's modules imported first: not counted as loading kernels)
        _, warmup_s, _ = _timed(lambda: model_class(tiny).run())
        _, again_s, _ = _timed(lambda: model_class(tiny).run())
        first_time_s = max(warmup_s - again_s, 0.0)
        loading = compiled.spent()
        kernel_load_s = loading["numba"] + loading["dispatchers"] + loading["loading"]
        # Built as the first run on a world is, its graph generated (not read back from the graphs a
        # run keeps, sim.graph.store); then the same graph kept and read back, as a later run would.
        model, build_s, build_cpu = _timed(lambda: _generated(model_class, cfg))
        graph_read_s = _graph_read_s(model_class, cfg, model.graph)
    _, sim_s, sim_cpu = _timed(model.run)
    people, days = cfg.population.size, cfg.horizon
    fingerprint = None
    if spec["kind"] == "reference":
        edges, user_days = int(model.grid.G.number_of_edges() * 2), float(sum(model.daily["users"]))
    else:
        edges, user_days = int(model.graph.indices.size), float(model.metrics.series["users"].sum())
        digest = hashlib.sha256()  # of every daily series: the same run gives the same, bit for bit
        for name in sorted(model.metrics.series):
            digest.update(name.encode() + np.ascontiguousarray(model.metrics.series[name]).tobytes())
        fingerprint = digest.hexdigest()[:16]
    return {
        "kind": spec["kind"], "scenario": cfg.scenario, "people": people, "directed_edges": edges, "days": days,
        "mechanisms": cfg.enabled(), "warmup_s": warmup_s, "kernel_load_s": kernel_load_s, "loading": loading,
        "first_time_s": first_time_s, "build_s": build_s, "build_cpu_s": build_cpu, "simulate_s": sim_s,
        "simulate_cpu_s": sim_cpu, "ms_per_day": 1e3 * sim_s / days, "cpu_ms_per_day": 1e3 * sim_cpu / days,
        "people_days_per_s": people * days / sim_s, "user_days": user_days, "user_days_per_s": user_days / sim_s,
        "peak_mb": _peak_mb(), "fingerprint": fingerprint, "threads": os.environ.get("SIM_THREADS", "auto"),
        **({"graph_read_s": graph_read_s} if graph_read_s is not None else {}),
    }


def _generated(model_class, cfg):
    """The model of ``cfg`` with its graph generated, not read back (once the memory estimate has let
    ``cfg`` through: it refuses, before building anything, a run that will not fit)."""
    from sim.memory import check_memory

    check_memory(cfg)
    return model_class(cfg, graph=model_class.make_graph(cfg, keep=False))


def _graph_read_s(model_class, cfg, graph) -> float | None:
    """Seconds to read ``graph`` back from the graphs runs keep (:mod:`sim.graph.store`), as a later
    run on the same world does; None where it is not kept (a small market, the store turned off)."""
    from sim.graph import store

    if not store.remember(model_class.graph_key(cfg), graph):
        return None
    read, seconds, _ = _timed(lambda: model_class.make_graph(cfg))
    return seconds if read.indices.size == graph.indices.size else None


def worker_folder(spec: dict) -> dict:
    """Simulate, then time writing the run folder (tables, plots, report) into a temporary folder, as
    ``sim run`` does: its plot helper started with the simulation (``simulate(plots_next=True)``)."""
    import tempfile

    from sim.config import compose
    from sim.runs import simulate, write_run_folder

    result = simulate(compose(spec["scenario"], spec["overrides"], seed=spec.get("seed", 0)), plots_next=True)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as tmp:
        _, wall, cpu = _timed(lambda: write_run_folder(result, Path(tmp)))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu += (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)  # figures drawn in child processes
    return {"kind": "folder", "scenario": spec["scenario"], "people": result.config.population.size,
            "write_s": wall, "write_cpu_s": cpu, "simulate_s": result.summary["simulate_seconds"]}


def time_command(argv: Sequence[str], runs: int = COMMAND_RUNS, timeout: float = 600) -> dict:
    """A whole ``sim`` command in fresh processes: median wall and CPU seconds (its own and its
    children's) over ``runs`` runs; for a run, the median of its simulated days' seconds (from the
    run folder's summary). The exit code of the last run is recorded. (No peak memory: a child's
    ``ru_maxrss`` starts from this process's size, which it is forked from; the engine table has
    the runs' peaks.) Each run starts in a new empty folder, which receives its run folder
    (``results/runs/``), with the same command line: as a user repeating a command, later runs read
    back Hydra's composition of the first (:mod:`sim.compositions`), and so does the median."""
    import tempfile

    walls, cpus, days = [], [], []
    code = None
    env = dict(os.environ)  # (a relative PYTHONPATH, such as a checkout's '.', kept valid from the new folder)
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "sim.cli", *argv]
            with open(Path(tmp) / "stdout", "w+") as out, open(Path(tmp) / "stderr", "w+") as err:
                t = time.perf_counter()
                proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=tmp, env=env)
                try:
                    _, status, usage = _wait4(proc.pid, timeout)
                except TimeoutError:
                    proc.kill()
                    proc.wait()
                    return {"error": f"timed out after {timeout:.0f} s"}
                walls.append(time.perf_counter() - t)
                proc.returncode = code = os.waitstatus_to_exitcode(status)
                cpus.append(usage.ru_utime + usage.ru_stime)
                out.seek(0)
                folder = out.read().strip().splitlines()
            if argv[0] == "run" and code == 0 and folder:
                days.append(json.loads((Path(tmp) / folder[-1] / "summary.json").read_text())["simulate_seconds"])
    row = {"wall_s": float(np.median(walls)), "cpu_s": float(np.median(cpus)), "exit": code, "runs": runs,
           "wall_s_all": walls}
    if days:
        row["simulate_s"] = float(np.median(days))
        row["outside_days_s"] = float(np.median(np.array(walls) - np.array(days)))
    return row


def _wait4(pid: int, timeout: float):
    """``os.wait4`` (the child's own resource use, which ``subprocess`` would discard) with a timeout."""
    deadline = time.monotonic() + timeout
    while True:
        done_pid, status, usage = os.wait4(pid, os.WNOHANG)
        if done_pid == pid:
            return done_pid, status, usage
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.005)


def csr_independent_cascade(graph, p: float, seeds: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """Independent cascade on a CSR graph: each newly active node gets one chance to activate each
    inactive neighbour with probability ``p``. Returns (steps until no newly active node, final size)."""
    active = np.zeros(graph.n, dtype=bool)
    active[seeds] = True
    frontier = np.unique(seeds)
    steps = 0
    while frontier.size:
        steps += 1
        _, nbrs = graph.neighbours_of(frontier)
        hit = nbrs[(rng.random(nbrs.size) < p) & ~active[nbrs]]
        frontier = np.unique(hit)
        active[frontier] = True
    return steps, int(active.sum())


def worker_ic(spec: dict) -> dict:
    """The same independent cascade with NDlib (networkx, one Python step per node) and on CSR."""
    import warnings

    try:
        import ndlib.models.ModelConfig as mc
        import ndlib.models.epidemics as ep
    except ImportError as exc:
        raise RuntimeError(f"NDlib is not installed ({exc}); install the test extras: pip install -e '.[test]'") from None

    import sim
    from sim.engine import Streams
    from sim.graph import build_graph

    cfg = sim.compose("default", [f"population.size={spec['people']}", f"graph.avg_degree={spec['degree']}"], seed=0)
    graph = build_graph(cfg.graph, cfg.population.size, Streams(cfg.seed).setup("graph"))
    nxg = graph.to_networkx()
    p, frac, runs = spec["p"], spec["seed_fraction"], spec["runs"]
    n_seeds = max(1, int(round(frac * graph.n)))
    out = {"people": graph.n, "directed_edges": int(graph.indices.size), "p": p, "seed_fraction": frac, "runs": runs}

    nd_steps = nd_time = 0.0
    nd_sizes = []
    for run in range(runs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ep.IndependentCascadesModel(nxg, seed=run)
            config = mc.Configuration()
            config.add_model_initial_configuration("Infected", np.random.default_rng(run).choice(graph.n, n_seeds, replace=False).tolist())
            for u, v in nxg.edges():
                config.add_edge_configuration("threshold", (u, v), p)
            model.set_initial_status(config)
        t = time.perf_counter()
        model.iteration()  # iteration 0 reports the initial state
        steps = 0
        while True:
            it = model.iteration(node_status=False)
            steps += 1
            if it["node_count"].get(1, 0) == 0:
                break
        nd_time += time.perf_counter() - t
        nd_steps += steps
        nd_sizes.append(graph.n - it["node_count"].get(0, 0))

    csr_steps = csr_time = 0.0
    csr_sizes = []
    for run in range(runs):
        rng = np.random.default_rng(1000 + run)
        seeds = np.random.default_rng(run).choice(graph.n, n_seeds, replace=False)
        (steps, size), wall, _ = _timed(lambda: csr_independent_cascade(graph, p, seeds, rng))
        csr_time += wall
        csr_steps += steps
        csr_sizes.append(size)

    out["ndlib"] = {"node_steps_per_s": graph.n * nd_steps / nd_time, "steps": nd_steps / runs,
                    "final_size_mean": float(np.mean(nd_sizes)), "seconds": nd_time}
    out["engine"] = {"node_steps_per_s": graph.n * csr_steps / csr_time, "steps": csr_steps / runs,
                     "final_size_mean": float(np.mean(csr_sizes)), "seconds": csr_time}
    out["ratio"] = out["engine"]["node_steps_per_s"] / out["ndlib"]["node_steps_per_s"]
    return out


def _worker_main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    try:
        if spec["kind"] == "ic":
            result = worker_ic(spec)
        elif spec["kind"] == "folder":
            result = worker_folder(spec)
        elif spec["kind"] == "pair":  # the engine, then the reference model, on one configuration
            result = {k: worker_model({**spec, "kind": k}) for k in ("engine", "reference")}
        else:
            result = worker_model(spec)
    except Exception as exc:  # reported to the parent as a failed measurement, in one line
        result = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    print(json.dumps(result))
    return 0


def run_worker(spec: dict, timeout: float = 3600, env: dict | None = None) -> dict:
    """Run one measurement in a fresh Python process (with ``env`` added to its environment) and
    return its JSON result."""
    cmd = [sys.executable, "-m", "sim.bench", "--worker", json.dumps(spec)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"worker failed (exit {done.returncode}): {tail}"}
    return json.loads(lines[-1])


# ================================================================================ the benchmark
@dataclass
class Plan:
    sizes: tuple[int, ...] = TABLE_SIZES
    scaling_sizes: tuple[int, ...] = SCALING_SIZES
    degrees: tuple[int, ...] = SCALING_DEGREES
    degree_people: int = SCALING_DEGREE_PEOPLE
    horizon: int = HORIZON
    reference_people: int = REFERENCE_PEOPLE
    ic_people: int = IC_PEOPLE
    ic_runs: int = IC_RUNS
    long_horizon: int = LONG_HORIZON
    long_people: int = LONG_PEOPLE
    large_people: int = LARGE_PEOPLE
    folder_people: int = 100_000
    commands: tuple[tuple[str, tuple[str, ...], float], ...] = COMMANDS
    command_runs: int = COMMAND_RUNS
    reference: bool = True
    ic: bool = True
    scaling: bool = True
    horizons: bool = True
    large: bool = True
    whole: bool = True
    two_cores: bool = True
    notes: list[str] = field(default_factory=list)

    @classmethod
    def quick(cls) -> Plan:
        """A tiny plan that exercises every part in seconds (for tests and a first look)."""
        small = ("population.size=2000", "horizon=20")
        commands = tuple((label, (*argv, *small) if argv[0] == "run" and "-q" in argv else argv, limit) for label, argv, limit in COMMANDS)
        return cls(sizes=(2_000, 5_000), scaling_sizes=(2_000, 5_000), degrees=(10, 20), degree_people=5_000,
                   horizon=20, reference_people=2_000, ic_people=2_000, ic_runs=2, long_horizon=60, long_people=2_000,
                   large_people=20_000, folder_people=2_000, commands=commands, command_runs=1)


def engine_spec(people: int, degree: float, horizon: int) -> dict:
    return {"kind": "engine", "scenario": "all_mechanisms",
            "overrides": [f"population.size={people}", f"graph.avg_degree={degree}", f"horizon={horizon}", *all_mechanisms_overrides()]}


def run_bench(plan: Plan, progress=print) -> dict:
    """Every measurement of ``plan``; returns the JSON-ready record."""
    from sim.runs import git_revision

    record = {"date": datetime.now().isoformat(timespec="seconds"), "git_revision": git_revision(),
              "machine": {"cpus": os.cpu_count(), "load_average_start": os.getloadavg()},
              "horizon": plan.horizon, "degree": DEGREE, "mechanisms": [o.split(".")[1] for o in all_mechanisms_overrides()]}
    cache: dict[tuple[int, float], dict] = {}

    def engine(people: int, degree: float) -> dict:
        key = (people, degree)
        if key not in cache:
            progress(f"engine: {people:,} people, degree {degree}, {plan.horizon} days ...")
            cache[key] = run_worker(engine_spec(people, degree, plan.horizon))
        return cache[key]

    def one_thread() -> dict:
        people = max(plan.sizes)
        progress(f"engine on one thread (SIM_THREADS=1): {people:,} people, {plan.horizon} days ...")
        return run_worker(engine_spec(people, DEGREE, plan.horizon), env={"SIM_THREADS": "1"})

    # One thread before the engine table and once after, compared with the table's row in between:
    # on this host, of two identical runs back to back the first is often 5-15 % slower.
    before = one_thread() if plan.two_cores else None
    record["engine"] = [engine(n, DEGREE) for n in plan.sizes]
    if plan.two_cores:
        record["one_thread"] = [before, one_thread()]
    if plan.reference:
        for key, market, extra in (("reference", "", ()), ("reference_busy", " (busy market)", BUSY_MARKET)):
            progress(f"reference Mesa model and engine: {plan.reference_people:,} people, scenario core_growth{market} ...")
            overrides = [f"population.size={plan.reference_people}", f"horizon={plan.horizon}", *no_mechanisms_overrides(), *extra]
            pair = run_worker({"kind": "pair", "scenario": "core_growth", "overrides": overrides})
            ref, eng = pair.get("reference", pair), pair.get("engine", pair)
            ratio = eng["people_days_per_s"] / ref["people_days_per_s"] if "error" not in ref and "error" not in eng else None
            record[key] = {"reference": ref, "engine": eng, "ratio": ratio, "overrides": list(extra)}
    if plan.ic:
        progress(f"independent cascade: NDlib and CSR on {plan.ic_people:,} people ...")
        record["ic"] = run_worker({"kind": "ic", "people": plan.ic_people, "degree": DEGREE, "p": IC_PROBABILITY,
                                   "seed_fraction": IC_SEED_FRACTION, "runs": plan.ic_runs})
    if plan.scaling:
        by_people = [engine(n, DEGREE) for n in plan.scaling_sizes]
        by_degree = [engine(plan.degree_people, d) for d in plan.degrees]
        record["scaling"] = {"by_people": by_people, "by_degree": by_degree,
                             "fit_people": scaling_fit(by_people, "people"),
                             "fit_edges": scaling_fit(by_degree, "directed_edges")}
    if plan.horizons:
        progress(f"horizons: {plan.long_people:,} people over {plan.long_horizon} days and over {plan.horizon} ...")
        record["horizons"] = {"short": engine(plan.long_people, DEGREE),
                              "long": run_worker(engine_spec(plan.long_people, DEGREE, plan.long_horizon))}
    if plan.large:
        progress(f"a large market: {plan.large_people:,} people, {plan.horizon} days (minutes) ...")
        record["large"] = engine(plan.large_people, DEGREE)
    if plan.whole:
        record["commands"] = []
        for label, argv, limit in plan.commands:
            progress(f"whole command: {label} ...")
            record["commands"].append({"label": label, "argv": list(argv), "target_s": limit, **time_command(argv, plan.command_runs)})
        progress(f"writing a run folder: all_mechanisms, {plan.folder_people:,} people ...")
        record["folder"] = run_worker({"kind": "folder", "scenario": "all_mechanisms",
                                       "overrides": [f"population.size={plan.folder_people}", f"horizon={plan.horizon}"]})
    record["machine"]["load_average_end"] = os.getloadavg()
    return record


def scaling_fit(rows: list[dict], x_key: str, t_key: str = "cpu_ms_per_day") -> dict | None:
    """CPU seconds per simulated day against ``x_key`` (CPU time, because the wall time of one run
    on a shared machine stretches with the load): the log-log slope (1 is linear) over the whole
    range and over its upper half, and a straight-line fit t = a + b x with its R^2."""
    ok = [r for r in rows if "error" not in r]
    if len(ok) < 2:
        return None
    x = np.array([r[x_key] for r in ok], dtype=float)
    t = np.array([r[t_key] / 1e3 for r in ok])
    slope = float(np.polyfit(np.log(x), np.log(t), 1)[0])
    upper = x >= np.sqrt(x.min() * x.max())
    slope_upper = float(np.polyfit(np.log(x[upper]), np.log(t[upper]), 1)[0]) if upper.sum() >= 2 else None
    b, a = np.polyfit(x, t, 1)
    r2 = 1 - np.sum((t - (a + b * x)) ** 2) / np.sum((t - t.mean()) ** 2) if t.size > 2 else 1.0
    return {"loglog_slope": slope, "loglog_slope_upper": slope_upper, "intercept_s_per_day": float(a),
            "s_per_day_per_unit": float(b), "linear_r2": float(r2)}


# ================================================================================ output
def _num(x: float, digits: int = 2) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.{digits}f}M"
    if x >= 1e3:
        return f"{x / 1e3:.{digits}f}k"
    return f"{x:.{digits}f}"


def _compact(x: float) -> str:
    """A size as an axis label: 30k, 1M, 3.85M."""
    return f"{x / 1e6:.3g}M" if x >= 1e6 else f"{x / 1e3:.3g}k" if x >= 1e3 else f"{x:.3g}"


def table(record: dict) -> str:
    lines = []
    mech = ", ".join(record["mechanisms"])
    lines.append(f"engine: scenario all_mechanisms ({mech}), {record['horizon']} days, graph holme_kim, average degree {record['degree']}")
    lines.append(f"{'people':>10} {'edges':>9} {'build s':>8} {'ms/day':>8} {'people-days/s':>14} {'peak MB':>8} {'cpu s':>7}")
    for r in record["engine"]:
        if "error" in r:
            lines.append(f"{'?':>10} error: {r['error']}")
            continue
        lines.append(f"{r['people']:>10,} {_num(r['directed_edges'], 1):>9} {r['build_s']:>8.2f} {r['ms_per_day']:>8.2f} "
                     f"{_num(r['people_days_per_s']):>14} {r['peak_mb']:>8.0f} {r['build_cpu_s'] + r['simulate_cpu_s']:>7.2f}")
    loads = [r for r in record["engine"] if r.get("loading")]
    if loads:
        lines.append(kernel_loading_line(loads))
    kept = [r for r in record["engine"] if "graph_read_s" in r]
    if kept:
        r = max(kept, key=lambda r: r["people"])
        lines.append(f"(a later run on the same world reads its graph back, kept on disk by the first: {r['graph_read_s']:.2f} s at "
                     f"{r['people']:,} people, against the {r['build_s']:.2f} s build above, which generates it; sim.graph.store)")
    for key, market in (("reference", ""), ("reference_busy", f" with {', '.join(BUSY_MARKET)} (a busy market)")):
        ref = record.get(key)
        if not ref:
            continue
        lines.append("")
        if ref["ratio"] is None:
            lines.append(f"reference Mesa model: error: {ref['reference'].get('error') or ref['engine'].get('error')}")
            continue
        r, e = ref["reference"], ref["engine"]
        users = r["user_days"] / r["days"]
        lines.append(f"reference Mesa model vs engine, scenario core_growth{market}, {r['people']:,} people, {r['days']} days, "
                     f"{users:,.0f} users a day on average:")
        lines.append(f"  Mesa agents: build {r['build_s']:.2f} s, {_num(r['people_days_per_s'])} people-days/s "
                     f"({_num(r['user_days_per_s'])} user-days/s); engine: build {e['build_s']:.2f} s, "
                     f"{_num(e['people_days_per_s'])} people-days/s ({_num(e['user_days_per_s'])} user-days/s); "
                     f"engine / Mesa = {ref['ratio']:.1f}x")
    ic = record.get("ic")
    if ic:
        lines.append("")
        if "error" in ic:
            lines.append(f"independent cascade: error: {ic['error']}")
        else:
            nd, en = ic["ndlib"], ic["engine"]
            lines.append(f"independent cascade (p={ic['p']}, seeds {ic['seed_fraction']:.0%}), {ic['people']:,} people, "
                         f"{ic['runs']} runs each:")
            lines.append(f"  NDlib: {_num(nd['node_steps_per_s'])} node-steps/s (final size {nd['final_size_mean']:.0f}, "
                         f"{nd['steps']:.1f} steps); engine CSR: {_num(en['node_steps_per_s'])} node-steps/s (final size "
                         f"{en['final_size_mean']:.0f}, {en['steps']:.1f} steps); engine / NDlib = {ic['ratio']:.0f}x")
    sc = record.get("scaling")
    if sc:
        lines.append("")
        edge_people = sc["by_degree"][0].get("people", 0) if sc["by_degree"] else 0
        for label, key in (("people (degree 20)", "fit_people"), (f"edges ({edge_people:,} people)", "fit_edges")):
            f = sc[key]
            if f:
                upper = f" (upper half {f['loglog_slope_upper']:.2f})" if f["loglog_slope_upper"] is not None else ""
                lines.append(f"scaling of CPU time per simulated day with {label}: log-log slope {f['loglog_slope']:.2f}{upper}; "
                             f"straight line t = a + b x with R^2 {f['linear_r2']:.3f}")
    lines += _two_cores_rows(record)
    lines += _more_rows(record)
    load = record["machine"]
    lines.append(f"\nload average {load['load_average_start'][0]:.1f} at start, {load['load_average_end'][0]:.1f} at end "
                 f"on {load['cpus']} CPUs (wall times stretch with load; cpu s is the process's own time)")
    return "\n".join(lines)


def _two_cores_rows(record: dict) -> list[str]:
    """The largest market of the table on one thread against the same run using both cores (sim.halves)."""
    ones = record.get("one_thread")
    if not ones:
        return []
    failed = next((one for one in ones if "error" in one), None)
    if failed:
        return ["", f"one thread: error: {failed['error']}"]
    people = ones[0]["people"]
    two = next((r for r in record["engine"] if r.get("people") == people and "error" not in r), None)
    if two is None:
        return []
    same = all(one["fingerprint"] == two["fingerprint"] for one in ones)
    one_ms = sum(one["ms_per_day"] for one in ones) / len(ones)
    each = ", ".join(f"{one['ms_per_day']:.1f}" for one in ones)
    return ["", f"one run on two cores, {people:,} people: {two['ms_per_day']:.1f} ms a day ({two['cpu_ms_per_day']:.1f} cpu ms), "
                f"against {one_ms:.1f} ms on one thread (SIM_THREADS=1; mean of a run before and one after: "
                f"{each}): {one_ms / two['ms_per_day']:.2f}x; "
                + ("the same results, bit for bit" if same else "DIFFERENT RESULTS")]


def _verdict(value: float, limit: float) -> str:
    return "ok" if value <= limit else "over"


def _more_rows(record: dict) -> list[str]:
    """The horizons, the large market and the whole commands, as table lines."""
    lines = []
    hz = record.get("horizons")
    if hz:
        lines.append("")
        short, long_ = hz["short"], hz["long"]
        if "error" in short or "error" in long_:
            lines.append(f"horizons: error: {short.get('error') or long_.get('error')}")
        else:
            ratio = long_["cpu_ms_per_day"] / short["cpu_ms_per_day"]
            lines.append(f"horizons, {short['people']:,} people: {long_['days']} days cost {long_['cpu_ms_per_day']:.2f} cpu ms a day "
                         f"({long_['simulate_cpu_s']:.1f} cpu s), {short['days']} days {short['cpu_ms_per_day']:.2f} "
                         f"({short['simulate_cpu_s']:.1f} cpu s): {ratio:.2f}x per day")
    big = record.get("large")
    if big:
        lines.append("")
        if "error" in big:
            lines.append(f"large market: error: {big['error']}")
        else:
            lines.append(f"large market: {big['people']:,} people, {_num(big['directed_edges'], 1)} directed edges, {big['days']} days: "
                         f"build {big['build_s']:.1f} s, simulate {big['simulate_s']:.1f} s ({big['ms_per_day']:.0f} ms a day), "
                         f"peak {big['peak_mb'] / 1024:.1f} GB")
    commands = record.get("commands")
    if commands:
        runs = commands[0].get("runs", 1)
        lines.append("")
        lines.append(f"whole commands (a fresh process each, median of {runs} run{'s' if runs > 1 else ''}; 'within': the wall time "
                     "each should stay within):")
        lines.append(f"  {'command':<40} {'wall s':>7} {'within':>7} {'cpu s':>7}")
        for c in commands:
            if "error" in c:
                lines.append(f"  {c['label']:<40} error: {c['error']}")
                continue
            line = (f"  {c['label']:<40} {c['wall_s']:>7.2f} {c['target_s']:>7.1f} {c['cpu_s']:>7.2f}  "
                    f"{_verdict(c['wall_s'], c['target_s'])}")
            if "outside_days_s" in c:
                line += (f"; simulated days {c['simulate_s']:.2f} s, the rest {c['outside_days_s']:.2f} s (within "
                         f"{OUTSIDE_DAYS_TARGET}: {_verdict(c['outside_days_s'], OUTSIDE_DAYS_TARGET)})")
            lines.append(line)
    folder = record.get("folder")
    if folder:
        if "error" in folder:
            lines.append(f"  writing a run folder: error: {folder['error']}")
        else:
            lines.append(f"  writing a run folder ({folder['scenario']}, {folder['people']:,} people, tables, plots and report): "
                         f"{folder['write_s']:.2f} s wall, {folder['write_cpu_s']:.2f} cpu s (within {FOLDER_TARGET} s: "
                         f"{_verdict(folder['write_s'], FOLDER_TARGET)})")
    return lines


def scaling_plot(record: dict, path: Path) -> Path | None:
    sc = record.get("scaling")
    if not sc:
        return None
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    for ax, rows, key, title, fixed in (
        (axes[0], sc["by_people"], "people", "time against people (average degree 20)", "people"),
        (axes[1], sc["by_degree"], "directed_edges", f"time against edges ({sc['by_degree'][0].get('people', 0):,} people)", "directed edges"),
    ):
        ok = [r for r in rows if "error" not in r]
        if not ok:
            continue
        x = np.array([r[key] for r in ok], dtype=float)
        for field_, label, marker in ((("simulate_cpu_s",), f"simulate {record['horizon']} days", "o"),
                                      (("build_cpu_s",), "build (graph + people)", "s"),
                                      (("build_cpu_s", "simulate_cpu_s"), "total", "^")):
            y = np.array([sum(r[f] for f in field_) for r in ok])
            ax.loglog(x, y, marker=marker, label=label)
        y0 = sum(ok[-1][f] for f in ("build_cpu_s", "simulate_cpu_s"))
        ax.loglog(x, y0 * x / x[-1], "k--", lw=0.8, label="slope 1 (linear)")
        ax.set_xticks(x, [_compact(v) for v in x])  # (the sizes measured, not 3 x 10^6 beside 4 x 10^6)
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(fixed)
        ax.set_ylabel("CPU seconds")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"growth-sim engine, scenario all_mechanisms, {record['horizon']} days", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(record: dict, out: Path) -> tuple[Path, Path | None]:
    from sim.folders import prepare_parent

    prepare_parent(out)
    stem = datetime.now().strftime("%Y-%m-%d")
    path = out / f"{stem}.json"
    k = 2
    while path.exists():
        path = out / f"{stem}-{k}.json"
        k += 1
    path.write_text(json.dumps(record, indent=2) + "\n")
    plot = scaling_plot(record, path.with_suffix(".png"))
    return path, plot


def plan_from_args(args) -> Plan:
    plan = Plan.quick() if args.quick else Plan()
    if args.sizes:
        try:
            sizes = tuple(int(float(s.replace("_", ""))) for s in args.sizes.split(","))
        except ValueError:
            from sim.schema import ConfigError

            raise ConfigError(f"--sizes = {args.sizes!r}: allowed is a comma-separated list of people counts, e.g. 10000,100000") from None
        plan.sizes = sizes
        plan.scaling_sizes = sizes
    if args.horizon is not None:
        plan.horizon = args.horizon
    check_plan(plan)
    plan.reference = not args.no_reference
    plan.ic = not args.no_ic
    plan.scaling = not args.no_scaling
    plan.horizons = not args.no_horizons
    plan.large = not args.no_large
    plan.whole = not args.no_commands
    plan.two_cores = not args.no_two_cores
    return plan


def check_plan(plan: Plan) -> None:
    """Compose every engine measurement's configuration before any is run, so a size or horizon the
    model refuses is one line (naming --sizes or --horizon), not a results file of failures."""
    from sim.config import compose
    from sim.schema import ConfigError

    for flag, people in [("--horizon", plan.degree_people), *(("--sizes", n) for n in (*plan.sizes, *plan.scaling_sizes))]:
        if flag == "--sizes" and 2 <= people <= DEGREE:  # the benchmark's own bound first: the model's would name another key
            raise ConfigError(f"--sizes = {people}: allowed are people counts above the benchmark's degree ({DEGREE})")
        spec = engine_spec(people, DEGREE, plan.horizon)
        try:
            compose(spec["scenario"], spec["overrides"])
        except ConfigError as exc:
            key = "horizon" if flag == "--horizon" else "population.size"
            raise ConfigError(str(exc).replace(f"{key} = ", f"{flag} = ", 1)) from None


def main_bench(args) -> int:
    plan = plan_from_args(args)
    record = run_bench(plan, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    path, plot = write(record, Path(args.out))
    print(table(record))
    print(f"\nwrote {path}" + (f" and {plot}" if plot else ""))
    return 0


if __name__ == "__main__":  # the benchmark's worker processes (users run `sim bench`)
    if len(sys.argv) != 3 or sys.argv[1] != "--worker":
        sys.exit("usage: python -m sim.bench --worker SPEC (run the benchmark with `sim bench`)")
    sys.exit(_worker_main(sys.argv[2]))
