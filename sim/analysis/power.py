"""How many replicates a difference needs: the sample size of a comparison of two means at a given
power, from the spread the runs show (the normal approximation, Cohen 1988, chapter 2).

To tell apart two means that differ by ``delta`` with a two-sided test at level 1 - ``LEVEL`` and
power ``POWER``, each needs

    n = 2 (z_{1 - alpha/2} + z_power)^2 sd^2 / delta^2     (two independent groups, sd of one run)
    n =   (z_{1 - alpha/2} + z_power)^2 sd^2 / delta^2     (paired replicates, sd of the differences)

replicates (with z_{0.975} = 1.96 and z_{0.8} = 0.84, 2 x 7.85 sd^2 / delta^2). The difference worth
resolving is given as a share of the mean (``RELATIVE``, 5 %), since metrics differ in unit. A sweep's
bands are the t intervals of each combination's mean (``sim.analysis.stats``): their half-width
t_{n-1} sd / sqrt(n) falls with the square root of the seeds, so halving it takes about four times
as many. Nothing here knows about simulations: the inputs are frames of runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd

from sim.analysis.stats import LEVEL, t_quantile

#: the power a difference is to be detected with, and its size as a share of the mean
POWER = 0.8
RELATIVE = 0.05
#: a replicate count past which the hint just says "more than"
MOST = 100_000


def replicates_for(sd: float, difference: float, paired: bool = False, level: float = LEVEL, power: float = POWER) -> int | None:
    """Replicates per group to detect ``difference`` (same unit as ``sd``) at ``power`` with a
    two-sided test at 1 - ``level``; None when it cannot be said (no spread or no difference)."""
    if not (math.isfinite(sd) and math.isfinite(difference)) or difference == 0:
        return None
    z = NormalDist().inv_cdf(0.5 + level / 2) + NormalDist().inv_cdf(power)
    n = (1 if paired else 2) * (z * sd / difference) ** 2
    return max(2, math.ceil(n))


def half_width(sd: float, n: int, level: float = LEVEL) -> float:
    """The half-width of the t interval of a mean of ``n`` runs with standard deviation ``sd``."""
    return t_quantile(n, level) * sd / math.sqrt(n) if n >= 2 else math.nan


def replicates_to_halve(n: int, level: float = LEVEL) -> int:
    """The fewest runs whose t interval is at most half as wide as that of ``n`` runs (same spread):
    about 4n, fewer for small n, whose t quantile also shrinks."""
    if n < 2:
        return 4
    from scipy import stats

    target = t_quantile(n, level) / math.sqrt(n) / 2
    m = np.arange(n + 1, 4 * n + 2)
    widths = stats.t.ppf(0.5 + level / 2, m - 1) / np.sqrt(m)
    return int(m[np.argmax(widths <= target)])


def seed_table(horizon: pd.DataFrame, groups: Sequence[str], metrics: Sequence[str], relative: float = RELATIVE) -> pd.DataFrame:
    """For each metric of a sweep (``horizon``: one row per run, ``groups``: the swept columns that
    make a combination): the mean, the spread between seeds within a combination (pooled), the runs
    per combination, the half-width of a combination's 95 % interval now, the seeds that would halve
    it, and the seeds per combination that resolve a difference of ``relative`` x |mean| between two
    combinations at 80 % power."""
    parts = horizon.groupby(list(groups), sort=False, dropna=False) if groups else [((), horizon)]
    rows = []
    for m in metrics:
        variances, counts = [], []
        for _, runs in parts:
            x = runs[m].to_numpy(np.float64)
            x = x[np.isfinite(x)]
            counts.append(x.size)
            if x.size >= 2:
                variances.append(float(np.var(x, ddof=1)))
        n = int(np.median(counts)) if counts else 0
        sd = math.sqrt(float(np.mean(variances))) if variances else math.nan
        mean = _finite_mean(horizon[m])
        rows.append({"metric": m, "mean": mean, "sd": sd, "runs": n, "half_width": half_width(sd, n),
                     "to_halve": replicates_to_halve(n) if math.isfinite(sd) else None,
                     "difference": relative * abs(mean), "needed": replicates_for(sd, relative * abs(mean))})
    return pd.DataFrame(rows)


def _finite_mean(values: pd.Series) -> float:
    """The mean of the finite values (nan when there are none, e.g. LTV at 180 days in a shorter run)."""
    x = values.to_numpy(np.float64)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else math.nan


def paired_table(horizon: pd.DataFrame, baseline: str, metrics: Sequence[str], relative: float = RELATIVE) -> pd.DataFrame:
    """For each strategy other than ``baseline`` and each metric of a comparison (``horizon``: strategy,
    replicate, metrics; replicate r of every strategy ran with the same seed): the spread of the paired
    differences, the half-width of their mean's 95 % interval now, and the replicates that resolve a
    difference of ``relative`` x |the baseline's mean| at 80 % power."""
    wide = {s: runs.set_index("replicate") for s, runs in horizon.groupby("strategy", sort=False)}
    base = wide[baseline]
    rows = []
    for strategy, runs in wide.items():
        if strategy == baseline:
            continue
        for m in metrics:
            d = (runs[m] - base[m]).to_numpy(np.float64)
            d = d[np.isfinite(d)]
            sd = float(np.std(d, ddof=1)) if d.size >= 2 else math.nan
            scale = relative * abs(_finite_mean(base[m]))
            rows.append({"strategy": strategy, "metric": m, "runs": int(d.size), "sd": sd, "half_width": half_width(sd, d.size),
                         "difference": scale, "needed": replicates_for(sd, scale, paired=True)})
    return pd.DataFrame(rows, columns=["strategy", "metric", "runs", "sd", "half_width", "difference", "needed"])


__all__ = ["POWER", "RELATIVE", "half_width", "paired_table", "replicates_for", "replicates_to_halve", "seed_table"]
