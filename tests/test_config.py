"""Configuration is validated at the edge: one line naming the key, the value and what is allowed."""

from __future__ import annotations

import subprocess
import sys

import pytest

import sim
from sim.config import SimConfig, available_scenarios, compose, validate
from sim.schema import ConfigError, to_plain


@pytest.mark.parametrize("override, expected", [
    ("mechanisms.referal.inviter_reward=3", "mechanisms.referal: unknown key (did you mean 'referral'?)"),
    ("mechanisms.referral.inviter_rewrd=3", "mechanisms.referral.inviter_rewrd: unknown key (did you mean 'inviter_reward'?)"),
    ("mechanisms.referral.inviter_reward=-3", "mechanisms.referral.inviter_reward = -3.0: allowed is a number in [0, 10000]"),
    ("horizon=0", "horizon = 0: allowed is a number in [1, 36500]"),
    ("population.size=-5", "population.size = -5: allowed is a number in [2,"),
    ("population.size=abc", "population.size = 'abc': allowed is a whole number"),
    ("population.size=1.5", "population.size = 1.5: allowed is a whole number"),
    ("adoption.external_rate=1.5", "adoption.external_rate = 1.5: allowed is a number in [0, 1]"),
    ("adoption.contagion=compex", "adoption.contagion = 'compex': allowed is one of simple, complex (did you mean 'complex'?)"),
    ("mechanisms.referral.enabled=maybe", "mechanisms.referral.enabled = 'maybe': allowed is true or false"),
    ("population.segments.deal_seeker.share=0.9", "population.segments = 1.55: segment shares must sum to 1"),
    ("population.segments.bargain_hunter.share=0.1", "population.segments.bargain_hunter.share: unknown segment 'bargain_hunter'"),
    ("behaviour.churn.base_hazard=nan", "behaviour.churn.base_hazard = nan: allowed is a number in [0, 20]"),
    ("graph=bb", "graph = 'bb': no such option"),
    ("scenario=defualt", "scenario = 'defualt': no such scenario (did you mean 'default'?)"),
    ("graph=edgelist", "graph.path = null: graph.kind=edgelist needs graph.path"),
    ("graph=edgelist graph.path=/no/such/file.txt", "graph.path = '/no/such/file.txt': no such file"),
    ("behaviour.churn.churn_after_days=5", "behaviour.churn.churn_after_days = 5: must exceed behaviour.churn.dormant_after_days (14)"),
    ("foo", "override 'foo': allowed is key=value"),
    ("graph=lattice graph.avg_degree=5", "graph.avg_degree = 5.0: graph.kind=lattice allows 4 (square), 6 (triangular) or 8"),
    ("graph=complete adoption.join_notice=0.5", "adoption.join_notice = 0.5: graph.kind=complete allows only 0"),
    ("adoption.seeding=cluster", "adoption.seeding = 'cluster': allowed is one of random, neighbourhood"),
])
def test_bad_values_give_one_line_naming_key_value_and_range(override, expected):
    with pytest.raises(ConfigError) as err:
        sim.compose("default", override.split())
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(expected), message


def test_defaults_validate_and_round_trip():
    cfg = compose("default")
    assert isinstance(cfg, SimConfig)
    assert validate(to_plain(cfg)) == cfg


def test_every_shipped_scenario_composes_and_validates():
    for name in available_scenarios():
        cfg = compose(name)
        assert cfg.scenario == name


def test_scenario_names_are_unique_across_groups():
    from sim.config import SCENARIO_GROUPS, scenario_dirs

    seen = {}
    for group in SCENARIO_GROUPS:
        for path in (scenario_dirs()[0] / group).glob("*.yaml"):
            if path.stem != "none":
                assert path.stem not in seen, f"{path.stem} in both {seen.get(path.stem)} and {group}"
                seen[path.stem] = group


def test_overrides_apply_on_top_of_the_scenario():
    cfg = compose("default", ["mechanisms.referral.inviter_reward=25", "graph=ws", "seed=7"])
    assert cfg.mechanisms["referral"].inviter_reward == 25
    assert cfg.graph.kind == "ws"
    assert cfg.seed == 7
    assert cfg.mechanisms["referral"].enabled  # from the scenario


