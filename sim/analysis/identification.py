"""What a calibration's trials say beyond the best fit: which targets the model cannot meet together,
and which parameters each target pins down.

Both read the loss of each target at every trial (``trials.csv``, columns ``loss:<target>``).

- **Conflicts.** For two targets, the ideal point is the best fit of each alone over the trials. The
  pair conflicts when no trial comes within ``tolerance`` of both bests at once: the smallest, over the
  trials, of the larger of the two excesses over their best is the Chebyshev distance from the ideal
  point to the trials (the achievement measure of multi-objective optimisation; Miettinen 1999,
  *Nonlinear multiobjective optimization*). Losses are compared as errors: the root of an
  ``msle`` (a root-mean-square log ratio, near a relative error) and a ``relative`` loss as it is.
  Targets the model can meet together have a trial near both bests; targets that pull the parameters
  apart (improving one worsens the other) have none. Two targets can pull apart only through a
  parameter both respond to (losses that depend on different parameters are met together by taking
  each parameter from its own target's best), so a pair also needs a shared parameter scoring at
  least ``RESPONDS`` below: otherwise the gap only says the search has not yet tried the combination.
- **Identification.** How much of the variation of a target's loss across the trials goes with one
  parameter: the trials are grouped into quantile bins of the parameter and the ranks of the loss
  split into between- and within-bin variance, as the estimated omega-squared effect size (Hays 1963,
  *Statistics for psychologists*; corrected for the share bins take by chance, so an unrelated
  parameter scores about 0). A target whose loss moves with a parameter says where that parameter
  lies; a loss that ignores it cannot. The trials are not a designed sample (the sampler crowds near
  the best fit and may move parameters together), so the scores describe the search; they are not
  Sobol indices (``sim sensitivity`` computes those).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

LOSS_PREFIX = "loss:"  #: trials.csv column of a target's loss: ``loss:<target name>``
MIN_TRIALS = 8  #: fewer trials than this give no identification scores
IDENTIFIES = 0.2  #: a score from which the report says the target identifies the parameter
RESPONDS = 0.1  #: a score from which a target's loss is taken to respond to the parameter at all


def loss_column(name: str) -> str:
    return f"{LOSS_PREFIX}{name}"


def target_losses_frame(trials: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """The per-target losses of the trials, one column per target name."""
    return trials[[loss_column(n) for n in names]].set_axis(list(names), axis=1)


def as_errors(losses: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Losses as errors: the root of an msle (a root-mean-square log ratio), a relative loss as it is."""
    return np.sqrt(losses) if kind == "msle" else losses


