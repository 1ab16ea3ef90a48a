"""The one small interface every mechanism implements.

A mechanism is a frozen ``Config`` dataclass (documented units and ranges, always with ``enabled``)
and a class with ``setup(model)`` and a method per daily stage it hooks. Hooks run at fixed points
of the stage loop in ``sim/engine.py``:

=========  ===================================================================================
stage      when the hook runs and what it typically does
=========  ===================================================================================
exposure   before adoption is decided: add exposure events (ads, content reach, shares)
adoption   after the core decided who joined: see ``today.new_users`` (rewards, welcome coupons)
visit      before the core visit draw: add visit log-odds boosts (push, promotions), reactivate
browse     after visitors are known: set relevance and discounts for today's visitors
purchase   after the core purchase draw: see ``today.buyers`` (points, team orders, fraud orders)
share      send invitations and shares; they are evaluated in tomorrow's adoption stage
retention  before the core churn draw: set hazard ratios, contact dormant users (win-back)
settle     after the core books money: tiers, fraud detection, counters
=========  ===================================================================================

Rules (checked for every registered mechanism by ``tests/test_mechanism_contract.py``):
mechanisms change state only through the arrays the model hands them (and make people users or
stop them being users only through exposures, ``model.reactivate`` and ``model.churn``, which keep
the user index up to date), book money only through
``model.economics``, count only through ``model.today.count``, draw randomness only from
``self.rng(model)`` (their own stream), and a disabled mechanism is never instantiated, so it costs
nothing and consumes no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from sim.model_view import Model
from sim.schema import param

STAGES = ("exposure", "adoption", "visit", "browse", "purchase", "share", "retention", "settle")


@dataclass(frozen=True)
class MechanismConfig:
    enabled: bool = param(False, doc="switch the mechanism on")


class Mechanism:
    name: ClassVar[str]
    Config: ClassVar[type[MechanismConfig]]
    #: daily counter columns this mechanism writes (each becomes a column of daily.parquet)
    columns: ClassVar[tuple[str, ...]] = ()
    #: money accounts it books: account -> category (revenue, incentive, acquisition, fraud)
    accounts: ClassVar[dict[str, str]] = {}
    #: acquisition channels through which it brings new users
    channels: ClassVar[tuple[str, ...]] = ()
    #: incentive account -> the config field holding the share of it the platform funds (the rest is
    #: the merchants'); an incentive not named here is the platform's alone
    funding: ClassVar[dict[str, str]] = {}
    #: incentive accounts paid for bringing someone new (a referral reward): the cost of growth, which
    #: the terminal value of the users already there does not carry forward
    for_new_users: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: MechanismConfig):
        self.config = config

    @classmethod
    def stages(cls) -> tuple[str, ...]:
        """The stages this mechanism hooks: those it defines a method for."""
        return tuple(s for s in STAGES if callable(getattr(cls, s, None)))

    def platform_share(self, account: str) -> float:
        """The share of ``account`` the platform funds (1 for anything but a co-funded incentive)."""
        field = self.funding.get(account)
        return 1.0 if field is None else float(getattr(self.config, field))

    def setup(self, model: Model) -> None:
        """Called once after the population exists and before day 0."""

    def rng(self, model: Model) -> np.random.Generator:
        """Today's random stream of this mechanism (independent of every other stream)."""
        return model.streams.today(f"mechanism.{self.name}")

    # ------------------------------------------------------------------ what mechanisms offer each other
    # Every mechanism has these; those that offer the capability override them. A mechanism that
    # needs one asks all the enabled mechanisms (``model.mechanisms``, in hook order), never a name.
    def screen(self, model: Model, attempts: int, rng: np.random.Generator) -> int:
        """Fraud screening: how many of ``attempts`` fraudulent sign-ups or orders this mechanism
        catches, drawing with the caller's ``rng`` (0 for a mechanism that screens nothing)."""
        return 0

    def farmable(self, model: Model) -> dict[str, float]:
        """What a fake account could farm today from this mechanism (RMB), by when it pays:
        ``signup``, ``order`` (per subsidised order) or ``daily`` (none: empty)."""
        return {}

    def relevance_rate(self, model: Model, users: np.ndarray) -> np.ndarray | None:
        """Chance content this mechanism chooses for each of ``users`` matches their favourite
        category (None: it chooses nothing users see)."""
        return None


#: every mechanism class by its config name, as its module registers it (``sim.mechanisms.REGISTRY``
#: orders them by hook order)
REGISTERED: dict[str, type[Mechanism]] = {}


def register(cls: type[Mechanism]) -> type[Mechanism]:
    """Class decorator: make a mechanism nameable by configurations."""
    if cls.name in REGISTERED:
        raise ValueError(f"mechanism {cls.name!r} registered twice")
    REGISTERED[cls.name] = cls
    return cls
