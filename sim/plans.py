"""Experiment plans as data: which strategies, sweeps, parameter spaces and targets an experiment
names, how an ``experiments/*.yaml`` file is found, validated and written back.

A plan says which runs to make; ``sim.experiment`` makes them, ``sim.analysis`` says what they mean,
and ``sim.report`` renders it. Every plan is validated at the edge like a configuration: a misspelt
key or an out-of-range value is one line naming it, and no setting of a plan can name code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import yaml

from sim.analysis.comparison import DEFAULT_METRICS, METRICS
from sim.config import check_no_code, override_key
from sim.inputs import read_yaml
from sim.schema import ConfigError, build, param, require, suggest, to_plain


PROJECT = Path(__file__).resolve().parent.parent


MetricName = Literal[tuple(METRICS)]  # type: ignore[valid-type]


DEFAULT_SWEEP_METRICS = ("profit", "users_total", "mau_end", "gmv")


@dataclass(frozen=True)
class StrategySpec:
    LIST_ALLOWED_KEYS: ClassVar[bool] = True

    scenario: str = param("default", doc="the scenario the strategy starts from (`sim scenarios` lists them; default: the strategy's name)")
    overrides: tuple[str, ...] = param((), doc="key=value overrides on top of the scenario (Hydra grammar)")


@dataclass(frozen=True)
class SweepSpec:
    LIST_ALLOWED_KEYS: ClassVar[bool] = True

    params: dict[str, Any] = param(factory=dict, doc="swept key -> a list of values, or a Hydra sweep expression such as 'range(0,10)'")
    scenario: str = param("default", doc="the scenario every job starts from (unless `scenario` is swept)")
    metrics: tuple[MetricName, ...] = param(DEFAULT_SWEEP_METRICS, doc="horizon metrics plotted against the swept parameters")

    def check(self, path: str) -> None:
        require(bool(self.params), f"{path}.params", {}, "allowed is at least one swept key")
        for key, values in self.params.items():
            ok = (isinstance(values, str) and values.strip()) or (
                isinstance(values, (list, tuple)) and values and all(isinstance(v, (int, float, str, bool)) for v in values))
            require(bool(ok), f"{path}.params.{key}", values, "allowed is a non-empty list of values or a sweep expression such as 'range(0,10)'")


#: A target's metric: ``retention`` (by age), a daily column, or a ratio of two daily columns
#: (``gmv_365 / active_buyers_365``), read by this pattern and never evaluated.
METRIC_PATTERN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:/\s*([A-Za-z_][A-Za-z0-9_]*)\s*)?")
METRIC_FORMS = "retention, a daily column (dau, gmv, active_buyers_365 ...) or a ratio of two ('gmv_365 / active_buyers_365')"


def metric_columns(metric: str, path: str = "metric") -> tuple[str, str | None]:
    """The column and the denominator (None for a single column) of a target's metric."""
    match = METRIC_PATTERN.fullmatch(metric)
    if match is None or (match.group(2) is not None and "retention" in match.groups()):
        raise ConfigError(f"{path} = {metric!r}: allowed is {METRIC_FORMS}")
    return match.group(1), match.group(2)


@dataclass(frozen=True)
class ParameterRange:
    """The range of one parameter of a sensitivity analysis or a calibration (``key: [low, high]``)."""

    LIST_ALLOWED_KEYS: ClassVar[bool] = True

    low: float = param(doc="lowest value (in the key's own unit)")
    high: float = param(doc="highest value")
    log: bool = param(False, doc="spread the values evenly on a logarithmic scale (low must be above 0)")

    def check(self, path: str) -> None:
        require(self.high > self.low, f"{path}.high", self.high, f"must exceed low ({self.low})")
        if self.log:
            require(self.low > 0, f"{path}.low", self.low, "a logarithmic range must start above 0")


def _normalise_ranges(raw: Any) -> Any:
    """``key: [low, high]`` is short for ``key: {low: .., high: ..}``."""
    if not isinstance(raw, Mapping):
        return raw
    out = {}
    for key, value in raw.items():
        if isinstance(value, (list, tuple)) and len(value) == 2:
            value = {"low": value[0], "high": value[1]}
        elif isinstance(value, (list, tuple)):
            raise ConfigError(f"params.{key} = {list(value)}: allowed is [low, high] or {{low: .., high: .., log: true}}")
        out[str(key)] = value
    return out


