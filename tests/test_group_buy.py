"""Group buying (拼团): teams fill or fail, failed teams are refunded, larger teams fail more; the diagnostic says what it brought and displaced."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim
from conftest import group_buy_model
from sim import behaviour as bh
from sim import kernels

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
    assert shares[2] > 0.6  # most teams of five fail on a young platform


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
             "mechanisms.group_buy.failure_shock=0", "behaviour.social.ask_annoyance=0",
             "adoption.seed_fraction=0.01"]  # a busy market (50 seed users), so that many teams fail
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
        return filled, subsidy / filled

    low, high = stats(0.1), stats(0.5)
    assert high[0] > low[0] and high[1] > low[1]


def test_a_deeper_discount_never_fills_fewer_teams():
    """Filled teams and users brought through team links rise with the discount. (The fill *rate*
    does not: a deeper discount also opens many more teams, which compete for the same joiners; it
    stays flat within a few points.)"""
    def outcome(discount):
        filled = joined = 0
        for seed in range(2):
            d = run(f"mechanisms.group_buy.discount={discount}", "mechanisms.group_buy.team_size=3", seed=seed).daily
            filled += d["group_buy_teams_filled"].sum()
            joined += d["new_group_buy"].sum()
        return filled, joined

    (f1, j1), (f2, j2), (f3, j3) = (outcome(x) for x in (0.1, 0.3, 0.6))
    assert f1 <= f2 <= f3 and f1 < f3 and j1 <= j2 <= j3 and j1 < j3, (f1, f2, f3, j1, j2, j3)


def test_group_buying_disabled_changes_nothing_whatever_its_settings():
    plain = ("population.size=5000", "horizon=60", "adoption.seed_fraction=0.01")
    base = sim.simulate(sim.compose("default", list(plain), seed=1)).daily
    off = sim.simulate(sim.compose("default", [*plain, "mechanisms.group_buy.enabled=false", "mechanisms.group_buy.team_size=5",
                                               "mechanisms.group_buy.discount=0.6", "mechanisms.group_buy.newcomer_conversion=1"], seed=1)).daily
    pd.testing.assert_frame_equal(base, off, check_exact=True)


PRESET_GROUP_BUY = ["mechanisms.group_buy.enabled=true", "mechanisms.group_buy.team_size=2", "mechanisms.group_buy.discount=0.3",
                    "mechanisms.group_buy.platform_share=0.3", "mechanisms.group_buy.window_days=1",
                    "mechanisms.group_buy.open_rate=0.6", "mechanisms.group_buy.shares_per_day=5"]


@pytest.fixture(scope="module")
def added():
    """The default platform with and without the share-and-group-buy preset's group buying, paired."""
    common = ["population.size=20000", "horizon=180"]
    return sim.compare({"default": {"scenario": "default", "overrides": common},
                        "group_buy": {"scenario": "default", "overrides": [*common, *PRESET_GROUP_BUY]}},
                       replicates=4, workers=1, plots=False)


@pytest.mark.slow
def test_the_presets_group_buying_adds_users_to_the_default_platform(added):
    d = added.differences.set_index("metric").loc["users_total"]
    assert d["higher"] == d["n"] == 4 and d["ci_low"] > 0, d


@pytest.mark.slow
def test_the_comparison_reports_what_group_buying_brought_and_displaced(added):
    from sim.analysis import group_buy as gb
    from sim.report import group_buy_comparison_section

    rows = gb.displacement(added.daily, "default").set_index("channel")
    totals = added.daily.groupby(["strategy", "replicate"])[["new_group_buy", "new_referral", "new_users"]].sum()
    assert rows.loc["group_buy", "difference"] == pytest.approx(totals.loc["group_buy", "new_group_buy"].mean())
    gap = totals.loc["group_buy", "new_referral"] - totals.loc["default", "new_referral"]
    assert rows.loc["referral", "difference"] == pytest.approx(gap.mean())
    assert rows.loc["all", "low"] <= rows.loc["all", "difference"] <= rows.loc["all", "high"]
    section = group_buy_comparison_section(added)
    assert "brought and displaced" in section and "Fill rate" in section and "referral" in section


