"""Comparing strategies: paired replicates with common random numbers, intervals, verdicts, folders."""

from __future__ import annotations

import subprocess
import sys
import re
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import sim
from sim.analysis.stats import mean_interval, paired_difference, verdict
from sim.plans import available_experiments, load_experiment, replicate_seeds
from sim.experiment import check_sweep, experiment_sweep_overrides, strategy_configs

TINY = ("population.size=1500", "horizon=30")


def test_a_scenario_compared_with_itself_differs_by_exactly_zero():
    c = sim.compare(["default", "default"], replicates=3, overrides=TINY, workers=1)
    assert c.strategies == ["default", "default-2"]
    d = c.differences
    assert len(d) == len(c.spec.metrics)
    assert (d["mean_difference"].fillna(0) == 0).all() and (d["higher"] == 0).all() and (d["lower"] == 0).all()
    assert all("identical" in v for v in d["verdict"] if "no replicate" not in v)
    a = c.daily[c.daily["strategy"] == "default"].drop(columns="strategy").reset_index(drop=True)
    b = c.daily[c.daily["strategy"] == "default-2"].drop(columns="strategy").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_each_replicate_is_the_run_of_its_seed():
    """Common random numbers without shortcuts: replicate r of a strategy is exactly `sim run
    scenario=X seed=<seed r>`, although the comparison builds each replicate's graph once."""
    c = sim.compare(["default", "referral_double"], replicates=2, overrides=TINY, workers=1)
    assert list(c.horizon["seed"].unique()) == replicate_seeds(0, 2)
    for strategy in ("default", "referral_double"):
        for r, seed in enumerate(c.seeds):
            alone = sim.simulate(sim.compose(strategy, list(TINY), seed=seed))
            mine = c.daily[(c.daily["strategy"] == strategy) & (c.daily["replicate"] == r)]
            mine = mine.drop(columns=["strategy", "replicate"]).reset_index(drop=True)
            pd.testing.assert_frame_equal(mine[alone.daily.columns], alone.daily, check_dtype=False)


def test_results_do_not_depend_on_the_number_of_workers():
    one = sim.compare(["default", "referral_double"], replicates=2, overrides=TINY, workers=1)
    two = sim.compare(["default", "referral_double"], replicates=2, overrides=TINY, workers=2)
    pd.testing.assert_frame_equal(one.daily, two.daily)
    pd.testing.assert_frame_equal(one.differences, two.differences)


def test_replicate_seeds_extend_without_changing_earlier_ones():
    assert replicate_seeds(7, 5)[:3] == replicate_seeds(7, 3)
    assert len(set(replicate_seeds(7, 100))) == 100
    assert replicate_seeds(7, 3) != replicate_seeds(8, 3)


def test_intervals_shrink_as_replicates_grow():
    """With 4x the replicates an interval is about 3x narrower (t quantile and sqrt(n)); the sample
    standard deviation of 4 replicates is itself noisy, so the test takes the geometric mean of the
    width ratios over several metrics."""
    few = sim.compare(["default", "referral_double"], replicates=4, overrides=TINY, workers=1)
    many = sim.compare(["default", "referral_double"], replicates=16, overrides=TINY, workers=1)
    metrics = ["profit", "users_total", "mau_end", "gmv", "revenue", "incentive_cost"]

    def widths(frame, strategy=None):
        rows = frame[frame["metric"].isin(metrics)]
        if strategy is not None:
            rows = rows[rows["strategy"] == strategy]
        return (rows["ci_high"] - rows["ci_low"]).to_numpy()

    for frame, strategy in (("table", "default"), ("table", "referral_double"), ("differences", None)):
        ratio = widths(getattr(many, frame), strategy) / widths(getattr(few, frame), strategy)
        assert np.exp(np.mean(np.log(ratio))) < 0.75, (frame, strategy, ratio)


def test_an_interval_narrows_with_more_of_the_same_data():
    x = np.random.default_rng(1).normal(0, 1, 8)
    narrow, wide = mean_interval(np.tile(x, 4)), mean_interval(x)
    assert narrow.high - narrow.low < 0.5 * (wide.high - wide.low)


def test_a_larger_reward_shows_as_more_users_and_more_incentive_spend():
    # 15 seed users rather than the default share's one: a referral programme needs users who invite
    c = sim.compare(["default", "referral_double"], replicates=4, overrides=[*TINY, "adoption.seed_fraction=0.01"], workers=1)
    d = c.differences.set_index("metric")
    assert d.loc["incentive_cost", "ci_low"] > 0
    assert d.loc["incentive_cost", "verdict"].startswith("referral_double is higher than default on incentive cost in 4 of 4 replicates")
    assert d.loc["users_total", "mean_difference"] > 0


