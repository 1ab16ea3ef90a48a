"""Experiments: making the runs a plan asks for, and collecting what they wrote.

The plans themselves (``experiments/*.yaml`` files or the command line, validated as data) are in
``sim.plans``; what the results mean is for ``sim.analysis``. The kinds of experiment:

- **comparison** (``sim compare``, :func:`compare`): several strategies, each run for the same
  replicates. Replicate r of every strategy uses the same seed, derived from one base seed, and the
  engine derives every random stream from (seed, stream name, day): the strategies see the same
  graph, the same people and the same base randomness (common random numbers), so their differences
  are paired and a scenario compared with itself differs by exactly zero. Replicates run in parallel
  (one task per replicate, so the graph of a replicate is built once for all its strategies); the
  results do not depend on the number of workers.
- **sweep** (``sim run -m``, :func:`sweep`): Hydra's multirun over parameter values, through its real
  sweeper and launchers (joblib locally by default; Ray or SLURM by a ``hydra/launcher=`` override).
  Each job recomposes its configuration from its own overrides with :func:`sim.config.compose` (a
  ``scenario=NAME`` is resolved by this project, not by a Hydra group) and writes one run folder named
  after its swept values; a job whose folder exists is skipped, so rerunning an interrupted sweep
  into the same folder resumes it. When the jobs are done, every run is collected into
  ``sweep.parquet`` and ``horizon.parquet`` with the swept parameters as columns.

- **sensitivity** (``sim sensitivity``, :mod:`sim.analysis.sensitivity`) and **calibration**
  (``sim calibrate``, :mod:`sim.analysis.calibration`): a parameter space declared once, as data
  (config key -> bounds), from which points are chosen; :func:`run_points` makes the runs of a list
  of points at a list of seeds (every point sees the same seeds: common random numbers), through the
  same process pool as comparisons, or through Hydra's multirun and its launchers (joblib, Ray,
  SLURM) with :func:`run_points_multirun`.

This module knows which runs to make and where results go; it never decides what they mean.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import glob
import hashlib
import json
import math
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from sim.analysis.comparison import METRICS, difference_table, grouped_table, horizon_table, horizon_values, uncertainty_table
from sim.analysis.decision import Decision, Question, assumption_effects, decide
from sim.assumptions import COLUMN, check_assumptions, check_draws, config_node, set_key
from sim.config import SOURCES, SimConfig, compose, dump_yaml, with_sources
from sim.diffusion import adoption_metrics, adoption_only
from sim.memory import available_bytes, check_memory
from sim.plans import (  # noqa: F401  (the plans' names, as sim.experiment always offered them)
    DEFAULT_SWEEP_METRICS, PROJECT, CalibrationSpec, ExperimentSpec, MetricName, ParameterRange, SensitivitySpec, StrategyInput,
    StrategySpec, SweepSpec, TargetSpec, available_experiments, decision_from_text, experiment_dirs, experiment_spec, experiment_yaml,
    load_experiment, replicate_seeds,
)
from sim.runs import is_complete
from sim.schema import ConfigError, SimulationError, require, to_plain


# ============================================================================ comparisons
@dataclass
class Comparison:
    """The runs of a comparison and what they mean (the frames of a comparison folder)."""

    name: str
    spec: ExperimentSpec
    configs: dict[str, SimConfig]  # strategy -> resolved configuration (seed of replicate 0)
    seeds: list[int]
    daily: pd.DataFrame  # strategy, replicate, day, daily columns
    horizon: pd.DataFrame  # strategy, replicate, seed, horizon metrics
    table: pd.DataFrame  # strategy, metric, mean and interval
    differences: pd.DataFrame  # strategy, metric, paired difference against the baseline, verdict
    retention: pd.DataFrame  # strategy, replicate, age, retention (pooled day-N retention of each run)
    wall_seconds: float = 0.0
    path: Path | None = None
    graph_notes: tuple[str, ...] = ()  # repairs the edge-list loader made to the graph (dropped self-loops, ...)
    world_seed: int | None = None  # the seed every replicate's world was built from; None: each replicate's own seed
    noise: pd.DataFrame | None = None  # with assumptions: the horizon frame of the same seeds with every assumption at its centre
    uncertainty: pd.DataFrame | None = None  # with assumptions: each paired difference with and without them, variance share
    assumption_effects: pd.DataFrame | None = None  # with assumptions: which of them could flip the decision
    decision: Decision | None = None  # with a decision: P(best), P(feasible), the recommendation

    @property
    def world(self) -> str:
        """How the replicates' worlds were drawn, in one sentence."""
        if self.world_seed is None:
            return ("The world (graph, people, catalogue) was drawn anew for each replicate: its variation is part of "
                    "the intervals.")
        return (f"The world (graph, people, catalogue) was fixed across replicates at seed {self.world_seed}: intervals "
                "are noise only, conditional on this world.")

    @property
    def strategies(self) -> list[str]:
        return list(self.spec.strategies)

    @property
    def baseline(self) -> str:
        return self.spec.baseline_name

    def verdicts(self, metric: str = "profit") -> list[str]:
        d = self.differences
        return list(d.loc[d["metric"] == metric, "verdict"])

    def save(self, out: str | os.PathLike = "results/comparisons", plots: bool = True) -> Path:
        """Write the comparison folder under ``out`` atomically and return its path."""
        from sim.folders import AtomicFolder, slug, write_table

        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = AtomicFolder(Path(out), f"{stamp}_{slug(self.name, whole_words=True)}")
        definition = experiment_yaml(self.spec, self.name)
        with folder as tmp:
            (tmp / "config.yaml").write_text(definition)
            (tmp / "resolved").mkdir()
            for strategy, cfg in self.configs.items():
                (tmp / "resolved" / f"{slug(strategy)}.yaml").write_text(dump_yaml(cfg))
            write_table(self.daily, tmp / "daily.parquet")
            write_table(self.horizon, tmp / "horizon.parquet")
            write_table(self.differences, tmp / "differences.parquet")
            write_table(self.table, tmp / "table.parquet")
            write_table(self.retention, tmp / "retention.parquet")
            for frame, file in ((self.noise, "horizon_noise.parquet"), (self.uncertainty, "uncertainty.parquet"),
                                (self.assumption_effects, "assumption_effects.parquet")):
                if frame is not None:
                    write_table(frame, tmp / file)
            if self.decision is not None:
                (tmp / "decision.json").write_text(json.dumps(self.decision.as_dict(), indent=1, ensure_ascii=False) + "\n")
            from sim import plots as plotting
            from sim.report import comparison_report

            figures = plotting.comparison_plots(self, tmp / "plots") if plots else {}
            (tmp / "report.html").write_text(comparison_report(self, figures, definition))
        self.path = folder.path
        return self.path


