"""The one user-decision model every mechanism shares (DESIGN section 3).

Mechanisms never invent their own user. They move a few latent quantities — ``satisfaction``
(engagement capital), ``need`` (a stock of latent demand), exposure to the platform — or add
today's boosts (visit log-odds, purchase relevance, discounts, hazard ratios); the functions here turn
those into the probabilities of visiting, buying, inviting and churning.

Sources of the functional forms:
- purchase saturating in need and relevance: 1 - exp(-intensity), so demand pulled forward by a
  promotion leaves the need stock low afterwards (the post-promotion dip follows by construction);
- churn: a proportional-hazards model with gamma frailty, so cohort retention flattens as the frail
  leave (as in the shifted-beta-geometric model of Fader and Hardie 2007), with hazard falling in
  tenure, satisfaction and the number of friends on the platform;
- social response: each further recommendation received counts for less (saturation) and repeats
  from the same sender fade (Leskovec, Adamic and Huberman 2007);
- incentives act through a saturating response to money, reward / (reward + half-saturation).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from sim import kernels
from sim.population import N_STATES, Population, State


def logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def incentive_response(reward_rmb: float | np.ndarray, half_rmb: float) -> np.ndarray | float:
    """Saturating response to a money incentive in [0, 1): half the maximum at ``half_rmb``."""
    reward = np.maximum(reward_rmb, 0.0)
    return reward / (reward + half_rmb) if half_rmb > 0 else np.where(reward > 0, 1.0, 0.0)


def nudge_satisfaction(pop: Population, idx: np.ndarray, delta: np.ndarray | float) -> None:
    """Add ``delta`` to the satisfaction of people ``idx`` (repeats add up), kept within [0, 1].

    The one way mechanisms move satisfaction: relevant recommendations, rewards and tier upgrades raise
    it; irrelevant pushes, delivery delays and outages lower it."""
    if np.size(idx) == 0:
        return
    idx, delta = np.asarray(idx), np.asarray(delta, dtype=np.float32).reshape(-1)
    if delta.size not in (1, idx.size):  # the kernel does not check bounds
        raise ValueError(f"nudge_satisfaction: {delta.size} deltas for {idx.size} people")
    kernels.add_clipped(idx, delta, pop.satisfaction, np.float32(0), np.float32(1))  # a scalar delta applies to all


def stochastic_round(x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """floor(x + u): an integer with mean x that never falls when x rises for the same u."""
    return np.floor(x + u).astype(np.int64)


# --------------------------------------------------------------------------------- lookup tables
# Speed (DESIGN section 5): functions of a small integer (age in days, visits, friends, state) are
# looked up in a table computed once with the same numpy expression, instead of calling pow / exp /
# log1p for every user every day; the values are the same bit for bit. Each table is sized to cover
# every argument its caller can meet (ages and visits up to the day, friends up to the largest degree).
NO_VALUES = np.zeros(0, dtype=np.float32)  # an absent per-person boost, ratio or offer (kernels' argument)


def _pow2(k: int) -> int:
    return 1 << max(int(k), 1).bit_length()


@lru_cache(maxsize=64)
def _table(kind: str, a: float, b: float, size: int) -> np.ndarray:
    x = np.arange(size, dtype=np.float64)
    if kind == "tenure":  # (1 + age / a) ** -b
        t = (1.0 + x / a) ** (-b)
    elif kind == "friends":  # (1 + friends) ** -b
        t = (1.0 + x) ** (-b)
    elif kind == "novelty":  # 1 + a * exp(-age / b)
        t = 1.0 + a * np.exp(-x / b)
    elif kind == "power":  # a ** k
        t = a ** x
    elif kind == "halving":  # 0.5 ** (k / a)
        t = 0.5 ** (x / a)
    else:  # "log1p"
        t = np.log1p(np.arange(size, dtype=np.int64))
    t.flags.writeable = False
    return t


def _state_table(values: dict[int, float], default: float) -> np.ndarray:
    t = np.full(N_STATES, default, dtype=np.float64)
    for state, v in values.items():
        t[state] = v
    return t


# --------------------------------------------------------------------------------- visit
def visit_probability(pop: Population, idx: np.ndarray, day: int, cfg, boost_logit: np.ndarray | None = None) -> np.ndarray:
    """Daily visit probability of users ``idx``: segment rate, satisfaction, habit, state, boosts
    (``day``: today; nobody has more than ``day + 1`` visits)."""
    state_odds = _state_table({State.DORMANT: np.log(max(cfg.dormant_odds, 1e-9)), State.LOYAL: np.log(cfg.loyal_odds)}, 0.0)
    return kernels.visit_probability(
        idx, pop.segment, pop.satisfaction, pop.seg["satisfaction"], logit(pop.seg["visit_rate"]), pop.visits,
        _table("log1p", 0.0, 0.0, _pow2(day + 2)), pop.state, state_odds, NO_VALUES if boost_logit is None else boost_logit,
        cfg.satisfaction_weight, cfg.habit_weight)


# --------------------------------------------------------------------------------- purchase
def need_now(pop: Population, idx: np.ndarray, day: int, cfg) -> np.ndarray:
    """Latent demand of ``idx`` today: accrued lazily since it was last brought up to date."""
    return kernels.need_now(idx, day, pop.segment, pop.state, pop.need, pop.need_day, pop.seg["need_rate"],
                            need_ratio_table(cfg), cfg.need_cap)


def need_ratio_table(cfg) -> np.ndarray:
    """Demand accrual by lifecycle state, relative to active users (loyal users need more)."""
    return _state_table({State.LOYAL: cfg.loyal_need_ratio}, 1.0)


def add_need(pop: Population, idx: np.ndarray, day: int, amount: np.ndarray | float, cfg) -> None:
    """Add latent demand (orders) to people ``idx`` today, e.g. the expansion a festival creates.

    The stock is first brought up to date, so later draws today see it; it never exceeds ``need_cap``."""
    if np.size(idx) == 0:
        return
    amount = np.asarray(amount, dtype=np.float64).reshape(-1)
    if amount.size not in (1, np.size(idx)):  # the kernel does not check bounds
        raise ValueError(f"add_need: {amount.size} amounts for {np.size(idx)} people")
    kernels.add_need(np.asarray(idx), day, pop.segment, pop.state, pop.need, pop.need_day, pop.seg["need_rate"],
                     need_ratio_table(cfg), cfg.need_cap, amount)


def expected_basket_rmb(pop: Population, idx: np.ndarray, price_level: float = 1.0) -> np.ndarray:
    """Mean order value (RMB, before discounts) of people ``idx``: what a coupon or points are worth
    to them (category price levels average 1)."""
    return pop.seg["basket_rmb"][pop.segment[idx]] * price_level


def purchase_probability(need: np.ndarray, relevance: np.ndarray, deal_factor: np.ndarray, conversion: float) -> np.ndarray:
    """P(buy | visit) = 1 - exp(-conversion x need x relevance x deal factor)."""
    return -np.expm1(-conversion * need * relevance * deal_factor)


def deal_factor(pop: Population, idx: np.ndarray, discount: np.ndarray) -> np.ndarray:
    """How a discount (fraction of price) raises purchase intensity for each person's segment."""
    return 1.0 + pop.seg["deal_sensitivity"][pop.segment[idx]] * discount


