"""Promotions: the bump, the dip after it, what discounts cost, and the deal seekers they draw."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from conftest import N_PEOPLE

# A closed population (no invitations, word of mouth, ads or campaign sign-ups) isolates what a
# campaign does to the purchases of the people already there.
CLOSED = ("population.size=5000", "horizon=60", "adoption.seed_fraction=0.6", "adoption.word_of_mouth_conversion=0",
          "mechanisms.referral.enabled=false", "mechanisms.paid_acquisition.enabled=false",
          "mechanisms.promotions.enabled=true", "mechanisms.promotions.acquisition_rate=0")


def campaigns(*items: str) -> str:
    return "mechanisms.promotions.campaigns=[" + ",".join("{" + i + "}" for i in items) + "]"


def orders(seed: int, *overrides: str) -> np.ndarray:
    return sim.simulate(sim.compose("default", [*CLOSED, *overrides], seed=seed)).daily["orders"].to_numpy()


def test_promotion_raises_orders_during_the_campaign_and_a_dip_follows():
    """Pure acceleration (no expansion): the purchases of the sale come out of later weeks."""
    during, after = [], []
    for seed in range(4):
        base = orders(seed, campaigns(), "mechanisms.promotions.expansion=0")
        sale = orders(seed, campaigns("kind:festival,start:40,days:3,discount:0.3"), "mechanisms.promotions.expansion=0")
        diff = sale - base
        assert (diff[:37] == 0).all()  # nothing changes before anyone knows of the campaign
        during.append(diff[40:43].sum())
        after.append(diff[43:50].sum())
    assert min(during) > 50, during
    assert max(after) < 0, after  # every seed: orders below the no-promotion baseline after the sale


def test_deal_sensitive_users_hold_back_before_a_festival():
    lull = []
    for seed in range(2):
        base = orders(seed, campaigns())
        sale = orders(seed, campaigns("kind:festival,start:40,days:3,discount:0.3"), "mechanisms.promotions.anticipation_days=3")
        lull.append((sale - base)[37:40].sum())
    assert max(lull) < 0, lull


def test_discount_cost_is_the_discount_on_the_orders_that_used_it():
    d = 0.25
    r = sim.simulate(sim.compose("default", [*CLOSED, campaigns(f"kind:flash_sale,start:10,days:2,discount:{d}")]))
    day = r.daily.set_index("day")
    on = day.loc[10:11]
    assert (on["orders_promotion"] == on["orders"]).all()  # everyone was offered it
    # Buyers paid (1 - d) of the full price; the platform paid d of it.
    np.testing.assert_allclose(on["discount_cost"], on["gmv"] * d / (1 - d), rtol=1e-9)
    assert day["discount_cost"].drop(index=[10, 11]).sum() == 0
    assert day["cost_promotion_discounts"].sum() == pytest.approx(day["discount_cost"].sum())


def test_a_campaign_stops_when_its_budget_is_spent():
    r = sim.simulate(sim.compose("default", [*CLOSED, campaigns("kind:flash_sale,start:5,days:30,discount:0.3,budget_per_1000:160")]))
    cost = r.daily["discount_cost"].to_numpy()
    spent = np.cumsum(cost)
    out = int(np.argmax(spent >= 800))
    assert 5 <= out < 34 and cost[out + 1:].sum() == 0  # no offers after the day the budget ran out
    assert spent[out] < 800 + cost[out] + 1e-9


def test_single_use_coupons_are_used_once_per_user():
    cfg = sim.compose("default", [*CLOSED, campaigns("kind:coupon,start:0,days:60,discount:0.2")])
    model = sim.GrowthModel(cfg).run()
    used = np.count_nonzero(model.pop.extra["promotion_coupon_used"] == 0)  # run key of campaign 0, run 0
    promo_orders = model.metrics.series["orders_promotion"].sum()
    assert used == promo_orders > 0


def test_threshold_discounts_raise_the_order_value():
    def value_per_order(kind):
        r = sim.simulate(sim.compose("default", [*CLOSED, campaigns(f"kind:{kind},start:10,days:5,discount:0.2")]))
        on = r.daily.iloc[10:15]
        return (on["gmv"] + on["discount_cost"]).sum() / on["orders"].sum()
    assert value_per_order("threshold") > 1.15 * value_per_order("flash_sale")


def test_deep_discounts_draw_deal_seekers_who_leave_when_the_deals_stop():
    deep = campaigns("kind:flash_sale,start:0,days:40,discount:0.6")
    # 250 seeds and 2,500 RMB of ads a day: some 900 deal seekers are users when the deals stop, enough
    # to tell apart the shares of them who leave over the next 40 days (about a fifth).
    base = ["population.size=40000", "horizon=80", "adoption.seed_fraction=0.00625",
            "mechanisms.paid_acquisition.budget_per_1000=62.5", "mechanisms.promotions.enabled=true",
            # No stockpiling: a 40-day deal that never ends is nothing to stock up for (stockpiling would
            # space out the deal seekers' purchases and so the habit this test is about).
            "mechanisms.promotions.stockpile=0"]
    drawn, left_with, left_without = [], [], []
    for seed in range(3):
        model = sim.GrowthModel(sim.compose("default", [*base, deep], seed=seed))
        calm = sim.GrowthModel(sim.compose("default", [*base, deep, "mechanisms.promotions.withdrawal_hazard=0"], seed=seed))
        seeker = model.pop.segment_names.index("deal_seeker")
        promotions = model.get_mechanism("promotions")
        for _ in range(40):
            model.step()
            calm.step()
            new = model.today.new_users
            drawn.append(model.pop.segment[new[np.isin(new, promotions.targets)]])
        # The deal seekers who are users when the deals stop, and the share of them gone by the end
        # (those who join later are no part of it: ads and friends keep bringing people in).
        seekers = [np.flatnonzero((m.pop.segment == seeker) & m.pop.users_mask()) for m in (model, calm)]
        model.run()
        calm.run()
        left_with.append(1 - model.pop.users_mask()[seekers[0]].mean())
        left_without.append(1 - calm.pop.users_mask()[seekers[1]].mean())
    drawn = np.concatenate(drawn)
    # Deal seekers (35 % of people) are over-represented among those the deep discounts drew in ...
    assert drawn.size > 30 and np.mean(drawn == seeker) > 0.45
    # ... and once the deals stop, deal seekers leave faster than they would without the habit.
    assert all(w > wo for w, wo in zip(left_with, left_without)), (left_with, left_without)
    assert np.mean(left_with) > 1.1 * np.mean(left_without), (left_with, left_without)


def test_a_campaign_calendar_is_checked_at_the_edge():
    with pytest.raises(sim.ConfigError, match=r"campaigns\[0\]\.kind = 'flash': allowed is one of"):
        sim.compose("default", [campaigns("kind:flash,start:1,days:2,discount:0.2")])
    with pytest.raises(sim.ConfigError, match=r"campaigns\[0\]\.every = 3: allowed is 0 \(once\) or at least"):
        sim.compose("default", [campaigns("kind:coupon,start:1,days:5,discount:0.2,every:3")])
    with pytest.raises(sim.ConfigError, match=r"campaigns\[0\]\.discount = 0.95"):
        sim.compose("default", [campaigns("kind:coupon,start:1,days:5,discount:0.95")])


def test_repeated_campaigns_run_on_their_days_only():
    r = sim.simulate(sim.compose("default", [*CLOSED, campaigns("kind:flash_sale,start:3,days:1,discount:0.2,every:7")]))
    running = np.flatnonzero(r.daily["campaigns_running"].to_numpy())
    assert list(running) == list(range(3, 60, 7))


def test_discounts_from_two_mechanisms_compose_and_each_pays_its_share():
    """Offers multiply what earlier ones left; the shares each mechanism books add up to the discount."""
    from sim.engine import Today

    today = Today(day=0, n=10, exposures=None)
    today.visitors = np.arange(4)
    first = today.offer_discount(np.array([0, 1, 2]), 0.2)
    second = today.offer_discount(np.array([1, 2, 3]), np.array([0.5, 0.1, 0.3]))
    np.testing.assert_allclose(today.discount, [0.2, 0.6, 0.28, 0.3])
    share_a, share_b = np.zeros(4), np.zeros(4)
    share_a[[0, 1, 2]], share_b[[1, 2, 3]] = first, second
    np.testing.assert_allclose(share_a + share_b, today.discount)
    today.bought, today.full_price = np.array([1, 3]), np.array([100.0, 50.0])
    used, cost = today.subsidy(share_a)
    assert list(used) == [1] and cost == pytest.approx([20.0])
    used, cost = today.subsidy(share_b)
    assert list(used) == [1, 3] and cost == pytest.approx([40.0, 15.0])


# ------------------------------------------------------------------------------ compiled passes against their numpy forms
def test_drawn_equals_isin():
    from sim.mechanisms.promotions import _drawn
    rng = np.random.default_rng(10)
    channel = rng.integers(0, 4, N_PEOPLE).astype(np.int8)
    new = rng.choice(N_PEOPLE, 400, replace=False)
    targets = rng.integers(0, N_PEOPLE, 600)  # repeats allowed
    targets[:100] = new[:100]
    mark = np.zeros(N_PEOPLE, dtype=bool)
    got = _drawn(new, targets, channel, 0, mark)
    np.testing.assert_array_equal(got, new[np.isin(new, targets) & (channel[new] == 0)])
    assert not mark.any()


def test_withdrawal_equals_numpy():
    from sim.mechanisms.promotions import _withdrawal
    rng = np.random.default_rng(11)
    habit = (rng.random(N_PEOPLE) * rng.integers(0, 2, N_PEOPLE) * 0.05).astype(np.float32)
    habit[:20] = np.float32(0.01)
    segment = rng.integers(0, 4, N_PEOPLE).astype(np.int8)
    ds = rng.random(4) * 2
    users = np.sort(rng.choice(N_PEOPLE, 3000, replace=False))
    hr = rng.random(N_PEOPLE).astype(np.float32)
    hr2 = hr.copy()
    _withdrawal(users, habit, np.float32(0.01), np.float32(0.5), ds, segment, hr)
    u = users[habit[users] > 0.01]
    hr2[u] *= (1.0 + 0.5 * habit[u] * ds[segment[u]]).astype(np.float32)
    np.testing.assert_array_equal(hr, hr2)


def test_offers_and_expansion_equal_the_numpy_loop():
    from sim.mechanisms.promotions import _expansion, _offers
    rng = np.random.default_rng(12)
    day, nud = 40, 7
    joined = rng.integers(0, 41, N_PEOPLE).astype(np.int32)
    segment = rng.integers(0, 4, N_PEOPLE).astype(np.int8)
    ds = rng.random(4) * 2
    keys = np.array([5, 100_000, 200_003, 300_000], dtype=np.int64)
    used = rng.choice(np.append(keys, -1), N_PEOPLE).astype(np.int32)
    expanded = rng.choice(np.append(keys, -1), N_PEOPLE).astype(np.int32)
    reach = np.array([0.3, 1.0, 0.8, 1.0])
    new_only = np.array([False, False, True, False])
    single_use = np.array([False, True, True, False])
    discount = np.array([0.3, 0.2, 0.2, 0.3])  # ties: the earlier run wins
    coef = rng.random(4)
    v = rng.permutation(N_PEOPLE)[:2500].astype(np.int64)
    u = np.random.default_rng(13).random((4, v.size))
    best, run_of, pos = _offers(v, u, (reach, new_only, single_use, discount, keys), day, (joined, used), nud)
    # the same as a numpy loop over the runs, with one rng.random(v.size) per run
    r = np.random.default_rng(13)
    best2, run2 = np.zeros(v.size), np.full(v.size, -1, dtype=np.int64)
    for j in range(4):
        ok = r.random(v.size) < reach[j]
        if new_only[j]:
            ok &= day - joined[v] < nud
        if single_use[j]:
            ok &= used[v] != keys[j]
        better = ok & (discount[j] > best2)
        best2[better], run2[better] = discount[j], j
    pos2 = np.flatnonzero(run2 >= 0)
    np.testing.assert_array_equal(best, best2)
    np.testing.assert_array_equal(run_of, run2)
    np.testing.assert_array_equal(pos, pos2)
    e2 = expanded.copy()
    people, amount = _expansion(v, pos, run_of, keys, coef, expanded, ds, segment)
    people2, amount2 = [], []
    for j in range(4):
        mine = pos2[run2[pos2] == j]
        fresh = mine[e2[v[mine]] != keys[j]]
        people2.append(v[fresh])
        amount2.append(coef[j] * ds[segment[v[fresh]]])
        e2[v[fresh]] = keys[j]
    order = np.argsort(np.concatenate(people2))
    got = np.argsort(people)
    np.testing.assert_array_equal(people[got], np.concatenate(people2)[order])
    np.testing.assert_array_equal(amount[got], np.concatenate(amount2)[order])
    np.testing.assert_array_equal(expanded, e2)


def test_stockpiling_fills_the_basket_and_deepens_the_dip():
    """Deal buyers who stock up pay for bigger baskets and buy less afterwards; before the campaign
    nothing differs (stockpiling draws no randomness)."""
    sale = campaigns("kind:festival,start:40,days:3,discount:0.3")
    daily = {s: [sim.simulate(sim.compose("default", [*CLOSED, sale, f"mechanisms.promotions.stockpile={s}"], seed=seed)).daily
                 for seed in range(2)] for s in (0, 2)}
    for flat, stock in zip(daily[0], daily[2]):
        assert flat.iloc[:40].equals(stock.iloc[:40])
    during, after = slice(40, 43), slice(43, 53)
    value = {s: sum(d["gmv"].iloc[during].sum() for d in ds) / sum(d["orders"].iloc[during].sum() for d in ds) for s, ds in daily.items()}
    later = {s: sum(d["orders"].iloc[after].sum() for d in ds) for s, ds in daily.items()}
    assert value[2] > 1.1 * value[0], value
    assert later[2] < 0.95 * later[0], later
