"""The decision view of a comparison: which strategy is best on one metric among those that meet
every constraint, and which uncertain assumptions could change that answer.

A growth team's question has an objective and constraints ("the most users at month 12 without
losing more money than today"). It is answered replicate by replicate: in replicate r, a strategy
is feasible when it meets every constraint (a constraint against ``baseline`` compares it with the
baseline's own replicate r, so the comparison stays paired, and the baseline is judged like the
others), and the best is the feasible strategy with the best objective (the first listed, on a tie).
P(best) of a strategy is the share of replicates in which it is that one: the probability, over the
noise and the assumptions a comparison draws, that choosing it is right (the "probability of correct
selection" of ranking-and-selection, e.g. Kim and Nelson 2006, estimated directly from the paired
replicates). The recommendation is the strategy with the highest P(best), ties broken by its mean
objective; when that is the baseline, the recommendation is to keep it.

Whether an assumption could flip the decision is read two ways: the Spearman rank correlation of
its draw with the paired difference of the objective, and the split of the replicates at the
median of its draw, the objective's mean difference and the recommendation in each half.
Nothing here runs a simulation: the input is a horizon frame (strategy, replicate, metrics).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.analysis.comparison import METRICS, VERDICT_METRICS, paired_values
from sim.analysis.stats import POINTS, mean_interval, number_text, percent_text
from sim.plans import Constraint, DecisionSpec

OPERATORS = {">=": np.greater_equal, "<=": np.less_equal, ">": np.greater, "<": np.less}
MONEY_UNIT = "RMB"  #: a money metric is a total in this unit (profit, costs, GMV), not a rate per user


@dataclass(frozen=True)
class Question:
    """What a comparison decides: ``sense`` (maximise or minimise) ``objective`` subject to ``constraints``."""

    objective: str
    sense: str
    constraints: tuple[Constraint, ...] = ()

    @classmethod
    def of(cls, decision: DecisionSpec | None, metrics: Sequence[str]) -> Question:
        """The experiment's decision, or without one the first verdict metric it reports, in its
        better direction and without constraints."""
        if decision is not None:
            return cls(decision.objective, decision.sense, decision.constraints)
        objective = next((m for m in VERDICT_METRICS if m in metrics), metrics[0])
        return cls(objective, "minimise" if METRICS[objective].better == "lower" else "maximise")

    @property
    def money(self) -> str:
        """The money metric a cost per unit is counted in: the first total in RMB among the
        constraints, else profit."""
        return next((c.metric for c in self.constraints if METRICS[c.metric].unit == MONEY_UNIT), "profit")

    def text(self) -> str:
        head = f"{self.sense} {self.objective}"
        return "; ".join([head, *(c.text for c in self.constraints)])


def _wide(horizon: pd.DataFrame, metric: str, strategies: Sequence[str], replicates: Sequence[int]) -> np.ndarray:
    """Replicates x strategies of ``metric`` (nan where a run has no value)."""
    wide = horizon.pivot(index="replicate", columns="strategy", values=metric)
    return wide.reindex(index=list(replicates), columns=list(strategies)).to_numpy(np.float64)


def feasible(horizon: pd.DataFrame, q: Question, baseline: str, strategies: Sequence[str], replicates: Sequence[int]) -> np.ndarray:
    """Replicates x strategies: every constraint met (a missing value meets none)."""
    ok = np.ones((len(replicates), len(strategies)), dtype=bool)
    for c in q.constraints:
        values = _wide(horizon, c.metric, strategies, replicates)
        rhs = values[:, [list(strategies).index(baseline)]] + c.offset if c.relative else c.offset
        with np.errstate(invalid="ignore"):
            ok &= OPERATORS[c.op](values, rhs) & np.isfinite(values)
    return ok


def best(horizon: pd.DataFrame, q: Question, baseline: str, strategies: Sequence[str], replicates: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The index of the best feasible strategy in each replicate (-1: none is feasible), and the
    feasibility matrix."""
    ok = feasible(horizon, q, baseline, strategies, replicates)
    score = _wide(horizon, q.objective, strategies, replicates) * (1.0 if q.sense == "maximise" else -1.0)
    score = np.where(ok & np.isfinite(score), score, -np.inf)
    choice = np.argmax(score, axis=1)  # the first of equal scores
    return np.where(np.isfinite(score.max(axis=1, initial=-np.inf)), choice, -1), ok


def probabilities(horizon: pd.DataFrame, q: Question, baseline: str, replicates: Sequence[int] | None = None) -> pd.DataFrame:
    """Per strategy: P(best and feasible), P(feasible) and the mean objective over ``replicates``."""
    strategies = list(horizon["strategy"].unique())
    replicates = sorted(horizon["replicate"].unique()) if replicates is None else list(replicates)
    chosen, ok = best(horizon, q, baseline, strategies, replicates)
    n = max(len(replicates), 1)
    values = pd.DataFrame(_wide(horizon, q.objective, strategies, replicates), columns=strategies)
    return pd.DataFrame({"strategy": strategies, "p_best": [float(np.count_nonzero(chosen == k)) / n for k in range(len(strategies))],
                         "p_feasible": ok.sum(axis=0) / n, "objective_mean": values.mean().to_numpy()})


