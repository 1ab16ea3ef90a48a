"""Reading input files at the edge: only regular files, of a bounded size, in UTF-8, and YAML with
bounded nesting and alias expansion.

Every file a user names or a scenario folder holds (``--config``, scenario files, experiments,
baselines, edge lists) is opened here, so that a bad one ends in one line instead of a hang, a huge
allocation or a traceback:

- a FIFO, a device (``/dev/zero``), a directory or a socket is not read: opening a FIFO would wait
  for a writer forever, reading a device never ends (:func:`file_problem`);
- a configuration file is a few KB; more than ``MAX_CONFIG_BYTES`` is refused before it is read;
- text must be UTF-8 (or ASCII, a BOM is allowed); UTF-16 is named as such, other bytes by line;
- YAML is parsed by a safe loader that refuses nesting deeper than ``MAX_YAML_DEPTH`` (PyYAML
  composes recursively: 10,000 levels are a RecursionError) and documents whose aliases expand
  to more than ``MAX_YAML_NODES`` values (a "billion laughs" file is a few hundred bytes that
  every consumer which walks the tree, OmegaConf, a validator, an error message, would expand).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from sim.schema import ConfigError, clip, excerpt

MAX_CONFIG_BYTES = 1_000_000  # a scenario, config, experiment or baseline file is a few KB
MAX_YAML_DEPTH = 100  # a configuration is nested about five levels deep
MAX_YAML_NODES = 200_000  # values of a document with every alias expanded
def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def size_text(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB" if n >= 1e3 else f"{int(n)} bytes"


def file_problem(path: str | os.PathLike, limit: int | None = None) -> str | None:
    """Why ``path`` cannot be read as an input file (missing, not a regular file, larger than
    ``limit`` bytes), in words for an error message, or None. Nothing is opened."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return exc.strerror or str(exc)
    if not stat.S_ISREG(st.st_mode):
        kind = _kind(st.st_mode)
        return f"{kind}, not a regular file" if kind != "not a regular file" else kind
    if limit is not None and st.st_size > limit:
        return f"{size_text(st.st_size)}, larger than the {size_text(limit)} allowed"
    return None


def open_regular(path: str | os.PathLike, where: str, limit: int | None = None):
    """Open ``path`` for reading in binary, refusing (ConfigError ``where: problem``) anything but a
    regular file of at most ``limit`` bytes. The file is opened without waiting (a FIFO swapped in
    after the check cannot block) and checked again on the open descriptor."""
    problem = file_problem(path, limit)
    if problem is None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        except OSError as exc:
            raise ConfigError(f"{where}: {exc.strerror or exc}") from None
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and (limit is None or st.st_size <= limit):
            return os.fdopen(fd, "rb")
        os.close(fd)
        problem = file_problem(path, limit) or "changed while being opened"
    raise ConfigError(f"{where}: {problem}")


def is_utf16(head: bytes) -> bool:
    """Whether text starting with ``head`` is UTF-16: a byte-order mark, or ASCII with zero bytes between."""
    return head.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(head) >= 4 and (head[1:4:2] == b"\0\0" or head[0:3:2] == b"\0\0"))


def decode(data: bytes, where: str) -> str:
    """UTF-8 (or ASCII) text; UTF-16 and invalid bytes are refused in one line naming the line."""
    if is_utf16(data):
        raise ConfigError(f"{where}: the file is UTF-16 text; allowed is UTF-8 or ASCII (convert it, e.g. iconv -f UTF-16 -t UTF-8)")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{where}: line {line}: byte 0x{data[exc.start]:02x} is not valid UTF-8; allowed is UTF-8 or ASCII text") from None


def read_text(path: str | os.PathLike, where: str | None = None, limit: int | None = MAX_CONFIG_BYTES) -> str:
    """The text of a regular input file of at most ``limit`` bytes, in UTF-8 (ConfigError otherwise)."""
    where = str(path) if where is None else where
    with open_regular(path, where, limit) as fh:
        data = fh.read() if limit is None else fh.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise ConfigError(f"{where}: larger than the {size_text(limit)} allowed")
    return decode(data, where)


# ------------------------------------------------------------------------------ bounded YAML
def _bounded_loader():
    import yaml
    from yaml.composer import ComposerError
    from yaml.events import AliasEvent

    class BoundedLoader(yaml.SafeLoader):
        """PyYAML's safe loader, refusing deep nesting and alias bombs while composing (before any
        Python object is built)."""

        def __init__(self, stream):
            super().__init__(stream)
            self._depth = 0
            self._values = 0
            self._sizes: dict[int, int] = {}

        def compose_node(self, parent, index):
            mark = self.peek_event().start_mark
            if self.check_event(AliasEvent):
                node = super().compose_node(parent, index)
                self._values += self._sizes.get(id(node), 1)
            else:
                if self._depth >= MAX_YAML_DEPTH:
                    raise ComposerError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", mark)
                self._depth += 1
                before = self._values
                try:
                    node = super().compose_node(parent, index)
                finally:
                    self._depth -= 1
                self._values += 1
                self._sizes[id(node)] = self._values - before
            if self._values > MAX_YAML_NODES:
                raise ComposerError(None, None, f"more than {MAX_YAML_NODES:,} values once its aliases are expanded (an alias bomb?)", mark)
            return node

    return BoundedLoader


