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


def readable(value) -> str:
    """A number as people read it: thousands separators, no scientific notation, digits by size
    (36,077 · 16.3 · 2.79 · 0.055); text and flags as they are."""
    if isinstance(value, (bool, str)) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        return html.escape(str(value))
    x = float(value)
    if not math.isfinite(x):
        return "–"
    ax = abs(x)
    if x.is_integer() or ax >= 100:
        return f"{x:,.0f}"
    if ax >= 10:
        return f"{x:,.1f}"
    if ax >= 1:
        return f"{x:,.2f}"
    return f"{x:.4f}".rstrip("0").rstrip(".") if ax >= 1e-4 else "0"


def fmt(value, pattern: str | None = None) -> str:
    """``value`` with ``pattern`` (a format string), or :func:`readable` without one; '–' if missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if pattern is None:
        return readable(value)
    try:
        return pattern.format(value)
    except (ValueError, TypeError):
        return html.escape(str(value))


#: what a payback day of -1 means (the cohort's revenue never covered its acquisition cost)
NEVER_PAID_BACK = "never within the horizon"


def table(df: pd.DataFrame, formats: dict[str, str] | None = None) -> str:
    formats = formats or {}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for _, row in df.iterrows():
        cells = "".join(f"<td>{fmt(v, formats.get(c)) if not isinstance(v, str) else html.escape(v)}</td>" for c, v in row.items())
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
    values = [v if not isinstance(v, list) else ", ".join(map(str, v)) for v in s.values()]
    values = [NEVER_PAID_BACK if k == "payback_day" and isinstance(v, (int, float)) and v < 0 else v for k, v in zip(s, values)]
    metrics = pd.DataFrame({"metric": list(s), "value": values})
    channels = result.channels[result.channels["users"] > 0].copy()
    if "payback_day" in channels:
        channels["payback_day"] = [NEVER_PAID_BACK if v < 0 else "0 (no acquisition cost)" if v == 0 and cost == 0 else readable(v)
                                   for v, cost in zip(channels["payback_day"], channels.get("cost", channels["payback_day"] * 0 + 1))]
    body = (f"<div class='cards'>{cards}</div>"
            f"{figures_html(figures)}"
            f"<h2>Acquisition channels</h2><p>Users, cost per user (CAC), retention, revenue per user by age (LTV, RMB) and payback day by channel.</p>"
            f"{table(channels)}"
            f"{group_buy_section(result.daily)}"
            f"<h2>Horizon metrics</h2>{table(metrics)}"
            f"<details><summary>Resolved configuration (rerun with <code>sim run --config config.yaml</code>)</summary><pre>{html.escape(dump_yaml(cfg))}</pre></details>")
    subtitle = (f"scenario {cfg.scenario} · seed {cfg.seed} · {cfg.population.size:,} people · {cfg.horizon} days · "
                f"mechanisms: {', '.join(cfg.enabled()) or 'none'} · simulated in {s.get('simulate_seconds', 0):.1f} s")
    return page(f"growth-sim run: {cfg.scenario}", subtitle, body)


def group_buy_section(daily: pd.DataFrame) -> str:
    """The run's group-buying diagnostic (empty when no team was opened): what it measured, nothing
    it would need a run without group buying to know."""
    from sim.analysis import group_buy as gb

    if not gb.uses_group_buy(daily):
        return ""
    s = gb.run_summary(daily)
    rows = [("teams opened", s["group_buy_teams_opened"], "{:,.0f}"), ("teams filled", s["group_buy_teams_filled"], "{:,.0f}"),
            ("teams failed (refunded)", s["group_buy_teams_failed"], "{:,.0f}"), ("fill rate (of closed teams)", s["fill_rate"], "{:.1%}"),
            ("team joins", s["group_buy_joins"], "{:,.0f}"),
            ("users who joined through a team link", s["new_group_buy"], "{:,.0f}"),
            ("their share of all new users", s["share_of_new_users"], "{:.1%}"),
            ("team links sent", s["group_buy_links_sent"], "{:,.0f}")]
    if "share_to_non_users" in s:
        rows.append(("share of links to non-users (each one an invitation)", s["share_to_non_users"], "{:.1%}"))
    if "share_to_asked" in s:
        rows.append(("share of links to people already asked to their tolerance", s["share_to_asked"], "{:.1%}"))
    body = "".join(f"<tr><td>{html.escape(k)}</td><td>{fmt(v, f)}</td></tr>" for k, v, f in rows)
    return ("<h2>Group buying</h2><p>Teams, fill rate and where the team links went. A link to a non-user is an invitation: "
            "it counts towards that person's saturation like a referral invitation, so links that do not convert make later "
            "invitations weaker; a link to someone already asked to their tolerance annoys them. What group buying displaced "
            "(referral joins with and without it) needs a run without it: <code>sim compare</code> with a baseline shows it.</p>"
            f"<table><tr><th>measure</th><th>value</th></tr>{body}</table>")


def group_buy_comparison_section(comparison) -> str:
    """For each strategy with group buying, its joins by channel against the baseline's, paired by
    replicate: what group buying brought, what it displaced, the net (empty without group buying)."""
    from sim.analysis import group_buy as gb

    c = comparison
    d = gb.displacement(c.daily, c.baseline)
    if not len(d):
        return ""
    parts = []
    for s in d["strategy"].unique():
        r = gb.run_summary(c.daily[c.daily["strategy"] == s])
        rows = d[(d["strategy"] == s) & ((d["with"] != 0) | (d["without"] != 0))][["channel", "with", "without", "difference", "low", "high"]]
        parts.append(f"<h3>{html.escape(str(s))}</h3><p>{html.escape(gb.verdict(d, s, c.baseline))} Fill rate "
                     f"{fmt(r['fill_rate'], '{:.1%}')} ({fmt(r['group_buy_teams_filled'], '{:,.0f}')} of "
                     f"{fmt(r['group_buy_teams_filled'] + r['group_buy_teams_failed'], '{:,.0f}')} closed teams, mean per replicate); "
                     f"{fmt(r.get('share_to_non_users'), '{:.0%}')} of {fmt(r['group_buy_links_sent'], '{:,.0f}')} team links went to "
                     f"non-users.</p>{table(rows)}")
    return ("<h2>Group buying: brought and displaced</h2><p>Users acquired over the run by channel, mean per replicate with and "
            "without the strategy's group buying (the baseline), and the paired difference with its 95 % interval. Team links "
            "to non-users are invitations: they compete with referral invitations for the same friends, and each one counts "
            "towards the receiver's saturation, so a drop in referral joins is invitations displaced.</p>" + "".join(parts))


# ============================================================================ experiments
EXPERIMENT_CAPTIONS = {
    "comparison_curves": "How each strategy unfolds over the year. Lines are the mean over replicates; the shaded band is the 95 % interval of that mean. Bands that do not overlap mean the strategies really differ; overlapping bands need the paired differences below to decide.",
    "comparison_retention": "How well each strategy keeps the people it brings: the share of a cohort that visits N days after joining, pooled over the cohorts of each run (log scale). Lines are the mean over replicates, bands the 95 % interval of that mean.",
    "comparison_horizon": "Where each strategy ends up at the horizon. Dots are means over replicates, bars their 95 % intervals.",
    "comparison_differences": "How much each strategy changes each metric compared with the baseline, replicate by replicate (the same simulated people and luck for both), in % of the baseline's mean. A bar that does not cross the zero line is a difference the simulation is sure of.",
    "sweep_heatmap": "The mean of a metric (over seeds) for every combination of the first two swept parameters; read across a row to see one parameter's effect at a fixed value of the other.",
}


def _cell(mean: float, low: float, high: float, pattern: str) -> str:
    if not math.isfinite(low):
        return fmt(mean, pattern)
    return f"{fmt(mean, pattern)} <span class='ci'>[{fmt(low, pattern)}, {fmt(high, pattern)}]</span>"


def _matrix(table: pd.DataFrame, groups: list[str], metrics: list[str], by: str) -> str:
    """Metrics as rows, groups as columns, each cell 'mean [low, high]'."""
    from sim.analysis.comparison import METRICS

    head = "<th>metric</th>" + "".join(f"<th>{html.escape(str(g))}</th>" for g in groups)
    rows = []
    runs = int(table["n"].max()) if len(table) else 0
    for m in metrics:
        meta = METRICS[m]
        cells = []
        for g in groups:
            r = table[(table[by] == g) & (table["metric"] == m)].iloc[0]
            some = f" <span class='ci'>({int(r['n'])} of {runs} runs have a value)</span>" if r["n"] < runs else ""
            cells.append(f"<td>{_cell(r['mean'], r['ci_low'], r['ci_high'], meta.fmt)}{some}</td>")
        unit = f" ({meta.unit})" if meta.unit else ""
        rows.append(f"<tr><td>{html.escape(meta.label + unit)}</td>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _experiment_figures(figures: dict[str, Path]) -> str:
    parts = []
    for name, path in figures.items():
        caption = EXPERIMENT_CAPTIONS.get(name, "")
        title = name.replace("comparison_", "").replace("sweep_", "").replace("_", " ").capitalize()
        if name.startswith("sweep_") and name != "sweep_heatmap":
            title = f"Against {name[len('sweep_'):]}"
            caption = ("Each metric at the horizon against this swept parameter: dots are means over seeds, the band (or bar) the 95 % interval "
                       "of that mean (other swept parameters are averaged over, or drawn as separate lines).")
        parts.append(f"<h2>{html.escape(title)}</h2><p>{html.escape(caption)}</p>"
                     f"<img src='plots/{Path(path).name}' alt='{html.escape(name)}'>")
    return "".join(parts)


COMPARISON_CSS = ".ci{color:#777;font-size:.8rem} ul.verdicts li{margin:.3rem 0} .win{color:#1b7f3b} .loss{color:#b42318}"


def comparison_report(comparison, figures: dict[str, Path], experiment_text: str) -> str:
    """The comparison folder's report: the verdicts first, then the numbers, the plots and the method
    (``experiment_text``: the experiment definition, as its ``config.yaml`` holds it)."""
    c = comparison
    cfg = next(iter(c.configs.values()))
    metrics = list(c.spec.metrics)
    items = []
    for s in c.strategies:
        if s == c.baseline:
            continue
        d = c.differences[c.differences["strategy"] == s]
        for _, r in d.iterrows():
            cls = "win" if " beats " in r["verdict"] else "loss" if " falls short of " in r["verdict"] else ""
            items.append(f"<li class='{cls}'>{html.escape(r['verdict'])}</li>")
    verdicts = f"<ul class='verdicts'>{''.join(items)}</ul>" if items else "<p>Only one strategy: nothing to compare with.</p>"
    diffs = c.differences.copy()
    if len(diffs):
        diffs = diffs[["strategy", "label", "mean_difference", "ci_low", "ci_high", "relative", "relative_low", "relative_high", "higher", "n"]]
        diffs.columns = ["strategy", "metric", "difference", "low", "high", "relative", "rel. low", "rel. high", "replicates higher", "replicates"]
    resolved = "".join(f"<details><summary>Resolved configuration of {html.escape(s)}</summary><pre>{html.escape(dump_yaml(cfg_s))}</pre></details>"
                       for s, cfg_s in c.configs.items())
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in getattr(c, "graph_notes", ()))
    body = (f"<style>{COMPARISON_CSS}</style>"
            + (f"<p>The social graph was repaired on loading:</p><ul>{notes}</ul>" if notes else "")
            + f"<h2>The answer</h2><p>Each strategy against the baseline <b>{html.escape(c.baseline)}</b>, metric by metric: "
            f"how many of the {len(c.seeds)} paired replicates it came out ahead in, and the difference in % of the baseline "
            f"with its 95 % interval in brackets. “No clear difference” means the interval includes zero.</p>{verdicts}"
            f"<h2>Horizon metrics</h2><p>Mean over {len(c.seeds)} replicates with the 95 % interval of the mean in brackets.</p>"
            f"{_matrix(c.table, c.strategies, metrics, 'strategy')}"
            f"{group_buy_comparison_section(c)}"
            f"{_experiment_figures(figures)}"
            + (f"<h2>Paired differences</h2><p>Strategy minus baseline, replicate by replicate, then averaged; relative columns are in "
               f"fractions of the baseline's mean.</p>{table(diffs)}" if len(diffs) else "")
            + f"<h2>How this was computed</h2><p>Every strategy ran the same {len(c.seeds)} replicates. Replicate r of every strategy "
            f"used the same seed (derived from base seed {c.spec.seed}), so it saw the same social graph, the same people and the same "
            f"everyday luck (common random numbers); differences are therefore measured within each replicate, which removes the noise "
            f"the strategies share. Intervals are Student-t intervals over replicates. Rerun one replicate on its own with "
            f"<code>sim run scenario=NAME seed=SEED</code> (seeds are in <code>horizon.parquet</code>); rerun the whole comparison with "
            f"<code>sim compare experiment=config.yaml</code> from this folder.</p>"
            f"<details><summary>Experiment definition (config.yaml)</summary><pre>{html.escape(experiment_text)}</pre></details>"
            f"{resolved}")
    subtitle = (f"{len(c.strategies)} strategies · {len(c.seeds)} replicates each · {cfg.population.size:,} people · {cfg.horizon} days · "
                f"baseline {c.baseline} · computed in {c.wall_seconds:.0f} s")
    title = f"growth-sim comparison: {c.name}"
    if c.spec.description:
        subtitle = f"{c.spec.description} — {subtitle}"
    return page(title, subtitle, body)


def sweep_report(sweep, figures: dict[str, Path]) -> str:
    """The sweep folder's report: the grouped table of horizon metrics and the sweep plots."""
    from sim.analysis.comparison import METRICS

    s = sweep
    t = s.table()
    head = "".join(f"<th>{html.escape(c)}</th>" for c in [*s.varied, "runs", *(METRICS[m].label for m in s.metrics)])
    rows = []
    for _, r in t.iterrows():
        cells = [f"<td>{html.escape(str(r[p]))}</td>" for p in s.varied] + [f"<td>{int(r['runs'])}</td>"]
        cells += [f"<td>{_cell(r[m], r[f'{m}_low'], r[f'{m}_high'], METRICS[m].fmt)}</td>" for m in s.metrics]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    rows = "".join(rows)
    seeds = s.horizon["seed"].nunique() if "seed" in s.horizon else 1
    body = (f"<style>{COMPARISON_CSS}</style>"
            f"<h2>Horizon metrics by swept value</h2><p>Mean over the runs of each combination ({seeds} seed(s)) with the 95 % interval "
            f"in brackets. Every run is a folder in <code>runs/</code>; all of them are in <code>sweep.parquet</code> (daily) and "
            f"<code>horizon.parquet</code> (one row per run).</p><table><tr>{head}</tr>{rows}</table>"
            f"{_experiment_figures(figures)}")
    return page(f"growth-sim sweep: {', '.join(s.varied) or 'seeds'}", f"{len(s.horizon)} runs in {s.path}", body)


