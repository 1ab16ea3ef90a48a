"""Self-contained HTML reports: horizon metrics, channel table, every plot, the resolved config."""

from __future__ import annotations

import html
import math
from pathlib import Path

import pandas as pd

from sim.config import dump_yaml

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1250px;color:#1d1d1f;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem} h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
.sub{color:#666;margin-top:0} table{border-collapse:collapse;font-size:.9rem;margin:.5rem 0}
td,th{padding:.3rem .7rem;border-bottom:1px solid #eee;text-align:right} th{background:#f6f6f6}
td:first-child,th:first-child{text-align:left} img{max-width:100%;border:1px solid #eee;margin:.5rem 0}
.cards{display:flex;flex-wrap:wrap;gap:.8rem}.card{background:#f6f8fa;border-radius:8px;padding:.7rem 1rem;min-width:150px}
.card b{display:block;font-size:1.3rem}.card span{color:#555;font-size:.8rem}
pre{background:#f6f8fa;padding:1rem;overflow:auto;font-size:.8rem} details{margin:1rem 0}
"""

HEADLINE = [
    ("users_total", "users acquired", "{:,.0f}"), ("users_end", "users at horizon", "{:,.0f}"),
    ("mau_end", "MAU at horizon", "{:,.0f}"), ("retention_d1", "day-1 retention", "{:.1%}"),
    ("retention_d30", "day-30 retention", "{:.1%}"), ("gmv", "GMV (RMB)", "{:,.0f}"),
    ("revenue", "revenue (RMB)", "{:,.0f}"), ("profit", "profit (RMB)", "{:,.0f}"),
    ("k_factor", "K-factor", "{:.2f}"), ("cac_blended", "blended CAC (RMB)", "{:,.1f}"),
]

PLOT_CAPTIONS = {
    "growth": "Where users come from. Left: everyone who ever joined, stacked by acquisition channel, with the users still on the platform (black). Right: new users per day; a hump means word of mouth drove growth (an S-shaped adoption curve).",
    "activity": "How many people use the platform. DAU counts visitors per day, WAU and MAU distinct visitors over 7 and 30 days. DAU/MAU is stickiness: the share of monthly users who come on a given day.",
    "retention": "Day-N retention: the share of a cohort that visits on day N after joining (log scale). Steep early loss and flattening curves are typical of apps; curves that sit higher mean a channel brings better users.",
    "cohort_heatmap": "Each row is a week of joiners, each column a week since joining; colour is the mean share visiting per day. Rows that fade faster are worse cohorts.",
    "money": "Money per day (left) and running totals (right). Profit = revenue - incentives - acquisition - fraud losses.",
    "orders": "Left: orders per day by what drove them, credited to the last touch (a discount, a followed recommendation, ...), so part of the credit is not causal; spikes are campaigns, and the dips after them are purchases pulled forward. Right: the Gini coefficient of the day's orders over product categories; recommendations that favour best-sellers push it up.",
    "mechanisms": "Each enabled mechanism's own daily counters (7-day means): what it did, day by day.",
    "viral": "The viral loop: invitations sent and accepted per day, and the K-factor (accepted invitations per new user). K above 1 means each new user brings more than one more.",
}


def fmt(value, pattern: str = "{:,.3g}") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    try:
        return pattern.format(value)
    except (ValueError, TypeError):
        return html.escape(str(value))


def table(df: pd.DataFrame, formats: dict[str, str] | None = None) -> str:
    formats = formats or {}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for _, row in df.iterrows():
        cells = "".join(f"<td>{fmt(v, formats.get(c, '{:,.4g}')) if not isinstance(v, str) else html.escape(v)}</td>" for c, v in row.items())
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def page(title: str, subtitle: str, body: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1><p class='sub'>{html.escape(subtitle)}</p>{body}</body></html>")


def figures_html(figures: dict[str, Path], root: Path | None = None) -> str:
    parts = []
    for name, path in figures.items():
        rel = Path("plots") / Path(path).name if root is None else Path(path).relative_to(root)
        parts.append(f"<h2>{html.escape(name.replace('_', ' ').capitalize())}</h2><p>{html.escape(PLOT_CAPTIONS.get(name, ''))}</p>"
                     f"<img src='{rel.as_posix()}' alt='{html.escape(name)}'>")
    return "".join(parts)


def run_report(result, figures: dict[str, Path]) -> str:
    s, cfg = result.summary, result.config
    cards = "".join(f"<div class='card'><b>{fmt(s.get(k), f)}</b><span>{label}</span></div>" for k, label, f in HEADLINE)
    metrics = pd.DataFrame({"metric": list(s), "value": [v if not isinstance(v, list) else ", ".join(v) for v in s.values()]})
    channels = result.channels[result.channels["users"] > 0]
    body = (f"<div class='cards'>{cards}</div>"
            f"{figures_html(figures)}"
            f"<h2>Acquisition channels</h2><p>Users, cost per user (CAC), retention, revenue per user by age (LTV, RMB) and payback day by channel.</p>"
            f"{table(channels)}"
            f"<h2>Horizon metrics</h2>{table(metrics)}"
            f"<details><summary>Resolved configuration (rerun with <code>sim run --config config.yaml</code>)</summary><pre>{html.escape(dump_yaml(cfg))}</pre></details>")
    subtitle = (f"scenario {cfg.scenario} · seed {cfg.seed} · {cfg.population.size:,} people · {cfg.horizon} days · "
                f"mechanisms: {', '.join(cfg.enabled()) or 'none'} · simulated in {s.get('simulate_seconds', 0):.1f} s")
    return page(f"growth-sim run: {cfg.scenario}", subtitle, body)
