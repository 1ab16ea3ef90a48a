"""Mesa, imported without the parts of it this engine never uses.

``import mesa`` runs Mesa's package ``__init__``, which imports every subpackage: its experimental
continuous space imports ``scipy.spatial`` (about 0.2 s) and its classic ``mesa.space`` imports
networkx (about 0.1 s). ``GrowthModel`` needs ``mesa.Model`` alone, and every run, worker process and
test pays the import, so :func:`import_mesa` registers those two subpackages as modules that load
themselves on first use: the names stay where Mesa puts them (``mesa.experimental``, ``mesa.space``),
and the first attribute anyone reads of one (``mesa.space.NetworkGrid``, or an import of one of its
submodules) runs its code then, as an ordinary import would have. This is the lazy-submodule pattern
of the scientific Python ecosystem (SPEC 1), applied from outside: nothing of Mesa is changed.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import threading
import types

#: Mesa's subpackages the engine never uses, whose imports are the slow part of ``import mesa``
DEFERRED = ("mesa.experimental", "mesa.space")

_LOCK = threading.RLock()


class _Deferred(types.ModuleType):
    """A module whose code runs when an attribute it does not have yet is first read. Its import
    attributes (``__spec__``, ``__path__``, ``__file__``) are set from the start, so that the import
    system sees an ordinary module (and imports its submodules) without running it."""

    def __getattr__(self, name: str):
        if self.__dict__.get("_deferred_loaded"):  # its code has run: the attribute does not exist
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        with _LOCK:
            if not self.__dict__.get("_deferred_loaded"):
                self.__dict__["_deferred_loaded"] = True
                self.__spec__.loader.exec_module(self)
        return getattr(self, name)


def import_mesa() -> types.ModuleType:
    """``mesa``, with :data:`DEFERRED` registered to load on first use (unless already imported)."""
    if "mesa" not in sys.modules:
        spec = importlib.util.find_spec("mesa")  # (finds the package without running it)
        locations = list(spec.submodule_search_locations or []) if spec else []
        for name in DEFERRED:
            if name in sys.modules or not locations:
                continue
            sub = importlib.machinery.PathFinder.find_spec(name, locations)
            if sub is None or sub.loader is None:
                continue
            module = _Deferred(name)
            for key, value in vars(importlib.util.module_from_spec(sub)).items():
                setattr(module, key, value)  # __spec__, __loader__, __file__, __path__, ...
            sys.modules[name] = module
    import mesa

    return mesa


__all__ = ["DEFERRED", "import_mesa"]
