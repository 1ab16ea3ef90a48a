"""Plots a strategist reads at a glance. Every function takes the frames of a run folder, so a run
can be re-plotted from disk without re-simulating.

- ``growth.png``: cumulative users and new users per day, by acquisition channel;
- ``activity.png``: DAU, WAU, MAU and users, with the DAU/MAU stickiness ratio;
- ``retention.png``: day-N retention curves by channel and by monthly join cohort;
- ``cohort_heatmap.png``: weekly join cohorts against weeks since joining;
- ``money.png``: the P&L's daily lines (revenue, costs, contribution, profit), and their running totals;
- ``viral.png``: invitations sent and accepted, and the K-factor;
- ``orders.png``: orders per day by what drove them, and the concentration of sales over categories;
- ``mechanisms.png``: each enabled mechanism's own daily counters.

Experiments (frames of a comparison or sweep folder):

- comparison ``curves.png``: users, MAU, GMV and cumulative profit per strategy, mean and 95 % band;
- comparison ``horizon.png``: each horizon metric per strategy with its 95 % interval;
- comparison ``differences.png``: paired differences against the baseline, in % of its mean;
- sweep ``sweep_<param>.png``: horizon metrics against one swept parameter, with intervals over seeds;
- sweep ``heatmap.png``: the mean of a metric over two swept parameters;
- sensitivity ``morris.png`` (mu* and sigma per parameter) or ``sobol.png`` (S1 and ST bars), with intervals and the
  seed noise floor, and ``morris_per_sd.png`` (mu* over the metric's standard deviation, parameters by metrics);
- calibration ``fit.png`` (each target, expressed as it is, against the simulated mean and its 95 % band) and ``loss.png``;
- optimisation ``front.png`` (the re-evaluated front with intervals and the baseline), ``history.png`` and ``importance.png``.
"""

from __future__ import annotations

import gc
import io
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402
from PIL.PngImagePlugin import PngInfo  # noqa: E402

from sim.vocabulary import CHANNELS, ORDER_SOURCES  # noqa: E402

CHANNEL_COLOURS = dict(zip(CHANNELS, ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3"]))
MONEY_COLOURS = {"revenue": "#2a9d8f", "goods_cost": "#219ebc", "variable_cost": "#b5838d", "incentive_cost": "#e9c46a",
                 "fraud_loss": "#9d0208", "contribution": "#6a4c93", "acquisition_cost": "#f4a261", "operating_cost": "#343a40",
                 "profit": "#264653"}


PANEL_TITLE_SIZE = 11


def _style(ax, title: str, ylabel: str = "", xlabel: str = "day") -> None:
    ax.set_title(title, fontsize=PANEL_TITLE_SIZE, loc="left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)


def _save(fig, path: Path, bottom: float = 0.0) -> Path:
    """Lay out (leaving ``bottom``, a share of the height, to a figure legend), write, close."""
    fig.tight_layout(rect=(0, bottom, 1, 1))
    return _write(fig, path)


#: Dots per inch of every figure written.
DPI = 110


def _write(fig, path: Path) -> Path:
    """Draw ``fig`` once into a PNG at ``path`` and close it.

    What ``fig.savefig(path, dpi=DPI)`` writes, pixel for pixel, except that an opaque figure (each of
    the project's: white background) is stored as RGB, not RGBA: a tenth smaller and a third
    quicker to compress (0.23 against 0.33 s for the eight figures of a run of every mechanism,
    about a tenth of the time they take to draw)."""
    # tight_layout leaves a placeholder layout engine behind, and with any engine set savefig draws the
    # whole figure once more before drawing it for the file: nothing is left to lay out here.
    fig.set_layout_engine(None)
    fig.set_dpi(DPI)
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())
    image = Image.frombuffer("RGBA", (pixels.shape[1], pixels.shape[0]), pixels, "raw", "RGBA", 0, 1)
    if pixels[..., 3].min() == 255:
        image = image.convert("RGB")
    info = PngInfo()
    info.add_text("Software", f"Matplotlib version{matplotlib.__version__}, https://matplotlib.org/")  # (as savefig's)
    image.save(path, format="png", dpi=(DPI, DPI), pnginfo=info, compress_level=3)  # (6, the default, is 40 % slower for 7 % less)
    plt.close(fig)
    return path


def _place(fig, left: float = 1.0, right: float = 0.2, top: float = 0.7, bottom: float = 0.6, across: float = 1.0,
           down: float = 0.0) -> None:
    """Place the subplots with fixed margins and gaps between them, in inches: ``left`` for the tick
    labels and label of the y axis, ``top`` for the titles, ``bottom`` for the x axis's, ``across``
    and ``down`` between panels. The figures of a run are laid out this way, not by tight_layout,
    which draws a figure once more to measure it (half the time of a run's plots), and two runs'
    panels line up."""
    width, height = fig.get_size_inches()
    nrow, ncol = fig.axes[0].get_subplotspec().get_gridspec().get_geometry()
    panel_width = (width - left - right - (ncol - 1) * across) / ncol
    panel_height = (height - top - bottom - (nrow - 1) * down) / nrow
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height, bottom=bottom / height,
                        wspace=across / panel_width, hspace=down / panel_height)
    for ax in fig.axes:
        _pin_titles(ax)


def _pin_titles(ax) -> None:
    """Keep the titles of ``ax`` where matplotlib would put them: at the top of the panel, unless an
    offset text of its y axis (or a twin's), such as 1e6, is there to be cleared. Without an offset
    text that is known before drawing, and pinning the titles spares the draw measuring every tick
    label of the panel's y axes to find it out (a quarter of the time of a figure of many panels)."""
    titles = [(loc, ax.get_title(loc=loc)) for loc in ("center", "left", "right")]
    if not any(text for _, text in titles):
        return
    for twin in ax.get_shared_x_axes().get_siblings(ax):
        formatter = twin.yaxis.get_major_formatter()
        formatter.set_locs(twin.yaxis.get_majorticklocs())  # (as the draw will: same limits, same ticks)
        if twin.yaxis.offsetText.get_visible() and formatter.get_offset():
            return
    for loc, text in titles:
        if text:
            ax.set_title(text, loc=loc, fontsize=PANEL_TITLE_SIZE, y=1.0)  # (a position given: not looked for at draw time)


def _legend(ax, **kwargs) -> None:
    """``ax.legend(**kwargs)`` when something on ``ax`` has a label (a tiny run may draw nothing)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def _title(fig, label: str) -> None:
    """The figure's title at its top left, long lines wrapped (a comparison of many strategies)."""
    width = max(50, int(fig.get_figwidth() * 9.5))  # characters of a bold 12-point line that fit
    label = "\n".join(textwrap.fill(line.replace("-vs-", " vs "), width) for line in label.split("\n"))
    fig.suptitle(label, fontsize=12, x=0.01, y=1 - 0.085 / fig.get_figheight(), ha="left", fontweight="bold")  # as high on a tall figure


def smooth(x: pd.Series, days: int = 7) -> pd.Series:
    return x.rolling(days, min_periods=1).mean()


#: a pooled retention curve stops at the age fewer than this share of its members have reached: beyond
#: it only the earliest joiners count, few and noisy (an incomplete tail, not a fall in retention)
MIN_AGED_SHARE = 0.5


def retention_by(cohorts: pd.DataFrame, channel: str = "all", max_age: int = 90, cohort_days: tuple[int, int] | None = None) -> pd.Series:
    """Pooled day-N retention (visitors at age N / members who have reached it) for one channel and
    optional join days, at the ages most of the members have reached (:data:`MIN_AGED_SHARE`)."""
    c = cohorts[cohorts["channel"] == channel]
    if cohort_days is not None:
        c = c[(c["cohort_day"] >= cohort_days[0]) & (c["cohort_day"] < cohort_days[1])]
    c = c[c["age"] <= max_age]
    return _pooled(c.groupby("age")[["retained", "users"]].sum())


def _pooled(by_age: pd.DataFrame) -> pd.Series:
    """Retention from visitors (``retained``) and members (``users``) summed by age (:func:`retention_by`)."""
    members = by_age["users"].max() if len(by_age) else 0
    return (by_age["retained"] / by_age["users"]).where((by_age["users"] > 0) & (by_age["users"] >= MIN_AGED_SHARE * members))


def growth(daily: pd.DataFrame, path: Path, label: str) -> Path:
    used = [c for c in CHANNELS if daily[f"new_{c}"].sum() > 0]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2))
    cum = np.vstack([daily[f"new_{c}"].cumsum() for c in used])
    a.stackplot(daily["day"], cum, labels=used, colors=[CHANNEL_COLOURS[c] for c in used], alpha=0.85)
    a.plot(daily["day"], daily["users"], color="black", lw=1.2, label="users now (not churned)")
    _style(a, "Cumulative users by acquisition channel", "people")
    _legend(a, loc="upper left", fontsize=8, frameon=False)
    new = np.vstack([smooth(daily[f"new_{c}"]) for c in used])
    b.stackplot(daily["day"], new, labels=used, colors=[CHANNEL_COLOURS[c] for c in used], alpha=0.85)
    _style(b, "New users per day (7-day mean)", "people per day")
    _title(fig, label)
    _place(fig)
    return _write(fig, path)


