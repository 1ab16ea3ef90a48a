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

from sim.version import __version__  # noqa: E402
from sim.config import SimConfig, compose  # noqa: E402
from sim.engine import GrowthModel  # noqa: E402
from sim.experiment import Comparison, compare  # noqa: E402
from sim.runs import RunResult, load_run, run, simulate  # noqa: E402
from sim.schema import ConfigError, SimulationError  # noqa: E402
from sim.analysis.validation import Validation, validate  # noqa: E402
from sim.check import CheckResult, run_checks  # noqa: E402
from sim.analysis.sensitivity import Sensitivity, sensitivity  # noqa: E402
from sim.analysis.calibration import Calibration, calibrate  # noqa: E402
from sim.analysis.optimisation import Optimisation, optimise, optimize  # noqa: E402

__all__ = ["Calibration", "CheckResult", "Comparison", "ConfigError", "GrowthModel", "Optimisation", "RunResult", "SimConfig", "Sensitivity",
           "SimulationError", "Validation", "__version__",
           "calibrate", "compare", "compose", "load_run", "optimise", "optimize", "run", "run_checks", "sensitivity", "simulate", "validate"]
