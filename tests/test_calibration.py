"""Calibration (``sim calibrate``): fit settings to target series with a seeded Optuna TPE sampler;
targets expressed as shares of the market, period aggregates, ratios or shapes; which targets
conflict and which parameters each identifies."""

from __future__ import annotations

import json
import re

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
# The calibrations that several tests read run once, on one xdist worker (``--dist loadgroup``).
identified_group = pytest.mark.xdist_group("calibration_identified")


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


@identified_group
def test_calibration_recovers_the_settings_that_made_the_target(identified):
    """Identifiability: each fitted value lies within 15 % of its searched range of the truth."""
    for key, truth in TRUTH.items():
        low, high = BOUNDS[key]
        assert abs(identified.best[key] - truth) < 0.15 * (high - low), (key, identified.best[key], truth)


@identified_group
def test_the_first_trial_is_the_base_scenario_and_the_search_improves_on_it(identified):
    first = identified.trials.iloc[0]
    default = sim.compose("default", TINY)
    assert first[BUDGET] == default.mechanisms["paid_acquisition"].budget_per_1000 == 5
    assert first[CHURN] == default.behaviour.churn.base_hazard
    assert identified.best_loss < first["loss"] / 5
    assert identified.trials["best_loss"].is_monotonic_decreasing
    assert identified.check_loss < first["loss"]  # the fit holds at seeds the search never saw


@identified_group
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
    trials = pd.read_csv(p / "trials.csv")  # every trial keeps each target's loss; their weighted mean is the loss
    assert np.allclose(trials[["loss:cumulative_users", "loss:retention"]].mean(axis=1), trials["loss"])
    assert set(summary["identification"]) == {"cumulative_users", "retention"} and summary["conflicts"] == []


@identified_group
def test_the_report_shows_the_fit_and_how_to_run_it(identified):
    """report.html: the fitted values within their ranges, both losses, the run command, a row per
    target with its errors, and both plots."""
    page = (identified.path / "report.html").read_text()
    for key, value in identified.best.items():
        assert f"<td>{key}</td>" in page and f"<b>{value:.6g}</b>" in page
    assert f"{identified.best_loss:.4g}" in page and f"{identified.check_loss:.4g}" in page
    assert "sim run " + " ".join(identified.overrides()) in page
    assert "scenario=identify_calibrated" in page
    targets = page[page.index("<h2>How close the fit is</h2>"): page.index("<h2>Targets the model cannot meet together</h2>")]
    assert targets.count("<tr><td>cumulative_users</td>") == 1 and targets.count("<tr><td>retention</td>") == 1
    assert "no two targets conflict" in page  # both targets were made by the model at one setting
    assert "<h2>What each target identifies</h2>" in page and f"<th>{BUDGET}</th>" in page
    assert "<img src='plots/fit.png'" in page and "<img src='plots/loss.png'" in page


def test_a_calibration_is_reproducible_and_independent_of_the_workers(tmp_path):
    data = {"seed": 5, "overrides": ["population.size=1000", "horizon=15"],
            "calibration": {"params": {BUDGET: [60, 1300]}, "trials": 4, "startup_trials": 2, "replicates": 1, "check_replicates": 2,
                            "targets": [{"metric": "new_users", "values": {5: 40, 10: 45}}]}}
    a = calibrate(data, out=tmp_path, workers=1, plots=False)
    b = calibrate(data, out=None, workers=2)
    summary = json.loads((a.path / "summary.json").read_text())  # one target: nothing to conflict with
    assert summary["conflicts"] == [] and summary["conflict_line"] == "one target: no pairs to compare"
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


# ============================================================================ targets as public figures come
def target(**spec):
    """A target from the keys of an experiment file's target (values by day)."""
    from sim.analysis.targets import load_target
    from sim.plans import TargetSpec
    from sim.schema import build

    spec = {**spec, "values": {str(k): v for k, v in spec["values"].items()}}
    return load_target(build(TargetSpec, spec, "target"), "target")


