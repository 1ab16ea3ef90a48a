"""The one user-decision model every mechanism shares (DESIGN section 3), readable in one file.

Mechanisms never invent their own user. They move a few latent quantities — ``satisfaction``
(engagement capital), ``need`` (a stock of latent demand), exposure to the platform — or add
today's boosts (visit log-odds, purchase relevance, discounts, hazard ratios); the functions here turn
those into the probabilities of visiting, buying, inviting and churning.

The file has three parts:

1. **Formulas** (``@formula``): every decision rule, once, as a small function of scalars with its
   equation and its source. The compiled passes call them (numba compiles them into the pass);
   Python code and the tests' numpy reference forms call the very same functions on arrays.
2. **What the engine and mechanisms call**: functions of people (``pop``, indices, today) that
   gather the people's columns and hand them to a pass.
3. **Compiled passes** over people (at the bottom): loops that read people's columns, call the
   formulas and write the results. They hold no formula of their own.

Sources of the functional forms:
- purchase saturating in need and relevance: 1 - exp(-intensity), so demand pulled forward by a
  promotion leaves the need stock low afterwards (the post-promotion dip follows by construction;
  Van Heerde, Leeflang and Wittink 2000 measure dips of 4-25 % of the bump);
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

from sim import halves, kernels
from sim.compiled import formula, jit
from sim.population import Population
from sim.vocabulary import N_STATES, State


# ===================================================================================== 1. formulas
# ------------------------------------------------------------------------------------ visiting
@formula
def logistic(x):
    """1 / (1 + exp(-x)): a probability from log-odds."""
    return 1.0 / (1.0 + np.exp(-x))


def logit(p):
    """log(p / (1 - p)), with p kept inside (0, 1): log-odds from a probability (for settings)."""
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


@formula
def habit(visits):
    """log(1 + visits): the habit term of the visit odds (a user's past visits make the next one more
    likely, with diminishing returns)."""
    return np.log1p(visits)


@formula
def visit_log_odds(logit_rate, propensity, novelty_term, satisfaction, base_satisfaction, satisfaction_weight,
                   habit_term, habit_weight, state_odds, boost):
    """Log-odds that a user visits today:

        logit(visit_rate[segment]) + propensity + novelty_term + satisfaction_weight x (satisfaction
        - segment baseline) + habit_weight x habit(visits) + state_odds[state] + boost

    (``propensity``: the person's own log-odds, fixed for life: people of one segment visit at very
    different rates, see :func:`propensity_of`; ``novelty_term``: the log of :func:`novelty_factor`
    at the user's age, so a new user comes back often in the first days and settles to their own
    rate; ``state_odds``: log-odds of dormant and loyal users relative to active ones; ``boost``:
    today's additive log-odds from pushes, promotions and check-in streaks)."""
    x = logit_rate + propensity + novelty_term
    x = x + satisfaction_weight * (satisfaction - base_satisfaction)
    x = x + habit_weight * habit_term
    x = x + state_odds
    return x + boost


def propensity_of(gamma_draw):
    """A person's own visit log-odds, log(g) for a multiplier g of the visit odds drawn from a gamma
    distribution of mean 1 (``population.visit_cv``). Individual rates of buying and visiting that
    are gamma distributed across people are the negative binomial (NBD) model of repeat behaviour
    (Ehrenberg 1959; Goodhardt, Ehrenberg and Chatfield 1984), which fits the frequency of purchases
    and visits of consumer goods and sites across categories: a few people come very often, most
    rarely, so an active base carries many light users (DAU/MAU of e-commerce about 0.10-0.22,
    Sequoia's benchmarks) rather than only daily users."""
    return np.log(np.maximum(gamma_draw, 1e-12))


# ------------------------------------------------------------------------------------ demand and purchase
@formula
def need_accrued(need, need_rate, state_ratio, days, need_cap):
    """Latent demand (orders) after ``days`` without a purchase: the stock grows linearly at the
    segment's ``need_rate`` times the state's ratio (loyal users need more), up to ``need_cap``."""
    return np.minimum(need_cap, need + need_rate * state_ratio * days)


@formula
def tenure_need_factor(age_days, elasticity):
    """(1 + age in years)^elasticity: a user's demand on the platform grows with tenure, as they move
    more of their shopping to it (Pinduoduo's annual spend per active buyer rose from 577 RMB in 2017
    to 2,810 RMB in 2021, company releases; its cohorts spend more each year they stay)."""
    return (1.0 + age_days / 365.0) ** elasticity


def breadth_factor(day, growth_per_year):
    """(1 + growth)^(day / 365): demand on the platform grows as its catalogue widens (more of what
    people buy can be bought there), the same for everyone on a day."""
    return (1.0 + growth_per_year) ** (day / 365.0)


@formula
def deal_factor(deal_sensitivity, discount):
    """How a discount (fraction of the price) raises purchase intensity: 1 + deal_sensitivity x discount."""
    return 1.0 + deal_sensitivity * discount


@formula
def purchase_chance(conversion, need, relevance, deal):
    """P(buy | visit) = 1 - exp(-conversion x need x relevance x deal factor): saturating in demand,
    so a visitor whose need a promotion emptied buys less afterwards."""
    intensity = conversion * need
    intensity = intensity * relevance
    intensity = intensity * deal
    return -np.expm1(-intensity)


@formula
def stockpile_units(stockpile, deal_sensitivity, discount):
    """Extra units (orders of latent demand) a deal buyer takes home besides the one they needed:
    stockpile x deal sensitivity x discount. Buying more at a deal and then waiting longer before the
    next purchase is the household-inventory response to promotions (Blattberg, Eppen and Lieberman
    1981; Neslin, Henderson and Quelch 1985: deals raise the quantity bought and shorten the time to
    purchase); their demand stock falls by as much, below zero (a pantry) if they had less."""
    return stockpile * deal_sensitivity * discount


@formula
def deal_draw_chance(rate, deal, need, pull):
    """Chance a visitor is drawn to a deal that needs friends (opening a group buy, asking for an
    assist): min(rate x deal response x min(need, 1) x pull, 1). Group buying passes its open rate,
    the segment's deal response and the pull of its discount; assists their start rate times the
    discount and a pull of 1."""
    return np.minimum(rate * deal * np.minimum(need, 1.0) * pull, 1.0)


# ------------------------------------------------------------------------------------ incentives
@formula
def incentive_response(reward_rmb, half_rmb):
    """Saturating response to a money incentive, in [0, 1): reward / (reward + half_rmb), half the
    maximum at ``half_rmb`` (a reward of 0 or less: none; ``half_rmb`` 0: all or nothing)."""
    reward = np.maximum(np.float64(reward_rmb), 0.0)  # in float64 whatever the caller's precision
    if half_rmb > 0:
        return reward / (reward + half_rmb)
    return (reward > 0) * 1.0


# ------------------------------------------------------------------------------------ churn
@formula
def tenure_factor(age_days, tenure_days, tenure_decay):
    """(1 + age / tenure_days) ** -tenure_decay: hazard falls with tenure (habit)."""
    return (1.0 + age_days / tenure_days) ** (-tenure_decay)


@formula
def friends_factor(friends, friends_weight):
    """(1 + friends on the platform) ** -friends_weight: users with friends there stay longer."""
    return (1.0 + friends) ** (-friends_weight)


@formula
def churn_hazard_of(base_hazard, frailty, tenure, satisfaction, base_satisfaction, satisfaction_weight, friends,
                    state_ratio, hazard_ratio):
    """Daily churn hazard (proportional hazards with individual frailty):

        base_hazard x frailty x tenure_factor x exp(-satisfaction_weight x (satisfaction - baseline))
        x friends_factor x state_ratio x hazard_ratio

    (``base_hazard`` and ``frailty`` are float32 and multiply in float32, as the columns hold them;
    ``hazard_ratio``: today's ratio from mechanisms, 1 when none)."""
    h = np.float64(base_hazard * frailty) * tenure
    h = h * np.exp(-satisfaction_weight * (satisfaction - base_satisfaction))
    h = h * friends
    h = h * state_ratio
    return h * hazard_ratio


@formula
def chance_of_hazard(hazard):
    """P(event today) = 1 - exp(-hazard): a daily probability from a daily hazard."""
    return -np.expm1(-hazard)


@formula
def half_life_decay(days, half_life_days):
    """0.5 ** (days / half_life_days): what is left of a memory (of requests, of a habit) after ``days``."""
    return 0.5 ** (days / half_life_days)


@formula
def reverted(satisfaction, base_satisfaction, reversion):
    """Satisfaction after a day: it moves a share ``reversion`` of the way back to its segment baseline."""
    return satisfaction + (base_satisfaction - satisfaction) * reversion


# ------------------------------------------------------------------------------------ sharing and social response
@formula
def novelty_factor(age_days, novelty_boost, novelty_days):
    """1 + novelty_boost x exp(-age / novelty_days): new users share most, as the novelty fades."""
    return 1.0 + novelty_boost * np.exp(-age_days / novelty_days)


@formula
def sharing_of(satisfaction, novelty):
    """How much a user shares and invites today: twice the satisfaction, within [0, 2] (in float32, as
    the column holds it), times the novelty of their age."""
    s = np.minimum(np.maximum(np.float32(2.0) * satisfaction, np.float32(0.0)), np.float32(2.0))
    return np.float64(s) * novelty


@formula
def repeated(base, times):
    """base ** times: the factor left after ``times`` repetitions that each keep a share ``base``."""
    return base ** times


@formula
def social_response(prior, repeats, saturation_powers, fade_powers):
    """Response to one more invitation (Leskovec, Adamic and Huberman 2007):

        saturation ** prior x repeat_fade ** repeats

    ``prior``: invitations the person received before; ``repeats``: earlier ones along the same edge.
    The powers come from tables of :func:`repeated` (``power_table``). Under complex contagion the
    threshold multiplies it further (``social_events``), so a social exposure never converts more
    readily than under simple contagion."""
    return saturation_powers[prior] * fade_powers[repeats]


@formula
def asks_beyond_tolerance(before, after, tolerance):
    """Requests (team links, assist requests) that annoy: those that bring a person's recent requests
    from ``before`` to ``after`` beyond ``tolerance``."""
    return np.maximum(after - np.maximum(before, tolerance), 0.0)


@formula
def ask_fatigue(recent, ask_fade):
    """Multiplier on the response to one more request after ``recent`` recent ones: ask_fade ** recent."""
    return ask_fade ** recent


# ------------------------------------------------------------------------------------ the size of the market
def per_1000(amount_per_1000: float, people: float) -> float:
    """An amount set per 1,000 people in the market (a budget, a capacity, installs a day) for a market
    of ``people``: settings stated this way mean the same at 10,000 and 10,000,000 people and on a
    loaded graph (DESIGN section 3, scale-free settings)."""
    return amount_per_1000 * people / 1000.0


def share_of(fraction: float, people: int) -> int:
    """How many people a share ``fraction`` of a market of ``people`` is: rounded, and at least one
    when the share is above zero (so a small market still gets its seed)."""
    if fraction <= 0 or people <= 0:
        return 0
    return int(min(max(round(fraction * people), 1), people))


def stochastic_round(x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """floor(x + u): an integer with mean x that never falls when x rises for the same u."""
    return np.floor(x + u).astype(np.int64)


# ===================================================================================== lookup tables
# Speed (DESIGN section 5): formulas of a small integer (age in days, visits, friends, state) are
# looked up in a table computed once by the same formula over all arguments, instead of calling pow /
# exp / log1p for every user every day; the values are the same bit for bit. Each table is sized to
# cover every argument its caller can meet (ages and visits up to the day, friends up to the largest
# degree).
NO_VALUES = np.zeros(0, dtype=np.float32)  # an absent per-person boost, ratio or offer (a pass's argument)


def _pow2(k: int) -> int:
    return 1 << max(int(k), 1).bit_length()


@lru_cache(maxsize=64)
def _table(kind: str, a: float, b: float, size: int) -> np.ndarray:
    x = np.arange(size, dtype=np.float64)
    if kind == "tenure":
        t = tenure_factor(x, a, b)
    elif kind == "friends":
        t = friends_factor(x, b)
    elif kind == "novelty":
        t = novelty_factor(x, a, b)
    elif kind == "tenure_need":
        t = tenure_need_factor(x, a)
    elif kind == "visit_novelty":
        t = np.log(novelty_factor(x, a, b))
    elif kind == "power":
        t = repeated(a, x)
    elif kind == "halving":
        t = half_life_decay(x, a)
    else:  # "habit"
        t = habit(np.arange(size, dtype=np.int64))
    t.flags.writeable = False
    return t


@lru_cache(maxsize=64)
def _state_table(default: float, *values: tuple[int, float]) -> np.ndarray:
    """A value per lifecycle state: ``default``, except the ``(state, value)`` pairs given. Made once
    per distinct settings (the stages ask for theirs every day) and read-only, as the tables above."""
    t = np.full(N_STATES, default, dtype=np.float64)
    for state, v in values:
        t[state] = v
    t.flags.writeable = False
    return t


def power_table(base: float, size: int) -> np.ndarray:
    """``base ** k`` for k in 0 .. size - 1 (at least), for :func:`social_response`."""
    return _table("power", base, 0.0, _pow2(size))


def need_ratio_table(cfg) -> np.ndarray:
    """Demand accrual by lifecycle state, relative to active users (loyal users need more)."""
    return _state_table(1.0, (State.LOYAL, cfg.loyal_need_ratio))


# What a pass reads reaches it as a few tuples (columns, settings), not as a long argument list; each
# pass unpacks them on its first line, in the order the builder below gives.
def demand(pop: Population, cfg) -> tuple:
    """The columns and settings of latent demand, for the passes that bring it up to date:
    ``(segment, state, need, need_day, need_rate by segment, need ratio by state, need_cap,
    joined_day, tenure factor by age)`` (``cfg``: the purchase behaviour); the need rates are today's,
    with the catalogue's breadth (``pop.need_scale``)."""
    rate = pop.seg["need_rate"] * pop.need_scale if pop.need_scale != 1.0 else pop.seg["need_rate"]
    return (pop.segment, pop.state, pop.need, pop.need_day, rate, need_ratio_table(cfg), cfg.need_cap, pop.joined_day,
            pop.tenure_need)


def set_demand_growth(pop: Population, cfg, horizon: int) -> None:
    """The tenure factor of demand by age (:func:`tenure_need_factor`), for every age a run meets."""
    pop.tenure_need = _table("tenure_need", cfg.behaviour.purchase.tenure_elasticity, 0.0, horizon + 2)


def follow_catalogue(pop: Population, cfg, day: int) -> None:
    """Today's demand multiplier from the catalogue's breadth (:func:`breadth_factor`)."""
    pop.need_scale = breadth_factor(day, cfg.catalogue.breadth_growth)


# ===================================================================================== 2. people
def _per_person(kernel, idx: np.ndarray, *args) -> np.ndarray:
    """``out``: the result of ``kernel`` (a pass that writes ``out[k]`` for ``idx[k]`` alone, see
    :mod:`sim.halves`) for every one of ``idx``, in two halves at once when the pass is long."""
    out = np.empty(idx.size, dtype=np.float64)
    halves.run(kernel, idx.size, idx, *args, out)
    return out


def settle_propensity(pop: Population) -> None:
    """Turn the population's gamma draws of visit propensity into log-odds (:func:`propensity_of`)."""
    if pop.propensity_draw is not None:
        pop.propensity[:] = propensity_of(pop.propensity_draw)
        pop.propensity_draw = None


def nudge_satisfaction(pop: Population, idx: np.ndarray, delta: np.ndarray | float) -> None:
    """Add ``delta`` to the satisfaction of people ``idx`` (repeats add up), kept within [0, 1].

    The one way mechanisms move satisfaction: relevant recommendations, rewards and tier upgrades raise
    it; irrelevant pushes, delivery delays and outages lower it."""
    if np.size(idx) == 0:
        return
    idx, delta = np.asarray(idx), np.asarray(delta, dtype=np.float32).reshape(-1)
    if delta.size not in (1, idx.size):  # the pass does not check bounds
        raise ValueError(f"nudge_satisfaction: {delta.size} deltas for {idx.size} people")
    _nudge(idx, delta, pop.satisfaction)  # a scalar delta applies to all


def visit_probability(pop: Population, idx: np.ndarray, day: int, cfg, boost_logit: np.ndarray | None = None) -> np.ndarray:
    """Daily visit probability of users ``idx`` (:func:`visit_log_odds`; ``day``: today, so nobody has
    more than ``day + 1`` visits)."""
    state_odds = _state_table(0.0, (State.DORMANT, np.log(max(cfg.dormant_odds, 1e-9))), (State.LOYAL, np.log(cfg.loyal_odds)))
    columns = pop.segment, pop.propensity, pop.joined_day, pop.satisfaction, pop.seg["satisfaction"], pop.visits, pop.state
    tables = _table("habit", 0.0, 0.0, _pow2(day + 2)), _table("visit_novelty", cfg.novelty_odds, cfg.novelty_days, _pow2(day + 2))
    settings = logit(pop.seg["visit_rate"]), cfg.satisfaction_weight, tables, cfg.habit_weight, state_odds
    return _per_person(_visit_probabilities, idx, day, columns, settings, NO_VALUES if boost_logit is None else boost_logit)


def need_now(pop: Population, idx: np.ndarray, day: int, cfg) -> np.ndarray:
    """Latent demand of ``idx`` today (:func:`need_accrued` since it was last brought up to date)."""
    return _need_now(idx, day, demand(pop, cfg))


def add_need(pop: Population, idx: np.ndarray, day: int, amount: np.ndarray | float, cfg) -> None:
    """Add latent demand (orders) to people ``idx`` today, e.g. the expansion a festival creates.

    The stock is first brought up to date, so later draws today see it; it never exceeds ``need_cap``."""
    if np.size(idx) == 0:
        return
    amount = np.asarray(amount, dtype=np.float64).reshape(-1)
    if amount.size not in (1, np.size(idx)):  # the pass does not check bounds
        raise ValueError(f"add_need: {amount.size} amounts for {np.size(idx)} people")
    _add_need(np.asarray(idx), day, demand(pop, cfg), amount)


def consume_need(pop, idx: np.ndarray, day: int, cfg) -> None:
    """One unit of latent demand of each of ``idx`` (distinct people) used up by an order outside
    the core purchase (a team's, an unlocked assist's): the stock brought up to date, less one, at
    least 0, as the core purchase does, never raising a stock below zero (``cfg``: the purchase
    behaviour)."""
    _consume_need(idx, day, demand(pop, cfg))


def stock_up(pop: Population, idx: np.ndarray, day: int, units: np.ndarray, cfg) -> None:
    """Deal buyers ``idx`` (distinct people) took home ``units`` extra (:func:`stockpile_units`): their
    latent demand falls by as much and may go below zero, so later needs are met from the pantry
    (no purchase while the stock is not positive; ``cfg``: the purchase behaviour)."""
    add_need(pop, idx, day, -np.asarray(units, dtype=np.float64), cfg)


def expected_basket_rmb(pop: Population, idx: np.ndarray, price_level: float = 1.0) -> np.ndarray:
    """Mean order value (RMB, before discounts) of people ``idx``: what a coupon or points are worth
    to them (category price levels average 1)."""
    return pop.seg["basket_rmb"][pop.segment[idx]] * price_level


def purchase_probability(need: np.ndarray, relevance: np.ndarray | float, deal: np.ndarray | float, conversion: float) -> np.ndarray:
    """:func:`purchase_chance` over arrays (numpy's arithmetic)."""
    return purchase_chance(conversion, need, relevance, deal)


def churn_hazard(pop: Population, idx: np.ndarray, day: int, cfg, hazard_ratio: np.ndarray | None = None) -> np.ndarray:
    """Daily churn hazard of users ``idx`` (:func:`churn_hazard_of`)."""
    columns = pop.joined_day, pop.segment, pop.frailty, pop.satisfaction, pop.seg["satisfaction"], pop.friends, pop.state
    settings = (np.float32(cfg.base_hazard), _table("tenure", cfg.tenure_days, cfg.tenure_decay, _pow2(day + 1)), cfg.satisfaction_weight,
                _table("friends", 0.0, cfg.friends_weight, _pow2(pop.max_friends + 1)), bool(cfg.friends_weight),
                _state_table(1.0, (State.LOYAL, cfg.loyal_ratio), (State.DORMANT, cfg.dormant_ratio)))
    return _per_person(_churn_hazards, idx, day, columns, settings, NO_VALUES if hazard_ratio is None else hazard_ratio)


def decide_purchases(v: np.ndarray, day: int, demand: tuple, offers: tuple, deal_sensitivity: np.ndarray, conversion: float,
                     u: np.ndarray) -> np.ndarray:
    """The core purchase decision of today's visitors ``v`` (distinct): latent demand brought up to
    date, the :func:`purchase_chance` with today's ``offers`` (relevance, discount per visitor: an
    empty one means 1 or 0 for all) and :func:`deal_factor`, a purchase where ``u`` is below it, and
    the demand stock after it (one order less, at least 0). Returns who bought (one flag per visitor)."""
    buy = np.empty(v.size, dtype=np.bool_)
    halves.run(_decide_purchases, v.size, v, day, demand, offers, deal_sensitivity, conversion, u, buy)
    return buy


def drawn_to_deal(v: np.ndarray, u: np.ndarray, prune: bool, day: int, demand: tuple, deal: np.ndarray, rate: float,
                  pull: float) -> np.ndarray:
    """The visitors ``v`` drawn to a deal: ``u <`` :func:`deal_draw_chance` (``deal``: per segment).
    Group buying passes its ``open_rate`` and pull; friend assists (``sim.mechanisms.assist``) their
    start rate times the discount, and a pull of 1 (exact).

    Speed: with ``prune`` (the caller's promise that ``rate``, ``deal`` and ``pull`` are not
    negative) the latent demand is brought up to date (four cache misses a person) only where ``u``
    is below ``rate x deal[segment] x pull``. That is an upper bound of the chance in floating point
    too (rounding is monotone and ``min(need, 1) <= 1``), so the same people are drawn;
    ``rate x max(deal) x pull`` bounds it in turn, a test without a gather."""
    out, pos = np.empty(v.size, v.dtype), np.empty(v.size, np.int64)
    parts = halves.run(_drawn_to_deal, v.size, v, u, prune, day, demand, (deal, rate, pull), out, pos)
    return out[:halves.joined(parts, out)]


def age_users(alive: np.ndarray, day: int, columns: tuple, reversion: float, dormant_after: int, dormant: int) -> np.ndarray:
    """The start of the retention stage for users ``alive`` (``columns``: segment, satisfaction, its
    baseline by segment, last visit, state): satisfaction :func:`reverted` towards its segment
    baseline, and users idle ``dormant_after`` days become ``dormant``. Returns the idle days."""
    idle = np.empty(alive.size, dtype=np.int64)
    halves.run(_age_users, alive.size, alive, day, columns, (reversion, dormant_after, dormant), idle)
    return idle


def churn_probability(hazard: np.ndarray) -> np.ndarray:
    """:func:`chance_of_hazard` over arrays (numpy's arithmetic)."""
    return chance_of_hazard(hazard)


def reactivation_probability(idle_days: np.ndarray, base: float, half_life_days: float) -> np.ndarray:
    """Chance a message or coupon brings a lapsed user back: ``base`` at the moment of lapsing, halving
    every ``half_life_days`` of absence (habits and the app itself are forgotten)."""
    return base * half_life_decay(np.maximum(idle_days, 0), half_life_days)


def sharing_propensity(pop: Population, idx: np.ndarray, day: int, cfg) -> np.ndarray:
    """Multiplier on how much users ``idx`` share and invite today (:func:`sharing_of`; the novelty of
    a just-joined platform fades over ``novelty_days``)."""
    novelty = _table("novelty", cfg.novelty_boost, cfg.novelty_days, _pow2(day + 2))  # ages up to day + 1
    return _per_person(_sharing, np.asarray(idx), day, pop.joined_day, pop.satisfaction, novelty)


# ------------------------------------------------------------------------------------ requests to friends
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
    """Requests ``idx`` received lately, each worth :func:`half_life_decay` of its age."""
    since = day - pop.extra[ASKED_DAY][idx]
    return pop.extra[ASKED][idx] * _halving_table(day, cfg)[since]


def _halving_table(day: int, cfg) -> np.ndarray:
    """:func:`half_life_decay` for every days since a request: 0 .. day."""
    return _table("halving", cfg.ask_half_life_days, 0.0, _pow2(day + 1))


def ask_response(recent: np.ndarray, cfg) -> np.ndarray:
    """:func:`ask_fatigue` of ``recent`` recent requests."""
    return ask_fatigue(recent, cfg.ask_fade)


def note_asks(pop: Population, idx: np.ndarray, day: int, cfg) -> np.ndarray:
    """Record one request per entry of ``idx`` (repeats allowed) and annoy the over-asked: each
    request beyond ``ask_tolerance`` recent ones costs ``ask_annoyance`` satisfaction. Returns the
    distinct people asked (in order of their first request)."""
    if idx.size == 0:
        return idx
    x = pop.extra
    memory = x[ASKED], x[ASKED_DAY], _halving_table(day, cfg), x[ASKED_SCRATCH]
    return _note_asks(np.asarray(idx), day, memory, pop.satisfaction, float(cfg.ask_tolerance), float(cfg.ask_annoyance))


# ===================================================================================== 3. compiled passes
# Each pass loops over people in array order, reads their columns, calls the formulas above and
# writes its results; none draws randomness (uniforms come from the caller's seeded streams).
@jit
def _nudge(idx, delta, satisfaction):
    """:func:`nudge_satisfaction`: additions in order (repeats add up, in float32), then [0, 1]."""
    kernels.add_at(satisfaction, idx, delta)
    for k in range(idx.size):
        i = idx[k]
        satisfaction[i] = min(max(satisfaction[i], np.float32(0)), np.float32(1))


@jit
def _visit_probabilities(idx, day, columns, settings, boost, out, lo, hi):
    """``out[k]``: :func:`logistic` of :func:`visit_log_odds` for ``idx[k]``, ``k`` in ``lo .. hi - 1``
    (``boost``: per person, or empty)."""
    segment, propensity, joined_day, satisfaction, base_sat, visits, state = columns
    logit_rate, sat_weight, (habit_table, novelty_table), habit_weight, state_odds = settings
    has_boost = boost.size > 0
    for k in range(lo, hi):
        i = idx[k]
        g = segment[i]
        x = visit_log_odds(logit_rate[g], np.float64(propensity[i]), novelty_table[day - joined_day[i]], np.float64(satisfaction[i]),
                           base_sat[g], sat_weight, habit_table[visits[i]], habit_weight, state_odds[state[i]],
                           np.float64(boost[i]) if has_boost else 0.0)
        out[k] = logistic(x)


@jit
def _churn_hazards(idx, day, columns, settings, hazard_ratio, out, lo, hi):
    """``out[k]``: :func:`churn_hazard_of` for ``idx[k]``, ``k`` in ``lo .. hi - 1`` (``hazard_ratio``:
    per person, or empty); the tables cover every age and friend count the caller can meet."""
    joined_day, segment, frailty, satisfaction, base_sat, friends, state = columns
    base_hazard32, tenure_table, sat_weight, friends_table, use_friends, state_ratio = settings
    has_ratio = hazard_ratio.size > 0
    for k in range(lo, hi):
        i = idx[k]
        out[k] = churn_hazard_of(base_hazard32, frailty[i], tenure_table[day - joined_day[i]], np.float64(satisfaction[i]),
                                 base_sat[segment[i]], sat_weight, friends_table[friends[i]] if use_friends else 1.0,
                                 state_ratio[state[i]], np.float64(hazard_ratio[i]) if has_ratio else 1.0)


@jit
def _need_of(i, day, demand):
    """:func:`need_accrued` of person ``i`` since the stock was last brought up to date."""
    segment, state, need, need_day, need_rate, state_need_ratio, need_cap, joined_day, tenure_need = demand
    last_age = tenure_need.size - 1  # (a day past the horizon, as tests ask, reads the last age)
    return need_accrued(np.float64(need[i]), need_rate[segment[i]] * tenure_need[min(day - joined_day[i], last_age)],
                        state_need_ratio[state[i]], np.float64(day - need_day[i]), need_cap)


@jit
def _need_now(idx, day, demand):
    """:func:`need_accrued` for each of ``idx`` since its stock was last brought up to date."""
    out = np.empty(idx.size, dtype=np.float64)
    for k in range(idx.size):
        out[k] = _need_of(idx[k], day, demand)
    return out


@jit
def _add_need(idx, day, demand, amount):
    """``need[idx] = min(need_cap, need now + amount)`` and ``need_day[idx] = day``: every new value
    from the stocks before any write, as numpy's fancy assignment does (``amount`` has one entry per
    index, or one for all)."""
    need, need_day, need_cap = demand[2], demand[3], demand[6]
    new = _need_now(idx, day, demand)
    one = amount.size == 1
    for k in range(idx.size):
        new[k] = min(need_cap, new[k] + (amount[0] if one else amount[k]))
    for k in range(idx.size):
        need[idx[k]] = np.float32(new[k])
        need_day[idx[k]] = day


@jit
def _consume_need(idx, day, demand):
    """:func:`consume_need`: the stock brought up to date, less one, at least 0 (a stock below zero,
    a deal buyer's pantry, stays as it is)."""
    need, need_day = demand[2], demand[3]
    now = _need_now(idx, day, demand)
    for k in range(idx.size):
        need[idx[k]] = np.float32(min(now[k], max(now[k] - 1.0, 0.0)))
        need_day[idx[k]] = day


@jit
def _decide_purchases(v, day, demand, offers, deal_sensitivity, conversion, u, buy, lo, hi):
    """:func:`decide_purchases` for visitors ``v[lo:hi]``: each visitor's stock read, then written
    (visitors are distinct, so two halves may run at once)."""
    segment, need, need_day = demand[0], demand[2], demand[3]
    relevance, discount = offers
    has_rel, has_disc = relevance.size > 0, discount.size > 0
    for k in range(lo, hi):
        i = v[k]
        now = _need_of(i, day, demand)
        deal = deal_factor(deal_sensitivity[segment[i]], discount[k]) if has_disc else 1.0
        b = u[k] < purchase_chance(conversion, now, relevance[k] if has_rel else 1.0, deal)
        buy[k] = b
        need[i] = np.float32(max(now - 1.0, 0.0) if b else now)
        need_day[i] = day


@jit
def _drawn_to_deal(v, u, prune, day, demand, odds, out, pos, lo, hi):
    """:func:`drawn_to_deal` for ``v[lo:hi]``, kept from position ``lo`` of ``out`` on (``pos``: scratch)."""
    segment = demand[0]
    deal, rate, pull = odds
    top = rate * kernels.largest(deal) * pull
    m = lo
    for k in range(lo, hi):
        if not prune or (u[k] < top and u[k] < rate * deal[segment[v[k]]] * pull):
            out[m] = v[k]
            pos[m] = k
            m += 1
    now = _need_now(out[lo:m], day, demand)
    n = lo
    for j in range(lo, m):
        if u[pos[j]] < deal_draw_chance(rate, deal[segment[out[j]]], now[j - lo], pull):
            out[n] = out[j]
            n += 1
    return n - lo


@jit
def _sharing(idx, day, joined_day, satisfaction, novelty_table, out, lo, hi):
    """``out[k]``: :func:`sharing_of` for ``idx[k]``, ``k`` in ``lo .. hi - 1``, with the novelty of its
    age from the table."""
    for k in range(lo, hi):
        i = idx[k]
        out[k] = sharing_of(satisfaction[i], novelty_table[day - joined_day[i]])


@jit
def _age_users(alive, day, columns, settings, idle, lo, hi):
    """:func:`age_users` for ``alive[lo:hi]``."""
    segment, satisfaction, base_sat, last_visit, state = columns
    reversion, dormant_after, dormant = settings
    for k in range(lo, hi):
        i = alive[k]
        satisfaction[i] = np.float32(reverted(np.float64(satisfaction[i]), base_sat[segment[i]], reversion))
        d = day - last_visit[i]
        idle[k] = d
        if d >= dormant_after and state[i] != dormant:
            state[i] = dormant


@jit
def social_events(events, memory, response):
    """Walk today's exposure events in order; for the social ones (``sender >= 0``) update the memories
    they leave and scale their conversion ``prob`` (in place) by the :func:`social_response`.

    ``events``: (receiver, sender, edge, prob); ``memory``: the receivers' (invites_received,
    adopted_friends), the edges' sends, and the caps of the counters (invites_top, sends_top);
    ``response``: the tables of :func:`social_response` (saturation, fade), the threshold (0: simple
    contagion) and the response below it. Social event ``i`` reaches ``receiver[i]``
    along stored edge ``edge[i]`` (``-1``: no stored edge). ``prior`` counts the invitations the
    receiver had received before it (earlier days and earlier events today) and ``repeats`` how often
    the same edge had carried one before. Under complex contagion (``threshold > 0``) an event whose
    receiver has fewer than ``threshold`` friends who have ever joined (``adopted_friends``, kept by
    the engine as people join; read only here) converts with its chance times ``below`` (0: a strict
    threshold). Counters saturate at ``invites_top`` and ``sends_top``: a hub of a million-person
    graph can receive more invitations than an int16 holds (beyond 32,767 invitations or 250 repeats
    the response is 0 to double precision either way).

    A pass because each event's counts depend on the events before it."""
    receiver, sender, edge, prob = events
    invites_received, adopted_friends, edge_sends, invites_top, sends_top = memory
    saturation_table, fade_table, threshold, below = response
    for i in range(receiver.size):
        if sender[i] < 0:
            continue
        r = receiver[i]
        prior = invites_received[r]
        if prior < invites_top:
            invites_received[r] = prior + 1
        repeats = 0
        e = edge[i]
        if e >= 0:
            repeats = edge_sends[e]
            if repeats < sends_top:
                edge_sends[e] = repeats + 1
        prob[i] *= social_response(prior, repeats, saturation_table, fade_table)
        if adopted_friends[r] < threshold:
            prob[i] *= below


@jit
def _note_asks(idx, day, memory, satisfaction, tolerance, annoyance):
    """:func:`note_asks`: each person's recent requests (``memory``: asked, asked_day, the halving
    table, a count) decay by ``halving_table[days since]`` and grow by the requests of today; the
    :func:`asks_beyond_tolerance` cost ``annoyance`` satisfaction each (kept within [0, 1]). ``count``
    is scratch of one int32 per person, all 0, and is left so. Returns the distinct people, in order
    of first request."""
    asked, asked_day, halving_table, count = memory
    people = np.empty(idx.size, dtype=np.int64)
    m = 0
    for i in idx:
        if count[i] == 0:
            people[m] = i
            m += 1
        count[i] += 1
    for k in range(m):
        p = people[k]
        before = np.float64(asked[p]) * halving_table[day - asked_day[p]]
        after = before + count[p]
        asked[p] = np.float32(after)
        asked_day[p] = day
        if annoyance != 0.0:
            s = np.float64(satisfaction[p]) - annoyance * asks_beyond_tolerance(before, after, tolerance)
            satisfaction[p] = np.float32(min(max(s, 0.0), 1.0))
        count[p] = 0
    return people[:m]
