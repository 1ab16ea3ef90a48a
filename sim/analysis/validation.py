"""Validation: does the model, at its default settings, reproduce what is known about online platforms?

A registry of stylized facts (DESIGN section 7). Each fact is one function, registered with
:func:`fact`, that runs or reuses simulations, measures one thing, draws one plot and says pass or
fail against a stated criterion taken from its reference. ``validate()`` runs the registry and
returns a :class:`Validation` (a table, one :class:`Finding` per fact); ``Validation.save`` writes a
folder with ``report.html``, ``facts.csv``, ``facts.json`` and ``plots/`` atomically. ``sim validate``
is the command-line face (exit code 0 when every fact passes, 1 otherwise).

Facts measured now:

- ``early_churn``: heavy early churn, day-1 retention around 20-25 %, day-30 around 5-10 %, and
  conditional retention rising with tenure (Fader and Hardie 2007; public app benchmarks);
- ``bass_s_curve``: word-of-mouth adoption is S-shaped and a Bass curve fits it with imitation
  above innovation (Bass 1969; meta-analytic means p = 0.03, q = 0.38, Sultan, Farley and
  Lehmann 1990);
- ``invitation_saturation``: the chance of joining saturates in the invitations received and
  repeated invitations from the same sender lose force (Leskovec, Adamic and Huberman 2007);
- ``referred_retention``: referred users stay more (about 18 % more likely to stay: Schmitt,
  Skiera and Van den Bulte 2011);
- ``reward_tradeoff``: larger referral rewards bring more users but less profit per user (same);
- ``complex_contagion_clustering``: behaviour that needs reinforcement spreads further on
  clustered networks than on random ones of the same degree (Centola 2010).

Facts that need mechanisms not built yet are listed in :data:`PENDING` and shown as pending; each
becomes one more ``@fact`` function once its mechanism exists.
"""

from __future__ import annotations

import html
import json
import math
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from sim.config import CHANNELS, compose
from sim.engine import GrowthModel
from sim.metrics import summary as horizon_summary
from sim.population import State
from sim.schema import ConfigError

REFERRAL = CHANNELS.index("referral")


