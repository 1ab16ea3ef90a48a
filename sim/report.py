"""Self-contained HTML reports of run, comparison, sweep, sensitivity and calibration folders.

This module computes what a page says (tables as data frames or rows, captions, notes); the pages
themselves are Jinja2 templates in ``sim/templates/`` (``base.html.j2`` holds the style sheet and the
title, ``macros.html.j2`` the tables, intervals and figure blocks). Templates escape every value
(``autoescape``), so no text is escaped here, and a name missing from a page's data is an error
(``StrictUndefined``), not a blank. Jinja2 is imported on the first page rendered, so ``import sim``
does not pay for it.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from sim.config import dump_yaml

TEMPLATES = Path(__file__).with_name("templates")

HEADLINE = [
    ("users_total", "users acquired", "{:,.0f}"), ("users_end", "users at horizon", "{:,.0f}"),
    ("mau_end", "MAU at horizon", "{:,.0f}"), ("retention_d1", "day-1 retention", "{:.1%}"),
    ("retention_d30", "day-30 retention", "{:.1%}"), ("gmv", "GMV (RMB)", "{:,.0f}"),
    ("revenue", "revenue (RMB)", "{:,.0f}"), ("profit", "profit (RMB)", "{:,.0f}"),
    ("k_factor", "K-factor", "{:.2f}"), ("cac_blended", "blended CAC (RMB)", "{:,.1f}"),
]

#: the headline cards of a classic diffusion run (:func:`sim.diffusion.adoption_only`): adoption alone
ADOPTION_HEADLINE = [
    ("users_total", "adopters", "{:,.0f}"), ("adoption_share", "adopted share of the graph", "{:.1%}"),
    ("peak_new_users_day", "day the 7-day mean of new adopters peaks", "{:,.0f}"),
]
#: what a classic diffusion run's horizon-metrics table keeps: adoption and the facts of the run
ADOPTION_SUMMARY = ("days", "population", "users_total", "adoption_share", "peak_new_users_day", "scenario", "seed", "version",
                    "git_revision", "build_seconds", "simulate_seconds", "wall_seconds", "mechanisms", "graph_notes", "inputs")

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
        return str(value)
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
    """``value`` with ``pattern`` (a format string), or :func:`readable` without one; '–' if missing;
    text as it is."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if pattern is None or isinstance(value, str):
        return readable(value)
    try:
        return pattern.format(value)
    except (ValueError, TypeError):
        return str(value)


def _finite(value) -> bool:
    try:
        return math.isfinite(value)
    except TypeError:
        return False