# ------------------------------------------------------------------------------ statistics
def test_paired_interval_covers_a_known_effect_and_ignores_shared_noise():
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(200):
        shared = rng.normal(1000, 300, 20)  # large noise both strategies share
        a = shared + rng.normal(0, 5, 20)
        b = shared + 10 + rng.normal(0, 5, 20)
        d = paired_difference(b, a)
        covered += d.low <= 10 <= d.high
        assert d.high - d.low < 20  # the shared noise (sd 300) does not widen a paired interval
    assert 180 <= covered <= 198  # a 95 % interval covers the truth about 95 % of the time


def test_missing_values_drop_their_pair():
    d = paired_difference([1.0, 2.0, np.nan, 4.0], [0.0, np.nan, 1.0, 2.0])
    assert d.n == 2 and d.mean == pytest.approx(1.5)
    assert mean_interval([np.nan, np.nan]).n == 0


@pytest.mark.parametrize("better, delta, start", [
    ("higher", 10.0, "B beats A on profit in 30 of 30 replicates, +10.0 [9.98, 10.0] (+10 %"),
    ("higher", -10.0, "B falls short of A on profit in 30 of 30 replicates, -10.0 [-10.0, -9.98] (-10 %"),
    ("lower", -10.0, "B beats A on profit in 30 of 30 replicates, -10.0 [-10.0, -9.98] (-10 %"),
    (None, 10.0, "B is higher than A on profit in 30 of 30 replicates, +10.0 [9.98, 10.0] (+10 %"),
])
def test_verdicts_say_who_wins_in_words(better, delta, start):
    a = np.linspace(90, 110, 30)
    b = a + delta + np.linspace(-1, 1, 30)[::-1] * 0.1
    assert verdict("B", "A", "profit", paired_difference(b, a), better).startswith(start)


def test_a_verdict_without_a_clear_winner_says_so():
    rng = np.random.default_rng(0)
    a = rng.normal(100, 10, 30)
    text = verdict("B", "A", "profit", paired_difference(a + rng.normal(0, 10, 30), a))
    assert text.startswith("no clear difference between B and A on profit: B ahead in ")


def test_a_baseline_near_zero_gives_the_difference_in_its_unit():
    a = np.array([-5.0, 5.0, -3.0, 4.0, -1.0])
    b = a - 1000 + np.array([1.0, -1.0, 2.0, 0.0, -2.0])
    text = verdict("B", "A", "profit", paired_difference(b, a), "higher", "RMB")
    assert text == "B falls short of A on profit in 5 of 5 replicates, -1,000 RMB [-1,002 RMB, -998 RMB]"


def test_relative_change_of_a_smaller_loss_is_positive():
    a = np.array([-100.0, -110.0, -90.0])
    d = paired_difference(a / 2, a)
    assert d.relative == pytest.approx(0.5) and verdict("B", "A", "profit", d).startswith("B beats A")


# ------------------------------------------------------------------------------ folders and files
def _sim(capsys, *args: str) -> tuple[int, str, str]:
    """The command line, in this process (a subprocess would spend seconds importing)."""
    from sim.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_comparison_folder_is_complete_and_reruns_exactly(tmp_path, capsys):
    code, out, err = _sim(capsys, "compare", "scenario=default,referral_double", "replicates=2", "workers=1", *TINY, f"out={tmp_path}")
    assert code == 0, err
    path = Path(out.strip().splitlines()[-1])
    assert path.parent == tmp_path
    for name in ("config.yaml", "daily.parquet", "horizon.parquet", "differences.parquet", "report.html"):
        assert (path / name).is_file(), name
    assert {p.name for p in (path / "plots").glob("*.png")} == {"curves.png", "retention.png", "horizon.png", "differences.png"}
    daily = pd.read_parquet(path / "daily.parquet")
    assert list(daily.columns[:3]) == ["strategy", "replicate", "day"] and len(daily) == 2 * 2 * 30
    diffs = pd.read_parquet(path / "differences.parquet")
    assert {"strategy", "metric", "mean_difference", "ci_low", "ci_high", "verdict"} <= set(diffs.columns)
    html = (path / "report.html").read_text()
    assert "referral_double" in html and diffs["verdict"].iloc[0] in unescape(html)
    assert re.search(r"referral_double .*on profit(:| in) .*of 2 replicates", err), err  # the verdict on profit, whichever it is
    spec = yaml.safe_load((path / "config.yaml").read_text())
    assert spec["replicates"] == 2 and set(spec["strategies"]) == {"default", "referral_double"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]

    code, out, err = _sim(capsys, "compare", "-q", "--no-plots", "workers=1", f"experiment={path / 'config.yaml'}", f"out={tmp_path / 'again'}")
    assert code == 0, err
    pd.testing.assert_frame_equal(pd.read_parquet(Path(out.strip()) / "horizon.parquet"), pd.read_parquet(path / "horizon.parquet"))