# --------------------------------------------------------------------------------- churn
def churn_hazard(pop: Population, idx: np.ndarray, day: int, cfg, hazard_ratio: np.ndarray | None = None) -> np.ndarray:
    """Daily churn hazard of users ``idx`` (proportional hazards with individual frailty)."""
    return kernels.churn_hazard(
        idx, day, pop.joined_day, pop.segment, pop.frailty, pop.satisfaction, pop.seg["satisfaction"], pop.friends,
        pop.state, np.float32(cfg.base_hazard), _table("tenure", cfg.tenure_days, cfg.tenure_decay, _pow2(day + 1)),
        cfg.satisfaction_weight, _table("friends", 0.0, cfg.friends_weight, _pow2(pop.max_friends + 1)), bool(cfg.friends_weight),
        _state_table({State.LOYAL: cfg.loyal_ratio, State.DORMANT: cfg.dormant_ratio}, 1.0),
        NO_VALUES if hazard_ratio is None else hazard_ratio)


def churn_probability(hazard: np.ndarray) -> np.ndarray:
    return -np.expm1(-hazard)


def reactivation_probability(idle_days: np.ndarray, base: float, half_life_days: float) -> np.ndarray:
    """Chance a message or coupon brings a lapsed user back: ``base`` at the moment of lapsing, halving
    every ``half_life_days`` of absence (habits and the app itself are forgotten)."""
    return base * 0.5 ** (np.maximum(idle_days, 0) / half_life_days)


