"""The fast array kernels give exactly what the plain numpy expressions they replace give."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import N_PEOPLE
from sim import behaviour as bh
from sim import kernels
from sim.graph.csr import INDEX, Graph, scatter_add

index_lists = st.lists(st.integers(0, 49), max_size=400)


@settings(max_examples=60, deadline=None)
@given(index_lists, st.sampled_from([np.int16, np.int32, np.uint8]), st.sampled_from([1, -1, 3]))
def test_scatter_add_equals_add_at(idx, dtype, delta):
    idx = np.array(idx, dtype=np.int64)
    if np.dtype(dtype).kind == "u" and delta < 0:
        delta = 1
    a = np.random.default_rng(0).integers(0, 100, 50).astype(dtype)
    b = a.copy()
    np.add.at(a, idx, np.array(delta).astype(dtype))
    scatter_add(b, idx, delta)
    assert np.array_equal(a, b)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-5, 10**6), max_size=300))
def test_stable_order_and_occurrences_equal_their_plain_forms(keys):
    keys = np.array(keys, dtype=np.int64)
    if keys.size == 0:
        assert kernels.rank_within(keys).size == 0
        return
    order, sorted_keys = kernels.stable_order(keys)
    assert np.array_equal(order, np.argsort(keys, kind="stable"))
    assert np.array_equal(sorted_keys, np.sort(keys))
    rank, distinct, counts = kernels.occurrences(keys)
    expected = np.array([int(np.sum(keys[:i] == k)) for i, k in enumerate(keys)])
    assert np.array_equal(rank, expected)
    d, c = np.unique(keys, return_counts=True)
    assert np.array_equal(distinct, d) and np.array_equal(counts, c)


def test_lookup_tables_equal_the_direct_formulas():
    k = np.arange(0, 3000, 7)

    def table(kind, a, b, keys):
        return bh._table(kind, a, b, bh._pow2(int(keys.max()) + 1))[keys]

    assert np.array_equal(table("tenure", 3.0, 0.1, k), (1.0 + k.astype(np.float64) / 3.0) ** -0.1)
    assert np.array_equal(table("friends", 0.0, 0.3, k), (1.0 + k.astype(np.float64)) ** -0.3)
    assert np.array_equal(table("novelty", 2.0, 5.0, k), 1.0 + 2.0 * np.exp(-k.astype(np.float64) / 5.0))
    assert np.array_equal(table("habit", 0.0, 0.0, k.astype(np.int32)), np.log1p(k.astype(np.int32)))
    shuffled = np.random.default_rng(1).permutation(k)  # the social response and ask memory's tables
    assert np.array_equal(table("power", 0.7, 0.0, shuffled), 0.7 ** shuffled.astype(np.float64))
    assert np.array_equal(table("halving", 7.0, 0.0, shuffled), 0.5 ** (shuffled.astype(np.float64) / 7.0))
    assert np.array_equal(bh.power_table(0.7, 3000)[k], 0.7 ** k.astype(np.float64))


def test_csr_build_matches_a_sort_of_every_directed_edge():
    rng = np.random.default_rng(3)
    n = 300
    u, v = rng.integers(0, n, 4000), rng.integers(0, n, 4000)
    g = Graph.from_edges(n, u, v)
    keep = u != v
    key = np.unique(np.concatenate([u[keep] * n + v[keep], v[keep] * n + u[keep]]))
    assert np.array_equal(g.indices, key % n)
    assert np.array_equal(np.repeat(np.arange(n), g.degree), key // n)
    assert g.indices.dtype == np.int32 and g.indptr.dtype == np.int64


def test_stable_order_of_many_keys_equals_a_stable_argsort():
    keys = np.random.default_rng(5).integers(-50, 2_000, 20_000)
    order, sorted_keys = kernels.stable_order(keys)
    assert np.array_equal(order, np.argsort(keys, kind="stable"))
    assert np.array_equal(sorted_keys, np.sort(keys))
    rank, distinct, counts = kernels.occurrences(keys)
    d, c = np.unique(keys, return_counts=True)
    assert np.array_equal(distinct, d) and np.array_equal(counts, c)
    assert np.array_equal(np.bincount(keys - keys.min())[keys - keys.min()] - 1 >= rank, np.ones(keys.size, bool))


# ------------------------------------------------------------------ compiled kernels (sim.kernels)
def _plain_social_events(receiver, edge, invites, sends, invites_top, sends_top):
    """The numpy form the adoption stage used before sim.kernels.social_events, with the one change
    the kernel makes: events see counts saturated at the caps."""
    prior = invites[receiver].astype(np.int64) + kernels.rank_within(receiver)
    repeats = np.zeros(receiver.size, dtype=np.int64)
    on = np.flatnonzero(edge >= 0)
    repeats[on] = sends[edge[on]].astype(np.int64) + kernels.rank_within(edge[on])
    _, used, times = kernels.occurrences(edge[on])
    sends[used] = np.minimum(sends[used].astype(np.int64) + times, sends_top)
    _, who, times = kernels.occurrences(receiver)
    invites[who] = np.minimum(invites[who].astype(np.int64) + times, invites_top)
    return np.minimum(prior, invites_top), np.minimum(repeats, sends_top)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 29), st.integers(-1, 39), st.booleans()), max_size=300), st.integers(0, 2**31),
       st.sampled_from([0, 1, 3]), st.sampled_from([0.0, 0.4]))
def test_social_events_equals_its_plain_form(events, seed, threshold, below):
    """The compiled pass against the numpy form on the social events (sender >= 0) among others:
    under complex contagion (threshold > 0) the events of receivers with fewer adopting friends than
    the threshold convert with ``below`` times their chance, and the count itself is only read."""

    rng = np.random.default_rng(seed)
    receiver = np.array([r for r, _, _ in events], dtype=np.int64)
    edge = np.array([e for _, e, _ in events], dtype=np.int64)
    sender = np.where(np.array([s for _, _, s in events], dtype=bool), 7, -1).astype(np.int64)
    prob = rng.random(receiver.size)
    invites = rng.integers(0, 12, 30).astype(np.int16)
    sends = rng.integers(0, 9, 40).astype(np.uint8)
    adopted_friends = rng.integers(0, 5, 30).astype(np.int32)
    sat, fade = 0.7 ** np.arange(16.0), 0.5 ** np.arange(16.0)
    state = (invites.copy(), sends.copy(), adopted_friends.copy())
    got = prob.copy()
    invites_state, sends_state, adopted_state = state
    bh.social_events((receiver, sender, edge, got), (invites_state, adopted_state, sends_state, 14, 10),
                     (sat, fade, threshold, below))  # low caps
    expected = (invites.copy(), sends.copy(), adopted_friends.copy())
    social = np.flatnonzero(sender >= 0)
    prior, repeats = _plain_social_events(receiver[social], edge[social], *expected[:2], 14, 10)
    want = prob.copy()
    want[social] *= bh.social_response(prior, repeats, sat, fade)
    if threshold:
        want[social[adopted_friends[receiver[social]] < threshold]] *= below
    assert np.array_equal(got, want)
    for have, should in zip(state, expected):
        assert np.array_equal(have, should)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 19), max_size=200), st.integers(0, 2**31))
def test_first_success_equals_a_lexsort(receiver, seed):

    rng = np.random.default_rng(seed)
    receiver = np.array(receiver, dtype=np.int64)
    u = rng.random(receiver.size)
    u[rng.random(receiver.size) < 0.1] = 0.25  # ties
    prob = rng.choice([0.0, 0.3, 0.5, 1.0], receiver.size)
    best = np.full(20, -1, dtype=np.int32)  # as the engine keeps it
    got = kernels.first_success(receiver, u, prob, best)
    win = np.flatnonzero(u < prob)
    key = u[win] / prob[win]
    order = np.lexsort((key, receiver[win]))
    r = receiver[win][order]
    keep = np.r_[True, r[1:] != r[:-1]] if r.size else np.zeros(0, dtype=bool)
    assert np.array_equal(got, win[order[keep]])
    assert (best == -1).all()  # the scratch is left clean


def _model_midway(days: int = 40):
    """A small run with every mechanism on, stopped part way (users in every state, boosts set)."""
    import sim
    from sim.bench import all_mechanisms_overrides

    cfg = sim.compose("all_mechanisms", ["population.size=3000", f"horizon={days + 5}", *all_mechanisms_overrides()], seed=3)
    model = sim.GrowthModel(cfg)
    for _ in range(days):
        model.step()
    return model


def test_per_user_passes_equal_their_formulas_over_arrays():
    """The compiled passes of visit probability, churn hazard, sharing and latent demand against the
    same formulas (``sim.behaviour``) run by numpy over the users of a run in progress, with and
    without today's boosts: the passes gather and loop, the formulas are written once."""
    from sim.population import State

    model = _model_midway()
    pop, b, day = model.pop, model.cfg.behaviour, model.day
    idx = pop.alive()
    rng = np.random.default_rng(0)
    boost = rng.normal(0, 1, pop.n).astype(np.float32)
    ratio = rng.uniform(0.5, 2, pop.n).astype(np.float32)
    seg, sat = pop.segment[idx], pop.satisfaction[idx].astype(np.float64)
    base = pop.seg["satisfaction"][seg]
    v = b.visit
    odds = np.zeros(6)
    odds[State.DORMANT], odds[State.LOYAL] = np.log(max(v.dormant_odds, 1e-9)), np.log(v.loyal_odds)
    for extra in (None, boost):
        novelty = np.log(bh.novelty_factor(day - pop.joined_day[idx], v.novelty_odds, v.novelty_days))
        x = bh.visit_log_odds(bh.logit(pop.seg["visit_rate"])[seg], pop.propensity[idx].astype(np.float64), novelty, sat, base, v.satisfaction_weight,
                              bh.habit(pop.visits[idx].astype(np.int64)), v.habit_weight, odds[pop.state[idx]],
                              0.0 if extra is None else extra[idx].astype(np.float64))
        # LLVM's exp and numpy's differ in the last bit for a few per cent of arguments
        assert np.allclose(bh.visit_probability(pop, idx, day, v, extra), bh.logistic(x), rtol=1e-15, atol=0)
    c = b.churn
    ratios = np.ones(6)
    ratios[State.LOYAL], ratios[State.DORMANT] = c.loyal_ratio, c.dormant_ratio
    for extra in (None, ratio):
        h = bh.churn_hazard_of(np.float32(c.base_hazard), pop.frailty[idx], bh.tenure_factor(day - pop.joined_day[idx], c.tenure_days, c.tenure_decay),
                               sat, base, c.satisfaction_weight, bh.friends_factor(pop.friends[idx], c.friends_weight),
                               ratios[pop.state[idx]], 1.0 if extra is None else extra[idx].astype(np.float64))
        assert np.allclose(bh.churn_hazard(pop, idx, day, c, extra), h, rtol=1e-14, atol=0)
    social = b.social
    novelty = bh.novelty_factor(day - pop.joined_day[idx], social.novelty_boost, social.novelty_days)
    assert np.allclose(bh.sharing_propensity(pop, idx, day, social), bh.sharing_of(pop.satisfaction[idx], novelty), rtol=1e-15, atol=0)
    p = b.purchase
    for later in (day, day + 30):
        state_ratio = np.where(pop.state[idx] == State.LOYAL, p.loyal_need_ratio, 1.0)
        want = bh.need_accrued(pop.need[idx].astype(np.float64), pop.seg["need_rate"][seg], state_ratio,
                               (later - pop.need_day[idx]).astype(np.float64), p.need_cap)
        assert np.array_equal(bh.need_now(pop, idx, later, p), want)


