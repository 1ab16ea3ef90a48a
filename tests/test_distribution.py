"""Distribution (S2B2C resellers): KOC resell to their circle, earn commissions, and quit when it stops paying."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from conftest import N_PEOPLE, random_states
from sim import behaviour as bh
from sim.population import State

BASE = ("population.size=5000", "horizon=60", "adoption.seed_fraction=0.2")


def run(*overrides: str, seed: int = 0):
    return sim.simulate(sim.compose("s2b2c_distribution", [*BASE, *overrides], seed=seed))


def test_resellers_are_well_connected_users():
    r = run()
    model, c = r.model, r.config.mechanisms["distribution"]
    since = model.pop.extra["distribution_since"]
    assert r.daily["distribution_recruited"].sum() > 20
    resellers = np.flatnonzero(since >= 0)
    assert (model.graph.degree[resellers] >= c.min_friends).all()
    assert (model.pop.joined_day[resellers] >= 0).all()


def test_commission_is_paid_on_orders_of_bound_customers_and_of_friends_reached_that_day():
    """Re-derive each day's commission from the people who bought, who reached them and whom they
    are bound to (an oracle for the accounting)."""
    cfg = sim.compose("s2b2c_distribution", [*BASE, "horizon=30", "mechanisms.distribution.quit_rate=0"])
    model = sim.GrowthModel(cfg)
    dist = model.get_mechanism("distribution")
    rate = cfg.mechanisms["distribution"].commission_rate
    for _ in range(cfg.horizon):
        active_before = dist.since.copy() >= 0
        model.step()
        t = model.today
        touched = np.where(dist.touched_day[t.buyers] == model.day, dist.touched_by[t.buyers], -1)
        seller = np.where(touched >= 0, touched, dist.upline[t.buyers])
        paid = (seller >= 0) & active_before[np.maximum(seller, 0)]
        assert np.isclose(model.economics.daily["distribution_commissions"][model.day], rate * t.basket[paid].sum())
    d = model.metrics.daily(model.economics)
    assert d["distribution_commissions_rmb"].sum() > 0
    bound = dist.upline >= 0
    assert (model.pop.channel[bound] == sim.config.CHANNELS.index("distribution")).all()


def test_resellers_quit_more_when_earnings_are_low():
    def quits_per_reseller_day(rate):
        quits = days = 0
        for seed in range(2):
            d = run(f"mechanisms.distribution.commission_rate={rate}", "mechanisms.distribution.trial_days=5", seed=seed).daily
            quits, days = quits + d["distribution_quit"].sum(), days + d["distribution_resellers"].sum()
        return quits / days

    assert quits_per_reseller_day(0.01) > 1.3 * quits_per_reseller_day(0.3)


def test_friends_reached_by_a_reseller_buy_more_readily():
    with_trust = run("mechanisms.distribution.trust_uplift=2").daily
    without = run("mechanisms.distribution.trust_uplift=0").daily
    assert with_trust["orders_distribution"].sum() > 1.2 * without["orders_distribution"].sum()


def test_higher_commission_costs_more_per_order_credited():
    low = run("mechanisms.distribution.commission_rate=0.05").daily
    high = run("mechanisms.distribution.commission_rate=0.2").daily
    per_order = [d["cost_distribution_commissions"].sum() / d["distribution_orders"].sum() for d in (low, high)]
    assert per_order[1] > 3 * per_order[0]


# ------------------------------------------------------------------------------ compiled passes against their numpy forms
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


def test_posts_equals_numpy():
    from sim.mechanisms.distribution import _posts
    rng = np.random.default_rng(1)
    state = random_states(rng)
    m = 3000
    sender = rng.integers(0, N_PEOPLE, m).astype(np.int64)
    target = rng.integers(-1, N_PEOPLE, m).astype(np.int32)
    target[rng.random(m) < 0.2] = -1
    edge = rng.integers(0, 10**6, m).astype(np.int64)
    tb, td = np.full(N_PEOPLE, -1, np.int32), np.full(N_PEOPLE, -1, np.int32)
    tb2, td2 = tb.copy(), td.copy()
    receiver, s_out, e_out, reached, found = _posts(sender, target, edge, state, tb, td, 7)
    # the numpy form
    ok = target >= 0
    s, t, e = sender[ok], target[ok].astype(np.int64), edge[ok]
    st = state[t]
    out = st <= State.AWARE
    users = (st >= State.ACTIVE) & (st <= State.DORMANT)
    tb2[t[users]] = s[users]
    td2[t[users]] = 7
    assert found == t.size
    np.testing.assert_array_equal(receiver, t[out])
    np.testing.assert_array_equal(s_out, s[out])
    np.testing.assert_array_equal(e_out, e[out])
    np.testing.assert_array_equal(reached, t[users])
    np.testing.assert_array_equal(tb, tb2)
    np.testing.assert_array_equal(td, td2)


@pytest.mark.parametrize("half", [2.0, 0.0])
def test_quit_equals_numpy(half):
    from sim.mechanisms.distribution import _keep, _quit_chance
    rng = np.random.default_rng(3)
    state = random_states(rng)
    r = np.sort(rng.choice(N_PEOPLE, 800, replace=False)).astype(np.int64)
    since = np.full(N_PEOPLE, -1, np.int32)
    since[r] = rng.integers(0, 60, r.size)
    earnings = rng.random(N_PEOPLE) * 5
    earned_today = rng.random(r.size) * rng.integers(0, 2, r.size)
    u = rng.random(r.size)
    e2, s2 = earnings.copy(), since.copy()
    p = _quit_chance(r, state, since, earnings, earned_today, 60, 1 / 14, 21, 0.05, half)
    keep, quit_n = _keep(r, u, p, since)
    # the numpy form
    w = 1 / 14
    e2[r] = (1.0 - w) * e2[r] + w * earned_today
    alive = (state[r] >= State.ACTIVE) & (state[r] <= State.DORMANT)
    judged = 60 - s2[r] >= 21
    pq = 0.05 * (1.0 - bh.incentive_response(e2[r], half))
    quit = ~alive | (judged & (u < pq))
    s2[r[quit]] = -1
    np.testing.assert_array_equal(earnings, e2)
    np.testing.assert_array_equal(since, s2)
    np.testing.assert_array_equal(keep, r[~quit])
    assert quit_n == quit.sum()


def test_recruit_equals_numpy():
    from sim.kernels import merge_sorted
    from sim.mechanisms.distribution import _candidates, _join
    rng = np.random.default_rng(4)
    state = random_states(rng)
    degree = rng.integers(0, 60, N_PEOPLE).astype(np.int32)
    segment = rng.integers(0, 4, N_PEOPLE).astype(np.int8)
    prop = rng.random(4) * 2
    since = np.where(rng.random(N_PEOPLE) < 0.1, 3, -1).astype(np.int32)
    resellers = np.flatnonzero(since >= 0).astype(np.int64)
    earnings = rng.random(N_PEOPLE)
    v = rng.permutation(N_PEOPLE)[:2000].astype(np.int64)
    scale = 0.03 * np.float64(0.7)
    cand, p = _candidates(v, degree, 20, since, state, segment, prop, scale, 20.0)
    c2 = v[(degree[v] >= 20) & (since[v] < 0) & (state[v] != State.DORMANT)]
    p2 = np.minimum(scale * prop[segment[c2]] * degree[c2] / 20, 1.0)
    np.testing.assert_array_equal(cand, c2)
    np.testing.assert_array_equal(p, p2)
    u = rng.random(cand.size)
    s2, e2 = since.copy(), earnings.copy()
    new = c2[u < p2]
    got = _join(cand, u, p, since, earnings, 9)
    np.testing.assert_array_equal(got, np.sort(new))
    out = merge_sorted(resellers, got)
    s2[new] = 9
    e2[new] = 0.0
    np.testing.assert_array_equal(out, np.sort(np.concatenate([resellers, new])))
    np.testing.assert_array_equal(since, s2)
    np.testing.assert_array_equal(earnings, e2)
    assert _join(cand, np.ones(cand.size), p, since, earnings, 9).size == 0