def consume_need(pop, idx: np.ndarray, day: int, cfg) -> None:
    """One unit of latent demand of each of ``idx`` (distinct people) used up by an order outside
    the core purchase (a team's, an unlocked assist's): the stock brought up to date, less one, at
    least 0, as the core purchase does (``cfg``: the purchase behaviour)."""
    kernels.consume_need(idx, day, pop.segment, pop.state, pop.need, pop.need_day, pop.seg["need_rate"],
                          need_ratio_table(cfg), cfg.need_cap)


# --------------------------------------------------------------------------------- sharing
def sharing_propensity(pop: Population, idx: np.ndarray, day: int, cfg) -> np.ndarray:
    """Multiplier on how much users ``idx`` share and invite today: satisfied users share more, and
    new users most of all (the novelty of a just-joined platform fades over ``novelty_days``)."""
    novelty = _table("novelty", cfg.novelty_boost, cfg.novelty_days, _pow2(day + 2))  # ages up to day + 1
    return kernels.sharing_propensity(np.asarray(idx), day, pop.joined_day, pop.satisfaction, novelty)


# --------------------------------------------------------------------------------- social response
def power_table(base: float, size: int) -> np.ndarray:
    """``base ** k`` for k in 0 .. size - 1 (at least): the social response to an invitation is
    ``saturation ** (invitations received before) x repeat_fade ** (repeats from the same sender)``,
    looked up in two such tables (``sim.kernels.social_events``)."""
    return _table("power", base, 0.0, _pow2(size))


# --------------------------------------------------------------------------------- requests to friends
# Group buys (拼团) and friend assists (助力 / 砍价) both ask friends for something. Being asked often
# wears people out: their response to the next request fades and their satisfaction falls. The
# memory of recent requests is one shared per-person quantity, so a friend pestered by team links is
# also slower to click an assist link (the columns exist only once such a mechanism is enabled).
ASKED, ASKED_DAY, ASKED_SCRATCH = "asked_recently", "asked_recently_day", "asked_today_scratch"


def ensure_ask_memory(pop: Population) -> None:
    """Create the shared memory of recent requests (idempotent; called in a mechanism's setup)."""
    if ASKED not in pop.extra:
        pop.add_column(ASKED, np.float32)
        pop.add_column(ASKED_DAY, np.int32)
        pop.add_column(ASKED_SCRATCH, np.int32)  # all 0 between calls of note_asks


def recent_asks(pop: Population, idx: np.ndarray, day: int, cfg) -> np.ndarray:
    """Requests ``idx`` received lately, each worth 0.5 ** (days since / ask_half_life_days)."""
    since = day - pop.extra[ASKED_DAY][idx]
    return pop.extra[ASKED][idx] * _halving_table(day, cfg)[since]


def _halving_table(day: int, cfg) -> np.ndarray:
    """0.5 ** (days since / ask_half_life_days) for every days since a request: 0 .. day."""
    return _table("halving", cfg.ask_half_life_days, 0.0, _pow2(day + 1))


def ask_response(recent: np.ndarray, cfg) -> np.ndarray:
    """Multiplier on the response to one more request after ``recent`` recent ones (fatigue)."""
    return cfg.ask_fade ** recent


