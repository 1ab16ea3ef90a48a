"""Platform mechanisms: one module per mechanism, one interface, one registry keyed by config name.

Only classes in ``REGISTRY`` can be named by a configuration; a config file cannot make the program
import anything else. The registry order is the order in which hooks of the same stage run.
"""

from __future__ import annotations

from sim.mechanisms.base import STAGES, Mechanism, MechanismConfig

REGISTRY: dict[str, type[Mechanism]] = {}


def register(cls: type[Mechanism]) -> type[Mechanism]:
    if cls.name in REGISTRY:
        raise ValueError(f"mechanism {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


# Import order is hook order within a stage.
from sim.mechanisms import paid_acquisition, referral  # noqa: E402,F401
from sim.mechanisms import group_buy, assist, distribution, content  # noqa: E402,F401
from sim.mechanisms import recommendations, promotions, loyalty, push, winback, fraud, service  # noqa: E402,F401

__all__ = ["REGISTRY", "STAGES", "Mechanism", "MechanismConfig", "register"]
