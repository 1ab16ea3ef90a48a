"""The on-disk cache of compiled functions never runs stale code (``sim.compiled``).

A compiled function may call (and numba inlines) a compiled function of another module. numba's own
cache checks only the caller's file; ``sim.compiled.jit`` stamps every entry with the hash of the
package's whole model layer, so an edit anywhere in it is seen by every cached caller.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import sim
from sim.compiled import UNCOMPILED, model_sources, package_root, sources_stamp

CALLEE = "from {jit_from} import {jit_name}\n\n@{decorator}\ndef bump(x):\n    return x + {step}\n"
CALLER = textwrap.dedent("""\
    from {jit_from} import {jit_name}
    from fakepkg.callee import bump

    @{decorator}
    def twice(x):
        return bump(x) * 2
    """)
MAIN = textwrap.dedent("""\
    from fakepkg.caller import twice
    print(twice(1), twice.stats.cache_hits.most_common(1), flush=True)
    """)

DECORATORS = {  # the project's decorator, and numba's own cache as the control
    "sim": {"jit_from": "sim.compiled", "jit_name": "jit", "decorator": "jit"},
    "numba": {"jit_from": "numba", "jit_name": "njit", "decorator": "njit(cache=True)"},
}


def _package(root: Path, kind: str, step: int) -> None:
    pkg = root / "fakepkg"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "callee.py").write_text(CALLEE.format(step=step, **DECORATORS[kind]))
    (pkg / "caller.py").write_text(CALLER.format(**DECORATORS[kind]))


def _run(root: Path) -> tuple[int, bool]:
    """``twice(1)`` in a fresh process, and whether it came from the cache."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(Path(sim.__file__).parent.parent)])}
    env.pop("NUMBA_CACHE_DIR", None)
    out = subprocess.run([sys.executable, "-c", MAIN], capture_output=True, text=True, env=env, cwd=root, timeout=300)
    assert out.returncode == 0, out.stderr
    value, hits = out.stdout.split(" ", 1)
    return int(value), hits.strip() != "[]"


@pytest.mark.parametrize("kind", ["sim", "numba"])
def test_an_edit_of_a_callee_in_another_file_reaches_its_cached_caller(tmp_path, kind):
    _package(tmp_path, kind, step=1)
    assert _run(tmp_path) == (4, False)  # compiled, cached
    assert _run(tmp_path) == (4, True)  # loaded from the cache
    _package(tmp_path, kind, step=2)  # only the callee's file changes
    value, cached = _run(tmp_path)
    if kind == "sim":
        assert (value, cached) == (6, False)  # recompiled with the new callee
        assert _run(tmp_path) == (6, True)
    else:  # numba alone keeps the stale inlined callee: why sim.compiled exists
        assert (value, cached) == (4, True)


LINKED = textwrap.dedent("""\
    from fakepkg.callee import bump
    from sim.compiled import jit
    loaded = bump(1)  # from the cache: its module for linking not parsed
    library = bump.overloads[bump.signatures[0]].library
    parsed_before = library.__dict__.get("_shared_module") is not None

    @jit
    def thrice(x):  # (a script's kernel: compiled here, linking in the cached one)
        return bump(x) * 3

    print(loaded, thrice(1), sum(bump.stats.cache_hits.values()), parsed_before,
          library.__dict__.get("_shared_module") is not None, flush=True)
    """)


