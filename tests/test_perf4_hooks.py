"""The mechanism kernels compute what the numpy code they replaced computed, bit for bit.

Each kernel is compared with a plain numpy reference (the code it replaced) on random inputs, with
the same uniforms, so a wrong draw or a changed rounding fails here before it shifts a distribution.
"""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.mechanisms.push import _deliver
from sim.mechanisms.recommendations import _relevance_rate, _show
from sim.streams import choice_cdf, draw_choice


def model_after(strategy: str, days: int = 30):
    cfg = sim.compose("default", ["population.size=3000", f"horizon={days}", "mechanisms.recommendations.enabled=true",
                                  f"mechanisms.recommendations.strategy={strategy}", "mechanisms.push.enabled=true"], seed=3)
    return sim.GrowthModel(cfg).run()


def _binomial_small(rng, n, p):
    """The numpy form push.visit drew relevant pushes with before _deliver: sums of Bernoulli trials."""
    hits = (rng.random(int(n.sum())) < np.repeat(p, n)).astype(np.int64)
    if hits.size == 0:
        return np.zeros(n.size, dtype=np.int64)
    return np.add.reduceat(hits, np.cumsum(n) - n)


def _plain_known(rec, model, users):
    """Personalised: the chance the recommender has learnt each user's favourite (numpy form)."""
    c = rec.config
    orders = model.pop.orders[users].astype(np.float64)
    learnt = orders / (orders + c.learning_orders) if c.learning_orders > 0 else np.ones(users.size)
    return c.precision * learnt * rec._recognised()[model.pop.favourite[users]]


def _plain_choose(rec, model, users, rng):
    """The numpy form of Recommendations.choose before its kernel (popular and personalised)."""
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
    model = model_after(strategy)
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
    model = model_after(strategy)
    rec, pop = model.get_mechanism("recommendations"), model.pop
    c, C = rec.config, model.catalogue.categories
    rng = np.random.default_rng(7)
    v = rng.choice(pop.n, 2000, replace=False)
    # Reference: choose() and the numpy browse it replaced, on a copy of satisfaction.
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


def test_deliver_kernel_equals_numpy_push():
    rng = np.random.default_rng(0)
    npeople, m = 5000, 3000
    sent = np.sort(rng.choice(npeople, m, replace=False))
    n = rng.integers(1, 5, m)
    p = rng.random(m)
    fatigue = (rng.random(npeople) * 20).astype(np.float32)
    boost = (rng.random(npeople) - 0.5).astype(np.float32)
    sat = rng.random(npeople).astype(np.float32)
    sat[:50] = 0.0005  # some fall below 0
    d, ru, iu, ifat, ann, damping = 0.6, 1.0, 0.5, 2.0, 0.001, 0.05
    k = np.arange(int(n.max()) + 1, dtype=np.float64)
    weight = (1.0 - d ** k) / (1.0 - d)
    damp = np.exp(-damping * fatigue[sent])
    # numpy reference (the code the kernel replaced)
    relevant = _binomial_small(np.random.default_rng(9), n, p)
    irrelevant = n - relevant
    w_rel = weight[relevant]
    w_irr = weight[n] - w_rel
    f_ref, b_ref, s_ref = fatigue.copy(), boost.copy(), sat.copy()
    b_ref[sent] += (damp * (ru * w_rel + iu * w_irr)).astype(np.float32)
    f_ref[sent] += (relevant + ifat * irrelevant).astype(np.float32)
    np.add.at(s_ref, sent, np.asarray(-ann * irrelevant, dtype=np.float32))
    s_ref[sent] = np.clip(s_ref[sent], 0.0, 1.0)
    got = _deliver((sent, n, p, damp), np.random.default_rng(9).random(int(n.sum())), (fatigue, boost, sat),
                   (weight, ru, iu, ifat, ann))
    np.testing.assert_array_equal(got, relevant)
    np.testing.assert_array_equal(fatigue, f_ref)
    np.testing.assert_array_equal(boost, b_ref)
    np.testing.assert_array_equal(sat, s_ref)


