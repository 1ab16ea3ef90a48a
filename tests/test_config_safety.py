"""A configuration names values, never code: no config file, override or experiment can make the
program import or run anything (Hydra ``_target_`` keys, ``hydra.callbacks``, logging factories,
YAML python tags, OmegaConf resolvers). Every row below tries, and must end in one clear line with
nothing executed."""

from __future__ import annotations

import subprocess
import sys

import pytest

import sim
from sim import cli
from sim.schema import ConfigError

EVIL = '''
import os
def boom(*args, **kwargs):
    open(os.environ["SIM_TEST_MARK"], "a").write("ran\\n")
    return boom
'''


@pytest.fixture
def evil(tmp_path, monkeypatch):
    """An importable module whose ``boom`` leaves a mark when anything calls it."""
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "evilmod.py").write_text(EVIL)
    monkeypatch.syspath_prepend(str(tmp_path / "mod"))
    mark = tmp_path / "MARK"
    monkeypatch.setenv("SIM_TEST_MARK", str(mark))
    yield tmp_path
    assert not mark.exists(), "a configuration made the program run code"


@pytest.mark.parametrize("overrides, message", [
    (["+platform._target_=evilmod.boom"], "platform._target_: a setting cannot name code to import or run"),
    (["+_target_=evilmod.boom"], "_target_: a setting cannot name code to import or run"),
    (["+mechanisms.referral._args_=[1]"], "mechanisms.referral._args_: a setting cannot name code"),
    (["hydra.callbacks.x._target_=evilmod.boom"], "hydra.callbacks.x._target_: a setting cannot name code"),
    (["+hydra.callbacks.x.y=1"], "hydra.callbacks.x.y: Hydra setting not allowed"),
    (["hydra.job_logging.root.level=INFO"], "hydra.job_logging.root.level: Hydra setting not allowed"),
    (["platform.name=${foo:bar}"], "platform.name: Unsupported interpolation type foo"),
    (["platform.name=${oc.decode:'__import__(\"evilmod\").boom()'}"], "platform.name: GrammarParseError"),
    (["platform.name=${oc.env:SIM_TEST_NOT_SET}"], "platform.name: KeyError raised while resolving interpolation"),
    (["platform.name=${hydra:runtime.cwd}"], "platform.name: ValueError raised while resolving interpolation"),
])
def test_overrides_that_name_code_are_refused(evil, overrides, message):
    with pytest.raises(ConfigError) as err:
        sim.compose("default", [*overrides, "population.size=500"])
    assert "\n" not in str(err.value) and str(err.value).startswith(message), str(err.value)


def test_an_environment_variable_is_a_value_and_is_validated(evil, monkeypatch):
    monkeypatch.setenv("SIM_TEST_NAME", "__import__('evilmod').boom()")
    cfg = sim.compose("default", ["platform.name=${oc.env:SIM_TEST_NAME}"])
    assert cfg.platform.name == "__import__('evilmod').boom()"  # text, never evaluated
    monkeypatch.setenv("SIM_TEST_SIZE", "1234")
    with pytest.raises(ConfigError, match=r"^population.size = '1234': allowed is a whole number$"):
        sim.compose("default", ["population.size=${oc.env:SIM_TEST_SIZE}"])


SCENARIOS = [
    ("named/evil.yaml", "# @package _global_\nhydra:\n  callbacks:\n    evil:\n      _target_: evilmod.boom\n",
     "hydra: Hydra's own settings are not allowed in a scenario file"),
    ("named/evil.yaml", "# @package _global_\nmechanisms:\n  referral:\n    _target_: evilmod.boom\n",
     "mechanisms.referral._target_: a config file cannot name code to import or run"),
    ("named/evil.yaml", "# @package _global_\nplatform:\n  name: !!python/object/apply:evilmod.boom []\n",
     "line 3: not valid YAML (could not determine a constructor for the tag"),
    ("hydra/launcher/evil.yaml", "_target_: evilmod.boom\n", "scenario folders cannot hold Hydra's own config groups"),
]


