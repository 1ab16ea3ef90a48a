"""Declaring and validating configuration as frozen dataclasses.

Every configurable quantity is declared once, as a dataclass field made with :func:`param`, which
carries the default, the unit, the allowed range and a one-line description. From these declarations
the project derives the Hydra defaults (``to_plain``), validates a composed configuration
(``build``) and documents the keys (``leaves``, ``describe``). A value outside its range, a key that does not
exist or a wrong type raises :class:`ConfigError` whose message is one line naming the key, the value
and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import reprlib
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any, Literal, get_args, get_origin


class ConfigError(ValueError):
    """A configuration problem, described in one line for the user."""


class SimulationError(RuntimeError):
    """A run broke an invariant (a NaN or a negative count): one line with the day and the column."""


def param(
    default: Any = dataclasses.MISSING,
    *,
    doc: str,
    unit: str = "",
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    factory: Any = None,
) -> Any:
    """A configuration field with its documentation, unit and closed (or half-open) range."""
    meta = {"doc": doc, "unit": unit, "lo": lo, "hi": hi, "lo_open": lo_open}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


#: Settings that were renamed when amounts became shares of the market (a value that depends on market
#: size means the same at 10,000 and 10,000,000 people only per person or as a share): old leaf name ->
#: what to write instead. An old name is refused with this hint rather than "unknown key".
RENAMED = {
    "seed_users": "renamed to adoption.seed_fraction, a share of the market (50 users of 100,000 people is 0.0005)",
    "daily_budget": "renamed to budget_per_1000, RMB per day per 1,000 people in the market (500 RMB a day at 100,000 people is 5)",
    "volume_half": "renamed to volume_half_per_1000, installs per day per 1,000 people in the market (200 at 100,000 people is 2)",
    "kol_budget_rmb_per_day": "renamed to kol_budget_per_1000, RMB per day per 1,000 people in the market",
    "live_reach": "renamed to live_reach_share, the share of the market a stream day reaches (3,000 of 100,000 people is 0.03)",
    "live_cost_rmb_per_day": "renamed to live_cost_per_1000, RMB per stream day per 1,000 people in the market",
    "min_capacity": "renamed to min_capacity_per_1000, orders per day per 1,000 people in the market",
    "budget": "renamed to budget_per_1000, RMB per 1,000 people in the market",
    "total_budget": "renamed to total_budget_per_1000, RMB per 1,000 people in the market",
    "subsidy_share": "renamed to platform_share, the share of the discount the platform funds (the merchant funds the rest)",
    "communities": "renamed to graph.community_size, people per community (100 communities of 100,000 people is 1,000)",
}


def unknown_key(path: str, name: str, options: typing.Iterable[str]) -> str:
    """The one-line message for an unknown key ``name`` at ``path`` (dotted, ``name`` included)."""
    options = list(options)
    if name in RENAMED and name not in options:
        return f"{path}: {RENAMED[name]}"
    return f"{path}: unknown key{suggest(name, options)}"


def suggest(name: str, options: typing.Iterable[str]) -> str:
    """A ' (did you mean ...?)' suffix when a close match exists, else ''."""
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


MAX_PEOPLE = 200_000_000  #: the largest market (graph nodes) a run can hold
EXCERPT = 80  #: characters of a value an error message shows at most
TEXT_EXCERPT = 300  #: the same for a single text value, so that a file's path is shown whole

_repr = reprlib.Repr()
_repr.maxother = _repr.maxlong = EXCERPT
_repr.maxstring = TEXT_EXCERPT
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 8
_repr.maxlevel = 3


def excerpt(value: Any, limit: int | None = None) -> str:
    """A short repr of ``value`` for an error message (bounded time and length, whatever its size):
    at most ``limit`` characters, by default ``EXCERPT`` (``TEXT_EXCERPT`` for one string)."""
    return clip(_repr.repr(value), limit or (TEXT_EXCERPT if isinstance(value, str) else EXCERPT))


def clip(text: str, limit: int = EXCERPT) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis marks the cut)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _fmt(value: Any) -> str:
    if value is None:
        return "null"
    return excerpt(value)


def _bound(x: float) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() and abs(x) < 1e16 else str(x)


def _range_text(meta: Mapping[str, Any]) -> str:
    lo, hi = meta.get("lo"), meta.get("hi")
    lo, hi = (None if lo is None else _bound(lo)), (None if hi is None else _bound(hi))
    if lo is not None and hi is not None:
        left = "(" if meta.get("lo_open") else "["
        return f"a number in {left}{lo}, {hi}]"
    if lo is not None:
        return f"a number {'>' if meta.get('lo_open') else '>='} {lo}"
    if hi is not None:
        return f"a number <= {hi}"
    return "a number"


def _check_range(value: float, meta: Mapping[str, Any], path: str) -> None:
    lo, hi = meta.get("lo"), meta.get("hi")
    bad = (
        not math.isfinite(value)  # inf too: no range is open-ended (products of settings must not overflow)
        or (lo is not None and (value < lo or (meta.get("lo_open") and value == lo)))
        or (hi is not None and value > hi)
    )
    if bad:
        unit = f" ({meta['unit']})" if meta.get("unit") else ""
        raise ConfigError(f"{path} = {_fmt(value)}: allowed is {_range_text(meta)}{unit}")


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return args[0], True
    return tp, False


def convert(tp: Any, value: Any, path: str, meta: Mapping[str, Any] | None = None) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it in canonical form."""
    meta = meta or {}
    tp, optional = _unwrap_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{path} = null: a value is required")
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            allowed = ", ".join(map(str, choices))
            raise ConfigError(
                f"{path} = {_fmt(value)}: allowed is one of {allowed}{suggest(str(value), map(str, choices))}"
            )
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path} = {_fmt(value)}: allowed is true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        ):
            raise ConfigError(f"{path} = {_fmt(value)}: allowed is a whole number")
        value = int(value)
        _check_range(value, meta, path)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path} = {_fmt(value)}: allowed is {_range_text(meta)}")
        value = float(value)
        _check_range(value, meta, path)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path} = {_fmt(value)}: allowed is a text value")
        return value
    if origin in (tuple, list):
        (item_tp, *_rest) = get_args(tp)
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path} = {_fmt(value)}: allowed is a list")
        return tuple(convert(item_tp, v, f"{path}[{i}]", meta) for i, v in enumerate(value))
    if origin is dict:
        _key_tp, item_tp = get_args(tp)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path} = {_fmt(value)}: allowed is a mapping of names to settings")
        return {str(k): convert(item_tp, v, _join(path, str(k)), meta) for k, v in value.items()}
    if tp is Any:
        return value
    raise TypeError(f"unsupported annotation {tp!r} at {path}")  # a programming error, not user input


