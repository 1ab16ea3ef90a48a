"""Oracles: settings where the answer is known analytically.

1. Bass (1969): in a well-mixed population with external rate p and word of mouth q, the adopted
   share follows F(t) = (1 - e^{-(p+q)t}) / (1 + (q/p) e^{-(p+q)t}).
2. With outside adoption only and a constant churn hazard h, survival is geometric: a cohort keeps
   a share e^{-h (a+1)} at age a (the joining day is a day at risk).
"""

from __future__ import annotations

import numpy as np
import pytest

import sim

# Every user visits daily and mentions the platform to one random person; nobody churns; nothing
# changes satisfaction, so sharing propensity stays exactly 1.
WELL_MIXED = [
    "graph=complete", "population.size=20000", "horizon=200", "adoption.seed_fraction=0",
    "mechanisms.referral.enabled=false", "mechanisms.paid_acquisition.enabled=false",
    "adoption.external_conversion=1", "behaviour.churn.base_hazard=0", "behaviour.churn.churn_after_days=100000",
    "behaviour.churn.dormant_after_days=99999", "behaviour.social.saturation=1", "behaviour.social.novelty_boost=0",
    "behaviour.satisfaction.purchase_gain=0", "behaviour.satisfaction.service_failure_rate=0",
    "behaviour.satisfaction.onboarding_friction=0", "behaviour.satisfaction.reversion=0",
    *(f"population.segments.{s}.{k}={v}" for s in ("deal_seeker", "social_sharer", "content_lover", "loyal_value")
      for k, v in (("share_rate", 1.0), ("visit_rate", 1.0), ("satisfaction", 0.5))),
]


def bass(t: np.ndarray, p: float, q: float) -> np.ndarray:
    e = np.exp(-(p + q) * t)
    return (1 - e) / (1 + (q / p) * e)


@pytest.mark.parametrize("p, q", [(0.003, 0.06), (0.01, 0.03)])
def test_well_mixed_adoption_follows_the_bass_equation(p, q):
    curves = []
    for seed in range(3):
        r = sim.simulate(sim.compose("default", [*WELL_MIXED, f"adoption.external_rate={p}", f"adoption.word_of_mouth_conversion={q}"], seed=seed))
        curves.append(r.daily["cumulative_users"].to_numpy() / r.config.population.size)
    simulated = np.mean(curves, axis=0)
    t = np.arange(1, simulated.size + 1)  # adoption of day d is counted at the end of day d
    # Stated tolerance: 0.03 in adopted share, which covers the one-day lag between a mention and
    # the decision it prompts and the discreteness of daily steps.
    assert np.max(np.abs(simulated - bass(t, p, q))) < 0.03
    # ... and the lag must not swamp the shape: the fitted imitation rate is close to q.
    from scipy.optimize import curve_fit
    (p_fit, q_fit), _ = curve_fit(bass, t, simulated, p0=(p, q), bounds=(1e-6, 1))
    assert q_fit == pytest.approx(q, rel=0.15)
    assert p_fit == pytest.approx(p, rel=0.25)


CONSTANT_HAZARD = [
    "population.size=30000", "horizon=60", "adoption.seed_fraction=0", "adoption.external_rate=0.01",
    "adoption.external_conversion=1", "adoption.word_of_mouth_conversion=0",
    "mechanisms.referral.enabled=false", "mechanisms.paid_acquisition.enabled=false",
    "population.frailty_cv=0", "behaviour.churn.tenure_decay=0", "behaviour.churn.satisfaction_weight=0",
    "behaviour.churn.friends_weight=0", "behaviour.churn.loyal_ratio=1", "behaviour.churn.dormant_ratio=1",
    "behaviour.churn.dormant_after_days=1000", "behaviour.churn.churn_after_days=1001",
    *(f"population.segments.{s}.frailty=1" for s in ("deal_seeker", "social_sharer", "content_lover", "loyal_value")),
]


@pytest.mark.parametrize("h", [0.05, 0.2])
def test_constant_churn_gives_geometric_survival(h):
    r = sim.simulate(sim.compose("default", [*CONSTANT_HAZARD, f"behaviour.churn.base_hazard={h}"], seed=1))
    c = r.cohorts[r.cohorts["channel"] == "all"].groupby("age")[["alive", "users"]].sum()
    ages = c.index.to_numpy()[:40]
    survival = (c["alive"] / c["users"]).to_numpy()[:40]
    expected = np.exp(-h * (ages + 1))
    members = c["users"].to_numpy()[:40]
    # Binomial standard error per age; allow 4 of them.
    se = np.sqrt(expected * (1 - expected) / members)
    assert np.all(np.abs(survival - expected) < 4 * se + 1e-3)