# ============================================================================ sensitivity and calibration
INDEX_NOTES = {
    "morris": ("Morris elementary effects: <b>mu*</b> is the mean absolute change of the metric when the parameter moves one "
               "step of its range (a quarter of it with four levels), in the metric's own unit; rank by it. <b>sigma</b> large next to "
               "mu* means the effect depends on the other parameters (interactions or a non-linear response). The interval is a "
               "bootstrap 95 % interval of mu*. A parameter whose mu* is small next to the others can be fixed at any value in its range; "
               "intervals that overlap leave the order of those parameters open (raise <code>samples</code>)."),
    "sobol": ("Sobol indices: <b>ST</b> (total) is the share of the metric's variance over the ranges that goes away if the parameter "
              "is fixed, its interactions included; rank by it. <b>S1</b> (first order) is the share it explains on its own; ST well "
              "above S1 means interactions. Intervals are bootstrap 95 % intervals; small negative values are sampling noise around 0. "
              "Intervals as wide as the indices themselves mean too few samples: raise <code>samples</code>."),
}


PLOT_NOTES = {
    "morris": ("The same indices, one panel per metric: mu* (how much the metric moves with the parameter) across, sigma up, "
               "with mu*'s 95 % interval as whiskers. Far right means influential; above the line sigma = mu* means the effect "
               "changes sign or size with the other parameters; near the origin means the parameter hardly matters."),
    "sobol": ("The same indices as bars, one panel per metric, most influential on top: total ST and first-order S1 with their "
              "95 % intervals. A long ST bar over a short S1 bar is a parameter that acts through interactions."),
}