@dataclass(frozen=True)
class SensitivitySpec:
    """Which parameters vary, over what ranges, sampled how (``sim sensitivity experiment=NAME``)."""
    LIST_ALLOWED_KEYS: ClassVar[bool] = True


    params: dict[str, ParameterRange] = param(factory=dict, doc="config key -> [low, high] (or {low, high, log}): the parameter space")
    scenario: str = param("default", doc="the scenario every run starts from")
    method: Literal["morris", "sobol"] = param("morris", doc="morris: elementary-effects screening (mu*, sigma); sobol: variance-based first-order and total indices (S1, ST)")
    samples: int = param(16, lo=1, hi=1_000_000, unit="trajectories or base samples",
                         doc="morris: trajectories (runs = samples x (parameters + 1)); sobol: base sample N, a power of two (runs = N x (parameters + 2))")
    levels: int = param(4, lo=2, hi=1000, unit="levels", doc="morris: grid levels of each parameter (even)")
    second_order: bool = param(False, doc="sobol: also the second-order indices S2 (runs = N x (2 parameters + 2))")
    replicates: int = param(1, lo=1, hi=10_000, unit="seeds per point", doc="seeds each point is run at; the analysis uses their mean (every point sees the same seeds)")
    metrics: tuple[MetricName, ...] = param(("profit", "users_total", "retention_d30"), doc="horizon metrics analysed")
    resamples: int = param(1000, lo=10, hi=1_000_000, unit="resamples", doc="bootstrap resamples for the confidence intervals of the indices")
    noise_seeds: int = param(8, lo=0, hi=10_000, unit="seeds",
                             doc="runs of the centre of the ranges at different seeds, whose spread is the seed noise an index must exceed (0: none; "
                                 "8 estimate the noise's standard deviation within about 25 %)")

    def check(self, path: str) -> None:
        require(self.noise_seeds != 1, f"{path}.noise_seeds", 1, "allowed is 0 (no noise floor) or at least 2 (a spread needs two runs)")
        require(len(self.params) >= 2, f"{path}.params", len(self.params), "allowed is at least two parameters")
        require(len(self.metrics) >= 1, f"{path}.metrics", [], "allowed is at least one metric")
        if self.method == "sobol":
            n = self.samples
            require(n >= 2 and n & (n - 1) == 0, f"{path}.samples", n, "sobol needs a power of two (2, 4, 8, ..., 1024)")
        else:
            require(self.levels % 2 == 0, f"{path}.levels", self.levels, "morris needs an even number of levels")
            require(self.samples >= 2, f"{path}.samples", self.samples, "morris needs at least 2 trajectories")


@dataclass(frozen=True)
class TargetSpec:
    """One observed series a calibration is fitted to: a CSV of ``day`` (or ``age``) and ``value``, or
    the same pairs written in the experiment file (``values: {1: 0.19, 30: 0.075}``), compared as
    they are, as shares of the market, aggregated over periods, or relative to one of their points."""

    LIST_ALLOWED_KEYS: ClassVar[bool] = True

    metric: str = param(doc="what the values are: retention (share of a cohort visiting at that age, pooled over join days), "
                            "any daily column of a run (dau, gmv, active_buyers_365 ...), or a ratio of two ('gmv_365 / active_buyers_365')")
    file: str | None = param(None, doc="CSV with columns day (a daily series) or age (retention), and value; relative to the experiment file")
    values: dict[str, float] | None = param(None, doc="day (or age) -> value, instead of a file")
    weight: float = param(1.0, lo=0, hi=1e6, unit="weight", doc="weight of this target in the loss; 0: a held-out target, reported in the fit, its plot and on fresh seeds but never fitted (judge the fit on points it was not fitted to)")
    label: str = param("", doc="where the figures come from (shown in the fit plot)")
    name: str = param("", doc="the target's name in the report and in trials.csv (default: its metric)")
    scale: Literal["absolute", "market"] = param("absolute", doc="absolute: values in the column's own unit; market: shares of the market, "
                                                 "the column divided by the people in the market that day (the run's market_size column if it "
                                                 "records one, else the population size)")
    period: int | None = param(None, lo=1, hi=36_500, unit="days", doc="compare an aggregate over the period of this many days ending at each "
                                                                       "target day (365: the year ending that day) instead of the day's value")
    aggregate: Literal["sum", "mean", "last"] | None = param(None, doc="with period: sum (flows: gmv, orders), mean (levels: dau) or last (the "
                                                                      "period's last day); a ratio aggregates both columns, then divides")
    relative_to: int | None = param(None, lo=0, hi=36_500, unit="day (age)", doc="fit the shape only: simulated and target values are both "
                                                                                 "divided by their value at this day (one of the target's days)")

    def check(self, path: str) -> None:
        require((self.file is None) != (self.values is None), f"{path}.file", self.file, "give either a file or values (day -> value), not both")
        if self.file is not None:
            require(Path(self.file).expanduser().is_file(), f"{path}.file", self.file, "no such file")
        else:
            require(len(self.values) >= 1, f"{path}.values", {}, "allowed is at least one day -> value pair")
            for key in self.values:
                require(key.isdigit(), f"{path}.values", key, "the keys are days (or ages): whole numbers >= 0")
        column, denominator = metric_columns(self.metric, f"{path}.metric")
        if column == "retention":
            require(self.scale == "absolute", f"{path}.scale", self.scale, "retention is already a share (of its cohort): allowed is absolute")
            require(self.period is None, f"{path}.period", self.period, "retention is by age: allowed is no period")
        if denominator is not None:
            require(self.scale == "absolute", f"{path}.scale", self.scale, "a ratio is already per unit of its denominator: allowed is absolute")
        if self.period is not None:
            require(self.aggregate is not None, f"{path}.aggregate", None, "a period needs an aggregate: sum, mean or last")
        else:
            require(self.aggregate is None, f"{path}.aggregate", self.aggregate, "an aggregate needs a period (days)")


