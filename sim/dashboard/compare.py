"""Two strategies side by side, for the dashboard: what is on screen turned into strategies, a
question (``decision=``) and uncertain inputs (``assumptions=``) for :func:`sim.compare`, and the
comparison turned into what the page shows.

The comparison is the project's own, so the page and ``sim compare`` agree run for run:
:func:`sim.compare` makes the replicates (seeds derived from the on-screen seed, common random
numbers, each replicate's draw of the assumptions and the noise-only set), :mod:`sim.analysis`
computes the intervals, paired differences, verdicts, the decision (P(best), P(feasible), cost per
extra unit) and which assumption could flip it, and the download is the comparison folder ``sim
compare`` writes (``report.html``, the frames, the configurations), zipped. Nothing here computes a
statistic of its own: the curves' bands come from :func:`sim.analysis.stats.band`, the tables read
the comparison's ``table``, ``differences``, ``uncertainty``, ``decision`` and ``assumption_effects``
(the last two through :func:`sim.report.assumption_block`, as the comparison report does).
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

import sim
from sim.analysis.comparison import DEFAULT_METRICS, METRICS, paired_values
from sim.analysis.stats import POINTS, PairedDifference, band, effect_text, number_text, percent_text
from sim.dashboard import knobs as kn
from sim.dashboard.live import zip_folder
from sim.experiment import Comparison
from sim.plans import decision_from_text, parse_constraint
from sim.schema import ConfigError

ON_SCREEN = "on-screen settings"
MARKET_KEYS = ("population.size", "horizon")  # what a compared named scenario takes from the screen
#: daily curves drawn per strategy: name -> (daily column, accumulate over days?, title, unit)
CURVES = {
    "users": ("users", False, "Users on the platform (not churned)", "people"),
    "mau": ("mau", False, "Monthly active users", "people"),
    "cumulative_profit": ("profit", True, "Cumulative profit", "RMB"),
}
RETENTION_AGES = 60
NBSP = "\u00a0"  #: inside an interval, so that a narrow table column breaks a cell before its bracket only
#: the verdicts shown above the charts (the table has every metric)
HEADLINE = ("users_total", "mau_end", "retention_d30", "profit")


@dataclass(frozen=True)
class Strategy:
    """A strategy as the comparison runs it: a scenario with overrides of its own, under a label."""

    label: str
    scenario: str
    overrides: tuple[str, ...] = ()

    @property
    def command(self) -> str:
        """The ``sim run`` command of one replicate (add ``seed=`` of the replicate)."""
        return kn.command(self.scenario, self.overrides)


def strategy(choice: str, scenario: str, values: Mapping[str, Any], knobs: Sequence[kn.Knob],
             reference: Callable[[str], Mapping[str, Any]]) -> Strategy:
    """``choice`` as a strategy: the on-screen settings (the chosen scenario with every knob that
    differs from it, but not the seed, which is the comparison's base seed), or a named scenario run
    at the on-screen market size. ``reference(name)`` gives a scenario's own knob values."""
    if choice == ON_SCREEN:
        overrides = kn.overrides(values, reference(scenario), knobs)
        return Strategy(ON_SCREEN, scenario, tuple(o for o in overrides if not o.startswith("seed=")))
    market = [k for k in knobs if k.key in MARKET_KEYS]
    return Strategy(choice, choice, tuple(kn.overrides({k.key: values[k.key] for k in market}, reference(choice), market)))


def distinct(strategies: Sequence[Strategy]) -> list[Strategy]:
    """The strategies with unique labels (a strategy compared with itself: "X (again)")."""
    out: list[Strategy] = []
    for s in strategies:
        while any(o.label == s.label for o in out):
            s = dataclasses.replace(s, label=f"{s.label} (again)")
        out.append(s)
    return out


def strategy_values(choice: str, values: Mapping[str, Any], reference: Callable[[str], Mapping[str, Any]]) -> dict[str, Any]:
    """The knob values ``choice`` runs with (see :func:`strategy`): the screen's, or a named
    scenario's own at the on-screen market size."""
    if choice == ON_SCREEN:
        return dict(values)
    return {**reference(choice), **{k: values[k] for k in MARKET_KEYS if k in values}}


def strategies_of(cmp: Comparison) -> list[Strategy]:
    """The strategies a comparison ran, each with every override it ran with."""
    return [Strategy(label, spec.scenario, (*cmp.spec.overrides, *spec.overrides)) for label, spec in cmp.spec.strategies.items()]


def compare_strategies(strategies: Sequence[Strategy], replicates: int, seed: int = 0,
                       progress: Callable[[int, int], None] | None = None, *,
                       decision: Mapping[str, Any] | None = None, assumptions: Mapping[str, Any] | None = None) -> Comparison:
    """The comparison ``sim.compare`` makes of these strategies (the first is the baseline), with the
    page's question (``decision``, see :func:`decision_of`) and uncertain inputs (``assumptions``,
    see :meth:`Assumption.spec`), reporting the metrics of :func:`comparison_metrics`.

    One worker: the page's server shares the machine with the page's own runs, ``progress`` then
    reports every finished run, and an exception it raises (the page closed, another comparison
    started) stops the comparison after the run under way."""
    return sim.compare([(s.label, s.scenario, s.overrides) for s in strategies], replicates=replicates,
                       seed=seed, workers=1, progress=progress, decision=decision, assumptions=assumptions,
                       metrics=comparison_metrics(decision))


# ------------------------------------------------------------------------------ the question
#: the objective a comparison starts with: users still there at the horizon
OBJECTIVE = "users_end"
#: constraints offered beside a typed one: each against the baseline's same replicate, so each
#: means the same at any market size (what a finance team asks first: no less money than today,
#: once the users built are valued; then without that value; then the cost of a user)
CONSTRAINTS = ("profit_with_terminal >= baseline", "profit >= baseline", "contribution >= baseline",
               "cac_blended <= baseline", "retention_d30 >= baseline")
NO_CONSTRAINT = "none"
#: metrics an objective can be: those with a better direction
OBJECTIVES = tuple(m for m, meta in METRICS.items() if meta.better is not None)


def sense_of(objective: str) -> str:
    """The better direction of a metric as a decision's sense (CAC and payback are minimised)."""
    return "minimise" if METRICS[objective].better == "lower" else "maximise"


def decision_of(sense: str, objective: str, constraints: str) -> dict[str, Any]:
    """The ``decision=`` of :func:`sim.compare` from the page: ``constraints`` is
    ``"profit >= baseline; cac_blended <= 60"`` (or empty, or ``none``). A constraint the project
    refuses raises :class:`ConfigError` with its one-line message."""
    parts = [p.strip() for p in constraints.split(";") if p.strip() and p.strip() != NO_CONSTRAINT]
    decision = decision_from_text("; ".join([f"{sense} {objective}", *parts]))
    for k, text in enumerate(decision["subject_to"]):
        parse_constraint(text, f"decision.subject_to[{k}]")
    return decision


def decision_error(sense: str, objective: str, constraints: str) -> str | None:
    try:
        decision_of(sense, objective, constraints)
    except ConfigError as exc:
        return str(exc)
    return None


def statement() -> list[tuple[str, str]]:
    """(metric, label) of the P&L's lines, top to bottom, as :mod:`sim.economics` orders them:
    GMV, revenue, each cost (contribution after the costs that come before it), profit, the value of
    the users left and profit with it; then the merchants' share of incentives, a memo."""
    from sim.economics import BEFORE_CONTRIBUTION, CATEGORIES, TOTALS

    lines = [("gmv", "GMV")]
    for category in CATEGORIES:
        total = TOTALS[category]
        lines.append((total, METRICS[total].label if category == "revenue" else f"− {METRICS[total].label}"))
        if category == BEFORE_CONTRIBUTION[-1]:
            lines.append(("contribution", "= contribution"))
    lines += [("profit", "= profit"), ("terminal_value", f"+ {METRICS['terminal_value'].label}"),
              ("profit_with_terminal", f"= {METRICS['profit_with_terminal'].label}"),
              ("merchant_funded", f"memo: {METRICS['merchant_funded'].label}")]
    return lines


def comparison_metrics(decision: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """What the page's comparison reports: ``sim compare``'s default metrics, every line of the P&L,
    and the decision's objective and constrained metrics (so each has its interval with and without
    the assumptions)."""
    asked: list[str] = []
    if decision:
        asked.append(decision.get("maximise") or decision.get("minimise"))
        asked += [parse_constraint(t, "decision.subject_to").metric for t in decision.get("subject_to", ())]
    return tuple(dict.fromkeys([*DEFAULT_METRICS, *(m for m, _ in statement()), *asked]))


# ------------------------------------------------------------------------------ assumptions
#: knobs that are not inputs to be uncertain about: the run's own settings
NOT_ASSUMPTIONS = ("seed", "population.size", "horizon")
DISTRIBUTIONS = ("uniform", "triangular")


@dataclass(frozen=True)
class Assumption:
    """An uncertain input as the page edits it: a numeric setting drawn once per replicate from a
    uniform (``low``, ``high``) or triangular (``low``, ``mode``, ``high``) distribution."""

    key: str
    low: float
    high: float
    mode: float
    kind: str = "uniform"

    def spec(self) -> dict[str, list[float]]:
        """The distribution as an experiment's ``assumptions:`` holds it."""
        return {"triangular": [self.low, self.mode, self.high]} if self.kind == "triangular" else {"uniform": [self.low, self.high]}


def assumption_error(row: Assumption) -> str | None:
    """The one-line error ``sim compare`` gives for the row's distribution on its own (low above
    high, a mode outside them), or None; whether the range fits the setting is checked when the
    comparison starts, against the strategies' configurations."""
    from sim.plans import AssumptionSpec

    kind, values = next(iter(row.spec().items()))
    try:
        AssumptionSpec(**{kind: tuple(values)}).check(f"assumptions.{row.key}")
    except ConfigError as exc:
        return str(exc)
    return None


def assumption_specs(rows: Iterable[Assumption]) -> dict[str, dict[str, list[float]]]:
    """``assumptions=`` of :func:`sim.compare` (a key given twice: the last row)."""
    return {a.key: a.spec() for a in rows}


def assumption_around(knob: kn.Knob, value: float) -> Assumption:
    """A first range for ``knob``'s value: half to one and a half times it (a plausible "we do not
    know within a factor of about 1.5" to edit), inside the knob's allowed range; a value of 0 gets
    the span of its slider. Whole-number settings get whole ends."""
    value = float(value)
    low, high = (0.5 * value, 1.5 * value) if value > 0 else (value, (knob.slider(value) or (0, value + 1, 0))[1])
    if knob.lo is not None:
        low = max(low, float(knob.lo))
    if knob.hi is not None:
        high = min(high, float(knob.hi))
    if knob.kind == "int":
        low, high = float(math.floor(low)), float(math.ceil(high))
        if knob.lo_open and knob.lo is not None and low <= knob.lo:
            low = float(knob.lo) + 1
    elif knob.lo_open and knob.lo is not None and low <= knob.lo:
        low = (float(knob.lo) + value) / 2
    return Assumption(knob.key, low, high, min(max(value, low), high))


def assumption_keys(strategies: Sequence[tuple[Strategy, Mapping[str, Any]]], knobs: Sequence[kn.Knob]) -> list[kn.Knob]:
    """The numeric knobs an assumption can be about, given each strategy with its knob values: the
    strategies share the value and none sets it by an override (an assumption would replace what
    tells them apart, and ``sim compare`` refuses it), and its mechanism is on in one of them (the
    setting of a mechanism that is off changes nothing)."""
    set_by = {o.split("=", 1)[0] for s, _ in strategies for o in s.overrides}
    out = []
    for knob in knobs:
        if knob.kind not in ("float", "int") or knob.key in NOT_ASSUMPTIONS or knob.key in set_by:
            continue
        values = [v.get(knob.key) for _, v in strategies]
        if any(v != values[0] for v in values):
            continue
        parts = knob.key.split(".")
        if parts[0] == "mechanisms" and not any(v.get(f"mechanisms.{parts[1]}.enabled") for _, v in strategies):
            continue
        out.append(knob)
    return out


# ------------------------------------------------------------------------------ what the page shows
def _bands(wide: pd.DataFrame, label: str) -> pd.DataFrame:
    mean, lo, hi = band(wide.to_numpy(dtype=np.float64))
    return pd.DataFrame({"strategy": label, "x": wide.columns.to_numpy(), "mean": mean, "lo": lo, "hi": hi})


def curve_bands(cmp: Comparison, curve: str) -> pd.DataFrame:
    """Per strategy and day: the mean of a curve over replicates and its 95 % interval."""
    column, accumulate, _, _ = CURVES[curve]
    rows = []
    for s in cmp.strategies:
        wide = cmp.daily[cmp.daily["strategy"] == s].pivot(index="replicate", columns="day", values=column)
        rows.append(_bands(wide.cumsum(axis=1) if accumulate else wide, s))
    return pd.concat(rows, ignore_index=True)


def retention_bands(cmp: Comparison, max_age: int = RETENTION_AGES) -> pd.DataFrame:
    """Per strategy and age: mean day-N retention over replicates and its 95 % interval."""
    r = cmp.retention[cmp.retention["age"] <= max_age]
    return pd.concat([_bands(r[r["strategy"] == s].pivot(index="replicate", columns="age", values="retention"), s)
                      for s in cmp.strategies], ignore_index=True)


def headline_verdicts(cmp: Comparison, metrics: Iterable[str] = HEADLINE) -> list[str]:
    d = cmp.differences
    return [v for m in metrics for v in d.loc[d["metric"] == m, "verdict"]]


def _difference(row: pd.Series) -> PairedDifference:
    return PairedDifference(row["mean_difference"], row["ci_low"], row["ci_high"], row["relative"], row["relative_low"],
                            row["relative_high"], int(row["higher"]), int(row["lower"]), int(row["n"]))


def _cell(mean: float, low: float, high: float, pattern: str) -> str:
    def f(x: float) -> str:
        return pattern.format(x) if np.isfinite(x) else "–"

    return f(mean) if not np.isfinite(low) else f"{f(mean)} [{f(low)},{NBSP}{f(high)}]"


def interval_text(mean: float, low: float, high: float, points: bool = False) -> str:
    """A difference with its interval, every number signed: ``+1,234 [+800, +1,650]``; a difference
    of shares in points: ``+1.2 [-0.3, +2.6] points`` (a narrow column breaks it before the bracket
    only)."""
    def f(x: float) -> str:
        return number_text(x, POINTS, True).removesuffix(" points") if points else number_text(x, "", True)

    return f"{f(mean)} [{f(low)},{NBSP}{f(high)}]" + (f"{NBSP}points" if points else "")


def differences_of(cmp: Comparison, metric: str, compact: bool = False) -> dict[str, str]:
    """The difference columns of ``metric``'s row: each strategy's paired difference from the
    baseline with its interval (in words, with the relative change and in how many replicates it
    was higher; ``compact``: the numbers only); with assumptions also the same with noise only
    (every assumption at its centre) and the share of the variance of a replicate's difference the
    assumptions bring."""
    meta = METRICS[metric]
    points = meta.difference_unit == POINTS
    row = {}
    noise = cmp.uncertainty.set_index(["strategy", "metric"]) if cmp.uncertainty is not None else None
    for _, d in cmp.differences[cmp.differences["metric"] == metric].iterrows():
        head = f"{d['strategy']} − {d['baseline']}"
        row[head] = (interval_text(d["mean_difference"], d["ci_low"], d["ci_high"], points) if compact else
                     f"{effect_text(_difference(d), meta.difference_unit)} · higher in {int(d['higher'])} of {int(d['n'])}")
        if noise is not None:
            u = noise.loc[(d["strategy"], metric)]
            row[f"{head}, noise only"] = interval_text(u["noise_mean_difference"], u["noise_ci_low"], u["noise_ci_high"], points)
            row["share from assumptions"] = percent_text(u["assumption_share"])
    return row


def summary_rows(cmp: Comparison, metrics: Iterable[str] | None = None) -> list[dict[str, str]]:
    """The comparison's table as display strings: each metric's mean [95 % interval] per strategy,
    then the difference columns of :func:`differences_of`. ``metrics``: the comparison's, but the
    lines of the P&L (:func:`pnl_rows` shows them)."""
    lines = {m for m, _ in statement()}
    metrics = [m for m in cmp.spec.metrics if m not in lines] if metrics is None else list(metrics)
    rows = []
    t = cmp.table.set_index(["strategy", "metric"])
    for m in metrics:
        meta = METRICS[m]
        row = {"metric": meta.label + (f" ({meta.unit})" if meta.unit else "")}
        for s in cmp.strategies:
            r = t.loc[(s, m)]
            row[s] = _cell(r["mean"], r["ci_low"], r["ci_high"], meta.fmt)
        rows.append({**row, **differences_of(cmp, m)})
    return rows


def pnl_rows(cmp: Comparison) -> list[dict[str, str]]:
    """The P&L of each strategy, RMB over the horizon: each line's mean over the replicates with its
    95 % interval, and the difference columns of :func:`differences_of`. A line that is zero in every
    run of every strategy is left out, as in a run's report (no goods cost on a marketplace)."""
    t = cmp.table.set_index(["strategy", "metric"])
    rows = []
    for metric, label in statement():
        if metric not in cmp.spec.metrics or not cmp.horizon[metric].fillna(0).any():
            continue
        row = {"line (RMB)": label}
        for s in cmp.strategies:
            r = t.loc[(s, metric)]
            row[s] = _cell(r["mean"], r["ci_low"], r["ci_high"], "{:,.0f}")
        rows.append({**row, **differences_of(cmp, metric, compact=True)})
    return rows


# ------------------------------------------------------------------------------ the decision
def decision_items(cmp: Comparison) -> list[tuple[str, str, str]]:
    """(name, label, value) of each strategy's decision figures but the baseline's: P(best) (and with
    every assumption at its centre), P(feasible), the objective's paired difference, the money per
    extra unit. Empty without a decision."""
    d = cmp.decision
    if d is None:
        return []
    q = d.question
    unit = POINTS if METRICS[q.objective].difference_unit == POINTS else ""
    items = []
    for r in d.table.to_dict("records"):
        if r["strategy"] == d.baseline:
            continue
        s = r["strategy"]
        best = percent_text(r["p_best"]) + (f" ({percent_text(r['p_best_noise'])} noise only)" if "p_best_noise" in r else "")
        effect = (f"{number_text(r['mean_difference'], unit, True)} [{number_text(r['ci_low'], unit, True)}, "
                  f"{number_text(r['ci_high'], unit, True)}]")
        items += [("p-best", f"P(best) of {s}", best), ("p-feasible", f"P(feasible) of {s}", percent_text(r["p_feasible"])),
                  ("objective", f"{q.objective}: {s} − {d.baseline}", effect), ("cost", "cost per extra unit", r["money_text"])]
    return items


def objective_replicates(cmp: Comparison) -> list[dict[str, Any]]:
    """For the chart of the objective's difference per replicate: for each strategy but the
    baseline, and each set (with the assumptions drawn; with noise only when there are
    assumptions), the replicates' paired differences and the mean with its 95 % interval (from the
    comparison's ``differences`` and ``uncertainty``)."""
    metric = cmp.decision.question.objective if cmp.decision is not None else OBJECTIVE
    out = []
    for s in cmp.strategies:
        if s == cmp.baseline:
            continue
        if cmp.uncertainty is None:
            d = cmp.differences.set_index(["strategy", "metric"]).loc[(s, metric)]
            sets = [("replicates", cmp.horizon, (d["mean_difference"], d["ci_low"], d["ci_high"]))]
        else:
            u = cmp.uncertainty.set_index(["strategy", "metric"]).loc[(s, metric)]
            sets = [("with assumptions", cmp.horizon, (u["mean_difference"], u["ci_low"], u["ci_high"])),
                    ("noise only", cmp.noise, (u["noise_mean_difference"], u["noise_ci_low"], u["noise_ci_high"]))]
        for name, frame, (mean, low, high) in sets:
            out.append({"strategy": s, "set": name, "values": paired_values(frame, s, cmp.baseline, metric).to_numpy(),
                        "mean": mean, "low": low, "high": high})
    return out


def flip_rows(cmp: Comparison) -> list[dict[str, str]]:
    """Which assumption could flip the decision, the strongest first (the comparison report's
    :func:`sim.report.assumption_block`): its distribution and the values drawn, the rank
    correlation of its draw with each strategy's difference on the objective, that difference in the
    lower and upper halves of the draws, the recommendation in each half, and whether it flips."""
    from sim.report import assumption_block, readable

    block = assumption_block(cmp)
    if block is None:
        return []
    drawn = {d["key"]: d for d in block["drawn"]}
    rows = []
    for e in block["effects"]:
        a = drawn[e["assumption"]]
        rows.append({"assumption": e["assumption"], "distribution": a["distribution"], "drawn": a["seen"],
                     "Spearman": f"{e['spearman']:+.2f}" if math.isfinite(e["spearman"]) else "–",
                     f"{e['strategy']} − {e['baseline']}, lower half": readable(e["mean_difference_low"]),
                     "upper half": readable(e["mean_difference_high"]),
                     "recommended (lower / upper half)": f"{e['recommended_low'] or 'none'} / {e['recommended_high'] or 'none'}",
                     "flips": "yes" if e["flips"] else ""})
    return rows


def table_html(rows: list[dict[str, str]]) -> str:
    """The rows of :func:`summary_rows` as an HTML table (escaped by the template)."""
    from sim.report import macro

    return macro("table", pd.DataFrame(rows), css_class="cmp")


def comparison_zip(cmp: Comparison) -> tuple[str, bytes]:
    """The comparison folder ``sim compare`` writes (report, frames, plots, configurations), zipped."""
    with tempfile.TemporaryDirectory(prefix="sim-dash-") as tmp:
        path = dataclasses.replace(cmp).save(tmp, plots=True)  # a copy: ``cmp.path`` would name a deleted folder
        return f"{path.name}.zip", zip_folder(path)
