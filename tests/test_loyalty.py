"""Loyalty: tiers that keep users, points that add up, check-ins that bring them back, paid membership."""

from __future__ import annotations

import numpy as np
import pytest

import sim
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