def test_the_run_report_has_a_group_buying_section_only_when_teams_opened():
    from sim.analysis import group_buy as gb
    from sim.report import group_buy_section

    d = run().daily
    s = gb.run_summary(d)
    closed = d["group_buy_teams_filled"].sum() + d["group_buy_teams_failed"].sum()
    assert s["fill_rate"] == pytest.approx(d["group_buy_teams_filled"].sum() / closed)
    assert 0 < s["share_to_non_users"] < 1 and 0 <= s["share_to_asked"] < 1
    assert d["group_buy_links_to_non_users"].sum() <= d["invites_sent"].sum()
    html = group_buy_section(d)
    assert "<h2>Group buying</h2>" in html and "fill rate" in html and "non-users" in html
    assert group_buy_section(run("mechanisms.group_buy.enabled=false").daily) == ""


# ------------------------------------------------------------------------------ compiled passes against their numpy forms
def _place_reference(people, team_ids, ids, members, team, team_size):
    """Placement in numpy ranks (first entry per person, first come per team)."""
    first = kernels.rank_within(people) == 0
    rows = np.minimum(np.searchsorted(ids, team_ids), max(ids.size - 1, 0))
    is_open = (ids[rows] == team_ids) if ids.size else np.zeros(people.size, bool)
    idx = np.flatnonzero(first & is_open & (team[people] == -1))
    rows = np.searchsorted(ids, team_ids[idx])
    fit = kernels.rank_within(rows) < team_size - members[rows]
    idx, rows = idx[fit], rows[fit]
    placed = np.zeros(people.size, bool)
    placed[idx] = True
    team[people[idx]] = ids[rows]
    np.add.at(members, rows, 1)
    full = np.unique(rows[members[rows] >= team_size])
    return placed, rows, full


@pytest.mark.parametrize("seed", range(40))
def test_group_buy_placement_equals_the_numpy_ranks(seed):
    from sim.mechanisms.group_buy import _place

    rng = np.random.default_rng(seed)
    n, team_size = 50, int(rng.integers(2, 5))
    ids = np.sort(rng.choice(200, size=int(rng.integers(0, 30)), replace=False)).astype(np.int64)
    members = rng.integers(1, team_size, ids.size).astype(np.int32)
    team = np.full(n, -1, np.int64)
    busy = rng.random(n) < 0.3
    if ids.size:
        team[busy] = rng.choice(ids, int(busy.sum()))
    k = int(rng.integers(0, 80))
    people = rng.integers(0, n, k)
    team_ids = np.where(rng.random(k) < 0.8, rng.choice(ids, k) if ids.size else 0, rng.integers(0, 200, k)).astype(np.int64)
    m2, t2 = members.copy(), team.copy()
    placed_ref, rows_ref, full_ref = _place_reference(people, team_ids, ids, m2, t2, team_size)
    placed = np.zeros(k, bool)
    rows, full, seen = np.empty(k, np.int64), np.empty(k, np.int64), np.empty(k, np.int64)
    joins, filled = _place(people, team_ids, ids, members, team, team_size, placed, rows, full, seen)
    assert np.array_equal(placed, placed_ref)
    assert np.array_equal(rows[:joins], rows_ref)
    assert np.array_equal(np.sort(full[:filled]), full_ref)
    assert np.array_equal(members, m2) and np.array_equal(team, t2)


@pytest.mark.parametrize("name", ["group_buy", "assist"])
def test_pruned_demand_draws_pick_the_same_people(name, monkeypatch):
    """The bound on the opening (starting) probability only skips draws that could not succeed:
    with the bound disabled (a deal sensitivity below 0 switches it off) the run is the same."""
    import sim
    from sim.bench import all_mechanisms_overrides

    def run(prune: bool):
        cfg = sim.compose("all_mechanisms", ["population.size=4000", "horizon=60", *all_mechanisms_overrides()], seed=2)
        model = sim.GrowthModel(cfg)
        mech = model.get_mechanism(name)
        original = mech._open if name == "group_buy" else mech._start

        def hook(model, rng):
            seg = model.pop.seg["deal_sensitivity"]
            if not prune:  # make the bound's guard fail without changing p for anyone
                class Shifted(np.ndarray):
                    def min(self, *a, **k):
                        return -1.0
                model.pop.seg["deal_sensitivity"] = seg.view(Shifted)
            try:
                original(model, rng)
            finally:
                model.pop.seg["deal_sensitivity"] = seg
        monkeypatch.setattr(mech, "_open" if name == "group_buy" else "_start", hook)
        model.run()
        return model.metrics.daily(model.economics)

    a, b = run(True), run(False)
    assert a.equals(b)


