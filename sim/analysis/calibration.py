"""Calibration: choose settings so that the model reproduces observed series (Optuna).

An experiment file's ``calibration`` section names the parameters to fit (config key -> bounds), the
target series (a cohort retention curve by age, or a daily column such as ``cumulative_users`` or
``dau`` by day; from a CSV or written in the file) and a scale-free loss. Each trial runs the model
at the same replicate seeds (common random numbers: trials differ only by their parameters) and
compares the replicate mean of each series with its target at the target's days. Optuna's TPE
sampler, seeded, proposes the trials, so a calibration is reproducible: same file, same seed, same
history. The best parameters are rerun at fresh seeds for the fit plot (target against the simulated
mean and its 95 % band) and a held-out loss, and written as a scenario file ready to run.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.sensitivity import base_config, resolve_experiment
from sim.config import SimConfig, compose, dump_yaml, input_files
from sim.experiment import _hydra_value, check_space, point_config, run_points
from sim.inputs import input_hashes, read_text
from sim.plans import CalibrationSpec, ExperimentSpec, ParameterRange, TargetSpec, experiment_yaml, replicate_seeds
from sim.schema import ConfigError, excerpt, to_plain

CALIBRATED_GROUP = "strategy"  # the written scenario file overrides the default scenario, like a strategy does


# ============================================================================ targets and losses
@dataclass(frozen=True)
class Target:
    """A target series: the values observed at some days (or, for retention, ages)."""

    metric: str
    at: np.ndarray  # days or ages (ints)
    value: np.ndarray
    weight: float = 1.0
    label: str = ""

    @property
    def axis(self) -> str:
        return "age" if self.metric == "retention" else "day"


def load_target(spec: TargetSpec, where: str) -> Target:
    """Read a target (CSV or inline values) into arrays; a bad file gives one line naming it."""
    axis = "age" if spec.metric == "retention" else "day"
    if spec.values is not None:
        pairs = sorted((int(k), float(v)) for k, v in spec.values.items())
        at, value = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs], dtype=np.float64)
        source = spec.label or "experiment file"
    else:
        import io

        text = read_text(spec.file, f"{where}.file = {excerpt(spec.file)}", limit=100_000_000)  # a regular UTF-8 file, never a FIFO
        try:
            frame = pd.read_csv(io.StringIO(text), comment="#")
        except Exception as exc:  # pandas' parse errors are long; one line is enough
            raise ConfigError(f"{where}.file = {spec.file!r}: not a readable CSV ({type(exc).__name__})") from None
        for column in (axis, "value"):
            if column not in frame.columns:
                raise ConfigError(f"{where}.file = {spec.file!r}: needs columns {axis} and value (has {', '.join(map(str, frame.columns))})")
        try:
            at = frame[axis].to_numpy(np.float64)
            value = frame["value"].to_numpy(np.float64)
        except ValueError:
            raise ConfigError(f"{where}.file = {spec.file!r}: {axis} and value must be numbers") from None
        if not np.all(np.isfinite(at)) or not np.all(at == np.round(at)):
            raise ConfigError(f"{where}.file = {spec.file!r}: {axis} must be whole numbers")
        at = at.astype(np.int64)
        source = spec.label or Path(spec.file).name
    if at.size == 0 or at.min() < 0 or np.unique(at).size != at.size:
        raise ConfigError(f"{where}: the {axis}s must be distinct whole numbers >= 0 (at least one)")
    if not np.all(np.isfinite(value)) or value.min() < 0:
        raise ConfigError(f"{where}: the values must be finite numbers >= 0")
    return Target(spec.metric, at, value, spec.weight, source)


def check_targets(targets: Sequence[Target], cfg: SimConfig, where: str) -> None:
    for k, t in enumerate(targets):
        if t.at.max() >= cfg.horizon:
            raise ConfigError(f"{where}.targets[{k}]: {t.axis} {int(t.at.max())} is beyond the horizon ({cfg.horizon} days: "
                              f"{t.axis}s 0..{cfg.horizon - 1}); raise horizon in the experiment's overrides")


def simulated(series: Mapping[str, np.ndarray], target: Target) -> np.ndarray:
    """The simulated values of ``target``'s series at its days (ages)."""
    return np.asarray(series[target.metric], dtype=np.float64)[target.at]


