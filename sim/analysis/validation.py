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
- ``complex_contagion_clustering``: behaviour that needs reinforcement spreads further and faster
  on clustered networks than on random ones of the same degree (Centola 2010: 54 % against 38 %);
- ``post_promotion_dip``: a promotion's bump is followed by a dip below the no-promotion baseline
  (van Heerde, Leeflang and Wittink 2000; Macé and Neslin 2004), measured on paired runs among
  the users active (not dormant) before the campaign;
- ``promotion_bump_decomposition``: the active users' bump splits into switching, acceleration and
  expansion, roughly a third each (van Heerde, Leeflang and Wittink 2004); the orders won back
  from lapsed users and the newcomers' are counted apart;
- ``discount_acquired_value``: customers drawn in by heavy acquisition discounts are worth less
  (Lewis 2006; Datta, Foubert and van Heerde 2015);
- ``recommendation_diversity``: recommenders raise orders but lower aggregate diversity (Fleder and
  Hosanagar 2009);
- ``recommendation_credit``: much of what is credited to recommendations is not caused by them
  (Sharma, Hofman and Watts 2015);
- ``social_graph_structure``: the default social graph has heavy-tailed degrees, high clustering
  and short paths (Barabási and Albert 1999; Watts and Strogatz 1998).

Paired measurements (a campaign, a recommender) compare runs with the same seed, which share the
graph, the people and the base randomness (common random numbers), so their difference is the
effect of the one thing that differs. Facts that need a mechanism not built yet can be listed in
:data:`PENDING` and are shown as pending; each becomes one more ``@fact`` function once its
mechanism exists.
"""

from __future__ import annotations

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

from sim.config import compose
from sim.engine import GrowthModel
from sim.metrics import gini
from sim.metrics import summary as horizon_summary
from sim.schema import ConfigError
from sim.vocabulary import CHANNELS, State

REFERRAL = CHANNELS.index("referral")
ORGANIC = CHANNELS.index("organic")


# ============================================================================ sizes and results
@dataclass(frozen=True)
class Size:
    """How large the validation runs are (``full`` for the report, ``quick`` for tests)."""

    name: str
    population: int  # people in the default-scenario runs
    horizon: int  # days of the default-scenario runs
    replicates: int  # seeds per setting
    reward_population: int  # people in each run of the reward sweep
    contagion_replicates: int  # seeds per network size in Centola's design (runs of a few hundred people: cheap)
    recommendation_population: int  # people in each run of the recommendation strategies
    discount_population: int  # people in the run with a deep new-user coupon

    @property
    def retention_age(self) -> int:
        """Age (days) at which 'still a user' is compared between channels."""
        return min(180, self.horizon // 2)


FULL = Size("full", 100_000, 365, 3, 30_000, 100, 30_000, 30_000)
QUICK = Size("quick", 100_000, 365, 1, 8_000, 50, 30_000, 20_000)
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

#: facts waiting for a mechanism being built: name -> (mechanism, title, reference); none at present
PENDING: dict[str, tuple[str, str, str]] = {}


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
        from sim.kernels import rank_within

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


class OrderLog:
    """Observes every run: orders per day by the buyers' join day and by product category. Orders
    of the people who joined before some day are then ``by_join[:, :day].sum(axis=1)``, the same
    people in two paired runs. Changes nothing."""

    def __init__(self, model: GrowthModel):
        horizon, categories = model.cfg.horizon, model.catalogue.categories
        self.by_join = np.zeros((horizon, horizon), dtype=np.int32)  # [day, join day]
        self.by_category = np.zeros((horizon, categories), dtype=np.int32)  # [day, category]
        model.hooks["settle"].append(self.settle)  # last: every order of the day is booked

    def settle(self, model: GrowthModel) -> None:
        today, (horizon, categories) = model.today, self.by_category.shape
        self.by_join[model.day] = np.bincount(model.pop.joined_day[today.buyers], minlength=horizon)
        self.by_category[model.day] = np.bincount(today.order_category, minlength=categories)

    def orders_of_joined_before(self, day: int) -> np.ndarray:
        """Orders per day placed by people who joined before ``day``."""
        return self.by_join[:, :day].sum(axis=1)


class AcquiredLog:
    """Observes which new users a promotion drew in (non-users who heard of an acquiring campaign
    and joined through it, as the promotions mechanism counts them in ``promotion_new_users``) and
    takes a snapshot of every user at ``age`` days after joining: orders, spend (RMB paid), channel
    and the age at which they churned, if they did. Changes nothing."""

    def __init__(self, model: GrowthModel, age: int = 90):
        n = model.pop.n
        self.age = age
        self.promotions = model.get_mechanism("promotions")
        self.drawn = np.zeros(n, dtype=bool)
        self.orders = np.full(n, -1, dtype=np.int64)  # -1: not (yet) age days old
        self.spend = np.zeros(n)
        self.churn_age = np.full(n, np.iinfo(np.int32).max, dtype=np.int64)  # still a user: never
        self.channel = np.full(n, -1, dtype=np.int64)
        model.hooks["adoption"].append(self.adoption)  # after the mechanism's own adoption hook
        model.hooks["settle"].append(self.settle)

    def adoption(self, model: GrowthModel) -> None:
        new = model.today.new_users
        if self.promotions is None or self.promotions.targets.size == 0 or new.size == 0:
            return
        self.drawn[new[np.isin(new, self.promotions.targets) & (model.pop.channel[new] == ORGANIC)]] = True

    def settle(self, model: GrowthModel) -> None:
        pop = model.pop
        if model.day < self.age:
            return
        who = np.flatnonzero(pop.joined_day == model.day - self.age)
        self.orders[who], self.spend[who], self.channel[who] = pop.orders[who], pop.spend[who], pop.channel[who]
        gone = who[pop.state[who] == State.CHURNED]
        self.churn_age[gone] = pop.churn_day[gone] - pop.joined_day[gone]


class LeavingLog:
    """Observes when each person who joined left, at the horizon: the age (days since joining) of the
    first day they were no longer a user. A churn declared because a user has not visited for
    ``churn_after_days`` is dated to the day after their last visit, when they in fact stopped (as in
    Fader, Hardie and Lee's 2005 BG/NBD, where a customer drops out right after a purchase); a churn
    drawn from the hazard is dated to its day. Who has not left by the horizon, or came back, never
    left. Changes nothing."""

    NEVER = np.iinfo(np.int64).max

    def __init__(self, model: GrowthModel):
        self.lapse_days = model.cfg.behaviour.churn.churn_after_days
        self.horizon = model.cfg.horizon
        self.joined = self.left_at = np.zeros(0, dtype=np.int64)
        model.hooks["settle"].append(self.settle)  # after the day's churn (retention stage)

    def settle(self, model: GrowthModel) -> None:
        if model.day != self.horizon - 1:
            return
        pop = model.pop
        who = np.flatnonzero(pop.joined_day >= 0)
        joined = pop.joined_day[who].astype(np.int64)
        churn, last = pop.churn_day[who].astype(np.int64), pop.last_visit[who].astype(np.int64)
        gone = pop.state[who] == State.CHURNED
        lapsed = gone & (churn - last >= self.lapse_days)
        self.joined = joined
        self.left_at = np.where(lapsed, last + 1, np.where(gone, churn, self.NEVER)) - np.where(gone, joined, 0)

    def conditional_retention(self, ages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each age a: (still users at a, of them still users at a + 1), over the people whose
        age a + 1 is at least ``churn_after_days`` before the horizon (so that a lapse before a + 1
        has been declared by then)."""
        ages = np.asarray(ages, dtype=np.int64)[:, None]
        seen = ages + 1 <= (self.horizon - 1 - self.lapse_days) - self.joined[None, :]
        at_a = seen & (self.left_at[None, :] > ages)
        return at_a.sum(axis=1), (at_a & (self.left_at[None, :] > ages + 1)).sum(axis=1)


class StandingLog:
    """Observes the orders per day from ``day`` on by the buyers' standing at the end of the day
    before: :attr:`ACTIVE` (an active or loyal user), :attr:`LAPSED` (a user gone dormant, or one who
    churned, whose orders are won back) or :attr:`NEW` (not yet a user). The groups hold the same
    people in two paired runs that do not differ before ``day``. Changes nothing."""

    ACTIVE, LAPSED, NEW = 0, 1, 2
    GROUPS = 3

    def __init__(self, model: GrowthModel, day: int):
        self.day = day
        self.standing = np.zeros(0, dtype=np.int8)
        self.by_standing = np.zeros((model.cfg.horizon, self.GROUPS), dtype=np.int32)  # [day, group]; 0 before ``day``
        model.hooks["settle"].append(self.settle)  # last: every order of the day is booked

    def settle(self, model: GrowthModel) -> None:
        if model.day == self.day - 1:
            state = model.pop.state
            self.standing = np.full(state.size, self.NEW, dtype=np.int8)
            self.standing[(state == State.ACTIVE) | (state == State.LOYAL)] = self.ACTIVE
            self.standing[(state == State.DORMANT) | (state == State.CHURNED)] = self.LAPSED
        elif model.day >= self.day and self.standing.size:
            self.by_standing[model.day] = np.bincount(self.standing[model.today.buyers], minlength=self.GROUPS)


#: observers a run can carry besides its order log: name -> factory(model)
OBSERVERS: dict[str, Callable[[GrowthModel], object]] = {
    "invites": lambda model: InviteLog(model, REFERRAL),
    "acquired": AcquiredLog,
    "leaving": LeavingLog,
    "standing": lambda model: StandingLog(model, promotion_start(model.cfg.horizon) - PRE_DAYS),
}


@dataclass
class Run:
    """The frames of one validation run (no files) and what its observers saw."""

    daily: pd.DataFrame
    cohorts: pd.DataFrame
    summary: dict
    orders: OrderLog
    invites: InviteLog | None = None
    acquired: AcquiredLog | None = None
    leaving: LeavingLog | None = None
    standing: StandingLog | None = None


class Context:
    """What the facts share: the size, the user's overrides, the seeds and a cache of runs."""

    def __init__(self, size: Size, overrides: Sequence[str] = (), seed: int = 0, replicates: int | None = None):
        self.size = size
        self.overrides = list(overrides)
        self.seed = seed
        self.replicates = replicates or size.replicates
        self._cache: dict[tuple, list[Run] | np.ndarray] = {}

    def runs(self, scenario: str, settings: Sequence[str], observe: Sequence[str] = ()) -> list[Run]:
        """Replicate runs of ``scenario`` with the user's overrides, then ``settings`` (which win);
        replicate r has seed ``seed + r`` whatever the settings, so runs of two settings are paired.
        ``observe`` names observers of :data:`OBSERVERS` to attach."""
        key = (scenario, tuple(settings), tuple(observe))
        if key not in self._cache:
            cfg = compose(scenario, [*self.overrides, *settings])
            out = []
            for r in range(self.replicates):
                model = GrowthModel(cfg.with_seed(self.seed + r))
                orders = OrderLog(model)
                seen = {name: OBSERVERS[name](model) for name in observe}
                model.run()
                daily = model.metrics.daily(model.economics)
                out.append(Run(daily, model.metrics.cohorts(), horizon_summary(model, daily), orders, **seen))
            self._cache[key] = out
        return self._cache[key]

    def adoption_curves(self, scenario: str, settings: Sequence[str], replicates: int, first: int = 0) -> np.ndarray:
        """Cumulative users by day of ``replicates`` runs (one row each; replicate r has seed
        ``seed + first + r``), for experiments that need many small runs and nothing else."""
        key = (scenario, tuple(settings), replicates, first)
        if key not in self._cache:
            cfg = compose(scenario, [*self.overrides, *settings])
            curves = []
            for r in range(replicates):
                model = GrowthModel(cfg.with_seed(self.seed + first + r)).run()
                curves.append(model.metrics.daily(model.economics)["cumulative_users"].to_numpy())
            self._cache[key] = np.array(curves, dtype=float)
        return self._cache[key]

    def default_runs(self) -> list[Run]:
        return self.runs("default", self.default_settings(), observe=("invites", "leaving", "standing"))

    def default_settings(self) -> list[str]:
        return [f"population.size={self.size.population}", f"horizon={self.size.horizon}"]

    def enabled(self, mechanism: str) -> bool:
        """Whether ``mechanism`` is on in the default scenario with the user's overrides."""
        return compose("default", self.overrides).mechanisms[mechanism].enabled


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


def paired_se(differences: Sequence[float], sampling_var: float) -> float:
    """Standard error of the mean of paired differences over replicates: their spread when there
    are several, plus a sampling term (the variance of one replicate's difference, e.g. Poisson)
    over the number of replicates; conservative, and usable with a single replicate."""
    d = np.asarray(differences, dtype=float)
    spread = d.var(ddof=1) / d.size if d.size > 1 else 0.0
    return math.sqrt(spread + sampling_var / d.size)


def gini_sampling_var(counts: np.ndarray, draws: int = 200) -> float:
    """Variance of the Gini coefficient of ``counts`` (orders per category) from resampling the
    same number of orders with the observed shares (multinomial bootstrap)."""
    counts = np.asarray(counts, dtype=float)
    total = int(counts.sum())
    if total == 0:
        return 0.0
    rng = np.random.default_rng(0)  # analysis only: the same resamples every time
    sample = rng.multinomial(total, counts / total, size=draws)
    return float(np.var([gini(x) for x in sample], ddof=1))


# ============================================================================ the facts
#: the ages at which conditional retention is compared, each pooled over the days up to the next
#: (single days are too few events at the older ages)
CHURN_WINDOWS = {1: (1, 7), 7: (7, 30), 30: (30, 90), 90: (90, 180)}


@fact("early_churn", "Heavy early churn; conditional retention rises with tenure",
      "Day-N retention (share of a join cohort visiting on day N) pooled over every cohort of the default "
      "scenario; conditional retention at age a = share of those still users at a who are still users at a + 1, "
      "pooled over days 1-6, 7-29, 30-89 and 90-179 for a = 1, 7, 30 and 90. A user who stopped visiting and was "
      "declared churned after the days without a visit (behaviour.churn.churn_after_days) left the day after their "
      "last visit; counted are the people whose age a + 1 lies that many days before the horizon.",
      "App benchmarks: day-1 around 20-25 %, day-30 around 5-10 %; Fader and Hardie 2007 (retention rates rise with tenure)",
      "day-1 in [18 %, 27 %], day-30 in [4 %, 11 %], conditional retention higher at day 7 than day 1, at day 30 than day 7, and at day 90 than day 30")
def early_churn(ctx: Context, plot: Path) -> Outcome:
    runs = ctx.default_runs()
    g = pooled(runs)
    day_n = (g["retained"] / g["users"]).to_numpy()
    top = min(120, day_n.size - 1)
    ages = np.arange(max(hi for _lo, hi in CHURN_WINDOWS.values()))
    at_a, stayed = (sum(x) for x in zip(*(r.leaving.conditional_retention(ages) for r in runs)))
    cond = [float(stayed[lo:hi].sum() / at_a[lo:hi].sum()) if at_a[lo:hi].sum() > 0 else float("nan") for lo, hi in CHURN_WINDOWS.values()]
    d1, d30 = float(day_n[1]), float(day_n[30])
    rising = all(b > a for a, b in zip(cond, cond[1:]))
    passed = 0.18 <= d1 <= 0.27 and 0.04 <= d30 <= 0.11 and rising
    fig, (a, b) = _axes()
    a.plot(np.arange(1, top + 1), day_n[1:top + 1], color="black", lw=1.6, label="model")
    a.axhspan(0.20, 0.25, xmin=0, xmax=0.06, color="#2a9d8f", alpha=0.35, label="day 1: 20-25 %")
    a.fill_between([28, 32], 0.05, 0.10, color="#e76f51", alpha=0.35, label="day 30: 5-10 %")
    a.set_yscale("log")
    _style(a, "Day-N retention (share of the cohort visiting)", "share of cohort", "days since joining")
    a.legend(fontsize=8, frameon=False)
    daily = np.divide(stayed, at_a, out=np.full(ages.size, np.nan), where=at_a > 0)
    b.plot(ages[1:], daily[1:], color="#264653", lw=1, label="by day")
    for (lo, hi), c in zip(CHURN_WINDOWS.values(), cond):
        b.hlines(c, lo, hi - 1, color="#e76f51", lw=2.5, label="pooled over the window" if lo == 1 else None)
    b.set_xscale("log")
    _style(b, "Conditional retention: still a user tomorrow | a user today", "share", "days since joining")
    b.legend(fontsize=8, frameon=False)
    _finish(fig, plot, "Heavy early churn, retention rates rising with tenure")
    figure = (f"day-1 {pct(d1)}, day-7 {pct(float(day_n[7]))}, day-30 {pct(d30)}; conditional retention "
              + ", ".join(f"{pct(c, 2)} at day {a}" for a, c in zip(CHURN_WINDOWS, cond)))
    return Outcome(figure, passed, {"d1": d1, "d7": float(day_n[7]), "d30": d30, "conditional": dict(zip(map(str, CHURN_WINDOWS), cond))})


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


@fact("referred_retention", "Referred users stay more than others, and are worth more",
      "Share of each acquisition channel's joiners still users (not churned) at a given age, pooled over cohorts "
      "and replicates of the default scenario; referred against everyone else and against paid installs. Value: "
      "GMV per joiner over the same first days (cohorts at least that old; before any referral reward).",
      "Schmitt, Skiera and Van den Bulte 2011: referred customers about 18 % more likely to stay and about 16 % more valuable",
      "referred users still users at the age more often than everyone else by +5 % to +40 % (about +18 %), and more "
      "often than paid users; their GMV per joiner over those days higher than everyone else's")
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
    value = {ch: gmv_per_joiner(runs, ch, age) for ch in ("referral", "organic", "paid")}
    value["everyone else"] = gmv_per_joiner(runs, ("organic", "paid"), age)
    value_lift = value["referral"] / value["everyone else"] - 1
    passed = 0.05 <= lift <= 0.40 and lift_paid > 0 and value_lift > 0
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
              f"paid {pct(paid)} (referred {100 * lift_paid:+.0f} %); GMV per joiner in the first {age} days: referred "
              f"{value['referral']:,.0f} RMB, everyone else {value['everyone else']:,.0f} RMB ({100 * value_lift:+.0f} %)")
    return Outcome(figure, passed, {"age": age, "referred": ref, "others": oth, "paid": paid, "lift": lift, "lift_vs_paid": lift_paid,
                                    "value": value, "value_lift": value_lift})


