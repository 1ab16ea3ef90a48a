"""growth-sim: an agent-based simulator of user growth on social e-commerce platforms.

Python entry points::

    import sim
    result = sim.run("default", overrides=["mechanisms.referral.inviter_reward=20"], seed=1)
    result.daily       # one row per day (DESIGN section 4 columns)
    result.summary     # horizon metrics
    comparison = sim.compare(["default", "referral_double"], replicates=30)
    comparison.table, comparison.differences   # horizon metrics with intervals, paired differences
    check = sim.validate(quick=True)   # stylized facts: check.table, check.passed
    regression = sim.run_checks()      # rerun experiments/baselines/: regression.passed, regression.table
    s = sim.sensitivity("growth_drivers")      # Morris / Sobol indices: s.indices, s.ranking("profit")
    c = sim.calibrate("retention_benchmark")   # fitted parameters: c.best, c.trials, c.path
    o = sim.optimise("referral_budget")        # the front after re-evaluation: o.front, o.trials, o.path (study.db)
"""

from typing import TYPE_CHECKING

from sim.version import __version__

#: Every public name and the module that defines it. They are imported on first use (PEP 562), so that
#: ``import sim`` and the commands that simulate nothing (``sim keys``, ``sim scenarios``, a refused
#: value) do not pay for the engine, Mesa, pandas or the compiled kernels.
_PUBLIC = {
    "SimConfig": "sim.config", "compose": "sim.config",
    "GrowthModel": "sim.engine",
    "Comparison": "sim.experiment", "compare": "sim.experiment",
    "RunResult": "sim.runs", "load_run": "sim.runs", "run": "sim.runs", "simulate": "sim.runs",
    "ConfigError": "sim.schema", "SimulationError": "sim.schema",
    "Validation": "sim.analysis.validation", "validate": "sim.analysis.validation",
    "CheckResult": "sim.check", "run_checks": "sim.check",
    "Sensitivity": "sim.analysis.sensitivity", "sensitivity": "sim.analysis.sensitivity",
    "Calibration": "sim.analysis.calibration", "calibrate": "sim.analysis.calibration",
    "Optimisation": "sim.analysis.optimisation", "optimise": "sim.analysis.optimisation", "optimize": "sim.analysis.optimisation",
}


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})


if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
    from sim.analysis.calibration import Calibration, calibrate
    from sim.analysis.optimisation import Optimisation, optimise, optimize
    from sim.analysis.sensitivity import Sensitivity, sensitivity
    from sim.analysis.validation import Validation, validate
    from sim.check import CheckResult, run_checks
    from sim.config import SimConfig, compose
    from sim.engine import GrowthModel
    from sim.experiment import Comparison, compare
    from sim.runs import RunResult, load_run, run, simulate
    from sim.schema import ConfigError, SimulationError

__all__ = ["Calibration", "CheckResult", "Comparison", "ConfigError", "GrowthModel", "Optimisation", "RunResult", "SimConfig", "Sensitivity",
           "SimulationError", "Validation", "__version__",
           "calibrate", "compare", "compose", "load_run", "optimise", "optimize", "run", "run_checks", "sensitivity", "simulate", "validate"]
