"""Recommendations: relevance raises buying, concentrated strategies narrow what is sold."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from conftest import N_PEOPLE
from sim.mechanisms.recommendations import _relevance_rate, _show
from sim.streams import choice_cdf, draw_choice

SEEDS = (0, 1)


# A busy market (100 seed users, 1,000 RMB of ads a day): with visits as rare as they are, the
# default shares give 5,000 people some 500 orders over 90 days, too few a day for the
# concentration of sales over categories to stand out from the noise of small samples.
BUSY = ("population.size=10000", "adoption.seed_fraction=0.01", "mechanisms.paid_acquisition.budget_per_1000=100")


def run(strategy: str, seed: int, *overrides: str):
    cfg = sim.compose("default", [*BUSY, "horizon=90", "mechanisms.recommendations.enabled=true",
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


# ------------------------------------------------------------------------------ compiled passes against their numpy forms
def recommender_after(strategy: str, days: int = 30):
    """A run of ``days`` days with recommendations (``strategy``) and push on, seed 3."""
    cfg = sim.compose("default", ["population.size=3000", f"horizon={days}", "mechanisms.recommendations.enabled=true",
                                  f"mechanisms.recommendations.strategy={strategy}", "mechanisms.push.enabled=true"], seed=3)
    return sim.GrowthModel(cfg).run()


def _plain_known(rec, model, users):
    """Personalised: the chance the recommender has learnt each user's favourite (numpy form)."""
    c = rec.config
    orders = model.pop.orders[users].astype(np.float64)
    learnt = orders / (orders + c.learning_orders) if c.learning_orders > 0 else np.ones(users.size)
    return c.precision * learnt * rec._recognised()[model.pop.favourite[users]]


def _plain_choose(rec, model, users, rng):
    """Recommendations.choose written in numpy (popular and personalised)."""
    c, C = rec.config, model.catalogue.categories
    cat = draw_choice(rng, choice_cdf(rec.popular_weights()), users.size)
    if c.strategy == "personalised":
        know = rng.random(users.size) < _plain_known(rec, model, users)
        cat = np.where(know, model.pop.favourite[users], cat)
    explore = rng.random(users.size) < c.exploration
    cat[explore] = rng.integers(0, C, int(explore.sum()))
    return cat.astype(np.int64)


@pytest.mark.parametrize("strategy", ["popular", "personalised"])
def test_relevance_rate_kernel_equals_numpy(strategy):
    model = recommender_after(strategy)
    rec, pop = model.get_mechanism("recommendations"), model.pop
    c, C = rec.config, model.catalogue.categories
    users = np.arange(pop.n)
    fav = pop.favourite[users]
    rate = rec.popular_weights()[fav]
    if strategy == "personalised":
        known = _plain_known(rec, model, users)
        rate = known + (1.0 - known) * rate
    expected = (1.0 - c.exploration) * rate + c.exploration / C
    np.testing.assert_array_equal(rec.relevance_rate(model, users), expected)
    # no cold start (learning_orders = 0): the recommender knows a favourite at its full precision
    got = _relevance_rate(users, pop.favourite, pop.orders, rec.popular_weights(), c.precision, rec._recognised(),
                          0.0, strategy == "personalised", c.exploration, C)
    rate = rec.popular_weights()[fav]
    if strategy == "personalised":
        known = c.precision * rec._recognised()[fav]
        rate = known + (1.0 - known) * rate
    np.testing.assert_array_equal(got, (1.0 - c.exploration) * rate + c.exploration / C)


