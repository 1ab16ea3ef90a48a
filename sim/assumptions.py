"""Uncertain inputs of a comparison (``assumptions:``): checked against the strategies'
configurations before any run, drawn once per replicate, and their central values.

A model's inputs such as the cost per install of paid ads or how strongly people respond to a
referral reward are not known; a comparison with fixed values gives intervals that cover only the
run-to-run noise. An assumption replaces such a fixed value with a distribution. Replicate r draws
every assumption once, and every strategy of replicate r runs with that draw (common random numbers
across assumptions, as across the noise), so the paired difference of two strategies in replicate r
answers "what if the world were like this?".

Every draw is the quantile function of its distribution at one uniform number u, and u comes from a
stream of its own seeded by (experiment seed, assumption key, replicate): nothing else (not the
strategies, not the number of workers, not the other assumptions) changes it. Because a draw is a
monotone function of u, widening a range moves each replicate's draw outwards and nothing else; and
the central value of a numeric assumption is its median, the quantile at u = 0.5. Normal and
lognormal draws are truncated to the key's allowed range (u is spread over the part of the
distribution inside it: the inverse-CDF method for truncated distributions, e.g. Robert 1995,
"Simulation of truncated normal variables"); uniform and triangular ranges must lie inside it.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sim.plans import AssumptionSpec
from sim.schema import ConfigError, require, unknown_key

COLUMN = "assumption:"  #: prefix of the columns holding each replicate's draws in horizon.parquet


def config_node(plain: Mapping[str, Any], key: str, path: str) -> Any:
    """The value of dotted ``key`` in a plain configuration; an unknown part is one line naming it
    (with the closest allowed key). ``path`` is where the key was written (``sensitivity.params``)."""
    node: Any = plain
    walked: list[str] = []
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            options = list(node) if isinstance(node, Mapping) else []
            raise ConfigError(unknown_key(f"{path}.{'.'.join([*walked, part])}", part, options))
        node = node[part]
        walked.append(part)
    return node


def set_key(data: dict, key: str, value: Any) -> None:
    """Set a dotted ``key`` in a plain config dict (the key must exist)."""
    *parents, last = key.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[last] = value


def key_range(key: str) -> tuple[float, float, bool]:
    """(lowest, highest, lowest excluded) a numeric key allows, from its declaration (infinite ends
    where it declares none)."""
    from sim.config import SimConfig
    from sim.mechanisms import REGISTRY
    from sim.schema import leaves

    parts = key.split(".")
    if parts[0] == "mechanisms" and len(parts) >= 3 and parts[1] in REGISTRY:
        fields = leaves(REGISTRY[parts[1]].Config, f"mechanisms.{parts[1]}")
    else:
        fields = leaves(SimConfig)
    meta: Mapping[str, Any] = next((f.metadata for k, _, f in fields if k == key), {})
    lo, hi = meta.get("lo"), meta.get("hi")
    return (-math.inf if lo is None else float(lo), math.inf if hi is None else float(hi), bool(meta.get("lo_open")))


# ------------------------------------------------------------------------------------- draws
def uniform_number(seed: int, key: str, replicate: int) -> float:
    """The uniform number in [0, 1) behind replicate ``replicate``'s draw of assumption ``key``."""
    word = int.from_bytes(hashlib.sha256(f"assumption:{key}".encode()).digest()[:4], "little")
    ss = np.random.SeedSequence(int(seed), spawn_key=(word, int(replicate)))
    return float(np.random.Generator(np.random.PCG64(ss)).random())


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _normal_quantile(p: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(p))


def quantile(a: AssumptionSpec, u: float, bounds: tuple[float, float, bool] = (-math.inf, math.inf, False)) -> Any:
    """The value of assumption ``a`` at uniform number ``u`` (its quantile function), normal and
    lognormal truncated to ``bounds`` (the key's allowed range)."""
    v = a.values
    if a.kind == "choice":
        cdf = np.cumsum(a.probabilities)
        return v[min(int(np.searchsorted(cdf / cdf[-1], u, side="right")), len(v) - 1)]
    if a.kind == "uniform":
        return v[0] + u * (v[1] - v[0])
    if a.kind == "triangular":
        low, mode, high = v
        cut = (mode - low) / (high - low)
        if u < cut:
            return low + math.sqrt(u * (high - low) * (mode - low))
        return high - math.sqrt((1.0 - u) * (high - low) * (high - mode))
    lo, hi, lo_open = bounds
    if a.kind == "normal":
        centre, scale, to_z, from_z = v[0], v[1], (lambda x: x), (lambda z: z)
    else:  # lognormal: the logarithm is normal
        centre, scale = math.log(v[0]), v[1]
        to_z = lambda x: math.log(x) if x > 0 else -math.inf  # noqa: E731
        from_z = math.exp
    f_lo, f_hi = (_normal_cdf((to_z(b) - centre) / scale) if math.isfinite(b) else float(b > 0) for b in (lo, hi))
    x = from_z(centre + scale * _normal_quantile(f_lo + u * (f_hi - f_lo)))
    x = min(max(x, lo), hi)
    return math.nextafter(lo, math.inf) if lo_open and x == lo else x


