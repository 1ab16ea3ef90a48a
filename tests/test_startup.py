"""What a process pays before it simulates: commands that simulate nothing import only what they need,
Mesa comes without the subpackages the engine never uses, compiled functions are compiled (or loaded
from the cache) on first call, and the fast YAML path reads what the bounded loader reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import sim
from sim.inputs import MAX_YAML_DEPTH, _within_bounds, parse_yaml

ROOT = Path(sim.__file__).resolve().parent.parent
HEAVY = ("numba", "mesa", "pandas", "matplotlib", "scipy", "networkx", "pyarrow", "sim.engine")


def _imported_after(code: str) -> list[str]:
    """The heavy modules a fresh process has imported after running ``code``."""
    probe = f"import sys, json\n{code}\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["keys"], ["scenarios"], ["config"], ["run", "population.size=abc"], ["show", "nope"]],
                         ids=["keys", "scenarios", "config", "refused_value", "refused_command"])
def test_commands_that_simulate_nothing_import_no_engine(argv):
    code = f"from sim.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
    assert _imported_after(code) == []


def test_import_sim_is_light_and_its_names_load_on_use():
    assert _imported_after("import sim") == []
    assert "sim.engine" in _imported_after("import sim; sim.GrowthModel")
    for name in sim.__all__:
        assert getattr(sim, name) is not None
    assert set(sim.__all__) <= set(dir(sim))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sim.nope  # noqa: B018


def test_the_engine_is_a_mesa_model_without_mesas_unused_subpackages():
    loaded = _imported_after("import sim.engine")
    assert "mesa" in loaded and "scipy" not in loaded and "networkx" not in loaded
    code = ("import sim.engine, mesa, mesa.space, mesa.experimental.continuous_space as cs\n"
            "assert issubclass(sim.engine.GrowthModel, mesa.Model)\n"
            "assert mesa.space.NetworkGrid.__name__ == 'NetworkGrid'\n"
            "assert cs.ContinuousSpace is mesa.experimental.continuous_space.ContinuousSpace")
    assert {"scipy", "networkx"} <= set(_imported_after(code))  # loaded on first use, as Mesa would


def test_a_compiled_function_compiles_on_first_call():
    code = ("from sim import kernels\nimport sys\nassert 'numba' not in sys.modules\n"
            "import numpy as np\nkernels.row_contains  # noqa\n")
    assert "numba" not in _imported_after(code)
    from sim import kernels

    assert kernels.row_contains.py_func.__name__ == "row_contains"
    assert repr(kernels.row_contains).startswith("<compiled function sim.kernels.row_contains")


def test_the_fast_yaml_path_reads_every_shipped_file_as_the_bounded_loader_does():
    files = [*ROOT.joinpath("scenarios").rglob("*.yaml"), *ROOT.joinpath("experiments").rglob("*.yaml")]
    fast = 0
    for path in files:
        text = path.read_text()
        assert repr(parse_yaml(text)) == repr(yaml.load(text, Loader=yaml.SafeLoader)), path  # noqa: S506
        fast += _within_bounds(text)
    assert fast >= len(files) // 2  # most take the fast path


@pytest.mark.parametrize("text", ["a: &x [1, 2]\nb: *x\n", "[" * MAX_YAML_DEPTH + "]" * MAX_YAML_DEPTH,
                                  "a:\n" + "".join(" " * k + f"k{k}:\n" for k in range(1, MAX_YAML_DEPTH + 2)) + " " * (MAX_YAML_DEPTH + 2) + "1\n"])
def test_what_could_exceed_the_bounds_never_takes_the_fast_path(text):
    assert not _within_bounds(text)
