"""Two strategies side by side, for the dashboard: what is on screen turned into strategies for
:func:`sim.compare`, and the comparison turned into what the page shows.

The comparison is the project's own, so the page and ``sim compare`` agree run for run:
:func:`sim.compare` makes the replicates (seeds derived from the on-screen seed, common random
numbers), :mod:`sim.analysis` computes the intervals, paired differences and verdicts, and the
download is the comparison folder ``sim compare`` writes (``report.html``, the frames, the
configurations), zipped. Nothing here computes a statistic of its own: the curves' bands come from
:func:`sim.analysis.stats.band` and the table reads the comparison's ``table`` and ``differences``.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

import sim
from sim.analysis.comparison import METRICS
from sim.analysis.stats import PairedDifference, band, effect_text
from sim.dashboard import knobs as kn
from sim.dashboard.live import zip_folder
from sim.experiment import Comparison

ON_SCREEN = "on-screen settings"
MARKET_KEYS = ("population.size", "horizon")  # what a compared named scenario takes from the screen
#: daily curves drawn per strategy: name -> (daily column, accumulate over days?, title, unit)
CURVES = {
    "users": ("users", False, "Users on the platform (not churned)", "people"),
    "mau": ("mau", False, "Monthly active users", "people"),
    "cumulative_profit": ("profit", True, "Cumulative profit", "RMB"),
}
RETENTION_AGES = 60
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


def strategies_of(cmp: Comparison) -> list[Strategy]:
    """The strategies a comparison ran, each with every override it ran with."""
    return [Strategy(label, spec.scenario, (*cmp.spec.overrides, *spec.overrides)) for label, spec in cmp.spec.strategies.items()]


def compare_strategies(strategies: Sequence[Strategy], replicates: int, seed: int = 0,
                       progress: Callable[[int, int], None] | None = None) -> Comparison:
    """The comparison ``sim.compare`` makes of these strategies (the first is the baseline).

    One worker: the page's server shares the machine with the page's own runs, ``progress`` then
    reports every finished run, and an exception it raises (the page closed, another comparison
    started) stops the comparison after the run under way."""
    return sim.compare([(s.label, s.scenario, s.overrides) for s in strategies], replicates=replicates,
                       seed=seed, workers=1, progress=progress)


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

    return f(mean) if not np.isfinite(low) else f"{f(mean)} [{f(low)}, {f(high)}]"


def summary_rows(cmp: Comparison) -> list[dict[str, str]]:
    """The comparison's table as display strings: each metric's mean [95 % interval] per strategy,
    then each strategy's paired difference from the baseline and in how many replicates it was higher."""
    rows = []
    t = cmp.table.set_index(["strategy", "metric"])
    for m in cmp.spec.metrics:
        meta = METRICS[m]
        row = {"metric": meta.label + (f" ({meta.unit})" if meta.unit else "")}
        for s in cmp.strategies:
            r = t.loc[(s, m)]
            row[s] = _cell(r["mean"], r["ci_low"], r["ci_high"], meta.fmt)
        for _, d in cmp.differences[cmp.differences["metric"] == m].iterrows():
            row[f"{d['strategy']} − {d['baseline']}"] = (f"{effect_text(_difference(d), meta.difference_unit)} · "
                                                         f"higher in {int(d['higher'])} of {int(d['n'])}")
        rows.append(row)
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
