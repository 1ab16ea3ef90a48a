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

from dataclasses import dataclass, field

import numpy as np

from sim.population import Population, State


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
    delta = np.broadcast_to(np.asarray(delta, dtype=np.float32), np.shape(idx))
    np.add.at(pop.satisfaction, idx, delta)
    pop.satisfaction[idx] = np.clip(pop.satisfaction[idx], 0.0, 1.0)


def stochastic_round(x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """floor(x + u): an integer with mean x that never falls when x rises for the same u."""
    return np.floor(x + u).astype(np.int64)


# --------------------------------------------------------------------------------- visit
def visit_probability(pop: Population, idx: np.ndarray, cfg, boost_logit: np.ndarray | None = None) -> np.ndarray:
    """Daily visit probability of users ``idx``: segment rate, satisfaction, habit, state, boosts."""
    seg = pop.segment[idx]
    x = logit(pop.seg["visit_rate"])[seg]
    x = x + cfg.satisfaction_weight * (pop.satisfaction[idx] - pop.seg["satisfaction"][seg])
    x = x + cfg.habit_weight * np.log1p(pop.visits[idx])
    state = pop.state[idx]
    x = x + np.where(state == State.DORMANT, np.log(max(cfg.dormant_odds, 1e-9)), 0.0)
    x = x + np.where(state == State.LOYAL, np.log(cfg.loyal_odds), 0.0)
    if boost_logit is not None:
        x = x + boost_logit[idx]
    return logistic(x)


# --------------------------------------------------------------------------------- purchase
def need_now(pop: Population, idx: np.ndarray, day: int, cfg) -> np.ndarray:
    """Latent demand of ``idx`` today: accrued lazily since it was last brought up to date."""
    rate = pop.seg["need_rate"][pop.segment[idx]] * np.where(pop.state[idx] == State.LOYAL, cfg.loyal_need_ratio, 1.0)
    return np.minimum(cfg.need_cap, pop.need[idx] + rate * (day - pop.need_day[idx]))


def add_need(pop: Population, idx: np.ndarray, day: int, amount: np.ndarray | float, cfg) -> None:
    """Add latent demand (orders) to people ``idx`` today, e.g. the expansion a festival creates.

    The stock is first brought up to date, so later draws today see it; it never exceeds ``need_cap``."""
    if np.size(idx) == 0:
        return
    pop.need[idx] = np.minimum(cfg.need_cap, need_now(pop, idx, day, cfg) + amount)
    pop.need_day[idx] = day


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
    age = (day - pop.joined_day[idx]).astype(np.float64)
    seg = pop.segment[idx]
    h = cfg.base_hazard * pop.frailty[idx] * (1.0 + age / cfg.tenure_days) ** (-cfg.tenure_decay)
    h = h * np.exp(-cfg.satisfaction_weight * (pop.satisfaction[idx] - pop.seg["satisfaction"][seg]))
    if cfg.friends_weight:
        h = h * (1.0 + pop.friends[idx]) ** (-cfg.friends_weight)
    state = pop.state[idx]
    h = h * np.where(state == State.LOYAL, cfg.loyal_ratio, np.where(state == State.DORMANT, cfg.dormant_ratio, 1.0))
    if hazard_ratio is not None:
        h = h * hazard_ratio[idx]
    return h


def churn_probability(hazard: np.ndarray) -> np.ndarray:
    return -np.expm1(-hazard)


def reactivation_probability(idle_days: np.ndarray, base: float, half_life_days: float) -> np.ndarray:
    """Chance a message or coupon brings a lapsed user back: ``base`` at the moment of lapsing, halving
    every ``half_life_days`` of absence (habits and the app itself are forgotten)."""
    return base * 0.5 ** (np.maximum(idle_days, 0) / half_life_days)


# --------------------------------------------------------------------------------- sharing
def sharing_propensity(pop: Population, idx: np.ndarray, day: int, cfg) -> np.ndarray:
    """Multiplier on how much users ``idx`` share and invite today: satisfied users share more, and
    new users most of all (the novelty of a just-joined platform fades over ``novelty_days``)."""
    age = (day - pop.joined_day[idx]).astype(np.float64)
    return np.clip(2.0 * pop.satisfaction[idx], 0.0, 2.0) * (1.0 + cfg.novelty_boost * np.exp(-age / cfg.novelty_days))


# --------------------------------------------------------------------------------- social response
def social_response(prior_received: np.ndarray, repeats: np.ndarray, cfg) -> np.ndarray:
    """Multiplier on an invitation's conversion: saturation in invitations already received and
    fading for repeats from the same sender."""
    return cfg.saturation ** prior_received.astype(np.float64) * cfg.repeat_fade ** repeats.astype(np.float64)


# --------------------------------------------------------------------------------- requests to friends
# Group buys (拼团) and friend assists (助力 / 砍价) both ask friends for something. Being asked often
# wears people out: their response to the next request fades and their satisfaction falls. The
# memory of recent requests is one shared per-person quantity, so a friend pestered by team links is
# also slower to click an assist link (the columns exist only once such a mechanism is enabled).
ASKED, ASKED_DAY = "asked_recently", "asked_recently_day"


def ensure_ask_memory(pop: Population) -> None:
    """Create the shared memory of recent requests (idempotent; called in a mechanism's setup)."""
    if ASKED not in pop.extra:
        pop.add_column(ASKED, np.float32)
        pop.add_column(ASKED_DAY, np.int32)


def recent_asks(pop: Population, idx: np.ndarray, day: int, cfg) -> np.ndarray:
    """Requests ``idx`` received lately, each worth 0.5 ** (days since / ask_half_life_days)."""
    since = (day - pop.extra[ASKED_DAY][idx]).astype(np.float64)
    return pop.extra[ASKED][idx] * 0.5 ** (since / cfg.ask_half_life_days)


def ask_response(recent: np.ndarray, cfg) -> np.ndarray:
    """Multiplier on the response to one more request after ``recent`` recent ones (fatigue)."""
    return cfg.ask_fade ** recent


def note_asks(pop: Population, idx: np.ndarray, day: int, cfg) -> np.ndarray:
    """Record one request per entry of ``idx`` (repeats allowed) and annoy the over-asked: each
    request beyond ``ask_tolerance`` recent ones costs ``ask_annoyance`` satisfaction. Returns the
    distinct people asked."""
    if idx.size == 0:
        return idx
    people, times = np.unique(idx, return_counts=True)
    before = recent_asks(pop, people, day, cfg)
    after = before + times
    pop.extra[ASKED][people] = after
    pop.extra[ASKED_DAY][people] = day
    excess = np.maximum(after - np.maximum(before, cfg.ask_tolerance), 0.0)
    if cfg.ask_annoyance:
        pop.satisfaction[people] = np.clip(pop.satisfaction[people] - cfg.ask_annoyance * excess, 0, 1)
    return people


# --------------------------------------------------------------------------------- exposures
@dataclass
class Exposures:
    """Exposure events collected for one day's adoption stage.

    Each event is one chance for ``receiver`` to join through ``channel`` with probability ``prob``.
    Social events have a ``sender`` (a user) and, on a stored graph, the ``edge`` they travelled; they
    are subject to saturation, same-sender fading and, under complex contagion, the threshold.
    """

    parts: list[tuple[np.ndarray, ...]] = field(default_factory=list)

    def add(self, receiver: np.ndarray, channel: int, prob: np.ndarray | float,
            sender: np.ndarray | None = None, edge: np.ndarray | None = None) -> None:
        n = receiver.size
        if n == 0:
            return
        prob = np.broadcast_to(np.asarray(prob, dtype=np.float64), (n,))
        sender = np.full(n, -1, dtype=np.int64) if sender is None else sender.astype(np.int64)
        edge = np.full(n, -1, dtype=np.int64) if edge is None else edge.astype(np.int64)
        self.parts.append((receiver.astype(np.int64), np.full(n, channel, dtype=np.int8), prob, sender, edge))

    def __len__(self) -> int:
        return sum(p[0].size for p in self.parts)

    def arrays(self) -> tuple[np.ndarray, ...]:
        if not self.parts:
            e = np.zeros(0, dtype=np.int64)
            return e, np.zeros(0, dtype=np.int8), np.zeros(0), e, e
        return tuple(np.concatenate(cols) for cols in zip(*self.parts))


def rank_within(keys: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... for successive occurrences of each key, in array order."""
    if keys.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    start = np.r_[True, sk[1:] != sk[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(sk.size), 0))
    rank = np.empty(keys.size, dtype=np.int64)
    rank[order] = np.arange(sk.size) - first
    return rank


def first_success(receiver: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Position of the event with the smallest ``key`` for each distinct receiver."""
    order = np.lexsort((key, receiver))
    r = receiver[order]
    keep = np.r_[True, r[1:] != r[:-1]]
    return order[keep]
