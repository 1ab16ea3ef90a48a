"""How the default engagement magnitudes were chosen: a search over the visit and churn settings of
the default scenario for public figures of app engagement (DESIGN section 7).

Targets (a year of the default scenario at 20,000 people, seed 0):
- classic day-N retention of new users: day 1 22 % (Adjust 2022: all apps 25 %, e-commerce 19-20 %),
  day 7 11 %, day 30 6 % (Adjust 2022);
- stickiness DAU/MAU at the end of the year 0.20 (Sequoia: e-commerce about 0.10 average, 0.15 good,
  0.22 great);
- a dormant base: 35 % of the users still on the platform have not visited for two weeks or more
  (real platforms carry a large base of lapsed but reachable users, the target of win-back);
- the default scenario still takes about 40 % of its market in a year (weakly weighted).

Run: `python tools/engagement_fit.py 100` (about five minutes on two cores); prints each trial and the
best. The shipped defaults are the best trial rounded (sim/config.py: VisitConfig, ChurnConfig, the
segments' visit rates and population.visit_cv). Nothing in the package imports this file.
"""

from __future__ import annotations

import math
import sys

import optuna

import sim

PEOPLE = 20_000
TARGETS = dict(d1=0.22, d7=0.11, d30=0.06, dau_mau=0.20, dormant=0.35, acquired=0.42)
WEIGHTS = dict(d1=2, d7=0.5, d30=2, dau_mau=2, dormant=0.5, acquired=0.3)
#: segment visit rates before the fit; the search shifts all of them by one log-odds amount
VISIT_RATES = {"deal_seeker": 0.30, "social_sharer": 0.35, "content_lover": 0.42, "loyal_value": 0.40}


def logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def overrides(p: dict) -> list[str]:
    ov = [f"population.size={PEOPLE}", "horizon=365", "behaviour.churn.dormant_ratio=0.25",
          f"behaviour.churn.base_hazard={p['base_hazard']}", f"behaviour.churn.tenure_decay={p['tenure_decay']}",
          f"population.visit_cv={p['visit_cv']}", f"behaviour.visit.dormant_odds={p['dormant_odds']}",
          f"behaviour.visit.satisfaction_weight={p['satisfaction_weight']}", f"behaviour.visit.habit_weight={p['habit_weight']}",
          f"behaviour.visit.novelty_odds={p['novelty_odds']}", f"behaviour.visit.novelty_days={p['novelty_days']}"]
    for name, rate in VISIT_RATES.items():
        x = logistic(math.log(rate / (1 - rate)) + p["visit_shift"])
        ov.append(f"population.segments.{name}.visit_rate={x:.4f}")
    return ov


def measure(p: dict, seed: int = 0) -> dict[str, float]:
    r = sim.run("default", overrides(p), seed=seed)
    last, s = r.daily.iloc[-1], r.summary
    alive = last["n_active"] + last["n_loyal"] + last["n_dormant"]
    return dict(d1=s["retention_d1"], d7=s["retention_d7"], d30=s["retention_d30"], dau_mau=s["dau_mau_end"],
                dormant=last["n_dormant"] / max(alive, 1), acquired=s["users_total"] / PEOPLE)


def loss(m: dict[str, float]) -> float:
    return sum(WEIGHTS[k] * math.log(max(m[k], 1e-4) / TARGETS[k]) ** 2 for k in TARGETS)


def objective(trial: optuna.Trial) -> float:
    p = dict(base_hazard=trial.suggest_float("base_hazard", 0.1, 1.5, log=True),
             tenure_decay=trial.suggest_float("tenure_decay", 0.1, 1.5),
             visit_cv=trial.suggest_float("visit_cv", 0.3, 2.5),
             dormant_odds=trial.suggest_float("dormant_odds", 0.05, 0.6, log=True),
             satisfaction_weight=trial.suggest_float("satisfaction_weight", 0.3, 3.0),
             habit_weight=trial.suggest_float("habit_weight", 0.0, 0.3),
             visit_shift=trial.suggest_float("visit_shift", -3.0, 0.5),
             novelty_odds=trial.suggest_float("novelty_odds", 0.0, 60.0),
             novelty_days=trial.suggest_float("novelty_days", 1.0, 30.0, log=True))
    m = measure(p)
    trial.set_user_attr("measured", m)
    return loss(m)


def main(trials: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1, n_startup_trials=15))
    for i in range(trials):
        study.optimize(objective, n_trials=1)
        t = study.trials[-1]
        print(i, round(t.value, 3), {k: round(v, 3) for k, v in t.params.items()},
              {k: round(float(v), 3) for k, v in t.user_attrs["measured"].items()}, flush=True)
    best = study.best_trial
    print("best", round(best.value, 3), best.params, best.user_attrs["measured"])


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
