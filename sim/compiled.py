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
import threading
import time
from pathlib import Path

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


def model_stamp() -> bytes:
    """The stamp of this package's model layer as this process first read it: what anything derived
    from the model's code and kept between processes is keyed by (compiled kernels, generated graphs)."""
    return _process_stamp(package_root(__file__))


@functools.lru_cache(maxsize=None)
def _numba():
    """Import numba and define what this module needs of it: once, when the first compiled function is
    called (commands that simulate nothing never import numba; it costs about 0.2 s). Formulas declared
    before then are registered with numba here, before any compiled pass that calls them is compiled."""
    started = time.perf_counter()
    import numba
    from numba.core import caching
    from numba.extending import register_jitable, typeof_impl

    class _PackageStamp:
        """Stamps a cache entry with the hash of its package's model layer, not of its own file (a
        module outside any package, such as a script, keeps numba's stamp of its own file), and with
        the format of this module's entries (:data:`ENTRY_FORMAT`)."""

        def get_source_stamp(self):
            root = package_root(self._py_file)
            if not (root / "__init__.py").is_file():
                return super().get_source_stamp(), ENTRY_FORMAT
            return _process_stamp(root), ENTRY_FORMAT

    class _UserProvidedLocator(_PackageStamp, caching.UserProvidedCacheLocator):
        pass

    class _InTreeLocator(_PackageStamp, caching.InTreeCacheLocator):
        pass

    class _UserWideLocator(_PackageStamp, caching.UserWideCacheLocator):
        pass

    class _CacheImpl(caching.CompileResultCacheImpl):
        _locator_classes = [_UserProvidedLocator, _InTreeLocator, _UserWideLocator]

        def reduce(self, cres):
            """numba's cache entry of a compiled kernel, and the names of the symbols its module for
            linking defines (what numba reads from that module at every load: see :meth:`rebuild`)."""
            payload = super().reduce(cres)
            if _LIGHT_RUNTIME is None or payload[0][1] != "object":
                return payload
            return (*payload, _defined_symbols(cres.library._get_module_for_linking()))

        def rebuild(self, target_context, payload):
            """A kernel from its cache entry. numba parses the LLVM bitcode of the kernel's module for
            linking into other kernels and walks its symbols at every load (two thirds of loading a
            kernel); a kernel loaded from the cache is linked into another only when one that calls
            it is compiled in the same process. Here the symbols saved with the entry are taken and
            the module is parsed when first linked (:func:`_rebuild`)."""
            *entry, defined = payload
            if not isinstance(defined, frozenset):  # (numba's own entry)
                return super().rebuild(target_context, payload)
            if _LIGHT_RUNTIME is None:
                return super().rebuild(target_context, tuple(entry))
            return _rebuild(target_context, tuple(entry), defined)

    class _Cache(caching.FunctionCache):
        _impl_class = _CacheImpl

        def load_overload(self, sig, target_context):
            """Load a cached kernel without first refreshing the whole target context, as numba does
            before every load: the first refresh of a process imports some forty modules of numba's
            compiler (and, through its check that BLAS exists, scipy.linalg), 0.35-0.5 s a process,
            and each later one costs half a millisecond a kernel. Machine code loaded from the cache
            needs only numba's runtime, initialised here; compiling, when a kernel is not cached,
            refreshes the contexts itself (numba's compiler does so before typing)."""
            if _LIGHT_RUNTIME is None:  # another numba: its own way
                return super().load_overload(sig, target_context)
            started = time.perf_counter()
            _LIGHT_RUNTIME.initialize(target_context)
            with self._guard_against_spurious_io_errors():
                loaded = self._load_overload(sig, target_context)
            if loaded is not None:
                _SPENT["loading"] += time.perf_counter() - started
                _SPENT["loaded"] += 1
            return loaded

    # The light load above is for the numba releases whose loading it was checked against (0.60 to
    # 0.68: the same internals); a later one loads its own way until checked.
    global _LIGHT_RUNTIME
    checked = (0, 60) <= tuple(int(p) for p in numba.__version__.split(".")[:2]) < (0, 69)
    inside = all(hasattr(caching.FunctionCache, a) for a in ("_load_overload", "_guard_against_spurious_io_errors"))
    _LIGHT_RUNTIME = _runtime() if checked and inside else None
    # A compiled function that calls another sees a Kernel as a module global: numba types it as the
    # dispatcher it stands for (and inlines that, as it would a dispatcher named directly).
    typeof_impl.register(Kernel)(lambda kernel, context: typeof_impl(kernel.dispatcher(), context))
    with _LOCK:
        for fn in _FORMULAS:
            register_jitable(fn)
        _NUMBA_READY.append(register_jitable)
    _SPENT["numba"] = time.perf_counter() - started
    return numba, _Cache


def _runtime():
    """numba's runtime system (``rtsys``, which compiled code that allocates arrays calls into), or
    None where a numba release keeps it elsewhere."""
    try:
        from numba.core.runtime import nrt
    except ImportError:
        return None
    rtsys = getattr(nrt, "rtsys", None)
    return rtsys if callable(getattr(rtsys, "initialize", None)) else None


def _defined_symbols(module) -> frozenset[str]:
    """The functions and globals an LLVM module defines (as numba's JIT engine reads them)."""
    return frozenset(value.name for values in (module.functions, module.global_variables) for value in values
                     if not value.is_declaration)


