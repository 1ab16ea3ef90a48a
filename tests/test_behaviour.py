"""The shared decision model, function by function."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import group_buy_model
from sim import behaviour as bh
from sim import kernels
from sim.config import SocialConfig


@given(st.floats(0, 1e4), st.floats(0, 1e4), st.floats(0.1, 100))
def test_incentive_response_is_monotone_and_saturating(a, b, half):
    lo, hi = sorted((a, b))
    assert 0 <= bh.incentive_response(lo, half) <= bh.incentive_response(hi, half) < 1
    assert bh.incentive_response(half, half) == 0.5


@given(st.lists(st.floats(0, 50), min_size=1, max_size=50), st.floats(0, 10))
def test_stochastic_rounding_never_falls_when_the_mean_rises(xs, extra):
    x = np.array(xs)
    u = np.random.default_rng(0).random(x.size)
    assert np.all(bh.stochastic_round(x + extra, u) >= bh.stochastic_round(x, u))


def test_stochastic_rounding_is_unbiased():
    u = np.random.default_rng(1).random(200_000)
    assert abs(bh.stochastic_round(np.full(u.size, 2.3), u).mean() - 2.3) < 0.01


def test_social_response_saturates_and_repeats_fade():
    import sim
    from sim.engine import GrowthModel

    model = GrowthModel(sim.compose("default", ["population.size=200", "horizon=5"]))
    cfg = model.cfg.behaviour.social
    assert cfg == SocialConfig()
    slot = int(model.graph.indptr[3])  # an edge of person 3, to receiver model.graph.indices[slot]
    receiver = np.full(4, model.graph.indices[slot], dtype=np.int64)
    for edge, factor in ((np.full(4, -1), cfg.saturation), (np.full(4, slot), cfg.saturation * cfg.repeat_fade)):
        model.pop.invites_received[:] = 0
        prob = np.ones(4)
        model._social_response(receiver, np.full(4, 3), edge, prob, model.cfg)
        assert prob[0] == 1.0 and np.all(np.diff(prob) < 0)  # each further invitation counts for less
        assert prob[1] == factor  # and more so when it is a repeat along the same edge


def test_rank_within_and_first_success():

    keys = np.array([5, 3, 5, 5, 3, 9])
    assert kernels.rank_within(keys).tolist() == [0, 0, 1, 2, 1, 0]
    receiver = np.array([1, 2, 1, 2, 3])
    u = np.array([0.5, 0.2, 0.1, 0.9, 0.3])  # all succeed (prob 1): the smallest u per receiver wins
    picked = kernels.first_success(receiver, u, np.ones(5), np.full(4, -1, dtype=np.int32))
    assert picked.tolist() == [2, 1, 4]  # in ascending order of receiver


def test_purchase_probability_rises_with_need_relevance_and_discount():
    need = np.array([0.0, 0.5, 1.0, 2.0])
    p = bh.purchase_probability(need, 1.0, np.ones(4), 0.5)
    assert p[0] == 0 and np.all(np.diff(p) > 0) and p[-1] < 1
    assert bh.purchase_probability(np.ones(1), 1.5, np.ones(1), 0.5) > bh.purchase_probability(np.ones(1), 1.0, np.ones(1), 0.5)
    assert bh.purchase_probability(np.ones(1), 1.0, np.full(1, 1.4), 0.5) > bh.purchase_probability(np.ones(1), 1.0, np.ones(1), 0.5)


def test_churn_hazard_falls_with_tenure_satisfaction_and_friends():
    import sim
    from sim.engine import GrowthModel
    from sim.population import State

    model = GrowthModel(sim.compose("default", ["population.size=200", "horizon=5"]))
    pop, c = model.pop, model.cfg.behaviour.churn
    idx = np.arange(4)
    pop.state[idx] = State.ACTIVE
    pop.frailty[idx] = 1.0
    pop.segment[idx] = 0
    pop.satisfaction[idx] = pop.seg["satisfaction"][0]
    pop.joined_day[idx] = [100, 90, 100, 100]  # tenure 0 and 10 days at day 100
    pop.satisfaction[2] += 0.2
    pop.friends[idx] = [0, 0, 0, 5]
    h = bh.churn_hazard(pop, idx, 100, c)
    assert h[1] < h[0] and h[2] < h[0] and h[3] < h[0]


def test_visit_probability_rises_with_satisfaction_and_falls_when_dormant():
    import sim
    from sim.engine import GrowthModel
    from sim.population import State

    model = GrowthModel(sim.compose("default", ["population.size=200", "horizon=5"]))
    pop = model.pop
    idx = np.arange(3)
    pop.segment[idx] = 1
    pop.state[idx] = [State.ACTIVE, State.ACTIVE, State.DORMANT]
    pop.satisfaction[idx] = [0.5, 0.8, 0.5]
    p = bh.visit_probability(pop, idx, model.day, model.cfg.behaviour.visit)
    assert p[1] > p[0] > p[2]


def test_complex_contagion_scales_the_simple_response_by_the_threshold_rule():
    """Below the threshold (fewer adopting friends) an invitation converts with ``below_threshold``
    times what it would under simple contagion; at the threshold exactly as under simple contagion."""
    import sim
    from sim.engine import GrowthModel

    def response(contagion, adopted_friends):
        model = GrowthModel(sim.compose("default", ["population.size=200", "horizon=5", f"adoption.contagion={contagion}",
                                                    "adoption.threshold=2", "adoption.below_threshold=0.25",
                                                    "behaviour.social.saturation=0.5"]))
        receiver, prob = np.array([7, 7, 7]), np.ones(3)
        model.pop.adopted_friends[7] = adopted_friends
        model._social_response(receiver, np.full(3, 1), np.full(3, -1), prob, model.cfg)
        return prob

    assert response("simple", 0).tolist() == [1.0, 0.5, 0.25]
    assert response("complex", 2).tolist() == [1.0, 0.5, 0.25]
    assert response("complex", 1).tolist() == [0.25, 0.125, 0.0625]


# ------------------------------------------------------------------------------ compiled passes against their numpy forms
@pytest.mark.parametrize("seed", range(6))
def test_consume_need_equals_the_numpy_form(seed):
    from sim.behaviour import consume_need

    model, rng = group_buy_model(seed)
    pop, purchase = model.pop, model.cfg.behaviour.purchase
    idx = rng.choice(pop.n, 300, replace=False)
    need = bh.need_now(pop, idx, model.day + 2, purchase)
    want_need, want_day = pop.need.copy(), pop.need_day.copy()
    want_need[idx] = np.maximum(need - 1.0, 0.0)
    want_day[idx] = model.day + 2
    consume_need(pop, idx, model.day + 2, purchase)
    assert np.array_equal(pop.need, want_need) and np.array_equal(pop.need_day, want_day)
    assert (need < 1).any() and (need > 1).any()


def test_consuming_need_never_raises_a_pantry_below_zero():
    from sim.behaviour import consume_need, stock_up

    model, rng = group_buy_model(0)
    pop, purchase = model.pop, model.cfg.behaviour.purchase
    idx = rng.choice(pop.n, 50, replace=False)
    stock_up(pop, idx, model.day, np.full(idx.size, 5.0), purchase)  # more than any stock: a pantry
    pantry = pop.need[idx].copy()
    assert (pantry < 0).all()
    consume_need(pop, idx, model.day, purchase)
    assert np.array_equal(pop.need[idx], pantry)