# ============================================================================ sizes and results
@dataclass(frozen=True)
class Size:
    """How large the validation runs are (``full`` for the report, ``quick`` for tests)."""

    name: str
    population: int  # people in the default-scenario runs
    horizon: int  # days of the default-scenario runs
    replicates: int  # seeds per setting
    reward_population: int  # people in each run of the reward sweep
    contagion_population: int  # people in each run of the clustering experiment
    contagion_horizon: int

    @property
    def retention_age(self) -> int:
        """Age (days) at which 'still a user' is compared between channels."""
        return min(180, self.horizon // 2)


FULL = Size("full", 100_000, 365, 3, 30_000, 20_000, 365)
QUICK = Size("quick", 20_000, 180, 1, 8_000, 10_000, 180)
SIZES = {"full": FULL, "quick": QUICK}


@dataclass
class Outcome:
    """What a fact function returns: the figure in words, the verdict and the numbers behind it."""

    figure: str
    passed: bool
    values: dict = field(default_factory=dict)


@dataclass
class Finding:
    """One row of the validation table."""

    name: str
    title: str
    measured: str
    figure: str
    reference: str
    criterion: str
    status: str  # "pass", "fail" or "pending"
    plot: Path | None = None
    values: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "pass"


@dataclass(frozen=True)
class Fact:
    name: str
    title: str
    measured: str
    reference: str
    criterion: str
    measure: Callable[[Context, Path], Outcome]


#: name -> fact, in the order they are reported
FACTS: dict[str, Fact] = {}

#: facts waiting for a mechanism being built: name -> (mechanism, title, reference)
PENDING: dict[str, tuple[str, str, str]] = {
    "post_promotion_dip": ("promotions", "A promotion's sales bump is followed by a dip below baseline",
                           "van Heerde, Leeflang and Wittink 2000; Macé and Neslin 2004"),
    "recommendation_diversity": ("recommendations", "Recommenders raise orders but can lower aggregate diversity",
                                 "Fleder and Hosanagar 2009; Sharma, Hofman and Watts 2015"),
}


def fact(name: str, title: str, measured: str, reference: str, criterion: str):
    """Register a fact: ``measure(ctx, plot_path) -> Outcome`` draws its plot at ``plot_path``."""

    def register(measure: Callable[[Context, Path], Outcome]) -> Callable[[Context, Path], Outcome]:
        if name in FACTS:
            raise ValueError(f"fact {name!r} registered twice")
        FACTS[name] = Fact(name, title, measured, reference, criterion, measure)
        return measure

    return register


# ============================================================================ running the model
class InviteLog:
    """Observes one channel's social exposures to non-users in a model: for each, how many social
    exposures the receiver had had before it, how many earlier ones came from the same sender on
    that edge, and whether the receiver joined through it. It reads the model's state the way the
    adoption stage does (``GrowthModel._social_response``) and changes nothing."""

    MAX_PRIOR, MAX_REPEATS = 40, 8

    def __init__(self, model: GrowthModel, channel: int):
        self.channel = channel
        self.events = np.zeros((self.MAX_PRIOR + 1, self.MAX_REPEATS + 1), dtype=np.int64)
        self.wins = np.zeros_like(self.events)
        self._today: tuple[np.ndarray, ...] | None = None
        model.hooks["exposure"].append(self.before_adoption)  # last: every social exposure is in
        model.hooks["adoption"].append(self.after_adoption)

    def before_adoption(self, model: GrowthModel) -> None:
        from sim.behaviour import rank_within

        pop = model.pop
        receiver, channel, _prob, sender, edge = model.today.exposures.arrays()
        keep = (pop.state[receiver] <= State.AWARE) & (sender >= 0)
        receiver, channel, sender, edge = receiver[keep], channel[keep], sender[keep], edge[keep]
        prior = pop.invites_received[receiver].astype(np.int64) + rank_within(receiver)
        if model.edge_sends is not None:
            repeats = model.edge_sends[edge].astype(np.int64) + rank_within(edge)
        else:
            repeats = np.zeros(receiver.size, dtype=np.int64)
        mine = channel == self.channel
        self._today = (receiver[mine], sender[mine], prior[mine], repeats[mine])

    def after_adoption(self, model: GrowthModel) -> None:
        receiver, sender, prior, repeats = self._today
        pop = model.pop
        won = (pop.joined_day[receiver] == model.day) & (pop.referrer[receiver] == sender) & (pop.channel[receiver] == self.channel)
        # The same sender reaching someone twice in a day: one join, credited to the first of them.
        hit = np.flatnonzero(won)
        won[hit] = False
        won[hit[np.unique(receiver[hit], return_index=True)[1]]] = True
        cell = (np.minimum(prior, self.MAX_PRIOR), np.minimum(repeats, self.MAX_REPEATS))
        np.add.at(self.events, cell, 1)
        np.add.at(self.wins, cell, won.astype(np.int64))


@dataclass
class Run:
    """The frames of one validation run (no files)."""

    daily: pd.DataFrame
    cohorts: pd.DataFrame
    summary: dict
    invites: InviteLog | None = None


class Context:
    """What the facts share: the size, the user's overrides, the seeds and a cache of runs."""

    def __init__(self, size: Size, overrides: Sequence[str] = (), seed: int = 0, replicates: int | None = None):
        self.size = size
        self.overrides = list(overrides)
        self.seed = seed
        self.replicates = replicates or size.replicates
        self._cache: dict[tuple, list[Run]] = {}

    def runs(self, scenario: str, settings: Sequence[str], observe: bool = False) -> list[Run]:
        """Replicate runs of ``scenario`` with the user's overrides, then ``settings`` (which win)."""
        key = (scenario, tuple(settings), observe)
        if key not in self._cache:
            cfg = compose(scenario, [*self.overrides, *settings])
            out = []
            for r in range(self.replicates):
                model = GrowthModel(cfg.with_seed(self.seed + r))
                log = InviteLog(model, REFERRAL) if observe else None
                model.run()
                daily = model.metrics.daily(model.economics)
                out.append(Run(daily, model.metrics.cohorts(), horizon_summary(model, daily), log))
            self._cache[key] = out
        return self._cache[key]

    def default_runs(self) -> list[Run]:
        s = self.size
        return self.runs("default", [f"population.size={s.population}", f"horizon={s.horizon}"], observe=True)


# ============================================================================ helpers
def pct(x: float, digits: int = 1) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f} %"


