"""Regression checks of model behaviour: ``sim check`` against ``experiments/baselines/``.

A *baseline* (one YAML file per checked experiment) names an experiment (``experiments/NAME.yaml``),
which of its strategies to check, the seeds, overrides that keep the runs cheap (a small population,
a short horizon) and, under ``expected``, the ensemble statistics of every checked metric: mean,
standard deviation and number of runs over the seeds, per strategy. Metrics are horizon metrics of a
run (``users_end``, ``retention_d30``, ``orders``, ``revenue``, ``profit``, ...) and summaries of its
curves (``peak_new_users_day``: the day the 7-day mean of new users peaks, day 0's seed users left
out; ``half_users_day``: the first day on which half of all users ever acquired had joined).

``sim check`` reruns every baseline with the same seeds and compares the new ensemble with the
stored one. The tolerance is statistical, not an exact float:

    |mean_now - mean_baseline| <= k * se + rtol * |mean_baseline| + atol,
    se = sqrt(sd_baseline^2 / n_baseline + sd_now^2 / n_now)

Why this test. Runs are deterministic: with the same code, library versions and seeds the rerun is
bit for bit the baseline, the difference is exactly zero and the check passes whatever the
tolerance. The tolerance is there for the one harmless way a rerun can differ, a library upgrade
that changes the realised random draws (numpy's generators, a sort order, the order of a floating
point sum) without changing the model: the new ensemble is then a fresh sample from the same
distribution, and the difference of two independent means of n runs has standard error ``se``
(Welch's two-sample statistic). ``k = 5`` standard errors makes a false alarm rare even with few
seeds (for 5 seeds on each side, Welch's t has about 8 degrees of freedom and P(|t| > 5) is about
0.001 per metric), while a real change of behaviour, which moves a mean by many run-to-run standard
deviations, is still caught. The floor (``rtol``, default 0.5 % of the baseline, plus ``atol``: one
day for day-valued summaries, 0.001 for fractions, one unit otherwise) keeps a metric that is
constant across seeds (zero spread, such as a cost that is always zero) from failing on a rounding
difference. A paired test over seeds would be more sensitive when the draws are unchanged but has
only n - 1 degrees of freedom after an upgrade; the unpaired statistic needs only the mean, the
spread and the count, which is what a baseline stores.

``sim check --update`` reruns the baselines and rewrites their ``expected`` sections (each file
replaced atomically, after every baseline has run), printing the diff.

From Python::

    from sim.check import run_checks, update_baselines
    result = run_checks(["referral_reward"])          # or run_checks() for every baseline
    result.passed, result.table, print(result.text())
"""

from __future__ import annotations

import difflib
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from sim.analysis.comparison import METRICS, horizon_values
from sim.experiment import _map, default_workers, run_replicate, strategy_configs
from sim.plans import PROJECT, ExperimentSpec, load_experiment, replicate_seeds
from sim.inputs import read_text
from sim.schema import ConfigError, build, excerpt, param, require, suggest, to_plain

#: Summaries of the daily curves a baseline can check, besides the horizon metrics of ``METRICS``.
CURVES = {
    "peak_new_users_day": "day on which the 7-day mean of new users peaks (from day 1: the day-0 seed users left out)",
    "half_users_day": "first day by which half of all users ever acquired had joined",
}
CHECKABLE = (*METRICS, *CURVES)
CheckMetric = Literal[tuple(CHECKABLE)]  # type: ignore[valid-type]
DEFAULT_CHECK_METRICS = ("users_end", "users_total", "mau_end", "retention_d30", "orders", "gmv", "revenue", "profit",
                         "peak_new_users_day", "half_users_day")
BASELINE_DIR = PROJECT / "experiments" / "baselines"


# ============================================================================ a baseline, as data
@dataclass(frozen=True)
class Stat:
    LIST_ALLOWED_KEYS: ClassVar[bool] = True

    mean: float | None = param(None, lo=-1e18, hi=1e18, doc="mean over the seeds (null when no run had a value)")
    sd: float | None = param(None, lo=0, hi=1e18, doc="standard deviation over the seeds (n - 1 in the denominator)")
    n: int = param(0, lo=0, hi=1_000_000, doc="runs with a value")