def test_a_kernel_loaded_from_the_cache_links_into_one_compiled_later(tmp_path):
    """A cached kernel's module for linking is parsed only when a kernel compiled later calls it,
    and the later kernel runs the cached one's code."""
    _package(tmp_path, "sim", step=1)
    assert _run(tmp_path) == (4, False)  # compiled, cached
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(sim.__file__).parent.parent)])}
    env.pop("NUMBA_CACHE_DIR", None)
    out = subprocess.run([sys.executable, "-c", LINKED], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2", "6", "1", "False", "True"], out.stdout


def test_the_stamp_covers_the_model_layer_and_nothing_else(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "mechanisms").mkdir(parents=True)
    (pkg / "dashboard").mkdir()
    for rel in ("__init__.py", "mechanisms/__init__.py", "mechanisms/a.py", "dashboard/__init__.py", "cli.py", "behaviour.py"):
        (pkg / rel).write_text("x = 1\n")
    assert package_root(pkg / "mechanisms" / "a.py") == pkg
    assert [p.relative_to(pkg).as_posix() for p in model_sources(pkg)] == ["behaviour.py", "mechanisms/__init__.py", "mechanisms/a.py"]
    before = sources_stamp(pkg)
    (pkg / "cli.py").write_text("x = 2\n")
    (pkg / "dashboard" / "__init__.py").write_text("x = 2\n")
    assert sources_stamp(pkg) == before
    (pkg / "behaviour.py").write_text("x = 2\n")
    assert sources_stamp(pkg) != before


def _sim_imports(tree: ast.Module) -> set[str]:
    """The ``sim`` modules a file imports at module level (what its compiled functions can read)."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sim"):
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("sim"))
    return names


def _holds_compiled_code(tree: ast.Module) -> bool:
    """A function decorated ``jit`` or ``formula`` (anywhere), or an import of numba."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(
                getattr(d, "id", getattr(d, "attr", None)) in ("jit", "njit", "formula") for d in node.decorator_list):
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                (a.name if isinstance(node, ast.Import) else node.module or "").startswith("numba") for a in node.names):
            return True
    return False


def test_no_compiled_code_depends_on_files_outside_the_stamp():
    """Files outside the stamp hold no compiled function, and no model-layer file imports them at
    module level (a compiled function reads only its own module's globals)."""
    root = Path(sim.__file__).parent
    model = set(model_sources(root))
    outside = {".".join(("sim", *Path(name).with_suffix("").parts)) for name in UNCOMPILED}
    problems = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        if path not in model and _holds_compiled_code(tree):
            problems.append(f"{path.relative_to(root)} holds compiled code but is outside the stamp")
        if path in model:
            for name in _sim_imports(tree):
                if any(name == o or name.startswith(o + ".") for o in outside):
                    problems.append(f"{path.relative_to(root)} imports {name}, outside the stamp")
    assert not problems, problems


LOADED = textwrap.dedent("""\
    import sys
    import sim
    from sim.compiled import Kernel
    sim.run("all_mechanisms", overrides=["population.size=2000", "horizon=40"])
    misses = sum(sum(k.stats.cache_misses.values()) for k in vars(sys.modules["sim.kernels"]).values()
                 if isinstance(k, Kernel) and k._dispatcher is not None)
    print(misses, "numba.np.arraymath" in sys.modules, "scipy.linalg" in sys.modules)
    """)


def test_kernels_loaded_from_the_cache_import_none_of_numbas_compiler():
    """A process whose kernels all come from the cache loads them without refreshing numba's target
    context (which imports some forty modules of its compiler and scipy.linalg, 0.35-0.5 s), and no
    kernel's cache entry names numba's array maths (loading it would import them all the same)."""
    env = {**os.environ, "SIM_THREADS": "1"}
    first = subprocess.run([sys.executable, "-c", LOADED], capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr
    second = subprocess.run([sys.executable, "-c", LOADED], capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["0", "False", "False"], second.stdout



SCRIPT = textwrap.dedent("""\
    import sys

    if sys.argv[1] == "sim":
        from sim.compiled import jit as decorator
    else:
        import numba
        decorator = numba.njit(cache=True)


    @decorator
    def bump(x):
        return x + 1


    print(bump(1), sum(bump.stats.cache_hits.values()), flush=True)
    """)


def test_entries_of_the_projects_format_and_numbas_are_never_misread(tmp_path):
    """A script's kernel cached by numba's own cache and by the project's (whose entries keep their
    symbols, a format numba's loader cannot read) shares one cache file: each sees the other's entry
    as stale and compiles afresh, never misreads it."""
    (tmp_path / "script.py").write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(sim.__file__).parent.parent)}
    env.pop("NUMBA_CACHE_DIR", None)

    def run(kind: str) -> list[str]:
        out = subprocess.run([sys.executable, "script.py", kind], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    assert run("sim") == ["2", "0"]  # compiled, cached
    assert run("sim") == ["2", "1"]  # loaded
    assert run("numba") == ["2", "0"]  # numba's own: the project's entry is stale to it (before: a TypeError)
    assert run("numba") == ["2", "1"]
    assert run("sim") == ["2", "0"]  # and numba's entry is stale to the project