@pytest.mark.parametrize("where, text, message", SCENARIOS)
def test_scenario_files_that_name_code_are_refused(evil, monkeypatch, where, text, message):
    root = evil / "scenarios"
    (root / where).parent.mkdir(parents=True)
    (root / where).write_text(text)
    (root / "named" / "evil.yaml").parent.mkdir(parents=True, exist_ok=True)
    if not (root / "named" / "evil.yaml").exists():
        (root / "named" / "evil.yaml").write_text("# @package _global_\nhorizon: 5\n")
    monkeypatch.setenv("SIM_SCENARIO_PATH", str(root))
    with pytest.raises(ConfigError) as err:
        sim.compose("evil", ["population.size=500"])
    assert "\n" not in str(err.value) and message in str(err.value), str(err.value)


def test_a_sweep_refuses_a_scenario_file_with_hydra_callbacks_before_launching(evil, tmp_path):
    """The one path where Hydra itself would instantiate a config file's callbacks: a multirun that
    selects a scenario file as a Hydra group option (``named=evil``)."""
    root = evil / "scenarios"
    (root / "named").mkdir(parents=True)
    (root / "named" / "evil.yaml").write_text(SCENARIOS[0][1])
    env = {"PATH": "/usr/bin:/bin", "SIM_SCENARIO_PATH": str(root), "PYTHONPATH": str(evil / "mod"), "SIM_TEST_MARK": str(evil / "MARK")}
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "run", "-m", "-q", "named=evil", "population.size=500", "horizon=5",
                           "seed=0,1", f"out={tmp_path / 'out'}"], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().startswith("error: ") and "hydra: Hydra's own settings are not allowed" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["hydra.callbacks.x._target_=evilmod.boom"], "hydra.callbacks.x._target_: a setting cannot name code"),
    (["hydra.launcher._target_=evilmod.boom"], "hydra.launcher._target_: a setting cannot name code"),
    (["hydra.hydra_logging.handlers.console.()=evilmod.boom"], "a setting cannot name code"),
    (["hydra.searchpath=[file:///tmp]"], "hydra.searchpath: Hydra setting not allowed"),
])
def test_sweep_overrides_that_name_code_are_refused(evil, tmp_path, capsys, args, message):
    code = cli.main(["run", "-m", "-q", *args, "population.size=500", "horizon=5", "seed=0,1", f"out={tmp_path / 'out'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and message in err, err


@pytest.mark.parametrize("text, message", [
    ("strategies: [default]\noverrides: [hydra.callbacks.x._target_=evilmod.boom]\n", "a setting cannot name code"),
    ("strategies: {a: {scenario: default, overrides: [+platform._target_=evilmod.boom]}}\n", "platform._target_: a setting cannot name code"),
    ("strategies: [default]\nsweep:\n  params:\n    hydra/launcher: [evil]\n", "hydra/launcher: Hydra setting not allowed"),
    ("strategies: [default]\nseed: !!python/object/apply:evilmod.boom []\n", "not valid YAML"),
])
def test_experiment_files_that_name_code_are_refused(evil, tmp_path, capsys, text, message):
    path = tmp_path / "evil.yaml"
    path.write_text(text)
    code = cli.main(["compare", f"experiment={path}", "replicates=2", "population.size=500", "horizon=5", f"out={tmp_path / 'out'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and message in err, err


@pytest.mark.parametrize("name, text, message", [
    ("config.yaml", "platform: !!python/object/apply:evilmod.boom []\n", "not valid YAML"),
    ("config.yaml", "_target_: evilmod.boom\n", "_target_: unknown key"),
    ("baseline.yaml", "experiment: !!python/object/apply:evilmod.boom []\n", "not valid YAML"),
])
def test_resolved_configs_and_baselines_are_plain_data(evil, tmp_path, name, text, message):
    from sim.check import load_baseline
    from sim.config import load_yaml

    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        (load_yaml if name == "config.yaml" else load_baseline)(path)