def _normalise_targets(raw: Any) -> Any:
    if isinstance(raw, Mapping):  # a single target
        return [raw]
    return raw


@dataclass(frozen=True)
class CalibrationSpec:
    """Which parameters to fit, within what bounds, to which series (``sim calibrate experiment=NAME``)."""
    LIST_ALLOWED_KEYS: ClassVar[bool] = True


    params: dict[str, ParameterRange] = param(factory=dict, doc="config key -> [low, high] (or {low, high, log}): the bounds of the search")
    targets: tuple[TargetSpec, ...] = param((), doc="observed series to reproduce (each a CSV and the metric it is)")
    scenario: str = param("default", doc="the scenario every run starts from; its values are the first trial")
    loss: Literal["msle", "relative"] = param("msle", doc="msle: mean squared log error; relative: mean absolute relative error (both scale-free)")
    trials: int = param(40, lo=1, hi=100_000, unit="trials", doc="parameter sets tried (Optuna's TPE sampler)")
    startup_trials: int = param(10, lo=0, hi=100_000, unit="trials", doc="trials drawn at random before TPE starts modelling the loss")
    replicates: int = param(3, lo=1, hi=10_000, unit="seeds per trial", doc="seeds each trial runs (the same for every trial); the loss compares their mean with the target")
    check_replicates: int = param(10, lo=2, hi=10_000, unit="seeds", doc="fresh seeds the best parameters are rerun at for the fit plot and the held-out loss")
    batch: int = param(2, lo=1, hi=1_000, unit="trials", doc="trials asked of the sampler at a time and run together (the history depends on it, not on the number of workers)")
    conflict_tolerance: float = param(0.1, lo=0, lo_open=True, hi=100, unit="error (0.1 = 10 %)",
                                      doc="the report flags two targets as conflicting when no trial comes this close to the best fit of both "
                                          "(in root-mean-square log error for msle, mean relative error for relative)")

    def check(self, path: str) -> None:
        require(len(self.params) >= 1, f"{path}.params", {}, "allowed is at least one parameter")
        require(len(self.targets) >= 1, f"{path}.targets", [], "allowed is at least one target series")
        require(any(t.weight > 0 for t in self.targets), f"{path}.targets", [t.weight for t in self.targets],
                "at least one target needs a weight above 0 (weight 0 holds a target out of the fit)")


#: The distributions an assumption can follow, each a list of its parameters.
DISTRIBUTIONS = {
    "uniform": "[low, high]",
    "triangular": "[low, mode, high]",
    "normal": "[mean, sd]",
    "lognormal": "[median, sigma]",
    "choice": "[a, b, ...]",
}
DISTRIBUTION_FORMS = ", ".join(f"{{{k}: {v}}}" for k, v in DISTRIBUTIONS.items())


