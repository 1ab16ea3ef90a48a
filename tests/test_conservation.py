"""Accounting identities that hold every day of every run."""

from __future__ import annotations

import numpy as np

from sim.config import CHANNELS
from sim.population import STATE_NAMES


def test_every_person_is_in_exactly_one_state_every_day(default_small):
    d = default_small.daily
    states = d[[f"n_{s}" for s in STATE_NAMES]]
    assert (states >= 0).all().all()
    assert (states.sum(axis=1) == default_small.config.population.size).all()


def test_user_counts_add_up(default_small):
    d = default_small.daily
    assert (d["cumulative_users"] == d["new_users"].cumsum()).all()
    assert (d["users"] == d["n_active"] + d["n_loyal"] + d["n_dormant"]).all()
    assert (d["active_users"] == d["n_active"] + d["n_loyal"]).all()
    assert (d[[f"new_{c}" for c in CHANNELS]].sum(axis=1) == d["new_users"]).all()
    ever = d["cumulative_users"]
    assert (d["n_active"] + d["n_loyal"] + d["n_dormant"] + d["n_churned"] == ever).all()
    assert (d["dau"] <= d["wau"]).all() and (d["wau"] <= d["mau"]).all()
    assert (d["buyers"] <= d["orders"]).all()
    from sim.engine import ORDER_SOURCES
    assert (d[[f"orders_{s}" for s in ORDER_SOURCES]].sum(axis=1) == d["orders"]).all()


def test_money_is_non_negative_and_profit_is_revenue_minus_costs(default_small):
    d = default_small.daily
    from sim.economics import TOTALS

    costs = [TOTALS[c] for c in TOTALS if c != "revenue"]
    for col in ("gmv", "revenue", *costs):
        assert (d[col] >= 0).all(), col
    assert np.allclose(d["profit"], d["revenue"] - d[costs].sum(axis=1))
    accounts = [c for c in d.columns if c.startswith("cost_")]
    assert np.allclose(d[accounts].sum(axis=1), d[costs].sum(axis=1))


def test_cohorts_add_up_to_the_daily_series(default_small):
    c, d = default_small.cohorts, default_small.daily
    allc = c[c["channel"] == "all"]
    dau = allc.assign(day=allc["cohort_day"] + allc["age"]).groupby("day")["retained"].sum()
    assert (dau.to_numpy() == d["dau"].to_numpy()).all()
    joined = allc[allc["age"] == 0].set_index("cohort_day")["users"]
    assert (joined.to_numpy() == d.loc[joined.index, "new_users"].to_numpy()).all()
    by_channel = c[c["channel"] != "all"].groupby(["cohort_day", "age"])[["retained", "alive"]].sum()
    assert (by_channel.to_numpy() == allc.set_index(["cohort_day", "age"])[["retained", "alive"]].loc[by_channel.index].to_numpy()).all()
    assert np.isclose(allc["gmv"].sum(), d["gmv"].sum())
