"""Global sensitivity analysis of horizon metrics with SALib: which settings move the answer?

- **Morris screening** (Morris 1991; Campolongo, Cariboni and Saltelli 2007): ``samples`` random
  one-at-a-time trajectories through a grid of ``levels`` values per parameter. Each step of a
  trajectory moves one parameter by ``delta = levels / (2 (levels - 1))`` of its range (2/3 with four
  levels; SALib's sampler), and its elementary effect is the metric's change divided by ``delta``: the
  change across the parameter's whole range, were the response linear. ``mu*`` (their mean absolute
  value) ranks importance, ``sigma`` (their spread) flags non-linearity or interaction. ``mu*``'s
  interval is a percentile bootstrap over trajectories (Efron and Tibshirani 1993), so it never reaches
  below zero (SALib's ``mu_star_conf`` is a normal half-width, which does). ``mu*`` is in the
  metric's unit per whole range, so it depends on the ranges chosen; ``mu_star_per_sd`` divides it by
  the metric's standard deviation over the design, which compares metrics. Cheap:
  ``samples x (parameters + 1)`` points.
- **Sobol indices** (Saltelli 2002; Saltelli et al. 2010): the share of the metric's variance due to a
  parameter alone (``S1``) and with all its interactions (``ST``), estimated on a Saltelli sample of
  ``samples x (parameters + 2)`` points, with SALib's bootstrap confidence intervals.

Seed noise: ``noise_seeds`` runs of the centre of the ranges at different seeds give the metric's
spread from luck alone, and from it the index a parameter with no effect would get from that noise
(:func:`noise_floor`); an index at or below it is not distinguishable from noise.

The parameter space is declared once, as data (an experiment file's ``sensitivity`` section: config
key -> ``[low, high]``); the points are chosen by SALib's samplers, run at the same replicate seeds
(common random numbers, so a parameter that does not enter the model gets an index of exactly zero)
through :func:`sim.experiment.run_points`, and analysed on the replicate means.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.config import SimConfig, compose, dump_yaml
from sim.experiment import check_space, run_points
from sim.plans import ExperimentSpec, ParameterRange, experiment_spec, experiment_yaml, load_experiment, replicate_seeds
from sim.schema import ConfigError, to_plain

#: The columns of the indices table of each method, and the one that ranks the parameters.
COLUMNS = {"morris": ("mu_star", "mu_star_low", "mu_star_high", "mu", "sigma", "mu_star_per_sd"),
           "sobol": ("S1", "S1_conf", "ST", "ST_conf")}
RANK_BY = {"morris": "mu_star", "sobol": "ST"}
#: the confidence level of every interval of an index
LEVEL = 0.95


def problem(params: Mapping[str, ParameterRange]) -> dict:
    """SALib's problem: the names and bounds (log10 of the bounds for a logarithmic range)."""
    bounds = [[np.log10(r.low), np.log10(r.high)] if r.log else [float(r.low), float(r.high)] for r in params.values()]
    return {"num_vars": len(params), "names": list(params), "bounds": bounds}


def to_values(x: np.ndarray, params: Mapping[str, ParameterRange], kinds: Mapping[str, type]) -> list[dict[str, Any]]:
    """Rows of a sample (in problem space) as points: key -> value in the key's own unit and type."""
    points = []
    for row in np.atleast_2d(x):
        point = {}
        for value, (key, rng) in zip(row, params.items()):
            v = 10.0 ** value if rng.log else float(value)
            v = min(max(v, rng.low), rng.high)  # 10 ** log10(high) can overshoot high by one ulp
            point[key] = int(round(v)) if kinds[key] is int else float(v)
        points.append(point)
    return points


def sample(method: str, prob: dict, samples: int, levels: int = 4, second_order: bool = False, seed: int = 0) -> np.ndarray:
    """The points to run (rows, in problem space), drawn by SALib's sampler for ``method``."""
    if method == "morris":
        from SALib.sample import morris

        return morris.sample(prob, N=samples, num_levels=levels, seed=seed)
    from SALib.sample import sobol

    return sobol.sample(prob, N=samples, calc_second_order=second_order, seed=seed)


def morris_step(levels: int) -> float:
    """The share of its range a parameter moves in one step of a Morris trajectory (SALib's ``delta``):
    ``levels / (2 (levels - 1))``, 2/3 with four levels."""
    return levels / (2.0 * (levels - 1))


