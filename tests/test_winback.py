"""Win-back: contacts to lapsed users, success that fades with the time away, what it costs."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

import sim
from conftest import N_PEOPLE


@lru_cache(maxsize=None)
def run(after_days: int, seed: int = 0, *overrides: str):
    cfg = sim.compose("default", ["population.size=5000", "horizon=120", "mechanisms.winback.enabled=true",
                                  f"mechanisms.winback.after_days={after_days}", *overrides], seed=seed)
    return sim.simulate(cfg).daily


def test_winback_recovers_fewer_users_the_longer_it_waits():
    recovered = {a: sum(run(a, seed)["winback_recovered"].sum() for seed in (0, 1)) for a in (14, 30, 60)}
    assert recovered[14] > recovered[30] > recovered[60] > 0, recovered


def test_success_per_contact_falls_with_the_time_away():
    """Even per contact (not only because fewer are left to contact), waiting longer wins back fewer."""
    rate = {}
    for a in (14, 60):
        d = run(a, 0)
        rate[a] = d["winback_recovered"].sum() / d["winback_contacts"].sum()
    assert rate[14] > 1.5 * rate[60]


def test_contacts_and_coupons_are_paid_for():
    d = run(14, 1, "mechanisms.winback.cost_per_contact_rmb=0.3", "mechanisms.winback.coupon_rmb=8")
    assert d["cost_winback_messages"].sum() == pytest.approx(0.3 * d["winback_contacts"].sum())
    used = d["winback_coupons_used"].sum()
    assert 0 < used <= d["winback_recovered"].sum()
    assert d["cost_winback_coupons"].sum() > 0
    assert (d["orders_promotion"] >= d["winback_coupons_used"]).all()


def test_won_back_users_return_the_day_they_are_won_back():
    cfg = sim.compose("default", ["population.size=4000", "horizon=70", "mechanisms.winback.enabled=true", "mechanisms.winback.after_days=20"])
    model = sim.GrowthModel(cfg)
    coupon = model.get_mechanism("winback").coupon_until
    returned = 0
    for _ in range(70):
        model.step()
        back = np.flatnonzero(coupon == model.day + cfg.mechanisms["winback"].coupon_days - 1)
        # A won-back user visited today and is a user again (unless the churn draw took them again today).
        assert np.all(model.pop.last_visit[back] == model.day)
        assert np.all(model.pop.users_mask()[back] | (model.pop.churn_day[back] == model.day))
        returned += back.size
    assert returned > 0


def test_a_plain_message_wins_back_fewer_than_one_with_a_coupon():
    plain = run(14, 0, "mechanisms.winback.coupon_rmb=0")["winback_recovered"].sum()
    coupon = run(14, 0, "mechanisms.winback.coupon_rmb=20")["winback_recovered"].sum()
    assert coupon > 1.3 * plain


# ------------------------------------------------------------------------------ compiled passes against their numpy forms
def test_coupon_holders_equal_numpy():
    from sim.mechanisms.winback import _holders
    rng = np.random.default_rng(16)
    coupon_until = rng.integers(-1, 20, N_PEOPLE).astype(np.int32)
    segment = rng.integers(0, 4, N_PEOPLE).astype(np.int8)
    basket_rmb = np.array([8.0, 45.0, 80.0, 120.0])
    v = rng.permutation(N_PEOPLE)[:2000].astype(np.int64)
    pos, share = _holders(v, coupon_until, 10, segment, basket_rmb, 1.2, 10.0)
    pos2 = np.flatnonzero(coupon_until[v] >= 10)
    np.testing.assert_array_equal(pos, pos2)
    np.testing.assert_array_equal(share, np.minimum(0.9, 10.0 / (basket_rmb[segment[v[pos2]]] * 1.2)))
