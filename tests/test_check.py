"""``sim check``: behaviour that holds passes, behaviour that moves fails with exit 1 and a table."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from sim import cli
from sim.check import Stat, Tolerance, available_baselines, compare_stats, load_baseline, run_checks
from sim.schema import ConfigError

TINY = """\
# a tiny baseline for the tests
experiment: referral_reward
strategies: [default]
seeds: 3
overrides: [population.size=3000, horizon=40]
metrics: [users_total, incentive_cost, orders, k_factor, half_users_day]
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A baseline folder with one small baseline of the referral experiment, filled by --update."""
    folder = tmp_path_factory.mktemp("baselines")
    (folder / "tiny.yaml").write_text(TINY)
    assert cli.main(["check", "--update", "--dir", str(folder), "--workers", "1", "-q"]) == 0
    return folder


def test_update_records_expected_values_and_keeps_the_plan(tiny):
    b = load_baseline("tiny", [tiny])
    assert b.text.startswith("# a tiny baseline for the tests\n")
    assert list(b.spec.expected) == ["default"] and list(b.spec.expected["default"]) == list(b.spec.metrics)
    assert len(b.spec.seeds) == 3 and all(st.n == 3 for st in b.spec.expected["default"].values())
    assert b.spec.expected["default"]["incentive_cost"].mean > 0


def test_unchanged_behaviour_passes_with_exit_0_and_update_changes_nothing(tiny, capsys):
    before = (tiny / "tiny.yaml").read_text()
    assert cli.main(["check", "--dir", str(tiny), "--workers", "1"]) == 0
    assert capsys.readouterr().out.startswith("tiny: ok (5 checks, 1 strategies x 3 seeds)")
    assert cli.main(["check", "--update", "--dir", str(tiny), "--workers", "1", "-q"]) == 0
    assert capsys.readouterr().out.strip().endswith("tiny.yaml: unchanged")
    assert (tiny / "tiny.yaml").read_text() == before


def test_a_changed_referral_reward_fails_with_exit_1_and_a_table_of_what_moved(tiny):
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "check", "--dir", str(tiny), "--workers", "1",
                           "mechanisms.referral.inviter_reward=30"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("tiny: ") and "checks moved" in lines[0]
    assert lines[1].split() == ["strategy", "metric", "baseline", "(mean", "±", "sd)", "now", "(mean", "±", "sd)", "change", "tolerance", "verdict"]
    moved = {ln.split()[1] for ln in lines[2:] if ln.rstrip().endswith("MOVED")}
    assert "incentive_cost" in moved  # triple the inviter's reward: the spend cannot stay put
    assert "behaviour moved" in proc.stderr


def test_the_python_api_returns_a_table_with_a_verdict_per_metric(tiny):
    result = run_checks(["tiny"], overrides=["mechanisms.referral.enabled=false"], dirs=[tiny], workers=1)
    assert not result.passed
    t = result.table.set_index("metric")
    assert t.loc["incentive_cost", "now_mean"] == 0 and t.loc["incentive_cost", "verdict"] == "moved"
    assert list(result.table.columns[:3]) == ["baseline", "strategy", "metric"]
    assert set(result.runs["tiny"]["seed"]) == set(load_baseline("tiny", [tiny]).spec.seeds)


# ---------------------------------------------------------------------------------- the tolerance
def _stat(x) -> Stat:
    return Stat(float(np.mean(x)), float(np.std(x, ddof=1)), len(x))


def test_an_identical_rerun_passes_even_with_zero_spread():
    for s in (Stat(10.0, 0.0, 5), Stat(0.0, 0.0, 5), Stat(-3.5, 1.0, 5)):
        assert compare_stats("profit", s, s, Tolerance())["verdict"] == "ok"


def test_a_fresh_sample_of_the_same_behaviour_rarely_fails():
    """After a library upgrade the draws change but not the model: a new ensemble from the same
    distribution must pass (false alarms well under 1 % per metric with 5 seeds a side)."""
    rng = np.random.default_rng(1)
    fails = sum(compare_stats("users_total", _stat(rng.normal(5000, 50, 5)), _stat(rng.normal(5000, 50, 5)), Tolerance())["verdict"] != "ok"
                for _ in range(4000))
    assert fails / 4000 < 0.005


def test_a_shift_of_a_few_run_to_run_deviations_is_caught():
    rng = np.random.default_rng(2)
    caught = sum(compare_stats("users_total", _stat(rng.normal(5000, 50, 5)), _stat(rng.normal(5000 + 6 * 50, 50, 5)), Tolerance())["verdict"] == "moved"
                 for _ in range(1000))
    assert caught / 1000 > 0.9


def test_the_floor_absorbs_a_rounding_difference_of_a_constant_metric():
    assert compare_stats("incentive_cost", Stat(1000.0, 0.0, 5), Stat(1000.4, 0.0, 5), Tolerance())["verdict"] == "ok"
    assert compare_stats("half_users_day", Stat(30.0, 0.0, 5), Stat(31.0, 0.0, 5), Tolerance())["verdict"] == "ok"
    assert compare_stats("half_users_day", Stat(30.0, 0.0, 5), Stat(33.0, 0.0, 5), Tolerance())["verdict"] == "moved"
    assert compare_stats("retention_d30", Stat(0.1, None, 5), Stat(None, None, 0), Tolerance())["verdict"] == "moved"


# ---------------------------------------------------------------------------------- shipped baselines
@pytest.mark.parametrize("name", sorted(available_baselines()))
def test_every_shipped_baseline_is_valid_and_complete(name):
    b = load_baseline(name)
    assert b.spec.expected, f"{name}: run `sim check --update {name}`"
    assert set(b.spec.expected) == set(b.strategies)
    for strategy, stats in b.spec.expected.items():
        assert set(stats) == set(b.spec.metrics)
        assert all(st.n == len(b.spec.seeds) for st in stats.values())
    sizes = [o for o in b.spec.overrides if o.startswith("population.size=")]
    assert sizes and 5_000 <= int(sizes[0].split("=")[1]) <= 20_000  # cheap enough for every CI run


def test_every_shipped_comparison_experiment_has_a_baseline():
    from sim.plans import PROJECT, load_experiment

    # Sensitivity- and calibration-only experiment files have no strategies to compare.
    experiments = {p.stem for p in (PROJECT / "experiments").glob("*.yaml") if load_experiment(p.stem)[1].strategies}
    assert experiments <= {load_baseline(n).spec.experiment for n in available_baselines()}


@pytest.mark.parametrize("text, message", [
    ("experiment: referral_reward\nseeds: 3\nmetrcs: [profit]\n", "unknown key (did you mean 'metrics'?)"),
    ("experiment: referral_reward\nseeds: 3\nmetrics: [proft]\n", "metrics[0] = 'proft': allowed is one of"),
    ("experiment: referral_reward\nseeds: 3\nstrategies: [defualt]\n", "strategies = 'defualt': allowed are the strategies of experiment referral_reward"),
    ("experiment: referal_reward\nseeds: 3\n", "experiment = 'referal_reward': no such experiment (did you mean 'referral_reward'?)"),
    ("experiment: referral_reward\nseeds: 1\n", "seeds = 1: allowed is at least two seeds"),
    ("experiment: referral_reward\nseeds: 3\ntolerance: {k: -1}\n", "tolerance.k = -1.0: allowed is a number in [0, 1000]"),
    ("experiment: referral_reward\nseeds: [1, 2\n", "not valid YAML"),
    ("experiment: referral_reward\nseeds: 3\n", "no expected values yet; run `sim check --update bad`"),
    ("experiment: referral_reward\nseeds: 3\noverrides: [horizon=0]\nexpected: {default: {}}\n", "horizon = 0: allowed is a number in [1, 36500]"),
    # A spread that is infinite, negative or NaN makes the tolerance infinite (or the comparison
    # false either way): "behaviour holds" whatever moved.
    ("experiment: referral_reward\nseeds: 3\nexpected: {default: {profit: {mean: 1.0, sd: .inf, n: 3}}}\n",
     "expected.default.profit.sd = inf: allowed is a number in [0, 1e+18]"),
    ("experiment: referral_reward\nseeds: 3\nexpected: {default: {profit: {mean: 1.0, sd: -2.0, n: 3}}}\n",
     "expected.default.profit.sd = -2.0: allowed is a number in [0, 1e+18]"),
    ("experiment: referral_reward\nseeds: 3\nexpected: {default: {profit: {mean: 1.0, sd: .nan, n: 3}}}\n",
     "expected.default.profit.sd = nan: allowed is a number in [0, 1e+18]"),
    ("experiment: referral_reward\nseeds: 3\nexpected: {default: {profit: {mean: 1.0, sd: 1.0e+300, n: 3}}}\n",
     "expected.default.profit.sd = 1e+300: allowed is a number in [0, 1e+18]"),
    ("experiment: referral_reward\nseeds: 3\nexpected: {default: {profit: {mean: -.inf, sd: 1.0, n: 3}}}\n",
     "expected.default.profit.mean = -inf: allowed is a number in [-1e+18, 1e+18]"),
    ("experiment: referral_reward\nseeds: [1, 9223372036854775808]\n",
     "seeds[1] = 9223372036854775808: allowed is a number in [0, 9223372036854775807]"),
])
def test_a_bad_baseline_is_one_line_naming_the_file_and_key(tmp_path, capsys, text, message):
    (tmp_path / "bad.yaml").write_text(text)
    assert cli.main(["check", "bad", "--dir", str(tmp_path), "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"error: {tmp_path / 'bad.yaml'}") and message in err, err


def test_an_unknown_baseline_name_suggests_the_closest(capsys):
    assert cli.main(["check", "referal_reward"]) == 2
    assert "no such baseline (did you mean 'referral_reward'?)" in capsys.readouterr().err


def test_update_refuses_overrides():
    with pytest.raises(ConfigError, match="--update takes no key=value overrides"):
        cli.main(["check", "--update", "--debug", "horizon=5"])