@pytest.mark.parametrize("seed", range(8))
def test_group_buy_keen_visitors_equal_the_numpy_form(seed):
    from sim.behaviour import drawn_to_deal
    from sim.kernels import free_of, person_bits
    from sim.mechanisms.group_buy import NO_TEAM

    model, rng = group_buy_model(seed)
    gb, pop, c = model.get_mechanism("group_buy"), model.pop, model.get_mechanism("group_buy").config
    gb.team[:] = np.where(rng.random(pop.n) < 0.3, 5, NO_TEAM)
    v = rng.permutation(np.unique(rng.integers(0, pop.n, 500)))
    bits = person_bits(pop.n)
    free = free_of(v, np.flatnonzero(gb.team != NO_TEAM), bits)
    assert np.array_equal(free, v[gb.team[v] == NO_TEAM]) and not bits.any()
    u = rng.random(free.size) * rng.choice([1.0, 0.2])
    purchase = model.cfg.behaviour.purchase
    need = np.minimum(bh.need_now(pop, free, model.day, purchase), 1.0)
    p = np.minimum(c.open_rate * pop.param("deal_sensitivity", free) * need * gb.pull, 1.0)
    expected = free[u < p]
    deal = pop.seg["deal_sensitivity"]
    for prune in (False, True):
        got = drawn_to_deal(free, u, prune, model.day, bh.demand(pop, purchase), deal, c.open_rate, float(gb.pull))
        assert np.array_equal(got, expected)


@pytest.mark.parametrize("seed", range(8))
def test_group_buy_link_outcomes_equal_the_numpy_form(seed):
    from sim.mechanisms.group_buy import NO_TEAM, _link_outcomes
    from sim.population import State

    model, rng = group_buy_model(seed)
    gb, pop, c = model.get_mechanism("group_buy"), model.pop, model.get_mechanism("group_buy").config
    gb.team[:] = np.where(rng.random(pop.n) < 0.3, 5, NO_TEAM)
    n_rows = 40
    initiator = rng.integers(0, pop.n, n_rows)
    rows = np.sort(rng.integers(0, n_rows, 600))
    target = rng.integers(0, pop.n, rows.size)
    edge = rng.integers(0, 10**6, rows.size)
    fatigue = rng.random(rows.size)
    purchase = model.cfg.behaviour.purchase
    got = _link_outcomes((target, rows, edge, fatigue), (gb.team, initiator), (pop.segment, pop.state, pop.seg["deal_sensitivity"]),
                         c.newcomer_conversion * gb.pull, c.discount)
    # the numpy form
    state = pop.state[target]
    out = state <= State.AWARE
    p_new = np.minimum(c.newcomer_conversion * gb.pull * (1.0 + pop.param("deal_sensitivity", target[out])) / 2.0 * fatigue[out], 1.0)
    engaged = np.flatnonzero((state == State.ACTIVE) | (state == State.LOYAL))
    engaged = engaged[gb.team[target[engaged]] == NO_TEAM]
    r, t, f = rows[engaged], target[engaged], fatigue[engaged]
    deal = bh.deal_factor(pop.param("deal_sensitivity", t), np.full(t.size, c.discount))
    expected = (target[out], p_new, initiator[rows[out]], edge[out], t, r, f, deal)
    assert len(got) == len(expected)
    for k, (g, w) in enumerate(zip(got, expected)):
        assert np.array_equal(g, w), (k, np.flatnonzero(g != w)[:5], (g - w)[g != w][:5])