def gmv_per_joiner(runs: Iterable[Run], channels: str | Sequence[str], age: int) -> float:
    """GMV per joiner of ``channels`` over their first ``age`` days, pooled over the cohorts at least
    ``age`` days old at the horizon and over runs."""
    channels = [channels] if isinstance(channels, str) else list(channels)
    users = gmv = 0.0
    for r in runs:
        c = r.cohorts
        horizon = len(r.daily)
        g = c[c["channel"].isin(channels) & (c["cohort_day"] <= horizon - 1 - age)]
        users += float(g.loc[g["age"] == 0, "users"].sum())
        gmv += float(g.loc[g["age"] <= age, "gmv"].sum())
    return gmv / users if users > 0 else float("nan")


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


#: Centola's (2010) design: networks of 98, 128 and 144 people, everyone with 6 neighbours; a 2-D
#: triangular lattice (each person's neighbours are each other's neighbours) against a random
#: regular network of the same degree; one random seed; an adoption signalled to every neighbour
CENTOLA_SIZES = (98, 128, 144)
CENTOLA_NETWORKS = {"clustered lattice": "lattice", "random network": "regular"}
CENTOLA_REACH = {"clustered lattice": 0.54, "random network": 0.38}  # Centola 2010: share of each network that adopted
CENTOLA_SPEED = 4.0  # Centola 2010: the behaviour spread about four times faster in the clustered networks
CENTOLA_HORIZON = 60  # days: the spread has settled within about a month
#: Chance a 'your friend joined' notice converts someone with at least 2 adopting friends, and the
#: response with one adopting friend relative to it: reinforcement makes adoption far likelier, yet
#: single signals convert too (Centola 2010). Chosen, not measured: round values that put both
#: networks' shares near the published ones (docs/validation.md shows how the margin moves with them).
CENTOLA_NOTICE, CENTOLA_BELOW = 0.5, 0.4
#: A further notice does not count for less (no saturation): in Centola's design every further
#: adopting neighbour reinforced; the platform's default saturation (0.7 per earlier invitation,
#: from product recommendations) would undo the reinforcement the threshold models.
CENTOLA_SATURATION = 1.0
MARGIN_TOLERANCE = 0.10  # the margin may differ from the published 16 points by this much