def test_period_aggregates_are_sums_means_and_last_values_over_the_days_to_each_day():
    from sim.analysis.targets import trailing

    x = np.random.default_rng(3).gamma(2.0, 50.0, 40)
    for period in (1, 7, 40):
        sums, means, last = (trailing(x, period, a) for a in ("sum", "mean", "last"))
        assert np.isnan(sums[:period - 1]).all() and np.isnan(last[:period - 1]).all()
        for day in range(period - 1, 40):
            block = x[day - period + 1: day + 1]
            assert sums[day] == pytest.approx(block.sum()) and means[day] == pytest.approx(block.mean()) and last[day] == x[day]
    assert np.isnan(trailing(x, 41, "sum")).all()


def test_a_ratio_divides_the_aggregates_of_its_two_columns():
    """Spend per active buyer: the year's GMV over the year's buyers, not a mean of daily ratios; a
    zero denominator leaves the value undefined and the trial's loss infinite."""
    rng = np.random.default_rng(4)
    gmv, buyers = rng.gamma(2.0, 100.0, 30), rng.integers(1, 20, 30).astype(float)
    t = target(metric="gmv/buyers", period=10, aggregate="sum", values={9: 50, 19: 50, 29: 50})
    assert t.metric == "gmv / buyers" and t.columns == ("gmv", "buyers")
    curve = t.curve({"gmv": gmv, "buyers": buyers})
    assert curve[19] == pytest.approx(gmv[10:20].sum() / buyers[10:20].sum())
    plain = target(metric="gmv_365 / active_buyers_365", values={3: 1.0, 5: 2.0})
    assert plain.curve({"gmv_365": gmv, "active_buyers_365": buyers})[5] == pytest.approx(gmv[5] / buyers[5])
    buyers[15] = 0.0
    assert np.isnan(target(metric="gmv / buyers", values={15: 1.0}).curve({"gmv": gmv, "buyers": buyers})[15])
    assert target(metric="gmv / buyers", values={15: 1.0}).loss({"gmv": gmv, "buyers": buyers}, "msle") == np.inf


def test_a_market_share_divides_each_day_by_the_people_in_the_market_that_day():
    """``scale: market``: the share follows a growing market day by day (``market_size``); with a
    fixed market it is the value over the population, and the loss does not depend on the market's size."""
    new = np.full(20, 30.0)
    t = target(metric="new_users", scale="market", period=10, aggregate="sum", values={9: 0.3, 19: 0.15})
    fixed = t.curve({"new_users": new, "market_size": np.full(20, 1000.0)})
    assert fixed[[9, 19]] == pytest.approx([0.3, 0.3])
    growing = t.curve({"new_users": new, "market_size": np.r_[np.full(10, 1000.0), np.full(10, 2000.0)]})
    assert growing[[9, 19]] == pytest.approx([0.3, 0.15])
    assert t.loss({"new_users": new, "market_size": np.full(20, 1000.0)}, "msle") > 0.1
    assert t.loss({"new_users": new, "market_size": np.r_[np.full(10, 1000.0), np.full(10, 2000.0)]}, "msle") == pytest.approx(0, abs=1e-12)
    assert t.loss({"new_users": 10 * new, "market_size": np.full(20, 10_000.0)}, "msle") == t.loss(
        {"new_users": new, "market_size": np.full(20, 1000.0)}, "msle")


def test_a_run_gives_its_market_size_from_a_column_or_else_its_population():
    from sim.engine import GrowthModel
    from sim.metrics import MARKET_COLUMN, run_series

    model = GrowthModel(sim.compose("default", ["population.size=400", "horizon=5"])).run()
    daily = model.metrics.daily(model.economics)
    assert (run_series(model, daily, MARKET_COLUMN) == 400).all() and len(run_series(model, daily, MARKET_COLUMN)) == 5
    growing = daily.assign(**{MARKET_COLUMN: np.arange(400, 405)})
    assert (run_series(model, growing, MARKET_COLUMN) == np.arange(400, 405)).all()
    assert (run_series(model, daily, "dau") == daily["dau"]).all()


