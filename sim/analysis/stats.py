"""What replicated runs mean: means with intervals, paired differences and a verdict in words.

Every interval is a two-sided Student-t interval over replicates (95 % unless asked otherwise): the
replicates of one strategy are independent runs, so their mean is approximately normal and the t
interval is honest even for 10-30 replicates. Differences between strategies are *paired*: replicate
r of every strategy ran with the same seed (common random numbers: the same graph, the same people,
the same base randomness), so the difference is computed replicate by replicate before averaging,
which removes the noise the strategies share and gives far narrower intervals than comparing two
independent means.

The relative difference is R = (mean(B) - mean(A)) / |mean(A)| (so a smaller loss is a positive
change), with an interval from the linearised (delta-method) ratio estimator:
z_r = ((B_r - A_r) - R sign(mean(A)) A_r) / |mean(A)| has mean 0 and the standard error of R. Nothing here knows about simulations: the inputs
are arrays with one value per replicate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

LEVEL = 0.95


def t_quantile(n: int, level: float = LEVEL) -> float:
    """The two-sided Student-t quantile for a mean of ``n`` values (nan below two values)."""
    from scipy import stats  # imported on first use: scipy.stats takes a second to import

    return float(stats.t.ppf(0.5 + level / 2.0, n - 1)) if n >= 2 else float("nan")


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    sd: float
    n: int


def mean_interval(x, level: float = LEVEL) -> Interval:
    """Mean of the finite values of ``x`` with its t interval."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = x.size
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, math.nan, n)
    sd = float(x.std(ddof=1))
    half = t_quantile(n, level) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, sd, n)


def band(values: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pointwise mean and t interval over the rows of ``values`` (replicates x days)."""
    v = np.asarray(values, dtype=np.float64)
    n = v.shape[0]
    mean = v.mean(axis=0)
    if n < 2:
        return mean, mean.copy(), mean.copy()
    half = t_quantile(n, level) * v.std(axis=0, ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class PairedDifference:
    """Strategy B against baseline A over paired replicates (B - A)."""

    mean: float  # mean paired difference, in the metric's unit
    low: float
    high: float
    relative: float  # (mean(B) - mean(A)) / |mean(A)|: the sign of the difference even for losses
    relative_low: float
    relative_high: float
    higher: int  # replicates in which B > A
    lower: int  # replicates in which B < A
    n: int  # replicates where both values exist

    def as_dict(self) -> dict:
        return asdict(self)


def paired_difference(b, a, level: float = LEVEL) -> PairedDifference:
    """Paired difference of ``b`` against ``a`` (same replicate order); pairs with a missing value drop."""
    b = np.asarray(b, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    n = int(a.size)
    d = mean_interval(b - a, level)
    higher, lower = int(np.count_nonzero(b > a)), int(np.count_nonzero(b < a))
    rel = rel_lo = rel_hi = math.nan
    mean_a = float(a.mean()) if n else math.nan
    if n and mean_a != 0:
        rel = float((b - a).mean()) / abs(mean_a)
        if n >= 2:
            z = ((b - a) - rel * np.sign(mean_a) * a) / abs(mean_a)
            half = t_quantile(n, level) * float(z.std(ddof=1)) / math.sqrt(n)
            rel_lo, rel_hi = rel - half, rel + half
    return PairedDifference(d.mean, d.low, d.high, rel, rel_lo, rel_hi, higher, lower, n)


# ------------------------------------------------------------------------------------- words
def _pct(x: float, signed: bool) -> str:
    if not math.isfinite(x):
        return "–"
    p = 100.0 * x
    digits = 0 if round(abs(p), 1) >= 10 or p == 0 else 1
    text = f"{p:+.{digits}f}" if signed else f"{p:.{digits}f}"
    return f"{text} %"


#: the unit of a difference between two shares shown in % (0.012 reads "+1.2 points")
POINTS = "points"


def number_text(x: float, unit: str = "", signed: bool = False) -> str:
    """``x`` with digits by its size and thousands separators, then ``unit`` (a share's difference in points)."""
    if not math.isfinite(x):
        return "–"
    if unit == POINTS:
        return f"{100 * x:+.1f} points" if signed else f"{100 * x:.1f} points"
    digits = 0 if round(abs(x), 2) >= 100 else 1 if round(abs(x), 2) >= 10 else 2
    text = f"{x:+,.{digits}f}" if signed else f"{x:,.{digits}f}"
    return f"{text} {unit}".rstrip()


def percent_text(x: float) -> str:
    """A share as "83 %" (one decimal below 10 %)."""
    return _pct(x, False)


def _in_percent(d: PairedDifference) -> bool:
    return math.isfinite(d.relative) and math.isfinite(d.relative_low) and d.relative_high - d.relative_low <= 1.0


def effect_text(d: PairedDifference, unit: str = "") -> str:
    """"+1,200 RMB [800 RMB, 1,600 RMB] (+12 % [8 %, 16 %])": the difference in the metric's own unit,
    always, and beside it the change relative to the baseline's mean, left out when the baseline's
    mean is 0 or so close to it that percentages mislead (relative interval wider than 100 points,
    e.g. a profit near break-even)."""
    text = f"{number_text(d.mean, unit, True)} [{number_text(d.low, unit, False)}, {number_text(d.high, unit, False)}]"
    if _in_percent(d):
        text += f" ({_pct(d.relative, True)} [{_pct(d.relative_low, False)}, {_pct(d.relative_high, False)}])"
    return text


def verdict(b: str, a: str, label: str, d: PairedDifference, better: str | None = "higher", unit: str = "") -> str:
    """One sentence a strategist can read: who wins on ``label``, how often, and by how much.

    ``better`` is "higher", "lower" (for costs per user, payback time) or None (a quantity that is
    neither good nor bad in itself, such as money spent on incentives).
    """
    if d.n == 0:
        return f"{label}: no replicate has a value for both {b} and {a}"
    if d.higher == 0 and d.lower == 0:
        return f"{b} and {a} are identical on {label} in all {d.n} replicates"
    effect = effect_text(d, unit)
    low, high = (d.relative_low, d.relative_high) if _in_percent(d) else (d.low, d.high)  # the interval shown
    clear = math.isfinite(low) and (low > 0 or high < 0)
    up = d.mean > 0
    if not clear:
        ahead = d.higher if better != "lower" else d.lower
        word = "ahead" if better else "higher"
        return f"no clear difference between {b} and {a} on {label}: {b} {word} in {ahead} of {d.n} replicates, {effect}"
    count = d.higher if up else d.lower
    if better is None:
        return f"{b} is {'higher' if up else 'lower'} than {a} on {label} in {count} of {d.n} replicates, {effect}"
    wins = up == (better == "higher")
    return f"{b} {'beats' if wins else 'falls short of'} {a} on {label} in {count} of {d.n} replicates, {effect}"