def mass_inside(a: AssumptionSpec, bounds: tuple[float, float, bool]) -> float:
    """The probability a normal or lognormal assumption gives to the key's allowed range."""
    lo, hi, _ = bounds
    if a.kind == "normal":
        centre, scale, to_z = a.values[0], a.values[1], (lambda x: x)
    else:
        centre, scale = math.log(a.values[0]), a.values[1]
        to_z = lambda x: math.log(x) if x > 0 else -math.inf  # noqa: E731
    f = [_normal_cdf((to_z(b) - centre) / scale) if math.isfinite(b) else float(b > 0) for b in (lo, hi)]
    return f[1] - f[0]


def central(a: AssumptionSpec, bounds: tuple[float, float, bool] = (-math.inf, math.inf, False)) -> Any:
    """The central value: the median of a numeric distribution (truncated, where it is), the most
    probable of the choices (the first of equally probable ones)."""
    if a.kind == "choice":
        return a.choice[int(np.argmax(a.probabilities))]
    return quantile(a, 0.5, bounds)


def _typed(value: Any, kind: type | None) -> Any:
    """A draw as the key's type: a whole-number key takes the nearest whole number."""
    if kind is int:
        return int(math.floor(float(value) + 0.5))
    if kind is float:
        return float(value)
    return value


@dataclasses.dataclass(frozen=True)
class Assumptions:
    """The checked assumptions of a comparison: how each is drawn and what type its key holds."""

    specs: Mapping[str, AssumptionSpec]
    kinds: Mapping[str, type | None]  # key -> int, float, or None (not a number: a choice of words)
    bounds: Mapping[str, tuple[float, float, bool]]

    def draw(self, seed: int, replicate: int) -> dict[str, Any]:
        """Replicate ``replicate``'s value of every assumption (the same for every strategy)."""
        return {k: _typed(quantile(a, uniform_number(seed, k, replicate), self.bounds[k]), self.kinds[k]) for k, a in self.specs.items()}

    def centre(self) -> dict[str, Any]:
        """Every assumption at its central value: the noise-only set of a comparison."""
        return {k: _typed(central(a, self.bounds[k]), self.kinds[k]) for k, a in self.specs.items()}

    def __bool__(self) -> bool:
        return bool(self.specs)


def check_assumptions(plains: Mapping[str, Mapping[str, Any]], specs: Mapping[str, AssumptionSpec]) -> Assumptions:
    """Check every assumption against the strategies' composed configurations (``plains``: strategy
    -> plain configuration) before any run: the key exists and the strategies agree on it, numeric
    distributions on numeric keys, supports inside the key's allowed range."""
    from sim.config import validate

    first = next(iter(plains.values()))
    kinds: dict[str, type | None] = {}
    bounds: dict[str, tuple[float, float, bool]] = {}
    for key, a in specs.items():
        path = f"assumptions.{key}"
        node = config_node(first, key, "assumptions")
        values = {name: config_node(p, key, "assumptions") for name, p in plains.items()}
        if len({repr(v) for v in values.values()}) > 1:
            shown = ", ".join(f"{n}: {v}" for n, v in values.items())
            raise ConfigError(f"{path}: the strategies set this key differently ({shown}); an assumption would replace what "
                              "tells them apart: choose a key they share")
        number = isinstance(node, (int, float)) and not isinstance(node, bool)
        if a.numeric:
            require(number, path, node, f"a {a.kind} distribution needs a numeric setting (this one is {node!r}): use choice")
        kinds[key] = (int if isinstance(node, int) else float) if number and a.numeric else None  # a choice is taken as written
        bounds[key] = key_range(key) if number else (-math.inf, math.inf, False)
        if a.kind in ("normal", "lognormal"):
            lo, hi, _ = bounds[key]
            require(mass_inside(a, bounds[key]) >= 1e-3, f"{path}.{a.kind}", list(a.values),
                    f"the distribution lies almost wholly outside the allowed range [{lo:g}, {hi:g}] of {key}")
            ends = [central(a, bounds[key])]
        elif a.kind == "choice":
            ends = list(a.choice)
        else:
            ends = [a.values[0], a.values[-1]]
        for value in ends:  # the support's ends lie inside the key's range (and each choice is allowed)
            data = copy.deepcopy(dict(first))
            set_key(data, key, _typed(value, kinds[key]))
            try:
                validate(data)
            except ConfigError as exc:
                raise ConfigError(f"{path}: {exc}") from None
    return Assumptions(dict(specs), kinds, bounds)


def check_draws(plains: Mapping[str, Mapping[str, Any]], draws: Sequence[Mapping[str, Any]]) -> None:
    """Every replicate's draws make a valid configuration of every strategy (a draw can break a
    check between two keys, such as a minimum below a maximum): refused before any run."""
    from sim.config import validate

    for r, values in enumerate(draws):
        for name, plain in plains.items():
            data = copy.deepcopy(dict(plain))
            for key, value in values.items():
                set_key(data, key, value)
            try:
                validate(data)
            except ConfigError as exc:
                raise ConfigError(f"assumptions: replicate {r} of strategy {name} draws an invalid configuration: {exc}") from None