def strategy_configs(spec: ExperimentSpec) -> dict[str, SimConfig]:
    """Compose (and so validate) every strategy once; replicates only change the seed."""
    configs = {}
    for name, s in spec.strategies.items():
        try:
            configs[name] = compose(s.scenario, [*spec.overrides, *s.overrides], seed=spec.seed, warn=True)
        except ConfigError as exc:
            raise ConfigError(f"strategy {name}: {exc}") from None
    return configs


def fixed_world_seed(spec: ExperimentSpec, configs: Mapping[str, SimConfig]) -> int | None:
    """The seed every replicate's world is built from: a ``world_seed`` the configurations set,
    else with ``world: fixed`` the experiment's base seed; None when each replicate draws its own."""
    given = {cfg.world_seed for cfg in configs.values()}
    if len(given) > 1:
        shown = ", ".join(f"{n}: {cfg.world_seed}" for n, cfg in configs.items())
        raise ConfigError(f"world_seed: the strategies' scenarios set different worlds ({shown}); strategies of one comparison share theirs")
    (world,) = given
    if world is None and spec.world == "fixed":
        world = spec.seed
    return world


Run = tuple[str, int, pd.DataFrame, dict, np.ndarray]  # strategy, replicate, daily, summary, retention curve


def replicate_config(cfg: SimConfig, seed: int, world_seed: int | None = None, values: Mapping[str, Any] | None = None) -> SimConfig:
    """A strategy's configuration in one replicate: its seed, the world seed when the world is held
    fixed, and the replicate's draws of the assumptions (key -> value)."""
    if values:
        cfg = with_sources(point_config(to_plain(cfg), values, seed), getattr(cfg, SOURCES, ()))
    cfg = cfg.with_seed(seed)
    if world_seed is not None:
        cfg = with_sources(replace(cfg, world_seed=int(world_seed)), getattr(cfg, SOURCES, ()))
    return cfg


def run_replicate(configs: Mapping[str, SimConfig], replicate: int, seed: int,
                  on_run: Callable[[], None] | None = None, *, world_seed: int | None = None,
                  values: Mapping[str, Any] | None = None, graphs: dict | None = None) -> list[Run]:
    """Run every strategy for one replicate seed (``on_run()`` after each run), with the world built
    from ``world_seed`` when given and the assumptions at ``values``. Strategies with the same graph
    settings share one graph (graphs are never modified; each model builds its own people, which it
    does modify), and so do calls given the same ``graphs`` cache."""
    from sim.engine import GrowthModel
    from sim.metrics import run_series, summary

    graphs = {} if graphs is None else graphs
    out = []
    for name, cfg in configs.items():
        cfg = replicate_config(cfg, seed, world_seed, values)
        key = (cfg.graph, cfg.population.size, seed if cfg.world_seed is None else cfg.world_seed)
        if key not in graphs:
            graphs[key] = GrowthModel.make_graph(cfg)
        model = GrowthModel(cfg, graph=graphs[key]).run()
        daily = model.metrics.daily(model.economics)
        s = summary(model, daily)
        s["graph_notes"] = list(getattr(model.graph, "notes", ()))  # repairs the edge-list loader made
        out.append((name, replicate, daily, s, model.metrics.retention_curve()))
        if on_run is not None:
            on_run()
    return out


ReplicateSets = Sequence[tuple[str, Mapping[str, Any]]]  # (set name, assumption values) run in one replicate


def run_replicate_sets(configs: Mapping[str, SimConfig], replicate: int, seed: int, world_seed: int | None, sets: ReplicateSets,
                       on_run: Callable[[], None] | None = None) -> list[tuple[str, Run]]:
    """Every strategy of one replicate in each set of assumption values (the drawn values, then
    their centres: the noise-only set), sharing the replicate's graphs; each run tagged with its set."""
    graphs: dict[tuple, Any] = {}
    return [(name, run) for name, values in sets
            for run in run_replicate(configs, replicate, seed, on_run, world_seed=world_seed, values=values, graphs=graphs)]


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def _map(fn, tasks: Sequence[tuple], workers: int):
    """Yield ``fn(*task)`` results as they finish (a process pool for more than one worker)."""
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield fn(*task)
        return
    from joblib import Parallel, delayed, parallel_config

    # After a SIGKILL, loky's resource tracker removes the pool's shared files and would warn about
    # them ("leaked folder objects"): the user sees only the project's own lines.
    quiet = "ignore::UserWarning:joblib.externals.loky.backend.resource_tracker"
    if quiet not in os.environ.get("PYTHONWARNINGS", ""):
        os.environ["PYTHONWARNINGS"] = ",".join(w for w in (os.environ.get("PYTHONWARNINGS"), quiet) if w)
    with parallel_config(backend="loky", initializer=_exit_with_parent, initargs=(os.getpid(),)), warnings.catch_warnings():
        # loky replaces a worker whose memory grew by 300 MB over its tasks (large runs) and says so
        # as a warning; the replacement is harmless, and the user sees only the project's own lines.
        warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given", category=UserWarning)
        par = Parallel(n_jobs=min(workers, len(tasks)), return_as="generator_unordered")
        yield from par(delayed(fn)(*task) for task in tasks)


def _exit_with_parent(parent: int) -> None:
    """Start of every pool worker: a daemon thread ends the worker once the process that started
    the pool is gone (killed, even by SIGKILL), so no worker outlives a killed comparison. The
    worker's runs keep to one thread (:mod:`sim.halves`): the pool already keeps the cores busy."""
    from sim import halves

    halves.single()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="exit with parent", daemon=True).start()


