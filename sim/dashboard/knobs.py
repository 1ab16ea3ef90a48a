"""The dashboard's controls, generated from the configuration schema.

Every knob on the page is a leaf of the schema (``sim/config.py`` and each mechanism's ``Config``),
declared with :func:`sim.schema.param` (description, unit, allowed range). Nothing here names a
mechanism: a mechanism registered later gets its switch and its knobs automatically. A value typed
on the page is checked by the same function that checks a composed configuration, so the page shows
exactly the one-line error ``sim run`` would print.

The page keeps the knobs' values as a dict (key -> value). The overrides it runs with, and the
``sim run`` command it shows, are the keys whose values differ from the chosen scenario's own, so
the command reproduces what is on screen and nothing more.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from sim.config import SimConfig, compose, validate
from sim.memory import check_memory
from sim.schema import ConfigError, _unwrap_optional, convert, leaves, to_plain

#: Keys of the market and the run shown above the mechanisms (in this order). Any schema leaf can be
#: listed here; everything else keeps the scenario's value (edit it with ``sim run key=value``).
CORE_KEYS = (
    "population.size", "horizon", "seed", "graph.kind", "graph.avg_degree", "adoption.contagion",
    "adoption.threshold", "adoption.external_rate", "platform.take_rate",
)
#: Population the dashboard starts with: small enough that a year simulates in a second or two.
DASHBOARD_POPULATION = 20_000


@dataclass(frozen=True)
class Knob:
    """One editable configuration key, described by the schema."""

    key: str
    kind: Literal["float", "int", "bool", "choice"]
    annotation: Any
    unit: str
    doc: str
    lo: float | None
    hi: float | None
    lo_open: bool
    choices: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """'inviter reward' for mechanism keys (shown under the mechanism), 'population size' otherwise."""
        parts = self.key.split(".")
        words = parts[-1:] if parts[0] == "mechanisms" else parts[-2:]
        return " ".join(words).replace("_", " ")

    @property
    def meta(self) -> dict[str, Any]:
        return {"unit": self.unit, "lo": self.lo, "hi": self.hi, "lo_open": self.lo_open, "doc": self.doc}

    @property
    def allowed(self) -> str:
        """The allowed values in words, e.g. '0 – 10,000' or '> 0'."""
        if self.kind == "choice":
            return " | ".join(self.choices)
        if self.kind == "bool":
            return "on | off"
        lo, hi = self.lo, self.hi
        if lo is not None and hi is not None:
            return f"{'>' if self.lo_open else ''}{number(lo)} – {number(hi)}"
        if lo is not None:
            return f"{'>' if self.lo_open else '≥'} {number(lo)}"
        if hi is not None:
            return f"≤ {number(hi)}"
        return "any number"

    def check(self, value: Any) -> Any:
        """The value in canonical form, or :class:`ConfigError` with the standard one-line message."""
        return convert(self.annotation, value, self.key, self.meta)

    def parse(self, text: str) -> Any:
        """A number typed in a field (``1,000`` and ``1e3`` work); text that is no number is kept
        as it is so that :meth:`check` reports it in the standard words."""
        if self.kind not in ("float", "int"):
            return text
        cleaned = str(text).strip().replace(",", "").replace("_", "")
        for cast in (int, float):
            try:
                return cast(cleaned)
            except ValueError:
                continue
        return str(text)

    def accept(self, text: str, last: Any) -> tuple[Any, str | None]:
        """What typing ``text`` in the field does: (the new value, None) when the schema allows it,
        else (``last``, the standard one-line error). A refused value (text, NaN, inf, out of range)
        never replaces the last good one: the slider and the runs keep a number they can use."""
        try:
            return self.check(self.parse(text)), None
        except ConfigError as exc:
            return last, str(exc)

    def slider(self, value: float) -> tuple[float, float, float] | None:
        """(min, max, step) of a slider for this knob around ``value``, or None for no slider.

        Wide allowed ranges (rewards up to 10,000 RMB) get a slider over a useful span around the
        value, up to four times it; the field beside it takes anything allowed."""
        if self.kind not in ("float", "int") or self.lo is None:
            return None
        lo = float(self.lo)
        span = max(4 * abs(float(value)) if isinstance(value, (int, float)) else 0.0, 1.0 if self.kind == "float" else 10.0)
        top = nice_ceiling(lo + span)
        hi = min(float(self.hi), top) if self.hi is not None else top
        if hi <= lo:
            return None
        step = max(1.0, nice_ceiling((hi - lo) / 200)) if self.kind == "int" else nice_ceiling((hi - lo) / 200)
        if self.lo_open:
            lo += step  # the bound itself is not allowed
        return lo, hi, step


def number(x: float) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        x = int(x)
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:,.6g}"


def nice_ceiling(x: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x a power of ten that is at least ``x`` (x > 0)."""
    if x <= 0:
        return 1.0
    p = 10.0 ** math.floor(math.log10(x))
    for m in (1, 2, 2.5, 5, 10):
        if m * p >= x * (1 - 1e-12):
            return m * p
    return 10 * p