def test_retention_kernels_equal_the_numpy_forms():
    from sim.population import State

    model = _model_midway()
    pop, b, day = model.pop, model.cfg.behaviour, model.day + 20  # 20 idle days: some become dormant
    alive = pop.alive()
    sat, state = pop.satisfaction.copy(), pop.state.copy()
    base = pop.seg["satisfaction"][pop.segment[alive]]
    s = sat[alive]
    sat[alive] = bh.reverted(s, base, b.satisfaction.reversion)
    idle = day - pop.last_visit[alive]
    state[alive[(idle >= b.churn.dormant_after_days) & (state[alive] != State.DORMANT)]] = State.DORMANT
    columns = pop.segment, pop.satisfaction, pop.seg["satisfaction"], pop.last_visit, pop.state
    got = bh.age_users(alive, day, columns, b.satisfaction.reversion, b.churn.dormant_after_days, State.DORMANT)
    assert np.array_equal(got, idle) and np.array_equal(pop.satisfaction, sat) and np.array_equal(pop.state, state)
    assert (state == State.DORMANT).sum() > 0
    lc = b.lifecycle
    engaged = alive[state[alive] != State.DORMANT]
    s, st = sat[engaged], state[engaged]
    up = (st == State.ACTIVE) & (pop.orders[engaged] >= lc.loyal_min_orders) & (s >= lc.loyal_min_satisfaction)
    down = (st == State.LOYAL) & (s < lc.loyal_min_satisfaction - 0.1)
    state[engaged[up]], state[engaged[down]] = State.LOYAL, State.ACTIVE
    model._loyalty_transitions()
    assert np.array_equal(pop.state, state)