def centola_settings(n: int, network: str) -> list[str]:
    """Centola's design in the platform's terms: nothing but the joining notices spreads the platform
    (no ads, no outside adoption, no referral programme, no word of mouth), complex contagion with
    threshold 2 counting adopting friends, one random seed."""
    silent = [f"population.segments.{name}.share_rate=0" for name in compose("default").population.segments]
    return [f"population.size={n}", f"horizon={CENTOLA_HORIZON}", f"graph={network}", "graph.avg_degree=6",
            "adoption.contagion=complex", "adoption.threshold=2", f"adoption.below_threshold={CENTOLA_BELOW}",
            f"adoption.join_notice={CENTOLA_NOTICE}", f"behaviour.social.saturation={CENTOLA_SATURATION}", "adoption.seeding=random", f"adoption.seed_fraction={1 / n!r}",
            "adoption.external_rate=0", "mechanisms.paid_acquisition.enabled=false", "mechanisms.referral.enabled=false", *silent]


def days_to_reach(curve: np.ndarray, level: float) -> float:
    """First day (counted from 1) on which ``curve`` reaches ``level``; inf if it never does."""
    hit = np.flatnonzero(curve >= level - 1e-12)
    return float(hit[0] + 1) if hit.size else math.inf


@fact("complex_contagion_clustering", "Complex contagion spreads further and faster on clustered networks",
      "Centola's design: networks of 98, 128 and 144 people, everyone with 6 neighbours, a 2-D triangular lattice "
      "(graph=lattice: neighbours share neighbours) against a random regular network of the same degree (graph=regular); "
      "one random seed; every adoption notifies all the adopter's friends once (adoption.join_notice = 0.5, the chance a "
      "notice converts someone with 2 or more adopting friends; 0.4 of that with one: adoption.below_threshold = 0.4; "
      "further notices not saturating: behaviour.social.saturation = 1); complex contagion with threshold 2 counting "
      "adopting friends; no ads, outside adoption, referral programme or word of mouth. Share of the people other than the seed who joined within 60 days, over many seeds; speed = days the random "
      "networks take to reach 95 % of their final share over days the lattices take to reach it.",
      "Centola 2010: 54 % adopted in clustered networks against 38 % in random ones, and the behaviour spread about four "
      "times faster",
      "the lattices reach a larger share than the random networks, by 16 ± 10 percentage points, the difference exceeds 2 "
      "standard errors, and the lattices reach the random networks' final share sooner")