def test_relative_to_fits_the_shape_only():
    """Simulated and target values are both divided by their value at the reference: scaling either
    changes nothing, a different shape does, and the reference point itself leaves the loss."""
    t = target(metric="active_buyers_365", relative_to=30, values={10: 20.0, 20: 40.0, 30: 80.0})
    days = np.arange(31, dtype=float)
    shape = {"active_buyers_365": 5.0 * 2 ** (days / 10)}
    assert t.loss(shape, "msle") == pytest.approx(0, abs=1e-12)
    assert t.loss({"active_buyers_365": 1000 * shape["active_buyers_365"]}, "msle") == pytest.approx(0, abs=1e-12)
    assert t.loss({"active_buyers_365": 1.0 + days}, "msle") > 0.1
    simulated, observed = t.compared(shape)
    assert observed.tolist() == [0.25, 0.5] and simulated == pytest.approx([0.25, 0.5])
    again = target(metric="active_buyers_365", relative_to=30, values={10: 2.0, 20: 4.0, 30: 8.0})  # the target's own unit is irrelevant
    assert again.loss({"active_buyers_365": 1.0 + days}, "msle") == pytest.approx(t.loss({"active_buyers_365": 1.0 + days}, "msle"))


def test_every_daily_column_of_a_run_can_be_a_target():
    """The columns known before a run are exactly those a run writes (with every mechanism on), and
    each, the trailing-window ones included, is accepted as a target."""
    from sim.analysis.targets import check_targets
    from sim.engine import GrowthModel
    from sim.metrics import daily_columns

    for scenario in ("default", "all_mechanisms"):
        cfg = sim.compose(scenario, ["population.size=300", "horizon=3"])
        model = GrowthModel(cfg).run()
        columns = set(model.metrics.daily(model.economics).columns)
        assert daily_columns(cfg) == columns
    assert {"active_buyers_30", "active_buyers_365", "gmv_365"} <= columns
    check_targets([target(metric=c, values={1: 1.0}) for c in sorted(columns - {"day"})], cfg, "calibration")
    check_targets([target(metric="gmv_365 / active_buyers_365", values={1: 1.0})], cfg, "calibration")


@pytest.mark.parametrize("spec, message", [
    ({"metric": "gmv * 2"}, "target.metric = 'gmv * 2': allowed is retention, a daily column"),
    ({"metric": "__import__('os').system('x')"}, "allowed is retention, a daily column"),
    ({"metric": "gmv / buyers / dau"}, "allowed is retention, a daily column"),
    ({"metric": "retention / dau"}, "allowed is retention, a daily column"),
    ({"metric": "retention", "scale": "market"}, "target.scale = 'market': retention is already a share"),
    ({"metric": "retention", "period": 7, "aggregate": "mean"}, "target.period = 7: retention is by age"),
    ({"metric": "gmv / buyers", "scale": "market"}, "a ratio is already per unit of its denominator"),
    ({"metric": "gmv", "period": 7}, "target.aggregate = null: a period needs an aggregate: sum, mean or last"),
    ({"metric": "gmv", "aggregate": "sum"}, "target.aggregate = 'sum': an aggregate needs a period"),
    ({"metric": "gmv", "aggregate": "total", "period": 7}, "target.aggregate = 'total': allowed is one of sum, mean, last"),
    ({"metric": "gmv", "scale": "share"}, "target.scale = 'share': allowed is one of absolute, market"),
    ({"metric": "gmv", "relative_to": 4}, "target.relative_to = 4: allowed is one of the target's days ([9, 19])"),
    ({"metric": "gmv", "relative_to": 9, "values": {9: 0.0, 19: 3.0}}, "target.relative_to = 9: the value there is 0"),
    ({"metric": "gmv", "relative_to": 9, "values": {9: 1.0}}, "a shape needs at least one day besides the reference"),
    ({"metric": "gmv", "period": 12, "aggregate": "sum"}, "target.period = 12: the period to day 9 would start before day 0; allowed are days >= 11"),
])
def test_a_target_that_cannot_be_computed_is_one_line(spec, message):
    with pytest.raises(ConfigError) as err:
        target(**{"values": {9: 1.0, 19: 2.0}, **spec})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_target_beyond_the_horizon_or_the_ages_followed_is_one_line():
    from sim.analysis.targets import check_targets

    cfg = sim.compose("default", ["horizon=500"])
    with pytest.raises(ConfigError, match=r"^calibration.targets\[0\]: day 500 is beyond the horizon \(500 days: days 0..499\)"):
        check_targets([target(metric="gmv", values={500: 1.0})], cfg, "calibration")
    with pytest.raises(ConfigError, match=r"^calibration.targets\[0\]: age 400 is beyond the ages cohorts are followed \(0..365\)$"):
        check_targets([target(metric="retention", values={400: 0.01})], cfg, "calibration")


