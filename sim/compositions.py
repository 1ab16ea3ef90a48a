"""Hydra's compositions remembered between processes, as numba remembers compiled kernels.

Composing a scenario with Hydra costs a new process about half a second (importing Hydra, finding
its plugins, registering the schema, merging the defaults lists), more than the rest of a
command's start-up together. What Hydra returns is a pure function of the scenario files, the
overrides and the schema: the same inputs always give the same plain dict. So the dict is kept in a
small JSON file named by a hash of all of them, and a later process with the same inputs reads it
back instead of composing (:func:`recall`, :func:`remember`); validation still runs every time.

What the key covers: every ``*.yaml`` of the scenario roots (path and bytes), the overrides Hydra
receives, the schema's defaults (so a new or changed key in the code changes it), and the installed
Hydra and OmegaConf (their package files). A composition is never kept when a scenario file it reads
or an override calls a resolver (``${oc.env:HOME}``, ``${now:...}``: the value depends on when and
where it is composed), nor when JSON would not give back the same dict. A refused composition is
never kept either: errors always come from Hydra itself.

The files live in ``$SIM_CACHE_DIR/compositions`` (default ``~/.cache/growth-sim``, or under
``$XDG_CACHE_HOME``); ``SIM_CACHE_DIR=off`` turns the cache off. At most :data:`KEEP` files are kept
(the oldest go first); deleting the folder is always safe. A file that cannot be read or written is a
miss, never an error.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

#: Bump when what is stored (or how the key is made) changes.
FORMAT = 1
#: Compositions kept; a sweep composes each point once, so a few hundred cover the sweeps of a day.
KEEP = 512

#: A resolver call in a YAML text or an override (``${name:...}``); plain ``${a.b}`` interpolations
#: depend on the files alone.
_RESOLVER = re.compile(r"\$\{[^}]*:")


def folder() -> Path | None:
    """Where compositions are kept, or None when ``SIM_CACHE_DIR=off``."""
    configured = os.environ.get("SIM_CACHE_DIR", "").strip()
    if configured.lower() == "off":
        return None
    if configured:
        return Path(configured).expanduser() / "compositions"
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or "~/.cache"
    return Path(base).expanduser() / "growth-sim" / "compositions"


def _package_stamp(name: str) -> str:
    """The installed package ``name`` as its top file's path, size and modification time (without
    importing it): another version installed gives another stamp."""
    spec = importlib.util.find_spec(name)
    origin = spec.origin if spec is not None else None
    if origin is None:
        return f"{name}:-"
    st = os.stat(origin)
    return f"{name}:{origin}:{st.st_size}:{st.st_mtime_ns}"


def key(files: Iterable[tuple[str, bytes]], hydra_overrides: Sequence[str], defaults: Any) -> str | None:
    """The name of a composition of scenario ``files`` (label, bytes: every file of the scenario
    roots) with ``hydra_overrides`` over the schema's ``defaults``; None when it must not be kept (a
    resolver in a file or an override)."""
    h = hashlib.sha256(f"growth-sim compositions {FORMAT}\0".encode())
    for stamp in (_package_stamp("hydra"), _package_stamp("omegaconf")):
        h.update(stamp.encode() + b"\0")
    for text in hydra_overrides:
        if _RESOLVER.search(text):
            return None
        h.update(b"override\0" + text.encode() + b"\0")
    h.update(json.dumps(defaults, sort_keys=True, default=repr).encode() + b"\0")
    for label, data in files:
        if _RESOLVER.search(data.decode("utf-8", "replace")):
            return None
        h.update(b"file\0" + label.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return h.hexdigest()


def recall(name: str | None) -> dict[str, Any] | None:
    """The composition kept under ``name``, or None (no such file, unreadable, or not one of ours)."""
    where = folder()
    if name is None or where is None:
        return None
    try:
        stored = json.loads((where / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("key") != name or not isinstance(stored.get("config"), dict):
        return None
    return stored["config"]


def remember(name: str | None, config: dict[str, Any]) -> None:
    """Keep ``config`` under ``name`` (atomically: a reader sees the whole file or none), if JSON gives
    it back unchanged; then drop the oldest files beyond :data:`KEEP`. Any failure is silent."""
    where = folder()
    if name is None or where is None:
        return
    try:
        text = json.dumps({"key": name, "config": config}, allow_nan=False)
        if json.loads(text)["config"] != config:  # (a key that is not a string, a tuple: not kept)
            return
        where.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=where, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, where / f"{name}.json")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _prune(where)
    except (OSError, ValueError, TypeError):
        return


def _prune(where: Path) -> None:
    entries = []
    for path in where.glob("*.json"):
        try:
            entries.append((path.stat().st_mtime_ns, path))
        except OSError:
            continue
    if len(entries) > KEEP:
        for _, path in sorted(entries)[: len(entries) - KEEP]:
            path.unlink(missing_ok=True)