def recommend(p: pd.DataFrame, q: Question) -> str | None:
    """The strategy most often best and feasible (ties: the better mean objective); None when no
    strategy is ever feasible."""
    if not len(p) or p["p_best"].max() <= 0:
        return None
    top = p[p["p_best"] == p["p_best"].max()]
    key = top["objective_mean"].fillna(-math.inf if q.sense == "maximise" else math.inf)
    return str(top.loc[key.idxmax() if q.sense == "maximise" else key.idxmin(), "strategy"])


_UNIT_WORDS = {"people": "user", "orders": "order", "invitations": "invitation"}


def per_unit_phrase(q: Question) -> str:
    """"per extra user", "per extra RMB of GMV", "per RMB per user less of CAC (blended)"."""
    meta = METRICS[q.objective]
    if q.sense == "maximise":
        return f"per extra {_UNIT_WORDS.get(meta.unit, f'{meta.unit} of {meta.label}'.strip())}"
    unit = meta.difference_unit or "unit"
    return f"per {'point' if unit == POINTS else unit} less of {meta.label}"


def money_per_unit(horizon: pd.DataFrame, q: Question, strategy: str, baseline: str) -> tuple[float, str]:
    """The mean paired change of the money metric per unit the objective gains (signed: below 0,
    money is lost), and the same in words; nan and "n/a" when the objective does not gain clearly
    (its interval reaches 0: a ratio to a gain that may be nothing means nothing)."""
    d = mean_interval(paired_values(horizon, strategy, baseline, q.objective))
    sign = 1.0 if q.sense == "maximise" else -1.0
    gain = d.mean * sign
    if strategy == baseline or q.money not in horizon or not (math.isfinite(gain) and gain > 0):
        return math.nan, "n/a"
    if not min(d.low * sign, d.high * sign) > 0:
        return math.nan, f"n/a (no clear gain in {q.objective})"
    money = paired_values(horizon, strategy, baseline, q.money).mean()
    if not math.isfinite(money):
        return math.nan, "n/a"
    value = float(money / gain)
    if q.objective == q.money:
        return value, "n/a"
    if METRICS[q.objective].difference_unit == POINTS:  # a gain in a share is counted per point
        value /= 100.0
    meta = METRICS[q.money]
    amount = number_text(abs(value), "", signed=False)
    return value, f"{amount} {meta.unit} of {meta.label} {'more' if value > 0 else 'less'} {per_unit_phrase(q)}"


