"""The codebase reads as its design says: short calls, mechanism files top-down, an explicit hook
order, capabilities declared on the base class.

These read the sources (``ast``), so they fail on the commit that breaks a rule, naming the place.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sim
from sim.mechanisms import HOOK_ORDER, REGISTRY
from sim.mechanisms.base import Mechanism

ROOT = Path(sim.__file__).parent
MECHANISM_FILES = sorted(p for p in (ROOT / "mechanisms").glob("*.py") if p.stem not in ("__init__", "base"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def _is_compiled(node: ast.AST) -> bool:
    return isinstance(node, ast.FunctionDef) and any(getattr(d, "id", None) in ("jit", "formula") for d in node.decorator_list)


def test_no_call_passes_more_than_ten_positional_arguments():
    """Columns and settings reach a pass as a few tuples, not as long argument lists."""
    long_calls = [f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node.func)} ({len(node.args)})"
                  for path in ROOT.rglob("*.py") for node in ast.walk(_tree(path))
                  if isinstance(node, ast.Call) and len(node.args) > 10]
    assert not long_calls, long_calls


def test_a_mechanism_file_reads_top_down():
    """Module docstring, then its configuration (the Config class and what it is built of), then the
    Mechanism class, then helpers and the compiled passes at the bottom."""
    problems = []
    for path in MECHANISM_FILES:
        tree = _tree(path)
        if ast.get_docstring(tree) is None:
            problems.append(f"{path.name}: no module docstring")
        defs = [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))]
        registered = [k for k, n in enumerate(defs) if isinstance(n, ast.ClassDef)
                      and any(getattr(d, "id", None) == "register" for d in n.decorator_list)]
        if len(registered) != 1:
            problems.append(f"{path.name}: {len(registered)} registered Mechanism classes")
            continue
        k = registered[0]
        config = defs[k - 1] if k else None
        if not (isinstance(config, ast.ClassDef) and config.name.endswith("Config")):
            problems.append(f"{path.name}: the Config class does not come right before the Mechanism class")
        for node in defs[:k]:
            if _is_compiled(node):
                problems.append(f"{path.name}:{node.lineno} compiled {node.name} comes before the Mechanism class")
            elif node.name.startswith("_") and not node.name.startswith("_default"):
                problems.append(f"{path.name}:{node.lineno} helper {node.name} comes before the Mechanism class")
        compiled = [n for n in defs[k + 1:] if _is_compiled(n)]
        if compiled and any(not _is_compiled(n) for n in defs[defs.index(compiled[0]):]):
            problems.append(f"{path.name}: the compiled passes are not all at the bottom")
    assert not problems, problems


def test_hooks_run_in_the_declared_order():
    import sim as s

    assert list(REGISTRY) == list(HOOK_ORDER)
    model = s.GrowthModel(s.compose("all_mechanisms", ["population.size=300", "horizon=2"]))
    for stage, hooks in model.hooks.items():
        names = [h.__self__.name for h in hooks]
        assert names == [n for n in HOOK_ORDER if n in names], (stage, names)


def test_mechanisms_use_each_other_only_through_declared_capabilities():
    """A mechanism asks all enabled mechanisms for a capability of the base class (screening,
    farmable offers, relevance rates); none looks another up by name or by duck typing."""
    declared = {name for name, value in vars(Mechanism).items() if callable(value) and not name.startswith("_")}
    assert {"screen", "farmable", "relevance_rate"} <= declared
    found = []
    for path in MECHANISM_FILES:
        text = path.read_text()
        for needle in ("get_mechanism(", "hasattr(m", "getattr(m,"):
            if needle in text:
                found.append(f"{path.name}: {needle}")
    assert not found, found


def test_declared_channels_are_words_of_the_vocabulary():
    from sim.vocabulary import CHANNELS

    for name, cls in REGISTRY.items():
        assert set(cls.channels) <= set(CHANNELS), (name, cls.channels)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The ``sim`` modules a file imports anywhere (inside functions too), as module names."""
    found = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("sim"):
            for a in node.names:  # `from sim import kernels` imports a module; `from sim.x import y`, module sim.x
                found.add(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module)
    return found & modules


def test_the_import_graph_has_no_cycles():
    """Layers without import cycles: every import counts, including those inside functions."""
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {m: _imports(p, set(files)) - {m} for m, p in files.items()}
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, [" -> ".join(c) for c in cycles[:5]]


def test_the_version_is_the_one_pyproject_declares():
    import tomllib

    from sim.version import __version__

    assert tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["project"]["version"] == __version__
