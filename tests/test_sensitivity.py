"""Sensitivity analysis (``sim sensitivity``): SALib's Morris screening and Sobol indices over a
parameter space declared in an experiment file, run at common random numbers."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

import sim
from sim.analysis.sensitivity import analyse, problem, sample
from sim.plans import ParameterRange, available_experiments, experiment_spec, load_experiment
from sim.experiment import run_points
from sim.schema import ConfigError

TINY = ["population.size=1500", "horizon=30"]
BUDGET = "mechanisms.paid_acquisition.budget_per_1000"
UNUSED = "mechanisms.group_buy.discount"  # group buying is off in the default scenario
CHURN = "behaviour.churn.base_hazard"


def experiment(tmp_path, **section):
    data = {"description": "sensitivity test", "seed": 3, "overrides": TINY,
            "sensitivity": {"scenario": "default", "metrics": ["users_total", "profit"],
                            "params": {BUDGET: [0, 1300], UNUSED: [0.1, 0.6], CHURN: [0.3, 0.6]}, **section}}
    path = tmp_path / "sens.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def morris(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("morris")
    return sim.sensitivity(experiment(tmp, method="morris", samples=4), out=tmp / "out", workers=1)


def test_morris_ranks_the_ad_budget_first_on_users_acquired(morris):
    assert morris.ranking("users_total")[0] == BUDGET
    assert morris.ranking("profit")[0] == BUDGET


def test_a_parameter_that_does_not_enter_the_model_has_no_elementary_effect(morris):
    """Common random numbers: moving a disabled mechanism's setting changes nothing, exactly."""
    t = morris.indices.set_index(["metric", "parameter"])
    for metric in ("users_total", "profit"):
        assert t.loc[(metric, UNUSED), "mu_star"] == 0.0
        assert t.loc[(metric, UNUSED), "sigma"] == 0.0
        assert t.loc[(metric, BUDGET), "mu_star"] > 0
        assert t.loc[(metric, UNUSED), "rank"] == 3


def test_morris_runs_trajectories_times_parameters_plus_one_points(morris):
    assert len(morris.points) == 4 * (3 + 1)
    assert len(morris.horizon) == len(morris.points)
    assert morris.points[BUDGET].between(0, 1300).all() and morris.points[UNUSED].between(0.1, 0.6).all()
    # one-at-a-time: consecutive points of a trajectory differ in exactly one parameter
    x = morris.x.reshape(4, 4, 3)
    assert ((np.diff(x, axis=1) != 0).sum(axis=2) == 1).all()


def test_sensitivity_folder_holds_the_table_the_json_and_the_plot(morris):
    p = morris.path
    assert p is not None and p.is_dir() and not p.name.startswith(".")
    for name in ("indices.csv", "indices.parquet", "indices.json", "points.parquet", "horizon.parquet",
                 "experiment.yaml", "config.yaml", "ranking.txt", "plots/morris.png"):
        assert (p / name).is_file(), name
    pd.testing.assert_frame_equal(pd.read_parquet(p / "indices.parquet"), morris.indices)
    js = json.loads((p / "indices.json").read_text())
    assert js["method"] == "morris" and js["runs"] == 16
    assert js["indices"]["users_total"][0]["parameter"] == BUDGET
    assert (p / "plots/morris.png").stat().st_size > 10_000
    # the folder's experiment file runs the same analysis again
    assert experiment_spec(yaml.safe_load((p / "experiment.yaml").read_text())).sensitivity == morris.spec.sensitivity


def test_the_report_ranks_the_parameters_of_every_metric_with_intervals(morris):
    """report.html: a table per metric, most influential first, mu* with its interval, and the plot."""
    page = (morris.path / "report.html").read_text()
    assert "growth-sim sensitivity" in page and "<img src='plots/morris.png'" in page
    for metric in ("users acquired", "profit"):
        assert f"<h3>{metric} " in page
    block = page[page.index("<h3>users acquired "):page.index("<h3>profit ")]
    rows = block.split("<tr>")[2:]  # after the header
    assert len(rows) == 3 and f"<td>1</td><td>{BUDGET}</td>" in rows[0]
    unused = next(r for r in rows if UNUSED in r)
    assert "<td>0 <span class='ci'>[0, 0]</span></td>" in unused  # no effect, exactly


def test_a_second_analysis_never_overwrites_the_first(morris, tmp_path):
    again = sim.sensitivity(morris.spec, out=morris.path.parent, workers=1, plots=False)
    assert again.path != morris.path and morris.path.is_dir()
    pd.testing.assert_frame_equal(again.indices, morris.indices)  # same seed, same sample, same runs: same indices


def test_sobol_ranks_the_budget_first_and_gives_the_unused_parameter_no_variance(tmp_path):
    s = sim.sensitivity(experiment(tmp_path, method="sobol", samples=4, params={BUDGET: [0, 1300], UNUSED: [0.1, 0.6]},
                                   metrics=["users_total"], resamples=100), out=tmp_path / "out", workers=1)
    t = s.indices.set_index("parameter")
    assert len(s.points) == 4 * (2 + 2)
    assert t.loc[BUDGET, "ST"] > 0.1 and t.loc[BUDGET, "rank"] == 1  # four base samples: a rough estimate, but not zero
    assert t.loc[UNUSED, "ST"] == 0.0 and t.loc[UNUSED, "S1"] == 0.0
    assert (s.path / "plots/sobol.png").is_file()


