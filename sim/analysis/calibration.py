"""Calibration: choose settings so that the model reproduces observed series (Optuna).

An experiment file's ``calibration`` section names the parameters to fit (config key -> bounds), the
targets (observed values of a daily column, a ratio of two, or cohort retention, from a CSV or written
in the file; as they are, as shares of the market, aggregated over periods or relative to one point:
see :mod:`sim.analysis.targets`) and a scale-free loss. Each trial runs the model at the same
replicate seeds (common random numbers: trials differ only by their parameters) and compares the
replicate mean of each series with its target; the loss of every target is kept per trial, so the
folder can say which targets the model cannot meet together and which parameters each target pins
down (:mod:`sim.analysis.identification`). Optuna's TPE sampler, seeded, proposes the trials, so a
calibration is reproducible: same file, same seed, same history. The best parameters are rerun at
fresh seeds for the fit plot (target against the simulated mean and its 95 % band) and a held-out
loss, and written as a scenario file ready to run.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.identification import (conflict_line, conflicting_pairs, conflicts, identification, identification_lines, loss_column,
                                         target_losses_frame)
from sim.analysis.sensitivity import base_config, resolve_experiment
from sim.analysis.targets import (Target, check_targets, load_target, named, series_loss, target_losses, total_loss,  # noqa: F401
                                  weighted_loss)  # (series_loss and total_loss: offered here, as before the targets had a module)
from sim.config import SimConfig, compose, dump_yaml, input_files
from sim.experiment import _hydra_value, check_space, point_config, run_points
from sim.inputs import input_hashes
from sim.plans import CalibrationSpec, ExperimentSpec, ParameterRange, experiment_yaml, replicate_seeds
from sim.schema import ConfigError, to_plain

CALIBRATED_GROUP = "strategy"  # the written scenario file overrides the default scenario, like a strategy does


# ============================================================================ targets and losses
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
    trials: pd.DataFrame  # trial, one column per parameter, loss, loss:<target> for each target, best_loss
    best: dict[str, Any]  # key -> fitted value
    best_loss: float
    best_config: SimConfig
    fit: pd.DataFrame  # name, metric, label, expressed, day/age (at), target, mean, low, high (over the check seeds)
    check_loss: float  # the loss of the check runs' mean (fresh seeds)
    check_losses: np.ndarray | None = None  # the same, per target
    wall_seconds: float = 0.0
    path: Path | None = None

    @property
    def section(self) -> CalibrationSpec:
        return self.spec.calibration

    @property
    def target_names(self) -> list[str]:
        return [t.name for t in self.targets]

    def best_losses(self) -> pd.Series:
        """Each target's loss at the best trial."""
        row = self.trials.loc[self.trials["loss"].idxmin()]
        return pd.Series([row[loss_column(n)] for n in self.target_names], index=self.target_names, dtype=np.float64)

    @cached_property
    def identification(self) -> pd.DataFrame:
        """Target x parameter: how much each target's loss moves with each parameter over the trials."""
        return identification(self.trials, self.target_names, list(self.best))

    @cached_property
    def conflicts(self) -> pd.DataFrame:
        """Every pair of targets: their best errors alone and together, and whether they conflict."""
        return conflicts(target_losses_frame(self.trials, self.target_names), self.section.loss, self.section.conflict_tolerance,
                         self.identification)

    def conflict_line(self) -> str:
        return conflict_line(self.conflicts, self.section.loss, self.section.conflict_tolerance)

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
        if len(self.targets) > 1:
            lines.append(f"  {self.conflict_line()}")
        lines += [f"  identified by {line}" for line in identification_lines(self.identification)]
        return "\n".join(lines)

    def scenario_name(self) -> str:
        """The name of the fitted model's scenario file in the calibration folder."""
        from sim.folders import slug

        return f"{slug(self.name)}_calibrated"

    def scenario_yaml(self) -> str:
        """The fitted model as a scenario file: the default scenario with every setting that differs."""
        return scenario_file(self.best_config, f"Calibrated by `sim calibrate experiment={self.name}`: {self.section.scenario} with "
                                               f"{', '.join(f'{k}={_hydra_value(v)}' for k, v in self.best.items())}\n"
                                               f"({self.section.loss} loss {self.best_loss:.4g}; held out {self.check_loss:.4g}). "
                                               "Every setting that differs from the default scenario:")

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
                       "targets": self.target_summary(), "conflicts": conflicting_pairs(self.conflicts),
                       "conflict_line": self.conflict_line(),
                       "identification": {n: {p: _json_number(v) for p, v in row.items()} for n, row in self.identification.iterrows()},
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

    def target_summary(self) -> list[dict[str, Any]]:
        """Per target: what it is and its loss at the best trial and on the fresh seeds."""
        best = self.best_losses()
        held = self.check_losses if self.check_losses is not None else np.full(len(self.targets), np.nan)
        return [{"name": t.name, "metric": t.metric, "expressed": t.describe(), "label": t.label, "points": int(t.at.size), "weight": t.weight,
                 "best_loss": _json_number(best[t.name]), "check_loss": _json_number(h)} for t, h in zip(self.targets, held)]

    def label(self) -> str:
        fitted = textwrap.fill(", ".join(f"{k.split('.')[-1]} = {v:.4g}" for k, v in self.best.items()), 110)
        return f"calibration {self.name} ({self.section.loss} loss {self.best_loss:.3g}, on fresh seeds {self.check_loss:.3g})\n{fitted}"