def test_a_ratio_naming_no_column_says_which_part_is_wrong(tmp_path):
    with pytest.raises(ConfigError, match=r"metric = 'gmv_365 / active_buyer_365' \('active_buyer_365' is no column\): allowed is one of "
                                          r"retention, .*active_buyers_365.* or a ratio of two columns \(did you mean 'active_buyers_365'\?\)"):
        calibrate(bad(tmp_path, targets=[{"metric": "gmv_365 / active_buyer_365", "values": {5: 40}}]), out=None, workers=1)


# ============================================================================ unknown keys list the allowed ones
@pytest.mark.parametrize("data, message", [
    ({"replicate": 3}, "replicate: unknown key (did you mean 'replicates'?); allowed keys: description, strategies, baseline, replicates"),
    ({"strategies": {"a": {"overides": []}}}, "strategies.a.overides: unknown key (did you mean 'overrides'?); allowed keys: scenario, overrides"),
    ({"sweep": {"params": {"seed": [1, 2]}, "metric": ["profit"]}}, "sweep.metric: unknown key (did you mean 'metrics'?); allowed keys: params, scenario, metrics"),
    ({"sensitivity": {"params": {"a": [0, 1], "b": [0, 1]}, "sampels": 4}}, "sensitivity.sampels: unknown key (did you mean 'samples'?); allowed keys: params, scenario, method,"),
    ({"sensitivity": {"params": {"a": {"low": 0, "high": 1, "logscale": True}, "b": [0, 1]}}}, "sensitivity.params.a.logscale: unknown key; allowed keys: low, high, log"),
    ({"calibration": {"params": {"a": [0, 1]}, "targets": [{"metric": "dau", "values": {1: 2}}], "trails": 3}},
     "calibration.trails: unknown key (did you mean 'trials'?); allowed keys: params, targets, scenario, loss, trials,"),
    ({"calibration": {"params": {"a": [0, 1]}, "targets": [{"metric": "dau", "values": {1: 2}, "relative": 1}]}},
     "calibration.targets[0].relative: unknown key (did you mean 'relative_to'?); allowed keys: metric, file, values, weight, label, name, scale, period, aggregate, relative_to"),
])
def test_an_unknown_key_of_an_experiment_file_lists_the_allowed_keys(data, message):
    from sim.plans import experiment_spec

    with pytest.raises(ConfigError) as err:
        experiment_spec(data, "exp.yaml")
    assert str(err.value).startswith(f"exp.yaml: {message}")
    assert "\n" not in str(err.value)


def test_an_unknown_key_of_a_baseline_file_lists_the_allowed_keys(tmp_path):
    from sim.check import load_baseline

    path = tmp_path / "b.yaml"
    for text, message in (("experiment: referral_reward\nseeds: 3\nmetrcs: [profit]\n", "metrcs: unknown key (did you mean 'metrics'?); allowed keys: experiment, description,"),
                          ("experiment: referral_reward\nseeds: 3\ntolerance: {kk: 1}\n", "tolerance.kk: unknown key (did you mean 'k'?); allowed keys: k, rtol")):
        path.write_text(text)
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_baseline(path)