def pooled(runs: Iterable[Run], channel: str = "all") -> pd.DataFrame:
    """Cohort members, visitors and members still users, summed over runs and join days, by age."""
    frames = [r.cohorts[r.cohorts["channel"] == channel].groupby("age")[["users", "retained", "alive"]].sum() for r in runs]
    return sum(frames[1:], frames[0]) if frames else pd.DataFrame(columns=["users", "retained", "alive"])


def _axes(ncols: int = 2, width: float = 11.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width, 4.0), squeeze=False)
    return fig, list(axes[0])


def _finish(fig, path: Path, title: str) -> Path:
    from sim.plots import _save, _title

    _title(fig, title)
    return _save(fig, path)


def _style(ax, title: str, ylabel: str = "", xlabel: str = "day") -> None:
    from sim.plots import _style as style

    style(ax, title, ylabel, xlabel)


# ============================================================================ the facts
@fact("early_churn", "Heavy early churn; conditional retention rises with tenure",
      "Day-N retention (share of a join cohort visiting on day N) pooled over every cohort of the default "
      "scenario; conditional retention = share of those still users at age a who are still users at a + 1.",
      "App benchmarks: day-1 around 20-25 %, day-30 around 5-10 %; Fader and Hardie 2007 (retention rates rise with tenure)",
      "day-1 in [18 %, 27 %], day-30 in [4 %, 11 %], conditional retention higher at day 7 than day 1, at day 30 than day 7, and at day 90 than day 30")
def early_churn(ctx: Context, plot: Path) -> Outcome:
    g = pooled(ctx.default_runs())
    day_n = (g["retained"] / g["users"]).to_numpy()
    alive = g["alive"].to_numpy(dtype=float)
    conditional = alive[1:] / np.where(alive[:-1] > 0, alive[:-1], np.nan)
    ages = [1, 7, 30, 90]
    cond = [float(conditional[a]) for a in ages]
    d1, d30 = float(day_n[1]), float(day_n[30])
    rising = all(b > a for a, b in zip(cond, cond[1:]))
    passed = 0.18 <= d1 <= 0.27 and 0.04 <= d30 <= 0.11 and rising
    fig, (a, b) = _axes()
    top = min(120, day_n.size - 1)
    a.plot(np.arange(1, top + 1), day_n[1:top + 1], color="black", lw=1.6, label="model")
    a.axhspan(0.20, 0.25, xmin=0, xmax=0.06, color="#2a9d8f", alpha=0.35, label="day 1: 20-25 %")
    a.fill_between([28, 32], 0.05, 0.10, color="#e76f51", alpha=0.35, label="day 30: 5-10 %")
    a.set_yscale("log")
    _style(a, "Day-N retention (share of the cohort visiting)", "share of cohort", "days since joining")
    a.legend(fontsize=8, frameon=False)
    b.plot(np.arange(conditional[:top].size), conditional[:top], color="#264653")
    b.scatter(ages, cond, color="#e76f51", zorder=3)
    _style(b, "Conditional retention: still a user tomorrow | a user today", "share", "days since joining")
    _finish(fig, plot, "Heavy early churn, retention rates rising with tenure")
    figure = (f"day-1 {pct(d1)}, day-7 {pct(float(day_n[7]))}, day-30 {pct(d30)}; conditional retention "
              + ", ".join(f"{pct(c)} at day {a}" for a, c in zip(ages, cond)))
    return Outcome(figure, passed, {"d1": d1, "d7": float(day_n[7]), "d30": d30, "conditional": dict(zip(map(str, ages), cond))})


def bass_curve(t: np.ndarray, m: float, p: float, q: float) -> np.ndarray:
    e = np.exp(-(p + q) * t)
    return m * (1 - e) / (1 + (q / p) * e)


@fact("bass_s_curve", "S-shaped adoption with word of mouth; Bass p and q",
      "Cumulative users of the default scenario (mean of the replicates) fitted by least squares with the Bass "
      "curve m (1 - e^{-(p+q)t}) / (1 + (q/p) e^{-(p+q)t}); p and q per day.",
      "Bass 1969; meta-analytic means p = 0.03, q = 0.38 per year, q/p about 13 (Sultan, Farley and Lehmann 1990)",
      "imitation dominates (q > p), new users per day peak after the first week and before the last tenth of the horizon, and the Bass fit has R² ≥ 0.98")
