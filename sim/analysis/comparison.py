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

#: the verdicts `sim compare` prints unless `metrics=` chooses, and the objective of a comparison
#: without a decision (the first of these it reports)
VERDICT_METRICS = ("users_end", "users_total", "profit")

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


SPREAD = 0.90  #: the share of replicates' paired differences the spread columns hold (5th to 95th percentile)


def paired_values(horizon: pd.DataFrame, strategy: str, baseline: str, metric: str, by: str = "strategy") -> pd.Series:
    """``strategy``'s value minus ``baseline``'s in each replicate both ran (indexed by replicate)."""
    wide = horizon.pivot(index="replicate", columns=by, values=metric)
    return (wide[strategy] - wide[baseline]).dropna()


def uncertainty_table(horizon: pd.DataFrame, noise: pd.DataFrame, baseline: str, metrics: Sequence[str],
                      level: float = LEVEL) -> pd.DataFrame:
    """Each strategy's paired difference against ``baseline`` with the assumptions drawn (``horizon``)
    and with every assumption at its central value (``noise``: the same seeds, so noise only): the
    mean and interval of each, the spread of the replicates' differences (the middle ``SPREAD`` of
    them) and the share of the variance of a replicate's difference that comes from the assumptions,
    (var_total - var_noise) / var_total, floored at 0 (the two sets have independent estimates of
    their variances, so a small true share can come out below 0)."""
    rows = []
    tail = (1.0 - SPREAD) / 2.0
    for group in horizon["strategy"].unique():
        if group == baseline:
            continue
        for m in metrics:
            row = {"strategy": group, "baseline": baseline, "metric": m, "label": METRICS[m].label}
            for prefix, frame in (("", horizon), ("noise_", noise)):
                d = paired_values(frame, group, baseline, m).to_numpy(np.float64)
                iv = mean_interval(d, level)
                lo, hi = (np.quantile(d, [tail, 1.0 - tail]) if d.size else (np.nan, np.nan))
                row.update({f"{prefix}mean_difference": iv.mean, f"{prefix}ci_low": iv.low, f"{prefix}ci_high": iv.high,
                            f"{prefix}spread_low": float(lo), f"{prefix}spread_high": float(hi), f"{prefix}sd": iv.sd})
            total, only_noise = row["sd"] ** 2, row["noise_sd"] ** 2
            row["assumption_share"] = max(0.0, total - only_noise) / total if total > 0 else np.nan
            rows.append(row)
    return pd.DataFrame(rows)
