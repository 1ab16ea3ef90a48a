"""Result folders that appear whole or not at all, and never overwrite one another.

A command writes its folder (a run, a comparison, a sweep's collection, a sensitivity analysis, a
calibration) under a hidden temporary name next to its destination and publishes it by an atomic
rename when complete (:class:`AtomicFolder`). The writer holds a lease in its temporary folder
(host, process, a heartbeat), so cleanup removes only what a dead writer left (on this machine, or
silent past the lease), never a folder another node is still writing. A run folder's manifest
(written last) lists every file's size and checksum, which is how a sweep tells a complete run from
a broken one. The parent folder is checked to be writable, with room, before any work starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import shutil
import signal
import socket
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sim.schema import ConfigError


def slug(text: str, whole_words: bool = False) -> str:
    """``text`` as a safe file-name part: letters, digits, - and _ (others become -), at most 60.
    ``whole_words``: a longer text is cut after its last whole name that fits and ends in ``-etc``
    (for names people read, such as a comparison's strategies), not mid-word."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)
    if not whole_words or len(safe) <= 60:
        return safe[:60]
    cut = safe[:57]
    end = cut.rfind("-vs-") if "-vs-" in cut else cut.rfind("-")
    return (cut[:end] if end > 0 else cut) + "-etc"


#: Free space a results folder must have before any work starts (a run folder of 1M people is a few MB).
MIN_FREE_BYTES = 64 * 2**20


#: Folders :func:`prepare_parent` created in this process (deepest last), removed again by
#: :func:`remove_created_if_empty` when a command is refused or interrupted before writing into them.
CREATED: list[Path] = []


def prepare_parent(out: Path) -> Path:
    """Create ``out`` if needed and check it is writable, before any work is done; remove what
    killed writers left behind (hidden temporary folders whose writers are gone)."""
    out = Path(out)
    missing = [p for p in (out, *out.parents) if not os.path.lexists(p)]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"out = {str(out)!r}: cannot create the results folder ({exc.strerror})") from None
    CREATED.extend(p for p in reversed(missing) if p not in CREATED)
    try:
        if not os.access(out, os.W_OK | os.X_OK):
            raise ConfigError(f"out = {str(out)!r}: the results folder is not writable")
        free = shutil.disk_usage(out).free
        if free < MIN_FREE_BYTES:
            raise ConfigError(f"out = {str(out)!r}: only {free / 2**20:.1f} MB free on its disk; results need at least "
                              f"{MIN_FREE_BYTES / 2**20:.0f} MB")
    except ConfigError:
        remove_created_if_empty()
        raise
    remove_stale_temporaries(out)
    return out


def remove_created_if_empty() -> None:
    """Remove the folders :func:`prepare_parent` created that are still empty (a refused command
    leaves no empty results folder behind)."""
    while CREATED:
        path = CREATED.pop()
        with contextlib.suppress(OSError):
            path.rmdir()


#: A writer refreshes the lease of its temporary folder this often ...
HEARTBEAT_SECONDS = 20


#: ... and a temporary folder whose lease (or, without one, whose folder) has not been touched for
#: this long is taken for dead whoever wrote it (another node, another container).
LEASE_SECONDS = 600


LEASE = ".lease"  # in a temporary folder: {"host", "boot", "pidns", "pid"}, its mtime the heartbeat


MANIFEST = "manifest.json"  # written last in a run folder: every other file with its size and SHA-256


def _machine() -> dict:
    """Who this process is, in a way a process on another node or in another container is not:
    host name, boot id (a kernel) and pid namespace (a container)."""
    def read(path: str) -> str:
        try:
            return Path(path).read_text().strip()
        except OSError:
            return ""

    try:
        pidns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        pidns = 0
    return {"host": socket.gethostname(), "boot": read("/proc/sys/kernel/random/boot_id"), "pidns": pidns}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(tmp: Path, now: float) -> bool:
    """A temporary folder is stale when its writer is certainly gone: it ran on this machine, in
    this pid namespace, and its process no longer exists; or its heartbeat stopped LEASE_SECONDS ago.
    Anything else (another node's writer, a folder still being set up) may be alive and is kept."""
    try:
        lease = tmp / LEASE
        beat = lease.stat().st_mtime
        owner = json.loads(lease.read_text())
    except (OSError, ValueError):  # no (readable) lease yet, or an older version's folder: its own age decides
        try:
            return now - tmp.stat().st_mtime > LEASE_SECONDS
        except OSError:
            return False
    if writer_gone(owner):
        return True
    return now - beat > LEASE_SECONDS