def bass_s_curve(ctx: Context, plot: Path) -> Outcome:
    from scipy.optimize import curve_fit

    runs = ctx.default_runs()
    cum = np.mean([r.daily["cumulative_users"].to_numpy(dtype=float) for r in runs], axis=0)
    t = np.arange(1, cum.size + 1, dtype=float)
    (m, p, q), _ = curve_fit(bass_curve, t, cum, p0=(cum[-1], 1e-3, 0.05), bounds=([1.0, 1e-7, 1e-6], [1e9, 1.0, 5.0]), maxfev=20_000)
    fitted = bass_curve(t, m, p, q)
    r2 = 1 - np.sum((cum - fitted) ** 2) / np.sum((cum - cum.mean()) ** 2)
    new = pd.Series(np.diff(cum, prepend=0.0)).rolling(7, min_periods=1).mean().to_numpy()
    peak = int(np.argmax(new))
    passed = q > p and 7 <= peak <= 0.9 * cum.size and r2 >= 0.98
    fig, (a, b) = _axes()
    a.plot(t, cum, color="black", lw=1.6, label="model (cumulative users)")
    a.plot(t, fitted, color="#e76f51", ls="--", label=f"Bass fit: p={p:.4f}, q={q:.4f} per day")
    _style(a, "Cumulative users and the fitted Bass curve", "people")
    a.legend(fontsize=8, frameon=False)
    b.plot(t, new, color="black", lw=1.4, label="model (7-day mean)")
    b.plot(t, np.diff(fitted, prepend=0.0), color="#e76f51", ls="--", label="Bass fit")
    b.axvline(peak, color="grey", lw=0.8)
    _style(b, f"New users per day (peak on day {peak})", "people per day")
    b.legend(fontsize=8, frameon=False)
    _finish(fig, plot, "S-shaped adoption: a Bass curve fitted to the default scenario")
    figure = f"p = {p:.4f}/day, q = {q:.4f}/day, q/p = {q / p:.1f} (typical 13); new users peak on day {peak}; R² = {r2:.3f}"
    return Outcome(figure, passed, {"p": p, "q": q, "q_over_p": q / p, "m": m, "peak_day": peak, "r2": r2})


@fact("invitation_saturation", "Joining saturates in invitations received; repeats from one sender lose force",
      "Every referral invitation to a non-user in the default scenario: conversion of the k-th invitation a person "
      "receives (first invitations from their sender), the cumulative chance of having joined after k invitations, "
      "and the conversions of repeated invitations from the same sender against first invitations at the same k.",
      "Leskovec, Adamic and Huberman 2007 (the chance of buying saturates with recommendations received; repeated "
      "recommendations from one sender lose force; about 1 purchase per 100 recommendations)",
      "the 5th and later invitations convert at under 60 % of the first's rate, the 5th adds under a third of what "
      "the first adds to the cumulative chance of joining, and repeats convert at under 80 % of first invitations "
      "at the same k (95 % interval below 1)")
