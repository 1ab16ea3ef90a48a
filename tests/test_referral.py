"""Referral programme: incentives, caps, one- and two-sided rewards, saturation."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from conftest import simulate, small
from sim import behaviour as bh
from sim import kernels
from sim.mechanisms.base import Mechanism
from sim.mechanisms.referral import REFERRAL


def test_more_reward_never_fewer_invitations():
    for seed in range(3):
        low = simulate("mechanisms.referral.inviter_reward=0", seed=seed).summary["invites_sent"]
        mid = simulate("mechanisms.referral.inviter_reward=10", seed=seed).summary["invites_sent"]
        high = simulate("mechanisms.referral.inviter_reward=40", seed=seed).summary["invites_sent"]
        assert low <= mid <= high, (seed, low, mid, high)


def test_no_inviter_is_rewarded_beyond_the_cap():
    cfg = sim.compose("default", ["population.size=3000", "horizon=60", "mechanisms.referral.per_inviter_cap=2",
                                  "mechanisms.referral.invitee_reward=0"])
    model = sim.GrowthModel(cfg).run()
    rewarded = model.pop.extra["referral_rewarded"]
    assert rewarded.max() <= 2
    # Rewards to real invitees' inviters are incentives; those farmed with fake accounts are fraud
    # losses; both count against the cap.
    paid = model.economics.daily["referral_rewards"].sum() + model.economics.daily["referral_fraud"].sum()
    assert paid == cfg.mechanisms["referral"].inviter_reward * rewarded.sum()
    # Accepted invitations beyond the cap still bring users, just unrewarded.
    accepted = np.bincount(model.pop.referrer[model.pop.channel == 2], minlength=model.pop.n)
    assert (accepted > 2).any() or rewarded.sum() == accepted.sum()


def test_two_sided_rewards_cost_both_sides():
    r = simulate("mechanisms.referral.inviter_reward=10", "mechanisms.referral.invitee_reward=7", "mechanisms.referral.per_inviter_cap=0")
    accepted = r.daily["invites_accepted"].sum()
    assert r.daily["cost_referral_rewards"].sum() == (10 + 7) * accepted
    assert r.daily["new_referral"].sum() == accepted


def test_invitee_reward_raises_acceptance():
    def rate(reward):
        acc = sent = 0
        for seed in range(3):
            s = simulate(f"mechanisms.referral.invitee_reward={reward}", seed=seed).summary
            acc, sent = acc + s["invites_accepted"], sent + s["invites_sent"]
        return acc / sent
    assert rate(30) > rate(0)


def test_disabled_referral_brings_no_referred_users():
    r = simulate("mechanisms.referral.enabled=false")
    assert r.summary["new_referral"] == 0 and r.summary["invites_sent"] == 0
    assert r.daily["incentive_cost"].sum() == 0


# ---------------------------------------------------------------------------------------------
# Reward size: more referred users with diminishing returns, less profit per referred user

def referral_only(*overrides: str, seed: int = 0, people: int = 5000, days: int = 90):
    return sim.simulate(sim.compose("default", [f"population.size={people}", f"horizon={days}",
                                                "mechanisms.paid_acquisition.enabled=false", *overrides], seed=seed))


def test_referred_users_grow_with_the_reward_with_diminishing_returns_and_falling_profit_per_user():
    rewards = (0, 10, 40)
    referred, profit = [], []
    for reward in rewards:
        users = value = 0.0
        for seed in range(3):
            r = referral_only(f"mechanisms.referral.inviter_reward={reward}", "mechanisms.referral.invitee_reward=0", seed=seed)
            ch = r.cohorts[r.cohorts["channel"] == "referral"]
            users += r.daily["new_referral"].sum()
            value += ch["revenue"].sum() - r.daily["cost_referral_rewards"].sum()
        referred.append(users)
        profit.append(value / users)
    gain_per_rmb = np.diff(referred) / np.diff(rewards)
    assert np.all(np.diff(referred) > 0), referred
    assert np.all(np.diff(gain_per_rmb) < 0), gain_per_rmb
    assert np.all(np.diff(profit) < 0), profit


# ---------------------------------------------------------------------------------------------
# Referred customers are worth more (Schmitt, Skiera and Van den Bulte 2011)

@pytest.mark.slow
def test_referred_users_stay_longer_and_are_worth_more_than_paid_users():
    """About 18 % more likely to stay and 16 % more valuable: the direction and rough size."""
    stay, value = [], []
    for seed in range(3):
        r = sim.simulate(sim.compose("default", ["population.size=20000", "horizon=150"], seed=seed))
        c = r.cohorts[(r.cohorts["age"] == 60) & r.cohorts["channel"].isin(["referral", "paid"])]
        by = c.groupby("channel")[["users", "alive"]].sum()
        alive = by["alive"] / by["users"]
        stay.append(alive["referral"] / alive["paid"])
        ch = r.channels.set_index("channel")
        value.append(ch.loc["referral", "ltv_90"] / ch.loc["paid", "ltv_90"])
    assert 1.05 < np.mean(stay) < 1.6, stay
    assert 1.05 < np.mean(value) < 1.6, value


# ---------------------------------------------------------------------------------------------
# Fading: the same sender's repeated invitations convert less each time

def test_the_same_senders_repeated_invitations_convert_less_each_time():
    """Receivers get one invitation a day for four days: from one friend, or from a different friend
    each day. Both groups have received as many invitations before (saturation alike); only the
    first fades with repeats."""
    quiet = [f"population.segments.{s}.share_rate=0" for s in ("deal_seeker", "social_sharer", "content_lover", "loyal_value")]
    cfg = sim.compose("default", ["population.size=10000", "horizon=5", "adoption.seed_fraction=0", "adoption.external_rate=0",
                                  *(f"mechanisms.{m}.enabled=false" for m in sim.mechanisms.REGISTRY), *quiet])
    model = sim.GrowthModel(cfg)
    g = model.graph
    receivers = np.flatnonzero(g.degree >= 4)[:4000]
    same, different = receivers[::2], receivers[1::2]
    rates = {"same": [], "different": []}
    for day in range(4):
        for name, group in (("same", same), ("different", different)):
            waiting = group[model.pop.state[group] <= 1]
            k = 0 if name == "same" else day
            edge = g.indptr[waiting] + k
            model.pending.add(waiting, REFERRAL, 0.6, g.indices[edge], edge)
            rates[name].append(waiting)
        model.step()
        for name in rates:
            waiting = rates[name][-1]
            rates[name][-1] = float(np.mean(model.pop.joined_day[waiting] == day))
    same_rate, different_rate = np.array(rates["same"]), np.array(rates["different"])
    assert np.all(np.diff(same_rate) < 0), same_rate
    assert np.all(same_rate[1:] < 0.8 * different_rate[1:]), (same_rate, different_rate)
    assert abs(same_rate[0] - different_rate[0]) < 0.05


def test_invitation_fading_lowers_acceptance_through_the_programme():
    def acceptance(fade):
        acc = sent = 0
        for seed in range(2):
            s = simulate(f"behaviour.social.repeat_fade={fade}", seed=seed).summary
            acc, sent = acc + s["invites_accepted"], sent + s["invites_sent"]
        return acc / sent
    assert acceptance(0.2) < acceptance(1.0)


# ---------------------------------------------------------------------------------------------
# Reward forms, tiers, the attribution window

def test_coupons_cost_only_when_used_and_lower_the_price_of_a_later_order():
    cash = simulate("mechanisms.referral.reward_form=cash")
    coupon = simulate("mechanisms.referral.reward_form=coupon", "mechanisms.referral.redemption=0.5")
    d = coupon.daily
    issued, paid = d["referral_rewards_issued_rmb"].sum(), d["cost_referral_rewards"].sum()
    assert 0 < paid < 0.5 * issued  # half lapse at issue, the rest only when a later order uses them
    assert cash.daily["cost_referral_rewards"].sum() == cash.daily["referral_rewards_issued_rmb"].sum()
    # What is paid never comes before the coupon was issued.
    assert (d["cost_referral_rewards"].cumsum() <= d["referral_rewards_issued_rmb"].cumsum() + 1e-6).all()
    model = coupon.model
    assert (model.pop.extra["referral_coupon_rmb"] >= 0).all()


def test_coupon_holders_buy_more_readily():
    """Invitees given a 30 RMB coupon that is always used (redemption 1) against one that always
    lapses (0): referred users turn more of their visits into orders, and the market orders more."""
    def run(redemption, seed):
        return simulate("mechanisms.referral.reward_form=coupon", f"mechanisms.referral.redemption={redemption}",
                        "mechanisms.referral.invitee_reward=30", "adoption.seed_fraction=0.01", seed=seed)

    def orders_per_visit_of_referred(r):
        pop = r.model.pop
        referred = pop.channel == REFERRAL
        return pop.orders[referred].sum() / pop.visits[referred].sum()

    orders = {1: 0, 0: 0}
    for seed in range(6):  # a busy market (30 seed users), pooled over seeds: a run's orders are noisy
        used, lapsed = run(1, seed), run(0, seed)
        assert orders_per_visit_of_referred(used) > orders_per_visit_of_referred(lapsed), seed
        orders[1] += used.summary["orders"]
        orders[0] += lapsed.summary["orders"]
    assert orders[1] > orders[0], orders


def test_points_are_paid_as_they_are_used_up_to_a_share_of_each_order():
    r = simulate("mechanisms.referral.reward_form=points", "mechanisms.referral.redemption=1",
                 "mechanisms.referral.rmb_per_point=0.1", "mechanisms.referral.points_max_share=0.2")
    d = r.daily
    assert 0 < d["cost_referral_rewards"].sum() < d["referral_rewards_issued_rmb"].sum()
    points = r.model.pop.extra["referral_points"]
    assert (points >= 0).all()
    # Every point issued is either paid out or still held.
    assert d["referral_rewards_issued_rmb"].sum() == pytest.approx(d["cost_referral_rewards"].sum() + points.sum() * 0.1, rel=1e-9)


def test_later_invitations_pay_more_under_tiered_rewards():
    # 50 seed users who invite three times as often as by default: enough inviters reach the third
    # tier, while they still visit, for its higher reward to show in the invitations sent.
    busy = ("adoption.seed_fraction=0.0167", "mechanisms.referral.invites_per_visit=0.6",
            "mechanisms.referral.invitee_reward=0", "mechanisms.referral.abuse_share=0")
    sent = {"flat": 0, "tiered": 0}
    for seed in range(2):
        flat = simulate(*busy, seed=seed)
        tiered = simulate(*busy, "mechanisms.referral.tier_multipliers=[1,1,3]", seed=seed)
        rewarded = tiered.model.pop.extra["referral_rewarded"]
        # Each inviter's k-th rewarded invite paid 10, 10, then 30 each.
        expected = 10 * np.minimum(rewarded, 2).sum() + 30 * np.maximum(rewarded - 2, 0).sum()
        assert tiered.daily["cost_referral_rewards"].sum() == expected
        assert (rewarded > 2).any()
        sent["flat"] += flat.summary["invites_sent"]
        sent["tiered"] += tiered.summary["invites_sent"]
    assert sent["tiered"] >= sent["flat"], sent


def test_joins_after_the_attribution_window_are_not_credited_to_referral():
    wide = simulate("mechanisms.referral.response_delay_days=5", "mechanisms.referral.attribution_window_days=60")
    narrow = simulate("mechanisms.referral.response_delay_days=5", "mechanisms.referral.attribution_window_days=2")
    assert wide.daily["referral_unattributed_joins"].sum() == 0
    assert narrow.daily["referral_unattributed_joins"].sum() > 0
    assert narrow.summary["new_referral"] < 0.7 * wide.summary["new_referral"]
    # Uncredited joins earn nobody a reward.
    for r in (wide, narrow):
        d = r.daily
        assert d["cost_referral_rewards"].sum() <= (10 + 5) * d["invites_accepted"].sum()
    closed = simulate("mechanisms.referral.attribution_window_days=0")
    assert closed.summary["new_referral"] == 0 and closed.daily["cost_referral_rewards"].sum() == 0


# ---------------------------------------------------------------------------------------------
# Reward abuse: fake accounts, screened by the fraud mechanism when it is enabled

class ScreenDouble(Mechanism):
    """A mechanism offering only fraud screening (the base class's capability): catches a share of
    attempts."""

    name = "fraud"

    def __init__(self, share: float):
        super().__init__(None)
        self.share, self.seen = share, 0

    def screen(self, model, attempts: int, rng) -> int:
        self.seen += attempts
        return int(rng.binomial(attempts, self.share))


def run_with_screen(monkeypatch, share: float | None, *overrides: str):
    cfg = small("mechanisms.referral.abuse_share=0.05", *overrides)
    model = sim.GrowthModel(cfg)
    double = None
    if share is not None:
        double = ScreenDouble(share)
        model.mechanisms.append(double)  # hooks nothing: only asked for its capability
    model.run()
    return model, model.metrics.daily(model.economics), double


def test_fake_accounts_are_counted_apart_and_their_rewards_are_fraud_losses(monkeypatch):
    model, d, _ = run_with_screen(monkeypatch, None)
    fakes = d["referral_fake_accounts"].sum()
    assert fakes > 0 and d["referral_fakes_paid"].sum() == fakes
    assert d["fraud_loss"].sum() == d["cost_referral_fraud"].sum() > 0
    # Fake accounts are not people: every real user is a row, and real acceptances are referral joins.
    assert d["new_referral"].sum() == d["invites_accepted"].sum()
    assert (d[[c for c in d.columns if c.startswith("n_")]].sum(axis=1) == model.pop.n).all()
    assert d["cost_referral_fraud"].sum() <= (10 + 5) * fakes


def test_the_fraud_screen_catches_fakes_and_unpaid_fakes_cost_nothing(monkeypatch):
    _, all_caught, double = run_with_screen(monkeypatch, 1.0)
    assert double.seen == all_caught["referral_fake_accounts"].sum() > 0
    assert all_caught["referral_fakes_paid"].sum() == 0 and all_caught["fraud_loss"].sum() == 0
    _, half, _ = run_with_screen(monkeypatch, 0.5)
    _, none, _ = run_with_screen(monkeypatch, 0.0)
    assert 0 < half["fraud_loss"].sum() < none["fraud_loss"].sum()


def test_no_farming_when_a_fake_account_costs_more_than_the_reward():
    r = simulate("mechanisms.referral.abuse_share=0.2", "mechanisms.referral.fake_account_cost_rmb=100")
    assert r.daily["referral_fake_accounts"].sum() == 0


# ------------------------------------------------------------------------------ compiled passes against their numpy forms
@pytest.mark.parametrize("p", [1.0, 0.9, 0.5, 0.4, 1 / 3 + 1e-12, 0.333333333333333333333333])
def test_geometric_delays_equal_numpys_geometric(p):
    from sim.mechanisms.referral import GEOMETRIC_SEARCH_FROM, MAX_DELAY_DAYS, _geometric_delays

    assert p >= GEOMETRIC_SEARCH_FROM
    for cap in (MAX_DELAY_DAYS, 3):
        r1, r2 = np.random.default_rng(11), np.random.default_rng(11)
        want = np.minimum(r1.geometric(p, 200_000) - 1, cap)
        got = np.empty(200_000, np.int64)
        _geometric_delays(r2.random(200_000), p, cap, got)
        assert np.array_equal(got, want)
        assert r1.random() == r2.random()


REFERRAL_VARIANTS = [
    [],
    ["mechanisms.referral.per_inviter_cap=0"],
    ["mechanisms.referral.tier_multipliers=[1.0,2.0,0.0,0.5]", "mechanisms.referral.per_inviter_cap=4"],
    ["mechanisms.referral.reward_form=coupon", "mechanisms.referral.reward_half_rmb=3", "mechanisms.referral.fake_account_cost_rmb=0"],
    ["mechanisms.referral.reward_half_rmb=0.0001", "mechanisms.referral.per_inviter_cap=2", "mechanisms.fraud.enabled=true"],
]


def _referral_model(overrides, seed=0, n=600, days=3):
    cfg = sim.compose("default", [f"population.size={n}", "horizon=10", "mechanisms.referral.enabled=true", *overrides], seed=seed)
    model = sim.GrowthModel(cfg)
    for _ in range(days):
        model.step()
    return model


def _inviter_reward(ref, idx, already=0):
    """The inviter's reward computed directly (not from the per-tier tables): face value of the next
    rewarded invite of ``idx`` (0 past the cap), tier included."""
    done = ref.rewarded[idx] + already
    value = ref.config.inviter_reward * ref.tiers[np.minimum(done, ref.tiers.size - 1)]
    cap = ref.config.per_inviter_cap
    return value if cap == 0 else np.where(done < cap, value, 0.0)


@pytest.mark.parametrize("overrides", REFERRAL_VARIANTS)
def test_referral_inviters_equal_the_numpy_form(overrides):
    from sim.mechanisms.referral import _inviters

    model = _referral_model(overrides)
    ref, pop, c = model.get_mechanism("referral"), model.pop, model.get_mechanism("referral").config
    rng = np.random.default_rng(1)
    ref.rewarded[:] = rng.integers(0, 8, ref.rewarded.size)
    pop.satisfaction[:] = rng.random(pop.n).astype(np.float32)
    v = np.unique(rng.integers(0, pop.n, 400))
    u = rng.random(v.size)
    # the numpy form: the reward of each inviter's next invitation, its response, the product, a round
    direct = 1.0 + c.reward_uplift * bh.incentive_response(_inviter_reward(ref, v) * ref.perceived, c.reward_half_rmb)
    sharing = bh.sharing_propensity(pop, v, model.day, model.cfg.behaviour.social)
    mean = c.invites_per_visit * pop.param("invite_propensity", v) * direct * sharing
    expected = np.repeat(v, bh.stochastic_round(mean, u))
    got = _inviters(v, pop.segment, pop.seg["invite_propensity"], ref.rewarded, ref.motivation, ref.tiers.size,
                    c.per_inviter_cap, c.invites_per_visit, sharing, u)
    assert got.dtype == v.dtype and np.array_equal(got, expected)


def _farm_reference(self, model, rng, visitors):
    """``Referral._farm`` written in numpy."""
    c = self.config

    def cap_left(idx, already=0):
        cap = c.per_inviter_cap
        return np.ones(idx.size, dtype=bool) if cap == 0 else self.rewarded[idx] + already < cap

    farmers = visitors[self.farmer[visitors]]
    farmers = farmers[cap_left(farmers)]
    if farmers.size == 0 or c.fakes_per_farm_visit == 0:
        return
    value = _inviter_reward(self, farmers) + c.invitee_reward
    profit = np.maximum(value * self.perceived - c.fake_account_cost_rmb, 0.0)
    n = rng.poisson(c.fakes_per_farm_visit * bh.incentive_response(profit, c.reward_half_rmb))
    owner = np.repeat(farmers, n)
    if owner.size == 0:
        return
    within = kernels.rank_within(owner)
    rewarded = cap_left(owner, within)
    owner, within = owner[rewarded], within[rewarded]
    attempts = owner.size
    model.today.count("referral_fake_accounts", attempts)
    caught = min(sum(int(m.screen(model, attempts, rng)) for m in model.mechanisms), attempts) if attempts else 0
    paid = np.ones(attempts, dtype=bool)
    if caught:
        paid[rng.choice(attempts, size=caught, replace=False)] = False
    owner, within = owner[paid], kernels.rank_within(owner[paid])
    if owner.size == 0:
        return
    loss = _inviter_reward(self, owner, within) + c.invitee_reward
    np.add.at(self.rewarded, owner, 1)
    amount = float(loss.sum()) * (1.0 if self.cash else c.redemption)
    model.today.count("referral_fakes_paid", owner.size)
    if amount > 0:
        model.economics.book("referral_fraud", amount)


@pytest.mark.parametrize("overrides", REFERRAL_VARIANTS)
@pytest.mark.parametrize("seed", range(3))
def test_referral_farming_equals_the_numpy_form(overrides, seed):
    overrides = [*overrides, "mechanisms.referral.abuse_share=0.4", "mechanisms.referral.fakes_per_farm_visit=4"]
    a, b = _referral_model(overrides, seed), _referral_model(overrides, seed)
    for model in (a, b):
        ref = model.get_mechanism("referral")
        ref.rewarded[:] = np.random.default_rng(seed + 10).integers(0, 6, ref.rewarded.size)
    v = np.unique(np.random.default_rng(seed + 20).integers(0, a.pop.n, 300))
    for day in range(4):  # the rewarded counts carry over
        _farm_reference(a.get_mechanism("referral"), a, np.random.default_rng(day), v)
        b.get_mechanism("referral")._farm(b, np.random.default_rng(day), v)
    assert np.array_equal(a.get_mechanism("referral").rewarded, b.get_mechanism("referral").rewarded)
    assert a.today.counters == b.today.counters
    for account in a.economics.daily:
        assert np.array_equal(a.economics.daily[account], b.economics.daily[account])


@pytest.mark.parametrize("overrides", REFERRAL_VARIANTS + [["mechanisms.referral.invitee_reward=0"]])
@pytest.mark.parametrize("seed", range(4))
def test_referral_rewards_equal_the_numpy_form(overrides, seed):
    from sim.mechanisms.referral import REFERRAL, _referred, _rewards

    model = _referral_model(overrides, seed)
    ref, pop, c = model.get_mechanism("referral"), model.pop, model.get_mechanism("referral").config
    rng = np.random.default_rng(seed)
    ref.rewarded[:] = rng.integers(0, 6, ref.rewarded.size)
    new = rng.permutation(np.unique(rng.integers(0, pop.n, 300)))
    channel = rng.integers(0, 3, pop.n).astype(pop.channel.dtype) + REFERRAL - 1
    referrer = rng.integers(0, 40, pop.n).astype(pop.referrer.dtype)  # many friends of one inviter
    # the numpy form
    rewarded = ref.rewarded.copy()
    ref_new = new[channel[new] == REFERRAL]
    inviters = referrer[ref_new]
    inviter_value = _inviter_reward(ref, inviters, kernels.rank_within(inviters))
    paid = inviter_value > 0
    np.add.at(rewarded, inviters[paid], 1)
    who = np.concatenate([inviters[paid], ref_new])
    value = np.concatenate([inviter_value[paid], np.full(ref_new.size, c.invitee_reward)])
    keep = value > 0
    referred, got_inviters = _referred(new, channel, referrer)
    assert np.array_equal(referred, ref_new) and np.array_equal(got_inviters, inviters)
    got = _rewards(referred, got_inviters, kernels.rank_within(got_inviters), ref.rewarded, ref.inviter_value, ref.tiers.size,
                   c.per_inviter_cap, float(c.invitee_reward))
    assert np.array_equal(got[0], who[keep]) and np.array_equal(got[1], value[keep])
    assert np.array_equal(ref.rewarded, rewarded)


@pytest.mark.parametrize("seed", range(10))
def test_referral_late_joins_equal_the_numpy_form(seed):
    from sim.graph.csr import unique_sorted
    from sim.mechanisms.referral import ORGANIC, _late_joins

    rng = np.random.default_rng(seed)
    n = 500
    joined_day, referrer = rng.integers(9, 11, n), rng.integers(0, 5, n)
    channel = np.where(rng.random(n) < 0.6, ORGANIC, ORGANIC + 1).astype(np.int8)
    receiver, sender = rng.integers(0, n, 400), rng.integers(0, 5, 400)
    hit = (joined_day[receiver] == 10) & (channel[receiver] == ORGANIC) & (referrer[receiver] == sender)
    assert hit.any()
    assert _late_joins(receiver, sender, 10, joined_day, channel, referrer) == unique_sorted(receiver[hit]).size