def _plain_sample_non_users(pop, k, rng):
    """GrowthModel.sample_non_users written in numpy."""
    from sim.population import State

    frac = pop.count_non_users() / pop.n
    picked = np.zeros(0, dtype=np.int64)
    for _ in range(8):
        draw = rng.integers(0, pop.n, size=int((k - picked.size) / max(frac, 1e-3) * 1.3) + 8)
        picked = np.concatenate([picked, draw[pop.state[draw] <= State.AWARE]])
        _, first = np.unique(picked, return_index=True)
        picked = picked[np.sort(first)]
        if picked.size >= k:
            return picked[:k]
    return picked


@pytest.mark.parametrize("k", [1, 10, 500, 2999, 10_000])
def test_sample_non_users_equals_its_plain_form(k):
    model = _model_midway(30)
    got = model.sample_non_users(k, np.random.default_rng(k))
    assert np.array_equal(got, _plain_sample_non_users(model.pop, k, np.random.default_rng(k)))
    assert not model._mark.any()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 29), st.floats(-0.75, 0.75, width=32)), max_size=200), st.booleans())
def test_nudging_satisfaction_equals_add_at_then_clip(entries, scalar):

    idx = np.array([i for i, _ in entries], dtype=np.int64)
    delta = np.array([d for _, d in entries], dtype=np.float32)
    if scalar:
        delta = delta[:1] if delta.size else np.array([0.25], dtype=np.float32)
    column = np.random.default_rng(idx.size).random(30).astype(np.float32)
    want = column.copy()
    np.add.at(want, idx, delta if delta.size != 1 else delta[0])
    want[idx] = np.clip(want[idx], 0, 1)
    bh._nudge(idx, delta, column)
    assert np.array_equal(column, want)


