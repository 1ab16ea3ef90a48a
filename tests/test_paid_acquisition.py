"""Paid acquisition: rising marginal CAC, the budget spent, lower-quality users."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from conftest import simulate
from sim.mechanisms.paid_acquisition import installs_for_budget


def test_installs_rise_with_budget_at_a_rising_marginal_cost():
    budgets = np.array([100, 500, 1000, 2000, 5000, 10000], dtype=float)
    installs = np.array([installs_for_budget(b, 25, 200, 1.0, 1.0)[0] for b in budgets])
    assert np.all(np.diff(installs) > 0)
    marginal = np.diff(budgets) / np.diff(installs)
    assert np.all(np.diff(marginal) > 0)
    n, avg = installs_for_budget(2000, 25, 200, 1.0, 1.0)
    assert n * avg == pytest.approx(2000)
    assert installs_for_budget(2000, 25, 200, 0.5, 1.0)[0] < n  # a shrinking market costs more


def test_the_daily_budget_is_spent_and_installs_are_booked():
    r = simulate("mechanisms.referral.enabled=false", "mechanisms.paid_acquisition.budget_per_1000=300")
    spend = r.daily["acquisition_cost"]
    assert spend.mean() == pytest.approx(300 * 3, rel=0.1)  # 3,000 people
    assert r.daily["new_paid"].sum() == r.daily["paid_installs_bought"].sum()


def test_campaign_window_is_respected():
    r = simulate("mechanisms.paid_acquisition.start_day=10", "mechanisms.paid_acquisition.end_day=19")
    paid = r.daily["new_paid"]
    assert paid[:10].sum() == 0 and paid[20:].sum() == 0 and paid[10:20].sum() > 0


@pytest.mark.slow
def test_paid_users_retain_worse_than_referred_users():
    # 100 seed users and ten times the default ad budget: some 2,500 paid and 5,000 referred users a
    # run, enough to tell day-30 retentions of about 5 % apart (400 paid users at the defaults are not).
    busy = ["population.size=20000", "horizon=120", "adoption.seed_fraction=0.005",
            "mechanisms.paid_acquisition.budget_per_1000=50"]
    d30 = {"paid": [], "referral": []}
    for seed in range(4):
        r = sim.simulate(sim.compose("default", busy, seed=seed))
        ch = r.channels.set_index("channel")
        for c in d30:
            d30[c].append(ch.loc[c, "retention_d30"])
    assert np.mean(d30["referral"]) > 1.1 * np.mean(d30["paid"])