def test_unknown_key_in_a_yaml_file_is_named(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("horizon: 10\npopulaton:\n  size: 100\n")
    with pytest.raises(ConfigError, match=r"^populaton: unknown key \(did you mean 'population'\?\)$"):
        sim.config.load_yaml(bad)


def test_cli_bad_input_exits_2_with_one_line_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "run", "horizon=0", f"out={tmp_path}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: horizon = 0: allowed is a number in [1, 36500] (days)"
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_cli_debug_shows_the_traceback():
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "config", "--debug", "horizon=0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_cli_options_and_overrides_mix_in_any_order():
    from sim.cli import _overrides_last

    assert _overrides_last(["run", "a=1", "--no-plots", "b=2", "-q"]) == ["run", "--no-plots", "-q", "a=1", "b=2"]
    assert _overrides_last(["run", "--config", "x.yaml", "seed=3"]) == ["run", "--config", "x.yaml", "seed=3"]


def test_a_scenario_describes_itself_with_the_comment_atop_its_file(tmp_path, monkeypatch):
    from sim.config import scenario_description

    (tmp_path / "strategy").mkdir()
    (tmp_path / "strategy" / "half_rewards.yaml").write_text(
        "# @package _global_\n# Half the referral rewards. Fewer users,\n#   but cheaper ones.\n"
        "defaults:\n  - override /named: default\n# a comment further down is not the description\n")
    monkeypatch.setenv("SIM_SCENARIO_PATH", str(tmp_path))
    assert scenario_description("half_rewards") == "Half the referral rewards. Fewer users, but cheaper ones."
    assert scenario_description("half_rewards", brief=True) == "Half the referral rewards."
    for name in available_scenarios():  # every shipped scenario says what it is
        full, brief = scenario_description(name), scenario_description(name, brief=True)
        assert brief and full.startswith(brief) and "@package" not in full, name
    with pytest.raises(ConfigError, match="scenario = 'half_reward': no such scenario .did you mean 'half_rewards'"):
        scenario_description("half_reward")


def test_a_config_path_with_an_equals_sign_is_a_path_not_an_override(tmp_path, capsys):
    from sim import cli

    folder = tmp_path / "runs" / "a=b"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("horizon: 0\n")
    assert cli.main(["run", "--config", str(folder / "config.yaml"), "--no-plots", "seed=2"]) == 2
    assert capsys.readouterr().err.strip() == "error: horizon = 0: allowed is a number in [1, 36500] (days)"


def test_an_empty_scenario_name_is_refused():
    with pytest.raises(ConfigError, match=r"^scenario = '': allowed is the name of a scenario"):
        sim.compose(None, ["scenario="])


@pytest.mark.parametrize("content, message", [
    (b"0 1\n1 99999999999999999999\n", ":2: node id 99999999999999999999 is out of range; allowed is [0, 200,000,000)"),
    (b"0 1\n1 2.5\n", ":2: node id '2.5' is not a whole number, but other ids are (line 1)"),
    (b"0 1\n-1 2\n", ":2: node id out of range in '-1' '2'; allowed is [0, 200,000,000)"),
    (b"# nodes: 99999999999999\n0 1\n", ":1: # nodes: 99999999999999: allowed is at most 200,000,000"),
    (b"0 1\n1 \xff2\n", ":2: byte 0xff is not valid UTF-8; allowed is UTF-8 or ASCII text"),
    ("0 1\n1 2\n".encode("utf-16"), "': the file is UTF-16 text; allowed is UTF-8 or ASCII"),
    ("0 1\n1 2\n".encode("utf-16-le"), "': the file is UTF-16 text; allowed is UTF-8 or ASCII"),
], ids=["int64_overflow", "not_integer", "negative", "huge_header", "bad_utf8", "utf16_bom", "utf16_le"])
def test_a_bad_edge_list_is_one_line(tmp_path, capsys, content, message):
    from sim import cli

    path = tmp_path / "friends.txt"
    path.write_bytes(content)
    code = cli.main(["run", "-q", "--no-plots", "graph=edgelist", f"graph.path={path}", "horizon=3", f"out={tmp_path / 'out'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and message in err and str(path) in err, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("make, message", [
    (lambda p: __import__("os").mkfifo(p), "a FIFO (named pipe), not a regular file; allowed is an edge-list file"),
    (lambda p: p.symlink_to("/dev/zero"), "a character device, not a regular file; allowed is an edge-list file"),
])
def test_an_edge_list_that_is_not_a_regular_file_is_named_so(tmp_path, make, message):
    path = tmp_path / "friends.txt"
    make(path)
    with pytest.raises(ConfigError) as err:
        sim.compose("default", ["graph=edgelist", f"graph.path={path}"])
    assert str(err.value) == f"graph.path = {str(path)!r}: {message}"


@pytest.mark.parametrize("override, expected", [
    ("behaviour.purchase.initial_need=1e308", "behaviour.purchase.initial_need = 1e+308: allowed is a number in [0, 1000] (orders)"),
    ("mechanisms.referral.reward_half_rmb=inf", "mechanisms.referral.reward_half_rmb = inf: allowed is a number in (0, 1000000] (RMB)"),
    ("population.segments.deal_seeker.basket_rmb=1e300", "population.segments.deal_seeker.basket_rmb = 1e+300: allowed is a number in (0, 1000000]"),
    ("adoption.seed_fraction=1.5", "adoption.seed_fraction = 1.5: allowed is a number in [0, 1] (fraction of the market)"),
    ("adoption.seed_users=50", "adoption.seed_users: renamed to adoption.seed_fraction, a share of the market"),
    ("mechanisms.paid_acquisition.daily_budget=500", "mechanisms.paid_acquisition.daily_budget: renamed to budget_per_1000"),
    ("platform.name=café", "platform.name = 'café': text with non-ASCII characters must be quoted, as in \"platform.name='café'\""),
    ("platform.name=拼多多", "platform.name = '拼多多': text with non-ASCII characters must be quoted"),
])
def test_values_the_schema_let_through_are_refused(override, expected):
    with pytest.raises(ConfigError) as err:
        sim.compose("default", ["population.size=3000", override])
    assert str(err.value).startswith(expected) and "\n" not in str(err.value), str(err.value)


def test_a_non_ascii_override_on_a_resolved_config_says_to_quote(tmp_path, capsys):
    from sim import cli

    path = tmp_path / "config.yaml"
    path.write_text("horizon: 3\n")
    assert cli.main(["run", "--config", str(path), "platform.name=拼多多"]) == 2
    assert "text with non-ASCII characters must be quoted" in capsys.readouterr().err
    assert sim.compose("default", ["platform.name='拼多多'"]).platform.name == "拼多多"  # quoted, as the message says
