"""Optimisation (``sim optimise``): a seeded Optuna study over an experiment file's search space, every
trial at the same seeds, the best re-evaluated at fresh seeds shared with the baseline, a resumable
SQLite study, and a scenario file per candidate that reproduces its figures."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

import sim
from sim.analysis.optimisation import (BASELINE, STUDY_FILE, best_rows, check_search, crowding, margin, optimise, pareto_ranks,
                                       suggest_point)
from sim.cli import main
from sim.experiment import run_points
from sim.plans import available_experiments, experiment_spec, load_experiment, replicate_seeds
from sim.schema import ConfigError

PUSH = "mechanisms.push.per_day"
RELEVANCE = "mechanisms.push.relevance"
# A few thousand people, a third of them users from day 0, and push notifications at 3 a day: more
# pushes bring more visits and orders until fatigue makes people opt out, so orders peak inside the
# range (near one a day), and the scenario as it is (3 a day) is not there.
SMALL = ["population.size=2000", "horizon=60", "adoption.seed_fraction=0.3", "mechanisms.push.enabled=true", f"{PUSH}=3"]
TWO = {"seed": 0, "overrides": SMALL,
       "optimisation": {"params": {PUSH: [0, 4], RELEVANCE: {"choices": [0.2, 0.5]}},
                        "objectives": [{"metric": "orders", "direction": "maximise"}, {"metric": "profit", "direction": "maximise"}],
                        "constraints": ["profit >= baseline - 200"], "trials": 10, "replicates": 2, "check_replicates": 3,
                        "candidates": 4, "startup_trials": 4}}
# The study several tests read runs once, on one xdist worker (``--dist loadgroup``).
study_group = pytest.mark.xdist_group("optimise_study")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return optimise(TWO, out=tmp_path_factory.mktemp("optimise"), workers=1)


# ------------------------------------------------------------------------------ the search finds the optimum
def test_on_one_parameter_the_optimiser_finds_the_peak_a_brute_force_grid_finds():
    """Orders against pushes a day peak inside [0, 4]. A grid of 9 values at the search's own seeds
    (common random numbers: the same function the optimiser sees) resolves the peak to its step
    (0.5); the optimiser, with 14 trials, must do at least as well as every grid point but the best,
    within one step of the grid's best, and the strategy it recommends after re-evaluation must lie
    where the grid is in the upper half of its range, not at an end."""
    grid = np.linspace(0, 4, 9)
    seeds = replicate_seeds(0, 3)
    orders = run_points(sim.compose("default", SMALL), [{PUSH: float(x)} for x in grid], seeds, workers=1).horizon
    curve = orders.groupby("point")["orders"].mean().to_numpy()
    assert 0 < curve.argmax() < len(grid) - 1  # the optimum is interior
    data = {"seed": 0, "overrides": SMALL, "optimisation": {"params": {PUSH: [0, 4]}, "objectives": [{"metric": "orders", "direction": "maximise"}],
                                                            "trials": 14, "replicates": 3, "check_replicates": 4, "candidates": 3, "startup_trials": 5}}
    result = optimise(data, out=None, workers=1)
    assert result.search_seeds == seeds
    best = result.trials.loc[result.trials["orders"].idxmax()]
    assert best["orders"] >= np.sort(curve)[-2], (best["orders"], curve)
    assert abs(best[PUSH] - grid[curve.argmax()]) <= grid[1] - grid[0], (best[PUSH], grid[curve.argmax()])
    chosen = result.front.iloc[0]
    nearest = curve[np.abs(grid - chosen[PUSH]).argmin()]
    assert chosen["candidate"] != BASELINE and nearest >= (curve.max() + curve.min()) / 2, (chosen[PUSH], curve)
    # the first trial is the scenario as it is (3 a day), and the search beats it
    assert result.trials[PUSH].iloc[0] == 3 and best["orders"] > result.trials["orders"].iloc[0]


# ------------------------------------------------------------------------------ the front
@study_group
def test_the_front_is_the_non_dominated_feasible_set_of_the_re_evaluated_candidates(study):
    """Recomputed from the re-evaluation's runs (horizon.parquet): each candidate's means, its
    constraint against the baseline at the same seeds, and dominance among the feasible ones."""
    horizon = pd.read_parquet(study.path / "horizon.parquet")
    means = horizon.groupby("strategy")[["orders", "profit"]].mean()
    feasible = means["profit"] >= means.loc[BASELINE, "profit"] - 200
    assert len(means) == len(study.candidates) >= 2
    front = set(study.front["candidate"])
    assert front
    for name in means.index:
        others = means[feasible & (means.index != name)]
        dominated = ((others >= means.loc[name]).all(axis=1) & (others > means.loc[name]).any(axis=1)).any()
        assert (name in front) == bool(feasible[name] and not dominated), name
    f = pd.read_parquet(study.path / "front.parquet")
    assert set(f["candidate"]) == front and f["feasible"].all() and (f["margin: profit >= baseline - 200"] >= 0).all()
    values = f[["orders", "profit"]].to_numpy()
    assert (pareto_ranks(values) == 0).all()  # no point of the front dominates another
    assert (f["orders_low"] <= f["orders"]).all() and (f["orders"] <= f["orders_high"]).all()
    assert {PUSH, RELEVANCE} <= set(f.columns)  # a column per parameter, named by its key


@study_group
def test_infeasible_trials_are_marked_and_never_candidates_when_feasible_ones_exist(study):
    trials = pd.read_parquet(study.path / "trials.parquet")
    assert len(trials) == 10 and set(trials[RELEVANCE]) <= {0.2, 0.5}
    margins = trials["profit"] - (study.search_baseline["profit"] - 200)
    np.testing.assert_allclose(trials["margin: profit >= baseline - 200"], margins)
    assert (trials["feasible"] == (margins >= 0)).all()
    assert trials["feasible"].any()
    picked = study.candidates[study.candidates["candidate"] != BASELINE]["trial"]
    assert trials.set_index("trial").loc[picked, "feasible"].all()


@study_group
def test_points_that_cannot_be_told_apart_are_said_to_be_so(study):
    """A candidate is indistinguishable from another when every objective's paired difference over
    the fresh seeds has an interval that includes 0; the relation is symmetric and named in the text."""
    c = study.candidates.set_index("candidate")
    for a, row in c.iterrows():
        for b in filter(None, row["indistinguishable_from"].split(",")):
            assert a in c.loc[b, "indistinguishable_from"].split(",")
    said = []
    for line in study.distinguish_lines():
        head, rest = line.split(" is not distinguishable from ")
        said += [frozenset((head, other)) for other in rest.split(" (")[0].split(", ")]
    assert len(said) == len(set(said))  # each pair once
    front = set(study.front["candidate"])
    expected = {frozenset((a, b)) for a in front for b in c.loc[a, "indistinguishable_from"].split(",") if b}
    assert set(said) == expected


# ------------------------------------------------------------------------------ the folder
@study_group
def test_the_study_folder_holds_the_study_the_results_and_a_scenario_per_candidate(study):
    p = study.path
    for name in (STUDY_FILE, "experiment.yaml", "trials.parquet", "candidates.parquet", "front.parquet", "horizon.parquet", "summary.json",
                 "report.html", "plots/front.png", "plots/history.png", "plots/importance.png"):
        assert (p / name).is_file(), name
    assert not [q for q in p.iterdir() if q.name.startswith(".tmp-")]
    for name in study.candidates["scenario"]:
        assert (p / "scenarios" / "strategy" / f"{name}.yaml").is_file()
    summary = json.loads((p / "summary.json").read_text())
    assert summary["trials"] == 10 and [f["candidate"] for f in summary["front"]] == list(study.front["candidate"])
    assert summary["reproduce"] == study.reproduce_command()
    page = (p / "report.html").read_text()
    assert "<h2>The front</h2>" in page and study.reproduce_command() in page and f"sim optimise resume={p}" in page
    for name in study.front["candidate"]:
        assert f"<td><b>{name}</b></td>" in page
    assert "<img src='plots/front.png'" in page


@study_group
def test_a_candidates_scenario_file_reproduces_its_figures(study, monkeypatch):
    """sim compare of the baseline's and a front point's scenario files, at the fresh seeds, gives
    the report's means and paired differences exactly."""
    monkeypatch.setenv("SIM_SCENARIO_PATH", str(study.path / "scenarios"))
    row = study.front[study.front["candidate"] != BASELINE]
    row = (row if len(row) else study.candidates[study.candidates["candidate"] != BASELINE]).iloc[0]
    again = sim.compare([study.scenario_name(BASELINE), row["scenario"]], replicates=len(study.check_seeds), seed=study.check_seed,
                        metrics=["orders", "profit"], workers=1)
    table = again.table.set_index(["strategy", "metric"])
    for m in ("orders", "profit"):
        assert table.loc[(row["scenario"], m), "mean"] == row[m]
        assert table.loc[(row["scenario"], m), "ci_low"] == pytest.approx(row[f"{m}_low"], rel=1e-12)
        d = again.differences.set_index("metric").loc[m]
        assert d["mean_difference"] == pytest.approx(row[f"{m}_diff"], rel=1e-12, abs=1e-9)