def test_sobol_indices_of_a_known_function_match_their_analytic_values():
    """y = x1 + 2 x2 on the unit square (x3 unused): S1 = ST = 1/5, 4/5, 0."""
    prob = problem({"a": ParameterRange(0, 1), "b": ParameterRange(0, 1), "c": ParameterRange(0, 1)})
    x = sample("sobol", prob, 1024, seed=1)
    t = analyse("sobol", prob, x, x[:, 0] + 2 * x[:, 1], resamples=100, seed=1).set_index("parameter")
    for name, share in (("a", 0.2), ("b", 0.8), ("c", 0.0)):
        assert t.loc[name, "S1"] == pytest.approx(share, abs=0.05)
        assert t.loc[name, "ST"] == pytest.approx(share, abs=0.05)


def test_a_logarithmic_range_is_sampled_evenly_in_the_logarithm():
    prob = problem({"a": ParameterRange(1, 1000, log=True), "b": ParameterRange(0, 1)})
    assert prob["bounds"][0] == pytest.approx([0, 3])
    x = sample("morris", prob, 20, levels=4, seed=0)
    from sim.analysis.sensitivity import to_values

    values = {p["a"] for p in to_values(x, {"a": ParameterRange(1, 1000, log=True), "b": ParameterRange(0, 1)}, {"a": float, "b": float})}
    assert values <= {1.0, 10.0, 100.0, 1000.0}


def test_point_results_do_not_depend_on_the_number_of_workers():
    base = sim.compose("default", ["population.size=1500", "horizon=20"])
    points = [{BUDGET: b} for b in (0.0, 300.0, 1000.0)]
    one = run_points(base, points, [1, 2], workers=1).horizon
    two = run_points(base, points, [1, 2], workers=2).horizon
    pd.testing.assert_frame_equal(one, two)


@pytest.mark.parametrize("params, message", [
    ({"mechanisms.paid_acquisiton.daily_budget": [0, 1], CHURN: [0.3, 0.6]}, "sensitivity.params.mechanisms.paid_acquisiton: unknown key (did you mean 'paid_acquisition'?)"),
    ({BUDGET: [0, 1], CHURN: [0.3, 30.0]}, "behaviour.churn.base_hazard = 30.0: allowed is a number in [0, 20]"),
    ({BUDGET: [10, 1], CHURN: [0.3, 0.6]}, ".high = 1.0: must exceed low (10.0)"),
    ({BUDGET: [0, 1], "seed": [0, 9]}, "the seed is not a parameter"),
    ({BUDGET: [0, 1], "graph.kind": [0, 1]}, "allowed are numeric settings"),
    ({BUDGET: [0, 1, 2], CHURN: [0.3, 0.6]}, "allowed is [low, high]"),
])
def test_a_bad_parameter_space_is_one_line_before_any_run(tmp_path, params, message):
    with pytest.raises(ConfigError) as err:
        sim.sensitivity(experiment(tmp_path, params=params), out=None, workers=1)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_command_line_prints_the_ranking_and_the_folder(tmp_path):
    path = experiment(tmp_path, method="morris", samples=2, params={BUDGET: [0, 1300], UNUSED: [0.1, 0.6]}, metrics=["users_total"])
    done = subprocess.run([sys.executable, "-m", "sim.cli", "sensitivity", f"experiment={path}", f"out={tmp_path / 'out'}",
                           "workers=1", "horizon=20"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "out" / done.stdout.strip().split("/")[-1]
    assert folder.is_dir() and (folder / "indices.csv").is_file()
    lines = done.stderr.splitlines()
    first = next(k for k, line in enumerate(lines) if line.startswith("users acquired"))
    assert BUDGET in lines[first + 1] and lines[first + 1].strip().startswith("1.")
    assert yaml.safe_load((folder / "config.yaml").read_text())["horizon"] == 20  # key=value reached the base config


@pytest.mark.parametrize("args, message", [
    (["method=sobl"], "sensitivity.method = 'sobl': allowed is one of morris, sobol (did you mean 'sobol'?)"),
    (["samples=many"], "samples = 'many': allowed is a whole number"),
    (["method=sobol", "samples=6"], "sensitivity.samples = 6: sobol needs a power of two"),
])
def test_bad_sensitivity_input_on_the_command_line_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    from sim.cli import main

    code = main(["sensitivity", f"experiment={experiment(tmp_path)}", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_an_experiment_without_a_sensitivity_section_says_so(capsys):
    from sim.cli import main

    assert main(["sensitivity", "experiment=paid_budget"]) == 2
    assert "no sensitivity section" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(n for n in available_experiments() if load_experiment(n)[1].sensitivity is not None))
def test_every_shipped_sensitivity_experiment_has_a_valid_parameter_space(name):
    from sim.analysis.sensitivity import base_config
    from sim.experiment import check_space

    _, spec = load_experiment(name)
    kinds = check_space(base_config(spec, spec.sensitivity.scenario), spec.sensitivity.params, "sensitivity")
    assert len(kinds) == len(spec.sensitivity.params) >= 2


def test_a_sensitivity_experiment_ships():
    assert "growth_drivers" in available_experiments()


def test_through_a_hydra_launcher_the_indices_are_those_of_the_local_pool(tmp_path, monkeypatch):
    """The same points and seeds as jobs of a Hydra multirun (the launcher sweeps use; `basic` here)."""
    monkeypatch.chdir(tmp_path)  # the multirun folder goes under results/sweeps
    path = experiment(tmp_path, method="morris", samples=2, params={BUDGET: [0, 1300], UNUSED: [0.1, 0.6]}, metrics=["users_total"])
    local = sim.sensitivity(path, out=None, workers=1)
    hydra = sim.sensitivity(path, out=None, launcher=["hydra/launcher=basic"])
    pd.testing.assert_frame_equal(hydra.horizon[local.horizon.columns].reset_index(drop=True), local.horizon, check_dtype=False)
    pd.testing.assert_frame_equal(hydra.indices, local.indices)
    assert len(list((tmp_path / "results" / "sweeps").glob("*_points/runs/*"))) == len(local.points)