@dataclass(frozen=True)
class AssumptionSpec:
    """One uncertain input of a comparison (``assumptions: {key: {uniform: [low, high]}}``): drawn
    once per replicate, the same draw for every strategy of that replicate. Normal and lognormal
    draws are truncated to the key's allowed range; uniform and triangular ones must lie inside it."""

    LIST_ALLOWED_KEYS: ClassVar[bool] = True

    uniform: tuple[float, ...] | None = param(None, doc="[low, high]: every value in between equally likely")
    triangular: tuple[float, ...] | None = param(None, doc="[low, mode, high]: most likely at mode, never beyond low and high")
    normal: tuple[float, ...] | None = param(None, doc="[mean, sd], truncated to the key's allowed range")
    lognormal: tuple[float, ...] | None = param(None, doc="[median, sigma]: the logarithm is normal with standard deviation sigma; truncated to the key's range")
    choice: tuple[Any, ...] | None = param(None, doc="[a, b, ...]: one of these values (numbers, words or true/false)")
    p: tuple[float, ...] | None = param(None, doc="with choice: the probability of each value, in order (default: all equal)")

    @property
    def kind(self) -> str:
        return next(k for k in DISTRIBUTIONS if getattr(self, k) is not None)

    @property
    def values(self) -> tuple:
        return getattr(self, self.kind)

    @property
    def numeric(self) -> bool:
        return self.kind != "choice"

    @property
    def text(self) -> str:
        """"lognormal: median 25, sigma 0.5", "choice: popular (30 %), personalised (70 %)"."""
        if self.kind == "choice":
            return "choice: " + ", ".join(f"{v} ({100 * p:.0f} %)" for v, p in zip(self.choice, self.probabilities))
        names = DISTRIBUTIONS[self.kind].strip("[]").split(", ")
        return f"{self.kind}: " + ", ".join(f"{n} {v:g}" for n, v in zip(names, self.values))

    @property
    def probabilities(self) -> tuple[float, ...]:
        """The probability of each choice (all equal unless ``p`` says)."""
        return self.p if self.p is not None else tuple(1.0 / len(self.choice) for _ in self.choice)

    def check(self, path: str) -> None:
        given = [k for k in DISTRIBUTIONS if getattr(self, k) is not None]
        require(len(given) == 1, path, {k: list(getattr(self, k)) for k in given}, f"allowed is one distribution: {DISTRIBUTION_FORMS}")
        kind, v = given[0], list(self.values)
        where = f"{path}.{kind}"
        require(self.p is None or kind == "choice", f"{path}.p", list(self.p or ()), "p goes with choice only")
        if kind == "choice":
            require(len(v) >= 2, where, v, "allowed is a list of at least two values")
            require(all(isinstance(x, (int, float, str, bool)) for x in v), where, v, "allowed values are numbers, words or true/false")
            require(len({repr(x) for x in v}) == len(v), where, v, "each value once")
            if self.p is not None:
                p = list(self.p)
                require(len(p) == len(v), f"{path}.p", p, f"one probability per value ({len(v)})")
                require(all(x >= 0 for x in p), f"{path}.p", p, "probabilities are >= 0")
                require(abs(sum(p) - 1.0) <= 1e-6, f"{path}.p", p, f"probabilities add up to 1 (these add up to {sum(p):g})")
            return
        size = len(DISTRIBUTIONS[kind].split(","))
        require(len(v) == size, where, v, f"allowed is {DISTRIBUTIONS[kind]}")
        if kind == "uniform":
            require(v[0] < v[1], where, v, "low must be below high")
        elif kind == "triangular":
            require(v[0] < v[2] and v[0] <= v[1] <= v[2], where, v, "allowed is low <= mode <= high with low below high")
        elif kind == "normal":
            require(v[1] > 0, where, v, "the standard deviation must be above 0")
        else:
            require(v[0] > 0 and v[1] > 0, where, v, "the median and sigma must be above 0")


#: A constraint of a decision: ``METRIC OP RHS`` with RHS a number, ``baseline``, ``baseline + N`` or ``baseline - N``.
CONSTRAINT_PATTERN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|>|<)\s*(?:(baseline)(?:\s*([+-])\s*(\d+(?:\.\d*)?|\.\d+))?|"
                                r"([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?))\s*")
CONSTRAINT_FORMS = "METRIC OP VALUE with OP one of >=, <=, >, < and VALUE a number, baseline, baseline + N or baseline - N (e.g. 'profit >= baseline')"


@dataclass(frozen=True)
class Constraint:
    """``metric op (baseline + offset)`` when ``relative``, else ``metric op offset``."""

    metric: str
    op: str
    relative: bool
    offset: float
    text: str


def parse_constraint(text: str, path: str) -> Constraint:
    match = CONSTRAINT_PATTERN.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(f"{path} = {text!r}: allowed is {CONSTRAINT_FORMS}")
    metric, op, base, sign, offset, number = match.groups()
    require(metric in METRICS, path, text, f"unknown metric {metric!r}{suggest(metric, METRICS)}; allowed: {', '.join(METRICS)}")
    if base:
        value = float(offset or 0.0) * (-1.0 if sign == "-" else 1.0)
    else:
        value = float(number)
    require(np.isfinite(value), path, text, "the value must be a finite number")
    return Constraint(metric, op, bool(base), value, " ".join(text.split()))