def complex_contagion_clustering(ctx: Context, plot: Path) -> Outcome:
    reps = ctx.size.contagion_replicates
    shares: dict[str, np.ndarray] = {}  # per run: share of the non-seed people who joined, by day
    for name, network in CENTOLA_NETWORKS.items():
        # each size its own seeds (the same seeds would share their first draws, and so their fates)
        curves = [(ctx.adoption_curves("default", centola_settings(n, network), reps, k * reps) - 1) / (n - 1)
                  for k, n in enumerate(CENTOLA_SIZES)]
        shares[name] = np.concatenate(curves)
    clustered, random_ = (shares[name] for name in CENTOLA_NETWORKS)
    reach = {name: float(x[:, -1].mean()) for name, x in shares.items()}
    diff = reach["clustered lattice"] - reach["random network"]
    se = math.sqrt(sum(x[:, -1].var(ddof=1) / x.shape[0] for x in shares.values()))
    level = 0.95 * random_.mean(0)[-1]
    t_random, t_clustered = days_to_reach(random_.mean(0), level), days_to_reach(clustered.mean(0), level)
    speed = t_random / t_clustered if t_clustered < math.inf else 0.0
    published = CENTOLA_REACH["clustered lattice"] - CENTOLA_REACH["random network"]
    passed = diff > 0 and abs(diff - published) <= MARGIN_TOLERANCE and diff > 2 * se and speed > 1
    _centola_plot(shares, reach, (level, t_random, t_clustered), plot)
    figure = (f"clustered lattices {pct(reach['clustered lattice'], 0)}, random networks {pct(reach['random network'], 0)} "
              f"(Centola 54 % and 38 %): margin {100 * diff:+.0f} ± {100 * se:.0f} points (published +16); the lattices reach "
              f"the random networks' final share in {t_clustered:.0f} days against {t_random:.0f} ({speed:.1f}x faster; "
              f"published about {CENTOLA_SPEED:.0f}x); {shares['clustered lattice'].shape[0]} seeds per network kind")
    return Outcome(figure, passed, {"reach": reach, "difference": diff, "se": se, "speed": speed, "days": {
        "random network": t_random, "clustered lattice": t_clustered}, "published": dict(CENTOLA_REACH)})


def _centola_plot(shares: dict[str, np.ndarray], reach: dict[str, float], speed: tuple[float, float, float], plot: Path) -> None:
    level, t_random, t_clustered = speed
    fig, (a, b) = _axes()
    colours = {"clustered lattice": "#264653", "random network": "#e76f51"}
    for name, x in shares.items():
        days = np.arange(1, x.shape[1] + 1)
        mean, half = x.mean(0), 1.96 * x.std(0, ddof=1) / math.sqrt(x.shape[0])
        a.plot(days, mean, color=colours[name], lw=1.6, label=f"{name} (model)")
        a.fill_between(days, mean - half, mean + half, color=colours[name], alpha=0.2, lw=0)
        a.axhline(CENTOLA_REACH[name], color=colours[name], ls="--", lw=1, label=f"{name}: Centola {pct(CENTOLA_REACH[name], 0)}")
    a.axhline(level, color="grey", lw=0.6, ls=":", label="95 % of the random networks' final share (dots: reached)")
    for t, name in ((t_clustered, "clustered lattice"), (t_random, "random network")):
        if t < math.inf:
            a.plot([t], [level], "o", color=colours[name], ms=5)
    _style(a, "Share adopted (mean and 95 % band over seeds)", "share of people other than the seed")
    a.set_ylim(0, 1)
    a.legend(fontsize=8, frameon=False, loc="upper left")
    bins = np.linspace(0, 1, 21)
    for name, x in shares.items():
        b.hist(x[:, -1], bins=bins, color=colours[name], alpha=0.55, label=f"{name}: mean {pct(reach[name], 0)}")
    _style(b, f"Final share per seed (day {CENTOLA_HORIZON})", "seeds", "share adopted")
    b.legend(fontsize=8, frameon=False)
    _finish(fig, plot, "Complex contagion on Centola's networks: 6 neighbours each, clustered against random")


# ---------------------------------------------------------------------------- promotions
#: the one campaign of the promotion facts: a Singles'-Day-like festival
PROMOTION_KIND, PROMOTION_DAYS, PROMOTION_DISCOUNT = "festival", 4, 0.25
PRE_DAYS, POST_DAYS, DIP_DAYS = 7, 28, 7  # days watched before the campaign, after it, and the dip week


def promotion_start(horizon: int) -> int:
    """The day the campaign of the promotion facts starts: 54 days before the horizon, Singles' Day
    (day 311, 8 November) in a year, leaving four weeks after it to watch."""
    return horizon - 54