@dataclass(frozen=True)
class Tolerance:
    LIST_ALLOWED_KEYS: ClassVar[bool] = True

    k: float = param(5.0, lo=0, hi=1000, unit="standard errors", doc="allowed difference of means in standard errors of the difference")
    rtol: float = param(0.005, lo=0, hi=1, unit="fraction of the baseline mean", doc="floor: allowed relative difference")


@dataclass(frozen=True)
class BaselineSpec:
    LIST_ALLOWED_KEYS: ClassVar[bool] = True

    experiment: str = param("", doc="the experiment checked: a name in experiments/ or a path (relative to this file)")
    description: str = param("", doc="what the baseline guards, in a sentence")
    strategies: tuple[str, ...] = param((), doc="the experiment's strategies to check (default: all)")
    seeds: tuple[int, ...] = param((), lo=0, hi=2**63 - 1, doc="seeds of the runs (a whole number N means the experiment's first N replicate seeds)")
    overrides: tuple[str, ...] = param((), doc="key=value overrides after the experiment's own (keep the runs small)")
    metrics: tuple[CheckMetric, ...] = param(DEFAULT_CHECK_METRICS, doc="horizon metrics and curve summaries checked")
    tolerance: Tolerance = param(factory=Tolerance, doc="how far a mean may move")
    expected: dict[str, dict[str, Stat]] = param(factory=dict, doc="strategy -> metric -> ensemble statistics (written by --update)")

    def check(self, path: str) -> None:
        require(bool(self.experiment), f"{path}.experiment" if path else "experiment", self.experiment,
                "allowed is the name of an experiment in experiments/ (`sim experiments` lists them) or a path")
        require(len(self.seeds) >= 2, f"{path}.seeds" if path else "seeds", list(self.seeds), "allowed is at least two seeds (a spread needs two runs)")


@dataclass
class Baseline:
    """A baseline file: its plan, the experiment it checks, and the original text (for diffs)."""

    name: str
    path: Path
    spec: BaselineSpec
    experiment: ExperimentSpec
    text: str
    header: str = ""

    @property
    def strategies(self) -> list[str]:
        return list(self.spec.strategies or self.experiment.strategies)


def baseline_dirs() -> list[Path]:
    """Folders searched for baselines: the project's ``experiments/baselines``, then ``SIM_BASELINE_PATH``."""
    extra = [Path(p).expanduser() for p in os.environ.get("SIM_BASELINE_PATH", "").split(os.pathsep) if p.strip()]
    return [BASELINE_DIR, *extra]


def available_baselines(dirs: Sequence[str | os.PathLike] | None = None) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root in (Path(d) for d in (dirs or baseline_dirs())):
        for path in sorted([*root.glob("*.yaml"), *root.glob("*.yml"), *root.glob("*.json")]):
            found.setdefault(path.stem, path)
    return found


def _read_mapping(path: Path) -> dict:
    from sim.inputs import read_json, read_yaml

    data = read_json(path) if path.suffix == ".json" else read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: allowed is a mapping of baseline settings")
    return dict(data)