def _knob(key: str, annotation: Any, meta: Mapping[str, Any]) -> Knob | None:
    tp, _ = _unwrap_optional(annotation)
    common = {"key": key, "annotation": annotation, "unit": meta.get("unit", ""), "doc": meta.get("doc", ""),
              "lo": meta.get("lo"), "hi": meta.get("hi"), "lo_open": bool(meta.get("lo_open"))}
    if get_origin(tp) is Literal:
        return Knob(kind="choice", choices=tuple(map(str, get_args(tp))), **common)
    if tp is bool:
        return Knob(kind="bool", **common)
    if tp is int:
        return Knob(kind="int", **common)
    if tp is float:
        return Knob(kind="float", **common)
    return None  # lists, mappings and free text are edited in YAML, not with a slider


def core_knobs() -> list[Knob]:
    """The market and run knobs (``CORE_KEYS``), from the schema of :class:`SimConfig`."""
    found = {key: _knob(key, tp, f.metadata) for key, tp, f in leaves(SimConfig) if key in CORE_KEYS}
    return [found[k] for k in CORE_KEYS if found.get(k) is not None]


def mechanism_knobs() -> dict[str, list[Knob]]:
    """Mechanism name -> its knobs (``enabled`` first), for every registered mechanism."""
    from sim.mechanisms import REGISTRY

    out = {}
    for name, cls in REGISTRY.items():
        knobs = [k for k in (_knob(key, tp, f.metadata) for key, tp, f in leaves(cls.Config, f"mechanisms.{name}")) if k]
        out[name] = sorted(knobs, key=lambda k: not k.key.endswith(".enabled"))
    return out


def all_knobs() -> list[Knob]:
    return [*core_knobs(), *(k for ks in mechanism_knobs().values() for k in ks)]


def scenario_values(scenario: str | SimConfig) -> dict[str, Any]:
    """Every knob's value in ``scenario`` as composed from its files (the reference for overrides)."""
    plain = to_plain(compose(scenario) if isinstance(scenario, str) else scenario)
    return {k.key: lookup(plain, k.key) for k in all_knobs()}


def lookup(plain: Mapping[str, Any], key: str) -> Any:
    node: Any = plain
    for part in key.split("."):
        node = node[part]
    return node


def initial_values(reference: Mapping[str, Any]) -> dict[str, Any]:
    """What the page starts with: the scenario's values, at a population that simulates quickly."""
    values = dict(reference)
    values["population.size"] = min(int(reference["population.size"]), DASHBOARD_POPULATION)
    return values


def errors(values: Mapping[str, Any], knobs: Iterable[Knob]) -> dict[str, str]:
    """Key -> the one-line error for every value the schema rejects."""
    out = {}
    for knob in knobs:
        if knob.key in values:
            try:
                knob.check(values[knob.key])
            except ConfigError as exc:
                out[knob.key] = str(exc)
    return out


def configuration(scenario: SimConfig, values: Mapping[str, Any]) -> SimConfig:
    """The configuration on screen: the composed scenario with every knob set to its value (values
    already checked, see :func:`errors`); validated as a whole, so settings that contradict each
    other give the standard one-line error before anything runs."""
    plain = to_plain(scenario)
    for key, value in values.items():
        *path, last = key.split(".")
        node = plain
        for part in path:
            node = node[part]
        node[last] = value
    return validate(plain)


def memory_error(cfg: SimConfig, available: float | None = None) -> str | None:
    """The one-line error of a run too large for the memory this machine has left, or None.

    The same estimate and message as ``sim run`` (:func:`sim.memory.check_memory`): the page shows
    it and does not start the run, instead of building a graph that exhausts the machine."""
    try:
        check_memory(cfg, available)
    except ConfigError as exc:
        return str(exc)
    return None


def override_text(value: Any) -> str:
    """A value in Hydra's override grammar (what ``sim run key=VALUE`` expects)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def overrides(values: Mapping[str, Any], reference: Mapping[str, Any], knobs: Iterable[Knob]) -> list[str]:
    """``key=value`` for every knob whose value differs from the scenario's (in knob order)."""
    out = []
    for knob in knobs:
        if knob.key not in values:
            continue
        value = knob.check(values[knob.key])
        if value != reference.get(knob.key):
            out.append(f"{knob.key}={override_text(value)}")
    return out


def command(scenario: str, overs: Iterable[str]) -> str:
    """The ``sim run`` command that reproduces a run of ``scenario`` with ``overs``."""
    return " ".join(["sim", "run", f"scenario={shlex.quote(scenario)}", *(shlex.quote(o) for o in overs)])