def writer() -> dict:
    """This process as a writer others can check on: machine (host, boot id, pid namespace) and pid."""
    return {**_machine(), "pid": os.getpid()}


def writer_gone(owner: dict) -> bool:
    """The writer ``owner`` (from :func:`writer`) ran on this machine and its process no longer
    exists. A writer on another machine (or in another container) is never known to be gone."""
    mine = {k: owner.get(k) for k in ("host", "boot", "pidns")} == _machine()
    return mine and isinstance(owner.get("pid"), int) and not _alive(owner["pid"])


def remove_stale_temporaries(parent: Path) -> list[Path]:
    """Delete hidden ``.tmp-*`` folders whose writers are gone (killed mid-write), on any machine
    sharing the file system; a folder whose writer may be alive is never touched."""
    removed = []
    now = time.time()
    for path in parent.glob(".tmp-*"):
        if path.is_dir() and not path.is_symlink() and _is_stale(path, now):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


class Lease:
    """The lease of a temporary folder: created exclusively inside it, naming its writer, and
    touched every HEARTBEAT_SECONDS by a daemon thread until released."""

    def __init__(self, folder: Path):
        self.path = folder / LEASE
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "w") as f:
            json.dump(writer(), f)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease {folder.name}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                os.utime(self.path)
            except OSError:  # the folder is gone: nothing left to keep alive
                return

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(OSError):
            self.path.unlink()


def _taken(path: Path) -> bool:
    return os.path.lexists(path)  # a dangling symlink takes a name too


def _claim(tmp: Path, dest: Path) -> bool:
    """Rename ``tmp`` to ``dest`` unless something already holds that name (then False)."""
    try:
        os.rename(tmp, dest)  # atomic on one filesystem; fails rather than replace a non-empty folder
        return True
    except OSError:
        if not _taken(dest):
            raise
        return False


def publish(tmp: Path, parent: Path, name: str, replace: bool = False, required: Sequence[str] = ()) -> Path:
    """Rename a finished temporary folder to ``parent/name`` (or name-2, -3, ...) without overwriting.

    ``replace`` (a sweep job, whose folder name is its identity): a complete folder already there
    (:func:`is_complete` with the ``required`` files) is the same job finished elsewhere, so it is
    kept and ours dropped; an incomplete one is replaced by ours. A symlink or a file at the name is
    never touched (the next free name is taken)."""
    dest = parent / name
    for _ in range(100 if replace else 0):
        if not _taken(dest):
            if _claim(tmp, dest):
                return dest
            continue  # another writer of the same job published first: look at what it wrote
        if not dest.is_dir() or dest.is_symlink():
            break  # not a run folder: the next free name
        if is_complete(dest, required):
            shutil.rmtree(tmp, ignore_errors=True)
            return dest
        aside = parent / f".tmp-p{os.getpid()}-replaced-{name}-{os.urandom(4).hex()}"
        try:
            os.rename(dest, aside)
        except FileNotFoundError:  # another writer moved it first
            continue
        try:
            if _claim(tmp, dest):
                return dest
        finally:
            shutil.rmtree(aside, ignore_errors=True)
    for k in range(1, 10_000):
        dest = parent / (name if k == 1 else f"{name}-{k}")
        if not _taken(dest) and _claim(tmp, dest):
            return dest
    raise OSError(f"no free run-folder name under {parent}")


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path, name: str) -> None:
    """Write ``manifest.json`` last: the run's name and every other file with its size and SHA-256."""
    files = {str(p.relative_to(folder)): {"bytes": p.stat().st_size, "sha256": _digest(p)}
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in (MANIFEST, LEASE)}
    text = json.dumps({"run": name, "files": files}, indent=1) + "\n"
    (folder / MANIFEST).write_text(text)


