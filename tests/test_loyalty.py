"""Loyalty: tiers that keep users, points that add up, check-ins that bring them back, paid membership."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from conftest import N_PEOPLE, random_states
from sim.population import State

BASE = ("population.size=8000", "horizon=150", "mechanisms.loyalty.enabled=true",
        # Low thresholds so that many users reach gold within a short test.
        "mechanisms.loyalty.silver_spend_rmb=150", "mechanisms.loyalty.gold_spend_rmb=400")


def churn_by_tier(*overrides: str, seeds=(0, 1)) -> np.ndarray:
    """Daily churn rate of users by the tier they held that morning (pooled over seeds)."""
    exposure, events = np.zeros(3), np.zeros(3)
    for seed in seeds:
        model = sim.GrowthModel(sim.compose("default", [*BASE, *overrides], seed=seed))
        tier = model.pop.extra["loyalty_tier"]
        for _ in range(model.cfg.horizon):
            alive = model.pop.alive()
            held = tier[alive].copy()
            model.step()
            gone = model.pop.state[alive] == State.CHURNED
            exposure += np.bincount(held, minlength=3)
            events += np.bincount(held[gone], minlength=3)
    assert exposure[2] > 2000  # enough gold member-days to measure
    return events / exposure


@pytest.fixture(scope="module")
def with_benefits():
    return churn_by_tier()


def test_gold_members_churn_less_than_regular_members(with_benefits):
    regular, silver, gold = with_benefits
    assert gold < silver < regular


def test_tier_benefits_themselves_lower_the_churn_of_gold_members(with_benefits):
    """Gold members are selected for loyalty anyway; the benefit must lower their churn further."""
    without = churn_by_tier("mechanisms.loyalty.gold_hazard_ratio=1", "mechanisms.loyalty.silver_hazard_ratio=1")
    assert with_benefits[2] < 0.85 * without[2], (with_benefits, without)


def test_points_issued_minus_redeemed_is_what_people_hold():
    cfg = sim.compose("default", ["population.size=4000", "horizon=90", "mechanisms.loyalty.enabled=true"])
    model = sim.GrowthModel(cfg).run()
    s = model.metrics.series
    value = cfg.mechanisms["loyalty"].point_value_rmb
    held = model.pop.extra["loyalty_points"].sum() * value
    assert s["points_redeemed"].sum() > 0
    assert held == pytest.approx(s["points_issued"].sum() - s["points_redeemed"].sum(), rel=1e-9)
    # The liability counts users only: points of churned users lapse.
    users = model.pop.alive()
    assert s["points_liability"][89] == pytest.approx(model.pop.extra["loyalty_points"][users].sum() * value)
    assert model.economics.daily["loyalty_points"].sum() == pytest.approx(s["points_redeemed"].sum())


def test_check_in_streaks_bring_users_back():
    """Visits per user (DAU / users) rise with the streak's pull. Referral is off so that the user
    bases compared are alike and the difference is the visiting habit, not a different growth path."""
    def visit_rate(uplift):
        runs = [sim.simulate(sim.compose("default", ["population.size=5000", "horizon=90", "mechanisms.referral.enabled=false",
                                                     "mechanisms.loyalty.enabled=true", f"mechanisms.loyalty.streak_visit_uplift={uplift}"], seed=s))
                for s in (0, 1)]
        return np.mean([(r.daily["dau"] / r.daily["users"])[30:].mean() for r in runs])
    assert visit_rate(2.0) > 1.03 * visit_rate(0.0)


def test_members_by_tier_add_up_to_users():
    r = sim.simulate(sim.compose("default", list(BASE[:1]) + ["horizon=90", *BASE[2:]]))
    d = r.daily
    assert (d["members_regular"] + d["members_silver"] + d["members_gold"] == d["users"]).all()
    assert d["members_gold"].iloc[-1] > 0


def test_paid_membership_earns_fees_and_members_stay():
    overrides = ["population.size=6000", "horizon=120", "mechanisms.loyalty.enabled=true", "mechanisms.loyalty.paid_membership=true",
                 "mechanisms.loyalty.fee_rmb=10", "mechanisms.loyalty.uptake=0.05"]
    model = sim.GrowthModel(sim.compose("default", overrides)).run()
    s = model.metrics.series
    fees = model.economics.daily["membership_fees"]
    assert fees.sum() > 0 and np.allclose(fees % 10, 0)  # whole fees only
    assert s["paid_members"].max() > 0 and model.economics.daily["member_discounts"].sum() > 0
    # Members who paid churned less than the rest, up to the horizon.
    until = model.pop.extra["paid_member_until"]
    ever = (until >= 0) & (model.pop.joined_day >= 0)
    never = (until < 0) & (model.pop.joined_day >= 0) & (model.pop.joined_day < 60)
    churned = model.pop.state == State.CHURNED
    assert churned[ever].mean() < churned[never].mean()


def test_gold_threshold_below_silver_is_an_error():
    with pytest.raises(sim.ConfigError, match="gold_spend_rmb = 100.0: must be at least silver_spend_rmb"):
        sim.compose("default", ["mechanisms.loyalty.gold_spend_rmb=100"])


# ------------------------------------------------------------------------------ compiled passes against their numpy forms
def test_add_at_check_in_and_upgrade_kernels_equal_numpy():
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


def test_check_ins_points_census_hazards_and_redemption_equal_numpy():
    from sim.mechanisms import loyalty as L
    rng = np.random.default_rng(5)
    state = random_states(rng)
    tier = rng.integers(0, 3, N_PEOPLE).astype(np.int8)
    points = rng.random(N_PEOPLE) * 800
    member_until = rng.integers(-1, 20, N_PEOPLE).astype(np.int32)
    streak = rng.integers(0, 12, N_PEOPLE).astype(np.int16)
    last = rng.integers(5, 10, N_PEOPLE).astype(np.int32)
    v = rng.permutation(N_PEOPLE)[:1500].astype(np.int64)
    day = 10
    # check-ins
    u = rng.random(v.size)
    s2, l2, p2 = streak.copy(), last.copy(), points.copy()
    who, pts = L._check_ins(v, u, 0.5, day, streak, last, points, 10.0, 0.2, 7)
    w2 = v[u < 0.5]
    s2[w2] = np.where(l2[w2] == day - 1, s2[w2] + 1, 1)
    l2[w2] = day
    pts2 = 10.0 * (1.0 + 0.2 * (np.minimum(s2[w2], 7) - 1))
    p2[w2] += pts2
    for a, b in ((who, w2), (pts, pts2), (streak, s2), (last, l2), (points, p2)):
        np.testing.assert_array_equal(a, b)
    # points for orders (repeat buyers)
    buyers = rng.integers(0, N_PEOPLE, 900)
    basket = rng.random(900) * 80
    earn = np.array([1.0, 1.25, 1.5])
    p2 = points.copy()
    earned = L._earn(buyers, basket, tier, earn, points)
    e2 = basket * earn[tier[buyers]]
    np.add.at(p2, buyers, e2)
    np.testing.assert_array_equal(earned, e2)
    np.testing.assert_array_equal(points, p2)
    # census
    users = np.flatnonzero((state >= State.ACTIVE) & (state <= State.DORMANT))
    counts, members = L._census(users, tier, member_until, day, True)
    np.testing.assert_array_equal(counts, np.bincount(tier[users], minlength=3))
    assert members == np.count_nonzero(member_until[users] >= day)
    counts, members = L._census(users, tier, member_until, day, False)  # no paid membership: no members
    np.testing.assert_array_equal(counts, np.bincount(tier[users], minlength=3))
    assert members == 0
    # streak pull
    vb = rng.random(N_PEOPLE).astype(np.float32)
    vb2 = vb.copy()
    L._streak_pull(w2, state, streak, 7, 0.4, vb)
    on = w2[(state[w2] >= State.ACTIVE) & (state[w2] <= State.DORMANT)]
    vb2[on] += (0.4 * np.minimum(streak[on], 7) / 7).astype(np.float32)
    np.testing.assert_array_equal(vb, vb2)
    # hazard ratios
    hazard = np.array([1.0, 0.85, 0.65], dtype=np.float32)
    for paid in (False, True):
        hr = rng.random(N_PEOPLE).astype(np.float32)
        hr2 = hr.copy()
        L._hazard_ratios(users, tier, hazard, member_until, day, paid, np.float32(0.75), hr)
        ratio = hazard[tier[users]]
        if paid:
            ratio = np.where(member_until[users] >= day, ratio * np.float32(0.75), ratio)
        special = ratio != 1.0
        hr2[users[special]] *= ratio[special]
        np.testing.assert_array_equal(hr, hr2)
    # redemption (distinct buyers)
    b = rng.choice(N_PEOPLE, 400, replace=False)
    cost = rng.random(400) * 10
    c2, p2 = cost.copy(), points.copy()
    L._redeem(b, cost, points, 0.01)
    c2 = np.minimum(c2, p2[b] * 0.01)
    np.subtract.at(p2, b, c2 / 0.01)
    np.maximum(p2, 0.0, out=p2)
    np.testing.assert_array_equal(cost, c2)
    np.testing.assert_array_equal(points, p2)


def test_visitor_offers_equal_numpy():
    from sim.mechanisms.loyalty import _visitor_offers
    rng = np.random.default_rng(6)
    tier = rng.integers(0, 3, N_PEOPLE).astype(np.int8)
    points = rng.random(N_PEOPLE) * 1500
    member_until = rng.integers(-1, 20, N_PEOPLE).astype(np.int32)
    segment = rng.integers(0, 4, N_PEOPLE).astype(np.int8)
    basket_rmb = rng.random(4) * 100 + 20
    v = rng.permutation(N_PEOPLE)[:1500].astype(np.int64)
    u = rng.random(v.size)
    rep = np.array([1.0, 1.1, 1.25])
    basket = (segment, basket_rmb, 1.3, 0.3)
    factor, member, pos, share = _visitor_offers(v, 10, u, (tier, points, member_until), (rep, 1.15, 500.0, 0.5, 0.01, True), basket)
    f2, m2, pos2, share2 = _visitor_offers(v, 10, u, (tier, points, np.full(N_PEOPLE, -1, np.int32)),
                                           (rep, 1.15, 500.0, 0.5, 0.01, False), basket)  # no paid membership: never a member
    assert not m2.any()
    np.testing.assert_array_equal(f2, rep[tier[v]])
    np.testing.assert_array_equal(pos2, pos)
    np.testing.assert_array_equal(share2, share)
    m = member_until[v] >= 10
    np.testing.assert_array_equal(member, m)
    np.testing.assert_array_equal(factor, np.where(m, rep[tier[v]] * 1.15, rep[tier[v]]))
    value = points[v] * 0.01
    pos2 = np.flatnonzero((points[v] >= 500.0) & (u < 0.5))
    basket = basket_rmb[segment[v[pos2]]] * 1.3
    np.testing.assert_array_equal(pos, pos2)
    np.testing.assert_array_equal(share, np.minimum(0.3, value[pos2] / basket))


def test_settle_orders_equals_earn_then_upgrade():
    from sim.mechanisms.loyalty import _earn, _settle_orders, _upgrade
    rng = np.random.default_rng(15)
    tier = rng.integers(0, 3, N_PEOPLE).astype(np.int8)
    points = rng.random(N_PEOPLE) * 800
    spend = rng.random(N_PEOPLE) * 1500
    sat = rng.random(N_PEOPLE).astype(np.float32)
    buyers = rng.integers(0, N_PEOPLE, 1500)
    basket = rng.random(1500) * 80
    earn = np.array([1.0, 1.25, 1.5])
    t2, p2, s2 = tier.copy(), points.copy(), sat.copy()
    earned = _settle_orders(buyers, basket, tier, earn, points, spend, sat, 300.0, 1000.0, np.float32(0.05))
    e2 = _earn(buyers, basket, t2, earn, p2)
    _upgrade(buyers, spend, t2, s2, 300.0, 1000.0, np.float32(0.05))
    for a, b in ((earned, e2), (tier, t2), (points, p2), (sat, s2)):
        np.testing.assert_array_equal(a, b)