def invitation_saturation(ctx: Context, plot: Path) -> Outcome:
    logs = [r.invites for r in ctx.default_runs() if r.invites is not None]
    events = sum(log.events for log in logs)
    wins = sum(log.wins for log in logs)
    if events.sum() == 0:
        return Outcome("no referral invitations were sent (is mechanisms.referral enabled?)", False)
    K = 10
    first_n, first_w = events[:, 0], wins[:, 0]
    conv_first = np.divide(first_w, first_n, out=np.full(first_n.size, np.nan), where=first_n > 0)
    late = first_w[4:].sum() / max(first_n[4:].sum(), 1)
    hazard = np.divide(wins.sum(axis=1), events.sum(axis=1), out=np.zeros(events.shape[0]), where=events.sum(axis=1) > 0)
    joined = 1 - np.cumprod(1 - hazard)  # after the 1st, 2nd, ... invitation
    gain_first, gain_fifth = joined[0], joined[4] - joined[3]
    rep_n, rep_w = events[:, 1:].sum(axis=1), wins[:, 1:].sum(axis=1)
    expected = float(np.nansum(rep_n * np.nan_to_num(conv_first)))
    observed = float(rep_w.sum())
    ratio = observed / expected if expected > 0 else float("nan")
    upper = ratio * math.exp(1.96 / math.sqrt(observed)) if observed > 0 else float("nan")
    overall = wins.sum() / events.sum()
    passed = late < 0.6 * conv_first[0] and gain_fifth < gain_first / 3 and ratio < 0.8 and upper < 1.0
    fig, (a, b) = _axes()
    k = np.arange(1, K + 1)
    conv_rep = np.divide(rep_w, rep_n, out=np.full(rep_n.size, np.nan), where=rep_n > 20)
    a.plot(k, conv_first[:K], "o-", color="#264653", label="first invitation from its sender")
    a.plot(k, conv_rep[:K], "s--", color="#e76f51", label="repeat from the same sender")
    _style(a, "Conversion of the k-th invitation received", "share that joined through it", "k (invitations received so far, this one included)")
    a.legend(fontsize=8, frameon=False)
    b.plot(np.arange(0, K + 1), np.r_[0.0, joined[:K]], "o-", color="black")
    _style(b, "Chance of having joined after k invitations", "cumulative share", "invitations received")
    _finish(fig, plot, "Saturation in invitations received and fading repeats")
    figure = (f"k-th invitation converts {', '.join(pct(c) for c in conv_first[:5])} (k = 1..5), {pct(late)} from k = 5 on; "
              f"joined after 1 / 5 / 10 invitations {pct(joined[0])} / {pct(joined[4])} / {pct(joined[9])}; "
              f"repeats convert {ratio:.2f}x a first invitation (95 % up to {upper:.2f}); overall {100 * overall:.1f} joins per 100 invitations")
    return Outcome(figure, passed, {"conversion_first": [float(x) for x in conv_first[:K]], "late": float(late),
                                    "joined_after": [float(x) for x in joined[:K]], "repeat_ratio": ratio,
                                    "repeat_ratio_upper": upper, "joins_per_invitation": float(overall)})


@fact("referred_retention", "Referred users stay more than others",
      "Share of each acquisition channel's joiners still users (not churned) at a given age, pooled over cohorts "
      "and replicates of the default scenario; referred against everyone else and against paid installs.",
      "Schmitt, Skiera and Van den Bulte 2011: referred customers about 18 % more likely to stay",
      "referred users still users at the age more often than everyone else by +5 % to +40 % (about +18 %), and more often than paid users")
def referred_retention(ctx: Context, plot: Path) -> Outcome:
    runs = ctx.default_runs()
    age = ctx.size.retention_age
    curves = {}
    for ch in ("referral", "organic", "paid"):
        g = pooled(runs, ch)
        curves[ch] = g
    others = curves["organic"].add(curves["paid"], fill_value=0)

    def stay(g: pd.DataFrame) -> float:
        return float(g["alive"].get(age, np.nan) / g["users"].get(age, np.nan)) if age in g.index and g["users"].get(age, 0) > 0 else float("nan")

    ref, oth, paid = stay(curves["referral"]), stay(others), stay(curves["paid"])
    lift, lift_paid = ref / oth - 1, ref / paid - 1
    passed = 0.05 <= lift <= 0.40 and lift_paid > 0
    fig, (a, b) = _axes()
    colours = {"referral": "#55a868", "everyone else": "#4c72b0", "paid": "#dd8452"}
    shown = int(0.75 * ctx.size.horizon)  # older ages rest on the first few cohorts only
    share = {name: (g["alive"] / g["users"]).iloc[:shown]
             for name, g in (("referral", curves["referral"]), ("everyone else", others), ("paid", curves["paid"]))}
    for name, curve in share.items():
        a.plot(curve.index, curve.values, color=colours[name], label=name)
        if name != "referral":
            rel = (share["referral"] / curve - 1).iloc[1:]
            b.plot(rel.index, rel.values, color=colours[name], label=f"referred vs {name}")
    a.axvline(age, color="grey", lw=0.8)
    a.set_yscale("log")
    _style(a, "Still a user, by acquisition channel", "share of joiners", "days since joining")
    a.legend(fontsize=8, frameon=False)
    b.axhspan(0.05, 0.40, color="#2a9d8f", alpha=0.15, label="criterion +5 % to +40 %")
    b.axhline(0.18, color="#2a9d8f", ls="--", lw=1, label="Schmitt et al.: +18 %")
    b.axvline(age, color="grey", lw=0.8)
    _style(b, "How much more often referred users are still users", "relative difference", "days since joining")
    b.legend(fontsize=8, frameon=False)
    _finish(fig, plot, "Referred users stay more")
    figure = (f"still users at day {age}: referred {pct(ref)}, everyone else {pct(oth)} ({100 * lift:+.0f} %), "
              f"paid {pct(paid)} (referred {100 * lift_paid:+.0f} %)")
    return Outcome(figure, passed, {"age": age, "referred": ref, "others": oth, "paid": paid, "lift": lift, "lift_vs_paid": lift_paid})