@functools.cache
def environment():
    """The one Jinja2 environment of every report: templates from ``sim/templates``, every value
    escaped, a missing value an error, the project's number formats as filters (``fmt``, ``readable``)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(fmt=fmt, readable=readable)
    env.tests["finite"] = _finite
    return env


def render(template: str, **context) -> str:
    """The page (or piece of a page) ``template`` filled with ``context``."""
    return environment().get_template(template).render(**context)


def macro(name: str, *args, **kwargs) -> str:
    """One macro of ``macros.html.j2`` rendered on its own (a table for the dashboard, say)."""
    return str(getattr(environment().get_template("macros.html.j2").module, name)(*args, **kwargs))


class Figure(NamedTuple):
    """A plot on a page: its heading, its caption and where the image is, relative to the page."""

    name: str
    title: str
    caption: str
    src: str


class Cell(NamedTuple):
    """A table cell holding a mean with its 95 % interval (left out when ``low`` is not finite)."""

    mean: float
    low: float = math.nan
    high: float = math.nan
    pattern: str | None = None
    note: str | None = None


#: what a payback day of -1 means (the cohort's revenue never covered its acquisition cost)
NEVER_PAID_BACK = "never within the horizon"


def run_figures(figures: dict[str, Path]) -> list[Figure]:
    """The plots of a run folder, each under its name with its caption from :data:`PLOT_CAPTIONS`."""
    return [Figure(name, name.replace("_", " ").capitalize(), PLOT_CAPTIONS.get(name, ""), f"plots/{Path(path).name}")
            for name, path in figures.items()]


def pnl_rows(summary: dict, daily: pd.DataFrame, cfg) -> list[tuple[str, float, float, str, str]]:
    """The run's P&L as (line, RMB, share of GMV, what it is, kind) rows, kind ``line`` or ``account``:
    each line of the statement followed by its accounts, then the terminal value with its inputs."""
    from sim.economics import ACCOUNTS, CATEGORIES, LINES, TOTALS
    from sim.metrics import accounts_of

    economics, _ = accounts_of(cfg)
    gmv = summary.get("gmv") or float("nan")
    rows = [("GMV", summary["gmv"], 1.0, LINES["gmv"], "line")]

    def line(name: str, label: str) -> None:
        rows.append((label, summary[name], summary[name] / gmv, LINES[name], "line"))

    def accounts(category: str) -> None:
        prefix = "revenue" if category == "revenue" else "cost"
        booked = [a for a, cat in economics.category.items() if cat == category
                  and daily.get(f"{prefix}_{a}", pd.Series(dtype=float)).any()]
        if len(booked) == 1 and TOTALS[category].startswith(booked[0]):  # (one account: the line says it)
            return
        for account in booked:
            amount = float(daily[f"{prefix}_{account}"].sum())
            what = ACCOUNTS.get(account, account.replace("_", " "))
            if account in economics.platform_share:
                what += f" (the platform's {economics.platform_share[account]:.0%}; merchants fund the rest)"
            rows.append((account.replace("_", " "), amount, amount / gmv, what, "account"))

    for category in CATEGORIES:
        total = TOTALS[category]
        if category == "revenue" or summary.get(total):  # (a cost line nothing was booked to is left out)
            line(total, total.replace("_", " ") if category == "revenue" else f"- {total.replace('_', ' ')}")
            accounts(category)
        if category == "fraud":
            line("contribution", "= contribution")
    line("profit", "= profit")
    if summary.get("merchant_funded"):
        line("merchant_funded", "memo: incentives merchants funded")
        for account, share in economics.platform_share.items():
            amount = float(daily.get(f"merchant_{account}", pd.Series(dtype=float)).sum())
            if amount:
                rows.append((account.replace("_", " "), amount, amount / gmv, f"the merchants' {1 - share:.0%}", "account"))
    days = summary.get("terminal_days_per_user") or 0.0
    rows.append(("+ terminal value", summary["terminal_value"], summary["terminal_value"] / gmv,
                 f"{summary['terminal_users']:,} users left x {readable(summary['contribution_per_user_day'])} RMB contribution per user "
                 f"per day (last four weeks, rewards for new users left out) x {readable(days)} discounted days each "
                 f"(the run's life table, {readable(cfg.platform.terminal_years)} years at {cfg.platform.discount_rate:.0%} a year)", "line"))
    line("profit_with_terminal", "= profit with terminal value")
    return rows


def run_report(result, figures: dict[str, Path], config_yaml: str | None = None) -> str:
    """The run folder's report: headline cards, plots, the P&L, channels and every horizon metric; a
    classic diffusion run's (:func:`sim.diffusion.adoption_only`) shows adoption only: no money cards,
    P&L or channel economics. ``config_yaml``: the configuration as ``dump_yaml`` writes it, when
    the caller has it already (the run folder's writer: written once, not twice)."""
    from sim.diffusion import adoption_only

    s, cfg = result.summary, result.config
    adoption = adoption_only(cfg)
    shown = {k: v for k, v in s.items() if k in ADOPTION_SUMMARY} if adoption else s
    values = [v if not isinstance(v, list) else ", ".join(map(str, v)) for v in shown.values()]
    values = [NEVER_PAID_BACK if k == "payback_day" and isinstance(v, (int, float)) and v < 0 else v for k, v in zip(shown, values)]
    channels = None
    if not adoption:
        channels = result.channels[result.channels["users"] > 0].copy()
        if "payback_day" in channels:
            channels["payback_day"] = [NEVER_PAID_BACK if v < 0 else "0 (no acquisition cost)" if v == 0 and cost == 0 else readable(v)
                                       for v, cost in zip(channels["payback_day"], channels.get("cost", channels["payback_day"] * 0 + 1))]
    subtitle = (f"scenario {cfg.scenario} · seed {cfg.seed} · {cfg.population.size:,} people · {cfg.horizon} days · "
                + (f"diffusion model {cfg.diffusion.model} (adoption only)" if adoption else f"mechanisms: {', '.join(cfg.enabled()) or 'none'}")
                + f" · simulated in {s.get('simulate_seconds', 0):.1f} s")
    headline = ADOPTION_HEADLINE if adoption else HEADLINE
    return render("run.html.j2", title=f"growth-sim run: {cfg.scenario}", subtitle=subtitle,
                  cards=[(fmt(s.get(k), f), label) for k, label, f in headline], figures=run_figures(figures),
                  channels=channels, group_buy=group_buy_rows(result.daily), pnl=None if adoption else pnl_rows(s, result.daily, cfg),
                  metrics=pd.DataFrame({"metric": list(shown), "value": values}), config_yaml=dump_yaml(cfg) if config_yaml is None else config_yaml)


def group_buy_rows(daily: pd.DataFrame) -> list[tuple[str, float, str]] | None:
    """The run's group-buying diagnostic as (measure, value, format) rows, None when no team was
    opened: what it measured, nothing it would need a run without group buying to know."""
    from sim.analysis import group_buy as gb

    if not gb.uses_group_buy(daily):
        return None
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
    return rows


def group_buy_section(daily: pd.DataFrame) -> str:
    """The run report's group-buying section on its own ('' when no team was opened)."""
    return render("group_buy.html.j2", group_buy=group_buy_rows(daily))


def group_buy_comparison_blocks(comparison) -> list[dict] | None:
    """For each strategy with group buying, its joins by channel against the baseline's, paired by
    replicate: what group buying brought, what it displaced, the net (None without group buying)."""
    from sim.analysis import group_buy as gb

    c = comparison
    d = gb.displacement(c.daily, c.baseline)
    if not len(d):
        return None
    blocks = []
    for s in d["strategy"].unique():
        r = gb.run_summary(c.daily[c.daily["strategy"] == s])
        rows = d[(d["strategy"] == s) & ((d["with"] != 0) | (d["without"] != 0))][["channel", "with", "without", "difference", "low", "high"]]
        blocks.append({"strategy": str(s), "verdict": gb.verdict(d, s, c.baseline), "fill_rate": r["fill_rate"],
                       "filled": r["group_buy_teams_filled"], "closed": r["group_buy_teams_filled"] + r["group_buy_teams_failed"],
                       "to_non_users": r.get("share_to_non_users"), "links": r["group_buy_links_sent"], "channels": rows})
    return blocks


def decision_block(comparison) -> dict | None:
    """The comparison's decision (None without one): the recommendation, the question, and per
    strategy P(best), P(feasible) (with and without the assumptions' uncertainty), the objective's
    paired difference and the money per extra unit."""
    from sim.analysis.comparison import METRICS

    d = comparison.decision
    if d is None:
        return None
    q = d.question
    noise = "p_best_noise" in d.table
    rows = [{"strategy": r["strategy"], "p_best": r["p_best"], "p_feasible": r["p_feasible"],
             "p_best_noise": r["p_best_noise"] if noise else None,
             "difference": None if r["strategy"] == d.baseline else Cell(r["mean_difference"], r["ci_low"], r["ci_high"]),
             "money": r["money_text"]} for r in d.table.to_dict("records")]
    return {"line": d.line, "sense": q.sense, "objective": METRICS[q.objective].label, "key": q.objective,
            "constraints": [c.text for c in q.constraints], "money": METRICS[q.money].label, "baseline": d.baseline,
            "replicates": d.replicates, "noise": noise, "rows": rows}


def assumption_block(comparison) -> dict | None:
    """The comparison's assumptions (None without any): what was drawn, each paired difference of
    the decision's metrics (or the verdict metrics) with and without the assumptions, and which
    assumption could flip the decision, the strongest first."""
    from sim.analysis.comparison import METRICS, VERDICT_METRICS
    from sim.assumptions import COLUMN

    c = comparison
    if c.uncertainty is None:
        return None
    first = c.horizon[c.horizon["strategy"] == c.baseline]
    centre = c.noise[c.noise["strategy"] == c.baseline].iloc[0]
    drawn = []
    for key, a in c.spec.assumptions.items():
        values = first[f"{COLUMN}{key}"]
        seen = ", ".join(readable(v) for v in dict.fromkeys(values)) if a.kind == "choice" else \
            f"{readable(values.min())} to {readable(values.max())}"
        drawn.append({"key": key, "distribution": a.text, "centre": centre[f"{COLUMN}{key}"], "seen": seen})
    q = c.decision.question if c.decision is not None else None
    shown = [q.objective, *(k.metric for k in q.constraints), q.money] if q is not None else list(VERDICT_METRICS)
    shown = [m for m in dict.fromkeys(shown) if m in set(c.uncertainty["metric"])]
    u = c.uncertainty[c.uncertainty["metric"].isin(shown)]
    u = u.assign(order=u["metric"].map({m: k for k, m in enumerate(shown)})).sort_values(["order"], kind="stable")
    intervals = [{"strategy": r["strategy"], "metric": METRICS[r["metric"]].label,
                  "drawn": Cell(r["mean_difference"], r["ci_low"], r["ci_high"]),
                  "noise": Cell(r["noise_mean_difference"], r["noise_ci_low"], r["noise_ci_high"]),
                  "spread": (r["spread_low"], r["spread_high"]), "share": r["assumption_share"]} for r in u.to_dict("records")]
    e = c.assumption_effects
    e = e.iloc[e["spearman"].abs().fillna(0).sort_values(ascending=False, kind="stable").index] if len(e) else e
    return {"drawn": drawn, "intervals": intervals, "effects": e.to_dict("records"), "replicates": len(c.seeds),
            "objective": METRICS[e["metric"].iloc[0]].label if len(e) else "", "baseline": c.baseline}


def group_buy_comparison_section(comparison) -> str:
    """The comparison report's group-buying section on its own ('' without group buying)."""
    return render("group_buy_comparison.html.j2", group_buy=group_buy_comparison_blocks(comparison))


# ============================================================================ experiments
EXPERIMENT_CAPTIONS = {
    "comparison_curves": "How each strategy unfolds over the year. Lines are the mean over replicates; the shaded band is the 95 % interval of that mean. Bands that do not overlap mean the strategies really differ; overlapping bands need the paired differences below to decide.",
    "comparison_retention": "How well each strategy keeps the people it brings: the share of a cohort that visits N days after joining, pooled over the cohorts of each run (log scale). Lines are the mean over replicates, bands the 95 % interval of that mean.",
    "comparison_horizon": "Where each strategy ends up at the horizon. Dots are means over replicates, bars their 95 % intervals.",
    "comparison_differences": "How much each strategy changes each metric compared with the baseline, replicate by replicate (the same simulated people and luck for both), in % of the baseline's mean. A bar that does not cross the zero line is a difference the simulation is sure of.",
    "sweep_heatmap": "The mean of a metric (over seeds) for every combination of the first two swept parameters; read across a row to see one parameter's effect at a fixed value of the other.",
}


def _horizon_rows(table: pd.DataFrame, groups: list[str], metrics: list[str], by: str) -> list[dict]:
    """Metrics as rows, groups as columns, each cell a mean with its interval (and how many runs have
    a value, when some have none)."""
    from sim.analysis.comparison import METRICS

    runs = int(table["n"].max()) if len(table) else 0
    rows = []
    for m in metrics:
        meta = METRICS[m]
        cells = []
        for g in groups:
            r = table[(table[by] == g) & (table["metric"] == m)].iloc[0]
            note = f"{int(r['n'])} of {runs} runs have a value" if r["n"] < runs else None
            cells.append(Cell(r["mean"], r["ci_low"], r["ci_high"], meta.fmt, note))
        rows.append({"label": meta.label + (f" ({meta.unit})" if meta.unit else ""), "cells": cells})
    return rows


def experiment_figures(figures: dict[str, Path]) -> list[Figure]:
    """The plots of a comparison or sweep folder with their captions (:data:`EXPERIMENT_CAPTIONS`)."""
    found = []
    for name, path in figures.items():
        caption = EXPERIMENT_CAPTIONS.get(name, "")
        title = name.replace("comparison_", "").replace("sweep_", "").replace("_", " ").capitalize()
        if name.startswith("sweep_") and name != "sweep_heatmap":
            title = f"Against {name[len('sweep_'):]}"
            caption = ("Each metric at the horizon against this swept parameter: dots are means over seeds, the band (or bar) the 95 % interval "
                       "of that mean (other swept parameters are averaged over, or drawn as separate lines).")
        found.append(Figure(name, title, caption, f"plots/{Path(path).name}"))
    return found


def comparison_report(comparison, figures: dict[str, Path], experiment_text: str) -> str:
    """The comparison folder's report: the verdicts first, then the numbers, the plots and the method
    (``experiment_text``: the experiment definition, as its ``config.yaml`` holds it)."""
    c = comparison
    cfg = next(iter(c.configs.values()))
    verdicts = [("win" if " beats " in v else "loss" if " falls short of " in v else "", v)
                for s in c.strategies if s != c.baseline for v in c.differences.loc[c.differences["strategy"] == s, "verdict"]]
    diffs = None
    if len(c.differences):
        diffs = c.differences[["strategy", "label", "mean_difference", "ci_low", "ci_high", "relative", "relative_low", "relative_high",
                               "higher", "n"]].copy()
        diffs.columns = ["strategy", "metric", "difference", "low", "high", "relative", "rel. low", "rel. high", "replicates higher",
                         "replicates"]
    subtitle = (f"{len(c.strategies)} strategies · {len(c.seeds)} replicates each · {cfg.population.size:,} people · {cfg.horizon} days · "
                f"baseline {c.baseline} · computed in {c.wall_seconds:.0f} s")
    if c.spec.description:
        subtitle = f"{c.spec.description} — {subtitle}"
    return render("comparison.html.j2", title=f"growth-sim comparison: {c.name}", subtitle=subtitle,
                  graph_notes=list(getattr(c, "graph_notes", ())), baseline=c.baseline, replicates=len(c.seeds), seed=c.spec.seed,
                  verdicts=verdicts, strategies=c.strategies, horizon=_horizon_rows(c.table, c.strategies, list(c.spec.metrics), "strategy"),
                  group_buy=group_buy_comparison_blocks(c), figures=experiment_figures(figures), differences=diffs,
                  decision=decision_block(c), assumptions=assumption_block(c), world=c.world, replicates_needed=replicate_rows(c),
                  experiment_text=experiment_text, resolved=[(s, dump_yaml(cfg_s)) for s, cfg_s in c.configs.items()])


def sweep_report(sweep, figures: dict[str, Path]) -> str:
    """The sweep folder's report: the grouped table of horizon metrics, how many seeds its spread
    needs (:func:`seed_rows`), and the sweep plots."""
    from sim.analysis.comparison import METRICS

    s = sweep
    rows = [{"swept": [str(r[p]) for p in s.varied], "runs": int(r["runs"]),
             "cells": [Cell(r[m], r[f"{m}_low"], r[f"{m}_high"], METRICS[m].fmt) for m in s.metrics]}
            for _, r in s.table().iterrows()]
    return render("sweep.html.j2", title=f"growth-sim sweep: {', '.join(s.varied) or 'seeds'}", subtitle=f"{len(s.horizon)} runs in {s.path}",
                  seeds=s.horizon["seed"].nunique() if "seed" in s.horizon else 1,
                  columns=[*s.varied, "runs", *(METRICS[m].label for m in s.metrics)], rows=rows,
                  power=seed_rows(s.horizon, s.varied, s.metrics), figures=experiment_figures(figures))


def seed_rows(horizon: pd.DataFrame, groups: list[str], metrics: list[str]) -> dict:
    """What the spread between seeds means for a sweep's bands, per metric: the band's half-width
    now, the seeds that would halve it and the seeds a 5 % difference needs (:mod:`sim.analysis.power`)."""
    from sim.analysis.comparison import METRICS
    from sim.analysis.power import MOST, POWER, RELATIVE, seed_table

    t = seed_table(horizon, groups, metrics)
    runs = int(t["runs"].max()) if len(t) else 0
    rows = [{"label": METRICS[r["metric"]].label, "pattern": METRICS[r["metric"]].fmt, "mean": r["mean"], "sd": r["sd"],
             "half_width": r["half_width"], "to_halve": _count(r["to_halve"]), "difference": r["difference"], "needed": _count(r["needed"]),
             "short": _more(r["needed"], r["runs"])} for _, r in t.iterrows()]
    return {"runs": runs, "rows": rows, "relative_text": f"{100 * RELATIVE:g} %", "power_text": f"{100 * POWER:g} %"}


def _count(n) -> str:
    """A replicate count as a cell: '–' when it cannot be said, capped at :data:`sim.analysis.power.MOST`."""
    from sim.analysis.power import MOST

    return "–" if n is None or pd.isna(n) else f"more than {MOST:,}" if n > MOST else f"{int(n):,}"


def _more(needed, runs) -> bool:
    return needed is not None and not pd.isna(needed) and needed > runs


def replicate_rows(comparison) -> dict | None:
    """What the spread of a comparison's paired differences means, per metric and strategy: the
    replicates that resolve a difference of 5 % of the baseline's mean at 80 % power
    (:func:`sim.analysis.power.paired_table`); None with a single strategy."""
    from sim.analysis.comparison import METRICS
    from sim.analysis.power import POWER, RELATIVE, paired_table

    c = comparison
    others = [s for s in c.strategies if s != c.baseline]
    if not others:
        return None
    t = paired_table(c.horizon, c.baseline, list(c.spec.metrics)).set_index(["metric", "strategy"])
    rows = []
    for m in c.spec.metrics:
        cells = [{"text": _count(t.loc[(m, s), "needed"]), "short": _more(t.loc[(m, s), "needed"], t.loc[(m, s), "runs"])} for s in others]
        rows.append({"label": METRICS[m].label, "difference": fmt(t.loc[(m, others[0]), "difference"], METRICS[m].fmt), "cells": cells})
    return {"strategies": others, "rows": rows, "replicates": len(c.seeds), "relative_text": f"{100 * RELATIVE:g} %",
            "power_text": f"{100 * POWER:g} %", "short": any(cell["short"] for row in rows for cell in row["cells"])}


# ============================================================================ sensitivity and calibration
PLOT_NOTES = {
    "morris": ("The same indices, one panel per metric, a row per parameter, most influential on top: mu* (dot, how much the metric "
               "moves across the parameter's range) with its 95 % interval, and sigma (hollow diamond). A diamond right of its dot means "
               "the effect changes sign or size with the other parameters; a dot inside the grey band (the seed noise floor) is a "
               "parameter not distinguishable from luck."),
    "morris_per_sd": ("mu* divided by the metric's standard deviation over the design, for every parameter and metric: how many "
                      "standard deviations of the metric the parameter moves it across its range, comparable between metrics. "
                      "Grey cells are at or below the noise floor."),
    "sobol": ("The same indices as bars, one panel per metric, most influential on top: total ST and first-order S1 with their "
              "95 % intervals. A long ST bar over a short S1 bar is a parameter that acts through interactions."),
}


def _plain_figures(figures: dict[str, Path], captions: dict[str, tuple[str, str]]) -> list[Figure]:
    return [Figure(name, *captions[name], f"plots/{Path(path).name}") for name, path in figures.items()]


#: how each index is named in a report's column headers
INDEX_LABELS = {"mu_star": "mu*", "mu": "mu", "sigma": "sigma", "ST": "ST", "S1": "S1", "mu_star_per_sd": "mu* / sd"}
#: indices written with a format of their own (the others as numbers are read, :func:`readable`)
INDEX_FORMATS = {"mu_star_per_sd": "{:.2f}"}


def _sensitivity_block(sens, metric: str, t: pd.DataFrame) -> dict:
    """One metric's table: a row per parameter, most influential first; the ranking index with its 95 %
    interval, the other indices (with their intervals where they have one), and whether the ranking
    index stands out of the seed noise; above it, that noise."""
    from sim.analysis.comparison import METRICS

    by, interval = sens.rank_by, sens.interval
    bounds = ("_conf", "_low", "_high")
    other = [c for c in sens.index_columns if c != by and not c.endswith(bounds)]
    has_interval = [c for c in other if f"{c}_conf" in t or f"{c}_low" in t]
    columns = [f"{INDEX_LABELS[by]} [95 % interval]"] + [f"{INDEX_LABELS[c]}{' [95 % interval]' if c in has_interval else ''}" for c in other]
    floor = float(t["noise_floor"].iloc[0])
    rows = []
    for _, r in t.sort_values(["rank", "parameter"]).iterrows():
        cells = [Cell(r[by], *interval(r, by))] + [Cell(r[c], *interval(r, c)) if c in has_interval else Cell(r[c], pattern=INDEX_FORMATS.get(c))
                                                   for c in other]
        noise = ("–" if not math.isfinite(floor) or not math.isfinite(r[by])
                 else "not distinguishable from noise" if r[by] <= floor else f"{r[by] / floor:,.1f} x the noise" if floor > 0 else "above")
        rows.append({"rank": int(r["rank"]), "parameter": r["parameter"], "cells": cells, "noise": noise})
    meta = METRICS[metric]
    unit = f"{meta.unit or 'metric units'} across the whole range" if sens.method == "morris" else "share of variance"
    n = sens.noise[sens.noise["metric"] == metric]
    noise = None
    if len(n) and n["seeds"].iloc[0] > 1:
        r = n.iloc[0]
        noise = {"seeds": int(r["seeds"]), "mean": r["mean"], "sd": r["sd"], "floor": r["floor"], "fmt": meta.fmt, "unit": meta.unit}
    return {"label": meta.label, "metric": metric, "unit": unit, "columns": columns, "rows": rows, "noise": noise}


def sensitivity_report(sens, figures: dict[str, Path]) -> str:
    """The sensitivity folder's report: the ranking of the parameters for every metric, with the
    method's indices and intervals and the seed noise, the plots, the parameter ranges and the experiment."""
    from sim.analysis.comparison import METRICS
    from sim.config import effective_overrides

    method = sens.method
    name = "Morris screening" if method == "morris" else "Sobol indices"
    cards = [(sens.ranking(m)[0].split(".")[-1], f"most influential on {METRICS[m].label}") for m in sens.indices["metric"].unique()[:5]]
    s = sens.spec.sensitivity
    return render("sensitivity.html.j2", title=f"growth-sim sensitivity: {sens.name} ({name})",
                  subtitle=f"{sens.label()} · computed in {sens.wall_seconds:.0f} s", method=method, cards=cards,
                  levels=s.levels, step=str(Fraction(s.levels, 2 * (s.levels - 1))), replicates=s.replicates,
                  blocks=[_sensitivity_block(sens, metric, t) for metric, t in sens.indices.groupby("metric", sort=False)],
                  skipped=sens.skipped, figures=_plain_figures(figures, {k: (name if k == method else "Normalised importance", PLOT_NOTES[k])
                                                                      for k in figures}),
                  scenario=s.scenario, overrides=" ".join(effective_overrides(sens.spec.overrides)), params=s.params,
                  config_yaml=dump_yaml(sens.config))


def calibration_report(cal, figures: dict[str, Path]) -> str:
    """The calibration folder's report: the fitted values within their searched ranges, the loss in
    sample and on fresh seeds, how to run the fitted model, how close each target is, the targets the
    model cannot meet together, what each target identifies, and the fit and search plots."""
    from sim.analysis.identification import IDENTIFIES, RESPONDS

    c = cal.section
    seeds = f"{c.replicates} seed{'s' if c.replicates > 1 else ''}"
    cards = [(fmt(cal.best_loss, "{:.4g}"), f"{c.loss} loss, best trial ({seeds})"),
             (fmt(cal.check_loss, "{:.4g}"), f"loss on {c.check_replicates} fresh seeds"), (str(len(cal.trials)), "trials")]
    figures = _plain_figures(figures, {
        "fit": ("Fit", "Each target (dots) against the fitted model rerun at fresh seeds: the mean (line) and the 95 % interval of "
                       "the mean (band), a panel per target."),
        "loss": ("Search", "Left: the loss of every trial and the best so far. Then, per parameter, the values tried, coloured by "
                           "loss: where the points crowd is where the sampler found good fits; the dashed line is the best value.")})
    subtitle = (f"{c.scenario} · {len(c.params)} parameter{'s' if len(c.params) > 1 else ''} · {len(cal.trials)} trials x "
                f"{seeds} · computed in {cal.wall_seconds:.0f} s")
    return render("calibration.html.j2", title=f"growth-sim calibration: {cal.name}", subtitle=subtitle, cards=cards,
                  params=c.params, best=cal.best, run_command="sim run " + " ".join(cal.overrides()), scenario_name=cal.scenario_name(),
                  targets=_calibration_targets(cal),
                  conflicts=cal.conflicts.to_dict("records") if len(cal.targets) > 1 else None, conflict_line=cal.conflict_line(),
                  loss_unit="root-mean-square log error" if c.loss == "msle" else "mean relative error",
                  conflict_tolerance=c.conflict_tolerance, responds=RESPONDS, identifies=IDENTIFIES, identification=cal.identification,
                  figures=figures, scenario_yaml=cal.scenario_yaml())


def _calibration_targets(cal) -> list[dict]:
    """A row per target: what it is, its errors at the fresh seeds and its loss in and out of sample."""
    fit = cal.fit[cal.fit["target"].notna()].copy()
    fit["rel"] = (fit["mean"] - fit["target"]).abs() / fit["target"].abs().where(fit["target"] != 0)
    fit["covered"] = (fit["target"] >= fit["low"]) & (fit["target"] <= fit["high"])
    summary = fit.groupby("name", sort=False).agg(median_rel=("rel", "median"), max_rel=("rel", "max"), covered=("covered", "mean"))
    return [t | summary.loc[t["name"]].to_dict() for t in cal.target_summary()]


# ============================================================================ optimisation
OPTIMISATION_CAPTIONS = {
    "front": ("The front", "The answer. Grey: every trial at the search seeds (crosses: infeasible there). Coloured, with 95 % intervals "
                           "both ways: the candidates re-evaluated at fresh seeds, filled and joined where they are on the front, hollow "
                           "where another feasible point (or the baseline) beats them or they break a constraint; the black star is the "
                           "baseline, the scenario as it is, at the same fresh seeds. Points whose intervals overlap may not differ: the "
                           "table above says which cannot be told apart, from the paired differences."),
    "history": ("History of the search", "Each objective of every trial at the search seeds, in the order the sampler tried them, the best feasible "
                              "value so far and the baseline at the same seeds. A best-so-far line still climbing at the end says more "
                              "trials would pay (resume the study with a larger trials=)."),
    "importance": ("What each objective responds to", "The share of the variation of each objective over the trials that goes with each "
                                                      "parameter alone (omega squared of the ranks between quantile bins of the "
                                                      "parameter). The trials crowd where the sampler found good values, so this "
                                                      "describes the search, not the model everywhere (sim sensitivity does that); with "
                                                      "few trials the bins are few (two below 12 trials) and a response that rises and "
                                                      "falls across the range can score low."),
}


SAMPLERS = {"tpe": "TPE sampler (its multi-objective form for several objectives)", "nsga2": "NSGA-II sampler",
            "nsga3": "NSGA-III sampler", "random": "random sampler"}


def _candidate_row(opt, r, objectives: list[str]) -> dict:
    """A candidate as the report shows it: its values, each objective's mean and its paired
    difference against the baseline (each with its 95 % interval), P(feasible), what beats it."""
    from sim.analysis.comparison import METRICS

    cells = [Cell(r[m], r[f"{m}_low"], r[f"{m}_high"], METRICS[m].fmt) for m in objectives]
    signed = {m: METRICS[m].fmt.replace("{:", "{:+") for m in objectives}
    diffs = [Cell(math.nan) if r["candidate"] == "baseline" else Cell(r[f"{m}_diff"], r[f"{m}_diff_low"], r[f"{m}_diff_high"], signed[m])
             for m in objectives]
    search = [Cell(r[f"{m}_search"], pattern=METRICS[m].fmt) for m in objectives]
    if r["on_front"]:
        status = "on the front" + (" (the scenario as it is)" if r["candidate"] == "baseline" else "")
    elif not r["feasible"]:
        broken = [c.text for c in opt.section.parsed_constraints if r[f"margin: {c.text}"] < 0 or
                  (c.op in (">", "<") and r[f"margin: {c.text}"] == 0)]
        status = "infeasible: breaks " + "; ".join(broken)
    else:
        status = f"beaten by {r['dominated_by'].replace(',', ', ')}"
    return {"name": r["candidate"], "trial": int(r["trial"]), "settings": [r[k] for k in opt.params], "cells": cells, "diffs": diffs,
            "search": search, "p_feasible": r["p_feasible"], "status": status,
            "same": r["indistinguishable_from"].replace(",", ", ") or "–"}


def optimisation_report(opt, figures: dict[str, Path]) -> str:
    """The study folder's report: the question, the front after re-evaluation (means, intervals,
    differences against the baseline, what cannot be told apart), how to rerun a candidate, every
    re-evaluated candidate and why it is off the front, the search and its plots."""
    from sim.analysis.comparison import METRICS

    c = opt.section
    objectives = opt.objectives
    cands = opt.candidates
    base = cands[cands["candidate"] == "baseline"].iloc[0]
    front = [_candidate_row(opt, r, objectives) for _, r in opt.front.iterrows()]
    others = [_candidate_row(opt, r, objectives) for _, r in cands.iterrows() if not r["on_front"] and r["candidate"] != "baseline"]
    cards = [(str(len(opt.front)), "strategies on the front"), (str(len(opt.trials)), f"trials x {c.replicates} seeds"),
             (str(len(opt.check_seeds)), "fresh seeds per candidate")]
    for m, x in zip(objectives, c.objectives):
        if len(opt.front):
            best = opt.front[f"{m}_diff"].max() if x.sense == "maximise" else opt.front[f"{m}_diff"].min()
            cards.append((fmt(best, METRICS[m].fmt.replace("{:", "{:+")), f"{METRICS[m].label}: best on the front vs baseline"))
    space = [{"key": k, "searched": ", ".join(map(str, p.choices)) if p.choices is not None else
              f"{p.low:g} .. {p.high:g}{' (logarithmic)' if p.log else ''}",
              "baseline": readable(_config_value(opt.base, k))} for k, p in c.params.items()]
    subtitle = (f"{c.scenario} · {len(c.params)} parameter{'s' if len(c.params) > 1 else ''} · {len(opt.trials)} trials x "
                f"{c.replicates} seed{'s' if c.replicates > 1 else ''} · {len(cands) - 1} candidates at {len(opt.check_seeds)} fresh seeds "
                f"· this session {opt.wall_seconds:.0f} s")
    return render("optimisation.html.j2", title=f"growth-sim optimisation: {opt.name}", subtitle=subtitle, cards=cards,
                  question=[f"{x.sense} {METRICS[x.metric].label} ({x.metric})" for x in c.objectives], constraints=list(c.constraints),
                  params=[".".join(k.split(".")[-2:]) for k in opt.params], objectives=[(m, METRICS[m].label) for m in objectives],
                  front=front, others=others,
                  baseline=_candidate_row(opt, base, objectives), distinguish=opt.distinguish_lines(),
                  reproduce=opt.reproduce_command(), resume=f"sim optimise resume={opt.path}",
                  space=space, sampler=SAMPLERS[c.sampler], failed=opt.failed, seed=opt.spec.seed, check_seed=opt.check_seed,
                  check_replicates=len(opt.check_seeds), baseline_on_front=bool(base["on_front"]), scenario_stem=opt.scenario_name("")[:-1],
                  importance=opt.importance if len(opt.trials) >= 2 else None,
                  figures=[Figure(name, *OPTIMISATION_CAPTIONS[name], f"plots/{Path(path).name}") for name, path in figures.items()],
                  experiment_yaml=_experiment_text(opt))


def _config_value(cfg, key: str):
    from sim.assumptions import config_node
    from sim.schema import to_plain

    return config_node(to_plain(cfg), key, "optimisation.params")


def _experiment_text(opt) -> str:
    path = opt.path / "experiment.yaml" if opt.path is not None else None
    return path.read_text() if path is not None and path.is_file() else ""