@dataclass
class Decision:
    """The answer to a comparison's question (``Comparison.decision``)."""

    question: Question
    baseline: str
    replicates: int
    table: pd.DataFrame  # strategy, p_best, p_feasible, objective_mean, mean_difference, ci_low, ci_high, money_per_unit, money_text
    recommended: str | None  # None: no strategy meets the constraints in any replicate
    line: str  # the recommendation in one line

    def as_dict(self) -> dict:
        """The contents of ``decision.json`` (nan written as null)."""
        def clean(x):
            return None if isinstance(x, float) and not math.isfinite(x) else x

        q = self.question
        strategies = {}
        for row in self.table.to_dict("records"):
            name = row.pop("strategy")
            strategies[name] = {k: clean(v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        return {"objective": {"metric": q.objective, "sense": q.sense, "label": METRICS[q.objective].label},
                "constraints": [c.text for c in q.constraints], "baseline": self.baseline, "replicates": self.replicates,
                "money_metric": q.money, "recommended": self.recommended,
                "keep_baseline": self.recommended == self.baseline, "nothing_feasible": self.recommended is None,
                "line": self.line, "strategies": strategies}


def decide(horizon: pd.DataFrame, q: Question, baseline: str, noise: pd.DataFrame | None = None) -> Decision:
    """The decision of a comparison's runs: P(best and feasible) and P(feasible) per strategy, the
    objective's paired difference against ``baseline`` with its interval, the money per unit of
    objective gained, and with ``noise`` (the noise-only set) the same probabilities without the
    assumptions' uncertainty."""
    p = probabilities(horizon, q, baseline)
    rows = []
    for strategy in p["strategy"]:
        d = mean_interval(paired_values(horizon, strategy, baseline, q.objective)) if strategy != baseline else None
        value, text = money_per_unit(horizon, q, strategy, baseline)
        rows.append({"mean_difference": d.mean if d else math.nan, "ci_low": d.low if d else math.nan,
                     "ci_high": d.high if d else math.nan, "money_per_unit": value, "money_text": text})
    table = pd.concat([p, pd.DataFrame(rows)], axis=1)
    if noise is not None:
        pn = probabilities(noise, q, baseline)
        table["p_best_noise"], table["p_feasible_noise"] = pn["p_best"].to_numpy(), pn["p_feasible"].to_numpy()
    n = int(horizon["replicate"].nunique())
    chosen = recommend(p, q)
    return Decision(q, baseline, n, table, chosen, decision_line(table, q, baseline, chosen, n))


def _signed(x: float, metric: str) -> str:
    unit = POINTS if METRICS[metric].difference_unit == POINTS else ""
    return number_text(x, unit, signed=True)


def decision_line(table: pd.DataFrame, q: Question, baseline: str, chosen: str | None, n: int) -> str:
    """``recommended: group_buy (best within the constraints in 83 % of 30 replicates; users_end
    +1,234 [+1,100, +1,350] vs default; 12.3 RMB of profit less per extra user)``."""
    if chosen is None:
        rules = "; ".join(c.text for c in q.constraints)
        return f"recommended: none (no strategy, {baseline} included, meets {rules} in any of {n} replicates)"
    row = table.set_index("strategy").loc[chosen]
    where = "best within the constraints" if q.constraints else f"best on {q.objective}"
    share = f"{where} in {percent_text(row['p_best'])} of {n} replicates"
    noise = f", {percent_text(row['p_best_noise'])} with every assumption at its centre" if "p_best_noise" in row else ""
    m = q.objective

    def effect(r) -> str:
        return f"{m} {_signed(r['mean_difference'], m)} [{_signed(r['ci_low'], m)}, {_signed(r['ci_high'], m)}]"

    if chosen == baseline:  # why not another: the one with the best objective, and how often it is allowed
        others = table[table["strategy"] != baseline]
        gain = others["mean_difference"] * (1.0 if q.sense == "maximise" else -1.0)
        if not len(others) or not (gain > 0).any():
            return f"recommended: keep {baseline} ({share}{noise}; no other strategy does better on {m})"
        top = others.loc[gain.idxmax()]
        return (f"recommended: keep {baseline} ({share}{noise}; {top['strategy']} does better on {effect(top)} but meets "
                f"the constraints in {percent_text(top['p_feasible'])} of replicates)")
    return f"recommended: {chosen} ({share}{noise}; {effect(row)} vs {baseline}; {row['money_text']})"


# ------------------------------------------------------------------------------ assumptions
def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); nan when either side is constant."""
    from scipy.stats import rankdata

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return math.nan
    rx, ry = rankdata(x[ok]), rankdata(y[ok])
    if rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def halves(draws: pd.Series) -> tuple[list[int], list[int], float]:
    """The replicates whose draw is at most the median and those above it (for a draw with many
    replicates at the median, those below it and those at or above it), and the median."""
    median = float(draws.median())
    low, high = draws.index[draws <= median], draws.index[draws > median]
    if not len(high):
        low, high = draws.index[draws < median], draws.index[draws >= median]
    return sorted(low), sorted(high), median


def assumption_effects(horizon: pd.DataFrame, q: Question, baseline: str, columns: Mapping[str, str],
                       orders: Mapping[str, Sequence] | None = None) -> pd.DataFrame:
    """Per assumption and strategy: Spearman's correlation of the draw with the paired difference of
    the objective, the mean difference in the lower and upper halves of the draws, the recommended
    strategy in each half, and ``flips`` when the difference changes sign or the recommendation
    changes between the halves. ``columns``: assumption key -> its column in ``horizon``;
    ``orders``: key -> the order of a choice of words (their ranks)."""
    rows = []
    strategies = [s for s in horizon["strategy"].unique() if s != baseline]
    for key, column in columns.items():
        draws = horizon[horizon["strategy"] == baseline].set_index("replicate")[column]
        if orders and key in orders and not pd.api.types.is_numeric_dtype(draws):
            rank = {repr(v): k for k, v in enumerate(orders[key])}
            draws = draws.map(lambda v: rank[repr(v)])
        draws = draws.astype(np.float64)
        low, high, median = halves(draws)
        rec = [recommend(probabilities(horizon, q, baseline, part), q) if part else None for part in (low, high)]
        for s in strategies:
            d = paired_values(horizon, s, baseline, q.objective)
            x = draws.reindex(d.index)
            means = [float(d.reindex(part).mean()) if part else math.nan for part in (low, high)]
            sign_flip = all(math.isfinite(v) and v != 0 for v in means) and (means[0] > 0) != (means[1] > 0)
            rows.append({"assumption": key, "strategy": s, "baseline": baseline, "metric": q.objective,
                         "spearman": spearman(x.to_numpy(), d.to_numpy()), "median": median,
                         "n_low": len(low), "n_high": len(high), "mean_difference_low": means[0], "mean_difference_high": means[1],
                         "recommended_low": rec[0], "recommended_high": rec[1],
                         "flips": bool(sign_flip or (rec[0] is not None and rec[1] is not None and rec[0] != rec[1]))})
    return pd.DataFrame(rows)
