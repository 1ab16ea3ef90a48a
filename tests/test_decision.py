"""The decision view of a comparison: an objective, constraints judged replicate by replicate
against the baseline, P(best and feasible), the recommendation and its one line."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import sim
from sim.analysis.decision import Question, assumption_effects, decide
from sim.plans import DecisionSpec, experiment_spec, load_experiment
from sim.schema import build

TINY = ("population.size=1500", "horizon=30")


def _horizon(values: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    """strategy -> metric -> one value per replicate, as a horizon frame."""
    rows = []
    for strategy, metrics in values.items():
        n = len(next(iter(metrics.values())))
        for r in range(n):
            rows.append({"strategy": strategy, "replicate": r, **{m: v[r] for m, v in metrics.items()}})
    return pd.DataFrame(rows)


def _question(text: str) -> Question:
    head, *rules = [p.strip() for p in text.split(";")]
    sense, metric = head.split()
    return Question.of(build(DecisionSpec, {sense: metric, "subject_to": rules}), [metric])


RNG = np.random.default_rng(5)
N = 40
BASE = 1000 + RNG.normal(0, 30, N)
FRAME = _horizon({
    "base": {"users_end": BASE, "profit": np.full(N, 0.0)},
    "more": {"users_end": BASE + 100 + RNG.normal(0, 5, N), "profit": RNG.normal(-500, 100, N)},  # more users, loses money
    "less": {"users_end": BASE - 50 + RNG.normal(0, 5, N), "profit": RNG.normal(200, 50, N)},  # fewer users, earns
})


def test_a_constraint_every_strategy_meets_leaves_the_argmax_of_the_objective():
    d = decide(FRAME, _question("maximise users_end; users_end >= 0"), "base")
    t = d.table.set_index("strategy")
    wide = FRAME.pivot(index="replicate", columns="strategy", values="users_end")[["base", "more", "less"]]
    expected = wide.idxmax(axis=1).value_counts(normalize=True).reindex(t.index, fill_value=0)
    assert t["p_best"].to_dict() == pytest.approx(expected.to_dict()) and (t["p_feasible"] == 1).all()
    assert d.recommended == "more" and d.line.startswith("recommended: more (best within the constraints in 100 % of 40 replicates")


def test_a_constraint_against_the_baseline_is_judged_replicate_by_replicate():
    d = decide(FRAME, _question("maximise users_end; profit >= baseline"), "base")
    t = d.table.set_index("strategy")
    assert t.loc["more", "p_feasible"] == 0 and t.loc["base", "p_feasible"] == 1 and t.loc["less", "p_feasible"] == 1
    assert d.recommended == "base" and d.line.startswith("recommended: keep base (best within the constraints in 100 % of 40 replicates")
    assert re.search(r"; more does better on users_end \+\d+(\.\d)? \[", d.line) and d.line.endswith("but meets the constraints in 0 % of replicates)")
    relaxed = decide(FRAME, _question("maximise users_end; profit >= baseline - 10000"), "base")
    assert relaxed.recommended == "more"


def test_an_impossible_constraint_leaves_nothing_feasible_and_says_so(tmp_path):
    d = decide(FRAME, _question("maximise users_end; profit >= baseline + 1000000"), "base")
    assert d.recommended is None and (d.table["p_best"] == 0).all() and (d.table["p_feasible"] == 0).all()
    assert d.line == ("recommended: none (no strategy, base included, meets profit >= baseline + 1000000 in any of 40 replicates)")
    data = json.loads(json.dumps(d.as_dict()))
    assert data["nothing_feasible"] is True and data["recommended"] is None and data["strategies"]["more"]["p_best"] == 0


def test_a_strict_constraint_against_the_baseline_excludes_the_baseline_itself():
    d = decide(FRAME, _question("maximise users_end; profit > baseline"), "base")
    t = d.table.set_index("strategy")
    assert t.loc["base", "p_feasible"] == 0 and d.recommended == "less"


def test_minimising_picks_the_smallest():
    d = decide(FRAME, _question("minimise users_end"), "base")
    assert d.recommended == "less" and d.table.set_index("strategy").loc["less", "p_best"] == 1


def test_equal_chances_are_broken_by_the_mean_objective():
    frame = _horizon({"base": {"users_end": [10, 10]}, "a": {"users_end": [30, 5]}, "b": {"users_end": [5, 20]}})
    d = decide(frame, _question("maximise users_end"), "base")
    t = d.table.set_index("strategy")
    assert t.loc["a", "p_best"] == t.loc["b", "p_best"] == 0.5 and d.recommended == "a"  # mean 17.5 against 12.5


def test_the_cost_of_an_extra_unit_is_in_money_with_its_sign_in_words():
    d = decide(FRAME, _question("maximise users_end; profit >= baseline - 10000"), "base")
    t = d.table.set_index("strategy")
    expected = (FRAME[FRAME.strategy == "more"]["profit"].mean() - 0.0) / (t.loc["more", "mean_difference"])
    assert t.loc["more", "money_per_unit"] == pytest.approx(expected) and expected < 0
    assert t.loc["more", "money_text"] == f"{abs(expected):.2f} RMB of profit less per extra user"
    assert t.loc["less", "money_text"] == "n/a"  # fewer users: no cost per extra user
    assert d.line.endswith(f"vs base; {abs(expected):.2f} RMB of profit less per extra user)")
    costs = _horizon({"base": {"users_end": [10, 10, 10], "costs": [100, 100, 100]}, "a": {"users_end": [20, 21, 22], "costs": [400, 430, 460]}})
    text = decide(costs, _question("maximise users_end; costs <= 1000"), "base").table.set_index("strategy").loc["a", "money_text"]
    assert text == "30.0 RMB of total costs more per extra user"  # the first money metric among the constraints
    unclear = _horizon({"base": {"users_end": [10, 10, 10], "profit": [0, 0, 0]}, "a": {"users_end": [30, 5, 12], "profit": [-50, -50, -50]}})
    row = decide(unclear, _question("maximise users_end"), "base").table.set_index("strategy").loc["a"]
    assert row["money_text"] == "n/a (no clear gain in users_end)" and np.isnan(row["money_per_unit"])  # +5 users [-27, +37]


def test_assumption_effects_show_which_assumption_flips_the_decision():
    """An assumption that decides the winner (the difference follows its draw and changes sign at
    its median) flips; one drawn independently of the outcome does not."""
    n = 40
    cpi = np.linspace(10, 50, n)
    noise = np.random.default_rng(0).permutation(n).astype(float)
    frame = _horizon({"base": {"users_end": np.full(n, 100.0)}, "ads": {"users_end": 100 + (30 - cpi) * 5}})
    frame["assumption:cpi"] = np.tile(cpi, 2)
    frame["assumption:other"] = np.tile(noise, 2)
    e = assumption_effects(frame, _question("maximise users_end"), "base", {"cpi": "assumption:cpi", "other": "assumption:other"})
    e = e.set_index("assumption")
    assert e.loc["cpi", "spearman"] == pytest.approx(-1.0) and e.loc["cpi", "flips"]
    assert e.loc["cpi", "recommended_low"] == "ads" and e.loc["cpi", "recommended_high"] == "base"
    assert e.loc["cpi", "mean_difference_low"] > 0 > e.loc["cpi", "mean_difference_high"]
    assert abs(e.loc["other", "spearman"]) < 0.35 and e.loc["cpi", "n_low"] == e.loc["cpi", "n_high"] == 20


def test_a_dominating_strategy_is_best_in_nearly_every_replicate():
    """Referral rewards bring users: the default beats the same platform without referral on users
    at the horizon in nearly every replicate, and the comparison recommends keeping it."""
    c = sim.compare({"no_referral": {"scenario": "default", "overrides": ["mechanisms.referral.enabled=false"]}, "default": "default"},
                    replicates=6, overrides=("population.size=3000", "horizon=60"), workers=2, decision={"maximise": "users_end"})
    t = c.decision.table.set_index("strategy")
    assert t.loc["default", "p_best"] >= 5 / 6 and c.decision.recommended == "default"
    assert c.decision.line.startswith("recommended: default (best on users_end in")


def test_decision_json_and_the_line_on_the_command_line(tmp_path, capsys):
    from sim.cli import main

    code = main(["compare", "scenario=default,referral_double", "replicates=3", "workers=1", "--no-plots", *TINY, f"out={tmp_path}",
                 "decision=maximise users_end; profit >= baseline - 100000", "world=fixed"])
    out, err = capsys.readouterr()
    assert code == 0, err
    path = Path(out.strip())  # stdout is the folder alone
    assert path.is_dir() and err.strip().splitlines()[-1].startswith("recommended: ")
    data = json.loads((path / "decision.json").read_text())
    assert data["objective"] == {"metric": "users_end", "sense": "maximise", "label": "users at the horizon"}
    assert data["constraints"] == ["profit >= baseline - 100000"] and set(data["strategies"]) == {"default", "referral_double"}
    assert data["line"] == err.strip().splitlines()[-1]
    spec = yaml.safe_load((path / "config.yaml").read_text())
    assert spec["decision"] == {"maximise": "users_end", "subject_to": ["profit >= baseline - 100000"]} and spec["world"] == "fixed"
    horizon = pd.read_parquet(path / "horizon.parquet")
    assert (horizon["world_seed"] == 0).all()


def test_an_experiment_with_assumptions_and_a_decision_reruns_exactly(tmp_path):
    c = sim.compare(["default", "referral_double"], replicates=2, overrides=TINY, workers=1, out=tmp_path, plots=False,
                    assumptions={"mechanisms.referral.reward_uplift": {"triangular": [2, 4, 6]}}, decision="maximise users_end")
    for name in ("horizon_noise.parquet", "uncertainty.parquet", "assumption_effects.parquet", "decision.json"):
        assert (c.path / name).is_file(), name
    page = html.unescape((c.path / "report.html").read_text())
    assert "<h2>The decision</h2>" in page and c.decision.line in page and "<h2>Assumptions</h2>" in page
    assert "triangular: low 2, mode 4, high 6" in page and c.world in page
    _, spec = load_experiment(str(c.path / "config.yaml"))
    again = sim.experiment.run_comparison(spec, "again", workers=1)
    pd.testing.assert_frame_equal(again.horizon, c.horizon)
    assert again.decision.line == c.decision.line


@pytest.mark.parametrize("args, message", [
    (["decision=maximize users_end"], "decision = 'maximize users_end': allowed is 'maximise METRIC; CONSTRAINT; ...'"),
    (["decision=maximise users_edn"], "decision.maximise = 'users_edn': allowed is one of"),
    (["decision=maximise users_end; proft >= baseline"], "unknown metric 'proft' (did you mean 'profit'?)"),
    (["decision=maximise users_end; profit => baseline"], "allowed is METRIC OP VALUE"),
    (["decision=maximise users_end; profit >= baseline + 1,000"], "allowed is METRIC OP VALUE"),
    (["decision=maximise users_end;"], "allowed is 'maximise METRIC"),
    (["world=fix"], "world = 'fix': allowed is one of varies, fixed (did you mean 'fixed'?)"),
])
def test_bad_decisions_are_one_line_and_exit_code_2(args, message, capsys):
    from sim.cli import main

    code = main(["compare", "scenario=default,referral_double", "replicates=2", *args])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err, err


def test_a_decision_in_an_experiment_file_names_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("strategies: [default, referral_double]\ndecision: {maximise: users_end, minimise: profit}\n")
    with pytest.raises(sim.ConfigError, match=f"{bad}: decision.maximise = 'users_end': give exactly one of maximise"):
        load_experiment(str(bad))
    with pytest.raises(sim.ConfigError, match="world_seed.*strategies of one comparison share their worlds"):
        experiment_spec({"strategies": {"a": {"scenario": "default", "overrides": ["world_seed=3"]}, "b": "default"}})


def test_the_growth_question_ships_with_a_decision_and_assumptions():
    _, spec = load_experiment("growth_question")
    assert spec.decision.objective == "users_end" and [c.text for c in spec.decision.constraints] == ["profit_with_terminal >= baseline"]
    assert 3 <= len(spec.assumptions) <= 5 and spec.baseline_name == "default"
    configs = sim.experiment.strategy_configs(spec)
    from sim.assumptions import check_assumptions
    from sim.schema import to_plain

    check_assumptions({k: to_plain(v) for k, v in configs.items()}, spec.assumptions)
    assert all(cfg.horizon == 365 for cfg in configs.values())
