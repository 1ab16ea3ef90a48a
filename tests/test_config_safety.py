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


LOGGING = "version: 1\nhandlers:\n  evil:\n    class: logging.FileHandler\n    filename: {victim}\n    mode: w\nroot:\n  handlers: [evil]\n"

#: Ways a scenario file can place a config into Hydra's own settings (logging handlers write files,
#: callbacks and launchers name code) other than a top-level ``hydra:`` key.
INTO_HYDRA = [
    ("graph/friends.yaml", "# @package hydra.hydra_logging\n" + LOGGING, "@package hydra.hydra_logging: a scenario file cannot write into Hydra's own settings"),
    ("graph/friends.yaml", "#   @package   _global_.hydra.job_logging\n" + LOGGING, "@package _global_.hydra.job_logging: a scenario file cannot write"),
    ("graph/friends.yaml", "# a logging preset\n# @package hydra\nhydra_logging:\n  version: 1\n", "@package hydra: a scenario file cannot write"),
    ("graph/friends.yaml", "defaults:\n  - /platform@_global_.hydra.hydra_logging: logs\n  - _self_\n", "defaults: /platform@_global_.hydra.hydra_logging: a scenario file cannot select or place configs in Hydra's own settings"),
    ("graph/friends.yaml", "defaults:\n  - override /hydra/job_logging: disabled\n", "defaults: override /hydra/job_logging: a scenario file cannot select"),
    ("graph/friends.yaml", "defaults:\n  - /hydra/help/default\n", "defaults: /hydra/help/default: a scenario file cannot select"),
    # Hydra honours the last of several leading package lines
    ("graph/friends.yaml", "# @package _global_\n# @package hydra\njob_logging:\n  version: 1\n", "@package hydra: a scenario file cannot write"),
    ("graph/friends.yaml", "# @package _global_\ndefaults:\n  - /graph: ../../../../tmp/x\n", "defaults: ../../../../tmp/x: a defaults list names configs of the scenario folders only"),
]


@pytest.mark.parametrize("override, message", [
    ("+mechanisms/referral=../../../../../tmp/outside/evil", "+mechanisms/referral"),
    ("graph=../../tmp/outside/evil", "graph = '../../tmp/outside/evil': a config group option names a file of the scenario folders"),
    ("graph=er,../../x", "graph = 'er,../../x'"),
    ("hydra/launcher=../../x", "hydra/launcher = '../../x'"),
])
def test_group_options_cannot_climb_out_of_the_scenario_folders(override, message):
    """Hydra joins ``group/option`` to its search path as given: ``..`` would read (and apply, Hydra
    settings included) a YAML file anywhere, around every check of the scenario folders."""
    from sim.config import check_no_code
    from sim.experiment import HYDRA_SWEEP_SETTINGS, _check_launch

    with pytest.raises(ConfigError, match="no '..'"):
        check_no_code([override], HYDRA_SWEEP_SETTINGS)
    with pytest.raises(ConfigError, match="no '..'"):
        _check_launch([override, "seed=1,2"], []) if not override.startswith("hydra") else _check_launch(["seed=1,2"], [override])


@pytest.mark.parametrize("data, message", [
    ({"strategies": ["default"], "sweep": {"params": {"graph": ["er", "../../../tmp/x"]}}}, "no '..'"),
    ({"sensitivity": {"scenario": "default", "params": {"hydra.job_logging.root.level": [0, 1], "horizon": [10, 20]},
                      "metrics": ["profit"]}},
     "Hydra setting not allowed"),
    ({"strategies": ["default"], "overrides": ["hydra.launcher.n_jobs={_target_:os.system}"]}, "_target_ keys are not allowed"),
])
def test_experiment_files_are_checked_in_every_section(data, message):
    from sim.plans import experiment_spec

    with pytest.raises(ConfigError, match=message):
        experiment_spec(data, "exp.yaml")


def test_a_value_that_names_code_is_refused_even_under_allowed_launcher_settings():
    from sim.config import check_no_code
    from sim.experiment import HYDRA_SWEEP_SETTINGS

    with pytest.raises(ConfigError, match=r"^hydra.launcher.n_jobs: a setting cannot name code to import or run \(_\w+_ keys are not allowed\)$"):
        check_no_code(["hydra.launcher.n_jobs={_target_:os.system,_args_:[id]}"], HYDRA_SWEEP_SETTINGS)


@pytest.mark.parametrize("where, text, message", INTO_HYDRA)
def test_scenario_files_that_write_into_hydras_settings_are_refused(tmp_path, monkeypatch, where, text, message):
    root = tmp_path / "scenarios"
    (root / where).parent.mkdir(parents=True)
    (root / where).write_text(text.format(victim=tmp_path / "victim.txt"))
    (root / "platform").mkdir(exist_ok=True)
    (root / "platform" / "logs.yaml").write_text(LOGGING.format(victim=tmp_path / "victim.txt"))
    monkeypatch.setenv("SIM_SCENARIO_PATH", str(root))
    with pytest.raises(ConfigError) as err:
        sim.compose("default", ["population.size=500"])  # nobody selected the file: refused all the same
    assert "\n" not in str(err.value) and str(err.value).startswith(f"{root / where}: {message}"), str(err.value)


