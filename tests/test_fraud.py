"""Fraud: fake accounts and orders farm incentives; bigger rewards attract more, screening catches some."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim

# Referral reward abuse (its own fraud account, tested in test_referral.py) is off here, so that what
# is measured is the farming of coupons, points and subsidies this mechanism models.
BASE = ("population.size=4000", "horizon=60", "mechanisms.fraud.enabled=true", "mechanisms.promotions.enabled=true",
        "mechanisms.referral.abuse_share=0")


def farmed(*overrides: str) -> float:
    return sum(sim.simulate(sim.compose("default", [*BASE, *overrides], seed=s)).daily["cost_fraud_farmed"].sum() for s in (0, 1))


def new_user_coupon(discount: float) -> str:
    return f"mechanisms.promotions.campaigns=[{{kind:new_user,start:0,days:1000,discount:{discount}}}]"


def test_fraud_losses_rise_with_reward_size():
    losses = [farmed(new_user_coupon(d)) for d in (0.1, 0.25, 0.5)]
    assert losses[0] < losses[1] < losses[2], losses
    assert losses[2] > 2 * losses[0]


def test_fraud_losses_fall_with_detection_rate():
    losses = [farmed(f"mechanisms.fraud.detection_rate={r}") for r in (0.2, 0.5, 0.9)]
    assert losses[0] > losses[1] > losses[2], losses


def test_richer_loyalty_rewards_attract_more_fraud():
    # Rings attack in proportion to the users: a market of 20,000 with 200 seed users and ten times the
    # default ad budget has some 1,300 users by day 60, enough for the thin haul of small check-ins
    # to draw a few fake accounts at all.
    loyalty = ("mechanisms.loyalty.enabled=true", "mechanisms.promotions.enabled=false", "population.size=20000",
               "adoption.seed_fraction=0.01", "mechanisms.paid_acquisition.budget_per_1000=50")
    low = farmed(*loyalty, "mechanisms.loyalty.checkin_points=5")
    high = farmed(*loyalty, "mechanisms.loyalty.checkin_points=50")
    assert high > 2 * low > 0


def test_without_incentives_there_is_nothing_to_farm():
    r = sim.simulate(sim.compose("default", [*BASE, "mechanisms.promotions.enabled=false"]))
    assert r.daily["fraud_loss"].sum() == 0 and r.daily["fake_accounts"].max() == 0


def test_fake_accounts_are_counted_apart_from_users():
    on = sim.simulate(sim.compose("default", list(BASE)))
    off = sim.simulate(sim.compose("default", [*BASE, "mechanisms.fraud.enabled=false"]))
    assert on.daily["fake_accounts"].max() > 0
    for col in ("new_users", "users", "orders", "gmv", "dau"):
        pd.testing.assert_series_equal(on.daily[col], off.daily[col])
    assert (on.daily["fraud_loss"] == on.daily["cost_fraud_farmed"] + on.daily["cost_fraud_screening"]).all()
    assert on.summary["profit"] == pytest.approx(off.summary["profit"] - on.summary["fraud_loss"])


def test_screen_catches_a_binomial_share_and_books_its_cost():
    """The interface other mechanisms (referral abuse) use: caught ~ Binomial(attempts, detection_rate)."""
    cfg = sim.compose("default", ["population.size=500", "horizon=5", "mechanisms.fraud.enabled=true",
                                  "mechanisms.fraud.detection_rate=0.8", "mechanisms.fraud.check_cost_rmb=0.5"])
    model = sim.GrowthModel(cfg)
    model.step()
    fraud = model.get_mechanism("fraud")
    rng = np.random.default_rng(7)
    before = model.economics.daily["fraud_screening"][model.day]
    caught = np.array([fraud.screen(model, 100, rng) for _ in range(400)])
    assert caught.mean() == pytest.approx(80, abs=0.6)
    assert caught.std() == pytest.approx(np.sqrt(100 * 0.8 * 0.2), rel=0.15)
    cost = model.economics.daily["fraud_screening"][model.day] - before
    assert cost == pytest.approx(400 * 100 * 0.5 * 0.8 / 0.2)  # check cost x odds of the detection rate
    assert fraud.screen(model, 0, rng) == 0