def test_loyalty_kernels_equal_numpy():
    from sim.graph.csr import unique_sorted
    from sim.kernels import add_at
    from sim.mechanisms.loyalty import _check_in, _upgrade
    rng = np.random.default_rng(1)
    n = 4000
    idx = rng.integers(0, n, 6000)  # repeats
    vals = rng.random(6000) * 100
    a, b = rng.random(n), None
    b = a.copy()
    np.add.at(a, idx, vals)
    add_at(b, idx, vals)
    np.testing.assert_array_equal(a, b)
    # check-ins
    day, cp, bonus, cap = 50, 10.0, 0.2, 7
    who = rng.choice(n, 1500, replace=False)
    streak = rng.integers(0, 12, n).astype(np.int16)
    last = rng.choice([day - 1, day - 2, -10], n).astype(np.int32)
    points = rng.random(n) * 500
    s_ref, l_ref, p_ref = streak.copy(), last.copy(), points.copy()
    s_ref[who] = np.where(l_ref[who] == day - 1, s_ref[who] + 1, 1).astype(np.int16)
    l_ref[who] = day
    pts_ref = cp * (1.0 + bonus * (np.minimum(s_ref[who], cap) - 1))
    p_ref[who] += pts_ref
    pts = _check_in(who, day, streak, last, points, cp, bonus, cap)
    for got, ref in ((pts, pts_ref), (streak, s_ref), (last, l_ref), (points, p_ref)):
        np.testing.assert_array_equal(got, ref)
    # tiers: repeated buyers move up (and gain satisfaction) once
    buyers = rng.integers(0, n, 3000)
    spend = rng.random(n) * 1500
    tier = rng.integers(0, 3, n).astype(np.int8)
    sat = rng.random(n).astype(np.float32)
    t_ref, sat_ref = tier.copy(), sat.copy()
    u = unique_sorted(buyers)
    new = np.where(spend[u] >= 1000, 2, np.where(spend[u] >= 300, 1, 0)).astype(np.int8)
    up = new > t_ref[u]
    t_ref[u[up]] = new[up]
    np.add.at(sat_ref, u[up], np.float32(0.05))
    sat_ref[u[up]] = np.clip(sat_ref[u[up]], 0.0, 1.0)
    assert _upgrade(buyers, spend, tier, sat, 300.0, 1000.0, np.float32(0.05)) == int(up.sum())
    np.testing.assert_array_equal(tier, t_ref)
    np.testing.assert_array_equal(sat, sat_ref)


def test_commission_kernel_equals_numpy():
    from sim.mechanisms.distribution import _commissions
    rng = np.random.default_rng(2)
    n, day, rate = 5000, 30, 0.1
    resellers = np.sort(rng.choice(n, 300, replace=False)).astype(np.int64)
    since = np.full(n, -1, np.int32)
    since[resellers[rng.random(300) < 0.8]] = 3  # some quit: not paid
    touched_by = np.where(rng.random(n) < 0.3, rng.choice(resellers, n), -1).astype(np.int32)
    touched_day = rng.choice([day, day - 1], n).astype(np.int32)
    upline = np.where(rng.random(n) < 0.3, rng.choice(resellers, n), -1).astype(np.int32)
    buyers = rng.integers(0, n, 4000)
    basket = rng.random(4000) * 80
    touched = np.where(touched_day[buyers] == day, touched_by[buyers], -1)
    seller = np.where(touched >= 0, touched, upline[buyers])
    ok = seller >= 0
    ok[ok] = since[seller[ok]] >= 0
    commission_ref = rate * basket[ok]
    earned_ref = np.bincount(np.searchsorted(resellers, seller[ok]), weights=commission_ref, minlength=resellers.size)
    commission, earned = _commissions(buyers, basket, day, touched_day, touched_by, upline, since, resellers, rate)
    np.testing.assert_array_equal(commission, commission_ref)
    np.testing.assert_array_equal(earned, earned_ref)


def test_loyalty_visitor_kernel_equals_numpy():
    from sim.mechanisms.loyalty import _visitor_terms
    rng = np.random.default_rng(4)
    n, day = 3000, 40
    v = rng.choice(n, 2000, replace=False)
    tier = rng.integers(0, 3, n).astype(np.int8)
    repurchase = np.array([1.0, 1.1, 1.25])
    member_until = rng.integers(30, 50, n).astype(np.int32)
    points = rng.random(n) * 1000
    u = rng.random(v.size)
    factor, member, can, value = _visitor_terms(v, day, u, (tier, points, member_until), (repurchase, 1.15, 500.0, 0.5, 0.01, True))
    member_ref = member_until[v] >= day
    np.testing.assert_array_equal(member, member_ref)
    np.testing.assert_array_equal(factor, np.where(member_ref, repurchase[tier[v]] * 1.15, repurchase[tier[v]]))
    np.testing.assert_array_equal(can, (points[v] >= 500.0) & (u < 0.5))
    np.testing.assert_array_equal(value, points[v] * 0.01)
