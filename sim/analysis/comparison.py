"""What the runs of an experiment mean, as tidy frames: horizon metrics per strategy with intervals,
paired differences against a baseline with a verdict in words, and grouped means over a sweep.

The input is always a *horizon frame*: one row per run, a column naming the group (``strategy``),
``replicate`` (the pairing key: replicate r of every strategy ran with the same seed) and one column
per horizon metric. Which runs were made, and how, is ``sim.experiment``'s business, not this one's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.analysis.stats import LEVEL, POINTS, mean_interval, paired_difference, verdict


@dataclass(frozen=True)
class Metric:
    label: str
    unit: str = ""
    better: str | None = "higher"  # "higher", "lower" or None (neither good nor bad in itself)
    fmt: str = "{:,.0f}"

    @property
    def difference_unit(self) -> str:
        """The unit of a difference: percentage points for a share shown in %, else the metric's."""
        return POINTS if self.fmt.endswith("%}") else self.unit


#: Horizon metrics an experiment can report (keys of a run's summary.json, plus ``costs``).
METRICS: dict[str, Metric] = {
    "users_total": Metric("users acquired", "people"),
    "users_end": Metric("users at the horizon", "people"),
    "mau_end": Metric("MAU at the horizon", "people"),
    "dau_end": Metric("DAU at the horizon", "people"),
    "retention_d1": Metric("day-1 retention", "", "higher", "{:.1%}"),
    "retention_d7": Metric("day-7 retention", "", "higher", "{:.1%}"),
    "retention_d30": Metric("day-30 retention", "", "higher", "{:.1%}"),
    "orders": Metric("orders", "orders"),
    "gmv": Metric("GMV", "RMB"),
    "revenue": Metric("revenue", "RMB"),
    "goods_cost": Metric("cost of first-party goods", "RMB", None),
    "variable_cost": Metric("payment and fulfilment", "RMB", None),
    "incentive_cost": Metric("incentive cost", "RMB", None),
    "merchant_funded": Metric("incentives merchants funded", "RMB", None),
    "fraud_loss": Metric("fraud losses", "RMB", "lower"),
    "contribution": Metric("contribution", "RMB"),
    "acquisition_cost": Metric("acquisition cost", "RMB", None),
    "operating_cost": Metric("fixed operating cost", "RMB", None),
    "costs": Metric("total costs", "RMB", None),
    "profit": Metric("profit", "RMB"),  # operating profit (sim.economics)
    "terminal_value": Metric("value of the users left", "RMB"),
    "profit_with_terminal": Metric("profit with terminal value", "RMB"),
    "cac_blended": Metric("CAC (blended)", "RMB per user", "lower", "{:,.2f}"),
    "ltv_90": Metric("LTV at 90 days", "RMB per user", "higher", "{:,.2f}"),
    "ltv_180": Metric("LTV at 180 days", "RMB per user", "higher", "{:,.2f}"),
    "payback_day": Metric("payback day", "days", "lower", "{:,.0f}"),
    "k_factor": Metric("K-factor", "", "higher", "{:.3f}"),
    "invites_accepted": Metric("invitations accepted", "invitations"),
}

DEFAULT_METRICS = ("users_total", "users_end", "mau_end", "retention_d1", "retention_d7", "retention_d30", "gmv", "revenue",
                   "incentive_cost", "acquisition_cost", "costs", "profit", "cac_blended", "ltv_180", "payback_day")


def horizon_values(summary: Mapping) -> dict[str, float]:
    """The numeric horizon metrics of one run's summary (``payback_day`` -1, 'never', becomes nan)."""
    out = {}
    for key, value in summary.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, type(None))):
            continue
        out[key] = float("nan") if value is None else value
    costs = [summary.get(k) or 0.0 for k in ("goods_cost", "variable_cost", "incentive_cost", "fraud_loss", "acquisition_cost",
                                             "operating_cost")]
    out["costs"] = float(sum(costs))
    if out.get("payback_day", 0) is not None and out.get("payback_day", 0) < 0:
        out["payback_day"] = float("nan")
    return out


def horizon_table(horizon: pd.DataFrame, metrics: Sequence[str], by: str = "strategy", level: float = LEVEL) -> pd.DataFrame:
    """Per group and metric: mean, t interval, standard deviation and number of runs with a value."""
    rows = []
    for group, runs in horizon.groupby(by, sort=False):
        for m in metrics:
            iv = mean_interval(runs[m].to_numpy(dtype=np.float64), level)
            rows.append({by: group, "metric": m, "label": METRICS[m].label, "mean": iv.mean,
                         "ci_low": iv.low, "ci_high": iv.high, "sd": iv.sd, "n": iv.n})
    return pd.DataFrame(rows)


def difference_table(horizon: pd.DataFrame, baseline: str, metrics: Sequence[str], by: str = "strategy",
                     level: float = LEVEL) -> pd.DataFrame:
    """Paired differences of every group against ``baseline``, matched on ``replicate``."""
    base = horizon[horizon[by] == baseline].set_index("replicate")
    rows = []
    for group, runs in horizon.groupby(by, sort=False):
        if group == baseline:
            continue
        runs = runs.set_index("replicate")
        common = runs.index.intersection(base.index)
        for m in metrics:
            meta = METRICS[m]
            d = paired_difference(runs.loc[common, m].to_numpy(np.float64), base.loc[common, m].to_numpy(np.float64), level)
            rows.append({by: group, "baseline": baseline, "metric": m, "label": meta.label,
                         "mean_difference": d.mean, "ci_low": d.low, "ci_high": d.high,
                         "relative": d.relative, "relative_low": d.relative_low, "relative_high": d.relative_high,
                         "higher": d.higher, "lower": d.lower, "n": d.n,
                         "verdict": verdict(str(group), baseline, meta.label, d, meta.better, meta.difference_unit)})
    return pd.DataFrame(rows)


def grouped_table(horizon: pd.DataFrame, params: Sequence[str], metrics: Sequence[str], level: float = LEVEL) -> pd.DataFrame:
    """Mean and interval of each metric for each combination of ``params`` (over the other columns,
    typically seeds)."""
    rows = []
    groups = horizon.groupby(list(params), sort=True, dropna=False) if params else [((), horizon)]
    for key, runs in groups:
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(params, key))
        row["runs"] = len(runs)
        for m in metrics:
            iv = mean_interval(runs[m].to_numpy(dtype=np.float64), level)
            row[m], row[f"{m}_low"], row[f"{m}_high"] = iv.mean, iv.low, iv.high
        rows.append(row)
    return pd.DataFrame(rows)