def run_comparison(spec: ExperimentSpec, name: str, workers: int | None = None,
                   progress: Callable[[int, int], None] | None = None) -> Comparison:
    """Make the runs a comparison plan asks for and analyse them.

    ``progress(done, total)`` counts runs (strategies x replicates): it is called once before the
    first run, then after every finished run with one worker, or after every finished replicate
    (all its strategies) with several. An exception it raises stops the comparison there.
    """
    require(len(spec.strategies) >= 1, "scenario", "", "allowed is at least one strategy")
    t0 = time.perf_counter()
    configs = strategy_configs(spec)
    if spec.decision is None and all(adoption_only(cfg) for cfg in configs.values()):  # textbook diffusion: adoption, no money
        spec = dataclasses.replace(spec, metrics=tuple(adoption_metrics(spec.metrics)))
    seeds = replicate_seeds(spec.seed, spec.replicates)
    world = fixed_world_seed(spec, configs)
    plains = {s: to_plain(cfg) for s, cfg in configs.items()}
    assumptions = check_assumptions(plains, spec.assumptions)
    draws = [assumptions.draw(spec.seed, r) for r in range(len(seeds))]
    centre = assumptions.centre()
    check_draws(plains, [*draws, centre])  # every replicate's configuration is valid, or nothing runs
    sets = [[("drawn", d), ("noise", centre)] if assumptions else [("drawn", {})] for d in draws]
    tasks = [(configs, r, s, world, sets[r]) for r, s in enumerate(seeds)]
    total, done = sum(len(t[-1]) for t in tasks) * len(configs), 0

    def tick(runs: int = 1) -> None:
        nonlocal done
        done += runs
        if progress:
            progress(done, total)

    # Refuse, before any graph is built, a run that will not fit in memory; run no more replicates
    # side by side than fit together.
    peak = max(check_memory(cfg.with_seed(seeds[0])).peak_bytes for cfg in configs.values())
    workers = workers or default_workers()
    fit = available_bytes() / peak  # inf where the machine does not say
    workers = max(1, min(workers, int(fit))) if math.isfinite(fit) else workers
    if progress:
        progress(0, total)
    results: list[tuple[str, Run]] = []
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            results.extend(run_replicate_sets(*task, on_run=tick))
    else:
        for chunk in _map(run_replicate_sets, tasks, workers):
            results.extend(chunk)
            tick(len(chunk))
    noise = [run for kind, run in results if kind == "noise"]
    return analyse(spec, name, configs, seeds, [run for kind, run in results if kind == "drawn"], time.perf_counter() - t0,
                   world_seed=world, draws=draws if assumptions else None, noise=noise or None, centre=centre)