_LOADER: Any = None


def _within_bounds(text: str) -> bool:
    """Whether ``text`` cannot exceed the bounds whatever it holds: no anchor or alias (so nothing
    expands), fewer characters than the value bound (a value takes one at least), and less nesting
    possible than the depth bound (a level in block style indents by one column at least, one in flow
    style opens a bracket)."""
    if "&" in text or "*" in text or len(text) >= MAX_YAML_NODES:
        return False
    indent = max((len(line) - len(line.lstrip(" -?:")) for line in text.splitlines()), default=0)
    return indent + text.count("[") + text.count("{") + 1 < MAX_YAML_DEPTH


def parse_yaml(text: str) -> Any:
    """Parse one YAML document safely (plain data only: no python tags), with bounded nesting and
    alias expansion. Raises ConfigError ``line N: not valid YAML (problem)``.

    A document that cannot exceed the bounds (:func:`_within_bounds`: every configuration the project
    ships) is parsed by libyaml's C parser with the same safe constructor, about ten times faster;
    anything else, and any document the C parser rejects, by the bounded Python loader (so that what
    is refused, and the message, are the same either way)."""
    import yaml

    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None and _within_bounds(text):
        try:
            return yaml.load(text, Loader=fast)  # noqa: S506 (the safe loader)
        except yaml.YAMLError:
            pass  # the bounded loader below says what is wrong, in its words
    global _LOADER
    if _LOADER is None:
        _LOADER = _bounded_loader()
    loader = _LOADER(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:  # a python tag (!!python/object/apply:...) lands here too
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "parse error"
        raise ConfigError(f"{f'line {mark.line + 1}: ' if mark else ''}not valid YAML ({clip(str(problem), 160)})") from None
    except RecursionError:  # only past the depth bound, in PyYAML's own recursion
        raise ConfigError(f"not valid YAML (nested deeper than {MAX_YAML_DEPTH} levels)") from None
    finally:
        loader.dispose()


def read_yaml(path: str | os.PathLike, where: str | None = None, limit: int | None = MAX_CONFIG_BYTES) -> Any:
    """A YAML input file, read with :func:`read_text` and parsed with :func:`parse_yaml`; every
    problem is one line starting with ``where`` (default: the path)."""
    where = str(path) if where is None else where
    text = read_text(path, where, limit)
    try:
        return parse_yaml(text)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def read_json(path: str | os.PathLike, where: str | None = None, limit: int | None = MAX_CONFIG_BYTES) -> Any:
    import json

    where = str(path) if where is None else where
    text = read_text(path, where, limit)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise ConfigError(f"{where}: not valid JSON (nested too deeply)") from None


def is_input_file(path: Path, limit: int | None = MAX_CONFIG_BYTES) -> bool:
    """Whether ``path`` is a regular file of at most ``limit`` bytes (what :func:`read_text` reads)."""
    return file_problem(path, limit) is None


# ------------------------------------------------------------------------------ provenance
def content_hash(path: str | os.PathLike) -> str | None:
    """``sha256:<hex>`` of a regular file's bytes (None when it cannot be read)."""
    import hashlib

    digest = hashlib.sha256()
    try:
        with open_regular(path, str(path)) as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except (ConfigError, OSError):
        return None
    return f"sha256:{digest.hexdigest()}"


def input_hashes(paths: Any) -> dict[str, str]:
    """Absolute path -> content hash of every input file in ``paths`` that can be read."""
    out = {}
    for p in paths:
        key = str(Path(p).expanduser().resolve())
        if key not in out:
            h = content_hash(key)
            if h is not None:
                out[key] = h
    return out


def changed_inputs(recorded: Any, reads: Any) -> list[str]:
    """The files among ``reads`` whose content differs from the hash ``recorded`` for them (a
    run's ``summary.json`` ``inputs``): one ``path (recorded ..., now ...)`` each."""
    if not isinstance(recorded, dict):
        return []
    out = []
    for p in reads:
        key = str(Path(p).expanduser().resolve())
        then = recorded.get(key)
        if isinstance(then, str):
            now = content_hash(key)
            if now != then:
                out.append(f"{key} (recorded {then[:19]}..., now {(now or 'unreadable')[:19]}...)")
    return out