@dataclass(frozen=True)
class DecisionSpec:
    """The question a comparison answers: which strategy is best on one metric (maximise or
    minimise) among those meeting every constraint, judged replicate by replicate."""

    LIST_ALLOWED_KEYS: ClassVar[bool] = True

    maximise: MetricName | None = param(None, doc="the horizon metric to make as large as possible (or give minimise)")
    minimise: MetricName | None = param(None, doc="the horizon metric to make as small as possible (or give maximise)")
    subject_to: tuple[str, ...] = param((), doc="constraints 'METRIC OP VALUE', OP one of >=, <=, >, <, VALUE a number, baseline, "
                                                "baseline + N or baseline - N, judged in each replicate against the baseline's same replicate")

    def check(self, path: str) -> None:
        require((self.maximise is None) != (self.minimise is None), f"{path}.maximise", self.maximise or self.minimise,
                "give exactly one of maximise: METRIC or minimise: METRIC")
        for k, text in enumerate(self.subject_to):
            parse_constraint(text, f"{path}.subject_to[{k}]")

    @property
    def objective(self) -> str:
        return self.maximise or self.minimise

    @property
    def sense(self) -> str:
        return "maximise" if self.maximise else "minimise"

    @property
    def constraints(self) -> tuple[Constraint, ...]:
        return tuple(parse_constraint(t, "decision.subject_to") for t in self.subject_to)


DECISION_FORMS = "'maximise METRIC; CONSTRAINT; ...' or 'minimise METRIC; ...' with each CONSTRAINT " + CONSTRAINT_FORMS.split(" with ", 1)[0] + \
    " (e.g. 'decision=maximise users_end; profit >= baseline')"


def decision_from_text(text: str) -> dict[str, Any]:
    """``maximise users_end; profit >= baseline; cac_blended <= 60`` (the command line's ``decision=``)
    as the mapping an experiment file's ``decision:`` holds."""
    text = text.strip().strip("'\"")
    parts = [p.strip() for p in text.split(";")]
    head = parts[0].split()
    if len(head) != 2 or head[0] not in ("maximise", "minimise") or not all(parts[1:]):
        raise ConfigError(f"decision = {text!r}: allowed is {DECISION_FORMS}")
    return {head[0]: head[1], "subject_to": parts[1:]}


@dataclass(frozen=True)
class SearchParameter:
    """One setting an optimisation searches: a range (``key: [low, high]``, whole numbers for a
    whole-number key) or a list of values (``key: {choices: [2, 3, 5]}``)."""

    LIST_ALLOWED_KEYS: ClassVar[bool] = True

    low: float | None = param(None, doc="lowest value (in the key's own unit)")
    high: float | None = param(None, doc="highest value")
    log: bool = param(False, doc="search on a logarithmic scale (low must be above 0)")
    choices: tuple[Any, ...] | None = param(None, doc="the values to choose from (numbers, words or true/false), instead of a range")

    def check(self, path: str) -> None:
        if self.choices is not None:
            require(self.low is None and self.high is None, path, {"low": self.low, "high": self.high, "choices": list(self.choices)},
                    "give either a range [low, high] or choices, not both")
            v = list(self.choices)
            require(len(v) >= 2, f"{path}.choices", v, "allowed is a list of at least two values")
            require(all(isinstance(x, (int, float, str, bool)) for x in v), f"{path}.choices", v, "allowed values are numbers, words or true/false")
            require(len({repr(x) for x in v}) == len(v), f"{path}.choices", v, "each value once")
            require(not self.log, f"{path}.log", self.log, "log goes with a range, not with choices")
            return
        require(self.low is not None and self.high is not None, path, {"low": self.low, "high": self.high}, SEARCH_FORMS)
        ParameterRange(self.low, self.high, self.log).check(path)

    @property
    def range(self) -> ParameterRange | None:
        """The range searched (None for choices)."""
        return None if self.choices is not None else ParameterRange(self.low, self.high, self.log)


SEARCH_FORMS = "allowed is [low, high], {low: .., high: .., log: true} or {choices: [a, b, ...]}"


def _normalise_search(raw: Any) -> Any:
    """``key: [low, high]`` is short for ``key: {low: .., high: ..}``; choices are written out."""
    if not isinstance(raw, Mapping):
        return raw
    out = {}
    for key, value in raw.items():
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise ConfigError(f"optimisation.params.{key} = {list(value)}: {SEARCH_FORMS}")
            value = {"low": value[0], "high": value[1]}
        out[str(key)] = value
    return out


SENSES = {"maximise": "maximise", "maximize": "maximise", "minimise": "minimise", "minimize": "minimise"}


@dataclass(frozen=True)
class ObjectiveSpec:
    """One objective of an optimisation: a horizon metric and the direction that is better."""

    LIST_ALLOWED_KEYS: ClassVar[bool] = True

    metric: MetricName = param(doc="the horizon metric (users_end, profit, profit_with_terminal, ...)")
    direction: Literal["maximise", "minimise", "maximize", "minimize"] = param(doc="maximise or minimise")

    @property
    def sense(self) -> str:
        """``maximise`` or ``minimise`` (either spelling is accepted)."""
        return SENSES[self.direction]

    @property
    def sign(self) -> float:
        """+1 for an objective to maximise, -1 to minimise: sign x value is always 'larger is better'."""
        return 1.0 if self.sense == "maximise" else -1.0


