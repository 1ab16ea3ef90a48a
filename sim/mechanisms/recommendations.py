"""Recommendations (推荐): what the shop shows each visitor, and what that does to buying.

What it models: each visitor is shown one product category chosen by the strategy
- ``none``: nothing is recommended (the mechanism is inert);
- ``random``: a category drawn uniformly (a baseline that spreads sales thinly);
- ``popular``: one of the ``popular_top`` best-selling categories of the last weeks (by sales);
- ``personalised``: the visitor's favourite category when the recommender has learnt it — learning
  needs purchase history (cold start) and is biased towards categories with much sales data, so
  long-tail tastes are recognised less often and get the popular fallback instead (the popularity
  bias of collaborative filtering, Fleder and Hosanagar 2009);
- ``social``: what a random friend bought most recently (social proof), or the popular fallback.
An ``exploration`` share of recommendations is replaced by a uniformly random category.

A recommendation that matches the visitor's favourite category is *relevant*: it raises purchase
intensity (``relevant_boost``), creates a little extra demand (``discovery``: things one did not know
one needed) and satisfaction (``satisfaction_gain``, hence visits and retention; the domain documents
claim +25 % retention for personalised recommendation). An irrelevant one costs a little satisfaction.
A visitor follows the recommendation with chance ``follow_relevant`` / ``follow_irrelevant``: an
order then falls in the recommended category and is credited to the recommendation (last touch, so
much of that credit is not causal). Strategies that concentrate what is recommended concentrate what
is sold: aggregate diversity falls, read as the daily ``category_gini``.

Other mechanisms ask :meth:`Recommendations.relevance_rate` how often content chosen by this
recommender would match a user's taste (push notifications use it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from sim import behaviour as bh
from sim import halves
from sim.compiled import formula, jit
from sim.kernels import search_sorted_right
from sim.mechanisms.base import Mechanism, MechanismConfig, register
from sim.schema import param
from sim.streams import choice_cdf, draw_choice

Strategy = Literal["none", "random", "popular", "personalised", "social"]
NONE = np.zeros(0)  # an argument of _show that does not apply to the strategy


@dataclass(frozen=True)
class RecommendationsConfig(MechanismConfig):
    strategy: Strategy = param("personalised", doc="what is recommended: none | random | popular | personalised | social")
    exploration: float = param(0.1, lo=0, hi=1, unit="fraction of recommendations", doc="share replaced by a uniformly random category")
    precision: float = param(0.85, lo=0, hi=1, unit="probability", doc="personalised: chance the recommender knows a fully learnt user's favourite category in the best-selling category")
    learning_orders: float = param(1.0, lo=0, hi=1000, unit="orders", doc="personalised: purchase history at which half the precision is reached (cold start); 0 means none needed")
    popularity_bias: float = param(0.5, lo=0, hi=5, unit="exponent", doc="personalised: recognition x (sales share of the favourite / top share)^popularity_bias")
    popular_top: int = param(3, lo=1, hi=10_000, unit="categories", doc="popular: how many best-selling categories are recommended (weighted by sales)")
    sales_memory_days: float = param(14.0, lo=0, hi=36_500, lo_open=True, unit="days", doc="time scale of the sales tally used by popular and personalised")
    relevant_boost: float = param(1.5, lo=0, hi=20, unit="multiplier", doc="purchase intensity of a visitor shown a relevant recommendation")
    irrelevant_boost: float = param(1.0, lo=0, hi=20, unit="multiplier", doc="purchase intensity of a visitor shown an irrelevant recommendation")
    discovery: float = param(0.01, lo=0, hi=5, unit="orders per relevant recommendation", doc="latent demand a relevant recommendation creates (expansion)")
    follow_relevant: float = param(0.7, lo=0, hi=1, unit="probability", doc="chance an order follows a relevant recommendation")
    follow_irrelevant: float = param(0.1, lo=0, hi=1, unit="probability", doc="chance an order follows an irrelevant recommendation")
    social_proof: float = param(0.3, lo=0, hi=10, unit="multiplier", doc="social: a friend's purchase is followed (1 + social_proof) times as often")
    satisfaction_gain: float = param(0.008, lo=0, hi=1, unit="satisfaction per recommendation", doc="gain from seeing a relevant recommendation")
    irrelevance_cost: float = param(0.001, lo=0, hi=1, unit="satisfaction per recommendation", doc="loss from seeing an irrelevant recommendation")


@register
class Recommendations(Mechanism):
    name = "recommendations"
    Config = RecommendationsConfig
    columns = ("recommendations_shown", "recommendations_relevant", "recommendations_followed")

    def setup(self, model) -> None:
        cat = model.catalogue
        # The sales tally starts from the catalogue's popularity (what the shop knows before day 0).
        self.sales = cat.popularity * 1.0
        self._known_share = self.sales / self.sales.sum()  # (what the shares fall back to when it remembers no sale)
        self.decay = float(np.exp(-1.0 / self.config.sales_memory_days))
        if self.config.strategy == "social":
            self.last_bought = model.pop.add_column("last_bought_category", np.int16, fill=-1)
        self._tables_of, self._tables = None, ()

    def _today_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The popular weights, their ``choice_cdf`` and the recognition per category, computed once
        per state of the sales tally (it changes only in settle) for the push and browse of a day."""
        if self._tables_of is not self.sales:
            w = self.popular_weights()
            self._tables_of, self._tables = self.sales, (w, choice_cdf(w), self._recognised())
        return self._tables

    # ------------------------------------------------------------------ what is recommended
    def sales_share(self) -> np.ndarray:
        """Each category's share of the sales tally; the catalogue's popularity when the tally holds
        no sale (a memory far shorter than a day, ``sales_memory_days`` near 0, on a day without orders)."""
        total = self.sales.sum()
        return self.sales / total if total > 0 else self._known_share.copy()

    def popular_weights(self) -> np.ndarray:
        """Probability of each category under the popular strategy (top categories by sales)."""
        share = self.sales_share()
        top = np.argsort(-share, kind="stable")[: self.config.popular_top]
        w = np.zeros(share.size)
        w[top] = share[top] / share[top].sum()
        return w

    def _recognised(self) -> np.ndarray:
        """Personalised, per category: how readily a favourite in it is recognised (popularity bias)."""
        share = self.sales_share()
        return (share / share.max()) ** self.config.popularity_bias

    def _draws(self, model, users: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """The strategy's draws for ``users``, in this order: the category (random, social) or the
        uniforms that draw it from the popular weights (popular, personalised: ``cdf``), whether the
        recommender knows the favourite (personalised), exploration. Arguments of :func:`_show`."""
        c, C, s = self.config, model.catalogue.categories, self.config.strategy
        know_u, recognised, cdf = NONE, NONE, NONE
        if s == "random":
            cat = rng.integers(0, C, users.size)
        elif s in ("popular", "personalised"):
            _, cdf, recognised_today = self._today_tables()
            cat = rng.random(users.size)  # drawn from cdf in the kernel: the draws of draw_choice
            if s == "personalised":
                know_u, recognised = rng.random(users.size), recognised_today
        else:  # social: what a friend bought last, else a best seller
            cat = draw_choice(rng, self._today_tables()[1], users.size)  # = rng.choice(C, p=...)
            friend, _ = model.graph.sample_neighbours_where(users, rng, self.last_bought >= 0)
            found = friend >= 0
            cat[found] = self.last_bought[friend[found]]
        explore = rng.random(users.size) < c.exploration
        explore_cat = rng.integers(0, C, int(np.count_nonzero(explore)))
        return cat, cdf, know_u, recognised, explore, explore_cat

    def choose(self, model, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A recommended category for each of ``users`` under the configured strategy (what
        :meth:`browse` shows, without its effects)."""
        cat, cdf, know_u, recognised, explore, explore_cat = self._draws(model, users, rng)
        pop, c = model.pop, self.config
        draws = (cat, cdf, know_u, explore, explore_cat, np.ones(users.size))
        people = (pop.favourite, pop.orders, pop.satisfaction.copy())
        out, *_ = _show(users, draws, people, (c.precision, recognised, c.learning_orders),
                        (0.0, 0.0, 1.0, 1.0, np.float32(0), np.float32(0)))
        return out

    def relevance_rate(self, model, users: np.ndarray) -> np.ndarray | None:
        """Chance content chosen by this recommender matches each user's favourite category (None
        under the strategy ``none``: it chooses nothing)."""
        c, C = self.config, model.catalogue.categories
        s = c.strategy
        if s == "none":
            return None
        if s in ("popular", "personalised"):  # the same arithmetic as below, in one pass
            weights, _, recognised = self._today_tables()
            return _relevance_rate(users, model.pop.favourite, model.pop.orders, weights, c.precision,
                                   recognised, c.learning_orders, s == "personalised", c.exploration, C)
        fav = model.pop.favourite[users]
        if s == "random":
            rate = np.full(users.size, 1.0 / C)
        else:  # social
            rate = self.sales_share()[fav]  # friends buy roughly what everyone buys
        return (1.0 - c.exploration) * rate + c.exploration / C

    # ------------------------------------------------------------------ stage hooks
    def browse(self, model) -> None:
        c, pop, today = self.config, model.pop, model.today
        v = today.visitors
        if c.strategy == "none" or v.size == 0:
            return
        rng = self.rng(model)
        # The draws of choose() and of following, in that order; the rest in one pass (_show).
        cat, cdf, know_u, recognised, explore, explore_cat = self._draws(model, v, rng)
        follow_u = rng.random(v.size)
        proof = 1.0 + c.social_proof if c.strategy == "social" else None
        follow_relevant = c.follow_relevant if proof is None else min(c.follow_relevant * proof, 1.0)
        follow_irrelevant = c.follow_irrelevant if proof is None else min(c.follow_irrelevant * proof, 1.0)
        draws = (cat, cdf, know_u, explore, explore_cat, follow_u)
        effects = (follow_relevant, follow_irrelevant, c.relevant_boost, c.irrelevant_boost, np.float32(c.satisfaction_gain),
                   np.float32(-c.irrelevance_cost))
        factor, followers, followed, hit = _show_compact(v, draws, (pop.favourite, pop.orders, pop.satisfaction),
                                                         (c.precision, recognised, c.learning_orders), effects)
        # (satisfaction nudged in the pass)
        today.boost_relevance(slice(None), factor)  # every visitor
        today.recommend(followers, followed, 1.0)
        today.attribute(followers, "recommendation")
        bh.add_need(pop, hit, model.day, c.discovery, model.cfg.behaviour.purchase)
        today.count("recommendations_shown", v.size)
        today.count("recommendations_relevant", hit.size)
        today.count("recommendations_followed", followers.size)

    def settle(self, model) -> None:
        today = model.today
        sold = np.bincount(today.order_category, minlength=model.catalogue.categories)
        self.sales = self.sales * self.decay + sold * (1.0 - self.decay)
        if self.config.strategy == "social" and today.buyers.size:
            self.last_bought[today.buyers] = today.order_category  # the latest order wins


def _show(v, draws, people, knowledge, effects) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Today's recommendation for each visitor ``v[i]``, and what it does, in one pass over visitors.

    ``draws``: (cat, cdf, know_u, explore, explore_cat, follow_u); ``people``: (favourite, orders,
    satisfaction) columns; ``knowledge``: (precision, recognised, learning_orders); ``effects``:
    (follow_relevant, follow_irrelevant, relevant_boost, irrelevant_boost, gain, cost). ``cat`` holds the strategy's draw (random or social) or, when ``cdf`` is given (popular and
    personalised), the uniforms that draw from it (as :func:`sim.streams.draw_choice`); where ``know_u`` is given
    (personalised) the favourite category replaces it when ``know_u[i]`` is below the chance the
    recommender knows it (precision x learnt x recognised, ``recognised`` per category); where ``explore[i]`` the next of ``explore_cat`` replaces it. Returns
    the category (int64), whether it is relevant, the relevance factor, and whether the visitor follows
    it (``follow_u[i]`` below the follow chance). Adds ``gain`` (relevant) or ``cost`` (irrelevant) to
    the visitors' satisfaction, kept within [0, 1] (visitors are distinct people), as
    :func:`sim.behaviour.nudge_satisfaction` does."""
    n = v.size
    shown = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.bool_), np.empty(n, dtype=np.float64), np.empty(n, dtype=np.bool_)
    halves.run(_show_part, n, v, draws, people, knowledge, effects, shown)
    return shown