def _json_number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def scenario_file(config: SimConfig, comment: str, default: Mapping[str, Any] | None = None) -> str:
    """``config`` as a scenario file (``SIM_SCENARIO_PATH``): the default scenario with every setting
    that differs (not the seed), under ``comment`` (lines of text, written as YAML comments).
    ``default``: the default scenario as plain data, when the caller has it already."""
    import yaml

    diff = _difference(to_plain(config), default if default is not None else to_plain(compose("default", [])))
    for key in ("seed", "scenario", "out"):
        diff.pop(key, None)
    head = "# @package _global_\n" + "".join(f"# {line}\n" for line in comment.splitlines()) + "defaults:\n  - override /named: default\n"
    return head + (yaml.safe_dump(diff, sort_keys=False, allow_unicode=True) if diff else "")


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
    targets = named([load_target(t, f"calibration.targets[{k}]") for k, t in enumerate(c.targets)])
    check_targets(targets, base, "calibration")
    names = sorted({s for t in targets for s in t.series})
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
            losses = target_losses(mean_series(runs, names, k), targets, c.loss)
            loss = weighted_loss(losses, targets)
            study.tell(trial, loss if math.isfinite(loss) else None, state=None if math.isfinite(loss) else optuna.trial.TrialState.FAIL)
            rows.append({"trial": trial.number, **values, "loss": loss, **{loss_column(t.name): v for t, v in zip(targets, losses)}})
        done += len(asked)
        if progress:
            progress(done, c.trials)
    trials = pd.DataFrame(rows)
    trials["best_loss"] = trials["loss"].cummin()  # after the per-target losses: loss, loss:<target> ..., best_loss
    best_row = trials.loc[trials["loss"].idxmin()]
    best = {k: (int(best_row[k]) if kinds[k] is int else float(best_row[k])) for k in c.params}

    check = run_points(base, [best], check_seeds, workers=workers, series=names)
    fit, check_mean = fit_frame(check, names, targets)
    best_config = point_config(to_plain(base), best, fit_seeds[0])
    check_losses = target_losses(check_mean, targets, c.loss)
    return Calibration(name, spec, base, targets, trials, best=best, best_loss=float(best_row["loss"]), best_config=best_config,
                       fit=fit, check_loss=weighted_loss(check_losses, targets), check_losses=check_losses,
                       wall_seconds=time.perf_counter() - t0)


def fit_frame(check, names: Sequence[str], targets: Sequence[Target]) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Each target against the check runs, expressed as the target is (share of the market, period
    aggregate, relative to its reference): at every day (age) from the target's first to its last,
    the value the loss compares (from the mean series) with the 95 % band of the replicates around
    it, and the target where it was observed."""
    from sim.analysis.stats import band

    reps = sorted(r for (_, r) in check.series)
    mean_raw = mean_series(check, names, 0)
    frames = []
    for t in targets:
        start, upto = int(t.at.min()), int(t.at.max()) + 1
        mean = t.shown(t.curve(mean_raw))[start:upto]
        replicates = np.vstack([t.shown(t.curve(check.series[(0, r)])) for r in reps])[:, start:upto]
        _, low, high = band(replicates)
        half = (high - low) / 2
        observed = np.full(upto - start, np.nan)
        observed[t.at - start] = t.observed()
        frames.append(pd.DataFrame({"name": t.name, "metric": t.metric, "label": t.label, "expressed": t.describe(),
                                    "at": np.arange(start, upto), "target": observed, "mean": mean, "low": mean - half, "high": mean + half}))
    return pd.concat(frames, ignore_index=True), mean_raw


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


__all__ = ["Calibration", "Target", "calibrate", "check_targets", "load_target", "run_calibration", "series_loss", "total_loss"]
