"""The engine's compiled stage passes (exposure, joining, visits, orders) equal their plain numpy forms.

Each pass is compared, bit for bit, with the same step written in numpy on random inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim import kernels
from sim.population import State


@pytest.mark.parametrize("seed", range(4))
def test_keep_reachable_equals_numpy(seed):
    rng = np.random.default_rng(seed)
    n, k = 300, int(rng.integers(0, 900))
    state = rng.integers(State.POTENTIAL, State.CHURNED + 1, n).astype(np.int8)
    aware_day = np.full(n, -1, dtype=np.int32)
    events = (rng.integers(0, n, k), rng.integers(0, 7, k).astype(np.int8), rng.random(k),
              rng.integers(-1, n, k), rng.integers(-1, 5000, k))
    # numpy: the mask, then a gather per column; the first reached become aware
    ok = state[events[0]] <= State.AWARE
    expect = [col[ok] for col in events]
    expect_state, expect_aware = state.copy(), aware_day.copy()
    fresh = events[0][state[events[0]] == State.POTENTIAL]
    expect_state[fresh], expect_aware[fresh] = State.AWARE, 9

    got = [col.copy() for col in events]
    m = kernels.keep_reachable(*got, (state, aware_day, state <= State.AWARE), 9, (State.POTENTIAL, State.AWARE))
    for g, e in zip(got, expect):
        np.testing.assert_array_equal(g[:m], e)
    np.testing.assert_array_equal(state, expect_state)
    np.testing.assert_array_equal(aware_day, expect_aware)


def test_join_columns_equal_numpy():
    rng = np.random.default_rng(5)
    n = 500
    cols = {"state": np.zeros(n, np.int8), "joined_day": np.full(n, -1, np.int32), "channel": np.full(n, -1, np.int8),
            "referrer": np.full(n, -1, np.int32), "last_visit": np.full(n, -1, np.int32), "visits": np.zeros(n, np.int32),
            "need": rng.random(n).astype(np.float32), "need_day": np.zeros(n, np.int32),
            "satisfaction": rng.random(n).astype(np.float32), "frailty": rng.gamma(2.0, 0.5, n).astype(np.float32)}
    idx = rng.choice(n, 200, replace=False)
    channel = rng.integers(0, 7, idx.size).astype(np.int8)
    sender = rng.integers(-1, n, idx.size)
    channel_frailty = rng.uniform(0.5, 1.5, 7)
    expect = {k: v.copy() for k, v in cols.items()}
    # numpy: the engine's join, written with fancy indexing
    expect["state"][idx] = State.ACTIVE
    expect["joined_day"][idx] = 12
    expect["channel"][idx] = channel
    expect["referrer"][idx] = sender
    expect["last_visit"][idx] = 12
    expect["visits"][idx] = 1
    expect["need"][idx] = 0.3
    expect["need_day"][idx] = 12
    expect["satisfaction"][idx] = np.clip(expect["satisfaction"][idx] - 0.35, 0, 1)
    expect["frailty"][idx] *= channel_frailty[channel].astype(np.float32)
    kernels.join_columns(idx, channel, sender, 12, tuple(cols.values()),
                         (State.ACTIVE, np.float32(0.3), np.float32(0.35), channel_frailty.astype(np.float32)))
    for k in cols:
        np.testing.assert_array_equal(cols[k], expect[k], err_msg=k)


def test_book_buyers_equals_numpy():
    rng = np.random.default_rng(9)
    n = 50
    orders, spend = rng.integers(0, 5, n).astype(np.int32), rng.random(n) * 100
    satisfaction = rng.random(n).astype(np.float32)
    buyers = rng.integers(0, n, 200)  # repeats add up
    basket, u = rng.random(200) * 80, rng.random(200)
    rate, shock, gain = 0.3, 0.4, 0.05
    # numpy: book_orders, written with add.at
    e_orders, e_spend, e_sat = orders.copy(), spend.copy(), satisfaction.copy()
    np.add.at(e_orders, buyers, 1)
    np.add.at(e_spend, buyers, basket)
    np.add.at(e_sat, buyers, np.where(u < rate, -shock, gain).astype(np.float32))
    e_sat[buyers] = np.clip(e_sat[buyers], 0, 1)
    kernels.book_buyers(buyers, basket, u, rate, np.float32(-shock), np.float32(gain), orders, spend, satisfaction)
    np.testing.assert_array_equal(orders, e_orders)
    np.testing.assert_array_equal(spend, e_spend)
    np.testing.assert_array_equal(satisfaction, e_sat)


def test_exposures_buffers_equal_concatenated_parts():
    """Batches added one after another (growing the buffers several times) read back as the
    concatenation of the batches, with the constant columns filled."""
    from sim.engine import Exposures
    rng = np.random.default_rng(2)
    ex = Exposures(capacity=4)
    parts = []
    for k in range(12):
        n = int(rng.integers(0, 40))
        receiver = rng.integers(0, 1000, n).astype(np.int32 if k % 2 else np.int64)
        prob = rng.random(n) if k % 3 else 0.25
        social = k % 4 == 1
        sender, edge = (rng.integers(0, 1000, n), rng.integers(0, 9000, n)) if social else (None, None)
        ex.add(receiver, k % 7, prob, sender, edge)
        parts.append((receiver.astype(np.int64), np.full(n, k % 7, np.int8), np.broadcast_to(prob, (n,)).astype(np.float64),
                      sender if social else np.full(n, -1), edge if social else np.full(n, -1)))
    got = ex.arrays()
    assert len(ex) == sum(p[0].size for p in parts)
    for col, dtype, expect in zip(got, Exposures.COLUMNS, zip(*parts)):
        assert col.dtype == dtype
        np.testing.assert_array_equal(col, np.concatenate(expect))


def test_visit_kernels_equal_numpy():
    rng = np.random.default_rng(4)
    n, day = 400, 20
    state = rng.integers(State.ACTIVE, State.DORMANT + 1, n).astype(np.int8)
    joined_day = rng.integers(0, day + 1, n).astype(np.int32)
    users = np.sort(rng.choice(n, 250, replace=False)).astype(np.int64)
    last_visit, visits = rng.integers(0, day, n).astype(np.int32), rng.integers(0, 9, n).astype(np.int32)
    # numpy: the engine's visit stage, written with masks
    cand = users[joined_day[users] < day]
    np.testing.assert_array_equal(kernels.joined_before(users, joined_day, day), cand)
    u, p = rng.random(cand.size), rng.random(cand.size)
    visitors = cand[u < p]
    back = visitors[state[visitors] == State.DORMANT]
    e_last, e_visits = last_visit.copy(), visits.copy()
    e_last[visitors] = day
    e_visits[visitors] += 1
    got_visitors, got_back = kernels.record_visits(cand, u, p, day, state, State.DORMANT, last_visit, visits)
    np.testing.assert_array_equal(got_visitors, visitors)
    np.testing.assert_array_equal(got_back, back)
    np.testing.assert_array_equal(last_visit, e_last)
    np.testing.assert_array_equal(visits, e_visits)


@pytest.mark.parametrize("with_recommendations", [False, True])
def test_order_categories_equal_numpy(with_recommendations):
    rng = np.random.default_rng(7)
    n, k, C = 300, 500, 12
    favourite = rng.integers(0, C, n).astype(np.int16)
    buyers = rng.integers(0, n, k)
    u, taste_u, other = rng.random(k), rng.random(k), rng.integers(0, C, k)
    recommended = np.where(rng.random(k) < 0.5, rng.integers(0, C, k), -1) if with_recommendations else None
    follow = rng.random(k) if with_recommendations else None
    # numpy: GrowthModel.choose_category, written with where
    expect = np.where(taste_u < 0.6, favourite[buyers], other).astype(np.int64)
    if recommended is not None:
        take = (recommended >= 0) & (u < follow)
        expect[take] = recommended[take]
    got = kernels.order_categories(buyers, u, taste_u, 0.6, other, favourite,
                                   np.zeros(0, np.int64) if recommended is None else recommended,
                                   np.zeros(0) if follow is None else follow)
    np.testing.assert_array_equal(got, expect)