def _show_compact(v, draws, people, knowledge, effects) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_show`, returning what browse uses: the relevance factor of each visitor, the positions
    of the visitors who follow their recommendation with its category, and the visitors (people)
    shown a relevant one, in order."""
    out, relevant, factor, follows = _show(v, draws, people, knowledge, effects)
    followers = np.flatnonzero(follows)
    return factor, followers, out[followers], v[relevant]


# ====================================================================================== compiled passes
@formula
def _learnt(orders, learning_orders):
    """How well the recommender has learnt a user from their ``orders``: orders / (orders +
    learning_orders), 1 when it needs no history."""
    o = np.float64(orders)
    return o / (o + learning_orders) if learning_orders > 0 else 1.0


@jit
def _show_part(v, draws, people, knowledge, effects, shown, lo, hi):
    """:func:`_show` for the visitors ``v[lo:hi]``, written into ``shown`` (category, relevant,
    factor, follows) at their positions (visitors are distinct: two halves may run at once). The
    explorations of the visitors before ``lo`` took the first categories of ``explore_cat``."""
    cat, cdf, know_u, explore, explore_cat, follow_u = draws
    fav, orders, satisfaction = people
    precision, recognised, learning_orders = knowledge
    follow_relevant, follow_irrelevant, relevant_boost, irrelevant_boost, gain, cost = effects
    out, relevant, factor, follows = shown
    personalised = know_u.size > 0
    draw = cdf.size > 0
    j = 0
    for i in range(lo):
        if explore[i]:
            j += 1
    for i in range(lo, hi):
        p = v[i]
        f = np.int64(fav[p])
        c = np.int64(search_sorted_right(cdf, cat[i])) if draw else np.int64(cat[i])
        if personalised and know_u[i] < precision * _learnt(orders[p], learning_orders) * recognised[f]:
            c = f
        if explore[i]:
            c = explore_cat[j]
            j += 1
        out[i] = c
        hit = c == f
        relevant[i] = hit
        if hit:
            factor[i] = relevant_boost
            follows[i] = follow_u[i] < follow_relevant
            s = satisfaction[p] + gain
        else:
            factor[i] = irrelevant_boost
            follows[i] = follow_u[i] < follow_irrelevant
            s = satisfaction[p] + cost
        satisfaction[p] = min(max(s, np.float32(0.0)), np.float32(1.0))


@jit
def _relevance_rate(users, fav, orders, popular, precision, recognised, learning_orders, personalised, exploration, categories):
    """:meth:`Recommendations.relevance_rate` for the popular and personalised strategies, one pass
    over ``users`` (``recognised`` per category)."""
    out = np.empty(users.size, dtype=np.float64)
    for i in range(users.size):
        p = users[i]
        f = np.int64(fav[p])
        rate = popular[f]
        if personalised:
            known = precision * _learnt(orders[p], learning_orders) * recognised[f]
            rate = known + (1.0 - known) * rate
        out[i] = (1.0 - exploration) * rate + exploration / categories
    return out
