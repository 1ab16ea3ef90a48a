"""Platform mechanisms: one module per mechanism, one interface, one registry keyed by config name.

Only classes in ``REGISTRY`` can be named by a configuration; a config file cannot make the program
import anything else. ``HOOK_ORDER`` is the order in which hooks of the same stage run (a hook sees
what the hooks before it did today), and the order of ``REGISTRY``.
"""

from __future__ import annotations

from sim.mechanisms import (  # noqa: F401  (each module registers its mechanism)
    assist, content, distribution, fraud, group_buy, loyalty, paid_acquisition, promotions, push, recommendations,
    referral, service, winback,
)
from sim.mechanisms.base import REGISTERED, STAGES, Mechanism, MechanismConfig, register

#: The order in which the hooks of one stage run: acquisition first (paid, then referral's rewards),
#: the social deals (group buying, assists), distribution and content; then what shapes a visit
#: (recommendations, promotions, loyalty, push), win-back, and last fraud and service, which see
#: everything the others offered and booked today.
HOOK_ORDER = ("paid_acquisition", "referral", "group_buy", "assist", "distribution", "content", "recommendations",
              "promotions", "loyalty", "push", "winback", "fraud", "service")

if set(REGISTERED) != set(HOOK_ORDER):
    raise RuntimeError(f"sim.mechanisms: registered {sorted(REGISTERED)} but HOOK_ORDER names {sorted(HOOK_ORDER)}")
REGISTRY: dict[str, type[Mechanism]] = {name: REGISTERED[name] for name in HOOK_ORDER}

__all__ = ["HOOK_ORDER", "REGISTRY", "STAGES", "Mechanism", "MechanismConfig", "register"]