def _horizon(results: Sequence[Run], seeds: Sequence[int], world_seed: int | None, draws: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """strategy, replicate, seed, world_seed, ``assumption:<key>`` (each replicate's draws), then the horizon metrics."""
    return pd.DataFrame([{"strategy": s, "replicate": r, "seed": seeds[r], "world_seed": seeds[r] if world_seed is None else world_seed,
                          **{f"{COLUMN}{k}": v for k, v in draws[r].items()}, **horizon_values(h)} for s, r, _, h, _ in results])


def analyse(spec: ExperimentSpec, name: str, configs: Mapping[str, SimConfig], seeds: list[int],
            results: list[Run], wall_seconds: float = 0.0, *, world_seed: int | None = None,
            draws: Sequence[Mapping[str, Any]] | None = None, noise: list[Run] | None = None,
            centre: Mapping[str, Any] | None = None) -> Comparison:
    """The frames of a comparison from its runs (in any order): with ``draws`` (each replicate's
    assumption values) and ``noise`` (the runs with every assumption at its ``centre``), also the
    intervals with and without the assumptions and which of them could flip the decision."""
    order = {s: k for k, s in enumerate(configs)}
    results = sorted(results, key=lambda r: (order[r[0]], r[1]))
    daily = pd.concat([d.assign(strategy=s, replicate=r) for s, r, d, _, _ in results], ignore_index=True)
    counters = [c for c in daily.columns if daily[c].isna().any()]  # a mechanism's column, absent where it is off
    daily[counters] = daily[counters].fillna(0)
    daily = daily[["strategy", "replicate", *[c for c in daily.columns if c not in ("strategy", "replicate")]]]
    draws = draws or [{} for _ in seeds]
    horizon = _horizon(results, seeds, world_seed, draws)
    retention = pd.concat([pd.DataFrame({"strategy": s, "replicate": r, "age": np.arange(c.size), "retention": c})
                           for s, r, _, _, c in results], ignore_index=True)
    metrics = list(spec.metrics)
    baseline = spec.baseline_name
    table = horizon_table(horizon, metrics)
    diffs = difference_table(horizon, baseline, metrics)
    resolved = {s: replicate_config(cfg, seeds[0], world_seed) for s, cfg in configs.items()}
    notes = tuple(dict.fromkeys(n for _, _, _, h, _ in results for n in h.get("graph_notes", ())))
    question = Question.of(spec.decision, metrics)
    noise_horizon = uncertainty = effects = None
    if noise:
        noise = sorted(noise, key=lambda r: (order[r[0]], r[1]))
        noise_horizon = _horizon(noise, seeds, world_seed, [dict(centre or {}) for _ in seeds])
        uncertainty = uncertainty_table(horizon, noise_horizon, baseline, metrics)
        effects = assumption_effects(horizon, question, baseline, {k: f"{COLUMN}{k}" for k in spec.assumptions},
                                     {k: a.choice for k, a in spec.assumptions.items() if a.kind == "choice"})
    decision = decide(horizon, question, baseline, noise_horizon) if spec.decision is not None else None
    return Comparison(name, spec, resolved, seeds, daily, horizon, table, diffs, retention, wall_seconds, graph_notes=notes,
                      world_seed=world_seed, noise=noise_horizon, uncertainty=uncertainty, assumption_effects=effects, decision=decision)


def compare(scenarios: Sequence[StrategyInput] | Mapping[str, Any], replicates: int = 30, overrides: Sequence[str] = (),
            baseline: str | None = None, out: str | os.PathLike | None = None, *, seed: int = 0,
            metrics: Sequence[str] | None = None, workers: int | None = None, plots: bool = True,
            progress: Callable[[int, int], None] | None = None, assumptions: Mapping[str, Any] | None = None,
            world: str = "varies", decision: Mapping[str, Any] | str | None = None) -> Comparison:
    """Compare strategies over ``replicates`` paired replicates (common random numbers).

    ``scenarios`` lists the strategies, each a scenario name (``"referral_double"``) or a
    ``(label, scenario, overrides)`` triple (a scenario with overrides of its own, named ``label``);
    or it maps strategy names to a scenario name, a :class:`StrategySpec` or
    ``{"scenario": ..., "overrides": [...]}``. ``overrides`` apply to every strategy, before its own.
    ``baseline`` (default: the first strategy) is what the others are compared with. With ``out``
    the comparison folder is written there (``result.path``). ``progress(done, total)`` counts
    finished runs (see :func:`run_comparison`).

    ``assumptions`` maps config keys to distributions (``{"mechanisms.paid_acquisition.cac_rmb":
    {"uniform": [15, 40]}}``) drawn once per replicate; ``world="fixed"`` builds every replicate's
    world from the base seed; ``decision`` is ``{"maximise": "users_end", "subject_to": ["profit >=
    baseline"]}`` (or the same as text, ``"maximise users_end; profit >= baseline"``). See
    docs/decisions.md.
    """
    strategies = dict(scenarios) if isinstance(scenarios, Mapping) else _strategy_map(scenarios)
    data: dict[str, Any] = {"strategies": strategies, "replicates": replicates, "overrides": list(overrides),
                            "baseline": baseline, "seed": seed, "world": world, "assumptions": dict(assumptions or {})}
    if metrics is not None:
        data["metrics"] = list(metrics)
    if decision is not None:
        data["decision"] = decision_from_text(decision) if isinstance(decision, str) else dict(decision)
    spec = experiment_spec(data)
    result = run_comparison(spec, "-vs-".join(spec.strategies), workers=workers, progress=progress)
    if out is not None:
        result.save(out, plots=plots)
    return result


def _strategy_map(scenarios: str | Sequence[StrategyInput]) -> dict[str, Any]:
    """Strategy name -> scenario (or spec) for a list; a scenario listed twice gets ``name-2`` (a
    self-comparison); a ``(label, scenario, overrides)`` triple is named by its label."""
    if isinstance(scenarios, str):
        scenarios = [s for s in scenarios.split(",") if s]
    out: dict[str, Any] = {}
    for k, item in enumerate(scenarios):
        if isinstance(item, str):
            name, spec = item, item
        elif isinstance(item, (tuple, list)) and len(item) == 3 and not isinstance(item[2], str):
            name, spec = str(item[0]), {"scenario": item[1], "overrides": list(item[2])}
            require(name not in out, f"scenarios[{k}]", name, "allowed is a label no other strategy has")
        else:
            raise ConfigError(f"scenarios[{k}] = {item!r}: allowed is a scenario name or a (label, scenario, overrides) triple")
        base, n = name, 1
        while name in out:
            n += 1
            name = f"{base}-{n}"
        out[name] = spec
    return out


# ============================================================================ sweeps
SWEEP_CONFIG = "sweep"  # scenarios/sweep.yaml: the primary config of a multirun
RUNS = "runs"  # run folders of a sweep live in <sweep>/runs/


def _parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def _parse(texts: Sequence[str]) -> list:
    parser = _parser()
    out = []
    for text in texts:
        try:
            out.append(parser.parse_override(text))
        except Exception as exc:  # Hydra's grammar errors are multi-line; report one line
            raise ConfigError(f"override {text!r}: {str(exc).strip().splitlines()[0]}") from None
    return out


def _values(ov) -> list[str]:
    """The values an override takes, as override strings (one for a plain override)."""
    if ov.is_sweep_override():
        try:
            return list(ov.sweep_string_iterator())
        except Exception:
            raise ConfigError(f"{ov.input_line}: allowed sweeps are lists (a,b,c) and ranges (range(0,10)); "
                              "intervals need an optimising sweeper") from None
    return [ov.get_value_element_as_str()]


#: The most jobs one sweep may have (each is a run folder; a larger plan is refused before any work).
MAX_SWEEP_JOBS = 100_000


def _is_range(ov) -> bool:
    from hydra.core.override_parser.types import RangeSweep

    return ov.is_sweep_override() and isinstance(ov.value(), RangeSweep)


def _count(ov) -> int:
    """How many values an override takes, without listing a range's."""
    if _is_range(ov) and ov.value().start is not None and ov.value().stop is not None:
        value = ov.value()
        step = value.step or 1
        return max(0, math.ceil((value.stop - value.start) / step))
    return len(_values(ov))


def _is_group(key: str) -> bool:
    from sim.config import _group_options

    return key == "scenario" or "/" in key or key in _group_options()


def check_sweep(task_overrides: Sequence[str]) -> list:
    """Validate every value of every swept key before any job starts (one-line errors).

    One composition with the first value of each key; every other value of a plain key is checked
    by the schema directly, and every other scenario or group option by a composition of its own.
    """
    from omegaconf import OmegaConf

    from sim.config import compose_dict, validate

    parsed = _parse(task_overrides)
    counts = [_count(ov) for ov in parsed]
    jobs = math.prod(counts)
    if jobs > MAX_SWEEP_JOBS:
        biggest = max(range(len(parsed)), key=counts.__getitem__)
        raise ConfigError(f"{parsed[biggest].input_line}: the sweep has {jobs:,} jobs; allowed is at most {MAX_SWEEP_JOBS:,} "
                          "per sweep (split it into several sweeps into the same hydra.sweep.dir)")
    values = [_values(ov) for ov in parsed]
    for k, ov in enumerate(parsed):  # a range of numbers is an interval: checking its ends checks it all
        if counts[k] > 2 and _is_range(ov) and not _is_group(ov.key_or_group):
            values[k] = [min(values[k], key=float), max(values[k], key=float)]
    base = [f"{ov.get_key_element()}={v[0]}" for ov, v in zip(parsed, values)]
    data = compose_dict(None, base)
    validate(data)
    for k, (ov, vals) in enumerate(zip(parsed, values)):
        for v in vals[1:]:
            text = f"{ov.get_key_element()}={v}"
            if _is_group(ov.key_or_group):
                compose(None, [*base[:k], text, *base[k + 1:]])
            else:
                cfg = OmegaConf.create(data)
                OmegaConf.update(cfg, ov.key_or_group, _parse([text])[0].value(), merge=False)
                validate(OmegaConf.to_container(cfg))
    return parsed


def experiment_sweep_overrides(spec: ExperimentSpec) -> list[str]:
    """The multirun overrides of an experiment's sweep."""
    if spec.sweep is None:
        raise ConfigError("experiment has no sweep section (run its comparison with `sim compare experiment=NAME`)")
    out = list(spec.overrides)
    if "scenario" not in spec.sweep.params:
        out.append(f"scenario={spec.sweep.scenario}")
    for key, values in spec.sweep.params.items():
        text = values if isinstance(values, str) else ",".join(_hydra_value(v) for v in values)
        out.append(f"{key}={text}")
    return out


def _hydra_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str) and not re.fullmatch(r"[\w./-]+", v):
        return "'" + v.replace("'", "\\'") + "'"
    return str(v)


def _merge(first: Sequence[str], then: Sequence[str]) -> list[str]:
    """``first`` with keys given again in ``then`` replaced (later wins), then the new ones."""
    key = lambda text: re.split(r"=", text, maxsplit=1)[0].lstrip("+~")  # noqa: E731
    later = {key(t) for t in then}
    return [t for t in first if key(t) not in later] + list(then)


#: Hydra's own settings a sweep takes (from the command line only; experiment files take none).
HYDRA_SWEEP_SETTINGS = ("hydra/launcher", "hydra.launcher.", "hydra.sweep.dir")