def test_a_sweep_selecting_a_logging_file_leaves_other_files_alone(tmp_path):
    """The attack as found: a scenario file with a ``hydra.hydra_logging`` package header, selected in
    a multirun, emptied any writable file (its handler opened it with mode w) and exited 0."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    root = tmp_path / "scenarios"
    (root / "graph").mkdir(parents=True)
    (root / "graph" / "friends.yaml").write_text(INTO_HYDRA[0][1].format(victim=victim))
    env = {"PATH": "/usr/bin:/bin", "SIM_SCENARIO_PATH": str(root)}
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "run", "-m", "-q", "graph=friends", "population.size=500", "horizon=5",
                           "seed=0,1", f"out={tmp_path / 'out'}"], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "@package hydra.hydra_logging: a scenario file cannot write into Hydra's own settings" in proc.stderr
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("override", [
    "graph@hydra.hydra_logging=er", "+graph@_global_.hydra.job_logging=er", "platform@hydra=share_group_buy",
    "hydra/launcher@hydra.hydra_logging=joblib", "~hydra.callbacks.collect=", "hydra/job_logging=disabled",
])
def test_overrides_that_place_configs_into_hydras_settings_are_refused(override):
    with pytest.raises(ConfigError, match=r"Hydra setting not allowed"):
        sim.compose("default", [override, "population.size=500"])
    from sim.config import check_no_code
    from sim.experiment import HYDRA_SWEEP_SETTINGS

    with pytest.raises(ConfigError, match=r"Hydra setting not allowed"):
        check_no_code([override], HYDRA_SWEEP_SETTINGS)  # not even from the command line of a sweep


@pytest.mark.parametrize("args, message", [
    (["+hydra.callbacks.x._target_=evilmod.boom"], "hydra.callbacks.x._target_: a setting cannot name code"),
    (["+hydra.callbacks.x.mode=w"], "hydra.callbacks.x.mode: Hydra setting not allowed"),
    (["hydra.job_logging.handlers.evil.filename=/tmp/x"], "hydra.job_logging.handlers.evil.filename: Hydra setting not allowed"),
    (["graph@hydra.hydra_logging=er"], "graph@hydra.hydra_logging: Hydra setting not allowed"),
])
def test_sensitivity_checks_hydra_settings_as_sweeps_do(evil, tmp_path, capsys, args, message):
    """``sim sensitivity`` hands launcher settings to a Hydra multirun: the same door as ``sim run -m``."""
    path = tmp_path / "exp.yaml"
    path.write_text("overrides: [population.size=300, horizon=5]\nsensitivity:\n  scenario: default\n  samples: 2\n"
                    "  params: {mechanisms.referral.inviter_reward: [0, 10], behaviour.churn.base_hazard: [0.3, 0.6]}\n"
                    "  metrics: [users_total]\n")
    code = cli.main(["sensitivity", f"experiment={path}", *args, f"out={tmp_path / 'out'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and message in err, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))


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


# ------------------------------------------------------------------------------ hostile input files
def alias_bomb(levels: int = 9) -> str:
    """A "billion laughs" document: a few hundred bytes whose aliases expand to 9**levels values."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{k}: &l{k} [" + ",".join([f"*l{k - 1}"] * 9) + "]" for k in range(1, levels)]
    return "\n".join(lines) + f"\nhorizon: *l{levels - 1}\n"


HOSTILE_YAML = [
    (alias_bomb(), "not valid YAML (more than 200,000 values once its aliases are expanded"),
    ("a: " + "[" * 10_000 + "]" * 10_000 + "\n", "not valid YAML (nested deeper than 100 levels)"),
    ("horizon: 5\nplatform:\n  name: caf\xe9\n".encode("latin-1"), "line 3: byte 0xe9 is not valid UTF-8; allowed is UTF-8 or ASCII text"),
    ("horizon: 5\n".encode("utf-16"), "the file is UTF-16 text; allowed is UTF-8 or ASCII"),
]


def _write(path, content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)


def _one_line_exit_2(args, capsys, message, timeout_s: float = 30) -> str:
    import time

    t0 = time.perf_counter()
    code = cli.main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and message in err and len(err) < 400, err[:1000]
    assert time.perf_counter() - t0 < timeout_s
    return err


@pytest.mark.parametrize("content, message", HOSTILE_YAML, ids=["alias_bomb", "deep", "latin1", "utf16"])
def test_a_hostile_config_file_is_one_short_line(tmp_path, capsys, content, message):
    path = tmp_path / "config.yaml"
    _write(path, content)
    err = _one_line_exit_2(["run", "-q", "--config", str(path), f"out={tmp_path / 'out'}"], capsys, message)
    assert err.startswith(f"error: {path}: ")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content, message", HOSTILE_YAML, ids=["alias_bomb", "deep", "latin1", "utf16"])
def test_a_hostile_experiment_or_baseline_file_is_one_short_line(tmp_path, capsys, content, message):
    path = tmp_path / "exp.yaml"
    _write(path, content)
    _one_line_exit_2(["compare", f"experiment={path}", f"out={tmp_path / 'out'}"], capsys, message)
    _one_line_exit_2(["check", str(path)], capsys, message)


