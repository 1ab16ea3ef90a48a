"""Service quality: festival peaks overload delivery, outages empty the app, both cost goodwill."""

from __future__ import annotations

import numpy as np
import pytest

import sim

FESTIVAL = "mechanisms.promotions.campaigns=[{kind:festival,start:40,days:3,discount:0.3}]"
# A small, busy market: 50 seed users, 500 RMB of ads a day and a new platform's capacity of 50 orders a day.
BASE = ("population.size=6000", "horizon=70", "adoption.seed_fraction=0.0084", "mechanisms.paid_acquisition.budget_per_1000=84",
        "mechanisms.service.min_capacity_per_1000=8.4",
        "mechanisms.service.enabled=true", "mechanisms.promotions.enabled=true", FESTIVAL)


def test_festival_peaks_overload_delivery_and_cost_satisfaction():
    r = sim.simulate(sim.compose("default", list(BASE)))
    late = r.daily["late_orders"].to_numpy()
    assert late[40:43].sum() > 0.2 * r.daily["orders"][40:43].sum()
    assert late[50:].sum() == 0  # capacity suffices in ordinary weeks after the ramp-up
    kept, kept_calm = 0, 0
    for seed in range(3):
        model = sim.GrowthModel(sim.compose("default", list(BASE), seed=seed)).run()
        calm = sim.GrowthModel(sim.compose("default", [*BASE, "mechanisms.service.delay_shock=0"], seed=seed)).run()
        assert model.pop.satisfaction[model.pop.joined_day >= 0].mean() < calm.pop.satisfaction[calm.pop.joined_day >= 0].mean()
        kept, kept_calm = kept + model.pop.alive().size, kept_calm + calm.pop.alive().size
    # late orders cost users; a run's own noise is a few users either way, so over three seeds
    assert kept <= kept_calm


def test_late_orders_are_the_orders_beyond_capacity():
    r = sim.simulate(sim.compose("default", list(BASE)))
    d = r.daily
    over = (d["orders"] - d["delivery_capacity"]).clip(lower=0)
    busy = over > 30
    assert busy.any()
    # Each order beyond capacity is late with the matching chance: about (orders - capacity) late.
    np.testing.assert_allclose(d["late_orders"][busy], over[busy], rtol=0.35)


def test_compensation_is_paid_per_late_order():
    r = sim.simulate(sim.compose("default", [*BASE, "mechanisms.service.delay_compensation_rmb=4"]))
    assert r.daily["cost_delay_compensation"].sum() == pytest.approx(4 * r.daily["late_orders"].sum())


def test_an_outage_day_empties_the_app():
    r = sim.simulate(sim.compose("default", ["population.size=5000", "horizon=40", "mechanisms.service.enabled=true",
                                             "mechanisms.service.outage_days=[30]"]))
    dau = r.daily["dau"].to_numpy()
    new = r.daily["new_users"].to_numpy()
    assert r.daily["outage"].sum() == 1
    assert dau[30] - new[30] < 0.3 * (dau[29] - new[29])  # returning visitors mostly could not get in