@pytest.mark.parametrize("k", [0, 1, 50, 900])
def test_add_to_neighbours_equals_add_at_over_the_rows(k):
    rng = np.random.default_rng(k)
    g = Graph.from_edges(1000, rng.integers(0, 1000, 5000), rng.integers(0, 1000, 5000))
    nodes = rng.integers(0, 1000, k)  # repeats allowed
    target = rng.integers(-5, 5, 1000).astype(np.int32)
    want = target.copy()
    for v in nodes.tolist():
        np.add.at(want, g.neighbours(v), -1)
    g.add_to_neighbours(nodes, target, -1)
    assert np.array_equal(target, want)
    # a second column in the same walk gets the same additions
    other = rng.integers(-5, 5, 1000).astype(np.int32)
    want_other = other.copy()
    for v in nodes.tolist():
        np.add.at(want_other, g.neighbours(v), 2)
    want += want_other - other
    g.add_to_neighbours(nodes, target, 2, also=other)
    assert np.array_equal(target, want) and np.array_equal(other, want_other)


@pytest.mark.parametrize("scalar", [True, False])
def test_add_need_equals_its_plain_form(scalar):
    model = _model_midway(25)
    pop, cfg, day = model.pop, model.cfg.behaviour.purchase, model.day + 3
    rng = np.random.default_rng(1)
    idx = rng.integers(0, pop.n, 400)  # repeats: numpy's last write wins, from the stocks before any write
    amount = 0.7 if scalar else rng.uniform(0, 2, idx.size)
    want_need, want_day = pop.need.copy(), pop.need_day.copy()
    want_need[idx] = np.minimum(cfg.need_cap, bh.need_now(pop, idx, day, cfg) + amount)
    want_day[idx] = day
    bh.add_need(pop, idx, day, amount, cfg)
    assert np.array_equal(pop.need, want_need) and np.array_equal(pop.need_day, want_day)


