"""Distribution (S2B2C resellers): KOC resell to their circle, earn commissions, and quit when it stops paying."""

from __future__ import annotations

import numpy as np

import sim

BASE = ("population.size=5000", "horizon=60", "adoption.seed_users=1000")


def run(*overrides: str, seed: int = 0):
    return sim.simulate(sim.compose("s2b2c_distribution", [*BASE, *overrides], seed=seed))


def test_resellers_are_well_connected_users():
    r = run()
    model, c = r.model, r.config.mechanisms["distribution"]
    since = model.pop.extra["distribution_since"]
    assert r.daily["distribution_recruited"].sum() > 20
    resellers = np.flatnonzero(since >= 0)
    assert (model.graph.degree[resellers] >= c.min_friends).all()
    assert (model.pop.joined_day[resellers] >= 0).all()


def test_commission_is_paid_on_orders_of_bound_customers_and_of_friends_reached_that_day():
    """Re-derive each day's commission from the people who bought, who reached them and whom they
    are bound to (an oracle for the accounting)."""
    cfg = sim.compose("s2b2c_distribution", [*BASE, "horizon=30", "mechanisms.distribution.quit_rate=0"])
    model = sim.GrowthModel(cfg)
    dist = model.get_mechanism("distribution")
    rate = cfg.mechanisms["distribution"].commission_rate
    for _ in range(cfg.horizon):
        active_before = dist.since.copy() >= 0
        model.step()
        t = model.today
        touched = np.where(dist.touched_day[t.buyers] == model.day, dist.touched_by[t.buyers], -1)
        seller = np.where(touched >= 0, touched, dist.upline[t.buyers])
        paid = (seller >= 0) & active_before[np.maximum(seller, 0)]
        assert np.isclose(model.economics.daily["distribution_commissions"][model.day], rate * t.basket[paid].sum())
    d = model.metrics.daily(model.economics)
    assert d["distribution_commissions_rmb"].sum() > 0
    bound = dist.upline >= 0
    assert (model.pop.channel[bound] == sim.config.CHANNELS.index("distribution")).all()


def test_resellers_quit_more_when_earnings_are_low():
    def quits_per_reseller_day(rate):
        quits = days = 0
        for seed in range(2):
            d = run(f"mechanisms.distribution.commission_rate={rate}", "mechanisms.distribution.trial_days=5", seed=seed).daily
            quits, days = quits + d["distribution_quit"].sum(), days + d["distribution_resellers"].sum()
        return quits / days

    assert quits_per_reseller_day(0.01) > 1.3 * quits_per_reseller_day(0.3)


def test_friends_reached_by_a_reseller_buy_more_readily():
    with_trust = run("mechanisms.distribution.trust_uplift=2").daily
    without = run("mechanisms.distribution.trust_uplift=0").daily
    assert with_trust["orders_distribution"].sum() > 1.2 * without["orders_distribution"].sum()


def test_higher_commission_costs_more_per_order_credited():
    low = run("mechanisms.distribution.commission_rate=0.05").daily
    high = run("mechanisms.distribution.commission_rate=0.2").daily
    per_order = [d["cost_distribution_commissions"].sum() / d["distribution_orders"].sum() for d in (low, high)]
    assert per_order[1] > 3 * per_order[0]