def build(cls: type, data: Any, path: str = "") -> Any:
    """Validate a mapping against dataclass ``cls`` and return the frozen instance. An unknown key
    names the closest allowed one; a class with ``LIST_ALLOWED_KEYS = True`` (the sections of an
    experiment file, which are few and short) lists them all."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or 'config'} = {_fmt(data)}: allowed is a mapping of settings")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            listed = f"; allowed keys: {', '.join(fields)}" if getattr(cls, "LIST_ALLOWED_KEYS", False) else ""
            raise ConfigError(unknown_key(_join(path, str(key)), str(key), fields) + listed)
    for name, f in fields.items():
        if name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_join(path, name)}: a value is required")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = convert(hints[name], data[name], _join(path, name), f.metadata)
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if check is not None:
        check(path)
    return obj


def to_plain(obj: Any) -> Any:
    """A dataclass tree as plain dicts, lists and scalars (for YAML and Hydra)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


def leaves(cls: type, prefix: str = "") -> Iterator[tuple[str, Any, dataclasses.Field]]:
    """Every leaf field of the dataclass tree ``cls`` as (dotted key, annotation, field), in declaration
    order; nested dataclasses (optional ones too) are walked into, everything else is a leaf."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = _join(prefix, f.name)
        tp, _ = _unwrap_optional(hints[f.name])
        if dataclasses.is_dataclass(tp):
            yield from leaves(tp, key)
        else:
            yield key, hints[f.name], f


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def describe(cls: type, prefix: str = "") -> list[tuple[str, Any, str, str, str]]:
    """Rows of (key, default, unit, allowed, description) for every leaf field of ``cls``."""
    rows = []
    for key, annotation, f in leaves(cls, prefix):
        tp, _ = _unwrap_optional(annotation)
        meta = f.metadata
        if get_origin(tp) is Literal:
            allowed = " | ".join(map(str, get_args(tp)))
        elif tp in (int, float):
            allowed = _range_text(meta)
        elif tp is bool:
            allowed = "true | false"
        else:
            allowed = ""
        rows.append((key, to_plain(_default(f)), meta.get("unit", ""), allowed, meta.get("doc", "")))
    return rows


def require(condition: bool, path: str, value: Any, allowed: str) -> None:
    """Raise the standard one-line error unless ``condition`` holds (for cross-field checks)."""
    if not condition:
        raise ConfigError(f"{path} = {_fmt(value)}: {allowed}")