@pytest.mark.parametrize("offers", [False, True])
def test_decide_purchases_equals_the_numpy_form(offers):

    model = _model_midway(25)
    pop, c, day = model.pop, model.cfg.behaviour.purchase, model.day + 1
    rng = np.random.default_rng(2)
    v = np.sort(rng.choice(pop.n, 800, replace=False))
    u = rng.random(v.size)
    relevance = rng.uniform(0.5, 2, v.size) if offers else None
    discount = rng.uniform(0, 0.5, v.size) if offers else None
    need = bh.need_now(pop, v, day, c)
    p = bh.purchase_probability(need, 1.0 if relevance is None else relevance,
                                bh.deal_factor(pop.param("deal_sensitivity", v), np.zeros(v.size) if discount is None else discount), c.conversion)
    want_buy = u < p
    want_need = pop.need.copy()
    want_need[v] = np.where(want_buy, np.maximum(need - 1.0, 0.0), need)
    none = np.zeros(0)
    offers = (none if relevance is None else relevance, none if discount is None else discount)
    buy = bh.decide_purchases(v, day, bh.demand(pop, c), offers, pop.seg["deal_sensitivity"], c.conversion, u)
    assert np.array_equal(buy, want_buy) and np.array_equal(pop.need, want_need) and (pop.need_day[v] == day).all()
    assert 0 < buy.sum() < v.size


def test_note_asks_equals_its_plain_form():
    model = _model_midway(25)  # group buying and assists on: the memory of requests exists
    pop, cfg, day = model.pop, model.cfg.behaviour.social, model.day + 2
    idx = np.random.default_rng(4).integers(0, pop.n, 3000)  # many repeats: some over the tolerance
    asked, asked_day, sat = (pop.extra[bh.ASKED].copy(), pop.extra[bh.ASKED_DAY].copy(), pop.satisfaction.copy())
    _, people, times = kernels.occurrences(idx)
    before = asked[people] * 0.5 ** ((day - asked_day[people]) / cfg.ask_half_life_days)
    after = before + times
    asked[people], asked_day[people] = after, day
    excess = np.maximum(after - np.maximum(before, cfg.ask_tolerance), 0.0)
    sat[people] = np.clip(sat[people] - cfg.ask_annoyance * excess, 0, 1)
    got = bh.note_asks(pop, idx, day, cfg)
    assert np.array_equal(np.sort(got), people) and (excess > 0).any()
    assert np.array_equal(pop.extra[bh.ASKED], asked) and np.array_equal(pop.extra[bh.ASKED_DAY], asked_day)
    assert np.array_equal(pop.satisfaction, sat) and not pop.extra[bh.ASKED_SCRATCH].any()


