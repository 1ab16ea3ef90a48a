"""Push notifications: more visits at first, fatigue and opt-outs past the tolerance."""

from __future__ import annotations

import numpy as np
import pytest

import sim


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
    """Pushes chosen by a personalised recommender match tastes more often than random ones."""
    def optouts(strategy):
        return sum(run(2.0, seed, "mechanisms.recommendations.enabled=true", f"mechanisms.recommendations.strategy={strategy}")
                   ["push_optouts"].sum() for seed in (0, 1))
    assert optouts("personalised") < 0.8 * optouts("random")


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