def series_loss(sim_values: np.ndarray, target: np.ndarray, kind: str) -> float:
    """``msle``: mean squared log error, ln((sim + e) / (target + e)) with e a millionth of the
    largest target (so a curve ten times too high costs the same at any scale); ``relative``: mean
    absolute error relative to the target."""
    sim_values, target = np.asarray(sim_values, np.float64), np.asarray(target, np.float64)
    if not np.all(np.isfinite(sim_values)):
        return math.inf
    eps = max(1e-6 * float(np.max(np.abs(target))), 1e-12)
    if kind == "msle":
        return float(np.mean((np.log(sim_values + eps) - np.log(target + eps)) ** 2))
    return float(np.mean(np.abs(sim_values - target) / np.maximum(np.abs(target), eps)))


def total_loss(series: Mapping[str, np.ndarray], targets: Sequence[Target], kind: str) -> float:
    """The weighted mean loss over the targets (series: the replicate mean of each series)."""
    weights = np.array([t.weight for t in targets])
    losses = np.array([series_loss(simulated(series, t), t.value, kind) for t in targets])
    return float((weights * losses).sum() / weights.sum())


def mean_series(runs, names: Sequence[str], point: int) -> dict[str, np.ndarray]:
    """Replicate means of the series of one point."""
    reps = sorted(r for (k, r) in runs.series if k == point)
    return {n: np.nanmean(np.vstack([runs.series[(point, r)][n] for r in reps]), axis=0) for n in names}


# ============================================================================ the search
def suggest(trial, key: str, rng: ParameterRange, kind: type):
    if kind is int:
        return trial.suggest_int(key, math.ceil(rng.low), math.floor(rng.high), log=rng.log)
    return trial.suggest_float(key, float(rng.low), float(rng.high), log=rng.log)


def start_point(base: SimConfig, params: Mapping[str, ParameterRange]) -> dict[str, Any] | None:
    """The base scenario's own values, if they lie within the bounds (the first trial)."""
    plain = to_plain(base)
    values = {}
    for key, rng in params.items():
        node: Any = plain
        for part in key.split("."):
            node = node[part]
        if not rng.low <= node <= rng.high:
            return None
        values[key] = node
    return values


