"""Recommendations: relevance raises buying, concentrated strategies narrow what is sold."""

from __future__ import annotations

import numpy as np
import pytest

import sim

SEEDS = (0, 1)


def run(strategy: str, seed: int, *overrides: str):
    cfg = sim.compose("default", ["population.size=5000", "horizon=90", "mechanisms.recommendations.enabled=true",
                                  f"mechanisms.recommendations.strategy={strategy}", *overrides], seed=seed)
    return sim.simulate(cfg)


@pytest.fixture(scope="module")
def by_strategy():
    return {s: [run(s, seed) for seed in SEEDS] for s in ("none", "random", "personalised")}


def test_personalised_recommendations_raise_orders_over_random(by_strategy):
    for rand, pers in zip(by_strategy["random"], by_strategy["personalised"]):
        assert pers.summary["orders"] > 1.05 * rand.summary["orders"], (rand.summary["orders"], pers.summary["orders"])


def test_personalised_recommendations_concentrate_sales(by_strategy):
    def gini(runs):
        return np.mean([r.daily["category_gini"].iloc[20:].mean() for r in runs])
    assert gini(by_strategy["personalised"]) > gini(by_strategy["random"]) + 0.03
    # Popularity bias: more concentrated than what people would buy without any recommendation.
    assert gini(by_strategy["personalised"]) > gini(by_strategy["none"])


def test_orders_that_follow_a_recommendation_are_credited_to_it(by_strategy):
    for r in by_strategy["personalised"]:
        d = r.daily
        assert 0 < d["orders_recommendation"].sum() <= d["recommendations_followed"].sum()
        assert (d["recommendations_relevant"] <= d["recommendations_shown"]).all()
    assert all(r.daily["orders_recommendation"].sum() == 0 for r in by_strategy["none"])


def model_after(strategy: str, days: int = 40, *overrides: str):
    cfg = sim.compose("default", ["population.size=3000", f"horizon={days}", "mechanisms.recommendations.enabled=true",
                                  f"mechanisms.recommendations.strategy={strategy}", *overrides])
    return sim.GrowthModel(cfg).run()


def test_popular_strategy_recommends_only_best_sellers():
    model = model_after("popular", 30, "mechanisms.recommendations.exploration=0", "mechanisms.recommendations.popular_top=3")
    rec = model.get_mechanism("recommendations")
    users = model.pop.alive()
    cats = rec.choose(model, users, np.random.default_rng(0))
    best = np.argsort(-rec.sales, kind="stable")[:3]
    assert set(np.unique(cats)) <= set(best)


def test_personalised_recommender_learns_from_purchase_history():
    model = model_after("personalised", 40, "mechanisms.recommendations.exploration=0", "mechanisms.recommendations.popularity_bias=0")
    rec = model.get_mechanism("recommendations")
    users = model.pop.alive()
    rate = rec.relevance_rate(model, users)
    orders = model.pop.orders[users]
    assert rate[orders >= 3].mean() > rate[orders == 0].mean() + 0.2
    assert rate.max() <= 1.0


def test_relevance_rate_ranks_the_strategies():
    rates = {}
    for s in ("random", "popular", "personalised"):
        model = model_after(s, 30)
        users = model.pop.alive()
        rates[s] = model.get_mechanism("recommendations").relevance_rate(model, users).mean()
    assert rates["personalised"] > rates["popular"] > rates["random"]


def test_social_strategy_recommends_what_friends_bought():
    model = model_after("social", 40, "mechanisms.recommendations.exploration=0")
    rec = model.get_mechanism("recommendations")
    last = model.pop.extra["last_bought_category"]
    assert (last >= 0).sum() > 0
    users = model.pop.alive()
    cats = rec.choose(model, users, np.random.default_rng(1))
    # Every recommendation is a category some friend or the best-seller list offers.
    offered = set(np.unique(last[last >= 0])) | set(np.flatnonzero(rec.popular_weights() > 0))
    assert set(np.unique(cats)) <= offered