def sweep(overrides: Sequence[str], out: str | os.PathLike = "results/sweeps", metrics: Sequence[str] = DEFAULT_SWEEP_METRICS,
          run_plots: bool = False) -> Path:
    """Run a Hydra multirun over ``overrides`` (``key=a,b`` ``seed=range(0,10)`` ``hydra/launcher=ray`` ...)
    and collect it; returns the sweep folder. ``hydra.sweep.dir=DIR`` names the folder exactly (rerun
    into the same folder to resume); otherwise a new time-stamped folder is made under ``out``."""
    hydra_ovs = [o for o in overrides if re.match(r"^[+~]*hydra[./]", o)]
    task = [o for o in overrides if o not in hydra_ovs]
    _check_launch(task, hydra_ovs)
    parsed = check_sweep(task)
    fixed = [ov.get_key_element() for ov in parsed if not ov.is_sweep_override()]
    given = [o for o in hydra_ovs if o.split("=", 1)[0].lstrip("+~") == "hydra.sweep.dir"]
    if given:
        folder = Path(given[-1].split("=", 1)[1].strip("'\"")).expanduser().resolve()
        hydra_ovs = [o for o in hydra_ovs if o not in given]
    else:
        folder = (Path(out) / datetime.now().strftime("%Y%m%d-%H%M%S_sweep")).resolve()
    from sim.folders import prepare_parent

    check_multirun_folder(folder, None)
    prepare_parent(folder.parent)
    quote = _quote
    own = [f"hydra.sweep.dir={quote(str(folder))}",
           f"hydra.job.config.override_dirname.exclude_keys=[{','.join(quote(k) for k in fixed)}]",
           f"hydra.callbacks.collect.metrics=[{','.join(metrics)}]",
           f"hydra.callbacks.collect.run_plots={'true' if run_plots else 'false'}"]
    started = time.time()
    try:
        _launch(sweep_job, task, own, hydra_ovs, folder)
    except BaseException as exc:  # Ctrl+C or SIGTERM (or another error it caused inside Hydra): say what was kept and how to go on
        exc.sweep = (folder, math.prod(_count(ov) for ov in parsed))
        raise
    report = folder / "report.html"
    if not report.exists() or report.stat().st_mtime < started - 1:
        collect_sweep(folder, metrics)  # Hydra turns a callback's error into a warning: collect again to report it
    return folder


def sweep_interrupted(exc: BaseException) -> str:
    """What an interrupted sweep kept, and how to resume it (after its unfinished temporaries are removed)."""
    from sim.folders import remove_stale_temporaries

    folder, total = getattr(exc, "sweep", (None, 0))
    if folder is None:
        return "nothing was written"
    runs = folder / RUNS
    if runs.is_dir():
        remove_stale_temporaries(runs)
    done = sum(1 for p in runs.iterdir() if not p.name.startswith(".") and is_complete(p)) if runs.is_dir() else 0
    return (f"the sweep stopped with {done} of {total} runs complete, kept in {runs}; "
            f"rerun the same command with hydra.sweep.dir={folder} to resume it")


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _check_launch(task: Sequence[str], user_hydra: Sequence[str]) -> None:
    """What a multirun hands Hydra names no code and writes nothing outside the sweep: the task
    overrides reach none of Hydra's settings, the user's Hydra settings only the launcher and the
    sweep folder, and no scenario file Hydra may read places anything into its settings."""
    from sim.config import check_no_code, check_scenario_files, selected_config_names

    check_no_code(task)
    check_no_code(user_hydra, HYDRA_SWEEP_SETTINGS)
    check_scenario_files(selected_config_names(task))


def _launch(task_function: Callable, task: Sequence[str], own: Sequence[str], user_hydra: Sequence[str], folder: Path) -> None:
    """Run Hydra's multirun (primary config ``scenarios/sweep.yaml``) with ``task_function`` as the job.

    ``task``: the jobs' overrides; ``own``: the Hydra settings this module composes (sweep folder,
    result collector); ``user_hydra``: the Hydra settings the user gave (launcher, sweep folder),
    checked here, the one door every command that launches through Hydra goes through."""
    from sim.config import _register_schema, scenario_dirs

    _check_launch(task, user_hydra)
    argv = [*task, *own, *user_hydra]
    extra = scenario_dirs()[1:]
    if extra:
        argv = [*argv, "hydra.searchpath=[" + ",".join(f"file://{r}" for r in extra) + "]"]
    _register_schema()
    import hydra

    main = hydra.main(config_path=str(scenario_dirs()[0]), config_name=SWEEP_CONFIG, version_base="1.3")(task_function)
    saved, full_error = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    sys.argv = ["sim", "--multirun", *argv]
    # Hydra raises what a job or its own code raised, instead of printing it with a traceback and
    # exiting: a failed job is reported here in one line, and an interruption that surfaced as
    # another error inside Hydra's code still as the interruption it was (sim.cli).
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        with _without_hydras_job_line():
            main()
    except JobFailed as exc:
        raise exc.kind(f"the run {exc.name} failed: {exc.message}; the complete runs are kept in {folder / RUNS}; "
                       f"rerun the same command with hydra.sweep.dir={folder} to resume it") from None
    except SystemExit as exc:  # Hydra's own command-line errors
        if exc.code:
            raise ConfigError(f"the sweep did not finish (Hydra's message is above); rerun with hydra.sweep.dir={folder} to resume") from None
    finally:
        sys.argv = saved
        if full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = full_error


class JobFailed(Exception):
    """A job of a multirun stopped by one of the project's errors (a run refused or broken, a folder
    not written), its line already printed (:func:`_job`): raised through Hydra, on any launcher
    (it pickles), to :func:`_launch`, which reports it as that error (``kind``) in one line."""

    def __init__(self, name: str, kind: type[Exception], message: str):
        super().__init__(name, kind, message)
        self.name, self.kind, self.message = name, kind, message


