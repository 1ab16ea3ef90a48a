"""The decorator of every compiled function, and an on-disk cache that stays correct across files.

Compiled functions (numba) may call compiled functions of other modules; numba inlines the callee
into the caller's machine code. numba's own cache checks only the caller's source file, so after an
edit of the callee's file (or a checkout that touches only it) a cached caller would keep running
the old callee. Here a compiled function's cache entry is stamped with a hash of the sources of the
whole model layer of its package instead: any change to any of those files invalidates every entry,
and the next process compiles afresh (about 20 s once), never runs stale code.

The model layer is every Python file of the package except its public front door (``__init__``),
the front ends, experiment tooling, reports and plots (``UNCOMPILED``): those neither hold compiled functions nor define values that
compiled functions read (numba freezes the module-level values a function reads when it compiles),
which ``tests/test_compiled.py`` checks. Editing them costs no recompilation.

Cache files live beside the sources (``__pycache__``) or, where the package is read-only, in numba's
user-wide cache; ``NUMBA_CACHE_DIR`` moves them as it does for numba. ``NUMBA_DISABLE_JIT=1`` runs
the same functions as plain Python (for debugging).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numba
from numba.core import caching
from numba.extending import register_jitable

#: Files and folders of a package (relative to it) outside the compiled model layer: editing them
#: never invalidates compiled code.
UNCOMPILED = ("__init__.py", "__main__.py", "analysis", "dashboard", "reference", "assumptions.py", "bench.py", "check.py", "cli.py",
              "experiment.py", "folders.py", "plans.py", "plots.py", "report.py", "runs.py")


def package_root(path: str | Path) -> Path:
    """The top folder of the package that holds ``path`` (the highest folder with an ``__init__.py``)."""
    folder = Path(path).resolve().parent
    while (folder.parent / "__init__.py").is_file():
        folder = folder.parent
    return folder


def model_sources(root: Path) -> list[Path]:
    """The Python files of the package at ``root`` whose content any compiled function may depend on."""
    return sorted(p for p in root.rglob("*.py") if p.relative_to(root).parts[0] not in UNCOMPILED)


def sources_stamp(root: Path) -> bytes:
    """SHA-256 over the model layer's sources (their paths relative to ``root`` and their bytes)."""
    digest = hashlib.sha256()
    for path in model_sources(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.digest()


@functools.lru_cache(maxsize=None)
def _process_stamp(root: Path) -> bytes:
    """The stamp as this process first read it (once, not once per compiled function): an edit while
    a process runs is seen by the next process, as an edit of a module already imported would be."""
    return sources_stamp(root)


class _PackageStamp:
    """Stamps a cache entry with the hash of its package's model layer, not of its own file (a
    module outside any package, such as a script, keeps numba's stamp of its own file)."""

    def get_source_stamp(self):
        root = package_root(self._py_file)
        if not (root / "__init__.py").is_file():
            return super().get_source_stamp()
        return _process_stamp(root)


class _UserProvidedLocator(_PackageStamp, caching.UserProvidedCacheLocator):
    pass


class _InTreeLocator(_PackageStamp, caching.InTreeCacheLocator):
    pass


class _UserWideLocator(_PackageStamp, caching.UserWideCacheLocator):
    pass


class _CacheImpl(caching.CompileResultCacheImpl):
    _locator_classes = [_UserProvidedLocator, _InTreeLocator, _UserWideLocator]


class _Cache(caching.FunctionCache):
    _impl_class = _CacheImpl


def jit(fn):
    """The decorator every compiled function uses: compiled without the GIL, with numpy's error model
    (a division by zero gives inf or nan, as in numpy, instead of raising), cached on disk under the
    hash of the package's model layer (see the module docstring); compiled afresh in each process
    where no cache location is writable (set ``NUMBA_CACHE_DIR`` to a writable directory there)."""
    dispatcher = numba.njit(nogil=True, error_model="numpy")(fn)
    if isinstance(dispatcher, numba.core.dispatcher.Dispatcher):  # not under NUMBA_DISABLE_JIT
        try:
            dispatcher._cache = _Cache(dispatcher.py_func)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            pass
    return dispatcher


def formula(fn):
    """The decorator of a behaviour formula (``sim.behaviour``): a small function of scalars, written
    once. Called from Python it runs as written, with numpy's arithmetic (on whole arrays too, where
    it uses numpy's functions: ``np.minimum``, not ``min``); called from a compiled pass it is
    compiled with that pass (numba's ``register_jitable``; LLVM inlines functions this small)."""
    return register_jitable(fn)


__all__ = ["UNCOMPILED", "formula", "jit", "model_sources", "package_root", "sources_stamp"]