def _rebuild(target_context, entry: tuple, defined: frozenset[str]):
    """numba's ``CompileResult._rebuild`` (the same in numba 0.60 to 0.68), but for the library, whose
    module for linking is parsed when first needed and whose symbols are ``defined``."""
    from numba.core.compiler import CompileResult

    libdata, fndesc, env, signature, objectmode, lifted, typeann, reload_init, referenced_envs = entry
    for fn in reload_init or ():
        fn()
    codegen = target_context.codegen()
    name, _, (object_code, shared_bitcode) = libdata
    library = codegen.create_library(name)
    library.__class__ = _linked_on_demand(type(library))
    library.enable_object_caching()
    library._set_compiled_object(object_code)
    library._shared_bitcode = shared_bitcode
    library._finalize_final_module()
    codegen._engine._defined_symbols |= defined
    result = CompileResult(target_context=target_context, typing_context=target_context.typing_context, library=library,
                           environment=env, entry_point=target_context.get_executable(library, fndesc, env), fndesc=fndesc,
                           type_annotation=typeann, signature=signature, objectmode=objectmode, lifted=lifted,
                           typing_error=None, call_helper=None, metadata=None, reload_init=reload_init,
                           referenced_envs=referenced_envs)
    for referenced in referenced_envs:
        library.codegen.set_env(referenced.env_name, referenced)
    return result


@functools.lru_cache(maxsize=None)
def _linked_on_demand(library_class: type) -> type:
    """``library_class`` (numba's code library of the CPU target) whose module for linking into other
    libraries, loaded from the cache as LLVM bitcode, is parsed the first time it is asked for."""
    from llvmlite import binding

    def module(self):
        if self.__dict__.get("_shared_module") is None and self.__dict__.get("_shared_bitcode") is not None:
            self.__dict__["_shared_module"] = binding.parse_bitcode(self.__dict__["_shared_bitcode"])
            del self.__dict__["_shared_bitcode"]
        return self.__dict__.get("_shared_module")

    def set_module(self, value):
        self.__dict__["_shared_module"] = value

    return type(f"{library_class.__name__}LinkedOnDemand", (library_class,), {"_shared_module": property(module, set_module)})


_LIGHT_RUNTIME = None  # numba's runtime once numba is imported, if its kernels load the light way
#: In every entry's stamp: entries of another format (numba's own, or this module's before its entries
#: kept their symbols, which numba's loader cannot read) are stale to this module and this module's to
#: them, and are compiled afresh rather than misread.
ENTRY_FORMAT = "entries with their symbols (1)"
_LOCK = threading.RLock()
#: What making the compiled functions ready has cost this process so far (:func:`spent`).
_SPENT = {"numba": 0.0, "dispatchers": 0.0, "loading": 0.0, "loaded": 0}


def spent() -> dict:
    """Seconds this process has spent making its compiled functions ready, timed where it happens:
    importing numba (``numba``), creating numba's dispatchers (``dispatchers``) and loading kernels
    from the cache (``loading``, of ``loaded`` kernels); what ``sim bench`` reports as kernel
    loading. (Kernels loaded numba's own way, on a numba release this module has not been checked
    against, and kernels compiled afresh are not counted in ``loading``.)"""
    return dict(_SPENT)
_FORMULAS: list = []  # formulas declared before numba was imported, registered when it is
_NUMBA_READY: list = []  # numba's register_jitable, once numba is imported


class Kernel:
    """A compiled function: the Python function, compiled by numba (or loaded from the on-disk cache)
    the first time it is called. Calls, ``py_func`` and numba's attributes (``signatures``, ``stats``)
    behave as they do on numba's dispatcher."""

    def __init__(self, fn):
        functools.update_wrapper(self, fn)
        self.py_func = fn
        self._dispatcher = None

    def dispatcher(self):
        """numba's dispatcher of this function (the function itself under ``NUMBA_DISABLE_JIT=1``)."""
        if self._dispatcher is None:
            numba, cache = _numba()
            with _LOCK:
                if self._dispatcher is None:
                    started = time.perf_counter()
                    dispatcher = numba.njit(nogil=True, error_model="numpy")(self.py_func)
                    if isinstance(dispatcher, numba.core.dispatcher.Dispatcher):  # not under NUMBA_DISABLE_JIT
                        try:
                            dispatcher._cache = cache(dispatcher.py_func)
                        except RuntimeError:  # "cannot cache function ...: no locator available"
                            pass
                    _SPENT["dispatchers"] += time.perf_counter() - started
                    self._dispatcher = dispatcher
        return self._dispatcher

    def __call__(self, *args, **kwargs):
        return (self._dispatcher or self.dispatcher())(*args, **kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "_dispatcher":
            raise AttributeError(name)
        return getattr(self.dispatcher(), name)

    def __repr__(self) -> str:
        return f"<compiled function {self.__module__}.{self.__qualname__}>"


def jit(fn) -> Kernel:
    """The decorator every compiled function uses: compiled without the GIL, with numpy's error model
    (a division by zero gives inf or nan, as in numpy, instead of raising), cached on disk under the
    hash of the package's model layer (see the module docstring); compiled afresh in each process
    where no cache location is writable (set ``NUMBA_CACHE_DIR`` to a writable directory there).
    Compiled on first call (:class:`Kernel`): importing a module of compiled functions costs nothing."""
    return Kernel(fn)


def formula(fn):
    """The decorator of a behaviour formula (``sim.behaviour``): a small function of scalars, written
    once. Called from Python it runs as written, with numpy's arithmetic (on whole arrays too, where
    it uses numpy's functions: ``np.minimum``, not ``min``); called from a compiled pass it is
    compiled with that pass (numba's ``register_jitable``; LLVM inlines functions this small)."""
    with _LOCK:
        if _NUMBA_READY:
            _NUMBA_READY[0](fn)
        else:
            _FORMULAS.append(fn)
    return fn


__all__ = ["UNCOMPILED", "Kernel", "formula", "jit", "model_sources", "model_stamp", "package_root", "sources_stamp"]
