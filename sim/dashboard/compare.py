"""Two strategies side by side over a few replicates, for the dashboard.

Each strategy runs the same replicate seeds (``seed``, ``seed + 1``, ...), so the graph, the people
and the base randomness are shared between them (common random numbers) and their differences are
paired. Curves get a band: the 95 % interval of the mean over replicates (Student t). Horizon
metrics get a mean with its interval, and the paired difference of the second strategy against the
first with its interval and how many replicates it wins.

This is the dashboard's own small comparison; the frames are named like those of ``sim.compare``
(``table``, ``differences``, ``daily``) so that it can be swapped for it.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from sim.config import SimConfig, compose, dump_yaml

#: horizon metrics compared (summary keys), with a label and a display format
METRICS = {
    "users_total": ("users acquired", "{:,.0f}"),
    "users_end": ("users at horizon", "{:,.0f}"),
    "mau_end": ("MAU at horizon", "{:,.0f}"),
    "dau_mau_end": ("DAU/MAU at horizon", "{:.1%}"),
    "retention_d1": ("day-1 retention", "{:.1%}"),
    "retention_d7": ("day-7 retention", "{:.1%}"),
    "retention_d30": ("day-30 retention", "{:.1%}"),
    "gmv": ("GMV (RMB)", "{:,.0f}"),
    "revenue": ("revenue (RMB)", "{:,.0f}"),
    "incentive_cost": ("incentive cost (RMB)", "{:,.0f}"),
    "acquisition_cost": ("acquisition cost (RMB)", "{:,.0f}"),
    "profit": ("profit (RMB)", "{:,.0f}"),
    "cac_blended": ("blended CAC (RMB per user)", "{:,.2f}"),
}
#: daily curves compared: column -> (label, unit)
CURVES = {
    "users": ("Users on the platform (not churned)", "people"),
    "mau": ("Monthly active users", "people"),
    "dau_mau": ("Stickiness DAU/MAU", "fraction"),
    "cumulative_profit": ("Cumulative profit", "RMB"),
}
RETENTION_AGES = 60


@dataclass(frozen=True)
class Strategy:
    label: str
    scenario: str
    overrides: tuple[str, ...] = ()


@dataclass
class PairComparison:
    strategies: list[Strategy]
    configs: dict[str, SimConfig]  # label -> config of replicate 0
    seeds: list[int]
    daily: pd.DataFrame  # strategy, replicate, day, daily columns (+ dau_mau, cumulative_profit)
    retention: pd.DataFrame  # strategy, replicate, age, retention
    horizon: pd.DataFrame  # strategy, replicate, horizon metrics
    table: pd.DataFrame  # strategy, metric, mean, lo, hi
    differences: pd.DataFrame  # metric, baseline, strategy, mean, lo, hi, relative, wins, replicates

    @property
    def baseline(self) -> str:
        return self.strategies[0].label


def interval(x: np.ndarray, axis: int = 0, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and the ``level`` interval of the mean (Student t) along ``axis``; NaN bounds for n < 2."""
    x = np.asarray(x, dtype=float)
    n = x.shape[axis]
    mean = np.nanmean(x, axis=axis)
    if n < 2:
        nan = np.full_like(mean, np.nan)
        return mean, nan, nan
    half = stats.t.ppf(0.5 + level / 2, n - 1) * np.nanstd(x, axis=axis, ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


def _curves(daily: pd.DataFrame) -> pd.DataFrame:
    out = daily.copy()
    out["dau_mau"] = np.where(out["mau"] > 0, out["dau"] / out["mau"].where(out["mau"] > 0, 1), 0.0)
    out["cumulative_profit"] = out["profit"].cumsum()
    return out


def _retention(cohorts: pd.DataFrame) -> pd.Series:
    from sim.plots import retention_by

    return retention_by(cohorts, "all", max_age=RETENTION_AGES)


def compare_pair(strategies: Sequence[Strategy], replicates: int = 4, seed: int = 0,
                 progress: Callable[[int, int], None] | None = None,
                 should_stop: Callable[[], bool] = lambda: False) -> PairComparison | None:
    """Run every strategy on seeds ``seed .. seed + replicates - 1``; None if stopped part way."""
    import sim

    seeds = [seed + r for r in range(replicates)]
    configs = {s.label: [compose(s.scenario, list(s.overrides), seed=sd) for sd in seeds] for s in strategies}
    daily, retention, horizon = [], [], []
    total, done = len(strategies) * replicates, 0
    for r, sd in enumerate(seeds):  # replicate-major: a stopped comparison has complete pairs so far
        for s in strategies:
            if should_stop():
                return None
            result = sim.simulate(configs[s.label][r])
            daily.append(_curves(result.daily).assign(strategy=s.label, replicate=r))
            ret = _retention(result.cohorts)
            retention.append(pd.DataFrame({"strategy": s.label, "replicate": r, "age": ret.index, "retention": ret.to_numpy()}))
            horizon.append({"strategy": s.label, "replicate": r, "seed": sd, **{k: result.summary.get(k) for k in METRICS}})
            done += 1
            if progress is not None:
                progress(done, total)
    daily_df = pd.concat(daily, ignore_index=True)
    daily_df = daily_df[["strategy", "replicate", *[c for c in daily_df.columns if c not in ("strategy", "replicate")]]]
    horizon_df = pd.DataFrame(horizon).astype({k: float for k in METRICS})
    labels = [s.label for s in strategies]
    return PairComparison(list(strategies), {k: v[0] for k, v in configs.items()}, seeds, daily_df,
                          pd.concat(retention, ignore_index=True), horizon_df,
                          metric_table(horizon_df, labels), paired_differences(horizon_df, labels))


def metric_table(horizon: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    rows = []
    for label in labels:
        h = horizon[horizon["strategy"] == label]
        for metric in METRICS:
            mean, lo, hi = interval(h[metric].to_numpy())
            rows.append({"strategy": label, "metric": metric, "mean": float(mean), "lo": float(lo), "hi": float(hi)})
    return pd.DataFrame(rows)


def paired_differences(horizon: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """Each strategy minus the first, replicate by replicate (the same seeds), with intervals."""
    base = horizon[horizon["strategy"] == labels[0]].sort_values("replicate")
    rows = []
    for label in labels[1:]:
        other = horizon[horizon["strategy"] == label].sort_values("replicate")
        for metric in METRICS:
            a, b = base[metric].to_numpy(), other[metric].to_numpy()
            d = b - a
            mean, lo, hi = interval(d)
            ref = float(np.nanmean(a))
            rows.append({"metric": metric, "baseline": labels[0], "strategy": label, "mean": float(mean),
                         "lo": float(lo), "hi": float(hi), "relative": float(mean) / abs(ref) if ref else float("nan"),
                         "wins": int(np.sum(d > 0)), "replicates": int(np.sum(np.isfinite(d)))})
    return pd.DataFrame(rows)


def bands(cmp: PairComparison, column: str) -> pd.DataFrame:
    """Per strategy and day: mean and 95 % interval over replicates of a daily column."""
    rows = []
    for label in [s.label for s in cmp.strategies]:
        wide = cmp.daily[cmp.daily["strategy"] == label].pivot(index="day", columns="replicate", values=column)
        mean, lo, hi = interval(wide.to_numpy(), axis=1)
        rows.append(pd.DataFrame({"strategy": label, "x": wide.index, "mean": mean, "lo": lo, "hi": hi}))
    return pd.concat(rows, ignore_index=True)


def retention_bands(cmp: PairComparison) -> pd.DataFrame:
    rows = []
    for label in [s.label for s in cmp.strategies]:
        wide = cmp.retention[cmp.retention["strategy"] == label].pivot(index="age", columns="replicate", values="retention")
        mean, lo, hi = interval(wide.to_numpy(), axis=1)
        rows.append(pd.DataFrame({"strategy": label, "x": wide.index, "mean": mean, "lo": lo, "hi": hi}))
    return pd.concat(rows, ignore_index=True)


def fmt(value: float, pattern: str) -> str:
    return "–" if value is None or not np.isfinite(value) else pattern.format(value)


def verdict(row: pd.Series) -> str:
    """One plain sentence about a paired difference, e.g. 'higher in 4 of 4 replicates: +12 % [8 %, 16 %]'."""
    label, pattern = METRICS[row["metric"]]
    if not np.isfinite(row["mean"]):
        return f"{label}: not defined"
    word = "higher" if row["mean"] > 0 else "lower" if row["mean"] < 0 else "the same"
    rel = f"{row['relative']:+.1%}" if np.isfinite(row["relative"]) else ""
    sign = "+" if row["mean"] > 0 else ""
    return (f"{row['strategy']} vs {row['baseline']}: {label} {word} — {sign}{fmt(row['mean'], pattern)} "
            f"[{fmt(row['lo'], pattern)}, {fmt(row['hi'], pattern)}] {rel}; higher in {row['wins']} of {row['replicates']} replicates")


def summary_rows(cmp: PairComparison) -> list[dict[str, str]]:
    """The horizon table as display strings: metric, each strategy's mean [interval], difference."""
    labels = [s.label for s in cmp.strategies]
    rows = []
    for metric, (label, pattern) in METRICS.items():
        row = {"metric": label}
        for s in labels:
            t = cmp.table[(cmp.table["strategy"] == s) & (cmp.table["metric"] == metric)].iloc[0]
            row[s] = f"{fmt(t['mean'], pattern)} [{fmt(t['lo'], pattern)}, {fmt(t['hi'], pattern)}]"
        for _, d in cmp.differences[cmp.differences["metric"] == metric].iterrows():
            sign = "+" if d["mean"] > 0 else ""
            rel = f" ({d['relative']:+.1%})" if np.isfinite(d["relative"]) else ""
            row[f"{d['strategy']} − {d['baseline']}"] = (f"{sign}{fmt(d['mean'], pattern)}{rel} [{fmt(d['lo'], pattern)}, "
                                                         f"{fmt(d['hi'], pattern)}] · {d['wins']}/{d['replicates']}")
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------- the report
def _figure_png(cmp: PairComparison) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim.plots import _style

    colours = ["#1f5fa8", "#e07a1f", "#2a9d8f", "#9d0208"]
    fig, grid = plt.subplots(2, 3, figsize=(15, 8))
    axes = grid.ravel()
    axes[-1].axis("off")
    panels = [(c, *CURVES[c]) for c in CURVES] + [("retention", "Day-N retention", "share of cohort (log scale)")]
    for ax, (column, title, unit) in zip(axes, panels):
        data = retention_bands(cmp) if column == "retention" else bands(cmp, column)
        if column == "retention":
            data = data[data["x"] >= 1]
        for colour, s in zip(colours, cmp.strategies):
            d = data[data["strategy"] == s.label]
            ax.plot(d["x"], d["mean"], color=colour, lw=1.6, label=s.label)
            ax.fill_between(d["x"], d["lo"], d["hi"], color=colour, alpha=0.2, lw=0)
        _style(ax, title, unit, "days since joining" if column == "retention" else "day")
        if column == "retention":
            ax.set_yscale("log")
    axes[0].legend(frameon=False, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def report_html(cmp: PairComparison) -> str:
    """A self-contained HTML report of the comparison (tables, banded curves, configurations)."""
    from sim.report import page, table

    labels = [s.label for s in cmp.strategies]
    strategies = "".join(f"<li><b>{html.escape(s.label)}</b>: <code>{html.escape(run_command(s))}</code></li>" for s in cmp.strategies)
    verdicts = "".join(f"<li>{html.escape(verdict(r))}</li>" for _, r in cmp.differences.iterrows()
                       if r["metric"] in ("users_end", "mau_end", "retention_d30", "profit"))
    png = base64.b64encode(_figure_png(cmp)).decode()
    configs = "".join(f"<details><summary>Resolved configuration of {html.escape(k)}</summary><pre>{html.escape(dump_yaml(c))}</pre></details>"
                      for k, c in cmp.configs.items())
    body = (f"<h2>Strategies</h2><ul>{strategies}</ul><p>Replicates use seeds {cmp.seeds[0]}–{cmp.seeds[-1]} for every "
            f"strategy (common random numbers), so differences are paired. Intervals are 95 % intervals of the mean over "
            f"{len(cmp.seeds)} replicates.</p><h2>Verdicts</h2><ul>{verdicts}</ul>"
            f"<h2>Curves</h2><p>Mean over replicates with its 95 % interval (band).</p><img src='data:image/png;base64,{png}' alt='curves'>"
            f"<h2>Horizon metrics</h2>{table(pd.DataFrame(summary_rows(cmp)))}{configs}")
    cfg = cmp.configs[labels[0]]
    subtitle = (f"{' vs '.join(labels)} · {len(cmp.seeds)} replicates · {cfg.population.size:,} people · {cfg.horizon} days")
    return page("growth-sim comparison", subtitle, body)


def run_command(strategy: Strategy) -> str:
    from sim.dashboard.knobs import command

    return command(strategy.scenario, strategy.overrides)


def comparison_zip(cmp: PairComparison) -> tuple[str, bytes]:
    """The comparison folder as a zip: frames, configurations and report.html."""
    name = "comparison_" + "_vs_".join("".join(ch if ch.isalnum() else "-" for ch in s.label) for s in cmp.strategies)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for frame, df in (("daily", cmp.daily), ("horizon", cmp.horizon), ("differences", cmp.differences),
                          ("table", cmp.table), ("retention", cmp.retention)):
            data = io.BytesIO()
            df.to_parquet(data, index=False)
            zf.writestr(f"{name}/{frame}.parquet", data.getvalue())
        for label, cfg in cmp.configs.items():
            zf.writestr(f"{name}/config_{''.join(ch if ch.isalnum() else '-' for ch in label)}.yaml", dump_yaml(cfg))
        zf.writestr(f"{name}/strategies.json", json.dumps([{"label": s.label, "scenario": s.scenario, "overrides": list(s.overrides),
                                                            "command": run_command(s)} for s in cmp.strategies], indent=2))
        zf.writestr(f"{name}/report.html", report_html(cmp))
    return f"{name}.zip", buffer.getvalue()