@dataclass
class Calibration:
    """A finished calibration: its trials, the best parameters and how well they fit."""

    name: str
    spec: ExperimentSpec
    base: SimConfig
    targets: list[Target]
    trials: pd.DataFrame  # trial, one column per parameter, loss, best_loss
    best: dict[str, Any]  # key -> fitted value
    best_loss: float
    best_config: SimConfig
    fit: pd.DataFrame  # metric, label, day/age (at), target, mean, low, high (over the check seeds)
    check_loss: float  # the loss of the check runs' mean (fresh seeds)
    wall_seconds: float = 0.0
    path: Path | None = None

    @property
    def section(self) -> CalibrationSpec:
        return self.spec.calibration

    def overrides(self) -> list[str]:
        """``sim run`` arguments that run the fitted model: the base scenario, the experiment's overrides, the fit."""
        fitted = [f"{k}={_hydra_value(v)}" for k, v in self.best.items()]
        return [f"scenario={self.section.scenario}", *self.spec.overrides, *fitted]

    def text(self) -> str:
        c = self.section
        lines = [f"calibration {self.name}: {len(self.trials)} trials x {c.replicates} seed{'s' if c.replicates > 1 else ''}, "
                 f"{c.loss} loss {self.best_loss:.4g} (held out, {c.check_replicates} fresh seeds: {self.check_loss:.4g})"]
        for key, value in self.best.items():
            rng = c.params[key]
            lines.append(f"  {key:<48} {value:.6g}   (searched {rng.low:g} .. {rng.high:g})")
        return "\n".join(lines)

    def scenario_name(self) -> str:
        """The name of the fitted model's scenario file in the calibration folder."""
        from sim.folders import slug

        return f"{slug(self.name)}_calibrated"

    def scenario_yaml(self) -> str:
        """The fitted model as a scenario file: the default scenario with every setting that differs."""
        import yaml

        default = to_plain(compose("default", []))
        diff = _difference(to_plain(self.best_config), default)
        for key in ("seed", "scenario", "out"):
            diff.pop(key, None)
        head = (f"# @package _global_\n# Calibrated by `sim calibrate experiment={self.name}`: {self.section.scenario} with "
                f"{', '.join(f'{k}={_hydra_value(v)}' for k, v in self.best.items())}\n# ({self.section.loss} loss {self.best_loss:.4g}; "
                f"held out {self.check_loss:.4g}). Every setting that differs from the default scenario:\n"
                "defaults:\n  - override /named: default\n")
        return head + (yaml.safe_dump(diff, sort_keys=False, allow_unicode=True) if diff else "")

    def save(self, out: str | os.PathLike = "results/calibrations", plots: bool = True) -> Path:
        """Write the calibration folder under ``out`` atomically (never over an existing one)."""
        from sim import plots as plotting
        from sim.report import calibration_report
        from sim.folders import AtomicFolder, slug

        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = AtomicFolder(Path(out), f"{stamp}_{slug(self.name)}")
        scenario = self.scenario_name()
        with folder as tmp:
            (tmp / "experiment.yaml").write_text(experiment_yaml(self.spec, self.name).replace("sim compare", "sim calibrate"))
            (tmp / "config.yaml").write_text(dump_yaml(self.best_config))
            group = tmp / "scenarios" / CALIBRATED_GROUP
            group.mkdir(parents=True)
            (group / f"{scenario}.yaml").write_text(self.scenario_yaml())
            (tmp / "overrides.txt").write_text(" ".join(self.overrides()) + "\n")
            self.trials.to_parquet(tmp / "trials.parquet", index=False)
            self.trials.to_csv(tmp / "trials.csv", index=False)
            self.fit.to_parquet(tmp / "fit.parquet", index=False)
            self.fit.to_csv(tmp / "fit.csv", index=False)
            summary = {"experiment": self.name, "best": self.best, "loss": self.section.loss, "best_loss": self.best_loss,
                       "check_loss": self.check_loss, "trials": len(self.trials), "replicates": self.section.replicates,
                       "check_replicates": self.section.check_replicates, "seed": self.spec.seed, "scenario_file": f"scenarios/{CALIBRATED_GROUP}/{scenario}.yaml",
                       "run": {"config": "sim run --config config.yaml", "scenario": f"SIM_SCENARIO_PATH=<this folder>/scenarios sim run scenario={scenario}",
                               "overrides": "sim run " + " ".join(self.overrides())},
                       "wall_seconds": round(self.wall_seconds, 2),
                       "inputs": input_hashes([*input_files(self.best_config), *(t.file for t in self.section.targets if t.file)])}
            (tmp / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
            figures = {}
            if plots:
                (tmp / "plots").mkdir()
                figures["fit"] = plotting.calibration_fit(self.fit, tmp / "plots" / "fit.png", self.label())
                figures["loss"] = plotting.calibration_loss(self.trials, list(self.best), tmp / "plots" / "loss.png", self.label())
            (tmp / "report.html").write_text(calibration_report(self, figures))
        self.path = folder.path
        return self.path

    def label(self) -> str:
        fitted = ", ".join(f"{k.split('.')[-1]} = {v:.4g}" for k, v in self.best.items())
        return f"calibration {self.name} ({self.section.loss} loss {self.best_loss:.3g}, held out {self.check_loss:.3g})\n{fitted}"


def _difference(data: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in data.items():
        ref = reference.get(key) if isinstance(reference, Mapping) else None
        if isinstance(value, Mapping) and isinstance(ref, Mapping):
            sub = _difference(value, ref)
            if sub:
                out[key] = sub
        elif value != ref:
            out[key] = value
    return out


def run_calibration(spec: ExperimentSpec, name: str, workers: int | None = None,
                    progress: Callable[[int, int], None] | None = None) -> Calibration:
    """Search the parameters of ``spec.calibration`` with a seeded TPE sampler; rerun the best at fresh seeds."""
    import optuna

    c = spec.calibration
    if c is None:
        raise ConfigError(f"{name}: the experiment has no calibration section (params, targets)")
    t0 = time.perf_counter()
    base = base_config(spec, c.scenario)
    kinds = check_space(base, c.params, "calibration")
    targets = [load_target(t, f"calibration.targets[{k}]") for k, t in enumerate(c.targets)]
    check_targets(targets, base, "calibration")
    names = sorted({t.metric for t in targets})
    seeds = replicate_seeds(spec.seed, c.replicates + c.check_replicates)
    fit_seeds, check_seeds = seeds[:c.replicates], seeds[c.replicates:]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=spec.seed, n_startup_trials=c.startup_trials)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    first = start_point(base, c.params)
    if first is not None:
        study.enqueue_trial(first)
    rows, done = [], 0
    if progress:
        progress(0, c.trials)
    while done < c.trials:
        asked = [study.ask() for _ in range(min(c.batch, c.trials - done))]
        points = [{k: suggest(t, k, c.params[k], kinds[k]) for k in c.params} for t in asked]
        runs = run_points(base, points, fit_seeds, workers=workers, series=names)
        for k, (trial, values) in enumerate(zip(asked, points)):
            loss = total_loss(mean_series(runs, names, k), targets, c.loss)
            study.tell(trial, loss if math.isfinite(loss) else None, state=None if math.isfinite(loss) else optuna.trial.TrialState.FAIL)
            rows.append({"trial": trial.number, **values, "loss": loss})
        done += len(asked)
        if progress:
            progress(done, c.trials)
    trials = pd.DataFrame(rows)
    trials["best_loss"] = trials["loss"].cummin()
    best_row = trials.loc[trials["loss"].idxmin()]
    best = {k: (int(best_row[k]) if kinds[k] is int else float(best_row[k])) for k in c.params}

    check = run_points(base, [best], check_seeds, workers=workers, series=names)
    fit, check_mean = fit_frame(check, names, targets)
    best_config = point_config(to_plain(base), best, fit_seeds[0])
    return Calibration(name, spec, base, targets, trials, best=best, best_loss=float(best_row["loss"]), best_config=best_config,
                       fit=fit, check_loss=total_loss(check_mean, targets, c.loss), wall_seconds=time.perf_counter() - t0)


def fit_frame(check, names: Sequence[str], targets: Sequence[Target]) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Each target against the check runs: the mean and 95 % band of the series at every day (age)
    from the target's first to its last, and the target where it was observed."""
    from sim.analysis.stats import band

    reps = sorted(r for (_, r) in check.series)
    frames = []
    for t in targets:
        values = np.vstack([check.series[(0, r)][t.metric] for r in reps]).astype(np.float64)
        start, upto = int(t.at.min()), int(t.at.max()) + 1
        mean, low, high = band(values[:, start:upto])
        observed = np.full(upto - start, np.nan)
        observed[t.at - start] = t.value
        frames.append(pd.DataFrame({"metric": t.metric, "label": t.label, "at": np.arange(start, upto), "target": observed,
                                    "mean": mean, "low": low, "high": high}))
    return pd.concat(frames, ignore_index=True), mean_series(check, names, 0)


def calibrate(experiment: str | os.PathLike | Mapping[str, Any] | ExperimentSpec, out: str | os.PathLike | None = "results/calibrations",
              *, workers: int | None = None, plots: bool = True, progress: Callable[[int, int], None] | None = None,
              **changes: Any) -> Calibration:
    """Calibrate an experiment (``experiments/NAME.yaml``, a path, or a mapping) and, with ``out``,
    write its folder (``result.path``). ``changes`` replace settings of its ``calibration`` section
    (``trials=100``, ``replicates=5`` ...)."""
    name, spec = resolve_experiment(experiment, "calibration", changes)
    result = run_calibration(spec, name, workers=workers, progress=progress)
    if out is not None:
        result.save(out, plots=plots)
    return result


__all__ = ["Calibration", "Target", "calibrate", "load_target", "run_calibration", "series_loss", "total_loss"]