def _normalise_objectives(raw: Any) -> Any:
    """``objectives: {metric: .., direction: ..}`` (a single objective) is a list of one."""
    return [raw] if isinstance(raw, Mapping) else raw


def contradiction(constraints: Sequence[Constraint]) -> str | None:
    """Why no strategy can meet all ``constraints`` together, or None. Constraints are compared
    when they bound one metric on the same footing (two numbers, or two offsets from the baseline):
    the largest lower bound must not exceed the smallest upper bound (nor equal it when either is strict)."""
    for metric in dict.fromkeys(c.metric for c in constraints):
        for relative in (False, True):
            same = [c for c in constraints if c.metric == metric and c.relative == relative]
            lower = [c for c in same if c.op in (">=", ">")]
            upper = [c for c in same if c.op in ("<=", "<")]
            if not lower or not upper:
                continue
            lo = max(lower, key=lambda c: (c.offset, c.op == ">"))
            hi = min(upper, key=lambda c: (c.offset, c.op == "<"))
            if lo.offset > hi.offset or (lo.offset == hi.offset and (lo.op == ">" or hi.op == "<")):
                return f"'{lo.text}' and '{hi.text}' cannot both hold"
    return None


@dataclass(frozen=True)
class OptimisationSpec:
    """What to search for the best strategy (``sim optimise experiment=NAME``): the settings and
    their ranges, the objectives, the constraints, and how many trials and replicates."""

    LIST_ALLOWED_KEYS: ClassVar[bool] = True

    params: dict[str, SearchParameter] = param(factory=dict, doc="config key -> [low, high] (or {low, high, log}, or {choices: [..]}): the search space")
    objectives: tuple[ObjectiveSpec, ...] = param((), doc="one or more {metric: METRIC, direction: maximise|minimise}")
    constraints: tuple[str, ...] = param((), doc="'METRIC OP VALUE', OP one of >=, <=, >, <, VALUE a number, baseline, baseline + N or "
                                                 "baseline - N (against the scenario as it is, on the same seeds): a strategy that breaks one is infeasible")
    scenario: str = param("default", doc="the scenario every trial starts from; as it is, it is the baseline (and the first trial when inside the space)")
    trials: int = param(60, lo=1, hi=100_000, unit="trials", doc="the study's size: parameter sets evaluated (a resumed study runs until it holds this many)")
    replicates: int = param(4, lo=1, hi=10_000, unit="seeds per trial", doc="seeds each trial runs, the same for every trial (common random numbers)")
    check_replicates: int = param(20, lo=2, hi=10_000, unit="seeds", doc="fresh seeds, shared by every candidate and the baseline, that the final candidates are re-evaluated at")
    candidates: int = param(8, lo=1, hi=1_000, unit="trials", doc="most trials re-evaluated: the best non-dominated ones (the top few for one objective)")
    sampler: Literal["tpe", "nsga2", "nsga3", "random"] = param("tpe", doc="Optuna's sampler: tpe (multi-objective TPE for several objectives), "
                                                                       "nsga2, nsga3 (genetic; for large studies) or random")
    startup_trials: int = param(10, lo=0, hi=100_000, unit="trials", doc="tpe: trials drawn at random before TPE starts modelling the objectives")
    batch: int = param(2, lo=1, hi=1_000, unit="trials", doc="trials asked of the sampler at a time and run together (the history depends on it, not on the number of workers)")

    def check(self, path: str) -> None:
        require(len(self.params) >= 1, f"{path}.params", {}, "allowed is at least one parameter")
        require(len(self.objectives) >= 1, f"{path}.objectives", [], "allowed is at least one {metric: METRIC, direction: maximise|minimise}")
        metrics = [o.metric for o in self.objectives]
        twice = next((m for m in metrics if metrics.count(m) > 1), None)
        require(twice is None, f"{path}.objectives", metrics, f"{twice} is an objective twice")
        parsed = [parse_constraint(text, f"{path}.constraints[{k}]") for k, text in enumerate(self.constraints)]
        why = contradiction(parsed)
        require(why is None, f"{path}.constraints", list(self.constraints), f"contradictory: {why}")

    @property
    def parsed_constraints(self) -> tuple[Constraint, ...]:
        return tuple(parse_constraint(t, "optimisation.constraints") for t in self.constraints)

    @property
    def metrics(self) -> list[str]:
        """The objectives' metrics, then the constraints' (each once)."""
        return list(dict.fromkeys([*(o.metric for o in self.objectives), *(c.metric for c in self.parsed_constraints)]))