REWARD_SCALES = (0.5, 1.0, 2.0, 4.0)


@fact("reward_tradeoff", "Larger referral rewards: more users, less profit per user",
      "The default scenario with both referral rewards scaled by 0.5, 1, 2 and 4 (inviter 5 to 40 RMB, invitee "
      "2.5 to 20 RMB): users acquired over the horizon and profit per user acquired, means over replicates.",
      "Schmitt, Skiera and Van den Bulte 2011: larger rewards bring more customers but lower profit per customer",
      "users acquired rise and profit per user acquired falls at every step up in reward")
def reward_tradeoff(ctx: Context, plot: Path) -> Outcome:
    from sim.mechanisms.referral import ReferralConfig

    s = ctx.size
    base = ReferralConfig()
    users, per_user, inviter = [], [], []
    for k in REWARD_SCALES:
        settings = [f"population.size={s.reward_population}", f"horizon={s.horizon}", "mechanisms.referral.enabled=true",
                    f"mechanisms.referral.inviter_reward={base.inviter_reward * k}", f"mechanisms.referral.invitee_reward={base.invitee_reward * k}"]
        runs = ctx.runs("default", settings)
        u = np.array([r.summary["users_total"] for r in runs], dtype=float)
        profit = np.array([r.summary["profit"] for r in runs])
        users.append(u.mean())
        per_user.append(float(np.mean(profit / np.maximum(u, 1))))
        inviter.append(base.inviter_reward * k)
    more_users = all(b > a for a, b in zip(users, users[1:]))
    less_profit = all(b < a for a, b in zip(per_user, per_user[1:]))
    fig, (a, b) = _axes()
    a.plot(inviter, users, "o-", color="#55a868")
    _style(a, "Users acquired over the horizon", "people", "inviter reward (RMB; invitee gets half)")
    b.plot(inviter, per_user, "o-", color="#264653")
    b.axhline(0, color="grey", lw=0.8)
    _style(b, "Profit per user acquired", "RMB per user", "inviter reward (RMB; invitee gets half)")
    _finish(fig, plot, f"Referral rewards: more users, less profit per user ({s.reward_population:,} people)")
    figure = ("users " + " → ".join(f"{u:,.0f}" for u in users) + "; profit per user "
              + " → ".join(f"{p:,.1f}" for p in per_user) + " RMB (inviter reward " + " → ".join(f"{x:g}" for x in inviter) + " RMB)")
    return Outcome(figure, more_users and less_profit, {"inviter_reward": inviter, "users": users, "profit_per_user": per_user})


CONTAGION_GRAPHS = {
    "holme_kim": ("clustered", ["graph=holme_kim"]),
    "er": ("random", ["graph=er"]),
    "ws lattice (rewire 0.02)": ("clustered", ["graph=ws", "graph.rewire=0.02"]),
    "ws rewired (rewire 1)": ("random", ["graph=ws", "graph.rewire=1.0"]),
}


@fact("complex_contagion_clustering", "Complex contagion spreads further on clustered than on random graphs",
      "Centola's design: the same people and 2 % random seeds on graphs of average degree 6 that differ only in "
      "clustering; joining by a friend's invitation or mention needs 2 distinct adopting contacts "
      "(adoption.contagion=complex); no paid or outside acquisition; an eager referral programme (about one "
      "invitation per visit, half of first invitations convert) so that reinforcement can occur. Adopters beyond the seeds.",
      "Centola 2010: behaviour that needs reinforcement spreads further and faster on clustered networks",
      "holme_kim reaches more people than er, and the ws lattice more than the rewired ws; the pooled difference exceeds 2 standard errors")