# ------------------------------------------------------------------------------ compiled passes against their numpy forms
@pytest.mark.parametrize("seed", range(20))
def test_links_to_send_and_sent_equal_the_numpy_form(seed):
    from sim.kernels import links_sent, links_to_send

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 50))
    mean, u, owner = rng.uniform(0, 6, n), rng.random(n), rng.integers(0, 1000, n)
    rows = np.repeat(np.arange(n), bh.stochastic_round(mean, u))
    got_rows, got_owner = links_to_send(mean, u, owner)
    assert np.array_equal(got_rows, rows) and np.array_equal(got_owner, owner[rows])
    target = np.where(rng.random(rows.size) < 0.8, rng.integers(0, 1000, rows.size), -1).astype(INDEX)
    edge = np.where(target >= 0, rng.integers(0, 10**6, rows.size), -1)
    ok = target >= 0
    for g, w in zip(links_sent(rows, target, edge), (rows[ok], target[ok].astype(np.int64), edge[ok])):
        assert g.dtype == np.int64 and np.array_equal(g, w)


@pytest.mark.parametrize("seed", range(10))
def test_flagged_equals_the_column_filter(seed):
    from sim.kernels import bitmap, flagged

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    flag = rng.random(n) < rng.choice([0.0, 0.01, 0.3, 1.0])
    v = rng.permutation(n)[: int(rng.integers(0, n + 1))]
    assert np.array_equal(flagged(v, bitmap(flag)), v[flag[v]])


def test_positions_in_equals_isin():
    from sim.kernels import positions_in
    rng = np.random.default_rng(17)
    v = rng.permutation(N_PEOPLE)[:2000].astype(np.int64)
    people = rng.integers(0, N_PEOPLE, 700)
    people[:50] = v[:50]
    mark = np.zeros(N_PEOPLE, dtype=bool)
    np.testing.assert_array_equal(positions_in(v, people, mark), np.flatnonzero(np.isin(v, people)))
    assert not mark.any()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 50, width=32), max_size=200), st.floats(0.0625, 1, width=32), st.integers(1, 1200))
def test_fading_equals_numpy_until_a_value_would_turn_subnormal(values, factor, days):
    """Day after day, ``fade`` gives numpy's ``column *= factor`` while values are normal float32
    numbers, and zero where numpy would reach a subnormal one (which it takes a hundred times longer
    to multiply)."""
    faded = np.array(values, dtype=np.float32)
    plain = faded.copy()
    factor = np.float32(factor)
    tiny = np.finfo(np.float32).tiny
    for _ in range(days):
        kernels.fade(faded, factor)
        plain *= factor
        plain[plain < tiny] = 0.0  # numpy's value while normal; zero from the first subnormal one
    assert np.array_equal(faded, plain)
    assert not ((faded > 0) & (faded < tiny)).any()


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(-20, 20), max_size=60), st.lists(st.integers(-25, 25), min_size=1, max_size=20))
def test_the_searches_equal_numpys(values, queries):
    a = np.sort(np.asarray(values, dtype=np.int64))
    for x in queries:
        assert kernels.search_sorted(a, x) == np.searchsorted(a, x)
        assert kernels.search_sorted_right(a, x) == np.searchsorted(a, x, side="right")
    cdf = np.cumsum(np.asarray(values, dtype=np.float64) ** 2) / 7.0
    for u in np.random.default_rng(len(values)).random(20) * (cdf[-1] if cdf.size else 1.0):
        assert kernels.search_sorted_right(cdf, u) == np.searchsorted(cdf, u, side="right")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), max_size=300), st.lists(st.floats(-1e6, 1e6, width=32), min_size=1, max_size=50))
def test_positions_and_largest_equal_numpys(mask, values):
    np.testing.assert_array_equal(kernels.nonzero_positions(np.asarray(mask, dtype=bool)), np.flatnonzero(mask))
    a = np.asarray(values, dtype=np.float64)
    assert kernels.largest(a) == a.max()
    a[len(values) // 2] = np.nan
    assert np.isnan(kernels.largest(a))