def read_manifest(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else None


def is_complete(folder: Path, required: Sequence[str] = ()) -> bool:
    """A folder is complete when its manifest (written last) is there, names every ``required`` file,
    and every file it lists has the size and checksum recorded (a 0-byte, truncated or missing file
    makes it incomplete)."""
    folder = Path(folder)
    manifest = read_manifest(folder) if folder.is_dir() else None
    if manifest is None or not all(f in manifest["files"] for f in required):
        return False
    for rel, info in manifest["files"].items():
        path = folder / rel
        try:
            if path.stat().st_size != info.get("bytes") or _digest(path) != info.get("sha256"):
                return False
        except OSError:
            return False
    return True


class AtomicFolder:
    """Context manager: a hidden temporary folder published under ``parent`` on success, removed on failure."""

    def __init__(self, parent: Path, name: str, replace: bool = False, required: Sequence[str] = ()):
        self.parent = prepare_parent(Path(parent))
        self.name = name
        self.replace, self.required = replace, tuple(required)
        self.path: Path | None = None
        self.tmp: Path | None = None
        self.lease: Lease | None = None

    def __enter__(self) -> Path:
        self.tmp = Path(tempfile.mkdtemp(prefix=f".tmp-p{os.getpid()}-{self.name}-", dir=self.parent))
        try:
            self.lease = Lease(self.tmp)
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.lease.release()
        if exc_type is None:
            try:
                self.path = publish(self.tmp, self.parent, self.name, replace=self.replace, required=self.required)
                return False
            except OSError as err:
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise self.write_error(err) from err
            except BaseException:
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise
        shutil.rmtree(self.tmp, ignore_errors=True)
        if isinstance(exc, OSError):  # a full disk, a lost permission, a read-only file system: one line
            raise self.write_error(exc) from exc
        return False

    def write_error(self, err: OSError) -> ConfigError:
        reason = err.strerror or str(err) or type(err).__name__
        return ConfigError(f"out = {str(self.parent)!r}: could not write {self.name} ({reason}); nothing was kept")


def replace_entries(folder: Path, write: Callable[[Path], Any], last: str | None = None) -> None:
    """Write files into an existing ``folder`` (a study's, which lives on between sessions) so that
    each appears whole: ``write(tmp)`` fills a hidden temporary folder inside it, whose entries then
    replace those of the same name one by one (a file by an atomic rename; a folder by moving the
    old one aside first), ``last`` (the summary naming what the others describe) after the rest."""
    folder = Path(folder)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-p{os.getpid()}-results-", dir=folder))
    lease = None
    try:
        lease = Lease(tmp)
        write(tmp)
        lease.release()
        lease = None
        entries = sorted((p for p in tmp.iterdir()), key=lambda p: (p.name == last, p.name))
        for entry in entries:
            dest = folder / entry.name
            if entry.is_dir() and os.path.lexists(dest):
                aside = folder / f".tmp-p{os.getpid()}-old-{entry.name}-{os.urandom(4).hex()}"
                os.rename(dest, aside)
                os.rename(entry, dest)
                shutil.rmtree(aside, ignore_errors=True)
            else:
                os.replace(entry, dest)
    finally:
        if lease is not None:
            lease.release()
        shutil.rmtree(tmp, ignore_errors=True)


def write_table(frame, path: str | os.PathLike) -> None:
    """Write ``frame`` (without its index) to the Parquet file ``path``, as fast as a table reads back
    the same: dictionary-encoded text columns (a few distinct names, such as channels) and plain
    numbers, snappy-compressed. pandas' default also dictionary-encodes every number column, which
    halves the speed of writing a cohort table of half a million rows for a file 5 % smaller; the
    frame read back is identical either way (types and values)."""
    import pandas as pd

    text = [str(c) for c, dtype in frame.dtypes.items()
            if pd.api.types.is_string_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype)]
    frame.to_parquet(path, index=False, compression="snappy", use_dictionary=text)