def _job(prefix: str, name: str, work: Callable[[], dict]) -> dict:
    """``work()``, one job of a multirun named ``name``; where it fails, a line ``[prefix] name: failed:
    ...`` as it happens. The project's errors go on as :class:`JobFailed` (one line, no traceback);
    anything else, a fault in the code, goes on as itself, with its traceback."""
    try:
        return work()
    except (ConfigError, SimulationError, OSError) as exc:
        if isinstance(exc, OSError):  # (as sim.cli reports one: what failed, on which file)
            kind, message = ConfigError, f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
        else:
            kind, message = type(exc), str(exc)
        print(f"[{prefix}] {name}: failed: {message}", file=sys.stderr, flush=True)
        raise JobFailed(name, kind, message) from None
    except Exception as exc:
        print(f"[{prefix}] {name}: failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        raise


#: What Hydra writes before it raises a failed job's error: the job has said so itself (:func:`_job`).
HYDRAS_JOB_LINE = "Error executing job with overrides: "


@contextlib.contextmanager
def _without_hydras_job_line():
    """Standard error without the line Hydra writes about a failed job (:data:`HYDRAS_JOB_LINE`)."""
    stream = sys.stderr

    class Filtered:
        def write(self, text: str) -> int:
            return len(text) if text.startswith(HYDRAS_JOB_LINE) else stream.write(text)

        def __getattr__(self, name: str):
            return getattr(stream, name)

    sys.stderr = Filtered()
    try:
        yield
    finally:
        if isinstance(sys.stderr, Filtered):
            sys.stderr = stream


@contextlib.contextmanager
def _hydra_state_kept():
    """Keep the running Hydra app's global state while :func:`sim.config.compose` uses Hydra itself."""
    from hydra.core.singleton import Singleton

    state = Singleton.get_state()
    try:
        yield
    finally:
        Singleton.set_state(state)


def run_name(override_dirname: str) -> str:
    """A job's run-folder name: its swept values (``key=value,key=value``), safe as a file name."""
    if not override_dirname:
        return "run"
    safe = re.sub(r"[^\w.,=+@-]", "_", override_dirname)
    if safe != override_dirname or len(safe) > 150:
        digest = hashlib.sha256(override_dirname.encode()).hexdigest()[:8]
        safe = f"{safe[:140]}~{digest}"
    return safe


def finished_run(runs: Path, name: str) -> Path | None:
    """The complete run folder of the job named ``name`` in ``runs``: ``runs/name``, or, where
    something else (a symlink, a file) holds that name, a ``name-K`` whose manifest names the job."""
    from sim.folders import read_manifest

    if is_complete(runs / name):
        return runs / name
    if not os.path.lexists(runs / name) or ((runs / name).is_dir() and not (runs / name).is_symlink()):
        return None
    for p in sorted(runs.glob(f"{glob.escape(name)}-*")):
        if p.name[len(name) + 1:].isdigit() and (read_manifest(p) or {}).get("run") == name and is_complete(p):
            return p
    return None


def check_multirun_folder(folder: Path, plan_file: str | None) -> None:
    """Refuse a ``hydra.sweep.dir`` that holds other results (a comparison, a run, another kind of
    multirun): a multirun writes only into a new or empty folder or one of its own kind, which it
    resumes. ``plan_file``: the file marking a multirun over points (None for a sweep)."""
    if not os.path.lexists(folder):
        return
    where = f"hydra.sweep.dir = {str(folder)!r}"
    if not folder.is_dir():
        raise ConfigError(f"{where}: not a folder; allowed is a new folder or an earlier sweep's folder")
    names = {p.name for p in folder.iterdir() if not p.name.startswith(".")}
    if not names:
        return
    ours = plan_file in names if plan_file else ("multirun.yaml" in names and POINTS_FILE not in names)
    if not ours:
        kind = "multirun over points" if POINTS_FILE in names else "sweep" if "multirun.yaml" in names else "results of another kind"
        raise ConfigError(f"{where}: the folder holds {'a ' if kind != 'results of another kind' else ''}{kind} ({', '.join(sorted(names)[:4])}"
                          f"{', ...' if len(names) > 4 else ''}); allowed is a new or empty folder or an earlier "
                          f"{'multirun over the same points' if plan_file else 'sweep'}'s folder")


def _json_value(v: Any) -> Any:
    return v if isinstance(v, (int, float, str, bool)) or v is None else json.dumps(v)


def _one_thread_per_job() -> None:
    """A multirun's jobs run side by side (joblib's or Ray's workers), so each keeps to one thread
    (:mod:`sim.halves`); a SLURM job has its own allocation, and uses two cores where it was given them."""
    if "SLURM_JOB_ID" not in os.environ:
        from sim import halves

        halves.single()


def sweep_job(_cfg) -> dict:
    """One job of a multirun (any launcher): compose its configuration, simulate, write its run folder.

    Hydra composed ``_cfg`` from the primary config, where ``scenario`` is a plain key; the job's real
    configuration is recomposed from the job's overrides the way ``sim run`` composes it.
    """
    from hydra.core.hydra_config import HydraConfig

    from sim.runs import simulate, write_run_folder

    _one_thread_per_job()
    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    fixed = set(hc.job.config.override_dirname.exclude_keys)
    name = run_name(hc.job.override_dirname)
    runs = Path(hc.runtime.output_dir)
    run_plots = bool(hc.callbacks.collect.get("run_plots", False)) if "collect" in hc.callbacks else False
    if finished_run(runs, name) is not None:
        print(f"[sweep] {name}: already complete, skipped", file=sys.stderr, flush=True)
        return {"run": name, "skipped": True}
    swept = {ov.key_or_group: _json_value(ov.value()) for ov in _parse(overrides) if ov.get_key_element() not in fixed}

    def work() -> dict:
        with _hydra_state_kept():
            cfg = compose(None, overrides)
        result = simulate(cfg)
        result.summary.update({"sweep": swept, "overrides": overrides})
        path = write_run_folder(result, runs, plots=run_plots, name=name, replace=True)
        s = result.summary
        print(f"[sweep] {path.name}: profit {s['profit']:,.0f} RMB, {s['users_total']:,} users in {s['wall_seconds']:.1f} s",
              file=sys.stderr, flush=True)
        return {"run": path.name, "skipped": False}

    return _job("sweep", name, work)


try:  # a Hydra callback: collect the sweep in the launching process once every job has returned
    from hydra.experimental.callback import Callback as _Callback
except ImportError:  # pragma: no cover - hydra-core is a dependency
    _Callback = object


class SweepCollector(_Callback):
    """``hydra.callbacks.collect``: after a multirun, gather its run folders into tidy tables and plots."""

    def __init__(self, metrics: Sequence[str] = DEFAULT_SWEEP_METRICS, run_plots: bool = False):
        self.metrics = [str(m) for m in metrics]
        self.run_plots = run_plots

    def on_multirun_end(self, config, **kwargs) -> None:
        collect_sweep(Path(str(config.hydra.sweep.dir)), self.metrics)


@dataclass
class Sweep:
    """A collected sweep: its frames, as written to its folder."""

    path: Path
    params: list[str]  # swept keys, in the order given
    daily: pd.DataFrame  # swept parameters, run, day, daily columns
    horizon: pd.DataFrame  # swept parameters, run, horizon metrics
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_SWEEP_METRICS))

    @property
    def varied(self) -> list[str]:
        """Swept parameters other than the seed (what the plots are drawn against)."""
        return [p for p in self.params if p != "seed" and self.horizon[p].nunique() > 1]

    def table(self) -> pd.DataFrame:
        return grouped_table(self.horizon, self.varied, self.metrics)


def _sort_key(series: pd.Series):
    return series if pd.api.types.is_numeric_dtype(series) else series.astype(str)


