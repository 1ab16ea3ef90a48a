"""Calibration (``sim calibrate``): fit settings to target series with a seeded Optuna TPE sampler."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

import sim
from sim.analysis.calibration import calibrate, series_loss
from sim.plans import available_experiments, load_experiment
from sim.experiment import run_points
from sim.schema import ConfigError

TINY = ["population.size=1500", "horizon=30"]
BUDGET = "mechanisms.paid_acquisition.budget_per_1000"
CHURN = "behaviour.churn.base_hazard"
TRUTH = {BUDGET: 800.0, CHURN: 0.6}
BOUNDS = {BUDGET: [1, 2000], CHURN: [0.3, 2.5]}


@pytest.fixture(scope="module")
def identified(tmp_path_factory):
    """A target made by the model itself at known settings (at seeds the calibration never uses),
    then a calibration that starts from the default scenario's values (5 RMB a day per 1,000 people, the
    default churn hazard)."""
    tmp = tmp_path_factory.mktemp("identify")
    runs = run_points(sim.compose("default", TINY), [TRUTH], [901, 902, 903], workers=1, series=["cumulative_users", "retention"])
    cumulative = np.mean([runs.series[(0, r)]["cumulative_users"] for r in range(3)], axis=0)
    retention = np.nanmean([runs.series[(0, r)]["retention"] for r in range(3)], axis=0)
    days, ages = np.arange(0, 30, 3), np.arange(1, 15)
    (tmp / "targets").mkdir()
    pd.DataFrame({"day": days, "value": cumulative[days]}).to_csv(tmp / "targets" / "adoption.csv", index=False)
    data = {"description": "identifiability", "seed": 0, "overrides": TINY,
            "calibration": {"params": BOUNDS, "trials": 20, "startup_trials": 8, "replicates": 2, "check_replicates": 3, "batch": 2,
                            "targets": [{"metric": "cumulative_users", "file": "targets/adoption.csv"},
                                        {"metric": "retention", "values": {int(a): float(retention[a]) for a in ages}}]}}
    path = tmp / "identify.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return calibrate(path, out=tmp / "out", workers=2)


def test_calibration_recovers_the_settings_that_made_the_target(identified):
    """Identifiability: each fitted value lies within 15 % of its searched range of the truth."""
    for key, truth in TRUTH.items():
        low, high = BOUNDS[key]
        assert abs(identified.best[key] - truth) < 0.15 * (high - low), (key, identified.best[key], truth)


def test_the_first_trial_is_the_base_scenario_and_the_search_improves_on_it(identified):
    first = identified.trials.iloc[0]
    default = sim.compose("default", TINY)
    assert first[BUDGET] == default.mechanisms["paid_acquisition"].budget_per_1000 == 5
    assert first[CHURN] == default.behaviour.churn.base_hazard
    assert identified.best_loss < first["loss"] / 5
    assert identified.trials["best_loss"].is_monotonic_decreasing
    assert identified.check_loss < first["loss"]  # the fit holds at seeds the search never saw


def test_calibration_folder_has_a_runnable_scenario_trials_and_plots(identified, monkeypatch):
    p = identified.path
    for name in ("experiment.yaml", "config.yaml", "overrides.txt", "trials.csv", "trials.parquet", "fit.csv", "summary.json",
                 "plots/fit.png", "plots/loss.png", "scenarios/strategy/identify_calibrated.yaml"):
        assert (p / name).is_file(), name
    assert len(pd.read_csv(p / "trials.csv")) == 20
    summary = json.loads((p / "summary.json").read_text())
    assert summary["best"] == identified.best
    # the scenario file composes to the fitted configuration
    monkeypatch.setenv("SIM_SCENARIO_PATH", str(p / "scenarios"))
    cfg = sim.compose("identify_calibrated", [], seed=identified.best_config.seed)
    assert sim.schema.to_plain(cfg) | {"scenario": None} == sim.schema.to_plain(identified.best_config) | {"scenario": None}
    # and so do the printed overrides
    words = (p / "overrides.txt").read_text().split()
    again = sim.compose(None, words, seed=identified.best_config.seed)
    assert sim.schema.to_plain(again) == sim.schema.to_plain(identified.best_config)
    fit = pd.read_csv(p / "fit.csv")
    assert set(fit["metric"]) == {"cumulative_users", "retention"} and (fit["low"] <= fit["high"]).all()


def test_the_report_shows_the_fit_and_how_to_run_it(identified):
    """report.html: the fitted values within their ranges, both losses, the run command, a row per
    target with its errors, and both plots."""
    page = (identified.path / "report.html").read_text()
    for key, value in identified.best.items():
        assert f"<td>{key}</td>" in page and f"<b>{value:.6g}</b>" in page
    assert f"{identified.best_loss:.4g}" in page and f"{identified.check_loss:.4g}" in page
    assert "sim run " + " ".join(identified.overrides()) in page
    assert "scenario=identify_calibrated" in page
    assert page.count("<td>cumulative_users</td>") == 1 and page.count("<td>retention</td>") == 1
    assert "<img src='plots/fit.png'" in page and "<img src='plots/loss.png'" in page


def test_a_calibration_is_reproducible_and_independent_of_the_workers(tmp_path):
    data = {"seed": 5, "overrides": ["population.size=1000", "horizon=15"],
            "calibration": {"params": {BUDGET: [60, 1300]}, "trials": 4, "startup_trials": 2, "replicates": 1, "check_replicates": 2,
                            "targets": [{"metric": "new_users", "values": {5: 40, 10: 45}}]}}
    a = calibrate(data, out=None, workers=1)
    b = calibrate(data, out=None, workers=2)
    pd.testing.assert_frame_equal(a.trials, b.trials)
    assert a.best == b.best
    c = calibrate({**data, "seed": 6}, out=None, workers=1)
    assert not a.trials[BUDGET].equals(c.trials[BUDGET])  # the seed drives the sampler


def test_the_losses_are_zero_on_the_target_and_free_of_scale():
    t = np.array([10.0, 20.0, 40.0])
    for kind in ("msle", "relative"):
        assert series_loss(t, t, kind) == 0
        assert series_loss(2 * t, t, kind) == pytest.approx(series_loss(20 * t, 10 * t, kind))
        assert series_loss(1.5 * t, t, kind) < series_loss(3 * t, t, kind)
    assert series_loss(2 * t, t, "msle") == pytest.approx(series_loss(t / 2, t, "msle"), rel=1e-4)  # twice too high = twice too low
    assert series_loss(np.array([np.nan, 1, 1]), t, "msle") == np.inf


def bad(tmp_path, **changes):
    section = {"params": {BUDGET: [60, 1300]}, "targets": [{"metric": "new_users", "values": {5: 40}}], **changes}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"overrides": TINY, "calibration": section}))
    return path


@pytest.mark.parametrize("changes, message", [
    ({"targets": [{"metric": "new_user", "values": {5: 40}}]}, "calibration.targets[0].metric = 'new_user': allowed is one of"),
    ({"targets": [{"metric": "new_users", "file": "nowhere.csv"}]}, "calibration.targets[0].file = "),
    ({"targets": [{"metric": "new_users"}]}, "give either a file or values"),
    ({"targets": [{"metric": "new_users", "values": {"day5": 40}}]}, "the keys are days"),
    ({"targets": [{"metric": "new_users", "values": {45: 40}}]}, "calibration.targets[0]: day 45 is beyond the horizon (30 days"),
    ({"targets": [{"metric": "retention", "values": {3: -0.1}}]}, "the values must be finite numbers >= 0"),
    ({"params": {"behaviour.churn.base_hazrd": [0.1, 0.5]}}, "calibration.params.behaviour.churn.base_hazrd: unknown key (did you mean 'base_hazard'?)"),
    ({"loss": "mse"}, "calibration.loss = 'mse': allowed is one of msle, relative"),
])
def test_bad_calibration_input_is_one_line_before_any_run(tmp_path, changes, message):
    with pytest.raises(ConfigError) as err:
        calibrate(bad(tmp_path, **changes), out=None, workers=1)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_target_csv_without_the_right_columns_names_them(tmp_path):
    (tmp_path / "t.csv").write_text("age,retained\n1,0.2\n")
    with pytest.raises(ConfigError, match=r"needs columns age and value \(has age, retained\)"):
        calibrate(bad(tmp_path, targets=[{"metric": "retention", "file": "t.csv"}]), out=None, workers=1)


def test_the_command_line_reports_bad_input_in_one_line_with_exit_2(tmp_path, capsys):
    from sim.cli import main

    code = main(["calibrate", f"experiment={bad(tmp_path)}", "trials=none"])
    err = capsys.readouterr().err
    assert code == 2 and "trials = 'none': allowed is a whole number" in err and err.count("\n") == 1
    assert main(["calibrate", "experiment=paid_budget"]) == 2
    assert "no calibration section" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(n for n in available_experiments() if load_experiment(n)[1].calibration is not None))
def test_every_shipped_calibration_has_valid_targets_and_bounds(name):
    from sim.analysis.calibration import check_targets, load_target
    from sim.analysis.sensitivity import base_config
    from sim.experiment import check_space

    _, spec = load_experiment(name)
    base = base_config(spec, spec.calibration.scenario)
    check_space(base, spec.calibration.params, "calibration")
    check_targets([load_target(t, name) for t in spec.calibration.targets], base, name)


def test_a_calibration_experiment_ships():
    assert {"retention_benchmark", "adoption_curve"} <= set(available_experiments())
