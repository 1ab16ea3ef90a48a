"""Calibration targets: observed figures and the simulated values they are compared with.

A target is a few observed values at given days (or, for cohort retention, ages) of one metric: a
daily column of a run (any of them, trailing-window columns such as ``active_buyers_365`` included),
``retention``, or a ratio of two columns (``gmv_365 / active_buyers_365``: spend per active buyer).
Public figures rarely come as a model's raw counts, so a target also says how it is expressed, and
the simulated series goes through the same steps before the two are compared:

1. ``scale: market``: each day's value divided by the people in the market that day (a share);
2. ``period`` and ``aggregate``: the sum, mean or last value over the ``period`` days ending at each
   target day (annual GMV is the sum of daily GMV over the year ending on the day that labels it);
   a ratio aggregates both columns, then divides (the ratio of the year's totals, not a mean of
   daily ratios);
3. ``relative_to``: simulated and observed values both divided by their own value at that day, so only
   the shape is fitted (a model of a smaller market can still match a company's growth from year to
   year); the reference point itself then carries no information and leaves the loss.

The loss of a target is scale-free (``msle`` or ``relative``) and is computed on the replicate mean of
the raw series, transformed: a ratio of means, not a mean of ratios.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from sim.config import SimConfig
from sim.inputs import read_text
from sim.metrics import MARKET_COLUMN, MAX_COHORT_AGE, daily_columns
from sim.plans import TargetSpec, metric_columns
from sim.schema import ConfigError, excerpt, suggest


@dataclass(frozen=True)
class Target:
    """Observed values of one metric at some days (ages), and how they are expressed."""

    metric: str
    at: np.ndarray  # days or ages (ints), ascending
    value: np.ndarray  # as observed (before relative_to)
    weight: float = 1.0
    label: str = ""
    name: str = ""
    scale: str = "absolute"
    period: int | None = None
    aggregate: str | None = None
    relative_to: int | None = None

    @property
    def axis(self) -> str:
        return "age" if self.metric == "retention" else "day"

    @property
    def columns(self) -> tuple[str, ...]:
        """The column and, for a ratio, its denominator."""
        column, denominator = metric_columns(self.metric)
        return (column,) if denominator is None else (column, denominator)

    @property
    def series(self) -> tuple[str, ...]:
        """The series of a run this target reads (see :func:`sim.metrics.run_series`)."""
        return (*self.columns, MARKET_COLUMN) if self.scale == "market" else self.columns

    def describe(self) -> str:
        """How the values are expressed, in words (the fit plot's panel titles)."""
        parts = [self.metric]
        if self.scale == "market":
            parts.append("per person in the market")
        if self.period is not None:
            over = {"sum": "summed over", "mean": "averaged over", "last": "on the last of"}[self.aggregate]
            parts.append(f"{over} the {self.period} days to each day")
        if self.relative_to is not None:
            parts.append(f"relative to {self.axis} {self.relative_to}")
        return ", ".join(parts)

    def curve(self, series: Mapping[str, np.ndarray]) -> np.ndarray:
        """The simulated counterpart of the target at every day (age), before ``relative_to``; NaN
        where it is undefined (a period not yet complete, a zero denominator)."""
        values = [np.asarray(series[c], dtype=np.float64) for c in self.columns]
        if self.scale == "market":
            values[0] = values[0] / np.asarray(series[MARKET_COLUMN], dtype=np.float64)
        if self.period is not None:
            values = [trailing(v, self.period, self.aggregate) for v in values]
        if len(values) == 1:
            return values[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(values[1] != 0, values[0] / values[1], np.nan)

    def compared(self, series: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(simulated, observed) at the target's days, as the loss compares them."""
        simulated, observed = self.curve(series)[self.at], self.value
        if self.relative_to is None:
            return simulated, observed
        ref = int(np.flatnonzero(self.at == self.relative_to)[0])
        keep = np.arange(self.at.size) != ref
        with np.errstate(divide="ignore", invalid="ignore"):
            return simulated[keep] / simulated[ref], observed[keep] / observed[ref]

    def shown(self, curve: np.ndarray) -> np.ndarray:
        """A simulated curve (of :meth:`curve`) as the fit plot shows it: relative to the reference."""
        if self.relative_to is None:
            return curve
        with np.errstate(divide="ignore", invalid="ignore"):
            return curve / curve[..., self.relative_to, None]

    def observed(self) -> np.ndarray:
        """The observed values as the fit plot shows them."""
        return self.value if self.relative_to is None else self.value / self.value[self.at == self.relative_to][0]

    def loss(self, series: Mapping[str, np.ndarray], kind: str) -> float:
        return series_loss(*self.compared(series), kind)


def trailing(values: np.ndarray, period: int, aggregate: str) -> np.ndarray:
    """The ``aggregate`` (sum, mean or last) of ``values`` over the ``period`` days ending at each day;
    NaN for the days before a whole period has passed."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.size, np.nan)
    if period > values.size:
        return out
    if aggregate == "last":
        out[period - 1:] = values[period - 1:]
        return out
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    sums = cumulative[period:] - cumulative[:-period]
    out[period - 1:] = sums if aggregate == "sum" else sums / period
    return out


def series_loss(sim_values: np.ndarray, target: np.ndarray, kind: str) -> float:
    """``msle``: mean squared log error, ln((sim + e) / (target + e)) with e a millionth of the
    largest target (so a curve ten times too high costs the same at any scale); ``relative``: mean
    absolute error relative to the target."""
    sim_values, target = np.asarray(sim_values, np.float64), np.asarray(target, np.float64)
    if not np.all(np.isfinite(sim_values)) or (kind == "msle" and np.any(sim_values < 0)):
        return math.inf
    eps = max(1e-6 * float(np.max(np.abs(target))), 1e-12)
    if kind == "msle":
        return float(np.mean((np.log(sim_values + eps) - np.log(target + eps)) ** 2))
    return float(np.mean(np.abs(sim_values - target) / np.maximum(np.abs(target), eps)))


def target_losses(series: Mapping[str, np.ndarray], targets: Sequence[Target], kind: str) -> np.ndarray:
    """The loss of each target (series: the replicate mean of each series)."""
    return np.array([t.loss(series, kind) for t in targets])


def weighted_loss(losses: np.ndarray, targets: Sequence[Target]) -> float:
    """The weighted mean of the targets' losses (infinite if a fitted one is); held-out targets
    (weight 0) do not count."""
    weights = np.array([t.weight for t in targets])
    fitted = weights > 0
    return float((weights[fitted] * np.asarray(losses)[fitted]).sum() / weights[fitted].sum())


def total_loss(series: Mapping[str, np.ndarray], targets: Sequence[Target], kind: str) -> float:
    """The weighted mean loss over the targets (series: the replicate mean of each series)."""
    return weighted_loss(target_losses(series, targets, kind), targets)


# ============================================================================ reading and checking
def load_target(spec: TargetSpec, where: str) -> Target:
    """Read a target (CSV or inline values) into arrays; a bad file or an impossible reference or
    period gives one line naming it."""
    axis = "age" if spec.metric.strip() == "retention" else "day"
    if spec.values is not None:
        pairs = sorted((int(k), float(v)) for k, v in spec.values.items())
        at, value = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs], dtype=np.float64)
        source = spec.label or "experiment file"
    else:
        at, value = _read_csv(spec.file, axis, where)
        source = spec.label or Path(spec.file).name
    if at.size == 0 or at.min() < 0 or np.unique(at).size != at.size:
        raise ConfigError(f"{where}: the {axis}s must be distinct whole numbers >= 0 (at least one)")
    if not np.all(np.isfinite(value)) or value.min() < 0:
        raise ConfigError(f"{where}: the values must be finite numbers >= 0")
    order = np.argsort(at)
    at, value = at[order], value[order]
    if spec.period is not None and at.min() < spec.period - 1:
        raise ConfigError(f"{where}.period = {spec.period}: the period to {axis} {int(at.min())} would start before day 0; "
                          f"allowed are {axis}s >= {spec.period - 1} (period - 1)")
    if spec.relative_to is not None:
        if spec.relative_to not in at:
            raise ConfigError(f"{where}.relative_to = {spec.relative_to}: allowed is one of the target's {axis}s "
                              f"({excerpt(at.tolist())})")
        if at.size < 2:
            raise ConfigError(f"{where}.relative_to = {spec.relative_to}: a shape needs at least one {axis} besides the reference")
        if value[at == spec.relative_to][0] <= 0:
            raise ConfigError(f"{where}.relative_to = {spec.relative_to}: the value there is 0; allowed is a {axis} with a positive value")
    column, denominator = metric_columns(spec.metric)
    metric = column if denominator is None else f"{column} / {denominator}"
    return Target(metric, at, value, spec.weight, source, spec.name or metric, spec.scale, spec.period, spec.aggregate, spec.relative_to)


def _read_csv(file: str, axis: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    text = read_text(file, f"{where}.file = {excerpt(file)}", limit=100_000_000)  # a regular UTF-8 file, never a FIFO
    try:
        frame = pd.read_csv(io.StringIO(text), comment="#")
    except Exception as exc:  # pandas' parse errors are long; one line is enough
        raise ConfigError(f"{where}.file = {file!r}: not a readable CSV ({type(exc).__name__})") from None
    for column in (axis, "value"):
        if column not in frame.columns:
            raise ConfigError(f"{where}.file = {file!r}: needs columns {axis} and value (has {', '.join(map(str, frame.columns))})")
    try:
        at = frame[axis].to_numpy(np.float64)
        value = frame["value"].to_numpy(np.float64)
    except ValueError:
        raise ConfigError(f"{where}.file = {file!r}: {axis} and value must be numbers") from None
    if not np.all(np.isfinite(at)) or not np.all(at == np.round(at)):
        raise ConfigError(f"{where}.file = {file!r}: {axis} must be whole numbers")
    return at.astype(np.int64), value


def check_targets(targets: Sequence[Target], cfg: SimConfig, where: str) -> None:
    """Before any run: every target reads columns a run of ``cfg`` has, within its horizon."""
    columns = daily_columns(cfg)
    for k, t in enumerate(targets):
        for column in t.columns:
            if column != "retention" and column not in columns:
                part = "" if column == t.metric else f" ({column!r} is no column)"
                raise ConfigError(f"{where}.targets[{k}].metric = {t.metric!r}{part}: allowed is one of retention, "
                                  f"{', '.join(sorted(columns - {'day'}))} or a ratio of two columns{suggest(column, columns)}")
        if t.at.max() >= cfg.horizon:
            raise ConfigError(f"{where}.targets[{k}]: {t.axis} {int(t.at.max())} is beyond the horizon ({cfg.horizon} days: "
                              f"{t.axis}s 0..{cfg.horizon - 1}); raise horizon in the experiment's overrides")
        if t.axis == "age" and t.at.max() >= MAX_COHORT_AGE:
            raise ConfigError(f"{where}.targets[{k}]: age {int(t.at.max())} is beyond the ages cohorts are followed (0..{MAX_COHORT_AGE - 1})")


def named(targets: Sequence[Target]) -> list[Target]:
    """The targets with distinct names (a repeated name gets ' #2', ' #3' ...)."""
    seen: dict[str, int] = {}
    out = []
    for t in targets:
        seen[t.name] = seen.get(t.name, 0) + 1
        out.append(t if seen[t.name] == 1 else replace(t, name=f"{t.name} #{seen[t.name]}"))
    return out


__all__ = ["Target", "check_targets", "load_target", "named", "series_loss", "target_losses", "total_loss", "trailing", "weighted_loss"]