def load_sweep(folder: str | os.PathLike, metrics: Sequence[str] = DEFAULT_SWEEP_METRICS) -> Sweep:
    """Read every complete run folder of a sweep (in ``<folder>/runs``) into a :class:`Sweep`."""
    folder = Path(folder)
    runs_dir = folder / RUNS
    runs = sorted(p for p in runs_dir.iterdir() if not p.name.startswith(".") and is_complete(p)) if runs_dir.is_dir() else []
    if not runs:
        raise ConfigError(f"{folder}: no complete run folder in {runs_dir}")
    params: list[str] = []
    daily, horizon = [], []
    seen: dict[str, str] = {}
    diffusion = True  # every run a classic diffusion model's: adoption metrics only
    for p in runs:
        summary = json.loads((p / "summary.json").read_text())
        diffusion = diffusion and (yaml.safe_load((p / "config.yaml").read_text()).get("diffusion") or {}).get("model", "none") != "none"
        swept = summary.get("sweep", {})
        job = json.dumps(swept, sort_keys=True)
        if job in seen:  # the same job written twice (by an older version, or two sweeps at once): counted once
            print(f"warning: {runs_dir}: {p.name} repeats the job of {seen[job]}; counted once", file=sys.stderr)
            continue
        seen[job] = p.name
        params += [k for k in swept if k not in params]
        d = pd.read_parquet(p / "daily.parquet")
        daily.append(d.assign(run=p.name, **swept))
        horizon.append({"run": p.name, **swept, **horizon_values(summary)})
    hz = pd.DataFrame(horizon)
    dy = pd.concat(daily, ignore_index=True)
    counters = [c for c in dy.columns if c not in params and dy[c].isna().any()]
    dy[counters] = dy[counters].fillna(0)
    hz = hz.sort_values([*params, "run"], key=_sort_key, kind="stable").reset_index(drop=True)
    order = {name: k for k, name in enumerate(hz["run"])}
    dy = dy.sort_values(["run", "day"], key=lambda s: s.map(order) if s.name == "run" else s, kind="stable")
    dy = dy[[*params, "run", *[c for c in dy.columns if c not in params and c != "run"]]].reset_index(drop=True)
    hz = hz[[*params, "run", *[c for c in hz.columns if c not in params and c != "run"]]]
    metrics = [m for m in metrics if m in METRICS]
    return Sweep(folder, params, dy, hz, adoption_metrics(metrics) if diffusion else metrics)


def collect_sweep(folder: str | os.PathLike, metrics: Sequence[str] = DEFAULT_SWEEP_METRICS, plots: bool = True) -> Sweep:
    """Write ``sweep.parquet``, ``horizon.parquet``, plots and ``report.html`` of a sweep folder.

    Each file is written under a temporary name and renamed into place, so a reader never sees half
    a table; collecting again (after a resumed sweep) replaces them."""
    from sim.folders import write_table

    s = load_sweep(folder, metrics)
    _atomic(s.path / "sweep.parquet", lambda p: write_table(s.daily, p))
    _atomic(s.path / "horizon.parquet", lambda p: write_table(s.horizon, p))
    if plots:
        from sim import plots as plotting
        from sim.report import sweep_report

        figures = plotting.sweep_plots(s, s.path / "plots")
        _atomic(s.path / "report.html", lambda p: p.write_text(sweep_report(s, figures)))
    return s


def _atomic(path: Path, write: Callable[[Path], Any]) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    write(tmp)
    os.replace(tmp, path)


# ============================================================================ points of a parameter space
POINTS_FILE = "points.json"  # the plan of a multirun over points: base scenario, overrides, points, seeds


def check_space(base: SimConfig, params: Mapping[str, ParameterRange], where: str) -> dict[str, type]:
    """Check a parameter space against a composed configuration before any run: every key exists and
    is a number, and both ends of its range are allowed values. Returns key -> ``int`` or ``float``."""
    from sim.config import validate

    plain = to_plain(base)
    kinds: dict[str, type] = {}
    for key, rng in params.items():
        node = config_node(plain, key, f"{where}.params")
        if key == "seed" or isinstance(node, bool) or not isinstance(node, (int, float)):
            raise ConfigError(f"{where}.params.{key}: allowed are numeric settings (this one is {node!r})"
                              if key != "seed" else f"{where}.params.seed: the seed is not a parameter (use replicates)")
        kind = int if isinstance(node, int) else float
        if kind is int:
            require(math.ceil(rng.low) < math.floor(rng.high) + 1, f"{where}.params.{key}", [rng.low, rng.high],
                    "a whole-number setting needs a range holding at least one whole number")
        for bound in (rng.low, rng.high):
            data = copy.deepcopy(plain)
            set_key(data, key, kind(round(bound)) if kind is int else float(bound))
            try:
                validate(data)
            except ConfigError as exc:
                raise ConfigError(f"{where}.params: {exc}") from None
        kinds[key] = kind
    return kinds


def point_overrides(values: Mapping[str, Any]) -> list[str]:
    """A point as ``key=value`` overrides (values round-trip exactly through Hydra's grammar)."""
    return [f"{k}={_hydra_value(v)}" for k, v in values.items()]


def point_config(base_plain: Mapping[str, Any], values: Mapping[str, Any], seed: int) -> SimConfig:
    from sim.config import validate

    data = copy.deepcopy(dict(base_plain))
    for key, value in values.items():
        set_key(data, key, value)
    data["seed"] = int(seed)
    return validate(data)


@dataclass
class PointRuns:
    """The runs of a list of points at a list of seeds."""

    horizon: pd.DataFrame  # point, replicate, seed, horizon metrics
    series: dict[tuple[int, int], dict[str, np.ndarray]] = field(default_factory=dict)  # (point, replicate) -> series


def run_point_chunk(base_plain: Mapping[str, Any], chunk: Sequence[tuple[int, Mapping[str, Any]]], replicate: int, seed: int,
                    series: Sequence[str] = ()) -> list[tuple[int, int, int, dict, dict | None]]:
    """Run some points at one seed; consecutive points on the same graph share it (graphs are never
    modified). ``series``: daily columns, ``retention`` (pooled day-N retention) or ``market_size``
    (see :func:`sim.metrics.run_series`), to return too."""
    from sim.engine import GrowthModel
    from sim.metrics import run_series, summary

    graph_key, graph = None, None
    out = []
    for k, values in chunk:
        cfg = point_config(base_plain, values, seed)
        key = (cfg.graph, cfg.population.size, seed)
        if key != graph_key:
            graph_key, graph = key, GrowthModel.make_graph(cfg)
        model = GrowthModel(cfg, graph=graph).run()
        daily = model.metrics.daily(model.economics)
        got = None
        if series:
            got = {name: run_series(model, daily, name) for name in series}
        out.append((k, replicate, seed, horizon_values(summary(model, daily)), got))
    return out