# ============================================================================ what the trials say
def trials_frame(seed: int = 1, n: int = 30) -> pd.DataFrame:
    """Trials of two parameters x, y in [0, 1] with losses: A and B want x at 0.2 and 0.8 (they
    pull apart), C wants y at 0.5 (independent of both)."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(size=n), rng.uniform(size=n)
    return pd.DataFrame({"trial": np.arange(n), "x": x, "y": y, "loss:A": (x - 0.2) ** 2, "loss:B": (x - 0.8) ** 2, "loss:C": (y - 0.5) ** 2})


def test_two_targets_that_pull_a_parameter_apart_conflict_and_independent_ones_do_not():
    from sim.analysis.identification import conflict_line, conflicts, identification, target_losses_frame

    for seed in range(5):
        trials = trials_frame(seed)
        scores = identification(trials, ["A", "B", "C"], ["x", "y"])
        table = conflicts(target_losses_frame(trials, ["A", "B", "C"]), "msle", 0.1, scores).set_index(["first", "second"])
        assert table.loc[("A", "B"), "conflict"] and table.loc[("A", "B"), "shared"] == "x"
        assert table.loc[("A", "B"), "gap"] > 0.2  # the best compromise misses each by about 0.3
        assert not table.loc[("A", "C"), "conflict"] and not table.loc[("B", "C"), "conflict"]
    line = conflict_line(table.reset_index(), "msle", 0.1)
    assert line.startswith("targets the model cannot meet together") and "A vs B" in line and "C" not in line.split(":", 1)[1]
    # the same targets all met at one point conflict with nothing
    met = trials.assign(**{"loss:B": (trials["x"] - 0.2) ** 2 + 1e-4})
    table = conflicts(target_losses_frame(met, ["A", "B", "C"]), "msle", 0.1, identification(met, ["A", "B", "C"], ["x", "y"]))
    assert not table["conflict"].any() and "no two targets conflict" in conflict_line(table, "msle", 0.1)


def test_each_target_identifies_the_parameter_its_loss_moves_with():
    from sim.analysis.identification import identification, identification_lines, omega_squared

    scores = identification(trials_frame(2), ["A", "B", "C"], ["x", "y"])
    assert (scores.loc[["A", "B"], "x"] > 0.6).all() and scores.loc["C", "y"] > 0.6
    assert (scores.loc[["A", "B"], "y"] < 0.2).all() and scores.loc["C", "x"] < 0.2
    assert identification_lines(scores)[2].startswith("C: y (")
    rng = np.random.default_rng(0)  # a loss that ignores the parameter scores near 0 on average
    assert np.mean([omega_squared(rng.uniform(size=30), rng.uniform(size=30), 5) for _ in range(200)]) < 0.05
    assert identification(trials_frame(2, n=5), ["A"], ["x"]).isna().all(axis=None)  # too few trials to say


@pytest.mark.slow
def test_contradictory_targets_are_flagged_in_the_calibration_folder(tmp_path):
    """Two targets of users acquired per 10 days, made by the model at a low and a high ad budget:
    one budget cannot give both, and the folder says so in one line."""
    share = {}
    runs = run_points(sim.compose("default", TINY), [{BUDGET: 300.0}, {BUDGET: 2500.0}], [911], workers=1, series=["new_users"])
    for point in (0, 1):
        new = runs.series[(point, 0)]["new_users"]
        share[point] = {9: float(new[:10].sum() / 1500), 19: float(new[10:20].sum() / 1500)}
    spec = lambda name, values: {"metric": "new_users", "name": name, "scale": "market", "period": 10, "aggregate": "sum", "values": values}
    data = {"seed": 0, "overrides": TINY, "calibration": {"params": {BUDGET: BOUNDS[BUDGET]}, "trials": 10, "startup_trials": 5,
                                                           "replicates": 1, "check_replicates": 2,
                                                           "targets": [spec("low budget", share[0]), spec("high budget", share[1])]}}
    cal = calibrate(data, out=tmp_path, workers=2, plots=False)
    assert cal.conflicts["conflict"].tolist() == [True]
    summary = json.loads((cal.path / "summary.json").read_text())
    assert summary["conflicts"] == [["low budget", "high budget"]]
    assert "targets the model cannot meet together" in summary["conflict_line"] and "low budget vs high budget" in summary["conflict_line"]
    assert summary["conflict_line"] in (cal.path / "report.html").read_text()
    assert "low budget vs high budget" in cal.text()


# ============================================================================ identifiability with transformed targets
#: the budget searched from a busy market up (a budget near zero buys nobody in 30 days at 1,500 people,
#: a flat stretch of the loss that hides how well users acquired pin the budget down)
SHAPE_BOUNDS = {BUDGET: [60, 2000], CHURN: BOUNDS[CHURN]}


@pytest.fixture
def shape_fit():
    """Targets made by the model at known settings (seeds the calibration never uses), as public
    figures come: users acquired per 10 days as a share of the market, and the shape of DAU
    (5-day means relative to the last) in a unit of its own (x 7.5)."""
    runs = run_points(sim.compose("default", TINY), [TRUTH], [901, 902, 903], workers=2, series=["new_users", "dau"])
    new = np.mean([runs.series[(0, r)]["new_users"] for r in range(3)], axis=0)
    dau = np.mean([runs.series[(0, r)]["dau"] for r in range(3)], axis=0)
    share = {d: float(new[d - 9: d + 1].sum() / 1500) for d in (9, 19, 29)}
    shape = {d: float(7.5 * dau[d - 4: d + 1].mean()) for d in (4, 9, 14, 19, 24, 29)}
    data = {"seed": 0, "overrides": TINY,
            "calibration": {"params": SHAPE_BOUNDS, "trials": 30, "startup_trials": 14, "replicates": 2, "check_replicates": 3,
                            "targets": [{"metric": "new_users", "scale": "market", "period": 10, "aggregate": "sum", "values": share},
                                        {"metric": "dau", "period": 5, "aggregate": "mean", "relative_to": 29, "values": shape}]}}
    return calibrate(data, out=None, workers=2)


@pytest.mark.slow
def test_calibration_recovers_the_settings_from_market_shares_and_a_shape(shape_fit):
    """Identifiability with transformed targets (30 trials: with fewer, a search that gathers near the
    optimum leaves too few trials far from it to show what pins the budget down): each fitted value lies within 15 % of its searched
    range of the truth, the two targets (made at one setting) do not conflict, and the fit is shown
    as the targets are expressed (the shape relative to its reference day)."""
    for key, truth in TRUTH.items():
        low, high = SHAPE_BOUNDS[key]
        assert abs(shape_fit.best[key] - truth) < 0.15 * (high - low), (key, shape_fit.best[key], truth)
    assert shape_fit.best_loss < shape_fit.trials["loss"].iloc[0] / 5
    assert not shape_fit.conflicts["conflict"].any()
    assert shape_fit.identification.loc["new_users", BUDGET] > 0.2  # users acquired pin the budget down
    fit = shape_fit.fit[shape_fit.fit["name"] == "dau"]
    at_reference = fit[fit["at"] == 29].iloc[0]
    assert at_reference["target"] == pytest.approx(1.0) and at_reference["mean"] == pytest.approx(1.0)
    assert fit["expressed"].iloc[0] == "dau, averaged over the 5 days to each day, relative to day 29"
    shares = shape_fit.fit[shape_fit.fit["name"] == "new_users"]
    assert (shares["mean"] < 1).all() and (shares["at"].min(), shares["at"].max()) == (9, 29)


def test_the_documented_pinduoduo_targets_are_valid_targets_at_the_year_ends():
    """docs/calibration.md writes Pinduoduo's annual figures as targets: the block is a valid
    experiment file, its targets pass every check before a run, and its days are the year ends
    2017-2021 counted from day 0 = 2015-09-01."""
    from datetime import date

    from sim.analysis.calibration import check_targets, load_target
    from sim.analysis.sensitivity import base_config
    from sim.experiment import check_space
    from sim.plans import PROJECT, experiment_spec

    text = (PROJECT / "docs" / "calibration.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "Pinduoduo's annual figures" in b)
    spec = experiment_spec(yaml.safe_load(block), "docs/calibration.md")
    base = base_config(spec, spec.calibration.scenario)
    check_space(base, spec.calibration.params, "calibration")
    targets = [load_target(t, f"calibration.targets[{k}]") for k, t in enumerate(spec.calibration.targets)]
    check_targets(targets, base, "calibration")
    year_ends = [(date(year, 12, 31) - date(2015, 9, 1)).days for year in range(2017, 2022)]
    assert year_ends == [852, 1217, 1582, 1948, 2313]
    assert all(t.at.tolist() == year_ends and t.relative_to == 2313 for t in targets)
    assert [t.metric for t in targets] == ["active_buyers_365", "gmv_365 / active_buyers_365", "gmv"]