def _params_table(params, best: dict | None = None) -> str:
    head = "<tr><th>parameter</th><th>low</th><th>high</th><th>scale</th>" + ("<th>fitted</th>" if best else "") + "</tr>"
    rows = []
    for key, r in params.items():
        fitted = f"<td><b>{fmt(best[key], '{:.6g}')}</b></td>" if best else ""
        rows.append(f"<tr><td>{html.escape(key)}</td><td>{fmt(r.low, '{:g}')}</td><td>{fmt(r.high, '{:g}')}</td>"
                    f"<td>{'logarithmic' if r.log else 'linear'}</td>{fitted}</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _plain_figures(figures: dict[str, Path], captions: dict[str, str]) -> str:
    return "".join(f"<h2>{html.escape(captions[name][0])}</h2><p>{html.escape(captions[name][1])}</p>"
                   f"<img src='plots/{Path(path).name}' alt='{html.escape(name)}'>" for name, path in figures.items())


def sensitivity_report(sens, figures: dict[str, Path]) -> str:
    """The sensitivity folder's report: the ranking of the parameters for every metric, with the
    method's indices and intervals, the plot, the parameter ranges and the experiment."""
    from sim.analysis.comparison import METRICS

    method, s = sens.method, sens.spec.sensitivity
    by = sens.rank_by
    other = [c for c in sens.index_columns if c not in (by, f"{by}_conf") and not c.endswith("_conf")]
    label = {"mu_star": "mu*", "mu": "mu", "sigma": "sigma", "ST": "ST", "S1": "S1"}
    blocks = []
    for metric, t in sens.indices.groupby("metric", sort=False):
        meta = METRICS[metric]
        head = f"<tr><th>rank</th><th>parameter</th><th>{label[by]} [95 % interval]</th>" + "".join(
            f"<th>{label[c]}{' [95 % interval]' if f'{c}_conf' in t else ''}</th>" for c in other) + "</tr>"
        rows = []
        for _, r in t.sort_values(["rank", "parameter"]).iterrows():
            cells = [f"<td>{int(r['rank'])}</td>", f"<td>{html.escape(r['parameter'])}</td>",
                     f"<td>{_cell(r[by], r[by] - r[f'{by}_conf'], r[by] + r[f'{by}_conf'], None)}</td>"]
            for c in other:
                conf = f"{c}_conf"
                cells.append(f"<td>{_cell(r[c], r[c] - r[conf], r[c] + r[conf], None) if conf in t else fmt(r[c])}</td>")
            rows.append(f"<tr>{''.join(cells)}</tr>")
        unit = f"{meta.unit or 'metric units'} per step" if method == "morris" else "share of variance"
        blocks.append(f"<h3>{html.escape(meta.label)} <span class='ci'>({html.escape(metric)}; {html.escape(unit)})</span></h3>"
                      f"<table>{head}{''.join(rows)}</table>")
    skipped = "".join(f"<li>{html.escape(m)}: {html.escape(why)}</li>" for m, why in sens.skipped.items())
    top = "".join(f"<div class='card'><b>{html.escape(sens.ranking(m)[0].split('.')[-1])}</b><span>most influential on "
                  f"{html.escape(METRICS[m].label)}</span></div>" for m in sens.indices["metric"].unique()[:5])
    name = "Morris screening" if method == "morris" else "Sobol indices"
    body = (f"<style>{COMPARISON_CSS}</style><div class='cards'>{top}</div>"
            f"<h2>Which parameters matter</h2><p>{INDEX_NOTES[method]}</p>{''.join(blocks)}"
            + (f"<p>No indices for:</p><ul>{skipped}</ul>" if skipped else "")
            + _plain_figures(figures, {method: (name, PLOT_NOTES[method])})
            + f"<h2>Parameter ranges</h2><p>Each run draws every parameter from its range (base scenario <code>{html.escape(s.scenario)}</code>"
            f"{', overrides ' + html.escape(' '.join(sens.spec.overrides)) if sens.spec.overrides else ''}); the values of each point are in "
            f"<code>points.parquet</code>, the metrics of every run in <code>horizon.parquet</code>, the indices in "
            f"<code>indices.csv</code> and <code>indices.json</code>.</p>{_params_table(s.params)}"
            f"<details><summary>Base configuration (<code>config.yaml</code>)</summary><pre>{html.escape(dump_yaml(sens.config))}</pre></details>")
    subtitle = f"{sens.label()} · computed in {sens.wall_seconds:.0f} s"
    return page(f"growth-sim sensitivity: {sens.name} ({name})", subtitle, body)


def calibration_report(cal, figures: dict[str, Path]) -> str:
    """The calibration folder's report: the fitted values within their searched ranges, the loss in
    sample and on fresh seeds, how to run the fitted model, how close each target is, the targets the
    model cannot meet together, what each target identifies, and the fit and search plots."""
    c = cal.section
    cards = (f"<div class='cards'><div class='card'><b>{fmt(cal.best_loss, '{:.4g}')}</b><span>{html.escape(c.loss)} loss, best trial "
             f"({c.replicates} seed{'s' if c.replicates > 1 else ''})</span></div><div class='card'><b>{fmt(cal.check_loss, '{:.4g}')}</b>"
             f"<span>loss on {c.check_replicates} fresh seeds</span></div><div class='card'><b>{len(cal.trials)}</b><span>trials</span></div></div>")
    run = html.escape("sim run " + " ".join(cal.overrides()))
    body = (f"<style>{COMPARISON_CSS}</style>{cards}"
            f"<h2>Fitted parameters</h2><p>The best trial of the search (Optuna's seeded TPE over the ranges below); the held-out loss "
            f"reruns it at seeds the search never used, so a held-out loss far above the best one means the fit chased noise.</p>"
            f"{_params_table(c.params, cal.best)}"
            f"<h2>Run the fitted model</h2><pre style='white-space:pre-wrap'>{run}\nsim run --config config.yaml\nSIM_SCENARIO_PATH=&lt;this folder&gt;/scenarios sim run "
            f"scenario={html.escape(cal.scenario_name())}</pre>"
            f"<h2>How close the fit is</h2><p>The fitted model rerun at the fresh seeds against each target, expressed as the target is: "
            f"error of the mean in % of the target, how often the target lies inside the 95 % interval of the mean, and the target's "
            f"own loss at the best trial and at the fresh seeds (<code>fit.csv</code> has every point; every trial, with each target's "
            f"loss, is in <code>trials.csv</code>).</p>{_calibration_targets(cal)}"
            f"{_calibration_diagnostics(cal)}"
            + _plain_figures(figures, {
                "fit": ("Fit", "Each target (dots) against the fitted model rerun at fresh seeds: the mean (line) and the 95 % interval of "
                               "the mean (band), a panel per target."),
                "loss": ("Search", "Left: the loss of every trial and the best so far. Then, per parameter, the values tried, coloured by "
                                   "loss: where the points crowd is where the sampler found good fits; the dashed line is the best value.")})
            + f"<details><summary>The fitted model as a scenario file</summary><pre>{html.escape(cal.scenario_yaml())}</pre></details>")
    subtitle = (f"{c.scenario} · {len(c.params)} parameter{'s' if len(c.params) > 1 else ''} · {len(cal.trials)} trials x "
                f"{c.replicates} seed{'s' if c.replicates > 1 else ''} · computed in {cal.wall_seconds:.0f} s")
    return page(f"growth-sim calibration: {cal.name}", subtitle, body)


def _calibration_targets(cal) -> str:
    """A row per target: what it is, its errors at the fresh seeds and its loss in and out of sample."""
    fit = cal.fit[cal.fit["target"].notna()].copy()
    fit["rel"] = (fit["mean"] - fit["target"]).abs() / fit["target"].abs().where(fit["target"] != 0)
    fit["covered"] = (fit["target"] >= fit["low"]) & (fit["target"] <= fit["high"])
    summary = fit.groupby("name", sort=False).agg(median_rel=("rel", "median"), max_rel=("rel", "max"), covered=("covered", "mean"))
    rows = []
    for t in cal.target_summary():
        r = summary.loc[t["name"]]
        rows.append(f"<tr><td>{html.escape(t['name'])}</td><td>{html.escape(t['expressed'])}</td><td>{html.escape(t['label'])}</td>"
                    f"<td>{t['points']}</td><td>{fmt(t['weight'], '{:g}')}</td><td>{fmt(r['median_rel'], '{:.1%}')}</td><td>{fmt(r['max_rel'], '{:.1%}')}</td>"
                    f"<td>{fmt(r['covered'], '{:.0%}')}</td><td>{fmt(t['best_loss'], '{:.3g}')}</td><td>{fmt(t['check_loss'], '{:.3g}')}</td></tr>")
    return ("<table><tr><th>target</th><th>expressed as</th><th>source</th><th>points</th><th>weight</th><th>median error</th><th>largest error</th>"
            f"<th>targets inside the 95 % band</th><th>loss, best trial</th><th>loss, fresh seeds</th></tr>{''.join(rows)}</table>")


def _calibration_diagnostics(cal) -> str:
    """Which targets conflict (a table of every pair) and which parameters each target identifies
    (a target x parameter table of scores)."""
    from sim.analysis.identification import IDENTIFIES, RESPONDS

    c = cal.section
    unit = "root-mean-square log error" if c.loss == "msle" else "mean relative error"
    out = ""
    if len(cal.targets) > 1:
        rows = "".join(
            f"<tr><td>{html.escape(r['first'])}</td><td>{html.escape(r['second'])}</td><td>{fmt(r['best_first'], '{:.1%}')}</td>"
            f"<td>{fmt(r['best_second'], '{:.1%}')}</td><td>{fmt(r['first_at'], '{:.1%}')}</td><td>{fmt(r['second_at'], '{:.1%}')}</td>"
            f"<td>{fmt(r['gap'], '{:.1%}')}</td><td>{html.escape(r['shared'] or '–')}</td><td>{'<b>conflict</b>' if r['conflict'] else 'no'}</td></tr>"
            for _, r in cal.conflicts.iterrows())
        out += (f"<h2>Targets the model cannot meet together</h2><p><b>{html.escape(cal.conflict_line())}.</b></p><p>For each pair of targets, "
                f"the best error ({unit}) of each alone over the trials, the errors at the trial closest to both bests, and how far that "
                f"trial is from them (the larger excess). A pair conflicts when that distance exceeds {c.conflict_tolerance:.0%} "
                f"(<code>conflict_tolerance</code>) and both losses respond to a common parameter (score at least {RESPONDS} below): "
                f"improving one then worsens the other. Losses that depend on different parameters can always be met together, so a "
                f"gap without a shared parameter only means the search has not tried the combination yet.</p>"
                f"<table><tr><th>target</th><th>and target</th><th>best alone</th><th>best alone</th><th>closest trial</th><th>closest trial</th>"
                f"<th>distance</th><th>shared parameters</th><th>verdict</th></tr>{rows}</table>")
    ident = cal.identification
    head = "".join(f"<th>{html.escape(p)}</th>" for p in ident.columns)
    rows = "".join(f"<tr><td>{html.escape(str(name))}</td>" + "".join(
        f"<td>{'<b>' if v >= IDENTIFIES else ''}{fmt(v, '{:.2f}')}{'</b>' if v >= IDENTIFIES else ''}</td>" for v in row) + "</tr>"
        for name, row in ident.iterrows())
    out += (f"<h2>What each target identifies</h2><p>How much of the variation of each target's loss across the trials goes with "
            f"each parameter alone (omega squared of the loss's ranks between quantile bins of the parameter: 0 means the loss "
            f"ignores it, 1 that it decides the loss; bold from {IDENTIFIES}). A parameter no target scores on is not pinned down by "
            f"these targets: its fitted value is a guess. The trials crowd where the fit is good, so this describes the search, "
            f"not the model everywhere (<code>sim sensitivity</code> does that).</p><table><tr><th>target</th>{head}</tr>{rows}</table>")
    return out