class CampaignRuns:
    """Paired runs of the default scenario without and with one campaign (and with it but creating
    no extra demand), made when first asked for, and the people compared, by their standing on
    ``cohort_day`` (a week before the campaign; nothing differs between the runs before the
    campaign's pre-festival lull, so each group holds the same people in every run): the active
    users (a household panel's category buyers, on whom the published decomposition is measured),
    the lapsed users (dormant or churned: their orders are won back) and the newcomers."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.start = promotion_start(ctx.size.horizon)
        self.end = self.start + PROMOTION_DAYS
        self.cohort_day = self.start - PRE_DAYS
        # The purchases pulled forward are counted until a user the campaign's visits kept from lapsing
        # would have turned dormant without them: after that the active users order more than without
        # the campaign (a retention effect, outside the bump), which a longer span would net against them.
        self.payback_days = compose("default", ctx.overrides).behaviour.churn.dormant_after_days
        self.settings = [*ctx.default_settings(), "mechanisms.promotions.enabled=true"]
        self.calendar = (f"mechanisms.promotions.campaigns=[{{kind:{PROMOTION_KIND},start:{self.start},days:{PROMOTION_DAYS},"
                         f"discount:{PROMOTION_DISCOUNT}}}]")

    @property
    def base(self) -> list[Run]:
        # The promotions mechanism with an empty calendar draws nothing and changes nothing, so when
        # the user has not switched it on the default runs are the no-campaign baseline (tested).
        if self.ctx.enabled("promotions"):
            return self.ctx.runs("default", [*self.settings, "mechanisms.promotions.campaigns=[]"], observe=("standing",))
        return self.ctx.default_runs()

    @property
    def campaign(self) -> list[Run]:
        return self.ctx.runs("default", [*self.settings, self.calendar], observe=("standing",))

    @property
    def no_expansion(self) -> list[Run]:
        return self.ctx.runs("default", [*self.settings, self.calendar, "mechanisms.promotions.expansion=0"], observe=("standing",))

    @staticmethod
    def group(runs: list[Run], standing: int) -> np.ndarray:
        """Orders per day (from ``cohort_day`` on) of the people of one standing
        (``StandingLog.ACTIVE``, ``LAPSED`` or ``NEW``), one row per replicate."""
        return np.array([r.standing.by_standing[:, standing] for r in runs], dtype=float)

    @staticmethod
    def everyone(runs: list[Run]) -> np.ndarray:
        return np.array([r.daily["orders"].to_numpy() for r in runs], dtype=float)


def _campaign_span(ax, c: CampaignRuns) -> None:
    ax.axvspan(c.start - 0.5, c.end - 0.5, color="#f4a261", alpha=0.25, lw=0, label="campaign")
    ax.axvspan(c.end - 0.5, c.end + DIP_DAYS - 0.5, color="#4c72b0", alpha=0.10, lw=0, label="the week after")


@fact("post_promotion_dip", "A promotion's sales bump is followed by a dip below baseline",
      "Paired runs of the default scenario (same seeds) with the promotions mechanism on, without and with one "
      "campaign: a 4-day festival at 25 % off starting 54 days before the horizon (Singles' Day, day 311, in a year). "
      "Orders per day of the people who were active users a week before it (not dormant: the households already buying "
      "of the published studies; the same people in both runs, so newcomers and won-back users cannot hide the dip), "
      "campaign run against the baseline, during the campaign, in the week after and in the days after until a user "
      "the campaign kept from lapsing would have turned dormant (behaviour.churn.dormant_after_days).",
      "van Heerde, Leeflang and Wittink 2000; Macé and Neslin 2004: pre- and post-promotion dips, purchases "
      "accelerated out of the weeks around a promotion",
      "the campaign raises these people's orders during it, and in the week after it they place at least 3 % fewer "
      "orders than without it, in every replicate")
def post_promotion_dip(ctx: Context, plot: Path) -> Outcome:
    c = CampaignRuns(ctx)
    base, camp = c.group(c.base, StandingLog.ACTIVE), c.group(c.campaign, StandingLog.ACTIVE)
    during, after, before = slice(c.start, c.end), slice(c.end, c.end + DIP_DAYS), slice(c.start - PRE_DAYS, c.start)
    bump = (camp[:, during].sum(1) / base[:, during].sum(1)) - 1
    dip = (camp[:, after].sum(1) / base[:, after].sum(1)) - 1
    lull = (camp[:, before].sum(1) / base[:, before].sum(1)) - 1
    extra = (camp - base)[:, during].sum(1)
    lost = (camp - base)[:, c.end:c.end + c.payback_days].sum(1)
    every_b, every_c = c.everyone(c.base), c.everyone(c.campaign)
    dip_all = (every_c[:, after].sum(1) / every_b[:, after].sum(1)) - 1
    passed = bool((bump > 0).all() and (dip <= -0.03).all())
    fig, (a, b) = _axes()
    days = np.arange(c.cohort_day, min(c.end + 35, base.shape[1]))
    a.plot(days, base.mean(0)[days], color="grey", lw=1.6, label="without the campaign")
    a.plot(days, camp.mean(0)[days], color="black", lw=1.2, label="with it")
    _campaign_span(a, c)
    a.set_ylim(0, 1.25 * max(base.mean(0)[days].max(), 1))  # the bump runs off the top: the dip is the point
    _style(a, f"Orders per day of the active users of day {c.cohort_day}", "orders per day")
    a.legend(fontsize=8, frameon=False, loc="lower left")
    cum = np.cumsum((camp - base).mean(0)[days])
    cum_all = np.cumsum((every_c - every_b).mean(0)[days])
    b.plot(days, cum, color="black", lw=1.4, label=f"active users of day {c.cohort_day}")
    b.plot(days, cum_all, color="#dd8452", ls="--", lw=1.2, label="all users (with won-back and new)")
    b.axhline(0, color="grey", lw=0.8)
    b.axvline(c.end + c.payback_days - 0.5, color="grey", lw=0.8, ls=":", label=f"{c.payback_days} days after")
    _campaign_span(b, c)
    _style(b, "Extra orders so far, campaign run minus baseline", "orders")
    b.legend(fontsize=8, frameon=False, loc="lower right")
    _finish(fig, plot, f"A {PROMOTION_DAYS}-day festival at {pct(PROMOTION_DISCOUNT, 0)} off on day {c.start}: bump, then dip")
    spread = f" (replicates {100 * dip.max():+.1f} to {100 * dip.min():+.1f} %)" if dip.size > 1 else ""
    figure = (f"{PROMOTION_DAYS}-day festival at {pct(PROMOTION_DISCOUNT, 0)} off from day {c.start}: orders of the active users of "
              f"day {c.cohort_day} {100 * bump.mean():+.0f} % during it, {100 * dip.mean():+.1f} % in the week after{spread}, "
              f"{100 * lull.mean():+.1f} % in the week before (deal seekers waiting); {100 * -lost.mean() / extra.mean():.0f} % of "
              f"their extra orders paid back within {c.payback_days} days; all users {100 * dip_all.mean():+.1f} % in the week after")
    return Outcome(figure, passed, {"start": c.start, "bump": float(bump.mean()), "dip": float(dip.mean()), "dip_by_replicate": dip.tolist(),
                                    "lull": float(lull.mean()), "payback_share": float(-lost.mean() / extra.mean()),
                                    "dip_all_users": float(dip_all.mean())})


@fact("promotion_bump_decomposition", "A promotion's bump splits into switching, acceleration and expansion",
      "The runs of post_promotion_dip plus a third with the same campaign creating no extra demand "
      "(mechanisms.promotions.expansion=0). Bump = extra orders of everyone during the campaign, split by the buyers' "
      "standing a week before: the active users (not dormant), on whom the published decomposition is measured "
      "(households already buying the category), the lapsed users (dormant or churned: orders won back) and the "
      "newcomers (orders switched from elsewhere). Of the active users' bump: acceleration = the orders they lose in "
      "the week before and the days after until a user the campaign kept from lapsing would have turned dormant "
      "(behaviour.churn.dormant_after_days; purchases moved into the campaign), expansion = their net extra orders over "
      "that window that disappear without the campaign's extra demand, switching = the rest (orders that would "
      "otherwise not have been placed here: demand that would have gone elsewhere).",
      "van Heerde, Leeflang and Wittink 2004: about one third of the bump each from switching, acceleration and expansion "
      "(van Heerde, Gupta and Wittink 2003: 'only 33 % is switching'), measured on households already buying the category",
      "each of switching, acceleration and expansion is between 15 % and 55 % of the active users' bump")
def promotion_bump_decomposition(ctx: Context, plot: Path) -> Outcome:
    c = CampaignRuns(ctx)
    active = {name: c.group(runs, StandingLog.ACTIVE) for name, runs in (("base", c.base), ("campaign", c.campaign), ("plain", c.no_expansion))}
    window, during = slice(c.start - PRE_DAYS, c.end + c.payback_days), slice(c.start, c.end)
    bump = (c.everyone(c.campaign) - c.everyone(c.base))[:, during].sum(1)
    diff, diff_plain = active["campaign"] - active["base"], active["plain"] - active["base"]
    bump_active = diff[:, during].sum(1)
    accel = -(diff[:, window].sum(1) - bump_active)
    expansion = diff[:, window].sum(1) - diff_plain[:, window].sum(1)
    switching = bump_active - accel - expansion
    won_back, newcomers = ((c.group(c.campaign, g) - c.group(c.base, g))[:, during].sum(1) for g in (StandingLog.LAPSED, StandingLog.NEW))
    parts = {"switching": switching.mean(), "acceleration": accel.mean(), "expansion": expansion.mean()}
    share = {k: float(v / bump_active.mean()) for k, v in parts.items()}
    passed = all(0.15 <= v <= 0.55 for v in share.values())
    whole = {"switching (active users)": switching.mean(), "acceleration": accel.mean(), "expansion": expansion.mean(),
             "won back (lapsed users)": won_back.mean(), "newcomers": newcomers.mean()}
    whole = {k: float(v / bump.mean()) for k, v in whole.items()}
    fig, (a, b) = _axes()
    days = np.arange(c.cohort_day, min(c.end + POST_DAYS + 7, diff.shape[1]))
    a.plot(days, np.cumsum(diff.mean(0)[days]), color="black", lw=1.4, label="campaign")
    a.plot(days, np.cumsum(diff_plain.mean(0)[days]), color="#2a9d8f", lw=1.2, ls="--", label="campaign creating no extra demand")
    a.axhline(0, color="grey", lw=0.8)
    a.axvspan(c.start - 0.5, c.end - 0.5, color="#f4a261", alpha=0.25, lw=0)
    a.axvline(c.end + c.payback_days - 0.5, color="grey", lw=0.8, ls=":", label=f"end of the window ({c.payback_days} days after)")
    _style(a, f"Extra orders so far of the active users of day {c.cohort_day}", "orders")
    a.legend(fontsize=8, frameon=False)
    colours = {"switching": "#4c72b0", "acceleration": "#dd8452", "expansion": "#55a868", "switching (active users)": "#4c72b0",
               "won back (lapsed users)": "#8172b3", "newcomers": "#64b5cd"}
    rows = (whole, share, {k: 1 / 3 for k in share})
    for row, shares in enumerate(rows):
        left = 0.0
        for k, v in shares.items():
            b.barh(row, v, left=left, color=colours[k], label=k if row == 0 else None)
            if v >= 0.04:
                b.text(left + v / 2, row, f"{100 * v:.0f} %", ha="center", va="center", fontsize=9, color="white")
            left += v
    b.set_yticks([0, 1, 2], ["model, all users", "model, active users", "van Heerde et al.\n2004 (about)"])
    b.set_xlim(0, 1)
    _style(b, "Shares of the bump", "", "share of the extra orders during the campaign")
    b.legend(fontsize=8, frameon=False, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    _finish(fig, plot, "Where a promotion's extra orders come from")
    figure = (f"bump {bump.mean():,.0f} orders, {pct(bump_active.mean() / bump.mean(), 0)} from the active users of day {c.cohort_day}: "
              f"of theirs, switching {pct(share['switching'], 0)}, acceleration {pct(share['acceleration'], 0)}, "
              f"expansion {pct(share['expansion'], 0)}; won back from lapsed users {pct(won_back.mean() / bump.mean(), 0)} and "
              f"newcomers' orders {pct(newcomers.mean() / bump.mean(), 0)} of the bump")
    return Outcome(figure, passed, {"bump": float(bump.mean()), "bump_active": float(bump_active.mean()),
                                    **{k: float(v) for k, v in parts.items()}, "shares": share, "shares_of_all": whole,
                                    "won_back": float(won_back.mean()), "newcomers": float(newcomers.mean())})


DEEP_COUPON = 0.4  # fraction of price off a new user's orders in their first week


@fact("discount_acquired_value", "Customers drawn in by heavy acquisition discounts are worth less",
      f"The default scenario with an always-on {pct(DEEP_COUPON, 0)} new-user coupon (promotions mechanism, kind new_user). "
      "Customers the coupon drew in (non-users who heard of it and joined through it) against the other organic joiners "
      "of the same runs, and referred and paid users: spend (RMB paid) in their first 90 days and still a user at day 90, "
      "pooled over everyone who joined at least 90 days before the horizon.",
      "Lewis 2006: customers acquired with deeper acquisition discounts repurchase less and are worth less; Datta, "
      "Foubert and van Heerde 2015: customers acquired through free trials are retained less",
      "customers drawn in by the coupon spend at least 20 % less in their first 90 days than the other organic joiners "
      "(difference above 2 standard errors), and fewer of them are still users at day 90")
def discount_acquired_value(ctx: Context, plot: Path) -> Outcome:
    s = ctx.size
    settings = [f"population.size={s.discount_population}", f"horizon={s.horizon}", "mechanisms.promotions.enabled=true",
                f"mechanisms.promotions.campaigns=[{{kind:new_user,start:0,days:36500,discount:{DEEP_COUPON}}}]"]
    logs = [r.acquired for r in ctx.runs("default", settings, observe=("acquired",))]
    age = logs[0].age
    done = np.concatenate([log.orders >= 0 for log in logs])
    drawn = np.concatenate([log.drawn for log in logs])
    channel = np.concatenate([log.channel for log in logs])
    spend = np.concatenate([log.spend for log in logs])
    churn_age = np.concatenate([log.churn_age for log in logs])
    groups = {"drawn in by the coupon": done & drawn, "other organic joiners": done & ~drawn & (channel == ORGANIC),
              "referred": done & (channel == REFERRAL), "paid": done & (channel == CHANNELS.index("paid"))}
    value = {g: float(spend[m].mean()) if m.any() else float("nan") for g, m in groups.items()}
    se = {g: float(spend[m].std(ddof=1) / math.sqrt(m.sum())) if m.sum() > 1 else float("nan") for g, m in groups.items()}
    stay = {g: float(np.mean(churn_age[m] > age)) if m.any() else float("nan") for g, m in groups.items()}
    d, o = "drawn in by the coupon", "other organic joiners"
    gap = 1 - value[d] / value[o]
    passed = bool(gap >= 0.20 and value[o] - value[d] > 2 * math.hypot(se[d], se[o]) and stay[d] < stay[o])
    fig, (a, b) = _axes()
    colours = dict(zip(groups, ("#e76f51", "#264653", "#55a868", "#8172b3")))
    ages = np.arange(age + 1)
    for g, m in groups.items():
        if m.any():
            a.plot(ages, (churn_age[m][None, :] > ages[:, None]).mean(1), color=colours[g], label=f"{g} ({m.sum():,})")
    a.set_ylim(0, 1)
    _style(a, "Still a user, by how they came", "share of joiners", "days since joining")
    a.legend(fontsize=8, frameon=False)
    names = list(groups)
    b.bar(range(len(names)), [value[g] for g in names], yerr=[2 * se[g] for g in names], color=[colours[g] for g in names], capsize=3)
    b.set_xticks(range(len(names)), [g.replace(" by the coupon", "\nby the coupon").replace(" joiners", "\njoiners") for g in names], fontsize=8)
    _style(b, f"Spend in the first {age} days (± 2 SE)", "RMB per joiner", "")
    _finish(fig, plot, f"Customers drawn in by a {pct(DEEP_COUPON, 0)} new-user coupon ({s.discount_population:,} people)")
    figure = (f"first-{age}-day spend per joiner: drawn in by the coupon {value[d]:,.0f} RMB, other organic joiners {value[o]:,.0f} RMB "
              f"({100 * -gap:+.0f} %), referred {value['referred']:,.0f}, paid {value['paid']:,.0f}; still users at day {age}: "
              f"{pct(stay[d])} vs {pct(stay[o])} ({groups[d].sum():,} customers drawn in)")
    return Outcome(figure, passed, {"age": age, "value": value, "se": se, "still_users": stay, "gap": gap,
                                    "drawn": int(groups[d].sum())})


# ---------------------------------------------------------------------------- recommendations
STRATEGIES = ("none", "random", "popular", "personalised")
STRATEGY_COLOURS = {"none": "grey", "random": "#8172b3", "popular": "#dd8452", "personalised": "#4c72b0"}


def recommendation_runs(ctx: Context) -> dict[str, list[Run]]:
    """Paired runs of the default scenario with the recommendations mechanism on under each strategy."""
    s = ctx.size
    base = [f"population.size={s.recommendation_population}", f"horizon={s.horizon}", "mechanisms.recommendations.enabled=true"]
    return {k: ctx.runs("default", [*base, f"mechanisms.recommendations.strategy={k}"]) for k in STRATEGIES}


def total_orders(runs: list[Run]) -> np.ndarray:
    return np.array([r.daily["orders"].sum() for r in runs], dtype=float)


@fact("recommendation_diversity", "Recommenders raise orders but lower aggregate diversity",
      "Paired runs (same seeds) of the default scenario with the recommendations mechanism on and strategy none, random, "
      "popular and personalised: orders over the horizon, and aggregate diversity as the Gini coefficient of the "
      "horizon's orders over the product categories (0: sales spread evenly).",
      "Fleder and Hosanagar 2009: recommenders that lean on sales data raise sales but concentrate them (aggregate "
      "diversity falls); DESIGN section 7",
      "popular and personalised each give more orders and a higher Gini than both none and random (each paired "
      "difference above 2 standard errors)")
def recommendation_diversity(ctx: Context, plot: Path) -> Outcome:
    runs = recommendation_runs(ctx)
    orders = {k: total_orders(v) for k, v in runs.items()}
    counts = {k: [r.orders.by_category.sum(0) for r in v] for k, v in runs.items()}
    ginis = {k: np.array([gini(x) for x in v]) for k, v in counts.items()}
    checks = {}
    for k in ("popular", "personalised"):
        for o in ("none", "random"):
            d_orders = orders[k] - orders[o]
            se_orders = paired_se(d_orders, float(np.mean(orders[k] + orders[o])))
            d_gini = ginis[k] - ginis[o]
            se_gini = paired_se(d_gini, gini_sampling_var(counts[k][0]) + gini_sampling_var(counts[o][0]))
            checks[f"{k} vs {o}"] = bool(d_orders.mean() > 2 * se_orders and d_gini.mean() > 2 * se_gini)
    passed = all(checks.values())
    base = orders["none"].mean()
    fig, (a, b) = _axes()
    for k in STRATEGIES:
        x, y = 100 * (orders[k].mean() / base - 1), ginis[k].mean()
        a.scatter(x, y, s=60, color=STRATEGY_COLOURS[k], zorder=3)
        a.annotate(k, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=9)
    _style(a, "Orders against concentration of sales", "Gini of orders over categories", "orders vs no recommendations (%)")
    for k in STRATEGIES:
        total = np.sum(counts[k], axis=0)
        share = np.sort(total / total.sum())[::-1]
        b.plot(np.arange(1, share.size + 1), share, "o-", ms=3, color=STRATEGY_COLOURS[k], label=f"{k} (Gini {ginis[k].mean():.2f})")
    b.set_yscale("log")
    _style(b, "Share of orders by category, best-selling first", "share of orders", "category rank")
    b.legend(fontsize=8, frameon=False)
    _finish(fig, plot, f"Recommendation strategies: orders and aggregate diversity ({ctx.size.recommendation_population:,} people)")
    figure = ("orders " + ", ".join(f"{k} {orders[k].mean():,.0f}" + ("" if k == "none" else f" ({100 * (orders[k].mean() / base - 1):+.0f} %)")
                                    for k in STRATEGIES)
              + "; Gini of sales over categories " + ", ".join(f"{k} {ginis[k].mean():.2f}" for k in STRATEGIES))
    return Outcome(figure, passed, {"orders": {k: float(v.mean()) for k, v in orders.items()},
                                    "gini": {k: float(v.mean()) for k, v in ginis.items()}, "checks": checks})


@fact("recommendation_credit", "Much of what is credited to recommendations is not caused by them",
      "The runs of recommendation_diversity: orders credited to recommendations (orders of visitors who followed one, "
      "last touch) against the orders a strategy adds over the paired run without recommendations, as an A/B test with "
      "a hold-out would measure them. Share not caused = 1 - added / credited (a lower bound: added orders also include "
      "effects credit does not see, e.g. on retention).",
      "Sharma, Hofman and Watts 2015: at least three quarters of click-throughs on Amazon's recommendations would have "
      "happened without them",
      "personalised recommendations add orders (paired difference above 2 standard errors), and at least 30 % of the "
      "orders credited to them would have been placed without them")
def recommendation_credit(ctx: Context, plot: Path) -> Outcome:
    runs = recommendation_runs(ctx)
    none = total_orders(runs["none"])
    credited, added, se = {}, {}, {}
    for k in STRATEGIES[1:]:
        credited[k] = np.array([r.daily["orders_recommendation"].sum() for r in runs[k]], dtype=float).mean()
        d = total_orders(runs[k]) - none
        added[k], se[k] = float(d.mean()), paired_se(d, float(np.mean(total_orders(runs[k]) + none)))
    not_caused = {k: 1 - added[k] / credited[k] if credited[k] > 0 else float("nan") for k in credited}
    p = "personalised"
    passed = bool(added[p] > 2 * se[p] and not_caused[p] >= 0.30)
    fig, (a, b) = _axes()
    names = list(credited)
    x = np.arange(len(names))
    a.bar(x - 0.2, [credited[k] for k in names], 0.4, color="#b0b0b0", label="credited to recommendations")
    a.bar(x + 0.2, [added[k] for k in names], 0.4, yerr=[2 * se[k] for k in names], capsize=3,
          color="#264653", label="added over no recommendations (± 2 SE)")
    a.axhline(0, color="grey", lw=0.8)
    a.set_xticks(x, names)
    _style(a, "Orders over the horizon", "orders", "strategy")
    a.legend(fontsize=8, frameon=False)
    smooth = lambda v: pd.Series(v).rolling(14, min_periods=1).mean()  # noqa: E731
    cred_daily = np.mean([r.daily["orders_recommendation"].to_numpy() for r in runs[p]], axis=0)
    add_daily = np.mean([r.daily["orders"].to_numpy() for r in runs[p]], axis=0) - np.mean([r.daily["orders"].to_numpy() for r in runs["none"]], axis=0)
    b.plot(smooth(cred_daily), color="#b0b0b0", lw=1.6, label="credited")
    b.plot(smooth(add_daily), color="#264653", lw=1.4, label="added (paired difference)")
    _style(b, "Personalised: orders per day (14-day means)", "orders per day")
    b.legend(fontsize=8, frameon=False)
    _finish(fig, plot, "Credit for recommendations against what they add")
    figure = ("; ".join(f"{k}: {credited[k]:,.0f} orders credited, {added[k]:+,.0f} added ({pct(not_caused[k], 0)} not caused)" for k in names))
    return Outcome(figure, passed, {"credited": credited, "added": added, "se": se, "not_caused": not_caused})


# ---------------------------------------------------------------------------- the social graph
@fact("social_graph_structure", "The default social graph: heavy-tailed degrees, high clustering, short paths",
      "The graph of the default scenario (its size and seed): the degree distribution and the maximum-likelihood "
      "exponent of its tail above the mean degree (Clauset, Shalizi and Newman 2009); the average local clustering "
      "coefficient of 2,000 random people against that of a random graph of the same size and mean degree; and the "
      "mean shortest-path length from 20 random people to everyone against the random graph's ln n / ln k.",
      "Barabási and Albert 1999 (degree exponents of 2 to 3); Watts and Strogatz 1998 (clustering far above a random "
      "graph's, paths as short); Ugander, Karrer, Backstrom and Marlow 2011 (Facebook: heavy-tailed degrees, "
      "clustering 0.14 at 100 friends, 4.7 steps between people)",
      "the largest degree is at least 20 times the mean and the tail exponent is between 2 and 3.5; the average "
      "clustering is at least 0.05 and 50 times a random graph's; the mean distance is at most 1.25 times ln n / ln k")
def social_graph_structure(ctx: Context, plot: Path) -> Outcome:
    import scipy.sparse as sparse
    from scipy.sparse.csgraph import shortest_path
    from scipy.stats import poisson

    from sim.engine import Streams
    from sim.graph import build_graph

    cfg = compose("default", [*ctx.overrides, *ctx.default_settings()]).with_seed(ctx.seed)
    graph = build_graph(cfg.graph, cfg.population.size, Streams(cfg.seed).setup("graph"))  # as GrowthModel builds it
    if getattr(graph, "well_mixed", False):
        return Outcome(f"graph={cfg.graph.kind} is well mixed: it has no structure to measure", False)
    n = graph.n
    degree = np.diff(graph.indptr).astype(np.int64)
    mean = float(degree.mean())
    tail = degree[degree >= mean].astype(float)
    k_min = math.ceil(mean)
    alpha = 1 + tail.size / np.log(tail / (k_min - 0.5)).sum()  # discrete power law, Clauset et al. (3.7)
    adj = sparse.csr_matrix((np.ones(graph.indices.size), graph.indices, graph.indptr), shape=(n, n))
    rng = np.random.default_rng(ctx.seed)
    eligible = np.flatnonzero(degree >= 2)
    people = rng.choice(eligible, size=min(2000, eligible.size), replace=False)
    rows = adj[people]
    triangles = np.asarray((rows @ adj).multiply(rows).sum(axis=1)).ravel() / 2
    local = 2 * triangles / (degree[people] * (degree[people] - 1))
    clustering, random_clustering = float(local.mean()), mean / (n - 1)
    sources = rng.choice(n, size=min(20, n), replace=False)
    dist = shortest_path(adj, directed=False, unweighted=True, indices=sources)
    reach = dist[np.isfinite(dist) & (dist > 0)]
    path, random_path = float(reach.mean()), math.log(n) / math.log(mean)
    heavy = degree.max() >= 20 * mean and 2 <= alpha <= 3.5
    clustered = clustering >= 0.05 and clustering >= 50 * random_clustering
    short = path <= 1.25 * random_path
    fig, (a, b, c) = _axes(3, 15)
    k = np.unique(degree)
    a.loglog(k, [(degree >= x).mean() for x in k], color="black", lw=1.4, label="default graph")
    kp = np.arange(max(1, int(mean / 3)), int(3 * mean))
    a.loglog(kp, poisson.sf(kp - 1, mean), color="#e76f51", ls="--", label="random graph (Poisson)")
    kt = np.geomspace(k_min, degree.max(), 20)
    a.loglog(kt, (degree >= k_min).mean() * (kt / k_min) ** (1 - alpha), color="#2a9d8f", ls=":", label=f"power law, exponent {alpha:.2f}")
    a.set_ylim(0.5 / n, 1.5)
    _style(a, "Degree distribution", "share with at least k friends", "k (friends)")
    a.legend(fontsize=8, frameon=False)
    bins = np.unique(np.geomspace(max(2, degree[people].min()), degree[people].max() + 1, 12).astype(int))
    which = np.digitize(degree[people], bins)
    mids = [degree[people][which == i].mean() for i in np.unique(which)]
    b.loglog(mids, [local[which == i].mean() for i in np.unique(which)], "o-", color="black", label="default graph")
    b.axhline(random_clustering, color="#e76f51", ls="--", label="random graph (k / n)")
    _style(b, f"Local clustering by degree (mean {clustering:.3f})", "clustering coefficient", "friends")
    b.legend(fontsize=8, frameon=False)
    steps, counts = np.unique(reach.astype(int), return_counts=True)
    c.bar(steps, counts / counts.sum(), color="#264653")
    c.axvline(random_path, color="#e76f51", ls="--", label=f"random graph: ln n / ln k = {random_path:.1f}")
    c.axvline(path, color="black", lw=1, label=f"mean {path:.2f}")
    c.set_ylim(0, 1.25 * (counts / counts.sum()).max())
    _style(c, "Distances between people", "share of pairs", "steps")
    c.legend(fontsize=8, frameon=False, loc="upper left")
    _finish(fig, plot, f"The default social graph ({cfg.graph.kind}, {n:,} people, mean degree {mean:.1f})")
    figure = (f"{cfg.graph.kind}, {n:,} people: degrees mean {mean:.1f}, max {degree.max():,} ({degree.max() / mean:.0f}x the mean), "
              f"tail exponent {alpha:.2f}; clustering {clustering:.3f} ({clustering / random_clustering:,.0f}x a random graph's); "
              f"mean distance {path:.2f} steps (random graph {random_path:.2f})")
    return Outcome(figure, bool(heavy and clustered and short),
                   {"mean_degree": mean, "max_degree": int(degree.max()), "tail_exponent": float(alpha), "clustering": clustering,
                    "random_clustering": random_clustering, "mean_distance": path, "random_distance": random_path})


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
        """The folder's report.html: the table of facts, then a section per fact with its plot."""
        from sim.report import render

        done = [f for f in self.findings if f.status != "pending"]
        subtitle = (f"{sum(f.passed for f in done)} of {len(done)} facts pass · {self.size.name} size · "
                    f"{self.size.population:,} people, {self.size.horizon} days, {len(done) and self.size.replicates} replicate(s) · "
                    f"overrides: {' '.join(self.overrides) or 'none'} · {self.seconds:.0f} s")
        return render("validation.html.j2", title="growth-sim validation against stylized facts", subtitle=subtitle,
                      summary=self.table[["fact", "result", "figure", "reference"]], findings=self.findings)

    def save(self, out: str | Path = "results/validation") -> Path:
        """Write the validation folder (report.html, facts.csv, facts.json, plots/) atomically."""
        import shutil

        from sim.folders import AtomicFolder

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
    """A line per measured fact on stderr (written above a progress bar there, if one is drawn)."""
    from tqdm import tqdm

    tqdm.write(f"  {finding.status.upper():<7} {finding.name}", file=sys.stderr)
