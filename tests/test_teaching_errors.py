"""Warnings and errors that teach: a setting that changes nothing says so, a scenario file without its
package header says how to fix it, a YAML error names its file and line."""

from __future__ import annotations

import re

import pytest

import sim
from sim import cli, config
from sim.schema import ConfigError

SMALL = ["population.size=300", "horizon=2", "-q", "--no-plots"]


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(config, "_WARNED", set())


def test_a_setting_of_a_switched_off_mechanism_is_a_warning(tmp_path, capsys):
    assert cli.main(["run", *SMALL, f"out={tmp_path}", "mechanisms.group_buy.discount=0.2"]) == 0
    err = capsys.readouterr().err
    assert ("warning: mechanisms.group_buy.discount=0.2 changes nothing: group_buy is switched off in this scenario "
            "(add mechanisms.group_buy.enabled=true to use it)") in err.splitlines()


@pytest.mark.parametrize("overrides", [
    ["mechanisms.group_buy.enabled=true", "mechanisms.group_buy.discount=0.2"],  # switched on: it matters
    ["mechanisms.referral.inviter_reward=30"],  # on in the default scenario
    ["mechanisms.group_buy.enabled=false"],  # saying it is off is no mistake
])
def test_settings_that_matter_are_not_warned_about(overrides):
    cfg = sim.compose("default", overrides)
    assert config.settings_of_disabled(cfg, overrides) == []


def test_the_warning_comes_once_a_process_and_only_for_what_was_typed(capsys):
    for value in (0.2, 0.3):
        sim.compose("default", [f"mechanisms.push.per_day={value}"], warn=True)
    sim.compose("default", ["mechanisms.push.annoyance=0.01"])  # (a sweep's compose: quiet)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("warning: mechanisms.push.per_day=0.2 changes nothing: push is switched off")


def test_a_scenario_file_without_its_package_header_says_how_to_fix_it(tmp_path, monkeypatch, capsys):
    (tmp_path / "strategy").mkdir()
    path = tmp_path / "strategy" / "no_header.yaml"
    path.write_text("mechanisms:\n  referral:\n    inviter_reward: 20\n")
    monkeypatch.setenv("SIM_SCENARIO_PATH", str(tmp_path))
    assert cli.main(["run", *SMALL, "scenario=no_header"]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {path}: a scenario file starts with the line '# @package _global_' (its keys are set from "
                   "the top of the configuration); add that line as its first\n")
    path.write_text("# @package _global_\n" + path.read_text())
    assert sim.compose("no_header").mechanisms["referral"].inviter_reward == 20


def test_a_yaml_error_in_a_scenario_file_names_the_file_and_line(tmp_path, monkeypatch):
    (tmp_path / "strategy").mkdir()
    path = tmp_path / "strategy" / "broken.yaml"
    path.write_text("# @package _global_\nmechanisms:\n  referral:\n    inviter_reward: [20\n")
    monkeypatch.setenv("SIM_SCENARIO_PATH", str(tmp_path))
    with pytest.raises(ConfigError) as err:
        sim.compose("broken")
    assert str(err.value).startswith(f"{path}: line ") and "not valid YAML" in str(err.value)


# ------------------------------------------------------------------------------ readable reports
@pytest.mark.parametrize("value, text", [(42786.3, "42,786"), (1_210_000.0, "1,210,000"), (16.25, "16.2"), (2.789, "2.79"),
                                         (0.055, "0.055"), (12, "12"), (-688661.4, "-688,661"), (float("nan"), "–")])
def test_report_numbers_have_separators_and_no_scientific_notation(value, text):
    from sim.report import fmt

    assert fmt(value) == text


def test_a_run_report_says_when_payback_never_happens(tmp_path):
    """A payback day of -1 means the cohort never paid back its acquisition cost: the page says so."""
    from sim.report import NEVER_PAID_BACK

    r = sim.run("default", ["population.size=2000", "horizon=20", "mechanisms.referral.inviter_reward=200"], seed=0)
    path = r.save(tmp_path, plots=False)
    page = (path / "report.html").read_text()
    assert r.summary["payback_day"] == -1 and NEVER_PAID_BACK in page
    assert not re.search(r"\d\.\d+e[+-]\d", page)  # no scientific notation anywhere on the page


def test_a_long_comparison_name_is_cut_after_a_whole_strategy():
    from sim.folders import slug

    name = "default-vs-referral_double-vs-group_buy_team2-vs-flash_sale_weekly-vs-paid_triple"
    assert slug(name, whole_words=True) == "default-vs-referral_double-vs-group_buy_team2-etc"
    assert slug("default-vs-referral_double", whole_words=True) == "default-vs-referral_double"
    assert len(slug("x" * 200, whole_words=True)) <= 64 and slug(name) == name[:60]  # job names keep their rule


def test_a_cohort_curve_stops_where_most_of_its_members_have_not_reached_the_age():
    """Late joiners of a month have not lived long by the horizon: the pooled curve ends where fewer
    than half the members have reached the age, instead of drawing their few early peers as a drop."""
    import pandas as pd

    from sim.plots import retention_by

    rows = [{"channel": "all", "cohort_day": day, "age": age, "users": 100, "retained": 10}
            for day in range(30) for age in range(0, 60 - day)]  # a horizon at day 59: joiners of day d reach 59 - d
    r = retention_by(pd.DataFrame(rows), "all", 90, (0, 30))
    assert r.dropna().index.max() == 45  # 15 of the 30 join days reach age 45 (half), 14 reach 46
    assert (r.dropna() == 0.1).all()
