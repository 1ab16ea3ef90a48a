"""Performance round 5, share stage: each kernel gives exactly what the numpy code it replaced gave."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim import behaviour as bh
from sim import kernels
from sim.graph.csr import INDEX

REFERRAL_VARIANTS = [
    [],
    ["mechanisms.referral.per_inviter_cap=0"],
    ["mechanisms.referral.tier_multipliers=[1.0,2.0,0.0,0.5]", "mechanisms.referral.per_inviter_cap=4"],
    ["mechanisms.referral.reward_form=coupon", "mechanisms.referral.reward_half_rmb=3", "mechanisms.referral.fake_account_cost_rmb=0"],
    ["mechanisms.referral.reward_half_rmb=0.0001", "mechanisms.referral.per_inviter_cap=2", "mechanisms.fraud.enabled=true"],
]


def _model(overrides, seed=0, n=600, days=3):
    cfg = sim.compose("default", [f"population.size={n}", "horizon=10", "mechanisms.referral.enabled=true", *overrides], seed=seed)
    model = sim.GrowthModel(cfg)
    for _ in range(days):
        model.step()
    return model


def _inviter_reward(ref, idx, already=0):
    """The numpy form of the inviter's reward the per-tier tables replaced: face value of the next
    rewarded invite of ``idx`` (0 past the cap), tier included."""
    done = ref.rewarded[idx] + already
    value = ref.config.inviter_reward * ref.tiers[np.minimum(done, ref.tiers.size - 1)]
    cap = ref.config.per_inviter_cap
    return value if cap == 0 else np.where(done < cap, value, 0.0)


# ------------------------------------------------------------------------------ referral: the queue
def _queue_reference(days, seed):
    """The dict of per-due-day buckets the queue replaced: a stable sort by delay, one slice per day."""
    from sim.mechanisms.referral import ORGANIC, REFERRAL

    queue, out = {}, []
    for day, (target, senders, edge, delay, window) in enumerate(days):
        bucket = queue.pop(day, [])
        cols = [np.concatenate(c) if c else np.zeros(0, np.int64) for c in zip(*bucket)] if bucket else [np.zeros(0, np.int64)] * 4
        receiver, sender, e, channel = cols
        late = channel == ORGANIC
        out.append((receiver[~late], sender[~late], e[~late], receiver[late], sender[late], e[late]))
        sent = target >= 0
        order = np.argsort(delay, kind="stable")
        ch = np.where(delay + 1 > window, ORGANIC, REFERRAL).astype(np.int8)
        cols = (target[sent].astype(np.int64)[order], senders[sent][order], edge[sent][order], ch[order])
        d_sorted = delay[order]
        for d in np.unique(delay):
            sel = d_sorted == d
            queue.setdefault(day + 1 + int(d), []).append(tuple(c[sel] for c in cols))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_referral_queue_equals_the_per_day_buckets(seed):
    from sim.mechanisms.referral import MAX_DELAY_DAYS, _Queue

    rng = np.random.default_rng(seed)
    days = []
    p = rng.uniform(0.02, 1.0)
    for _ in range(150):
        n = int(rng.integers(0, 400)) if rng.random() < 0.9 else 0
        target = np.where(rng.random(n) < 0.8, rng.integers(0, 1000, n), -1).astype(INDEX)
        senders, edge = rng.integers(0, 1000, n), rng.integers(0, 10**6, n)
        delay = np.minimum(rng.geometric(p, int((target >= 0).sum())) - 1, MAX_DELAY_DAYS)
        days.append((target, senders, edge, delay, int(rng.integers(0, 10))))
    expected = _queue_reference(days, seed)
    q = _Queue(blocks=int(rng.integers(1, 5)))  # small: the queue grows
    for day, (target, senders, edge, delay, window) in enumerate(days):
        got = q.take(day)
        for g, w in zip(got, expected[day]):
            assert g.dtype == np.int64 and np.array_equal(g, w)
        q.push(target, senders, edge, delay, day, window)


# ------------------------------------------------------------------------------ referral: invitations
@pytest.mark.parametrize("overrides", REFERRAL_VARIANTS)
def test_referral_inviters_equal_the_numpy_form(overrides):
    from sim.mechanisms.referral import _inviters

    model = _model(overrides)
    ref, pop, c = model.get_mechanism("referral"), model.pop, model.get_mechanism("referral").config
    rng = np.random.default_rng(1)
    ref.rewarded[:] = rng.integers(0, 8, ref.rewarded.size)
    pop.satisfaction[:] = rng.random(pop.n).astype(np.float32)
    v = np.unique(rng.integers(0, pop.n, 400))
    u = rng.random(v.size)
    # the numpy form: the reward of each inviter's next invitation, its response, the product, a round
    direct = 1.0 + c.reward_uplift * bh.incentive_response(_inviter_reward(ref, v) * ref.perceived, c.reward_half_rmb)
    sharing = bh.sharing_propensity(pop, v, model.day, model.cfg.behaviour.social)
    mean = c.invites_per_visit * pop.param("invite_propensity", v) * direct * sharing
    expected = np.repeat(v, bh.stochastic_round(mean, u))
    got = _inviters(v, pop.segment, pop.seg["invite_propensity"], ref.rewarded, ref.motivation, ref.tiers.size,
                    c.per_inviter_cap, c.invites_per_visit, sharing, u)
    assert got.dtype == v.dtype and np.array_equal(got, expected)


# ------------------------------------------------------------------------------ referral: reward abuse
def _farm_reference(self, model, rng, visitors):
    """The numpy form of ``Referral._farm`` the kernels replaced."""
    c = self.config

    def cap_left(idx, already=0):
        cap = c.per_inviter_cap
        return np.ones(idx.size, dtype=bool) if cap == 0 else self.rewarded[idx] + already < cap

    farmers = visitors[self.farmer[visitors]]
    farmers = farmers[cap_left(farmers)]
    if farmers.size == 0 or c.fakes_per_farm_visit == 0:
        return
    value = _inviter_reward(self, farmers) + c.invitee_reward
    profit = np.maximum(value * self.perceived - c.fake_account_cost_rmb, 0.0)
    n = rng.poisson(c.fakes_per_farm_visit * bh.incentive_response(profit, c.reward_half_rmb))
    owner = np.repeat(farmers, n)
    if owner.size == 0:
        return
    within = kernels.rank_within(owner)
    rewarded = cap_left(owner, within)
    owner, within = owner[rewarded], within[rewarded]
    attempts = owner.size
    model.today.count("referral_fake_accounts", attempts)
    fraud = model.get_mechanism("fraud")
    caught = min(int(fraud.screen(model, attempts, rng)), attempts) if fraud is not None and attempts else 0
    paid = np.ones(attempts, dtype=bool)
    if caught:
        paid[rng.choice(attempts, size=caught, replace=False)] = False
    owner, within = owner[paid], kernels.rank_within(owner[paid])
    if owner.size == 0:
        return
    loss = _inviter_reward(self, owner, within) + c.invitee_reward
    np.add.at(self.rewarded, owner, 1)
    amount = float(loss.sum()) * (1.0 if self.cash else c.redemption)
    model.today.count("referral_fakes_paid", owner.size)
    if amount > 0:
        model.economics.book("referral_fraud", amount)


@pytest.mark.parametrize("overrides", REFERRAL_VARIANTS)
@pytest.mark.parametrize("seed", range(3))
def test_referral_farming_equals_the_numpy_form(overrides, seed):
    overrides = [*overrides, "mechanisms.referral.abuse_share=0.4", "mechanisms.referral.fakes_per_farm_visit=4"]
    a, b = _model(overrides, seed), _model(overrides, seed)
    for model in (a, b):
        ref = model.get_mechanism("referral")
        ref.rewarded[:] = np.random.default_rng(seed + 10).integers(0, 6, ref.rewarded.size)
    v = np.unique(np.random.default_rng(seed + 20).integers(0, a.pop.n, 300))
    for day in range(4):  # the rewarded counts carry over
        _farm_reference(a.get_mechanism("referral"), a, np.random.default_rng(day), v)
        b.get_mechanism("referral")._farm(b, np.random.default_rng(day), v)
    assert np.array_equal(a.get_mechanism("referral").rewarded, b.get_mechanism("referral").rewarded)
    assert a.today.counters == b.today.counters
    for account in a.economics.daily:
        assert np.array_equal(a.economics.daily[account], b.economics.daily[account])


@pytest.mark.parametrize("overrides", REFERRAL_VARIANTS + [["mechanisms.referral.invitee_reward=0"]])
@pytest.mark.parametrize("seed", range(4))
def test_referral_rewards_equal_the_numpy_form(overrides, seed):
    from sim.mechanisms.referral import REFERRAL, _referred, _rewards

    model = _model(overrides, seed)
    ref, pop, c = model.get_mechanism("referral"), model.pop, model.get_mechanism("referral").config
    rng = np.random.default_rng(seed)
    ref.rewarded[:] = rng.integers(0, 6, ref.rewarded.size)
    new = rng.permutation(np.unique(rng.integers(0, pop.n, 300)))
    channel = rng.integers(0, 3, pop.n).astype(pop.channel.dtype) + REFERRAL - 1
    referrer = rng.integers(0, 40, pop.n).astype(pop.referrer.dtype)  # many friends of one inviter
    # the numpy form
    rewarded = ref.rewarded.copy()
    ref_new = new[channel[new] == REFERRAL]
    inviters = referrer[ref_new]
    inviter_value = _inviter_reward(ref, inviters, kernels.rank_within(inviters))
    paid = inviter_value > 0
    np.add.at(rewarded, inviters[paid], 1)
    who = np.concatenate([inviters[paid], ref_new])
    value = np.concatenate([inviter_value[paid], np.full(ref_new.size, c.invitee_reward)])
    keep = value > 0
    referred, got_inviters = _referred(new, channel, referrer)
    assert np.array_equal(referred, ref_new) and np.array_equal(got_inviters, inviters)
    got = _rewards(referred, got_inviters, kernels.rank_within(got_inviters), ref.rewarded, ref.inviter_value, ref.tiers.size,
                   c.per_inviter_cap, float(c.invitee_reward))
    assert np.array_equal(got[0], who[keep]) and np.array_equal(got[1], value[keep])
    assert np.array_equal(ref.rewarded, rewarded)


@pytest.mark.parametrize("seed", range(10))
def test_referral_late_joins_equal_the_numpy_form(seed):
    from sim.graph.csr import unique_sorted
    from sim.mechanisms.referral import ORGANIC, _late_joins

    rng = np.random.default_rng(seed)
    n = 500
    joined_day, referrer = rng.integers(9, 11, n), rng.integers(0, 5, n)
    channel = np.where(rng.random(n) < 0.6, ORGANIC, ORGANIC + 1).astype(np.int8)
    receiver, sender = rng.integers(0, n, 400), rng.integers(0, 5, 400)
    hit = (joined_day[receiver] == 10) & (channel[receiver] == ORGANIC) & (referrer[receiver] == sender)
    assert hit.any()
    assert _late_joins(receiver, sender, 10, joined_day, channel, referrer) == unique_sorted(receiver[hit]).size


# ------------------------------------------------------------------------------ group buying
def _group_model(seed, overrides=()):
    cfg = sim.compose("default", ["population.size=800", "horizon=10", "mechanisms.group_buy.enabled=true", *overrides], seed=seed)
    model = sim.GrowthModel(cfg)
    for _ in range(4):
        model.step()
    rng = np.random.default_rng(seed)
    pop = model.pop
    pop.need[:] = (rng.random(pop.n) * 2).astype(np.float32)
    pop.need_day[:] = rng.integers(0, 4, pop.n)
    pop.state[:] = rng.integers(0, 6, pop.n)
    return model, rng


@pytest.mark.parametrize("seed", range(8))
def test_group_buy_keen_visitors_equal_the_numpy_form(seed):
    from sim.behaviour import drawn_to_deal
    from sim.kernels import free_of, person_bits
    from sim.mechanisms.group_buy import NO_TEAM

    model, rng = _group_model(seed)
    gb, pop, c = model.get_mechanism("group_buy"), model.pop, model.get_mechanism("group_buy").config
    gb.team[:] = np.where(rng.random(pop.n) < 0.3, 5, NO_TEAM)
    v = rng.permutation(np.unique(rng.integers(0, pop.n, 500)))
    bits = person_bits(pop.n)
    free = free_of(v, np.flatnonzero(gb.team != NO_TEAM), bits)
    assert np.array_equal(free, v[gb.team[v] == NO_TEAM]) and not bits.any()
    u = rng.random(free.size) * rng.choice([1.0, 0.2])
    purchase = model.cfg.behaviour.purchase
    need = np.minimum(bh.need_now(pop, free, model.day, purchase), 1.0)
    p = np.minimum(c.open_rate * pop.param("deal_sensitivity", free) * need * gb.pull, 1.0)
    expected = free[u < p]
    deal = pop.seg["deal_sensitivity"]
    for prune in (False, True):
        got = drawn_to_deal(free, u, prune, model.day, bh.demand(pop, purchase), deal, c.open_rate, float(gb.pull))
        assert np.array_equal(got, expected)


@pytest.mark.parametrize("seed", range(8))
def test_group_buy_link_outcomes_equal_the_numpy_form(seed):
    from sim.mechanisms.group_buy import NO_TEAM, _link_outcomes
    from sim.population import State

    model, rng = _group_model(seed)
    gb, pop, c = model.get_mechanism("group_buy"), model.pop, model.get_mechanism("group_buy").config
    gb.team[:] = np.where(rng.random(pop.n) < 0.3, 5, NO_TEAM)
    n_rows = 40
    initiator = rng.integers(0, pop.n, n_rows)
    rows = np.sort(rng.integers(0, n_rows, 600))
    target = rng.integers(0, pop.n, rows.size)
    edge = rng.integers(0, 10**6, rows.size)
    fatigue = rng.random(rows.size)
    purchase = model.cfg.behaviour.purchase
    got = _link_outcomes((target, rows, edge, fatigue), (gb.team, initiator), (pop.segment, pop.state, pop.seg["deal_sensitivity"]),
                         c.newcomer_conversion * gb.pull, c.discount)
    # the numpy form
    state = pop.state[target]
    out = state <= State.AWARE
    p_new = np.minimum(c.newcomer_conversion * gb.pull * (1.0 + pop.param("deal_sensitivity", target[out])) / 2.0 * fatigue[out], 1.0)
    engaged = np.flatnonzero((state == State.ACTIVE) | (state == State.LOYAL))
    engaged = engaged[gb.team[target[engaged]] == NO_TEAM]
    r, t, f = rows[engaged], target[engaged], fatigue[engaged]
    deal = bh.deal_factor(pop.param("deal_sensitivity", t), np.full(t.size, c.discount))
    expected = (target[out], p_new, initiator[rows[out]], edge[out], t, r, f, deal)
    assert len(got) == len(expected)
    for k, (g, w) in enumerate(zip(got, expected)):
        assert np.array_equal(g, w), (k, np.flatnonzero(g != w)[:5], (g - w)[g != w][:5])


@pytest.mark.parametrize("seed", range(20))
def test_group_buy_members_equal_the_numpy_form(seed):
    from sim.mechanisms.group_buy import NO_TEAM, _members

    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(1000, int(rng.integers(1, 60)), replace=False)).astype(np.int64)
    people = rng.choice(500, int(rng.integers(0, 200)), replace=False).astype(np.int64)
    m_team = ids[rng.integers(0, ids.size, people.size)]
    team = np.full(500, NO_TEAM, np.int64)
    team[people] = m_team
    rows = np.unique(rng.integers(0, ids.size, int(rng.integers(0, ids.size + 1))))
    # the numpy form
    chosen = np.zeros(ids.size, dtype=bool)
    chosen[rows] = True
    gone = chosen[np.searchsorted(ids, m_team)]
    want_team = team.copy()
    want_team[people[gone]] = NO_TEAM
    who, row_of, keep_person, keep_team = _members(rows, ids, people, m_team, team)
    assert np.array_equal(who, people[gone]) and np.array_equal(row_of, np.searchsorted(ids, m_team[gone]))
    assert np.array_equal(keep_person, people[~gone]) and np.array_equal(keep_team, m_team[~gone])
    assert np.array_equal(team, want_team)


# ------------------------------------------------------------------------------ content
@pytest.mark.parametrize("seed", range(10))
def test_content_posting_and_reach_equal_the_numpy_form(seed):
    from sim.mechanisms.content import _post_reach, _posting

    rng = np.random.default_rng(seed)
    segment = rng.integers(0, 4, 1000).astype(np.int8)
    affinity = rng.uniform(0.2, 3.0, 4)
    scale, rate = rng.uniform(0.5, 2.0), rng.choice([0.05, 0.3, 1.0])
    people = np.unique(rng.integers(0, 1000, 300))
    u = rng.random(people.size)
    want = people[u < np.minimum(rate * (affinity[segment[people]] * scale), 1.0)]
    assert np.array_equal(_posting(people, u, segment, affinity, scale, rate), want)
    degree = rng.integers(0, 80, 1000).astype(INDEX)
    ugc, kocs = people[: people.size // 2], people[people.size // 2:]
    ugc_u, koc_u = rng.random(ugc.size), rng.random(kocs.size)
    friends, share = rng.uniform(0, 5), rng.uniform(0, 1)
    ugc_reach = bh.stochastic_round(np.full(ugc.size, friends), ugc_u)
    koc_reach = bh.stochastic_round(share * degree[kocs], koc_u)
    poster = np.concatenate([np.repeat(ugc, ugc_reach), np.repeat(kocs, koc_reach)]).astype(np.int64)
    quality = np.concatenate([np.full(int(ugc_reach.sum()), 0.5), np.full(int(koc_reach.sum()), 0.7)])
    got = _post_reach(ugc, ugc_u, friends, 0.5, kocs, koc_u, degree, share, 0.7)
    assert np.array_equal(got[0], poster) and np.array_equal(got[1], quality)


@pytest.mark.parametrize("social", [True, False])
@pytest.mark.parametrize("seed", range(8))
def test_content_impressions_split_equals_the_numpy_form(seed, social):
    from sim.mechanisms.content import EMPTY, _split_impressions
    from sim.population import State

    rng = np.random.default_rng(seed)
    state = rng.integers(0, 6, 1000).astype(np.int8)
    segment = rng.integers(0, 4, 1000).astype(np.int8)
    affinity = rng.uniform(0.2, 3.0, 4)
    n = int(rng.integers(0, 400))
    target = np.where(rng.random(n) < 0.8, rng.integers(0, 1000, n), -1).astype(INDEX)
    quality = rng.choice([0.5, 0.7, 1.0], n)
    sender, edge = (rng.integers(0, 1000, n), rng.integers(0, 10**6, n)) if social else (EMPTY, EMPTY)
    scale, conversion, trust = rng.uniform(0.5, 2.0), rng.uniform(0, 0.5), rng.uniform(1, 2)
    got = _split_impressions(target, quality, sender, edge, state, segment, affinity, scale, conversion, trust)
    # the numpy form
    ok = target >= 0
    t, q = target[ok].astype(np.int64), quality[ok]
    st = state[t]
    out = st <= State.AWARE
    p = np.minimum(conversion * q[out] * trust * (affinity[segment[t[out]]] * scale), 1.0)
    users = (st >= State.ACTIVE) & (st <= State.DORMANT)
    want = (q, t[out], p, sender[ok][out] if social else EMPTY, edge[ok][out] if social else EMPTY, t[users], q[users])
    for g, w in zip(got, want):
        assert np.array_equal(g, w)


# ------------------------------------------------------------------------------ friend assists
@pytest.mark.parametrize("seed", range(8))
def test_assist_ask_outcomes_equal_the_numpy_form(seed):
    from sim.mechanisms.assist import _ask_outcomes
    from sim.population import State

    rng = np.random.default_rng(seed)
    state = rng.integers(0, 6, 1000).astype(np.int8)
    requester = rng.integers(0, 1000, 40)
    rows = np.sort(rng.integers(0, 40, int(rng.integers(0, 500))))
    target, edge, fatigue = rng.integers(0, 1000, rows.size), rng.integers(0, 10**6, rows.size), rng.random(rows.size)
    newcomer, click = rng.random(), rng.random()
    got = _ask_outcomes(target, rows, edge, fatigue, state, requester, newcomer, click)
    st = state[target]
    out = st <= State.AWARE
    users = (st >= State.ACTIVE) & (st <= State.DORMANT)
    p = click * fatigue[users] * np.where(st[users] == State.DORMANT, 0.5, 1.0)
    want = (target[out], newcomer * fatigue[out], requester[rows[out]], edge[out], rows[users], p)
    for g, w in zip(got, want):
        assert np.array_equal(g, w)


@pytest.mark.parametrize("seed", range(10))
def test_group_buy_drop_rows_equals_the_mask(seed):
    from sim.mechanisms.group_buy import _drop_rows

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 50))
    cols = (np.arange(n, dtype=np.int64) * 3, rng.integers(0, 99, n), rng.integers(0, 9, n).astype(np.int32),
            rng.integers(1, 4, n).astype(np.int32), rng.integers(0, 12, n), rng.random(n))
    rows = np.unique(rng.integers(0, max(n, 1), int(rng.integers(0, n + 1)))) if n else np.zeros(0, np.int64)
    keep = np.ones(n, dtype=bool)
    keep[rows] = False
    for got, col in zip(_drop_rows(rows, *cols), cols):
        assert got.dtype == col.dtype and np.array_equal(got, col[keep])


@pytest.mark.parametrize("seed", range(20))
def test_group_buy_public_pick_equals_the_numpy_form(seed):
    from sim.mechanisms.group_buy import _pick_public, _public_teams

    rng = np.random.default_rng(seed)
    team_size = int(rng.integers(2, 5))
    n_teams = int(rng.integers(0, 80))
    members = rng.integers(1, team_size + 1, n_teams).astype(np.int32)
    category = rng.integers(0, 12, n_teams).astype(np.int64)
    wanted = rng.integers(0, 14, int(rng.integers(0, 60))).astype(np.int64)
    r1, r2 = np.random.default_rng(seed + 1), np.random.default_rng(seed + 1)
    # the numpy form
    open_rows = np.flatnonzero(members < team_size)
    order = open_rows[np.argsort(category[open_rows], kind="stable")]
    cats = category[order]
    start = np.searchsorted(cats, wanted, side="left")
    count = np.searchsorted(cats, wanted, side="right") - start
    has = count > 0
    pick = np.full(wanted.size, -1, dtype=np.int64)
    pick[has] = order[start[has] + (r1.random(int(has.sum())) * count[has]).astype(np.int64)]
    idx = np.flatnonzero(has)
    o, st, cn, n_has = _public_teams(members, team_size, category, wanted)
    got_idx, got_rows = _pick_public(o, st, cn, r2.random(n_has))
    assert np.array_equal(got_idx, idx) and np.array_equal(got_rows, pick[idx])
    assert r1.random() == r2.random()


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


@pytest.mark.parametrize("seed", range(6))
def test_consume_need_equals_the_numpy_form(seed):
    from sim.behaviour import consume_need

    model, rng = _group_model(seed)
    pop, purchase = model.pop, model.cfg.behaviour.purchase
    idx = rng.choice(pop.n, 300, replace=False)
    need = bh.need_now(pop, idx, model.day + 2, purchase)
    want_need, want_day = pop.need.copy(), pop.need_day.copy()
    want_need[idx] = np.maximum(need - 1.0, 0.0)
    want_day[idx] = model.day + 2
    consume_need(pop, idx, model.day + 2, purchase)
    assert np.array_equal(pop.need, want_need) and np.array_equal(pop.need_day, want_day)
    assert (need < 1).any() and (need > 1).any()


@pytest.mark.parametrize("seed", range(3))
def test_member_table_and_requesters_list_who_is_taken(seed):
    """free_of reads who is in a team (has an open request) from the member table (the requesters):
    they must list exactly the people whose team (request) column is set."""
    from sim.mechanisms.assist import NONE
    from sim.mechanisms.group_buy import NO_TEAM

    cfg = sim.compose("default", ["population.size=3000", "horizon=40", "mechanisms.group_buy.enabled=true",
                                  "mechanisms.assist.enabled=true", "mechanisms.group_buy.window_days=3"], seed=seed)
    model = sim.GrowthModel(cfg)
    gb, assist = model.get_mechanism("group_buy"), model.get_mechanism("assist")
    seen = 0
    for _ in range(40):
        model.step()
        assert np.array_equal(np.sort(gb.m_person), np.flatnonzero(gb.team != NO_TEAM))
        assert np.array_equal(np.sort(assist.requester), np.flatnonzero(assist.request != NONE))
        seen += min(gb.m_person.size, assist.requester.size) > 0
    assert seen > 10


# ------------------------------------------------------------------------------ bitmaps, registry
@pytest.mark.parametrize("seed", range(10))
def test_flagged_equals_the_column_filter(seed):
    from sim.kernels import bitmap, flagged

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    flag = rng.random(n) < rng.choice([0.0, 0.01, 0.3, 1.0])
    v = rng.permutation(n)[: int(rng.integers(0, n + 1))]
    assert np.array_equal(flagged(v, bitmap(flag)), v[flag[v]])


def test_mechanism_modules_keep_the_registry_order():
    """Importing a mechanism module registers it, and the registry order is the hook order: the
    kernels mechanisms share live in ``sim.kernels`` so that no mechanism module imports another
    (which would register it first)."""
    from sim.mechanisms import REGISTRY

    assert list(REGISTRY) == ["paid_acquisition", "referral", "group_buy", "assist", "distribution", "content",
                              "recommendations", "promotions", "loyalty", "push", "winback", "fraud", "service"]