def load_baseline(name: str | os.PathLike, dirs: Sequence[str | os.PathLike] | None = None) -> Baseline:
    """A baseline by name (in the baseline folders) or by path, validated, with its experiment."""
    path = Path(name).expanduser()
    if not (path.exists() or path.is_symlink()):
        found = available_baselines(dirs)
        if str(name) not in found:
            raise ConfigError(f"baseline = {excerpt(str(name))}: no such baseline{suggest(str(name), found)}; "
                              f"available: {', '.join(sorted(found)) or 'none'}")
        path = found[str(name)]
    data = _read_mapping(path)
    exp_seed = 0
    if isinstance(data.get("experiment"), str):
        exp_name = data["experiment"]
        local = (path.parent / exp_name) if exp_name.endswith((".yaml", ".yml")) else None
        try:
            _, experiment = load_experiment(str(local) if local is not None and local.is_file() else exp_name)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        exp_seed = experiment.seed
    else:
        experiment = None
    if isinstance(data.get("seeds"), int) and not isinstance(data["seeds"], bool):
        require(data["seeds"] >= 2, f"{path}: seeds", data["seeds"], "allowed is at least two seeds (a spread needs two runs)")
        data["seeds"] = replicate_seeds(exp_seed, data["seeds"])
    try:
        spec = build(BaselineSpec, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    assert experiment is not None  # build() rejects a missing experiment
    for s in spec.strategies:
        require(s in experiment.strategies, f"{path}: strategies", s,
                f"allowed are the strategies of experiment {spec.experiment}: {', '.join(experiment.strategies)}{suggest(s, experiment.strategies)}")
    text = read_text(path)
    header = "".join(line for line in text.splitlines(keepends=True)[:20] if line.startswith("#")) if path.suffix != ".json" else ""
    return Baseline(path.stem, path, spec, experiment, text, header)


# ============================================================================ running a baseline
def curve_summaries(daily: pd.DataFrame) -> dict[str, float]:
    cum = daily["cumulative_users"].to_numpy(dtype=np.float64)
    half = float(np.argmax(cum >= 0.5 * cum[-1])) if cum.size and cum[-1] > 0 else math.nan
    return {"half_users_day": half}


def _check_task(configs: Mapping[str, Any], seed: int) -> tuple[str, int, dict[str, float]]:
    """One run (one configuration, one seed), reduced to its checkable metrics."""
    ((key, _, daily, summary, _),) = run_replicate(configs, 0, seed)
    values = {**horizon_values(summary), **curve_summaries(daily)}
    return key, seed, {m: float(values.get(m, math.nan)) for m in CHECKABLE}


def baseline_configs(b: Baseline, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The resolved configuration of every checked strategy (validated; seeds are set per run)."""
    exp = b.experiment
    spec = replace(exp, strategies={s: exp.strategies[s] for s in b.strategies},
                   overrides=(*exp.overrides, *b.spec.overrides, *overrides))
    try:
        return strategy_configs(spec)
    except ConfigError as exc:
        raise ConfigError(f"{b.path}: {exc}") from None


def run_baselines(baselines: Sequence[Baseline], overrides: Sequence[str] = (), workers: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, pd.DataFrame]:
    """Rerun every baseline's strategies over its seeds: baseline name -> (strategy, replicate, seed, metrics...).

    Every configuration is validated before any run. A configuration that several baselines (or
    strategies) share, such as the default scenario, runs once per seed; each run is one task.
    """
    from sim.config import dump_yaml

    unique: dict[str, Any] = {}  # resolved config text -> config
    uses: dict[tuple[str, str], str] = {}  # (baseline, strategy) -> config text
    for b in baselines:
        for strategy, cfg in baseline_configs(b, overrides).items():
            text = dump_yaml(cfg.with_seed(0))
            unique.setdefault(text, cfg)
            uses[b.name, strategy] = text
    ids = {text: f"c{k}" for k, text in enumerate(unique)}
    wanted = {(ids[uses[b.name, s]], seed) for b in baselines for s in b.strategies for seed in b.spec.seeds}
    tasks = [({cid: unique[text]}, seed) for text, cid in ids.items() for seed in dict.fromkeys(
        seed for b in baselines for seed in b.spec.seeds) if (cid, seed) in wanted]
    found: dict[tuple[str, int], dict[str, float]] = {}
    if progress:
        progress(0, len(tasks))
    for done, (cid, seed, values) in enumerate(_map(_check_task, tasks, workers or default_workers()), start=1):
        found[cid, seed] = values
        if progress:
            progress(done, len(tasks))
    return {b.name: pd.DataFrame([{"strategy": s, "replicate": r, "seed": seed, **found[ids[uses[b.name, s]], seed]}
                                  for s in b.strategies for r, seed in enumerate(b.spec.seeds)]) for b in baselines}


def ensemble(runs: pd.DataFrame, strategies: Sequence[str], metrics: Sequence[str]) -> dict[str, dict[str, Stat]]:
    """Mean, sd and n of each metric over the seeds, per strategy (finite values only)."""
    out: dict[str, dict[str, Stat]] = {}
    for s in strategies:
        group = runs[runs["strategy"] == s]
        out[s] = {}
        for m in metrics:
            x = group[m].to_numpy(dtype=np.float64)
            x = x[np.isfinite(x)]
            mean = float(x.mean()) if x.size else None
            sd = float(x.std(ddof=1)) if x.size >= 2 else (0.0 if x.size else None)
            out[s][m] = Stat(mean, sd, int(x.size))
    return out


# ============================================================================ comparing
def floor_atol(metric: str) -> float:
    """The absolute part of the floor: one day for day-valued metrics, 0.001 for fractions, one unit otherwise."""
    if metric.endswith("_day"):
        return 1.0
    if (metric in METRICS and "%" in METRICS[metric].fmt) or metric == "k_factor":
        return 0.001
    return 1.0


def compare_stats(metric: str, base: Stat, now: Stat, tol: Tolerance) -> dict[str, Any]:
    """One row of the check table: the change, the tolerance and the verdict."""
    row = {"metric": metric, "baseline_mean": base.mean, "baseline_sd": base.sd, "baseline_n": base.n,
           "now_mean": now.mean, "now_sd": now.sd, "now_n": now.n}
    if base.mean is None or now.mean is None:
        same = base.mean is None and now.mean is None
        return {**row, "change": math.nan, "change_pct": math.nan, "tolerance": math.nan, "verdict": "ok" if same else "moved"}
    se = math.sqrt((base.sd or 0.0) ** 2 / max(base.n, 1) + (now.sd or 0.0) ** 2 / max(now.n, 1))
    tolerance = tol.k * se + tol.rtol * abs(base.mean) + floor_atol(metric)
    change = now.mean - base.mean
    pct = change / abs(base.mean) if base.mean else math.nan
    return {**row, "change": change, "change_pct": pct, "tolerance": tolerance,
            "verdict": "ok" if abs(change) <= tolerance else "moved"}


@dataclass
class CheckResult:
    """What ``sim check`` found: one row per baseline, strategy and metric."""

    table: pd.DataFrame  # baseline, strategy, metric, baseline_mean/sd/n, now_mean/sd/n, change, change_pct, tolerance, verdict
    runs: dict[str, pd.DataFrame] = field(default_factory=dict)  # baseline -> one row per strategy and seed
    wall_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool((self.table["verdict"] == "ok").all())

    @property
    def moved(self) -> pd.DataFrame:
        return self.table[self.table["verdict"] != "ok"]

    def text(self, verbose: bool = False) -> str:
        """One line per baseline; the table of what moved (of every check with ``verbose``)."""
        lines = []
        for name, rows in self.table.groupby("baseline", sort=False):
            bad = rows[rows["verdict"] != "ok"]
            n_seeds = int(rows["baseline_n"].max()) if len(rows) else 0
            what = f"{len(rows)} checks, {rows['strategy'].nunique()} strategies x {n_seeds} seeds"
            lines.append(f"{name}: {'ok' if bad.empty else f'{len(bad)} of {len(rows)} checks moved'} ({what})")
            shown = rows if verbose else bad
            if not shown.empty:
                lines += ["  " + ln for ln in format_table(shown).splitlines()]
        return "\n".join(lines)


def _num(x: float | None, metric: str) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if metric in METRICS and "%" in METRICS[metric].fmt:
        return f"{x:.2%}"
    size = abs(x)
    decimals = 0 if size >= 100 or float(x).is_integer() else 1 if size >= 10 else 2 if size >= 1 else 3
    return f"{x:,.{decimals}f}"


def format_table(rows: pd.DataFrame) -> str:
    """The readable table: metric, baseline, now, change, tolerance, verdict."""
    header = ("strategy", "metric", "baseline (mean ± sd)", "now (mean ± sd)", "change", "tolerance", "verdict")
    body = []
    for r in rows.itertuples(index=False):
        m = r.metric
        pct = f" ({r.change_pct:+.1%})" if isinstance(r.change_pct, float) and math.isfinite(r.change_pct) else ""
        sign = "+" if isinstance(r.change, float) and r.change > 0 else ""
        body.append((r.strategy, m, f"{_num(r.baseline_mean, m)} ± {_num(r.baseline_sd, m)}", f"{_num(r.now_mean, m)} ± {_num(r.now_sd, m)}",
                     f"{sign}{_num(r.change, m)}{pct}", f"±{_num(r.tolerance, m)}", "MOVED" if r.verdict != "ok" else "ok"))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    fmt = lambda cells: "  ".join(str(c).ljust(w) if k < 2 else str(c).rjust(w) for k, (c, w) in enumerate(zip(cells, widths))).rstrip()  # noqa: E731
    return "\n".join([fmt(header), *(fmt(b) for b in body)])


def compare_baseline(b: Baseline, runs: pd.DataFrame) -> pd.DataFrame:
    now = ensemble(runs, b.strategies, b.spec.metrics)
    rows = []
    for s in b.strategies:
        if s not in b.spec.expected:
            raise ConfigError(f"{b.path}: expected.{s}: no stored values for this strategy; run `sim check --update {b.name}`")
        for m in b.spec.metrics:
            if m not in b.spec.expected[s]:
                raise ConfigError(f"{b.path}: expected.{s}.{m}: no stored value for this metric; run `sim check --update {b.name}`")
            rows.append({"baseline": b.name, "strategy": s, **compare_stats(m, b.spec.expected[s][m], now[s][m], b.spec.tolerance)})
    return pd.DataFrame(rows)


def _select(names: Sequence[str] | None, dirs: Sequence[str | os.PathLike] | None) -> list[Baseline]:
    if not names:
        names = list(available_baselines(dirs))
        if not names:
            where = ", ".join(str(d) for d in (dirs or baseline_dirs()))
            raise ConfigError(f"no baselines found in {where} (write one, then fill it with `sim check --update NAME`)")
    return [load_baseline(n, dirs) for n in dict.fromkeys(names)]


def run_checks(names: Sequence[str] | None = None, overrides: Sequence[str] = (), dirs: Sequence[str | os.PathLike] | None = None,
               workers: int | None = None, progress: Callable[[int, int], None] | None = None) -> CheckResult:
    """Rerun the baselines ``names`` (default: every baseline) and compare them with what they expect.

    ``overrides`` (``key=value``) apply on top of every baseline's own: a way to ask whether a change
    of settings moves behaviour. ``dirs``: baseline folders (default: :func:`baseline_dirs`).
    """
    t0 = time.perf_counter()
    baselines = _select(names, dirs)
    for b in baselines:
        if not b.spec.expected:
            raise ConfigError(f"{b.path}: no expected values yet; run `sim check --update {b.name}` to record them")
    runs = run_baselines(baselines, overrides, workers, progress)
    table = pd.concat([compare_baseline(b, runs[b.name]) for b in baselines], ignore_index=True)
    return CheckResult(table, runs, time.perf_counter() - t0)


# ============================================================================ updating
def _rounded(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.7g}")


def baseline_text(b: Baseline, expected: Mapping[str, Mapping[str, Stat]]) -> str:
    """The baseline file with a new ``expected`` section (the plan and the leading comments kept)."""
    import json

    import yaml

    data = {k: v for k, v in to_plain(b.spec).items() if k != "expected"}
    if not b.spec.strategies:
        data.pop("strategies")
    data["seeds"] = [int(s) for s in b.spec.seeds]
    data["expected"] = {s: {m: {"mean": _rounded(st.mean), "sd": _rounded(st.sd), "n": st.n} for m, st in ms.items()}
                        for s, ms in expected.items()}
    if b.path.suffix == ".json":
        return json.dumps(data, indent=2) + "\n"
    # Flow style for the leaves: one line per list and per metric ({mean: .., sd: .., n: ..}).
    return b.header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=200, default_flow_style=None)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass
class Update:
    path: Path
    diff: str  # unified diff of the file ('' when unchanged)


def update_baselines(names: Sequence[str] | None = None, dirs: Sequence[str | os.PathLike] | None = None,
                     workers: int | None = None, progress: Callable[[int, int], None] | None = None) -> list[Update]:
    """Rerun the baselines and rewrite their ``expected`` sections. Nothing is written until every
    baseline has run; each file is then replaced atomically (written aside, renamed over)."""
    baselines = _select(names, dirs)
    runs = run_baselines(baselines, (), workers, progress)
    updates = []
    for b in baselines:
        text = baseline_text(b, ensemble(runs[b.name], b.strategies, b.spec.metrics))
        diff = "".join(difflib.unified_diff(b.text.splitlines(keepends=True), text.splitlines(keepends=True),
                                            fromfile=f"{b.path} (before)", tofile=f"{b.path} (now)"))
        updates.append(Update(b.path, diff))
        if diff:
            _write_atomic(b.path, text)
    return updates


__all__ = ["Baseline", "BaselineSpec", "CheckResult", "Stat", "Tolerance", "Update", "available_baselines", "baseline_dirs",
           "load_baseline", "run_checks", "update_baselines"]