class HelperProcess:
    """A forked child process that does ``work(order)`` while this one goes on, both writing into the
    same temporary folder. The child runs ``prepare()`` first (imports, say) then waits for its order
    (:meth:`send`: small and pickled, it never waits for the child to read it); it shares this
    process's memory as it was at the fork, so large data need not be sent. :meth:`wait` returns
    when the child has finished and raises what it raised. :meth:`stop` (leaving the ``with`` block,
    an error or Ctrl-C included) kills the child and waits for it, so nothing writes into the folder
    once its writer has removed it and no process is left behind; a child never sent an order ends
    without working. Ctrl-C is this process's to handle: the child ignores it, and it dies with the
    thread that forked it (the main thread: use it from there).

    An order sent with ``more=True`` leaves the way open for more: the child starts on the first
    while this process prepares the next, and reads each further one with :func:`next_order`."""

    def __init__(self, work: Callable[[Any], Any], prepare: Callable[[], Any] | None = None):
        self.work, self.prepare = work, prepare
        self.pid: int | None = None
        self._orders: int | None = None
        self._errors: int | None = None
        self._sending: threading.Thread | None = None  # (an order being written by a thread: send(background=True))
        self._send_error: BaseException | None = None

    def start(self) -> HelperProcess:
        orders, self._orders = os.pipe()
        _widen(self._orders)
        self._errors, errors = os.pipe()
        parent = os.getpid()
        with warnings.catch_warnings():  # (fork in a process with threads: this child runs none of their code)
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 1
            try:
                os.close(self._orders)
                os.close(self._errors)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)  # (not the command's handler, which cleans up)
                _die_with_parent(parent)
                if self.prepare is not None:
                    self.prepare()
                global _ORDERS
                _ORDERS = orders
                order = _read_message(orders)
                if order is not None:
                    _write_all(errors, pickle.dumps((True, self.work(pickle.loads(order)), "")))
                code = 0
            except BaseException as exc:  # noqa: BLE001 (everything goes back to the parent)
                with contextlib.suppress(BaseException):
                    _send_failure(errors, exc)
            finally:
                os._exit(code)
        os.close(orders)
        os.close(errors)
        self.pid = pid
        return self

    def send(self, order: Any, more: bool = False, background: bool = False) -> None:
        """Give the child its order, ``work(order)`` for the first, :func:`next_order` for the others
        (pickled; beyond a pipe's buffer, 64 KiB, this waits for the child to be ready to read it).
        ``more``: other orders follow. ``background``: a thread writes it, after any order still being
        written, so that this process goes on while the child is still busy (it is the next
        foreground call's to wait for, and to raise the child's failure if the child ended instead
        of reading it)."""
        data = pickle.dumps(order, protocol=5)
        message = len(data).to_bytes(8, "little") + data
        if background:  # (after an order still being written, by the same thread: never waits here)
            self._sending = threading.Thread(target=self._write_after, args=(self._sending, message, more), name="helper order",
                                             daemon=True)
            self._sending.start()
            return
        self._finish_sending()
        self._write_order(message, more)
        if self._send_error is not None:
            self._finish_sending()

    def _write_after(self, previous: threading.Thread | None, message: bytes, more: bool) -> None:
        if previous is not None:
            previous.join()
        if self._orders is not None and self._send_error is None:  # (not after a failed one: the child ended)
            self._write_order(message, more)

    def _write_order(self, message: bytes, more: bool) -> None:
        try:
            _write_all(self._orders, message)
        except BrokenPipeError as exc:  # the child ended before reading it: why is for _finish_sending to say
            self._send_error = exc
            more = False
        finally:
            if not more:
                os.close(self._orders)
                self._orders = None

    def _finish_sending(self) -> None:
        """Wait for an order being written; if the child ended before reading it, raise why."""
        if self._sending is not None:
            self._sending.join()
            self._sending = None
        if self._send_error is not None:
            error, self._send_error = self._send_error, None
            self.wait()
            raise error

    def wait(self) -> Any:
        """Wait for the child to finish and return what ``work`` returned; raise its exception (with
        its traceback as a note) if it failed."""
        if self._sending is not None:
            self._sending.join()
            self._sending = None
        self._send_error = None  # (the child's own failure, read below, says more)
        if self._orders is not None:  # (never sent one, or not the last: the child ends without working further)
            os.close(self._orders)
            self._orders = None
        chunks = []
        while chunk := os.read(self._errors, 1 << 16):
            chunks.append(chunk)
        pid, status = os.waitpid(self.pid, 0)
        self.pid = None
        done, value, trace = _received_outcome(b"".join(chunks))
        if status == 0 and done:
            return value
        if value is None:
            raise RuntimeError(f"the helper process ended without finishing its work ({_ending(status)})")
        value.add_note(f"(raised in helper process {pid}):\n{trace}".rstrip())
        raise value

    def stop(self) -> None:
        """Kill the child if it still runs, wait for it, and close the pipes."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = None
        if self._sending is not None:  # (its write fails now that the child is gone; its pipe is closed after it)
            self._sending.join()
            self._sending = None
        self._send_error = None
        for name in ("_orders", "_errors"):
            if getattr(self, name) is not None:
                os.close(getattr(self, name))
                setattr(self, name, None)

    def __enter__(self) -> HelperProcess:
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.stop()
        return False

    def __getstate__(self) -> dict:  # (a copy in another process has no child: an inert one)
        return {"work": None, "prepare": None, "pid": None, "_orders": None, "_errors": None, "_sending": None, "_send_error": None}


#: In a helper process (:class:`HelperProcess`): the pipe its orders come through.
_ORDERS: int | None = None


def next_order() -> Any:
    """In a helper process: wait for the next order its parent sends (after one sent with ``more=True``)."""
    if _ORDERS is None:
        raise RuntimeError("next_order() is for a helper process")
    message = _read_message(_ORDERS)
    if message is None:
        raise RuntimeError("the writer sent no further order")
    return pickle.loads(message)


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when the thread that forked it ends (Linux), so that a helper
    of a writer killed by SIGKILL does not go on writing; elsewhere, and if it is already gone, exit."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def _read_message(fd: int) -> bytes | None:
    """A length-prefixed message from ``fd`` (:meth:`HelperProcess.send`), or None when the pipe closes first."""
    head = _read_exactly(fd, 8)
    return None if head is None else _read_exactly(fd, int.from_bytes(head, "little"))


def _read_exactly(fd: int, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _widen(fd: int) -> None:
    """Give the pipe at ``fd`` a buffer of 1 MiB where the system allows it (Linux; 64 KiB otherwise):
    a table handed to a helper that is busy drawing then goes over in a few writes, each of which
    waits for the writer's thread to get the interpreter back, instead of hundreds."""
    with contextlib.suppress(OSError, ImportError, ValueError):
        import fcntl

        if hasattr(fcntl, "F_SETPIPE_SZ"):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _send_failure(fd: int, exc: BaseException) -> None:
    """Write (False, the exception pickled if it can be, its traceback's text) to ``fd``."""
    try:
        pickled = pickle.dumps(exc)
    except Exception:  # noqa: BLE001 (the text still says what happened)
        pickled = None
    _write_all(fd, pickle.dumps((False, pickled, "".join(traceback.format_exception(exc)))))


def _received_outcome(data: bytes) -> tuple[bool, Any, str]:
    """What the child wrote: (True, its value, "") or (False, its exception, its traceback's text);
    (False, None, "") when it wrote nothing whole (killed); an exception that cannot be rebuilt here
    comes back as a RuntimeError with its last line."""
    try:
        done, value, trace = pickle.loads(data)
    except Exception:  # noqa: BLE001 (nothing, or cut short)
        return False, None, ""
    if done:
        return True, value, ""
    try:
        return False, pickle.loads(value), trace
    except Exception:  # noqa: BLE001
        return False, RuntimeError(trace.strip().splitlines()[-1] if trace.strip() else "the helper process failed"), trace


def _ending(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
