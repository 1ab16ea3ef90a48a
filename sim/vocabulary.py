"""The words the model and its outputs share: lifecycle states, acquisition channels, order sources.

Every module that names a state, a channel or what drove an order takes it from here, and each
mechanism's declared channels are checked against ``CHANNELS`` (``tests/test_structure.py``). The
codes are what the per-person columns hold; the names are what output columns and reports show.
"""

from __future__ import annotations


class State:
    """Lifecycle states: the int8 codes of ``Population.state``. Plain ints, not an ``IntEnum``: numpy
    compares an int8 column with an ``IntEnum`` member (an int subclass, so first made an int64
    array) about four times slower than with an int, and the stages make hundreds of such
    comparisons a day."""

    POTENTIAL = 0
    AWARE = 1
    ACTIVE = 2
    LOYAL = 3
    DORMANT = 4
    CHURNED = 5


#: the codes as module constants, for compiled kernels (numba reads module globals, not class attributes)
POTENTIAL, AWARE, ACTIVE, LOYAL, DORMANT, CHURNED = (State.POTENTIAL, State.AWARE, State.ACTIVE, State.LOYAL,
                                                      State.DORMANT, State.CHURNED)
STATE_NAMES = ("potential", "aware", "active", "loyal", "dormant", "churned")  # by code
N_STATES = len(STATE_NAMES)

#: how a user came to the platform (the code in ``Population.channel`` is the position here); each
#: becomes a daily column ``new_<channel>``
CHANNELS = ("organic", "paid", "referral", "group_buy", "assist", "content", "distribution")
NO_CHANNEL = -1  # a person who never joined

#: what drove an order; each becomes a daily column ``orders_<source>``
ORDER_SOURCES = ("organic", "promotion", "recommendation", "group_buy", "assist", "content", "distribution", "livestream")

__all__ = ["ACTIVE", "AWARE", "CHANNELS", "CHURNED", "DORMANT", "LOYAL", "NO_CHANNEL", "N_STATES", "ORDER_SOURCES",
           "POTENTIAL", "STATE_NAMES", "State"]