@pytest.mark.parametrize("strategy", ["popular", "personalised"])
def test_show_kernel_equals_choose_and_the_numpy_browse(strategy):
    model = recommender_after(strategy)
    rec, pop = model.get_mechanism("recommendations"), model.pop
    c, C = rec.config, model.catalogue.categories
    rng = np.random.default_rng(7)
    v = rng.choice(pop.n, 2000, replace=False)
    # Reference: choose() and the browse written in numpy, on a copy of satisfaction.
    r1 = np.random.default_rng(11)
    cat_ref = _plain_choose(rec, model, v, r1)
    follow_u_ref = r1.random(v.size)
    relevant_ref = cat_ref == pop.favourite[v]
    follow = np.where(relevant_ref, c.follow_relevant, c.follow_irrelevant)
    sat_ref = pop.satisfaction.copy()
    np.add.at(sat_ref, v[relevant_ref], np.float32(c.satisfaction_gain))
    np.add.at(sat_ref, v[~relevant_ref], np.float32(-c.irrelevance_cost))
    sat_ref[v] = np.clip(sat_ref[v], 0.0, 1.0)
    # The kernel, with the same draws in the same order.
    r2 = np.random.default_rng(11)
    cdf = choice_cdf(rec.popular_weights())
    u_cat = r2.random(v.size)
    know_u, recognised = (r2.random(v.size), rec._recognised()) if strategy == "personalised" else (np.zeros(0), np.zeros(0))
    explore = r2.random(v.size) < c.exploration
    explore_cat = r2.integers(0, C, int(explore.sum()))
    follow_u = r2.random(v.size)
    np.testing.assert_array_equal(follow_u, follow_u_ref)  # the generators are in step
    sat = pop.satisfaction.copy()
    cat, relevant, factor, follows = _show(v, (u_cat, cdf, know_u, explore, explore_cat, follow_u), (pop.favourite, pop.orders, sat),
                                           (c.precision, recognised, c.learning_orders),
                                           (c.follow_relevant, c.follow_irrelevant, c.relevant_boost, c.irrelevant_boost,
                                            np.float32(c.satisfaction_gain), np.float32(-c.irrelevance_cost)))
    np.testing.assert_array_equal(cat, cat_ref)
    np.testing.assert_array_equal(relevant, relevant_ref)
    np.testing.assert_array_equal(factor, np.where(relevant_ref, c.relevant_boost, c.irrelevant_boost))
    np.testing.assert_array_equal(follows, follow_u_ref < follow)
    np.testing.assert_array_equal(sat, sat_ref)
    # draw_choice is what the kernel's search reproduces
    np.testing.assert_array_equal(draw_choice(np.random.default_rng(5), cdf, 100),
                                  cdf.searchsorted(np.random.default_rng(5).random(100), side="right"))


def test_show_compact_equals_show_and_numpy():
    from sim.mechanisms.recommendations import _show, _show_compact
    from sim.streams import choice_cdf
    rng = np.random.default_rng(8)
    C = 12
    fav = rng.integers(0, C, N_PEOPLE).astype(np.int16)
    orders = rng.integers(0, 5, N_PEOPLE).astype(np.int32)
    sat = rng.random(N_PEOPLE).astype(np.float32)
    cdf = choice_cdf(rng.random(C))
    recognised = rng.random(C)
    v = rng.permutation(N_PEOPLE)[:2000].astype(np.int64)
    u, know_u = rng.random(v.size), rng.random(v.size)
    explore = rng.random(v.size) < 0.1
    explore_cat = rng.integers(0, C, int(explore.sum()))
    follow_u = rng.random(v.size)
    draws, knowledge = (u, cdf, know_u, explore, explore_cat, follow_u), (0.85, recognised, 1.0)
    effects = (0.7, 0.1, 1.5, 1.0, np.float32(0.008), np.float32(-0.001))
    s1, s2 = sat.copy(), sat.copy()
    out, relevant, factor, follows = _show(v, draws, (fav, orders, s1), knowledge, effects)
    factor2, followers, followed, hit = _show_compact(v, draws, (fav, orders, s2), knowledge, effects)
    np.testing.assert_array_equal(factor2, factor)
    np.testing.assert_array_equal(followers, np.flatnonzero(follows))
    np.testing.assert_array_equal(followed, out[np.flatnonzero(follows)])
    np.testing.assert_array_equal(hit, v[relevant])
    np.testing.assert_array_equal(s2, s1)


def test_recommendation_tables_follow_the_sales_tally():
    import sim
    cfg = sim.compose("default", ["population.size=2000", "horizon=5", "mechanisms.recommendations.enabled=true"], seed=1)
    model = sim.GrowthModel(cfg)
    rec = model.get_mechanism("recommendations")
    from sim.streams import choice_cdf
    for _ in range(5):
        model.step()
        w, cdf, recognised = rec._today_tables()
        np.testing.assert_array_equal(w, rec.popular_weights())
        np.testing.assert_array_equal(cdf, choice_cdf(rec.popular_weights()))
        np.testing.assert_array_equal(recognised, rec._recognised())


@pytest.mark.parametrize("strategy", ["popular", "personalised"])
def test_a_memory_shorter_than_a_day_falls_back_to_the_catalogue_on_a_day_without_sales(strategy):
    """With ``sales_memory_days`` near 0 the tally forgets everything overnight: on a day without an
    order it holds no sale, and the shares are the catalogue's popularity, not 0 / 0."""
    import warnings

    cfg = sim.compose("all_mechanisms", ["population.size=300", "horizon=12", "graph.avg_degree=6",
                                         "mechanisms.recommendations.sales_memory_days=1e-06",
                                         f"mechanisms.recommendations.strategy={strategy}"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = sim.GrowthModel(cfg).run()
    rec = model.get_mechanism("recommendations")
    share = rec.sales_share()
    assert np.all(np.isfinite(share)) and np.isclose(share.sum(), 1.0)
    rec.sales = np.zeros_like(rec.sales)
    assert np.array_equal(rec.sales_share(), model.catalogue.popularity / model.catalogue.popularity.sum())