@pytest.mark.parametrize("content, message", HOSTILE_YAML, ids=["alias_bomb", "deep", "latin1", "utf16"])
def test_a_hostile_scenario_file_is_refused_even_unselected(tmp_path, monkeypatch, content, message):
    """Regular files keep the scenario folder's rule: every file is checked, selected or not."""
    _write(tmp_path / "sc" / "named" / "bad.yaml", content)
    monkeypatch.setenv("SIM_SCENARIO_PATH", str(tmp_path / "sc"))
    with pytest.raises(ConfigError) as err:
        sim.compose("default", ["population.size=500"])
    assert "\n" not in str(err.value) and message in str(err.value) and len(str(err.value)) < 400


def test_an_alias_bomb_in_a_value_is_excerpted_not_expanded(tmp_path, capsys):
    """A bomb small enough to load still never reaches an error message whole."""
    path = tmp_path / "config.yaml"
    levels = ['&l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"&l{k} [" + ",".join([f"*l{k - 1}"] * 9) + "]" for k in range(1, 5)]
    path.write_text("horizon: [" + ", ".join(levels) + "]\n")  # about 66,000 values: allowed, and wrong for horizon
    err = _one_line_exit_2(["run", "-q", "--config", str(path), f"out={tmp_path / 'out'}"], capsys, "horizon = [['lol'")
    assert len(err) < 200


def _special_files(folder):
    """Files named *.yaml that must never be opened: a FIFO, a link to /dev/zero, a 2 GB sparse file."""
    import os

    (folder / "named").mkdir(parents=True)
    (folder / "graph").mkdir()
    (folder / "platform").mkdir()
    os.mkfifo(folder / "named" / "pipe.yaml")
    (folder / "graph" / "zero.yaml").symlink_to("/dev/zero")
    with open(folder / "platform" / "huge.yaml", "wb") as fh:
        fh.truncate(2 * 10**9)


def test_unselected_special_files_in_a_scenario_folder_are_ignored(tmp_path, monkeypatch, capsys):
    _special_files(tmp_path / "sc")
    (tmp_path / "sc" / "named" / "fine.yaml").write_text("# @package _global_\n# A fine scenario.\nhorizon: 7\n")
    monkeypatch.setenv("SIM_SCENARIO_PATH", str(tmp_path / "sc"))
    assert sim.compose("fine", ["population.size=500"]).horizon == 7
    assert sim.compose("default", ["population.size=500"]).scenario == "default"
    assert cli.main(["scenarios"]) == 0
    out = capsys.readouterr().out
    assert "A fine scenario." in out and "pipe" in out and "cannot be read" in out


@pytest.mark.parametrize("selection, where, message", [
    (["scenario=pipe"], "named/pipe.yaml", "a FIFO (named pipe), not a regular file"),
    (["graph=zero"], "graph/zero.yaml", "a character device, not a regular file"),
    (["scenario=huge"], "platform/huge.yaml", "2.0 GB, larger than the 1.0 MB allowed"),
    (["scenario=uses_zero"], "graph/zero.yaml", "a character device, not a regular file"),
])
def test_a_selected_special_file_is_refused_in_one_line(tmp_path, monkeypatch, selection, where, message):
    _special_files(tmp_path / "sc")
    (tmp_path / "sc" / "named" / "uses_zero.yaml").write_text("# @package _global_\ndefaults:\n  - override /graph: zero\n")
    monkeypatch.setenv("SIM_SCENARIO_PATH", str(tmp_path / "sc"))
    with pytest.raises(ConfigError) as err:
        sim.compose(None, [*selection, "population.size=500"])
    assert str(err.value) == f"{tmp_path / 'sc' / where}: {message}; a scenario file must be a regular YAML file of at most 1 MB"


def test_a_sweep_selecting_a_fifo_is_refused_before_launching(tmp_path, monkeypatch, capsys):
    _special_files(tmp_path / "sc")
    monkeypatch.setenv("SIM_SCENARIO_PATH", str(tmp_path / "sc"))
    _one_line_exit_2(["run", "-m", "-q", "named=pipe", "population.size=500", "horizon=5", "seed=0,1", f"out={tmp_path / 'out'}"],
                     capsys, "named/pipe.yaml: a FIFO (named pipe), not a regular file")


@pytest.mark.parametrize("make, message", [
    (lambda p: __import__("os").mkfifo(p), "a FIFO (named pipe), not a regular file"),
    (lambda p: p.symlink_to("/dev/zero"), "a character device, not a regular file"),
])
def test_a_special_file_named_as_config_or_experiment_is_not_a_regular_file(tmp_path, capsys, make, message):
    path = tmp_path / "x.yaml"
    make(path)
    _one_line_exit_2(["run", "--config", str(path)], capsys, f"{path}: {message}")
    _one_line_exit_2(["compare", f"experiment={path}"], capsys, f"{path}: {message}")
    _one_line_exit_2(["check", str(path)], capsys, f"{path}: {message}")