def note_asks(pop: Population, idx: np.ndarray, day: int, cfg) -> np.ndarray:
    """Record one request per entry of ``idx`` (repeats allowed) and annoy the over-asked: each
    request beyond ``ask_tolerance`` recent ones costs ``ask_annoyance`` satisfaction. Returns the
    distinct people asked (in order of their first request)."""
    if idx.size == 0:
        return idx
    x = pop.extra
    return kernels.note_asks(np.asarray(idx), day, x[ASKED], x[ASKED_DAY], _halving_table(day, cfg), pop.satisfaction,
                             float(cfg.ask_tolerance), float(cfg.ask_annoyance), x[ASKED_SCRATCH])


# --------------------------------------------------------------------------------- exposures
class Exposures:
    """Exposure events collected for one day's adoption stage.

    Each event is one chance for ``receiver`` to join through ``channel`` with probability ``prob``.
    Social events have a ``sender`` (a user) and, on a stored graph, the ``edge`` they travelled; they
    are subject to saturation, same-sender fading and, under complex contagion, the threshold.

    The events are written into growing column buffers as they are added (speed: a day adds a few
    dozen batches, and one concatenation per column and a filled constant column per batch cost
    more than the copies); ``capacity`` is the room to start with (the engine passes yesterday's
    count).
    """

    COLUMNS = (np.int64, np.int8, np.float64, np.int64, np.int64)  # receiver, channel, prob, sender, edge

    def __init__(self, capacity: int = 1024):
        self._size = 0
        self._cols = tuple(np.empty(max(int(capacity), 16), dtype=dt) for dt in self.COLUMNS)

    def add(self, receiver: np.ndarray, channel: int, prob: np.ndarray | float,
            sender: np.ndarray | None = None, edge: np.ndarray | None = None) -> None:
        n = np.size(receiver)
        if n == 0:
            return
        a, b = self._size, self._size + n
        if b > self._cols[0].size:
            grown = []
            for col in self._cols:
                wider = np.empty(max(2 * col.size, b), dtype=col.dtype)
                wider[:a] = col[:a]
                grown.append(wider)
            self._cols = tuple(grown)
        r, c, p, s, e = self._cols
        r[a:b] = receiver
        c[a:b] = channel
        p[a:b] = prob  # one value for all, or one per event
        s[a:b] = -1 if sender is None else sender
        e[a:b] = -1 if edge is None else edge
        self._size = b

    def __len__(self) -> int:
        return self._size

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The events' receiver, channel, prob, sender and edge: views of the buffers, which the
        caller may change (the adoption stage compacts them in place)."""
        return tuple(col[: self._size] for col in self._cols)


def rank_within(keys: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... for successive occurrences of each key, in array order."""
    if keys.size <= SMALL:  # one compiled call instead of some ten numpy calls
        return kernels.rank_within(np.asarray(keys, dtype=np.int64))
    return occurrences(keys)[0]


SMALL = 1024  # keys ranked by sim.kernels.rank_within (larger arrays: the packed-key sort)


def occurrences(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``rank_within(keys)``, the distinct keys and how often each occurs, from one sort."""
    if keys.size == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e, e
    order, sk = stable_order(keys)
    n = sk.size
    start = np.empty(n, dtype=bool)
    start[0] = True
    np.not_equal(sk[1:], sk[:-1], out=start[1:])
    begin = start.nonzero()[0]
    counts = np.empty(begin.size, dtype=np.int64)
    counts[-1] = n - begin[-1]
    np.subtract(begin[1:], begin[:-1], out=counts[:-1])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(begin, counts)
    return rank, sk[begin], counts


def stable_order(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``order = argsort(keys, kind="stable")`` and ``keys[order]`` for integer keys, by one plain
    sort of (key, position) packed into an int64 (several times faster than a stable argsort)."""
    n = keys.size
    if n < 256:  # few keys: fewer numpy calls this way
        order = np.argsort(keys, kind="stable")
        return order, keys[order]
    lo, hi = int(keys.min()), int(keys.max())
    bits = max(n - 1, 1).bit_length()
    if (hi - lo).bit_length() + bits > 62:
        order = np.argsort(keys, kind="stable")
        return order, keys[order]
    packed = ((keys.astype(np.int64) - lo) << bits) | np.arange(n, dtype=np.int64)
    packed.sort()
    return packed & ((1 << bits) - 1), (packed >> bits) + lo
