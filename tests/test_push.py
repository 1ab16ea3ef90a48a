"""Push notifications: more visits at first, fatigue and opt-outs past the tolerance."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from conftest import N_PEOPLE
from sim import behaviour as bh
from sim.mechanisms.push import _deliver


def run(per_day: float, seed: int, *overrides: str):
    cfg = sim.compose("default", ["population.size=6000", "horizon=120", "mechanisms.push.enabled=true",
                                  f"mechanisms.push.per_day={per_day}", *overrides], seed=seed)
    return sim.simulate(cfg).daily


@pytest.fixture(scope="module")
def sweep():
    return {f: [run(f, seed) for seed in (0, 1)] for f in (0.0, 1.0, 4.0)}


def mean(runs, metric):
    return np.mean([metric(d) for d in runs])


def test_daily_active_users_rise_with_push_frequency_at_first(sweep):
    dau = {f: mean(runs, lambda d: d["dau"][30:].mean()) for f, runs in sweep.items()}
    assert dau[1.0] > 1.1 * dau[0.0], dau


def test_past_the_tolerance_opt_outs_climb_and_active_users_fall(sweep):
    optouts = {f: mean(runs, lambda d: d["push_optouts"].sum()) for f, runs in sweep.items()}
    active = {f: mean(runs, lambda d: d["active_users"].iloc[-1]) for f, runs in sweep.items()}
    dau = {f: mean(runs, lambda d: d["dau"][30:].mean()) for f, runs in sweep.items()}
    assert optouts[0.0] == 0 and optouts[4.0] > 5 * max(optouts[1.0], 1)
    assert active[4.0] < 0.85 * active[1.0], active
    assert dau[4.0] < dau[1.0]  # the optimum frequency is interior


def test_relevant_pushes_tire_users_less():
    """Pushes chosen by a personalised recommender match tastes more often than random ones, so
    fewer users opt out per day. Per user-day: a market that is far from saturated grows more
    users under the personalised recommender, and more users to push to mean more opt-outs."""
    def optouts_per_user_day(strategy):
        runs = [run(2.0, seed, "mechanisms.recommendations.enabled=true", f"mechanisms.recommendations.strategy={strategy}")
                for seed in (0, 1)]
        return sum(d["push_optouts"].sum() for d in runs) / sum(d["users"].sum() for d in runs)
    assert optouts_per_user_day("personalised") < 0.8 * optouts_per_user_day("random")


def test_opted_out_users_get_no_pushes_and_uninstalls_churn():
    cfg = sim.compose("default", ["population.size=4000", "horizon=60", "mechanisms.push.enabled=true", "mechanisms.push.per_day=5"])
    model = sim.GrowthModel(cfg)
    push = model.get_mechanism("push")
    for _ in range(60):
        opted = push.opted_out.copy()
        before = push.fatigue.copy()
        model.step()
        # Opted-out people's fatigue only decays: nobody pushes to them any more.
        assert np.all(push.fatigue[opted] <= before[opted] + 1e-6)
    s = model.metrics.series
    assert s["push_optouts"].sum() == push.opted_out.sum() > 0
    assert 0 < s["push_uninstalls"].sum() <= s["churned_users"].sum()


def _relevant_pushes(rng, n, p):
    """Relevant pushes among ``n[i]`` pushes to person ``i`` as push.visit draws them (_deliver)."""
    from sim.mechanisms.push import _deliver

    people = np.arange(n.size)
    zeros = lambda: np.zeros(n.size, dtype=np.float32)  # noqa: E731 (scratch columns)
    weight = np.arange(int(n.max()) + 1, dtype=np.float64)
    return _deliver((people, n, p, np.ones(n.size)), rng.random(int(n.sum())), (zeros(), zeros(), zeros()),
                    (weight, 1.0, 1.0, 1.0, 0.0))


def test_relevant_pushes_follow_the_binomial_distribution():
    """The fast draw of relevant pushes (sums of Bernoulli trials, in push._deliver) has the
    binomial's frequencies: for each count n and a fixed p, every outcome's share within 4 standard
    errors of the pmf."""
    from scipy.stats import binom

    rng = np.random.default_rng(12)
    for n_pushes, p in ((1, 0.3), (3, 0.5), (5, 0.1)):
        size = 40_000
        draws = _relevant_pushes(rng, np.full(size, n_pushes), np.full(size, p))
        share = np.bincount(draws, minlength=n_pushes + 1) / size
        pmf = binom.pmf(np.arange(n_pushes + 1), n_pushes, p)
        assert np.all(np.abs(share - pmf) <= 4 * np.sqrt(pmf * (1 - pmf) / size) + 1e-12), (n_pushes, share, pmf)
    mixed = _relevant_pushes(rng, np.array([2, 1, 4]), np.array([1.0, 0.0, 1.0]))
    assert mixed.tolist() == [2, 0, 4]  # certain outcomes, each person's own count


# ------------------------------------------------------------------------------ compiled passes against their numpy forms
def _binomial_small(rng, n, p):
    """Relevant pushes drawn in numpy as sums of Bernoulli trials, one uniform per push."""
    hits = (rng.random(int(n.sum())) < np.repeat(p, n)).astype(np.int64)
    if hits.size == 0:
        return np.zeros(n.size, dtype=np.int64)
    return np.add.reduceat(hits, np.cumsum(n) - n)


def test_deliver_kernel_equals_numpy_push():
    rng = np.random.default_rng(0)
    npeople, m = 5000, 3000
    sent = np.sort(rng.choice(npeople, m, replace=False))
    n = rng.integers(1, 5, m)
    p = rng.random(m)
    fatigue = (rng.random(npeople) * 20).astype(np.float32)
    boost = (rng.random(npeople) - 0.5).astype(np.float32)
    sat = rng.random(npeople).astype(np.float32)
    sat[:50] = 0.0005  # some fall below 0
    d, ru, iu, ifat, ann, damping = 0.6, 1.0, 0.5, 2.0, 0.001, 0.05
    k = np.arange(int(n.max()) + 1, dtype=np.float64)
    weight = (1.0 - d ** k) / (1.0 - d)
    damp = np.exp(-damping * fatigue[sent])
    # numpy reference
    relevant = _binomial_small(np.random.default_rng(9), n, p)
    irrelevant = n - relevant
    w_rel = weight[relevant]
    w_irr = weight[n] - w_rel
    f_ref, b_ref, s_ref = fatigue.copy(), boost.copy(), sat.copy()
    b_ref[sent] += (damp * (ru * w_rel + iu * w_irr)).astype(np.float32)
    f_ref[sent] += (relevant + ifat * irrelevant).astype(np.float32)
    np.add.at(s_ref, sent, np.asarray(-ann * irrelevant, dtype=np.float32))
    s_ref[sent] = np.clip(s_ref[sent], 0.0, 1.0)
    got = _deliver((sent, n, p, damp), np.random.default_rng(9).random(int(n.sum())), (fatigue, boost, sat),
                   (weight, ru, iu, ifat, ann))
    np.testing.assert_array_equal(got, relevant)
    np.testing.assert_array_equal(fatigue, f_ref)
    np.testing.assert_array_equal(boost, b_ref)
    np.testing.assert_array_equal(sat, s_ref)


@pytest.mark.parametrize("per_day", [0.3, 1.0, 2.6])
def test_push_schedule_equals_numpy(per_day):
    from sim.mechanisms.push import _reachable, _schedule
    rng = np.random.default_rng(9)
    opted_out = rng.random(N_PEOPLE) < 0.2
    fatigue = (rng.random(N_PEOPLE) * 30).astype(np.float32)
    alive = np.sort(rng.choice(N_PEOPLE, 3000, replace=False))
    users = _reachable(alive, opted_out)
    np.testing.assert_array_equal(users, alive[~opted_out[alive]])
    u = rng.random(users.size)
    sent, n, total, top, x = _schedule(users, per_day, u, fatigue, np.float32(-0.05))
    n2 = bh.stochastic_round(np.full(users.size, per_day), u)
    np.testing.assert_array_equal(sent, users[n2 > 0])
    np.testing.assert_array_equal(n, n2[n2 > 0])
    assert total == n2.sum() and top == n2.max(initial=0)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(np.exp(x), np.exp(-0.05 * fatigue[sent]))


@pytest.mark.parametrize("tolerance", [15.0, 15.1, 0.7])
def test_push_opt_out_equals_numpy(tolerance):
    from sim.mechanisms.push import _opt_out, _tired
    rng = np.random.default_rng(14)
    opted_out = rng.random(N_PEOPLE) < 0.2
    fatigue = (rng.random(N_PEOPLE) * 3 * tolerance).astype(np.float32)
    fatigue[:50] = np.float32(tolerance)  # ties with the tolerance
    fatigue[50:100] = np.nextafter(np.float32(tolerance), np.float32(0))
    alive = np.sort(rng.choice(N_PEOPLE, 3000, replace=False))
    alive[:10] = np.arange(10)
    alive = np.unique(alive)
    users, opted = _tired(alive, opted_out, fatigue, np.float32(tolerance))
    users2 = alive[~opted_out[alive] & (fatigue[alive] > tolerance)]
    np.testing.assert_array_equal(users, users2)
    u = rng.random(users.size)
    o2 = opted_out.copy()
    out = _opt_out(users, u, fatigue, np.float32(tolerance), np.float32(0.02 * 30), opted_out)
    excess = fatigue[users2] / tolerance - 1.0
    out2 = users2[u < np.minimum(1.0, 0.02 * 30 * excess)]
    o2[out2] = True
    np.testing.assert_array_equal(out, out2)
    np.testing.assert_array_equal(opted_out, o2)
    assert opted + out.size == np.count_nonzero(opted_out[alive])