def complex_contagion_clustering(ctx: Context, plot: Path) -> Outcome:
    s = ctx.size
    n = s.contagion_population
    seeds = max(1, n // 50)
    common = [f"population.size={n}", f"horizon={s.contagion_horizon}", "graph.avg_degree=6", "adoption.contagion=complex",
              "adoption.threshold=2", f"adoption.seed_users={seeds}", "adoption.external_rate=0",
              "mechanisms.paid_acquisition.enabled=false", "mechanisms.referral.enabled=true",
              "mechanisms.referral.invites_per_visit=1", "mechanisms.referral.conversion=0.5"]
    reach, curves = {}, {}
    for name, (_kind, graph) in CONTAGION_GRAPHS.items():
        runs = ctx.runs("default", [*common, *graph])
        reach[name] = np.array([r.summary["users_total"] - seeds for r in runs], dtype=float)
        curves[name] = np.mean([r.daily["cumulative_users"].to_numpy() - seeds for r in runs], axis=0)
    names = list(CONTAGION_GRAPHS)
    pairs = [(names[0], names[1]), (names[2], names[3])]
    each = all(reach[c].mean() > reach[r].mean() for c, r in pairs)
    diff = sum(reach[c].mean() - reach[r].mean() for c, r in pairs)
    # Standard error of the pooled difference: replicate spread when there are replicates, else Poisson.
    var = 0.0
    for name in names:
        x = reach[name]
        var += (x.var(ddof=1) / x.size if x.size > 1 else 0.0) + max(x.mean(), 1.0) / x.size
    se = math.sqrt(var)
    passed = each and diff > 2 * se
    fig, (a, b) = _axes()
    colours = {names[0]: "#264653", names[1]: "#e76f51", names[2]: "#2a9d8f", names[3]: "#f4a261"}
    for name in names:
        a.plot(np.arange(curves[name].size), curves[name], color=colours[name], label=f"{name} ({CONTAGION_GRAPHS[name][0]})")
    _style(a, "Adopters beyond the seeds (complex contagion, threshold 2)", "people")
    a.legend(fontsize=8, frameon=False)
    b.bar(range(4), [reach[nm].mean() for nm in names], color=[colours[nm] for nm in names])
    b.set_xticks(range(4), [nm.split(" (")[0] for nm in names], fontsize=8)
    _style(b, "Reach at the horizon (mean over replicates)", "people", "graph")
    _finish(fig, plot, f"Complex contagion on clustered and random graphs ({n:,} people, degree 6)")
    figure = "; ".join(f"{c} {reach[c].mean():,.0f} vs {r} {reach[r].mean():,.0f}" for c, r in pairs) + \
        f" adopters beyond {seeds:,} seeds (difference {diff:,.0f} ± {se:,.0f})"
    return Outcome(figure, passed, {"reach": {k: float(v.mean()) for k, v in reach.items()}, "difference": diff, "se": se})


# ============================================================================ the suite
@dataclass
class Validation:
    """The result of :func:`validate`: one finding per fact."""

    findings: list[Finding]
    size: Size
    overrides: list[str]
    seconds: float = 0.0
    path: Path | None = None
    _plots: Path | None = field(default=None, repr=False)
    _scratch: object = field(default=None, repr=False)  # keeps the plots' temporary folder alive

    @property
    def passed(self) -> bool:
        return all(f.passed for f in self.findings if f.status != "pending")

    @property
    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{"fact": f.name, "result": f.status, "figure": f.figure, "reference": f.reference,
                              "criterion": f.criterion, "measured": f.measured} for f in self.findings])

    def text(self, width: int = 118) -> str:
        """The table for a terminal."""
        lines = [f"{'fact':<29} {'result':<8} figure"]
        indent = " " * 38
        for f in self.findings:
            body = textwrap.wrap(f.figure, width - 38) or [""]
            lines.append(f"{f.name:<29} {f.status.upper():<8} {body[0]}")
            lines += [indent + more for more in body[1:]]
            lines += [indent + more for more in textwrap.wrap(f"reference: {f.reference}", width - 38)]
        done = [f for f in self.findings if f.status != "pending"]
        lines.append(f"{sum(f.passed for f in done)} of {len(done)} facts pass ({self.size.name} size, {self.seconds:.0f} s)"
                     + (f"; {len(self.findings) - len(done)} pending" if len(done) < len(self.findings) else ""))
        return "\n".join(lines)

    def html(self) -> str:
        from sim.report import page, table

        summary = table(self.table[["fact", "result", "figure", "reference"]])
        sections = []
        for f in self.findings:
            verdict = {"pass": "✅ pass", "fail": "❌ fail", "pending": "⏳ pending"}[f.status]
            img = f"<img src='plots/{f.plot.name}' alt='{html.escape(f.name)}'>" if f.plot is not None else ""
            sections.append(
                f"<h2>{html.escape(f.title)} — {verdict}</h2>"
                f"<p><b>Measured:</b> {html.escape(f.measured)}</p><p><b>Figure:</b> {html.escape(f.figure)}</p>"
                f"<p><b>Reference:</b> {html.escape(f.reference)}</p><p><b>Criterion:</b> {html.escape(f.criterion)}</p>{img}")
        done = [f for f in self.findings if f.status != "pending"]
        subtitle = (f"{sum(f.passed for f in done)} of {len(done)} facts pass · {self.size.name} size · "
                    f"{self.size.population:,} people, {self.size.horizon} days, {len(done) and self.size.replicates} replicate(s) · "
                    f"overrides: {' '.join(self.overrides) or 'none'} · {self.seconds:.0f} s")
        return page("growth-sim validation against stylized facts", subtitle, summary + "".join(sections))

    def save(self, out: str | Path = "results/validation") -> Path:
        """Write the validation folder (report.html, facts.csv, facts.json, plots/) atomically."""
        import shutil

        from sim.runs import AtomicFolder

        folder = AtomicFolder(Path(out), f"{datetime.now().strftime('%Y%m%d-%H%M%S')}_validation_{self.size.name}")
        with folder as tmp:
            if self._plots is not None and self._plots.exists():
                shutil.copytree(self._plots, tmp / "plots")
            self.table.to_csv(tmp / "facts.csv", index=False)
            (tmp / "facts.json").write_text(json.dumps([{"fact": f.name, "result": f.status, "figure": f.figure,
                                                         "reference": f.reference, "criterion": f.criterion,
                                                         "values": f.values} for f in self.findings], indent=2, default=float) + "\n")
            (tmp / "report.html").write_text(self.html())
        self.path = folder.path
        return self.path