def test_the_command_line_compares_in_a_process_of_its_own(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "compare", "-q", "--no-plots", "scenario=default,default",
                           "replicates=2", "population.size=500", "horizon=10", f"out={tmp_path}"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    diffs = pd.read_parquet(Path(proc.stdout.strip()) / "differences.parquet")
    assert (diffs["mean_difference"].fillna(0) == 0).all()


@pytest.mark.parametrize("args, message", [
    (["scenario=default,referal_double"], "scenario = 'referal_double': no such scenario (did you mean 'referral_double'?)"),
    (["scenario=default", "replicates=1"], "replicates = 1: allowed is a number in [2, 100000]"),
    (["scenario=default", "mechanisms.referral.inviter_reward=-3"], "mechanisms.referral.inviter_reward = -3.0: allowed is"),
    (["scenario=default,referral_double", "baseline=nope"], "baseline = 'nope': allowed is one of the strategies"),
    (["experiment=referal_reward"], "no such experiment (did you mean 'referral_reward'?)"),
    (["replicates=3"], "scenario: allowed is scenario=A,B,..."),
])
def test_bad_comparison_input_is_one_line(args, message, capsys):
    code, out, err = _sim(capsys, "compare", *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err, err


def test_a_typo_in_an_experiment_file_names_the_file_and_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("replicates: 3\nstrategies: [default]\nmetrics: [profitt]\n")
    code, _, err = _sim(capsys, "compare", f"experiment={bad}")
    assert code == 2
    assert err.startswith(f"error: {bad}: metrics[0] = 'profitt': allowed is one of") and "did you mean 'profit'?" in err
    bad.write_text("replicates: 3\nstrategies: [default]\nreplicats: 4\n")
    with pytest.raises(sim.ConfigError, match="replicats: unknown key \\(did you mean 'replicates'\\?\\)"):
        load_experiment(str(bad))


@pytest.mark.parametrize("name", sorted(available_experiments()))
def test_every_shipped_experiment_is_valid(name):
    _, spec = load_experiment(name)
    assert spec.description
    if spec.sensitivity is not None or spec.calibration is not None or spec.optimisation is not None:  # a research experiment (tests/test_sensitivity.py, test_calibration.py, test_optimise.py)
        return
    assert len(spec.strategies) >= 2 and spec.sweep is not None
    configs = strategy_configs(spec)  # every strategy composes: scenario names and keys exist
    assert len({repr(sorted(c.mechanisms.items())) + repr(c.graph) + repr(c.adoption) for c in configs.values()}) == len(configs)
    check_sweep(experiment_sweep_overrides(spec))  # every swept value is valid


def test_at_least_three_experiments_ship():
    assert {"referral_reward", "paid_budget", "graph_structure", "recommendations"} <= set(available_experiments())


def test_command_line_settings_replace_an_experiments_sweep_values():
    from sim.experiment import _merge

    _, spec = load_experiment("paid_budget")
    base = experiment_sweep_overrides(spec)
    assert "scenario=default" in base and "seed=range(0,5)" in base
    assert "mechanisms.paid_acquisition.budget_per_1000=0,2.5,5,10,20,40,80" in base
    merged = _merge(base, ["seed=0,1", "population.size=2000"])
    assert merged[-2:] == ["seed=0,1", "population.size=2000"] and "seed=range(0,5)" not in merged

def test_an_effect_is_in_the_metric_s_unit_with_the_relative_change_beside_it():
    from sim.analysis.stats import effect_text

    a = np.array([1000.0, 1010.0, 990.0, 1005.0])
    d = paired_difference(a * 1.1 + np.array([1.0, -1.0, 0.5, -0.5]), a)
    assert re.fullmatch(r"\+100 RMB \[[\d.]+ RMB, [\d.]+ RMB\] \(\+10 % \[[\d.]+ %, [\d.]+ %\]\)", effect_text(d, "RMB")), effect_text(d, "RMB")


def test_compare_prints_the_verdict_of_every_metric_chosen_on_the_command_line(tmp_path, capsys):
    code, out, err = _sim(capsys, "compare", "scenario=default,referral_double", "replicates=2", "workers=1", *TINY,
                          "metrics=users_end,gmv,orders", f"out={tmp_path}")
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if "referral_double" in ln]
    labels = ("users at the horizon", "GMV", "orders")
    assert len(lines) == 3 and all(f" on {label}" in line for label, line in zip(labels, lines)), lines
    diffs = pd.read_parquet(Path(out.strip().splitlines()[-1]) / "differences.parquet")
    assert list(dict.fromkeys(diffs["metric"])) == ["users_end", "gmv", "orders"]


def test_an_unknown_metric_on_the_command_line_lists_the_allowed_ones(tmp_path, capsys):
    code, out, err = _sim(capsys, "compare", "scenario=default,referral_double", "replicates=2", *TINY, "metrics=users_end,foo",
                          f"out={tmp_path}")
    assert code == 2 and err.startswith("error: metrics[1] = 'foo': allowed is one of users_total, users_end,") and err.count("\n") == 1