def run_points(base: SimConfig, points: Sequence[Mapping[str, Any]], seeds: Sequence[int], workers: int | None = None,
               series: Sequence[str] = (), progress: Callable[[int, int], None] | None = None) -> PointRuns:
    """Run every point (key -> value, on top of ``base``) at every seed through the process pool that
    comparisons use. Every point sees the same seeds (common random numbers); the results do not
    depend on the number of workers."""
    base_plain = to_plain(base)
    for values in points:  # every point is a valid configuration, or nothing runs
        point_config(base_plain, values, seeds[0])
    workers = workers or default_workers()
    size = max(1, min(8, math.ceil(len(points) * len(seeds) / (4 * workers))))
    indexed = list(enumerate(points))
    tasks = [(base_plain, indexed[i:i + size], r, seed, tuple(series))
             for r, seed in enumerate(seeds) for i in range(0, len(indexed), size)]
    total, done = len(points) * len(seeds), 0
    rows, got = [], {}
    if progress:
        progress(0, total)
    for chunk in _map(run_point_chunk, tasks, workers):
        for k, r, seed, values, s in chunk:
            rows.append({"point": k, "replicate": r, "seed": seed, **values})
            if s is not None:
                got[(k, r)] = s
        done += len(chunk)
        if progress:
            progress(done, total)
    horizon = pd.DataFrame(rows).sort_values(["point", "replicate"], kind="stable").reset_index(drop=True)
    return PointRuns(horizon, got)


def run_points_multirun(scenario: str, overrides: Sequence[str], points: Sequence[Mapping[str, Any]], seeds: Sequence[int],
                        hydra_overrides: Sequence[str] = (), out: str | os.PathLike = "results/sweeps", name: str = "points") -> tuple[PointRuns, Path]:
    """Run every point at every seed as the jobs of a Hydra multirun, through whichever launcher the
    ``hydra_overrides`` select (``hydra/launcher=ray``, ``submitit_slurm``, ...; joblib by default).

    The plan (base scenario, overrides, points, seeds) is written to ``points.json`` in the sweep
    folder and each job, ``+point=K`` at one seed, reads its point from there, so a job is a few bytes
    of overrides on any launcher. Jobs write run folders into ``<sweep>/runs/`` and a complete one is
    skipped: rerunning with the same ``hydra.sweep.dir`` resumes. Returns the runs and the folder."""
    _check_launch(overrides, hydra_overrides)  # before the folder and its plan are written
    given = [o for o in hydra_overrides if o.split("=", 1)[0].lstrip("+~") == "hydra.sweep.dir"]
    hydra_ovs = [o for o in hydra_overrides if o not in given]
    if given:
        folder = Path(given[-1].split("=", 1)[1].strip("'\"")).expanduser().resolve()
    else:
        folder = (Path(out) / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}_{name}").resolve()
    from sim.folders import prepare_parent

    check_multirun_folder(folder, POINTS_FILE)
    prepare_parent(folder)
    base = compose(scenario, overrides)
    base_plain = to_plain(base)
    for values in points:
        point_config(base_plain, values, seeds[0])
    plan = {"scenario": scenario, "overrides": list(overrides), "points": [dict(p) for p in points], "seeds": [int(s) for s in seeds]}
    path = folder / POINTS_FILE
    if path.exists():
        if json.loads(path.read_text()) != json.loads(json.dumps(plan)):
            raise ConfigError(f"hydra.sweep.dir = {str(folder)!r}: the folder holds the runs of another plan ({POINTS_FILE} differs); choose another folder")
    else:
        _atomic(path, lambda p: p.write_text(json.dumps(plan, indent=1) + "\n"))
    task = [f"scenario={scenario}", *overrides]
    fixed = [ov.key_or_group for ov in _parse(task)]
    if len(seeds) == 1:
        task.append(f"seed={int(seeds[0])}")
        fixed.append("seed")
    else:
        task.append(f"seed={','.join(str(int(s)) for s in seeds)}")
    own = [f"hydra.sweep.dir={_quote(str(folder))}",
           f"hydra.job.config.override_dirname.exclude_keys=[{','.join(_quote(k) for k in fixed)}]",
           "~hydra.callbacks.collect"]
    _launch(point_job, [*task, f"+point=range(0,{len(points)})"], own, hydra_ovs, folder)
    return collect_points(folder), folder


def point_job(_cfg) -> dict:
    """One job of a multirun over points (any launcher): point K of ``points.json`` at one seed."""
    from hydra.core.hydra_config import HydraConfig

    from sim.runs import simulate, write_run_folder

    _one_thread_per_job()
    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    name = run_name(hc.job.override_dirname)
    runs = Path(hc.runtime.output_dir)
    if finished_run(runs, name) is not None:
        print(f"[points] {name}: already complete, skipped", file=sys.stderr, flush=True)
        return {"run": name, "skipped": True}
    plan = json.loads((Path(hc.sweep.dir) / POINTS_FILE).read_text())
    parsed = _parse(overrides)
    k = next(int(ov.value()) for ov in parsed if ov.key_or_group == "point")
    rest = [text for text, ov in zip(overrides, parsed) if ov.key_or_group != "point"]
    values = plan["points"][k]

    def work() -> dict:
        with _hydra_state_kept():
            cfg = compose(None, [*rest, *point_overrides(values)])
        result = simulate(cfg)
        result.summary.update({"point": k, "point_values": values, "overrides": rest})
        path = write_run_folder(result, runs, plots=False, name=name, replace=True)
        print(f"[points] {path.name}: done in {result.summary['wall_seconds']:.1f} s", file=sys.stderr, flush=True)
        return {"run": path.name, "skipped": False}

    return _job("points", name, work)


def collect_points(folder: str | os.PathLike) -> PointRuns:
    """The horizon metrics of every complete run of a multirun over points (``<folder>/runs``)."""
    folder = Path(folder)
    plan = json.loads((folder / POINTS_FILE).read_text())
    replicate = {int(s): r for r, s in enumerate(plan["seeds"])}
    rows, seen = [], set()
    runs_dir = folder / RUNS
    for p in sorted(runs_dir.iterdir()) if runs_dir.is_dir() else []:
        if p.name.startswith(".") or not is_complete(p):
            continue
        summary = json.loads((p / "summary.json").read_text())
        if "point" not in summary or int(summary["seed"]) not in replicate:
            continue
        job = (int(summary["point"]), int(summary["seed"]))
        if job in seen:
            continue
        seen.add(job)
        values = horizon_values({k: v for k, v in summary.items() if k not in ("point", "seed")})
        rows.append({"point": int(summary["point"]), "replicate": replicate[int(summary["seed"])], "seed": int(summary["seed"]), **values})
    expected = len(plan["points"]) * len(plan["seeds"])
    if len(rows) != expected:
        raise ConfigError(f"{folder}: {len(rows)} of {expected} runs are complete; rerun with hydra.sweep.dir={folder} to finish them")
    horizon = pd.DataFrame(rows).sort_values(["point", "replicate"], kind="stable").reset_index(drop=True)
    return PointRuns(horizon)


__all__ = ["Comparison", "ExperimentSpec", "StrategySpec", "Sweep", "SweepSpec", "analyse", "collect_sweep", "compare",
           "load_experiment", "load_sweep", "replicate_seeds", "run_comparison", "run_points", "run_points_multirun", "sweep", "sweep_job"]
