"""Round-5 mechanism kernels compute what the numpy code they replaced computed, bit for bit.

Each kernel is compared with the plain numpy form it replaced (copied here) on random inputs with
the same uniforms, so a changed rounding or a wrong order of draws fails here first.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim import behaviour as bh
from sim.population import State

N = 5000


def _state(rng, n=N):
    return rng.integers(0, 6, n).astype(np.int8)


# ------------------------------------------------------------------------------ distribution
def test_posts_equals_numpy():
    from sim.mechanisms.distribution import _posts
    rng = np.random.default_rng(1)
    state = _state(rng)
    m = 3000
    sender = rng.integers(0, N, m).astype(np.int64)
    target = rng.integers(-1, N, m).astype(np.int32)
    target[rng.random(m) < 0.2] = -1
    edge = rng.integers(0, 10**6, m).astype(np.int64)
    tb, td = np.full(N, -1, np.int32), np.full(N, -1, np.int32)
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
    state = _state(rng)
    r = np.sort(rng.choice(N, 800, replace=False)).astype(np.int64)
    since = np.full(N, -1, np.int32)
    since[r] = rng.integers(0, 60, r.size)
    earnings = rng.random(N) * 5
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
    state = _state(rng)
    degree = rng.integers(0, 60, N).astype(np.int32)
    segment = rng.integers(0, 4, N).astype(np.int8)
    prop = rng.random(4) * 2
    since = np.where(rng.random(N) < 0.1, 3, -1).astype(np.int32)
    resellers = np.flatnonzero(since >= 0).astype(np.int64)
    earnings = rng.random(N)
    v = rng.permutation(N)[:2000].astype(np.int64)
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


# ------------------------------------------------------------------------------ loyalty
def test_loyalty_kernels_equal_numpy():
    from sim.mechanisms import loyalty as L
    rng = np.random.default_rng(5)
    state = _state(rng)
    tier = rng.integers(0, 3, N).astype(np.int8)
    points = rng.random(N) * 800
    member_until = rng.integers(-1, 20, N).astype(np.int32)
    streak = rng.integers(0, 12, N).astype(np.int16)
    last = rng.integers(5, 10, N).astype(np.int32)
    v = rng.permutation(N)[:1500].astype(np.int64)
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
    buyers = rng.integers(0, N, 900)
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
    vb = rng.random(N).astype(np.float32)
    vb2 = vb.copy()
    L._streak_pull(w2, state, streak, 7, 0.4, vb)
    on = w2[(state[w2] >= State.ACTIVE) & (state[w2] <= State.DORMANT)]
    vb2[on] += (0.4 * np.minimum(streak[on], 7) / 7).astype(np.float32)
    np.testing.assert_array_equal(vb, vb2)
    # hazard ratios
    hazard = np.array([1.0, 0.85, 0.65], dtype=np.float32)
    for paid in (False, True):
        hr = rng.random(N).astype(np.float32)
        hr2 = hr.copy()
        L._hazard_ratios(users, tier, hazard, member_until, day, paid, np.float32(0.75), hr)
        ratio = hazard[tier[users]]
        if paid:
            ratio = np.where(member_until[users] >= day, ratio * np.float32(0.75), ratio)
        special = ratio != 1.0
        hr2[users[special]] *= ratio[special]
        np.testing.assert_array_equal(hr, hr2)
    # redemption (distinct buyers)
    b = rng.choice(N, 400, replace=False)
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
    tier = rng.integers(0, 3, N).astype(np.int8)
    points = rng.random(N) * 1500
    member_until = rng.integers(-1, 20, N).astype(np.int32)
    segment = rng.integers(0, 4, N).astype(np.int8)
    basket_rmb = rng.random(4) * 100 + 20
    v = rng.permutation(N)[:1500].astype(np.int64)
    u = rng.random(v.size)
    rep = np.array([1.0, 1.1, 1.25])
    basket = (segment, basket_rmb, 1.3, 0.3)
    factor, member, pos, share = _visitor_offers(v, 10, u, (tier, points, member_until), (rep, 1.15, 500.0, 0.5, 0.01, True), basket)
    f2, m2, pos2, share2 = _visitor_offers(v, 10, u, (tier, points, np.full(N, -1, np.int32)), (rep, 1.15, 500.0, 0.5, 0.01, False),
                                           basket)  # no paid membership: never a member
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


# ------------------------------------------------------------------------------ recommendations
def test_show_compact_equals_show_and_numpy():
    from sim.mechanisms.recommendations import _show, _show_compact
    from sim.streams import choice_cdf
    rng = np.random.default_rng(8)
    C = 12
    fav = rng.integers(0, C, N).astype(np.int16)
    orders = rng.integers(0, 5, N).astype(np.int32)
    sat = rng.random(N).astype(np.float32)
    cdf = choice_cdf(rng.random(C))
    recognised = rng.random(C)
    v = rng.permutation(N)[:2000].astype(np.int64)
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


# ------------------------------------------------------------------------------ push
@pytest.mark.parametrize("per_day", [0.3, 1.0, 2.6])
def test_push_schedule_equals_numpy(per_day):
    from sim.mechanisms.push import _reachable, _schedule
    rng = np.random.default_rng(9)
    opted_out = rng.random(N) < 0.2
    fatigue = (rng.random(N) * 30).astype(np.float32)
    alive = np.sort(rng.choice(N, 3000, replace=False))
    users = _reachable(alive, opted_out)
    np.testing.assert_array_equal(users, alive[~opted_out[alive]])
    u = rng.random(users.size)
    sent, n, total, top, x = _schedule(users, per_day, u, fatigue, np.float32(-0.05))
    n2 = bh.stochastic_round(np.full(users.size, per_day), u)
    np.testing.assert_array_equal(sent, users[n2 > 0])
    np.testing.assert_array_equal(n, n2[n2 > 0])
    assert total == n2.sum() and top == n2.max(initial=0)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(np.exp(x), np.exp(-0.05 * fatigue[sent]))


# ------------------------------------------------------------------------------ promotions
def test_drawn_equals_isin():
    from sim.mechanisms.promotions import _drawn
    rng = np.random.default_rng(10)
    channel = rng.integers(0, 4, N).astype(np.int8)
    new = rng.choice(N, 400, replace=False)
    targets = rng.integers(0, N, 600)  # repeats allowed
    targets[:100] = new[:100]
    mark = np.zeros(N, dtype=bool)
    got = _drawn(new, targets, channel, 0, mark)
    np.testing.assert_array_equal(got, new[np.isin(new, targets) & (channel[new] == 0)])
    assert not mark.any()


def test_withdrawal_equals_numpy():
    from sim.mechanisms.promotions import _withdrawal
    rng = np.random.default_rng(11)
    habit = (rng.random(N) * rng.integers(0, 2, N) * 0.05).astype(np.float32)
    habit[:20] = np.float32(0.01)
    segment = rng.integers(0, 4, N).astype(np.int8)
    ds = rng.random(4) * 2
    users = np.sort(rng.choice(N, 3000, replace=False))
    hr = rng.random(N).astype(np.float32)
    hr2 = hr.copy()
    _withdrawal(users, habit, np.float32(0.01), np.float32(0.5), ds, segment, hr)
    u = users[habit[users] > 0.01]
    hr2[u] *= (1.0 + 0.5 * habit[u] * ds[segment[u]]).astype(np.float32)
    np.testing.assert_array_equal(hr, hr2)


def test_offers_and_expansion_equal_the_numpy_loop():
    from sim.mechanisms.promotions import _expansion, _offers
    rng = np.random.default_rng(12)
    day, nud = 40, 7
    joined = rng.integers(0, 41, N).astype(np.int32)
    segment = rng.integers(0, 4, N).astype(np.int8)
    ds = rng.random(4) * 2
    keys = np.array([5, 100_000, 200_003, 300_000], dtype=np.int64)
    used = rng.choice(np.append(keys, -1), N).astype(np.int32)
    expanded = rng.choice(np.append(keys, -1), N).astype(np.int32)
    reach = np.array([0.3, 1.0, 0.8, 1.0])
    new_only = np.array([False, False, True, False])
    single_use = np.array([False, True, True, False])
    discount = np.array([0.3, 0.2, 0.2, 0.3])  # ties: the earlier run wins
    coef = rng.random(4)
    v = rng.permutation(N)[:2500].astype(np.int64)
    u = np.random.default_rng(13).random((4, v.size))
    best, run_of, pos = _offers(v, u, (reach, new_only, single_use, discount, keys), day, (joined, used), nud)
    # the numpy loop it replaced, with one rng.random(v.size) per run
    r = np.random.default_rng(13)
    best2, run2 = np.zeros(v.size), np.full(v.size, -1, dtype=np.int64)
    for j in range(4):
        ok = r.random(v.size) < reach[j]
        if new_only[j]:
            ok &= day - joined[v] < nud
        if single_use[j]:
            ok &= used[v] != keys[j]
        better = ok & (discount[j] > best2)
        best2[better], run2[better] = discount[j], j
    pos2 = np.flatnonzero(run2 >= 0)
    np.testing.assert_array_equal(best, best2)
    np.testing.assert_array_equal(run_of, run2)
    np.testing.assert_array_equal(pos, pos2)
    e2 = expanded.copy()
    people, amount = _expansion(v, pos, run_of, keys, coef, expanded, ds, segment)
    people2, amount2 = [], []
    for j in range(4):
        mine = pos2[run2[pos2] == j]
        fresh = mine[e2[v[mine]] != keys[j]]
        people2.append(v[fresh])
        amount2.append(coef[j] * ds[segment[v[fresh]]])
        e2[v[fresh]] = keys[j]
    order = np.argsort(np.concatenate(people2))
    got = np.argsort(people)
    np.testing.assert_array_equal(people[got], np.concatenate(people2)[order])
    np.testing.assert_array_equal(amount[got], np.concatenate(amount2)[order])
    np.testing.assert_array_equal(expanded, e2)


@pytest.mark.parametrize("tolerance", [15.0, 15.1, 0.7])
def test_push_opt_out_equals_numpy(tolerance):
    from sim.mechanisms.push import _opt_out, _tired
    rng = np.random.default_rng(14)
    opted_out = rng.random(N) < 0.2
    fatigue = (rng.random(N) * 3 * tolerance).astype(np.float32)
    fatigue[:50] = np.float32(tolerance)  # ties with the tolerance
    fatigue[50:100] = np.nextafter(np.float32(tolerance), np.float32(0))
    alive = np.sort(rng.choice(N, 3000, replace=False))
    alive[:10] = np.arange(10)
    alive = np.unique(alive)
    users, opted = _tired(alive, opted_out, fatigue, np.float32(tolerance))
    users2 = alive[~opted_out[alive] & (fatigue[alive] > tolerance)]
    np.testing.assert_array_equal(users, users2)
    u = rng.random(users.size)
    o2 = opted_out.copy()
    out = _opt_out(users, u, fatigue, np.float32(tolerance), np.float32(0.02 * 30), opted_out)
    excess = fatigue[users2] / tolerance - 1.0
    out2 = users2[u < np.minimum(1.0, 0.02 * 30 * excess)]
    o2[out2] = True
    np.testing.assert_array_equal(out, out2)
    np.testing.assert_array_equal(opted_out, o2)
    assert opted + out.size == np.count_nonzero(opted_out[alive])


def test_settle_orders_equals_earn_then_upgrade():
    from sim.mechanisms.loyalty import _earn, _settle_orders, _upgrade
    rng = np.random.default_rng(15)
    tier = rng.integers(0, 3, N).astype(np.int8)
    points = rng.random(N) * 800
    spend = rng.random(N) * 1500
    sat = rng.random(N).astype(np.float32)
    buyers = rng.integers(0, N, 1500)
    basket = rng.random(1500) * 80
    earn = np.array([1.0, 1.25, 1.5])
    t2, p2, s2 = tier.copy(), points.copy(), sat.copy()
    earned = _settle_orders(buyers, basket, tier, earn, points, spend, sat, 300.0, 1000.0, np.float32(0.05))
    e2 = _earn(buyers, basket, t2, earn, p2)
    _upgrade(buyers, spend, t2, s2, 300.0, 1000.0, np.float32(0.05))
    for a, b in ((earned, e2), (tier, t2), (points, p2), (sat, s2)):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------ winback
def test_coupon_holders_equal_numpy():
    from sim.mechanisms.winback import _holders
    rng = np.random.default_rng(16)
    coupon_until = rng.integers(-1, 20, N).astype(np.int32)
    segment = rng.integers(0, 4, N).astype(np.int8)
    basket_rmb = np.array([8.0, 45.0, 80.0, 120.0])
    v = rng.permutation(N)[:2000].astype(np.int64)
    pos, share = _holders(v, coupon_until, 10, segment, basket_rmb, 1.2, 10.0)
    pos2 = np.flatnonzero(coupon_until[v] >= 10)
    np.testing.assert_array_equal(pos, pos2)
    np.testing.assert_array_equal(share, np.minimum(0.9, 10.0 / (basket_rmb[segment[v[pos2]]] * 1.2)))


def test_positions_in_equals_isin():
    from sim.kernels import positions_in
    rng = np.random.default_rng(17)
    v = rng.permutation(N)[:2000].astype(np.int64)
    people = rng.integers(0, N, 700)
    people[:50] = v[:50]
    mark = np.zeros(N, dtype=bool)
    np.testing.assert_array_equal(positions_in(v, people, mark), np.flatnonzero(np.isin(v, people)))
    assert not mark.any()