def validate(quick: bool = False, overrides: Sequence[str] = (), facts: Sequence[str] | None = None, seed: int = 0,
             replicates: int | None = None, out: str | Path | None = None,
             progress: Callable[[Finding], None] | None = None) -> Validation:
    """Run the stylized-fact suite on the default settings (plus ``overrides``).

    ``quick`` uses small runs (for tests); ``facts`` picks facts by name; with ``out`` the validation
    folder is written there (``result.path``).
    """
    import tempfile
    import time

    names = list(FACTS) + list(PENDING) if facts is None else list(facts)
    unknown = [n for n in names if n not in FACTS and n not in PENDING]
    if unknown:
        from sim.schema import suggest

        raise ConfigError(f"fact {unknown[0]!r}: no such fact{suggest(unknown[0], [*FACTS, *PENDING])}; available: {', '.join([*FACTS, *PENDING])}")
    if replicates is not None and replicates < 1:
        raise ConfigError(f"replicates = {replicates}: allowed is a whole number >= 1")
    compose("default", overrides)  # bad overrides fail here, before any work
    size = QUICK if quick else FULL
    ctx = Context(size, overrides, seed, replicates)
    scratch = tempfile.TemporaryDirectory(prefix="sim-validation-")  # removed with the result
    plots = Path(scratch.name)
    t0 = time.perf_counter()
    findings = []
    for name in names:
        if name in PENDING:
            mech, title, ref = PENDING[name]
            finding = Finding(name, title, f"needs the '{mech}' mechanism, not built yet", "not measured yet", ref, "", "pending")
        else:
            f = FACTS[name]
            path = plots / f"{name}.png"
            outcome = f.measure(ctx, path)
            finding = Finding(name, f.title, f.measured, outcome.figure, f.reference, f.criterion,
                              "pass" if outcome.passed else "fail", path if path.exists() else None, outcome.values)
        findings.append(finding)
        if progress is not None:
            progress(finding)
    result = Validation(findings, size, list(overrides), time.perf_counter() - t0, _plots=plots, _scratch=scratch)
    if out is not None:
        result.save(out)
    return result


def print_progress(finding: Finding) -> None:
    print(f"  {finding.status.upper():<7} {finding.name}", file=sys.stderr, flush=True)
