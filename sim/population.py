"""People as columns of numpy arrays (a struct of arrays), with lifecycle states and segments.

One row per person in the graph: the graph is the addressable market, and users are the rows whose
state is past ``AWARE``. The lifecycle (seed documents 000 and 001: potential -> active -> loyal ->
churned) is

    POTENTIAL -> AWARE -> ACTIVE <-> LOYAL
                            |  ^       |
                            v  |       v
                          DORMANT -> CHURNED  (win-back can bring dormant and churned users back)

Mechanisms that need their own per-person quantities (points, tier, push fatigue, ...) add columns
with :meth:`Population.add_column` in their ``setup``; nothing holds a Python object per person.

Who is a user is also kept as an index (``alive()``, ``non_users_mask()``, ``count_non_users()``), so
that the daily stages touch only users instead of scanning everyone. The index follows the engine's
transitions: people become users through exposures (``GrowthModel._join``) or ``model.reactivate``,
and stop through ``model.churn``. Moves between active, loyal and dormant may be written to
``state`` directly; joining or leaving may not (the mechanism contract test checks the index against
``state`` every day with each mechanism on).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim import kernels
from sim.vocabulary import CHANNELS, N_STATES, NO_CHANNEL, STATE_NAMES, State  # noqa: F401  (State and its names, as before)


class Population:
    """Per-person columns. Row ``i`` is graph node ``i``."""

    def __init__(self, cfg: Any, n: int, rng: np.random.Generator):
        """``n`` people drawn with ``rng`` from ``cfg``, the run's validated ``SimConfig`` (its population
        and catalogue settings are read)."""
        self.n = n
        self.segment_names = tuple(cfg.population.segments)
        segs = list(cfg.population.segments.values())
        shares = np.array([s.share for s in segs])
        # Exact segment counts (largest remainder), then a random assignment of rows to segments.
        counts = np.floor(shares * n).astype(np.int64)
        counts[np.argsort(-(shares * n - counts), kind="stable")[: n - counts.sum()]] += 1
        self.segment = rng.permutation(np.repeat(np.arange(len(segs), dtype=np.int8), counts))
        # Segment parameters, looked up per person with seg_param[name][segment].
        self.seg = {
            field: np.array([getattr(s, field) for s in segs], dtype=np.float64)
            for field in ("visit_rate", "need_rate", "basket_rmb", "share_rate", "invite_propensity",
                          "deal_sensitivity", "content_affinity", "frailty", "satisfaction")
        }
        cv = cfg.population.frailty_cv
        base = rng.gamma(1.0 / cv**2, cv**2, size=n) if cv > 1e-6 else np.ones(n)  # tiny cv: alike
        self.frailty = (base * self.seg["frailty"][self.segment]).astype(np.float32)
        self.favourite = rng.choice(cfg.catalogue.categories, size=n, p=category_popularity(cfg)).astype(np.int16)
        # Each person's own visit log-odds (behaviour.propensity_of), drawn last so that the columns
        # above do not depend on it.
        vcv = cfg.population.visit_cv
        self.propensity_draw = rng.gamma(1.0 / vcv**2, vcv**2, size=n) if vcv > 1e-6 else None
        self.propensity = np.zeros(n, dtype=np.float32)

        self.state = np.zeros(n, dtype=np.int8)
        self.joined_day = np.full(n, -1, dtype=np.int32)
        self.aware_day = np.full(n, -1, dtype=np.int32)
        self.channel = np.full(n, NO_CHANNEL, dtype=np.int8)
        self.referrer = np.full(n, -1, dtype=np.int32)
        self.last_visit = np.full(n, -1, dtype=np.int32)
        self.churn_day = np.full(n, -1, dtype=np.int32)
        self.visits = np.zeros(n, dtype=np.int32)
        self.orders = np.zeros(n, dtype=np.int32)
        self.spend = np.zeros(n, dtype=np.float64)
        self.satisfaction = self.seg["satisfaction"][self.segment].astype(np.float32)
        self.need = np.zeros(n, dtype=np.float32)
        self.need_day = np.zeros(n, dtype=np.int32)  # day at which `need` was last brought up to date
        self.invites_received = np.zeros(n, dtype=np.int16)
        self.friends = np.zeros(n, dtype=np.int32)  # friends who are users (alive)
        self.adopted_friends = np.zeros(n, dtype=np.int32)  # friends who ever joined (complex contagion's count)
        self.max_friends = max(n - 1, 0)  # a bound on friends (the engine sets the graph's largest degree)
        self.extra: dict[str, np.ndarray] = {}
        # Who is a user, kept up to date by the engine's transitions (GrowthModel._join, reactivate,
        # churn) so that the daily stages work on the users instead of scanning everyone
        # (DESIGN section 5: work only on the people a stage touches). Read-only outside
        # ``mark_users`` / ``unmark_users``; tests check they always agree with ``state``.
        self._users = np.zeros(0, dtype=np.int64)  # sorted indices of alive users
        self._non_user = np.ones(n, dtype=bool)  # never joined (potential or aware)
        self._joined = 0  # people who ever joined
        self.need_scale = 1.0  # today's demand multiplier from the catalogue's breadth (behaviour.follow_catalogue)
        self.tenure_need = np.ones(1)  # demand multiplier by age in days (behaviour.set_demand_growth)
        self.outside = 0  # people not yet in the market (a growing market: see ``leave_market``, ``enter``)
        self._seen = np.zeros(n, dtype=bool)  # scratch of the user-index kernels (all false between calls)

    # ------------------------------------------------------------------ columns
    def add_column(self, name: str, dtype, fill=0) -> np.ndarray:
        """A per-person column owned by a mechanism (``pop.extra[name]``)."""
        if name in self.extra:
            raise ValueError(f"column {name!r} already exists")
        col = np.full(self.n, fill, dtype=dtype)
        self.extra[name] = col
        return col

    def param(self, name: str, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """A segment parameter for the people ``idx``."""
        return self.seg[name][self.segment[idx]]

    # ------------------------------------------------------------------ named selections
    def users_mask(self) -> np.ndarray:
        """People who joined and have not churned (active, loyal or dormant)."""
        return (self.state >= State.ACTIVE) & (self.state <= State.DORMANT)

    def alive(self) -> np.ndarray:
        """Indices of users (active, loyal or dormant), ascending (a copy of the kept index)."""
        return self._users.copy()

    @property
    def user_index(self) -> np.ndarray:
        """The kept index of users itself, without a copy: for reading in the same stage only (it
        is replaced when people join or leave)."""
        return self._users

    def engaged(self) -> np.ndarray:
        """Indices of active or loyal users, ascending."""
        users = self._users
        return users[self.state[users] != State.DORMANT]

    def non_users_mask(self) -> np.ndarray:
        """People who never joined (potential or aware), as a new boolean array (a copy of the kept
        mask: a memory copy instead of a comparison over everyone)."""
        return self._non_user.copy()

    def non_users_view(self) -> np.ndarray:
        """The kept mask of people who never joined itself, without a copy: for reading at once
        (it changes when people join)."""
        return self._non_user

    def count_users(self) -> int:
        """How many people are users (active, loyal or dormant), without a pass over everyone."""
        return int(self._users.size)

    def count_non_users(self) -> int:
        """How many people in the market never joined (without a pass over everyone)."""
        return self.n - self._joined - self.outside

    def market_size(self) -> int:
        """People in the market today: everyone, unless the market grows (``population.entry``)."""
        return self.n - self.outside

    # ------------------------------------------------------------------ a growing market
    # People outside the market are rows like everyone else (the graph holds their ties), but no
    # exposure reaches them and no sampling of non-users picks them until they enter.
    def leave_market(self, idx: np.ndarray) -> None:
        """Set-up: people ``idx`` (who never joined) start outside the market."""
        self._non_user[idx] = False
        self.outside += int(np.size(idx))

    def enter(self, idx: np.ndarray) -> None:
        """People ``idx`` (outside the market) enter it today."""
        self._non_user[idx] = True
        self.outside -= int(np.size(idx))

    # ------------------------------------------------------------------ the user index
    # Called by the engine just before it changes the state of ``idx`` (any people, in any order,
    # repeats allowed): whoever is not yet a user becomes one, or whoever is one stops being one.
    def mark_users(self, idx: np.ndarray) -> None:
        self._users, never = kernels.add_users(self._users, np.asarray(idx, dtype=np.int64), self.state, State.ACTIVE,
                                               State.DORMANT, self._non_user, self._seen)
        self._joined += never

    def unmark_users(self, idx: np.ndarray) -> None:
        self._users = kernels.drop_users(self._users, np.asarray(idx, dtype=np.int64), self.state, State.ACTIVE,
                                         State.DORMANT, self._seen)

    def state_counts(self) -> np.ndarray:
        """People in each state. Users are counted over the user index; the churned are the people
        who ever joined and are not users; the aware take one comparison over everyone, and the
        rest never heard of the platform (a bincount over everyone first widens every int8 to int64;
        over the users, ``np.bincount`` of their states costs twice a compiled tally)."""
        counts = kernels.count_states(self._users, self.state, N_STATES)
        counts[State.CHURNED] = self._joined - self._users.size
        counts[State.AWARE] = np.count_nonzero(self.state == State.AWARE)
        counts[State.POTENTIAL] = self.n - self._joined - counts[State.AWARE] - self.outside
        return counts

    def nbytes(self) -> int:
        cols = [v for v in vars(self).values() if isinstance(v, np.ndarray)]
        return sum(c.nbytes for c in cols) + sum(c.nbytes for c in self.extra.values())


def category_popularity(cfg: Any) -> np.ndarray:
    """Zipf popularity of product categories (sums to 1)."""
    ranks = np.arange(1, cfg.catalogue.categories + 1, dtype=np.float64)
    w = ranks ** -cfg.catalogue.popularity_exponent
    return w / w.sum()


def channel_index(name: str) -> int:
    return CHANNELS.index(name)