def elementary_effects(prob: dict, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The elementary effects of a Morris sample, one row per parameter and one column per trajectory:
    each step's change in ``y`` divided by the share of its range the moved parameter moved (as
    SALib's ``morris.analyze`` computes them, which it does not return)."""
    k = prob["num_vars"]
    low, high = np.asarray(prob["bounds"], dtype=np.float64).T
    steps = np.diff(((np.atleast_2d(x) - low) / (high - low)).reshape(-1, k + 1, k), axis=1)  # trajectory, step, parameter
    dy = np.diff(np.asarray(y, dtype=np.float64).reshape(-1, k + 1), axis=1)  # trajectory, step
    moved = np.abs(steps).argmax(axis=2)  # the one parameter each step moves
    share = np.take_along_axis(steps, moved[..., None], axis=2)[..., 0]
    effects = np.empty((k, dy.shape[0]))
    effects[moved, np.arange(dy.shape[0])[:, None]] = dy / share
    return effects


def mu_star_interval(effects: np.ndarray, resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The percentile bootstrap interval (:data:`LEVEL`) of every parameter's mu*, resampling whole
    trajectories: the mean absolute effect of a resample is never negative, so neither is the interval."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, effects.shape[1], size=(resamples, effects.shape[1]))
    boot = np.abs(effects)[:, picks].mean(axis=2)  # parameter, resample
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.percentile(boot, [tail, 100 - tail], axis=1)
    return low, high


def analyse(method: str, prob: dict, x: np.ndarray, y: np.ndarray, levels: int = 4, second_order: bool = False,
            resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Indices of every parameter for one output ``y`` (one value per row of ``x``): a frame with a row
    per parameter and the columns of :data:`COLUMNS`. A constant output has no variance to share out:
    its Sobol indices are nan, its Morris effects zero."""
    y = np.asarray(y, dtype=np.float64)
    if method == "morris":
        from SALib.analyze import morris

        res = dict(morris.analyze(prob, x, y, num_resamples=resamples, num_levels=levels, seed=seed))
        res["mu_star_low"], res["mu_star_high"] = mu_star_interval(elementary_effects(prob, x, y), resamples, seed)
        spread = np.std(y, ddof=1) if y.size > 1 else 0.0
        res["mu_star_per_sd"] = np.asarray(res["mu_star"]) / spread if spread > 0 else np.full(prob["num_vars"], np.nan)
    elif np.ptp(y) == 0:
        res = {c: np.full(prob["num_vars"], np.nan) for c in COLUMNS["sobol"]}
    else:
        from SALib.analyze import sobol

        res = sobol.analyze(prob, y, calc_second_order=second_order, num_resamples=resamples, seed=seed)
    frame = pd.DataFrame({"parameter": prob["names"], **{c: np.asarray(res[c], dtype=np.float64) for c in COLUMNS[method]}})
    return frame


def noise_floor(method: str, noise_sd: float, replicates: int, levels: int, y: np.ndarray) -> float:
    """The index a parameter with no effect gets, on average, from seed noise alone, given the
    metric's standard deviation between seeds at one point (``noise_sd``) and the seeds whose mean each
    point's value is (``replicates``).

    Morris: an elementary effect of pure noise is the difference of two independent point values (each
    with variance noise_sd^2 / replicates) divided by the step ``delta``; its mean absolute value is
    ``2 noise_sd / (delta sqrt(pi replicates))`` (the mean of |N(0, s^2)| is s sqrt(2 / pi)). Sobol: noise
    adds its variance share ``noise_sd^2 / (replicates var(y))`` to every total index (Jansen's estimator
    averages (f(A) - f(A_B))^2 / 2). Common random numbers make nearby points' noise alike, so the
    floor is an upper bound of the noise in an index (a parameter that never enters the model gets 0)."""
    if not np.isfinite(noise_sd):
        return math.nan
    if method == "morris":
        return 2.0 * noise_sd / (morris_step(levels) * math.sqrt(math.pi * replicates))
    variance = float(np.var(y, ddof=1)) if np.size(y) > 1 else 0.0
    return noise_sd ** 2 / (replicates * variance) if variance > 0 else math.nan


def rank(frame: pd.DataFrame, by: str) -> pd.Series:
    """1 = most influential; nan indices rank last."""
    return frame[by].rank(ascending=False, method="min", na_option="bottom").astype(int)


@dataclass
class Sensitivity:
    """The runs of a sensitivity analysis and their indices (the frames of its folder)."""

    name: str
    spec: ExperimentSpec
    config: SimConfig  # the base configuration (seed of replicate 0)
    x: np.ndarray  # the sample, in problem space (log10 for logarithmic ranges)
    points: pd.DataFrame  # point, then one column per parameter (the values run)
    horizon: pd.DataFrame  # point, replicate, seed, horizon metrics
    indices: pd.DataFrame  # metric, parameter, rank, the method's columns, noise_floor
    skipped: dict[str, str] = field(default_factory=dict)  # metric -> why it has no indices
    wall_seconds: float = 0.0
    path: Path | None = None
    noise: pd.DataFrame = field(default_factory=pd.DataFrame)  # metric, seeds, mean, sd, floor: seed noise at the centre
    noise_runs: pd.DataFrame = field(default_factory=pd.DataFrame)  # replicate, seed, horizon metrics of the centre's runs

    @property
    def method(self) -> str:
        return self.spec.sensitivity.method

    @property
    def rank_by(self) -> str:
        """The index parameters are ranked by (``mu_star`` or ``ST``)."""
        return RANK_BY[self.method]

    @staticmethod
    def interval(row: Mapping[str, Any], column: str) -> tuple[float, float]:
        """The 95 % interval of an index in a row of :attr:`indices`: its bounds (mu*'s percentile
        bootstrap) or the index plus and minus its half-width (SALib's ``_conf`` columns of the Sobol indices)."""
        if f"{column}_low" in row:
            return row[f"{column}_low"], row[f"{column}_high"]
        return row[column] - row[f"{column}_conf"], row[column] + row[f"{column}_conf"]

    @property
    def index_columns(self) -> tuple[str, ...]:
        """The method's index columns of :attr:`indices`."""
        return COLUMNS[self.method]

    def ranking(self, metric: str) -> list[str]:
        """The parameters from most to least influential on ``metric``."""
        t = self.indices[self.indices["metric"] == metric].sort_values(["rank", "parameter"])
        return list(t["parameter"])

    def text(self) -> str:
        """The ranking of every metric, one block per metric, with the seed noise each index must exceed."""
        from sim.analysis.comparison import METRICS

        by = RANK_BY[self.method]
        lines = []
        for metric, t in self.indices.groupby("metric", sort=False):
            meta = METRICS[metric]
            what = f"mu*, {meta.unit or 'metric units'} across the whole range" if self.method == "morris" else "ST, share of variance"
            floor = float(t["noise_floor"].iloc[0])
            noise = f"; seed noise alone gives {_num(floor)}" if np.isfinite(floor) else ""
            lines.append(f"{meta.label} ({metric}; {what}{noise}):")
            for _, row in t.sort_values(["rank", "parameter"]).iterrows():
                if not np.isfinite(row[by]):
                    lines.append(f"  {row['rank']:>2}. {row['parameter']:<48} n/a")
                    continue
                low, high = self.interval(row, by)
                extra = f"  sigma {_num(row['sigma'])}" if self.method == "morris" else f"  S1 {row['S1']:.3f} ± {row['S1_conf']:.3f}"
                flag = "  (not distinguishable from noise)" if row[by] <= row["noise_floor"] else ""
                lines.append(f"  {row['rank']:>2}. {row['parameter']:<48} {_num(row[by])} [{_num(low)}, {_num(high)}]{extra}{flag}")
        for metric, why in self.skipped.items():
            lines.append(f"{metric}: no indices ({why})")
        return "\n".join(lines)

    def save(self, out: str | os.PathLike = "results/sensitivity", plots: bool = True) -> Path:
        """Write the sensitivity folder under ``out`` atomically (never over an existing one)."""
        from sim import plots as plotting
        from sim.report import sensitivity_report
        from sim.folders import AtomicFolder, slug

        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = AtomicFolder(Path(out), f"{stamp}_{slug(self.name)}_{self.method}")
        with folder as tmp:
            (tmp / "experiment.yaml").write_text(experiment_yaml(self.spec, self.name).replace("sim compare", "sim sensitivity"))
            (tmp / "config.yaml").write_text(dump_yaml(self.config))
            self.points.to_parquet(tmp / "points.parquet", index=False)
            self.horizon.to_parquet(tmp / "horizon.parquet", index=False)
            self.indices.to_parquet(tmp / "indices.parquet", index=False)
            self.indices.to_csv(tmp / "indices.csv", index=False)
            if len(self.noise_runs):
                self.noise_runs.to_parquet(tmp / "noise.parquet", index=False)
            (tmp / "indices.json").write_text(json.dumps(self.as_json(), indent=1, allow_nan=False) + "\n")
            (tmp / "ranking.txt").write_text(self.text() + "\n")
            figures = {}
            if plots and not self.indices.empty:
                (tmp / "plots").mkdir()
                figures[self.method] = plotting.sensitivity_plot(self.indices, self.method, tmp / "plots" / f"{self.method}.png",
                                                                 self.label())
                if self.method == "morris":
                    figures["morris_per_sd"] = plotting.sensitivity_per_sd(self.indices, tmp / "plots" / "morris_per_sd.png", self.label())
            (tmp / "report.html").write_text(sensitivity_report(self, figures))
        self.path = folder.path
        return self.path

    def label(self) -> str:
        s = self.spec.sensitivity
        runs = len(self.horizon)
        noise = f" + {len(self.noise_runs)} at the centre" if len(self.noise_runs) else ""
        return (f"{self.name}: {'Morris screening' if s.method == 'morris' else 'Sobol indices'} of {len(s.params)} parameters · "
                f"{len(self.points)} points x {s.replicates} seed{'s' if s.replicates > 1 else ''} = {runs} runs{noise}")

    def as_json(self) -> dict:
        def clean(v):
            return None if isinstance(v, float) and not np.isfinite(v) else v

        by_metric = {}
        for metric, t in self.indices.groupby("metric", sort=False):
            by_metric[metric] = [{k: clean(v) for k, v in row.items() if k != "metric"} for row in t.sort_values("rank").to_dict("records")]
        s = self.spec.sensitivity
        return {"experiment": self.name, "method": s.method, "scenario": s.scenario, "overrides": list(self.spec.overrides),
                "params": to_plain(s.params), "points": len(self.points), "replicates": s.replicates, "seed": self.spec.seed,
                "runs": len(self.horizon), "wall_seconds": round(self.wall_seconds, 2), "indices": by_metric, "skipped": self.skipped,
                "noise": {r["metric"]: {k: clean(v) for k, v in r.items() if k != "metric"} for r in self.noise.to_dict("records")}}


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def base_config(spec: ExperimentSpec, scenario: str) -> SimConfig:
    try:
        return compose(scenario, list(spec.overrides), seed=spec.seed)
    except ConfigError as exc:
        raise ConfigError(f"scenario {scenario}: {exc}") from None


def _run(spec: ExperimentSpec, name: str, base: SimConfig, points: list[dict], seeds: list[int], workers: int | None,
         progress: Callable[[int, int], None] | None, launcher: Sequence[str], part: str):
    """The runs of ``points`` at ``seeds``: the local process pool, or a Hydra multirun through
    ``launcher`` (its ``hydra.sweep.dir``, if given, gets ``-{part}`` for the runs at the centre)."""
    if launcher:
        from sim.experiment import run_points_multirun

        if part != "points":
            launcher = [f"{o}-{part}" if o.split("=", 1)[0].lstrip("+~") == "hydra.sweep.dir" else o for o in launcher]
        runs, _ = run_points_multirun(spec.sensitivity.scenario, list(spec.overrides), points, seeds, hydra_overrides=launcher,
                                      name=f"{name}_{part}")
        return runs
    return run_points(base, points, seeds, workers=workers, progress=progress)


def run_sensitivity(spec: ExperimentSpec, name: str, workers: int | None = None,
                    progress: Callable[[int, int], None] | None = None, launcher: Sequence[str] = ()) -> Sensitivity:
    """Sample the parameter space of ``spec.sensitivity``, run every point at the same seeds, run the
    centre of the ranges at ``noise_seeds`` seeds for the seed noise, analyse.

    The runs go through the process pool of comparisons, or, given Hydra ``launcher`` overrides
    (``["hydra/launcher=ray", ...]``), through a Hydra multirun and that launcher, as sweeps do."""
    s = spec.sensitivity
    if s is None:
        raise ConfigError(f"{name}: the experiment has no sensitivity section (params, method, metrics)")
    t0 = time.perf_counter()
    base = base_config(spec, s.scenario)
    kinds = check_space(base, s.params, "sensitivity")
    prob = problem(s.params)
    x = sample(s.method, prob, s.samples, s.levels, s.second_order, seed=spec.seed)
    points = to_values(x, s.params, kinds)
    seeds = replicate_seeds(spec.seed, s.replicates)
    centre = to_values(np.mean(prob["bounds"], axis=1), s.params, kinds)
    design_runs = len(points) * len(seeds)
    runs = _run(spec, name, base, points, seeds, workers, progress and (lambda d, t: progress(d, t + s.noise_seeds)), launcher, "points")
    noise_runs = pd.DataFrame()
    if s.noise_seeds:
        noise_runs = _run(spec, name, base, centre, replicate_seeds(spec.seed, s.noise_seeds), workers,
                          progress and (lambda d, t: progress(design_runs + d, design_runs + t)), launcher, "centre").horizon.drop(columns="point")
    means = runs.horizon.groupby("point", sort=True).mean(numeric_only=True)
    frames, skipped, noise = [], {}, []
    for metric in s.metrics:
        y = means[metric].to_numpy(np.float64)
        if not np.all(np.isfinite(y)):
            skipped[metric] = f"undefined in {int((~np.isfinite(y)).sum())} of {y.size} points (e.g. day-30 retention with a horizon of 30 days or less)"
            continue
        t = analyse(s.method, prob, x, y, s.levels, s.second_order, s.resamples, seed=spec.seed)
        t.insert(0, "metric", metric)
        t.insert(2, "rank", rank(t, RANK_BY[s.method]))
        at_centre = noise_runs[metric].to_numpy(np.float64) if len(noise_runs) else np.zeros(0)
        sd = float(np.std(at_centre, ddof=1)) if at_centre.size > 1 else math.nan
        t["noise_floor"] = noise_floor(s.method, sd, s.replicates, s.levels, y)
        noise.append({"metric": metric, "seeds": int(at_centre.size), "mean": float(np.mean(at_centre)) if at_centre.size else math.nan,
                      "sd": sd, "floor": float(t["noise_floor"].iloc[0])})
        frames.append(t)
    columns = ["metric", "parameter", "rank", *COLUMNS[s.method], "noise_floor"]
    indices = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    table = pd.DataFrame(points)
    table.insert(0, "point", np.arange(len(points)))
    return Sensitivity(name, spec, base.with_seed(seeds[0]), x, table, runs.horizon, indices, skipped, time.perf_counter() - t0,
                       noise=pd.DataFrame(noise, columns=["metric", "seeds", "mean", "sd", "floor"]), noise_runs=noise_runs)


def resolve_experiment(experiment: str | os.PathLike | Mapping[str, Any] | ExperimentSpec, section: str | None = None,
                       changes: Mapping[str, Any] | None = None) -> tuple[str, ExperimentSpec]:
    """An experiment given by name (or path), as a plain mapping, or already validated; ``changes``
    replace settings of its ``section`` (validated again)."""
    if isinstance(experiment, ExperimentSpec):
        name, spec = "experiment", experiment
    elif isinstance(experiment, Mapping):
        name, spec = "experiment", experiment_spec(experiment)
    else:
        name, spec = load_experiment(str(experiment))
    if changes:
        if getattr(spec, section) is None:
            raise ConfigError(f"{name}: the experiment has no {section} section")
        data = to_plain(spec)
        data[section].update(changes)
        spec = experiment_spec(data, name)
    return name, spec


def sensitivity(experiment: str | os.PathLike | Mapping[str, Any] | ExperimentSpec, out: str | os.PathLike | None = "results/sensitivity",
                *, workers: int | None = None, plots: bool = True, progress: Callable[[int, int], None] | None = None,
                launcher: Sequence[str] = (), **changes: Any) -> Sensitivity:
    """Run the sensitivity analysis of an experiment (``experiments/NAME.yaml``, a path, or a mapping)
    and, with ``out``, write its folder (``result.path``). ``changes`` replace settings of its
    ``sensitivity`` section (``method="sobol"``, ``samples=64`` ...); ``launcher``: Hydra overrides
    that send the runs through a Hydra launcher (``["hydra/launcher=ray"]``) instead of the local pool."""
    name, spec = resolve_experiment(experiment, "sensitivity", changes)
    result = run_sensitivity(spec, name, workers=workers, progress=progress, launcher=launcher)
    if out is not None:
        result.save(out, plots=plots)
    return result


__all__ = ["Sensitivity", "analyse", "elementary_effects", "morris_step", "noise_floor", "problem", "run_sensitivity", "sample", "sensitivity"]