@pytest.mark.parametrize("seed", range(20))
def test_group_buy_members_equal_the_numpy_form(seed):
    from sim.mechanisms.group_buy import NO_TEAM, _members

    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(1000, int(rng.integers(1, 60)), replace=False)).astype(np.int64)
    people = rng.choice(500, int(rng.integers(0, 200)), replace=False).astype(np.int64)
    m_team = ids[rng.integers(0, ids.size, people.size)]
    team = np.full(500, NO_TEAM, np.int64)
    team[people] = m_team
    rows = np.unique(rng.integers(0, ids.size, int(rng.integers(0, ids.size + 1))))
    # the numpy form
    chosen = np.zeros(ids.size, dtype=bool)
    chosen[rows] = True
    gone = chosen[np.searchsorted(ids, m_team)]
    want_team = team.copy()
    want_team[people[gone]] = NO_TEAM
    who, row_of, keep_person, keep_team = _members(rows, ids, people, m_team, team)
    assert np.array_equal(who, people[gone]) and np.array_equal(row_of, np.searchsorted(ids, m_team[gone]))
    assert np.array_equal(keep_person, people[~gone]) and np.array_equal(keep_team, m_team[~gone])
    assert np.array_equal(team, want_team)


@pytest.mark.parametrize("seed", range(10))
def test_group_buy_drop_rows_equals_the_mask(seed):
    from sim.mechanisms.group_buy import _drop_rows

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 50))
    cols = (np.arange(n, dtype=np.int64) * 3, rng.integers(0, 99, n), rng.integers(0, 9, n).astype(np.int32),
            rng.integers(1, 4, n).astype(np.int32), rng.integers(0, 12, n), rng.random(n))
    rows = np.unique(rng.integers(0, max(n, 1), int(rng.integers(0, n + 1)))) if n else np.zeros(0, np.int64)
    keep = np.ones(n, dtype=bool)
    keep[rows] = False
    for got, col in zip(_drop_rows(rows, *cols), cols):
        assert got.dtype == col.dtype and np.array_equal(got, col[keep])


@pytest.mark.parametrize("seed", range(20))
def test_group_buy_public_pick_equals_the_numpy_form(seed):
    from sim.mechanisms.group_buy import _pick_public, _public_teams

    rng = np.random.default_rng(seed)
    team_size = int(rng.integers(2, 5))
    n_teams = int(rng.integers(0, 80))
    members = rng.integers(1, team_size + 1, n_teams).astype(np.int32)
    category = rng.integers(0, 12, n_teams).astype(np.int64)
    wanted = rng.integers(0, 14, int(rng.integers(0, 60))).astype(np.int64)
    r1, r2 = np.random.default_rng(seed + 1), np.random.default_rng(seed + 1)
    # the numpy form
    open_rows = np.flatnonzero(members < team_size)
    order = open_rows[np.argsort(category[open_rows], kind="stable")]
    cats = category[order]
    start = np.searchsorted(cats, wanted, side="left")
    count = np.searchsorted(cats, wanted, side="right") - start
    has = count > 0
    pick = np.full(wanted.size, -1, dtype=np.int64)
    pick[has] = order[start[has] + (r1.random(int(has.sum())) * count[has]).astype(np.int64)]
    idx = np.flatnonzero(has)
    o, st, cn, n_has = _public_teams(members, team_size, category, wanted)
    got_idx, got_rows = _pick_public(o, st, cn, r2.random(n_has))
    assert np.array_equal(got_idx, idx) and np.array_equal(got_rows, pick[idx])
    assert r1.random() == r2.random()


@pytest.mark.parametrize("seed", range(3))
def test_member_table_and_requesters_list_who_is_taken(seed):
    """free_of reads who is in a team (has an open request) from the member table (the requesters):
    they must list exactly the people whose team (request) column is set."""
    from sim.mechanisms.assist import NONE
    from sim.mechanisms.group_buy import NO_TEAM

    # A busy market (30 seed users) whose visitors start requests often, so both tables fill most days.
    cfg = sim.compose("default", ["population.size=3000", "horizon=40", "mechanisms.group_buy.enabled=true",
                                  "mechanisms.assist.enabled=true", "mechanisms.group_buy.window_days=3",
                                  "adoption.seed_fraction=0.01", "mechanisms.assist.start_rate=0.3"], seed=seed)
    model = sim.GrowthModel(cfg)
    gb, assist = model.get_mechanism("group_buy"), model.get_mechanism("assist")
    seen = 0
    for _ in range(40):
        model.step()
        assert np.array_equal(np.sort(gb.m_person), np.flatnonzero(gb.team != NO_TEAM))
        assert np.array_equal(np.sort(assist.requester), np.flatnonzero(assist.request != NONE))
        seen += min(gb.m_person.size, assist.requester.size) > 0
    assert seen > 10