@dataclass(frozen=True)
class ExperimentSpec:
    LIST_ALLOWED_KEYS: ClassVar[bool] = True

    description: str = param("", doc="what the experiment asks, in a sentence")
    strategies: dict[str, StrategySpec] = param(factory=dict, doc="strategy name -> its scenario and overrides")
    baseline: str | None = param(None, doc="the strategy the others are compared with (default: the first)")
    replicates: int = param(30, lo=2, hi=100_000, unit="runs per strategy", doc="replicates of each strategy (intervals need at least two)")
    seed: int = param(0, lo=0, hi=2**63 - 1, doc="base seed: replicate seeds are derived from it")
    overrides: tuple[str, ...] = param((), doc="key=value overrides applied to every strategy and sweep job first")
    metrics: tuple[MetricName, ...] = param(DEFAULT_METRICS, doc="horizon metrics reported")
    sweep: SweepSpec | None = param(None, doc="a parameter sweep (`sim run -m experiment=NAME`)")
    sensitivity: SensitivitySpec | None = param(None, doc="a sensitivity analysis (`sim sensitivity experiment=NAME`)")
    calibration: CalibrationSpec | None = param(None, doc="a calibration to observed series (`sim calibrate experiment=NAME`)")
    optimisation: OptimisationSpec | None = param(None, doc="a search for the best settings (`sim optimise experiment=NAME`)")
    world: Literal["varies", "fixed"] = param("varies", doc="varies: each replicate draws its own world (graph, people, catalogue), "
                                                            "part of the intervals; fixed: every replicate's world is built from the base "
                                                            "seed, so replicates differ only in behaviour (intervals conditional on that world)")
    assumptions: dict[str, AssumptionSpec] = param(factory=dict, doc="config key -> a distribution ({uniform: [low, high]}, ...): "
                                                                      "uncertain inputs drawn once per replicate, the same for every strategy")
    decision: DecisionSpec | None = param(None, doc="the question: maximise (or minimise) a metric subject to constraints; "
                                                    "writes decision.json and prints the recommendation")

    def check(self, path: str) -> None:
        ovs = [*self.overrides, *(o for s in self.strategies.values() for o in s.overrides)]
        for key, a in self.assumptions.items():
            ovs += [f"{key}={v}" if isinstance(v, str) else f"{key}=" for v in (a.choice or [None])]
        if self.sweep is not None:  # every swept key with every value (a value can name a group option)
            for key, values in self.sweep.params.items():
                ovs += [f"{key}={v}" for v in (values if isinstance(values, (list, tuple)) else [values])]
        for space in (self.sensitivity, self.calibration):
            if space is not None:
                ovs += [f"{key}=" for key in space.params]
        if self.optimisation is not None:  # a searched key with every choice (a word can name a group option)
            for key, p in self.optimisation.params.items():
                ovs += [f"{key}={v}" if isinstance(v, str) else f"{key}=" for v in (p.choices or [None])]
        try:  # a file names settings, never code; the launcher is chosen on the command line
            check_no_code(ovs)
        except ConfigError as exc:
            raise ConfigError(f"{path + ': ' if path else ''}{exc}") from None
        self._check_keys_set_once(path)
        where = f"{path}.baseline" if path else "baseline"
        if self.baseline is not None and self.strategies:
            require(self.baseline in self.strategies, where, self.baseline,
                    f"allowed is one of the strategies: {', '.join(self.strategies)}{suggest(self.baseline, self.strategies)}")

    def _check_keys_set_once(self, path: str) -> None:
        """An assumption's key set by an override too would be ambiguous (which value holds?); a
        strategy of its own world would break the pairing of replicates."""
        prefix = f"{path}." if path else ""
        for name, s in self.strategies.items():
            for text in s.overrides:
                require(override_key(text) != "world_seed", f"{prefix}strategies.{name}.overrides", text,
                        "strategies of one comparison share their worlds: set world: fixed, or world_seed in the common overrides")
        for key in self.assumptions:
            for where, texts in [("overrides", self.overrides), *((f"strategies.{n}.overrides", s.overrides) for n, s in self.strategies.items())]:
                clash = next((t for t in texts if override_key(t) == key), None)
                require(clash is None, f"{prefix}assumptions.{key}", clash,
                        f"{where} sets this key too: an assumption and an override of one key are ambiguous (keep one)")
            require(key not in ("seed", "world_seed"), f"{prefix}assumptions.{key}", key,
                    "seeds are not assumptions (replicates draw the seed; world: fixed holds the world)")

    @property
    def baseline_name(self) -> str:
        return self.baseline or next(iter(self.strategies))


