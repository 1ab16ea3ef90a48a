"""Group buying (拼团): teams fill or fail, failed teams are refunded, larger teams fail more."""

from __future__ import annotations

import numpy as np
import pandas as pd

import sim

PRESET = ("population.size=5000", "horizon=60")


def run(*overrides: str, seed: int = 0, scenario: str = "share_group_buy"):
    return sim.simulate(sim.compose(scenario, [*PRESET, *overrides], seed=seed))


def test_larger_teams_fail_more_often():
    def failure_share(k):
        failed = filled = 0
        for seed in range(2):
            d = run(f"mechanisms.group_buy.team_size={k}", seed=seed).daily
            failed += d["group_buy_teams_failed"].sum()
            filled += d["group_buy_teams_filled"].sum()
        return failed / (failed + filled)

    shares = [failure_share(k) for k in (2, 3, 5)]
    assert shares[0] < shares[1] < shares[2], shares
    assert shares[2] > 0.8  # teams of five rarely fill on a young platform


def test_every_filled_team_books_one_order_per_member_and_a_subsidy():
    r = run("mechanisms.group_buy.team_size=3")
    d, c = r.daily, r.config.mechanisms["group_buy"]
    assert d["group_buy_teams_filled"].sum() > 20
    assert (d["orders_group_buy"] == c.team_size * d["group_buy_teams_filled"]).all()
    np.testing.assert_allclose(d["cost_group_buy_subsidy"], d["group_buy_subsidy_rmb"])
    # Every team that opened has filled, failed, or is still open at the end (at most a window's worth).
    opened, closed = d["group_buy_teams_opened"].sum(), d["group_buy_teams_filled"].sum() + d["group_buy_teams_failed"].sum()
    assert 0 <= opened - closed <= d["group_buy_teams_opened"].iloc[-c.window_days - 1:].sum()


def test_a_failed_team_is_refunded_and_leaves_no_trace_in_gmv():
    """Teams that cannot fill (no links, nobody joins open teams) all fail. With the disappointment
    and the annoyance of being asked switched off, the run is the run without group buying."""
    quiet = ["mechanisms.group_buy.shares_per_day=0", "mechanisms.group_buy.public_join=0",
             "mechanisms.group_buy.failure_shock=0", "behaviour.social.ask_annoyance=0"]
    without = run("mechanisms.group_buy.enabled=false", *quiet).daily
    failing = run(*quiet).daily
    assert failing["group_buy_teams_failed"].sum() > 100
    assert failing["group_buy_teams_filled"].sum() == 0 and failing["orders_group_buy"].sum() == 0
    assert failing["cost_group_buy_subsidy"].sum() == 0
    shared = [c for c in without.columns if c in failing.columns]
    pd.testing.assert_frame_equal(failing[shared], without[shared], check_exact=True)


def test_failed_teams_disappoint_their_members():
    def satisfaction(shock):
        model = sim.GrowthModel(sim.compose("share_group_buy", [*PRESET, "mechanisms.group_buy.team_size=6",
                                                                f"mechanisms.group_buy.failure_shock={shock}"]))
        model.run()
        return model.pop.satisfaction[model.pop.alive()].mean()

    assert satisfaction(0.2) < satisfaction(0.0)


def test_team_links_bring_non_users_who_join_the_team():
    r = run()
    d = r.daily
    assert d["new_group_buy"].sum() > 20
    model = r.model
    joined = np.flatnonzero(model.pop.channel == sim.config.CHANNELS.index("group_buy"))
    # They arrived through a friend's team link: the initiator is their referrer and their friend.
    referrer = model.pop.referrer[joined]
    assert (referrer >= 0).all()
    u = joined[:50]
    assert all(model.pop.referrer[i] in model.graph.neighbours(i) for i in u)


def test_a_bigger_discount_fills_more_teams_at_a_higher_subsidy_per_team():
    def stats(discount):
        filled = subsidy = opened = 0
        for seed in range(2):
            d = run(f"mechanisms.group_buy.discount={discount}", "mechanisms.group_buy.team_size=3", seed=seed).daily
            filled += d["group_buy_teams_filled"].sum()
            opened += d["group_buy_teams_opened"].sum()
            subsidy += d["cost_group_buy_subsidy"].sum()
        return filled / opened, subsidy / filled

    low, high = stats(0.1), stats(0.5)
    assert high[0] > low[0] and high[1] > low[1]