# ------------------------------------------------------------------------------ the study: resume and seeds
@study_group
def test_resume_continues_the_same_study_and_the_same_seed_gives_the_same_study(study, tmp_path):
    """Resuming a finished study with a larger size adds trials and keeps the earlier ones; a new
    study with the same seed (in memory this time) repeats the first one exactly; another seed does not."""
    folder = tmp_path / study.path.name
    shutil.copytree(study.path, folder)
    grown = optimise(TWO, out=tmp_path, resume=True, workers=1, trials=13, plots=False)
    assert grown.path == folder and len(grown.trials) == 13
    pd.testing.assert_frame_equal(grown.trials.iloc[:10].reset_index(drop=True), study.trials)
    assert len(pd.read_parquet(folder / "trials.parquet")) == 13
    quick = {"check_replicates": 2, "candidates": 2}  # the search alone is compared: a short re-evaluation
    same = optimise({**TWO, "optimisation": {**TWO["optimisation"], **quick}}, out=None, workers=1)
    pd.testing.assert_frame_equal(same.trials, study.trials)
    assert list(same.candidates["trial"]) == list(study.candidates["trial"])[:3]
    other = optimise({**TWO, "seed": 1, "optimisation": {**TWO["optimisation"], **quick, "trials": 3}}, out=None, workers=1)
    assert not np.allclose(other.trials[PUSH], study.trials[PUSH].iloc[:3])