def activity(daily: pd.DataFrame, path: Path, label: str) -> Path:
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    for col, colour in (("mau", "#264653"), ("wau", "#2a9d8f"), ("dau", "#e76f51"), ("users", "#8d99ae")):
        a.plot(daily["day"], daily[col], label=col.upper() if col != "users" else "users (not churned)", color=colour, lw=1.4)
    _style(a, "Active users", "people")
    _legend(a, fontsize=8, frameon=False)
    ratio = (daily["dau"] / daily["mau"].where(daily["mau"] > 0)).iloc[30:] if len(daily) > 30 else daily["dau"] / daily["mau"]
    b.plot(ratio.index, ratio.values, color="#e76f51")
    b.set_ylim(0, 1)
    _style(b, "Stickiness: DAU / MAU (from day 30)", "ratio")
    _title(fig, label)
    _place(fig)
    return _write(fig, path)


def retention(cohorts: pd.DataFrame, path: Path, label: str, horizon: int) -> Path:
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2))
    max_age = min(90, horizon - 1)
    young = cohorts[cohorts["age"] <= max_age]  # each curve as retention_by draws it, from one groupby
    by_channel = young.groupby(["channel", "age"])[["retained", "users"]].sum()
    joined = young[young["age"] == 0].groupby("channel")["users"].sum()
    for ch in ["all", *CHANNELS]:
        r = _pooled(by_channel.loc[ch]) if ch in joined.index else pd.Series(dtype=float)
        members = joined.get(ch, 0)
        if r.empty or members < 50:
            continue
        a.plot(r.index[1:], r.values[1:], label=f"{ch} ({members:,} users)", lw=2.2 if ch == "all" else 1.2,
               color="black" if ch == "all" else CHANNEL_COLOURS[ch])
    a.set_yscale("log")
    _style(a, "Day-N retention by channel (share visiting on day N)", "share of cohort", "days since joining")
    _legend(a, fontsize=8, frameon=False)
    months = range(0, horizon, 30)
    cmap = plt.get_cmap("viridis")
    everyone = young[young["channel"] == "all"]
    by_month = everyone.groupby([everyone["cohort_day"] // 30, "age"])[["retained", "users"]].sum()
    joined_in = set(by_month.index.get_level_values(0))
    for k, start in enumerate(months):
        r = _pooled(by_month.loc[start // 30]) if start // 30 in joined_in else pd.Series(dtype=float)
        if r.dropna().size < 8:
            continue
        b.plot(r.index[1:], r.values[1:], color=cmap(k / max(len(months) - 1, 1)), lw=1.1, label=f"joined days {start}-{start + 29}")
    b.set_yscale("log")
    _style(b, "Retention of monthly join cohorts", "share of cohort", "days since joining")
    _legend(b, fontsize=7, frameon=False, ncol=2)
    _title(fig, label)
    _place(fig, left=1.05, across=1.05)  # (log-scale labels: 3 x 10^-1)
    return _write(fig, path)


def cohort_heatmap(cohorts: pd.DataFrame, path: Path, label: str) -> Path:
    c = cohorts[cohorts["channel"] == "all"].copy()
    c["cohort_week"] = c["cohort_day"] // 7
    c["age_week"] = c["age"] // 7
    g = c.groupby(["cohort_week", "age_week"])[["retained", "users"]].sum()
    share = (g["retained"] / g["users"]).unstack("age_week")  # users are summed over the same days
    rows_in = c.groupby(["cohort_week", "age_week"]).size().unstack("age_week")
    share = share.where(rows_in == 49)  # whole weeks only: 7 join days x 7 ages
    share = share.iloc[:, :26]
    fig, ax = plt.subplots(figsize=(12, 5))
    later = share.to_numpy()[:, 1:]
    later = later[np.isfinite(later)]  # (a tiny run may have no cohort seen past its first week)
    im = ax.imshow(share.to_numpy(), aspect="auto", cmap="magma_r", vmin=0, vmax=np.percentile(later, 99) if later.size else None,
                   interpolation="nearest")
    ax.set_xlabel("weeks since joining")
    ax.set_ylabel("join week")
    ax.set_title("Cohort retention: mean share of each weekly cohort visiting per day", fontsize=PANEL_TITLE_SIZE, loc="left")
    fig.colorbar(im, ax=ax, label="share visiting per day")
    _title(fig, label)
    _place(fig, left=0.75, right=0.15)  # (the colour bar takes its room from the panel's)
    return _write(fig, path)


def money(daily: pd.DataFrame, path: Path, label: str) -> Path:
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2))
    cols = [c for c in MONEY_COLOURS if c in daily and (daily[c] != 0).any()]  # the P&L's lines in its order
    for col in cols:
        style = {"lw": 1.8, "ls": "-"} if col in ("profit", "contribution") else {"lw": 1.1, "ls": "-" if col == "revenue" else "--"}
        a.plot(daily["day"], smooth(daily[col]), label=col.replace("_", " "), color=MONEY_COLOURS[col], **style)
        b.plot(daily["day"], daily[col].cumsum(), label=col.replace("_", " "), color=MONEY_COLOURS[col], **style)
    for ax in (a, b):
        ax.axhline(0, color="grey", lw=0.8)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_compact))
    _style(a, "Revenue, costs (dashed), contribution and profit per day (7-day mean)", "RMB per day")
    _style(b, "Running totals", "RMB")
    if cols:  # one legend under both panels, in the statement's order
        fig.legend(*a.get_legend_handles_labels(), loc="lower center", ncol=min(len(cols), 5), fontsize=8, frameon=False)
    _title(fig, label)
    _place(fig, bottom=0.6 + (0.3 + 0.2 * ((len(cols) - 1) // 5) if cols else 0.0))  # the legend's rows under the panels
    return _write(fig, path)


def viral(daily: pd.DataFrame, path: Path, label: str) -> Path:
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2))
    a.plot(daily["day"], smooth(daily["invites_sent"]), label="invitations sent", color="#457b9d")
    a.plot(daily["day"], smooth(daily["invites_accepted"]), label="invitations accepted", color="#e63946")
    _style(a, "Invitations per day (7-day mean)", "per day")
    _legend(a, fontsize=8, frameon=False)
    b.plot(daily["day"], daily["k_factor"], color="#1d3557")
    b.axhline(1.0, color="grey", ls="--", lw=0.8)
    _style(b, "K-factor: accepted invitations per new user (30-day window)", "K")
    _title(fig, label)
    _place(fig)
    return _write(fig, path)


SOURCE_COLOURS = {"organic": "#8d99ae", "promotion": "#e76f51", "recommendation": "#2a9d8f", "group_buy": "#c44e52",
                  "assist": "#8172b3", "content": "#937860", "distribution": "#da8bc3", "livestream": "#e9c46a"}


def orders(daily: pd.DataFrame, path: Path, label: str) -> Path:
    """Orders per day stacked by source (daily, so campaign spikes and dips show), and category Gini."""

    sources = [s for s in ORDER_SOURCES if f"orders_{s}" in daily and daily[f"orders_{s}"].sum() > 0]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    a.stackplot(daily["day"], np.vstack([daily[f"orders_{s}"] for s in sources]), labels=sources,
                colors=[SOURCE_COLOURS.get(s, "#999999") for s in sources], alpha=0.85, lw=0)
    _style(a, "Orders per day by what drove them (last touch)", "orders per day")
    _legend(a, loc="upper left", fontsize=8, frameon=False)
    b.plot(daily["day"], daily["category_gini"], color="#bbbbbb", lw=0.8, label="daily")
    b.plot(daily["day"], smooth(daily["category_gini"]), color="#264653", lw=1.6, label="7-day mean")
    b.set_ylim(0, 1)
    _style(b, "Concentration of sales over categories (Gini)", "Gini")
    _legend(b, fontsize=8, frameon=False)
    _title(fig, label)
    _place(fig)
    return _write(fig, path)


def _unit(columns: list[str]) -> str:
    if all(c.endswith("_rmb") for c in columns):
        return "RMB per day"
    if all(c.endswith("_pct") for c in columns):
        return "percent"
    return "per day"


def mechanisms(daily: pd.DataFrame, enabled: list[str], path: Path, label: str) -> Path | None:
    """One panel per enabled mechanism with the daily counters it declares (7-day means)."""
    panels = mechanism_panels(daily, enabled)
    if not panels:
        return None
    ncol = min(3, len(panels))
    nrow = -(-len(panels) // ncol)
    fig = plt.figure(figsize=(max(4.6 * ncol, 7.0), 4.4 * nrow))  # wide enough for the title
    grid = fig.add_gridspec(nrow, ncol)
    axes = [fig.add_subplot(grid[k // ncol, k % ncol]) for k in range(len(panels))]  # (the last row's empty cells: none)
    for ax, (name, cols) in zip(axes, panels):
        # Money (names ending in _rmb) and levels in percent (_pct) get their own axis on the right,
        # dashed; counts spread over orders of magnitude go on a log scale.
        right = [c for c in cols if c.endswith(("_rmb", "_pct"))]
        left = [c for c in cols if c not in right] or right
        right = [c for c in right if c not in left]
        lines = []
        for k, col in enumerate(left):
            lines += ax.plot(daily["day"], smooth(daily[col]), label=col.replace("_", " "), lw=1.3, color=f"C{k}")
        peaks = [float(smooth(daily[c]).max()) for c in left]
        if len(peaks) > 1 and max(peaks) > 100 * max(min(peaks), 1e-9):
            ax.set_yscale("symlog", linthresh=1.0)
        _style(ax, name.replace("_", " "), _unit(left))
        if right:
            rax = ax.twinx()
            for k, col in enumerate(right, start=len(left)):
                lines += rax.plot(daily["day"], smooth(daily[col]), label=col.replace("_", " "), lw=1.3, ls="--", color=f"C{k}")
            rax.set_ylabel(f"{_unit(right)} (dashed)", fontsize=8)
            rax.spines["top"].set_visible(False)
        # Below the panel, so that it never hides a curve.
        ax.legend(lines, [ln.get_label() for ln in lines], fontsize=7, frameon=False, loc="upper center",
                  bbox_to_anchor=(0.5, -0.2), ncol=2)
    _title(fig, label)
    # Between columns: the right axis's labels and the next panel's left ones; between rows: the x axis,
    # the legend (up to four rows) and the next title.
    _place(fig, left=0.9, right=0.8, top=0.75, bottom=1.25, across=1.55, down=1.6)
    return _write(fig, path)


def mechanism_panels(daily: pd.DataFrame, enabled: list[str]) -> list[tuple[str, list[str]]]:
    """The panels of ``mechanisms.png``: each enabled mechanism with the daily counters it declares that moved."""
    from sim.mechanisms import REGISTRY

    panels = [(name, [c for c in REGISTRY[name].columns if c in daily and (daily[c] != 0).any()]) for name in enabled]
    return [(name, cols) for name, cols in panels if cols]


def run_plan(result) -> dict[str, Callable[[Path], Path]]:
    """The plots of a run, in the report's order: name -> a function drawing ``<name>.png`` into a folder."""
    from sim.diffusion import adoption_only

    cfg = result.config
    label = f"{cfg.scenario} · seed {cfg.seed} · {cfg.population.size:,} people · {cfg.horizon} days"
    daily, cohorts = result.daily, result.cohorts
    plan = {"growth": lambda folder: growth(daily, folder / "growth.png", label)}
    if adoption_only(cfg):  # a textbook diffusion model: who adopted when, nothing of the platform's money or visits
        return plan
    plan.update({
        "activity": lambda folder: activity(daily, folder / "activity.png", label),
        "retention": lambda folder: retention(cohorts, folder / "retention.png", label, len(daily)),
        "cohort_heatmap": lambda folder: cohort_heatmap(cohorts, folder / "cohort_heatmap.png", label),
        "money": lambda folder: money(daily, folder / "money.png", label),
    })
    if daily["invites_sent"].sum() > 0:
        plan["viral"] = lambda folder: viral(daily, folder / "viral.png", label)
    if (daily["orders"] > daily["orders_organic"]).any():
        plan["orders"] = lambda folder: orders(daily, folder / "orders.png", label)
    if mechanism_panels(daily, cfg.enabled()):
        plan["mechanisms"] = lambda folder: mechanisms(daily, cfg.enabled(), folder / "mechanisms.png", label)
    return plan


#: The run plots drawn from the cohort table; the others need the daily table alone, which a run's
#: plot helpers have before the cohort table is written (:class:`sim.runs.PlotHelper`).
COHORT_PLOTS = frozenset({"retention", "cohort_heatmap"})


#: Seconds a run plot takes to draw the first time in a plotting process, as a plot helper draws it
#: (100,000 people, every mechanism, a year; the others about 0.17 s), and the other work of the
#: process that writes a run folder (tables, report): what :func:`split` balances. Only the
#: proportions matter, and they hold at other sizes. (The mechanisms' figure takes about as long as
#: all the others together.)
DRAW_SECONDS = {"mechanisms": 1.3, "retention": 0.5, "cohort_heatmap": 0.25, "orders": 0.22, "growth": 0.2, "money": 0.2}
OTHER_SECONDS = 0.17
FOLDER_WRITER_SECONDS = 0.2
MECHANISM_PANEL_SECONDS = 0.1  # (the mechanisms' figure, a panel: 13 panels 1.3 s, 2 panels 0.14 s)


def draw_seconds(result) -> dict[str, float]:
    """:data:`DRAW_SECONDS` for the run of ``result``: its mechanisms' figure in proportion to its
    panels (a run of two mechanisms draws it as fast as any other figure)."""
    return {**DRAW_SECONDS, "mechanisms": MECHANISM_PANEL_SECONDS * len(mechanism_panels(result.daily, result.config.enabled()))}


def split(names: Sequence[str], shares: int, writer_draws: bool = True, seconds: dict[str, float] | None = None) -> list[list[str]]:
    """``names`` in ``shares`` groups of about equal drawing time (the longest first, each to the least
    busy group), each in plan order; ``seconds``: what each takes (default :data:`DRAW_SECONDS`, see
    :func:`draw_seconds`). ``writer_draws``: group 0 is the run folder's writer's, which starts busy
    with its other work (:data:`FOLDER_WRITER_SECONDS`)."""
    seconds = DRAW_SECONDS if seconds is None else seconds
    busy = [FOLDER_WRITER_SECONDS if shares > 1 and writer_draws else 0.0] + [0.0] * (shares - 1)
    groups: list[set[str]] = [set() for _ in range(shares)]
    for name in sorted(names, key=lambda n: -seconds.get(n, OTHER_SECONDS)):  # (stable: plan order among equals)
        k = busy.index(min(busy))
        groups[k].add(name)
        busy[k] += seconds.get(name, OTHER_SECONDS)
    return [[n for n in names if n in group] for group in groups]


def warm_up() -> None:
    """Draw a small figure, into memory, as the run plots are drawn (log scale, legend, titles), to fill
    the caches a first figure fills (fonts, the mathtext parser): a tenth of a second that a process
    loading the plots ahead of time (:func:`sim.runs.preload_plots`) spares its plotting processes."""
    fig, ax = plt.subplots(figsize=(2.0, 2.0))
    ax.plot([1, 2], [1, 100], label="line")
    ax.set_yscale("log")
    _style(ax, "title")
    _legend(ax, fontsize=8)
    _title(fig, "label")
    _write(fig, io.BytesIO())


class InMemory:
    """A folder stand-in for a plan's drawing functions (:func:`run_plan`): ``memory / "name.png"``
    is a buffer the PNG is written into, kept in :attr:`files` (name -> bytes) until the run folder
    they go to exists (:func:`draw_in_memory`)."""

    def __init__(self):
        self._buffers: dict[str, io.BytesIO] = {}

    def __truediv__(self, name: str) -> io.BytesIO:
        self._buffers[name] = io.BytesIO()
        return self._buffers[name]

    @property
    def files(self) -> dict[str, bytes]:
        return {name: buffer.getvalue() for name, buffer in self._buffers.items()}


def draw_in_memory(plan: dict[str, Callable], names: Sequence[str]) -> dict[str, bytes]:
    """Draw the plots ``names`` of ``plan`` (:func:`run_plan`) into memory: file name -> the PNG's
    bytes, the same bytes as drawn into a folder (:func:`run_plots`)."""
    memory = InMemory()
    _without_collection(lambda: [plan[name](memory) for name in names])
    return memory.files


def _without_collection(draw: Callable[[], object]) -> None:
    """``draw()`` with no garbage collection: a collection walks every object alive, which in a
    forked helper copies every page it shares with its parent; the figures' cycles are collected afterwards."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        draw()
    finally:
        if collecting:
            gc.enable()


def run_plots(result, folder: Path, share: tuple[int, int] = (0, 1), writer_draws: bool = True) -> dict[str, Path]:
    """Draw the plots of a run into ``folder``; returns name -> path of every plot of the run.

    ``share=(k, n)``: draw only the k-th of ``n`` groups of :func:`split` (``writer_draws``: share 0
    is the folder writer's), the others being drawn by other processes at the same time
    (:func:`sim.runs.write_run_folder`)."""
    folder.mkdir(exist_ok=True)  # (not its parent: a run's temporary folder, which a helper never recreates once removed)
    plan = run_plan(result)
    mine = split(list(plan), share[1], writer_draws, draw_seconds(result))[share[0]]
    _without_collection(lambda: [plan[name](folder) for name in mine])
    return {name: folder / f"{name}.png" for name in plan}


# ============================================================================ experiments
# Comparisons and sweeps: every curve is a mean over replicates (or seeds) with its 95 % interval.
STRATEGY_COLOURS = plt.get_cmap("tab10").colors
CURVES = (("cumulative_users", "Users acquired (cumulative)", "people"), ("mau", "MAU", "people"),
          ("gmv", "GMV per day (7-day mean)", "RMB per day"), ("profit", "Cumulative profit", "RMB"))


def _curve(daily: pd.DataFrame, column: str) -> np.ndarray:
    """Replicates x days of one column, smoothed or accumulated as its panel shows it."""
    wide = daily.pivot(index="replicate", columns="day", values=column).to_numpy(dtype=np.float64)
    if column == "gmv":
        return pd.DataFrame(wide.T).rolling(7, min_periods=1).mean().to_numpy().T
    if column == "profit":
        return np.cumsum(wide, axis=1)
    return wide


def comparison_curves(daily: pd.DataFrame, strategies: list[str], path: Path, label: str, curves=CURVES) -> Path:
    """Each key curve (of ``curves``) per strategy: the mean over replicates and a 95 % band."""
    from sim.analysis.stats import band

    fig, axes = _grid(len(curves), 2, (6.0, 3.75))
    for ax, (column, title, unit) in zip(axes, curves):
        for k, s in enumerate(strategies):
            d = daily[daily["strategy"] == s]
            days = np.sort(d["day"].unique())
            mean, lo, hi = band(_curve(d, column))
            colour = STRATEGY_COLOURS[k % len(STRATEGY_COLOURS)]
            ax.plot(days, mean, color=colour, lw=1.6, label=s)
            ax.fill_between(days, lo, hi, color=colour, alpha=0.2, lw=0)
        if column == "profit":
            ax.axhline(0, color="grey", lw=0.8)
        _style(ax, title, unit)
    axes[0].legend(fontsize=8, frameon=False, loc="upper left")
    _title(fig, label)
    return _save(fig, path)


def comparison_retention(retention: pd.DataFrame, strategies: list[str], path: Path, label: str, max_age: int = 90) -> Path:
    """Day-N retention per strategy (log scale): the mean over replicates and a 95 % band."""
    from sim.analysis.stats import band

    fig, ax = plt.subplots(figsize=(8, 4.4))
    lowest = np.inf
    for k, s in enumerate(strategies):
        r = retention[(retention["strategy"] == s) & (retention["age"] >= 1) & (retention["age"] <= max_age)]
        wide = r.pivot(index="replicate", columns="age", values="retention")
        mean, lo, hi = band(wide.to_numpy(dtype=np.float64))
        colour = STRATEGY_COLOURS[k % len(STRATEGY_COLOURS)]
        ax.plot(wide.columns, mean, color=colour, lw=1.6, label=s)
        ax.fill_between(wide.columns, lo, hi, color=colour, alpha=0.2, lw=0)
        lowest = min(lowest, np.nanmin(np.where(mean > 0, mean, np.nan), initial=np.inf))
    ax.set_yscale("log")
    if np.isfinite(lowest):  # a band reaching down to zero (few replicates, old ages) must not squash the curves
        ax.set_ylim(bottom=lowest / 2)
    ax.yaxis.set_minor_locator(matplotlib.ticker.LogLocator(subs=(2.0, 5.0)))
    for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
        axis(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    _style(ax, "Day-N retention (share of a cohort visiting N days after joining)", "share of cohort", "days since joining")
    _legend(ax, fontsize=8, frameon=False)
    _title(fig, label)
    return _save(fig, path)


def _compact(x: float, _pos=None) -> str:
    """Axis numbers short enough not to collide: 45k, 1.2M."""
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def comparison_horizon(table: pd.DataFrame, strategies: list[str], metrics: list[str], path: Path, label: str) -> Path:
    """Each horizon metric per strategy: the mean (dot) and its 95 % interval (bar)."""
    from sim.analysis.comparison import METRICS

    ncol = min(4, len(metrics))
    nrow = -(-len(metrics) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.3 * ncol, 0.45 * len(strategies) * nrow + 1.6 * nrow), squeeze=False)
    ys = np.arange(len(strategies))[::-1]
    for ax, m in zip(axes.flat, metrics):
        rows = table[table["metric"] == m].set_index("strategy").reindex(strategies)
        for y, s, colour in zip(ys, strategies, STRATEGY_COLOURS * 10):
            r = rows.loc[s]
            err = np.array([[r["mean"] - r["ci_low"]], [r["ci_high"] - r["mean"]]]) if np.isfinite(r["ci_low"]) else None
            ax.errorbar(r["mean"], y, xerr=err, fmt="o", color=colour, capsize=3, ms=5)
        ax.set_yticks(ys, strategies, fontsize=8)
        meta = METRICS[m]
        ax.set_title(meta.label + (f" ({meta.unit})" if meta.unit else ""), fontsize=9, loc="left")
        ax.grid(alpha=0.3, axis="x")
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(axis="x", labelsize=8)
        if meta.fmt.endswith("%}"):
            ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        else:
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_compact))
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
        ax.margins(y=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    _title(fig, label)
    return _save(fig, path)


def comparison_differences(differences: pd.DataFrame, path: Path, label: str) -> Path:
    """Paired differences against the baseline, relative to its mean, with 95 % intervals."""
    from sim.analysis.comparison import METRICS
    from sim.analysis.stats import PairedDifference, effect_text

    labels = list(dict.fromkeys(differences["label"]))
    strategies = list(dict.fromkeys(differences["strategy"]))
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(labels) * max(1, len(strategies) * 0.6) + 1.5))
    step = 0.7 / max(len(strategies), 1)
    ys = np.arange(len(labels))[::-1]
    in_units = False
    for k, s in enumerate(strategies):
        d = differences[differences["strategy"] == s].set_index("label").reindex(labels)
        y = ys + 0.35 - step * (k + 0.5)
        colour = STRATEGY_COLOURS[(k + 1) % len(STRATEGY_COLOURS)]
        # As in the verdicts: a baseline near zero makes percentages meaningless; say it in the unit.
        width = (d["relative_high"] - d["relative_low"]).to_numpy(dtype=np.float64)
        ok = np.isfinite(width) & (width <= 1.0)
        rel = 100 * d["relative"].to_numpy(dtype=np.float64)
        err = 100 * np.vstack([d["relative"] - d["relative_low"], d["relative_high"] - d["relative"]]).astype(np.float64)
        ax.errorbar(rel[ok], y[ok], xerr=np.nan_to_num(err[:, ok]), fmt="o", color=colour, capsize=3, ms=5,
                    label=f"{s} vs {d['baseline'].iloc[0]}")
        for yy, (_, r) in zip(y[~ok], d[~ok].iterrows()):
            if r["n"] > 0 and np.isfinite(r["mean_difference"]):
                absolute = PairedDifference(r["mean_difference"], r["ci_low"], r["ci_high"], np.nan, np.nan, np.nan, 0, 0, int(r["n"]))
                # No % scale when the interval in % spans more than the baseline itself: a baseline near
                # zero (a profit near break-even) or few replicates of a noisy metric (the x label says so).
                in_units = True
                ax.annotate(effect_text(absolute, METRICS[r['metric']].difference_unit),
                            (0, yy), xytext=(4, 0), textcoords="offset points", va="center", fontsize=7.5, color=colour)
    ax.axvline(0, color="black", lw=0.9)
    ax.set_ylim(-0.6, len(labels) - 0.4)
    ax.set_yticks(ys, labels, fontsize=9)
    _style(ax, "Difference from the baseline (paired over replicates), % of the baseline's mean", "",
           "% difference" + ("\n(a difference written out is in the metric's own unit: its interval in % spans more than the baseline)"
                             if in_units else ""))
    _legend(ax, fontsize=8, frameon=False)
    _title(fig, label)
    return _save(fig, path)


def comparison_plots(comparison, folder: Path) -> dict[str, Path]:
    """Every plot of a comparison folder; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    c = comparison
    cfg = next(iter(c.configs.values()))
    label = f"{c.name} · {len(c.seeds)} replicates · {cfg.population.size:,} people · {cfg.horizon} days"
    from sim.diffusion import adoption_only

    adoption = all(adoption_only(cfg) for cfg in c.configs.values())  # textbook diffusion models: the adoption curve alone
    out = {"comparison_curves": comparison_curves(c.daily, c.strategies, folder / "curves.png", label, CURVES[:1] if adoption else CURVES)}
    if not adoption:
        out["comparison_retention"] = comparison_retention(c.retention, c.strategies, folder / "retention.png", label)
    out["comparison_horizon"] = comparison_horizon(c.table, c.strategies, list(c.spec.metrics), folder / "horizon.png", label)
    if len(c.differences):
        out["comparison_differences"] = comparison_differences(c.differences, folder / "differences.png", label)
    return out


def _short(key: str) -> str:
    return key.split(".")[-1].replace("_", " ")


def sweep_metric(horizon: pd.DataFrame, param: str, metrics: list[str], path: Path, label: str, by: str | None = None) -> Path:
    """Horizon metrics against one swept parameter: mean and 95 % interval over seeds (and over the
    other parameters, or one line per value of ``by``)."""
    from sim.analysis.comparison import METRICS, grouped_table

    ncol = min(2, len(metrics))
    nrow = -(-len(metrics) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(6 * ncol, 3.8 * nrow), squeeze=False)
    groups = [(None, horizon)] if by is None else list(horizon.groupby(by, sort=True))
    numeric = pd.api.types.is_numeric_dtype(horizon[param])
    for ax, m in zip(axes.flat, metrics):
        for k, (value, runs) in enumerate(groups):
            t = grouped_table(runs, [param], [m])
            colour = STRATEGY_COLOURS[k % len(STRATEGY_COLOURS)]
            name = None if by is None else f"{_short(by)} = {value}"
            if numeric:  # a line with a band: the parameter is a quantity
                x = t[param].to_numpy()
                ax.plot(x, t[m], "o-", color=colour, lw=1.5, ms=4, label=name)
                if t[f"{m}_low"].notna().any():
                    ax.fill_between(x, t[f"{m}_low"], t[f"{m}_high"], color=colour, alpha=0.2, lw=0)
            else:  # categories: points with interval bars, side by side, nothing joined
                x = np.arange(len(t)) + 0.12 * (k - (len(groups) - 1) / 2)
                err = np.vstack([t[m] - t[f"{m}_low"], t[f"{m}_high"] - t[m]]).astype(np.float64)
                ax.errorbar(x, t[m], yerr=np.nan_to_num(err), fmt="o", color=colour, capsize=3, ms=5, label=name)
                ax.set_xticks(np.arange(len(t)), t[param].astype(str))
        meta = METRICS[m]
        _style(ax, meta.label if "horizon" in meta.label else f"{meta.label} at the horizon", meta.unit, param)
        if meta.fmt.endswith("%}"):
            ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        if by is not None:
            _legend(ax, fontsize=8, frameon=False)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    _title(fig, label)
    return _save(fig, path)


def sweep_heatmap(horizon: pd.DataFrame, rows: str, cols: str, metrics: list[str], path: Path, label: str) -> Path:
    """Mean of each metric over seeds for every pair of values of two swept parameters."""
    from sim.analysis.comparison import METRICS, grouped_table

    fig, axes = plt.subplots(1, len(metrics), figsize=(6.2 * len(metrics), 4.8), squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        grid = grouped_table(horizon, [rows, cols], [m]).pivot(index=rows, columns=cols, values=m)
        values = grid.to_numpy(dtype=np.float64)
        diverging = np.nanmin(values) < 0 < np.nanmax(values)
        lim = np.nanmax(np.abs(values)) if diverging else None
        im = ax.imshow(values, aspect="auto", origin="lower", cmap="RdBu" if diverging else "viridis",
                       vmin=-lim if diverging else None, vmax=lim, interpolation="nearest")
        ax.set_xticks(range(len(grid.columns)), [str(c) for c in grid.columns], fontsize=8)
        ax.set_yticks(range(len(grid.index)), [str(i) for i in grid.index], fontsize=8)
        ax.set_xlabel(cols)
        ax.set_ylabel(rows)
        meta = METRICS[m]
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(j, i, meta.fmt.format(v), ha="center", va="center", fontsize=8,
                        color="black" if diverging or v > np.nanmean(values) else "white")
        ax.set_title(f"{meta.label} (mean over seeds)", fontsize=11, loc="left")
        fig.colorbar(im, ax=ax, label=meta.unit)
    _title(fig, label)
    return _save(fig, path)


def sweep_plots(sweep, folder: Path) -> dict[str, Path]:
    """The plots of a sweep folder: each metric against each swept parameter, and a heatmap over the
    first two; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    h, varied, metrics = sweep.horizon, sweep.varied, list(sweep.metrics)
    seeds = h["seed"].nunique() if "seed" in h else 1
    label = f"sweep of {', '.join(varied) or 'seeds'} · {len(h)} runs · {seeds} seed{'s' if seeds > 1 else ''} per point"
    out = {}
    for p in varied[:3]:
        others = [q for q in varied if q != p]
        by = others[0] if len(varied) == 2 else None
        out[f"sweep_{p}"] = sweep_metric(h, p, metrics, folder / f"sweep_{p.replace('/', '_')}.png", label, by=by)
    if len(varied) >= 2:
        out["sweep_heatmap"] = sweep_heatmap(h, varied[0], varied[1], metrics[:2], folder / "heatmap.png", label)
    return out


def _grid(n: int, ncol: int, size: tuple[float, float]):
    ncol = min(ncol, n)
    nrow = -(-n // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(size[0] * ncol, size[1] * nrow), squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)[:n]


def _param_label(key: str) -> str:
    """A config key short enough for a label, still telling mechanisms apart: ``referral.conversion``."""
    return ".".join(key.split(".")[-2:])


def _morris_panel(ax, t: pd.DataFrame, meta) -> None:
    """One metric's Morris indices as a dot plot, a row per parameter named on the axis (most
    influential on top, so no two labels can overlap): mu* (dot) with its 95 % interval, sigma (hollow
    diamond: right of the dot, the effect changes sign or size with the other parameters) and the seed
    noise floor as a grey band from zero."""
    rows = np.arange(len(t))[::-1]
    floor = float(t["noise_floor"].iloc[0]) if "noise_floor" in t else np.nan
    if np.isfinite(floor) and floor > 0:
        ax.axvspan(0, floor, color="0.8", alpha=0.6, lw=0, label="seed noise floor")
    mu = t["mu_star"].to_numpy(np.float64)
    err = np.vstack([mu - t["mu_star_low"].to_numpy(np.float64), t["mu_star_high"].to_numpy(np.float64) - mu])
    ax.errorbar(mu, rows, xerr=err, fmt="o", color="#1f4e79", capsize=3, ms=6, label="mu* (95 % interval)")
    ax.plot(t["sigma"].to_numpy(np.float64), rows, "D", mfc="none", color="#c44e52", ms=6, label="sigma")
    ax.set_yticks(rows, [_param_label(p) for p in t["parameter"]], fontsize=8)
    ax.set_ylim(-0.6, len(t) - 0.4)
    ax.set_xlim(0, None)
    _style(ax, meta.label, "", f"mu* and sigma ({meta.unit}, across the whole range)" if meta.unit else "mu* and sigma (across the whole range)")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_compact))
    _legend(ax, fontsize=7, frameon=False, loc="lower right")


def sensitivity_plot(indices: pd.DataFrame, method: str, path: Path, label: str) -> Path:
    """Sensitivity indices, a panel per metric, a row per parameter (most influential on top). Morris:
    mu* (importance) with its bootstrap interval and sigma (non-linearity or interaction), beside the
    seed noise floor (:func:`_morris_panel`). Sobol: first-order S1 and total ST bars with bootstrap
    intervals, beside the noise floor of ST."""
    from sim.analysis.comparison import METRICS

    metrics = list(dict.fromkeys(indices["metric"]))
    fig, axes = _grid(len(metrics), 2, (6.4, 0.45 * indices["parameter"].nunique() + 1.6))
    for ax, m in zip(axes, metrics):
        t = indices[indices["metric"] == m].sort_values("rank")
        meta = METRICS[m]
        if method == "morris":
            _morris_panel(ax, t, meta)
        else:
            ys = np.arange(len(t))[::-1]
            h = 0.38
            for k, (col, colour) in enumerate((("S1", "#4c72b0"), ("ST", "#dd8452"))):
                vals = t[col].to_numpy(np.float64)
                ax.barh(ys + (h / 2 if k == 0 else -h / 2), np.nan_to_num(vals), height=h, color=colour, label=col,
                        xerr=np.nan_to_num(t[f"{col}_conf"].to_numpy(np.float64)), error_kw={"capsize": 3, "lw": 1})
            floor = float(t["noise_floor"].iloc[0]) if "noise_floor" in t else np.nan
            if np.isfinite(floor) and floor > 0:
                ax.axvspan(0, floor, color="0.8", alpha=0.5, lw=0, label="seed noise floor (ST)")
            ax.set_yticks(ys, [_param_label(p) for p in t["parameter"]], fontsize=8)
            ax.axvline(0, color="grey", lw=0.8)
            _style(ax, meta.label, "", "share of variance")
            _legend(ax, fontsize=8, frameon=False, loc="lower right")
    _title(fig, label)
    return _save(fig, path)


def sensitivity_per_sd(indices: pd.DataFrame, path: Path, label: str) -> Path:
    """Morris mu* / sd as a table of colours: a row per parameter (most influential on average first),
    a column per metric, the value written in each cell; cells at or below the seed noise floor grey."""
    from sim.analysis.comparison import METRICS

    metrics = list(dict.fromkeys(indices["metric"]))
    table = indices.pivot(index="parameter", columns="metric", values="mu_star_per_sd")[metrics]
    table = table.loc[table.mean(axis=1).sort_values(ascending=False, kind="stable").index]
    noise = (indices.pivot(index="parameter", columns="metric", values="mu_star") <= indices.pivot(index="parameter", columns="metric",
                                                                                                   values="noise_floor")).loc[table.index, metrics]
    values = table.to_numpy(np.float64)
    fig, ax = plt.subplots(figsize=(2.0 * len(metrics) + 3.6, 0.5 * len(table) + 1.9))
    image = ax.imshow(np.ma.masked_array(values, noise.to_numpy() | ~np.isfinite(values)), cmap=plt.get_cmap("Blues").with_extremes(bad="0.88"),
                      aspect="auto", vmin=0, vmax=max(np.nanmax(values), 1e-12) if np.isfinite(values).any() else 1)
    for (i, j), v in np.ndenumerate(values):
        text = "–" if not np.isfinite(v) else f"{v:.2f}" + ("\n(noise)" if noise.iat[i, j] else "")
        dark = np.isfinite(v) and not noise.iat[i, j] and v > 0.6 * np.nanmax(values)
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "#333")
    ax.set_xticks(range(len(metrics)), [METRICS[m].label for m in metrics], fontsize=9)
    ax.set_yticks(range(len(table)), [_param_label(p) for p in table.index], fontsize=9)
    ax.tick_params(length=0)
    ax.set_title("mu* / standard deviation of the metric over the design", fontsize=11, loc="left")
    fig.colorbar(image, ax=ax, shrink=0.8, label="mu* / sd")
    _title(fig, label)
    return _save(fig, path)


SERIES_LABELS = {"retention": ("day-N retention", "share of the cohort", "age (days since joining)"),
                 "cumulative_users": ("users acquired so far", "people", "day"), "new_users": ("new users per day", "people", "day"),
                 "dau": ("daily active users", "people", "day"), "mau": ("monthly active users", "people", "day")}


def calibration_fit(fit: pd.DataFrame, path: Path, label: str) -> Path:
    """Each calibration target (dots) against the fitted model rerun at fresh seeds: the mean (line)
    and its 95 % band, a panel per target, expressed as the target is (a share of the market, a
    period's aggregate, relative to a reference point)."""
    groups = list(fit.groupby("name", sort=False))
    fig, axes = _grid(len(groups), 2, (6.0 if len(groups) > 1 else 9.0, 4.0))
    for ax, (name, t) in zip(axes, groups):
        metric, source, expressed = t["metric"].iloc[0], t["label"].iloc[0], t["expressed"].iloc[0]
        title, unit, xlabel = SERIES_LABELS.get(metric, (metric.replace("_", " "), "", "day"))
        if expressed != metric:  # a transformed target: say how it is expressed, not the column's own unit
            title, unit = textwrap.fill(f"{name}: {expressed}" if name != metric else expressed, 58), ""
        ax.plot(t["at"], t["mean"], color="#4c72b0", lw=1.6, label="simulated (mean of fresh seeds)")
        ax.fill_between(t["at"], t["low"], t["high"], color="#4c72b0", alpha=0.25, lw=0, label="95 % interval of the mean")
        seen = t[t["target"].notna()]
        ax.plot(seen["at"], seen["target"], "o", color="#c44e52", ms=4 if len(seen) > 20 else 6, label=textwrap.fill(f"target ({source})", 48))
        _style(ax, title, unit, xlabel)
        if metric == "retention" and expressed == metric:
            ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
            ax.set_ylim(bottom=0)
        else:
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_compact))
        _legend(ax, fontsize=8, frameon=False)
    _title(fig, label)
    return _save(fig, path)


def calibration_loss(trials: pd.DataFrame, params: list[str], path: Path, label: str) -> Path:
    """The loss of every trial and the best so far (log scale), and the values each parameter was
    tried at, coloured by loss (where the sampler concentrated)."""
    fig, axes = _grid(1 + len(params), 3, (4.6, 3.6))
    ax = axes[0]
    finite = trials[np.isfinite(trials["loss"])]
    ax.plot(finite["trial"], finite["loss"], "o", color="#8c8c8c", ms=3.5, label="trial")
    ax.step(trials["trial"], trials["best_loss"], where="post", color="#264653", lw=1.6, label="best so far")
    if (finite["loss"] > 0).all():
        ax.set_yscale("log")
    _style(ax, "loss", "", "trial")
    _legend(ax, fontsize=8, frameon=False)
    best = trials.loc[trials["loss"].idxmin()]
    for ax, p in zip(axes[1:], params):
        sc = ax.scatter(finite["trial"], finite[p], c=np.log10(np.maximum(finite["loss"], 1e-300)), cmap="viridis_r", s=14)
        ax.axhline(best[p], color="#c44e52", lw=1, ls="--", label=f"best {best[p]:.4g}")
        _style(ax, _param_label(p), "", "trial")
        _legend(ax, fontsize=8, frameon=False)
    fig.colorbar(sc, ax=axes[-1], label="log10 loss")
    _title(fig, label)
    return _save(fig, path)


# ------------------------------------------------------------------------------ optimisation
FRONT_COLOUR, BASELINE_COLOUR, TRIAL_COLOUR = "#c44e52", "#222222", "#9a9a9a"


def _axis_label(metric: str, sense: str) -> str:
    from sim.analysis.comparison import METRICS

    meta = METRICS[metric]
    unit = f" ({meta.unit})" if meta.unit and meta.unit != meta.label else ""
    return f"{meta.label}{unit}, {'higher' if sense == 'maximise' else 'lower'} is better"


def _errors(rows: pd.DataFrame, metric: str) -> np.ndarray:
    """Asymmetric error bars (below, above) of a mean and its 95 % interval (0 where unknown)."""
    return np.nan_to_num(np.vstack([rows[metric] - rows[f"{metric}_low"], rows[f"{metric}_high"] - rows[metric]]))


def _trials_scatter(ax, trials: pd.DataFrame, x: str, y: str) -> None:
    """Every trial at the search seeds: feasible ones as dots, infeasible ones as crosses."""
    ok = trials["feasible"]
    ax.plot(trials.loc[ok, x], trials.loc[ok, y], "o", color=TRIAL_COLOUR, ms=3.5, alpha=0.6, label="trial (search seeds)")
    if (~ok).any():
        ax.plot(trials.loc[~ok, x], trials.loc[~ok, y], "x", color=TRIAL_COLOUR, ms=4, alpha=0.6, label="infeasible trial")


def optimisation_front(opt, path: Path, label: str) -> Path:
    """The answer of an optimisation. Several objectives: a panel per pair of them (at most three),
    every trial at the search seeds in grey, the re-evaluated candidates with their 95 % intervals
    at the fresh seeds (hollow: off the front), the front in colour joined in order, the baseline as
    a black star. One objective: each candidate's mean and interval against the baseline's, and the
    objective against each searched parameter."""
    objectives = list(opt.section.objectives)
    cands = opt.candidates
    base = cands[cands["candidate"] == "baseline"]
    front = opt.front[opt.front["candidate"] != "baseline"]
    off = cands[~cands["on_front"] & (cands["candidate"] != "baseline")]
    if len(objectives) >= 2:
        pairs = [(a, b) for i, a in enumerate(objectives) for b in objectives[i + 1:]][:3]
        fig, axes = _grid(len(pairs), 3, (6.2, 4.8) if len(pairs) > 1 else (8.5, 5.6))
        for ax, (a, b) in zip(axes, pairs):
            x, y = a.metric, b.metric
            _trials_scatter(ax, opt.trials, x, y)
            for c in opt.section.parsed_constraints:  # a bound on a plotted objective, at the fresh seeds
                if c.metric in (x, y):
                    at = c.offset + (float(base[c.metric].iloc[0]) if c.relative else 0.0)
                    (ax.axhline if c.metric == y else ax.axvline)(at, color="#8c8c8c", ls=":", lw=1.2, label=f"constraint: {c.text} (fresh seeds)")
            if len(off):
                ax.errorbar(off[x], off[y], xerr=_errors(off, x), yerr=_errors(off, y), fmt="o", mfc="white", color="#4c72b0",
                            capsize=2, ms=5, lw=0.8, label="candidate off the front (fresh seeds)")
            if len(front):
                line = front.sort_values(x)
                ax.plot(line[x], line[y], "-", color=FRONT_COLOUR, lw=1, alpha=0.6)
                ax.errorbar(front[x], front[y], xerr=_errors(front, x), yerr=_errors(front, y), fmt="o", color=FRONT_COLOUR,
                            capsize=3, ms=6, label="front (fresh seeds, 95 % intervals)")
                for _, r in front.iterrows():
                    ax.annotate(r["candidate"], (r[x], r[y]), textcoords="offset points", xytext=(5, 4), fontsize=8, color=FRONT_COLOUR)
            ax.errorbar(base[x], base[y], xerr=_errors(base, x), yerr=_errors(base, y), fmt="*", color=BASELINE_COLOUR, capsize=3, ms=12,
                        label="baseline (the scenario as it is)")
            _style(ax, "", _axis_label(y, b.sense), _axis_label(x, a.sense))
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_formatter(matplotlib.ticker.FuncFormatter(_compact))
            _legend(ax, fontsize=7, frameon=False)
    else:
        metric, sense = objectives[0].metric, objectives[0].sense
        params = opt.params[:3]
        fig, axes = _grid(1 + len(params), 2, (5.6, 4.2))
        ax = axes[0]
        shown = pd.concat([front, cands[~cands["on_front"]]])  # the front first, then the others (the baseline among them)
        ys = np.arange(len(shown))[::-1]
        for yv, (_, r) in zip(ys, shown.iterrows()):
            is_base = r["candidate"] == "baseline"
            colour = FRONT_COLOUR if r["on_front"] else BASELINE_COLOUR if is_base else "#4c72b0"
            ax.errorbar(r[f"{metric}_diff"], yv, xerr=None if is_base else _errors(pd.DataFrame([r]), f"{metric}_diff"),
                        fmt="*" if is_base else "o", color=colour, capsize=3, ms=11 if is_base else 6)
        ax.axvline(0, color=BASELINE_COLOUR, lw=0.8)
        ax.set_yticks(ys, [f"{r['candidate']}{' (best)' if r['on_front'] else ''}" for _, r in shown.iterrows()], fontsize=8)
        _style(ax, "against the baseline, paired (fresh seeds)", "", f"difference in {_axis_label(metric, sense)}")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_compact))
        for ax, p in zip(axes[1:], params):
            numeric = pd.api.types.is_numeric_dtype(opt.trials[p])
            _trials_scatter(ax, opt.trials if numeric else opt.trials.assign(**{p: opt.trials[p].astype(str)}), p, metric)
            for rows, colour, name in ((off, "#4c72b0", "candidate (fresh seeds)"), (front, FRONT_COLOUR, "best (fresh seeds)")):
                if len(rows):
                    xs = rows[p] if numeric else rows[p].astype(str)
                    ax.errorbar(xs, rows[metric], yerr=_errors(rows, metric), fmt="o", color=colour, capsize=3, ms=5, label=name)
            ax.axhline(float(base[metric].iloc[0]), color=BASELINE_COLOUR, ls="--", lw=1, label="baseline (fresh seeds)")
            _style(ax, _param_label(p), _axis_label(metric, sense), p.split(".")[-1])
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_compact))
            _legend(ax, fontsize=7, frameon=False)
    _title(fig, label)
    return _save(fig, path)


def optimisation_history(opt, path: Path, label: str) -> Path:
    """Each objective of every trial at the search seeds, in the order tried (crosses: infeasible),
    the best feasible value so far, and the baseline's value at the same seeds (dashed)."""
    objectives = list(opt.section.objectives)
    fig, axes = _grid(len(objectives), 2, (6.0, 3.8))
    t = opt.trials
    for ax, x in zip(axes, objectives):
        _trials_scatter(ax, t, "trial", x.metric)
        signed = np.where(t["feasible"], t[x.metric] * x.sign, -np.inf)
        best = np.maximum.accumulate(signed) * x.sign
        ax.step(t["trial"], np.where(np.isfinite(best), best, np.nan), where="post", color="#264653", lw=1.6, label="best feasible so far")
        ax.axhline(opt.search_baseline[x.metric], color=BASELINE_COLOUR, ls="--", lw=1, label="baseline (search seeds)")
        _style(ax, _axis_label(x.metric, x.sense), "", "trial")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_compact))
        _legend(ax, fontsize=7, frameon=False)
    _title(fig, label)
    return _save(fig, path)


def optimisation_importance(importance: pd.DataFrame, path: Path, label: str) -> Path:
    """How much of each objective's variation over the trials goes with each parameter alone
    (omega squared), a panel per objective, largest on top."""
    from sim.analysis.comparison import METRICS

    fig, axes = _grid(len(importance), 3, (4.6, 0.45 * importance.shape[1] + 1.6))
    for ax, (objective, scores) in zip(axes, importance.iterrows()):
        s = scores.fillna(0.0).sort_values()
        ax.barh(np.arange(len(s)), s.to_numpy(), color="#4c72b0")
        ax.set_yticks(np.arange(len(s)), [_param_label(p) for p in s.index], fontsize=8)
        ax.set_xlim(0, max(1.0, float(s.max())))
        _style(ax, METRICS[objective].label, "", "share of the variation over the trials")
    _title(fig, label)
    return _save(fig, path)
