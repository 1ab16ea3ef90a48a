"""Friend assist (助力 / 砍价): clicks unlock a deal, non-users click by joining, asking too often annoys."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim import behaviour as bh
from sim.config import SocialConfig

# An established platform (many friends already users), so that requests go mostly to users.
BASE = ("population.size=5000", "horizon=60", "mechanisms.group_buy.enabled=false", "adoption.seed_fraction=0.3")


def run(*overrides: str, seed: int = 0):
    return sim.simulate(sim.compose("share_group_buy", [*BASE, *overrides], seed=seed))


def test_each_unlocked_request_is_one_order_and_the_platform_pays_the_discount():
    r = run("mechanisms.assist.start_rate=0.2")
    d = r.daily
    assert d["assist_unlocked"].sum() > 10
    assert (d["orders_assist"] == d["assist_unlocked"]).all()
    assert d["assist_clicks"].sum() >= r.config.mechanisms["assist"].clicks_needed * d["assist_unlocked"].sum()
    np.testing.assert_allclose(d["cost_assist_subsidy"], d["assist_subsidy_rmb"])
    assert d["new_assist"].sum() > 0  # friends who were not users joined to click


def test_a_free_item_costs_the_platform_its_price_and_adds_no_gmv(monkeypatch):
    model = sim.GrowthModel(sim.compose("share_group_buy", [*BASE, "mechanisms.assist.start_rate=0.2", "mechanisms.assist.discount=1.0"]))
    paid = []
    book = model.book_orders

    def spy(buyers, basket, category, source, rng):
        if isinstance(source, str) and source == "assist":
            paid.append(np.asarray(basket))
        return book(buyers, basket, category, source, rng)

    monkeypatch.setattr(model, "book_orders", spy)
    model.run()
    d = model.metrics.daily(model.economics)
    assert d["orders_assist"].sum() == sum(p.size for p in paid) > 0
    assert all((p == 0).all() for p in paid)
    half = run("mechanisms.assist.start_rate=0.2", "mechanisms.assist.discount=0.5").daily
    per_order_free = d["cost_assist_subsidy"].sum() / d["orders_assist"].sum()
    per_order_half = half["cost_assist_subsidy"].sum() / half["orders_assist"].sum()
    assert per_order_free > 1.5 * per_order_half


def test_asking_too_often_wears_friends_out():
    """The more requests go round, the less each one is answered, and the less satisfied the people
    asked become; without fatigue and annoyance neither happens."""
    def clicks_per_ask(rate, *extra):
        clicks = asks = 0
        for seed in range(2):
            d = run(f"mechanisms.assist.start_rate={rate}", *extra, seed=seed).daily
            clicks, asks = clicks + d["assist_clicks"].sum(), asks + d["assist_asks"].sum()
        return clicks / asks

    assert clicks_per_ask(0.6) < clicks_per_ask(0.05)
    tired = clicks_per_ask(0.6)
    untiring = clicks_per_ask(0.6, "behaviour.social.ask_fade=1", "behaviour.social.ask_annoyance=0")
    assert tired < 0.8 * untiring


def test_requests_beyond_the_tolerance_cost_satisfaction():
    def satisfaction(annoyance):
        model = sim.GrowthModel(sim.compose("share_group_buy", [*BASE, "mechanisms.assist.start_rate=0.6",
                                                                f"behaviour.social.ask_annoyance={annoyance}"]))
        model.run()
        asked = model.pop.extra[bh.ASKED] > 0
        return model.pop.satisfaction[asked].mean()

    assert satisfaction(0.05) < satisfaction(0.0) - 0.01


def test_the_memory_of_requests_fades_and_annoys_only_beyond_the_tolerance():
    cfg = SocialConfig(ask_half_life_days=7.0, ask_tolerance=2.0, ask_annoyance=0.1, ask_fade=0.5)

    class Pop:
        def __init__(self):
            self.extra = {bh.ASKED: np.zeros(3, np.float32), bh.ASKED_DAY: np.zeros(3, np.int32),
                          bh.ASKED_SCRATCH: np.zeros(3, np.int32)}
            self.satisfaction = np.full(3, 0.5, np.float32)

    pop = Pop()
    bh.note_asks(pop, np.array([0, 0, 1]), 0, cfg)  # person 0 asked twice, person 1 once
    assert np.allclose(pop.satisfaction, 0.5)  # within the tolerance
    assert bh.recent_asks(pop, np.array([0]), 7, cfg)[0] == 1.0  # halved after a half-life
    bh.note_asks(pop, np.array([0, 0, 0]), 0, cfg)  # five in all: three beyond the tolerance
    assert np.isclose(pop.satisfaction[0], 0.5 - 0.1 * 3)
    assert bh.ask_response(np.array([0.0, 1.0, 2.0]), cfg).tolist() == [1.0, 0.5, 0.25]


# ------------------------------------------------------------------------------ compiled passes against their numpy forms
@pytest.mark.parametrize("seed", range(30))
def test_assist_click_count_equals_the_numpy_form(seed):
    from sim.mechanisms.assist import _count_clicks

    rng = np.random.default_rng(seed)
    needed = int(rng.integers(1, 5))
    ids = np.sort(rng.choice(100, size=int(rng.integers(0, 30)), replace=False)).astype(np.int64)
    clicks = rng.integers(0, needed, ids.size).astype(np.int32)
    request_ids = rng.integers(0, 100, int(rng.integers(0, 60))).astype(np.int64)
    ref = clicks.copy()
    live = request_ids[np.isin(request_ids, ids)]
    rows = np.searchsorted(ids, live)
    np.add.at(ref, rows, 1)
    done_ref = np.unique(rows[ref[rows] >= needed])
    done = np.empty(request_ids.size, np.int64)
    n_live, n_done = _count_clicks(request_ids, ids, clicks, needed, done)
    assert n_live == live.size and np.array_equal(clicks, ref)
    assert np.array_equal(np.sort(done[:n_done]), done_ref)


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