def _normalise_strategies(raw: Any) -> Any:
    """``[a, b]`` or ``{a: null}`` mean strategies running the scenarios of those names."""
    if isinstance(raw, (list, tuple)):
        raw = {str(s): None for s in raw}
    if isinstance(raw, Mapping):
        out = {}
        for name, spec in raw.items():
            spec = {} if spec is None else spec
            if isinstance(spec, str):
                spec = {"scenario": spec}
            if isinstance(spec, Mapping) and "scenario" not in spec:
                spec = {**spec, "scenario": str(name)}
            out[str(name)] = spec
        return out
    return raw


def experiment_spec(data: Mapping[str, Any], where: str = "", base: Path | None = None) -> ExperimentSpec:
    """Validate a plain mapping (an experiment file, or the command line) into an :class:`ExperimentSpec`.
    Relative target files are found from ``base`` (the experiment file's folder; default: here)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'experiment'}: allowed is a mapping of experiment settings")
    data = dict(data)
    if "strategies" in data:
        data["strategies"] = _normalise_strategies(data["strategies"])
    try:
        for section in ("sensitivity", "calibration"):
            if isinstance(data.get(section), Mapping):
                data[section] = dict(data[section])
                if "params" in data[section]:
                    data[section]["params"] = _normalise_ranges(data[section]["params"])
        if isinstance(data.get("optimisation"), Mapping):
            data["optimisation"] = dict(data["optimisation"])
            if "params" in data["optimisation"]:
                data["optimisation"]["params"] = _normalise_search(data["optimisation"]["params"])
            if "objectives" in data["optimisation"]:
                data["optimisation"]["objectives"] = _normalise_objectives(data["optimisation"]["objectives"])
        if isinstance(data.get("calibration"), Mapping) and "targets" in data["calibration"]:
            targets = _normalise_targets(data["calibration"]["targets"])
            if isinstance(targets, (list, tuple)):
                targets = [_resolve_file(t, base) for t in targets]
            data["calibration"]["targets"] = targets
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}" if where else str(exc)) from None
    try:
        return build(ExperimentSpec, data)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}" if where else str(exc)) from None


def _resolve_file(target: Any, base: Path | None) -> Any:
    if isinstance(target, Mapping) and isinstance(target.get("file"), str) and base is not None:
        path = Path(target["file"]).expanduser()
        if not path.is_absolute():
            return {**target, "file": str(base / path)}
    return target


def experiment_dirs() -> list[Path]:
    """Folders searched for ``experiments/NAME.yaml``: the project's, then ``SIM_EXPERIMENT_PATH``."""
    extra = [Path(p).expanduser() for p in os.environ.get("SIM_EXPERIMENT_PATH", "").split(os.pathsep) if p.strip()]
    return [PROJECT / "experiments", *extra]


def available_experiments() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root in experiment_dirs():
        for path in sorted(root.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def load_experiment(name: str) -> tuple[str, ExperimentSpec]:
    """An experiment by name (``experiments/NAME.yaml``) or by path; returns (name, spec)."""
    path = Path(name).expanduser()
    if not (name.endswith((".yaml", ".yml")) or os.sep in name) or not (path.exists() or path.is_symlink()):
        found = available_experiments()
        if name not in found:
            raise ConfigError(f"experiment = {name!r}: no such experiment{suggest(name, found)}; available: {', '.join(sorted(found)) or 'none'}")
        path = found[name]
    data = read_yaml(path) or {}
    return path.stem, experiment_spec(data, str(path), base=path.parent)


def replicate_seeds(base_seed: int, replicates: int) -> list[int]:
    """Seeds of replicates 0..n-1, derived from ``base_seed``; replicate r's seed does not depend on n."""
    state = np.random.SeedSequence(int(base_seed)).generate_state(int(replicates), dtype=np.uint32)
    return [int(s) for s in state]


def experiment_yaml(spec: ExperimentSpec, name: str) -> str:
    """An experiment as YAML that ``sim compare experiment=PATH`` reruns exactly."""
    data = to_plain(spec)
    data["strategies"] = {k: {"scenario": v["scenario"], "overrides": list(v["overrides"])} for k, v in data["strategies"].items()}
    data["assumptions"] = {k: {d: v for d, v in a.items() if v is not None} for k, a in data["assumptions"].items()}
    if data["decision"] is not None:
        data["decision"] = {k: v for k, v in data["decision"].items() if v is not None}
    header = f"# experiment {name}: rerun with `sim compare experiment=<this file>`\n"
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


StrategyInput = str | tuple[str, str, Sequence[str]]  # a scenario name, or (label, scenario, overrides)