def conflicts(losses: pd.DataFrame, kind: str, tolerance: float, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every pair of targets (columns of ``losses``, rows = trials): each one's best error alone, the
    errors at the trial closest to both bests, that trial's distance from them (``gap``: the larger
    excess), the parameters both respond to (from ``scores``, the :func:`identification` table) and
    whether the pair conflicts: a gap above ``tolerance`` and, where scores exist, a shared parameter."""
    errors = as_errors(losses.astype(np.float64), kind)
    rows = []
    for first, second in itertools.combinations(errors.columns, 2):
        pair = errors[[first, second]]
        pair = pair[np.isfinite(pair).all(axis=1)]
        shared, known = shared_parameters(scores, first, second)
        row = {"first": first, "second": second, "shared": ", ".join(shared)}
        if pair.empty:
            rows.append({**row, "best_first": np.nan, "best_second": np.nan, "first_at": np.nan, "second_at": np.nan,
                         "gap": np.nan, "trial": -1, "conflict": False})
            continue
        best = pair.min()
        excess = (pair - best).max(axis=1)
        at = excess.idxmin()
        rows.append({**row, "best_first": best[first], "best_second": best[second], "first_at": pair.at[at, first],
                     "second_at": pair.at[at, second], "gap": excess[at], "trial": at,
                     "conflict": bool(excess[at] > tolerance and (bool(shared) or not known))})
    columns = ["first", "second", "best_first", "best_second", "first_at", "second_at", "gap", "trial", "shared", "conflict"]
    return pd.DataFrame(rows, columns=columns).astype({"conflict": bool})


def conflicting_pairs(table: pd.DataFrame) -> list[list[str]]:
    """The pairs of targets flagged by :func:`conflicts`."""
    return table.loc[table["conflict"], ["first", "second"]].values.tolist()


def shared_parameters(scores: pd.DataFrame | None, first: str, second: str) -> tuple[list[str], bool]:
    """The parameters both targets' losses respond to (score >= ``RESPONDS``), and whether the scores
    are known at all (too few trials give none)."""
    if scores is None or first not in scores.index or second not in scores.index:
        return [], False
    both = scores.loc[[first, second]]
    if both.isna().all(axis=None):
        return [], False
    return [p for p in scores.columns if (both[p] >= RESPONDS).all()], True


def conflict_line(table: pd.DataFrame, kind: str, tolerance: float) -> str:
    """One line: which pairs of targets the model cannot meet together (or that none conflict)."""
    unit = "RMS log error" if kind == "msle" else "relative error"
    if table.empty:
        return "one target: no pairs to compare"
    flagged = table[table["conflict"]]
    if flagged.empty:
        return f"no two targets conflict: for every pair some trial is within {tolerance:.0%} ({unit}) of the best fit of both"
    pairs = "; ".join(f"{r['first']} vs {r['second']} (alone {r['best_first']:.1%} and {r['best_second']:.1%}, together at best "
                      f"{r['first_at']:.1%} and {r['second_at']:.1%})" for _, r in flagged.iterrows())
    return f"targets the model cannot meet together ({unit}): {pairs}"


def omega_squared(parameter: np.ndarray, loss: np.ndarray, bins: int) -> float:
    """The estimated share of the variance of the loss's ranks between quantile bins of the
    parameter (omega squared, clipped to [0, 1]); NaN when the bins cannot be formed."""
    x = pd.Series(np.asarray(parameter, dtype=np.float64))
    y = pd.Series(np.asarray(loss, dtype=np.float64)).rank()  # a failed trial (inf) ranks last
    keep = x.notna() & y.notna()
    x, y = x[keep], y[keep]
    if x.nunique() < 2:
        return np.nan
    codes = pd.qcut(x.rank(method="average"), bins, labels=False, duplicates="drop")
    groups = y.groupby(codes)
    k, n = groups.ngroups, len(y)
    if k < 2 or n <= k:
        return np.nan
    between = float((groups.size() * (groups.mean() - y.mean()) ** 2).sum())
    within = float(((y - groups.transform("mean")) ** 2).sum())
    if between + within == 0:
        return 0.0
    mean_within = within / (n - k)
    return float(np.clip((between - (k - 1) * mean_within) / (between + within + mean_within), 0.0, 1.0))


def association(trials: pd.DataFrame, outcomes: Mapping[str, str], params: Sequence[str], index: str = "outcome") -> pd.DataFrame:
    """Outcome x parameter: the omega-squared score of each outcome (name -> its column of
    ``trials``) against each (numeric) parameter over the trials (NaN with fewer than
    ``MIN_TRIALS`` trials)."""
    bins = int(np.clip(len(trials) // 6, 2, 5))
    scores = {p: [omega_squared(trials[p], trials[column], bins) if len(trials) >= MIN_TRIALS else np.nan for column in outcomes.values()]
              for p in params}
    return pd.DataFrame(scores, index=pd.Index(list(outcomes), name=index))


def identification(trials: pd.DataFrame, names: Sequence[str], params: Sequence[str]) -> pd.DataFrame:
    """Target x parameter: the omega-squared score of each target's loss against each parameter over
    the trials (NaN with fewer than ``MIN_TRIALS`` trials)."""
    return association(trials, {n: loss_column(n) for n in names}, params, index="target")


def identification_lines(table: pd.DataFrame) -> list[str]:
    """A line per target: the parameters it identifies (score >= ``IDENTIFIES``), strongest first."""
    lines = []
    for name, row in table.iterrows():
        strong = row[row >= IDENTIFIES].sort_values(ascending=False)
        if strong.empty:
            lines.append(f"{name}: no parameter (every score below {IDENTIFIES})")
        else:
            lines.append(f"{name}: " + ", ".join(f"{p} ({v:.2f})" for p, v in strong.items()))
    return lines


__all__ = ["LOSS_PREFIX", "as_errors", "association", "conflict_line", "conflicting_pairs", "conflicts", "identification", "identification_lines", "loss_column",
           "omega_squared", "shared_parameters", "target_losses_frame"]