@study_group
def test_a_resumed_study_refuses_a_different_plan_in_one_line(study, tmp_path):
    folder = tmp_path / study.path.name
    shutil.copytree(study.path, folder)
    changed = {**TWO, "optimisation": {**TWO["optimisation"], "replicates": 3}}
    with pytest.raises(ConfigError, match=r"the study was made with optimisation.replicates = 2, the experiment now has 3"):
        optimise(changed, out=tmp_path, resume=folder, workers=1)


def test_an_interrupted_batch_leaves_its_trials_failed_and_the_study_resumable(tmp_path, monkeypatch):
    """Ctrl+C (or SIGTERM) in the middle of a batch: the batch's trials are marked failed (so they
    do not count towards the study's size), the folder keeps the study, and resume finishes it."""
    import sim.analysis.optimisation as optimisation

    data = {**TWO, "optimisation": {**TWO["optimisation"], "trials": 4, "check_replicates": 2, "candidates": 2}}
    real, calls = optimisation.run_points, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # the baseline, one batch, then Ctrl+C in the second batch
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(optimisation, "run_points", interrupted)
    with pytest.raises(KeyboardInterrupt) as info:
        optimise(data, out=tmp_path, workers=1)
    folder = info.value.study_folder
    assert (folder / STUDY_FILE).is_file() and not (folder / "summary.json").exists()
    monkeypatch.setattr(optimisation, "run_points", real)
    done = optimise(data, out=tmp_path, resume=True, workers=1, plots=False)
    assert done.path == folder and len(done.trials) == 4 and done.failed == 2
    assert list(done.trials["trial"]) == [0, 1, 4, 5]


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("change, message", [
    ({"params": {"mechanisms.push.per_dya": [0, 4]}}, r"optimisation.params.mechanisms.push.per_dya: unknown key \(did you mean 'per_day'\?\)"),
    ({"params": {PUSH: [0, 80]}}, r"optimisation.params: mechanisms.push.per_day = 80(\.0)?: allowed is a number in \[0, 50\]"),
    ({"params": {RELEVANCE: {"choices": [0.5, 2]}}}, r"optimisation.params.mechanisms.push.relevance: mechanisms.push.relevance = 2(\.0)?: allowed is a number in \[0, 1\]"),
    ({"objectives": [{"metric": "ordres", "direction": "maximise"}]}, r"objectives\[0\].metric = 'ordres': allowed is one of .*did you mean 'orders'"),
    ({"constraints": ["profit >= baseline", "profit < baseline - 10"]}, r"contradictory: 'profit >= baseline' and 'profit < baseline - 10' cannot both hold"),
    ({"constraints": ["profti >= 0"]}, r"unknown metric 'profti'"),
    ({"params": {PUSH: [0, 4, 8]}}, r"optimisation.params.mechanisms.push.per_day = \[0, 4, 8\]: allowed is \[low, high\]"),
])
def test_bad_input_is_one_line_before_any_run_or_folder(tmp_path, monkeypatch, change, message):
    import sim.analysis.optimisation as optimisation

    monkeypatch.setattr(optimisation, "run_points", lambda *a, **k: pytest.fail("ran before refusing"))
    data = {**TWO, "optimisation": {**TWO["optimisation"], **change}}
    with pytest.raises(ConfigError, match=message) as info:
        optimise(data, out=tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("command", ["optimise", "optimize"])
def test_the_command_line_refuses_bad_input_with_exit_2(tmp_path, capsys, command):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**TWO, "optimisation": {**TWO["optimisation"], "params": {"mechanisms.push.per_dya": [0, 4]}}}))
    assert main([command, f"experiment={path}", f"out={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: optimisation.params.mechanisms.push.per_dya: unknown key") and "\n" not in err
    assert main([command, "resume=true", f"experiment={path}", f"out={tmp_path / 'out'}"]) == 2  # bad input wins over a missing study
    assert main([command, f"resume={tmp_path}"]) == 2
    assert "no study.db there" in capsys.readouterr().err


# ------------------------------------------------------------------------------ the pieces
def test_non_dominated_sorting_and_crowding_keep_the_front_and_its_extremes():
    """Points on a quarter circle are mutually non-dominated; points inside it are dominated."""
    angle = np.linspace(0, np.pi / 2, 7)
    front = np.column_stack([np.cos(angle), np.sin(angle)])
    inside = front[1:-1] * 0.5
    values = np.vstack([inside, front])
    ranks = pareto_ranks(values)
    assert (ranks[len(inside):] == 0).all() and (ranks[:len(inside)] == 1).all()
    chosen = best_rows(values, 3)
    assert all(r >= len(inside) for r in chosen)  # only front points
    assert {len(inside), len(values) - 1} <= set(chosen)  # its two extremes are kept
    assert np.isinf(crowding(front)[[0, -1]]).all()
    assert best_rows(values, 20) == sorted(best_rows(values, 20), key=lambda r: ranks[r])  # rank by rank


def test_a_whole_number_key_is_searched_in_whole_numbers_and_choices_as_given():
    import optuna

    base = sim.compose("default", ["mechanisms.group_buy.enabled=true"])
    spec = experiment_spec({"optimisation": {"params": {"mechanisms.group_buy.team_size": [2, 6], "mechanisms.recommendations.strategy":
                                                        {"choices": ["popular", "personalised"]}},
                                             "objectives": [{"metric": "users_end", "direction": "maximise"}]}})
    params = spec.optimisation.params
    kinds = check_search(base, params)
    assert kinds == {"mechanisms.group_buy.team_size": int, "mechanisms.recommendations.strategy": None}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        point = suggest_point(study.ask(), params, kinds)
        assert isinstance(point["mechanisms.group_buy.team_size"], int) and 2 <= point["mechanisms.group_buy.team_size"] <= 6
        assert point["mechanisms.recommendations.strategy"] in ("popular", "personalised")


def test_a_constraint_margin_is_how_far_inside_it_a_value_is():
    from sim.plans import parse_constraint

    assert margin(parse_constraint("profit >= baseline - 100", "c"), 50.0, 120.0) == 30.0
    assert margin(parse_constraint("cac_blended <= 60", "c"), 75.0, 0.0) == -15.0


def test_the_shipped_optimisation_experiment_is_valid():
    """Every shipped experiment with an optimisation section composes and its space is allowed."""
    from sim.analysis.sensitivity import base_config

    shipped = [n for n in available_experiments() if load_experiment(n)[1].optimisation is not None]
    assert shipped
    for name in shipped:
        _, spec = load_experiment(name)
        check_search(base_config(spec, spec.optimisation.scenario), spec.optimisation.params)
