"""Hydra's compositions kept between processes (sim.compositions): what is read back is what Hydra
composes, anything that changes the inputs composes anew, and the cache never makes a command fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sim import compositions
from sim.config import ConfigError, available_scenarios, compose_dict

OVERRIDES = [[], ["population.size=2000", "horizon=30"], ["graph=er", "mechanisms.referral.enabled=true"],
             ["mechanisms.referral.tier_multipliers=[1.0,1.5]"]]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SIM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "compositions"


def _kept(cache) -> list:
    return sorted(cache.glob("*.json")) if cache.exists() else []


def test_what_is_read_back_is_what_hydra_composes_for_every_scenario(cache):
    cases = [(name, []) for name in sorted(available_scenarios())] + [("default", o) for o in OVERRIDES[1:]]
    for k, (name, overrides) in enumerate(cases, start=1):
        composed = compose_dict(name, overrides)  # (a miss: Hydra composes, and it is kept)
        assert len(_kept(cache)) == k, (name, overrides)
        assert compose_dict(name, overrides) == composed, (name, overrides)  # (read back)
        assert len(_kept(cache)) == k


def test_a_hit_does_not_import_hydra(cache):
    code = ("import sys; from sim.config import compose; compose('pinduoduo', ['horizon=30']); "
            "print('hydra' in sys.modules, 'omegaconf' in sys.modules)")
    env = {**os.environ, "SIM_CACHE_DIR": str(cache.parent)}
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert first.stdout.split() == ["True", "True"]
    assert second.stdout.split() == ["False", "False"]


def _scenario(root, body: str) -> None:
    (root / "strategy").mkdir(parents=True, exist_ok=True)
    (root / "strategy" / "mine.yaml").write_text("# @package _global_\n# Mine.\ndefaults:\n  - override /named: default\n" + body)


def test_a_changed_scenario_file_composes_anew(cache, tmp_path, monkeypatch):
    root = tmp_path / "scenarios"
    _scenario(root, "population:\n  size: 1234\n")
    monkeypatch.setenv("SIM_SCENARIO_PATH", str(root))
    assert compose_dict("mine")["population"]["size"] == 1234
    _scenario(root, "population:\n  size: 4321\n")
    assert compose_dict("mine")["population"]["size"] == 4321
    (root / "graph").mkdir()  # (a new file anywhere in the roots: a new key too)
    (root / "graph" / "tiny.yaml").write_text("kind: er\n")
    assert compose_dict("mine")["population"]["size"] == 4321
    assert len(_kept(cache)) == 3


def test_a_resolver_is_resolved_each_time_and_never_kept(cache, tmp_path, monkeypatch):
    root = tmp_path / "scenarios"
    _scenario(root, "out: ${oc.env:SIM_TEST_NOTE}\n")
    monkeypatch.setenv("SIM_SCENARIO_PATH", str(root))
    monkeypatch.setenv("SIM_TEST_NOTE", "one")
    assert compose_dict("mine")["out"] == "one"
    monkeypatch.setenv("SIM_TEST_NOTE", "two")
    assert compose_dict("mine")["out"] == "two"
    assert _kept(cache) == []
    assert compositions.key([], ["population.size=${oc.env:N}"], {}) is None


def test_a_refused_composition_is_refused_again_and_not_kept(cache):
    for _ in range(2):
        with pytest.raises(ConfigError, match="graph"):
            compose_dict("default", ["graph=no_such_graph"])
    assert _kept(cache) == []


def test_a_broken_or_foreign_file_is_a_miss_and_is_replaced(cache):
    compose_dict("default")
    (kept,) = _kept(cache)
    for text in ["{not json", json.dumps({"key": "another", "config": {"seed": 5}}), json.dumps([1, 2])]:
        kept.write_text(text)
        assert compose_dict("default")["seed"] == 0
        assert json.loads(kept.read_text())["key"] == kept.stem


def test_a_cache_that_cannot_be_written_never_fails_a_command(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("SIM_CACHE_DIR", str(blocker))  # (compositions/ cannot be made under a file)
    assert compose_dict("default", ["horizon=30"])["horizon"] == 30
    monkeypatch.setenv("SIM_CACHE_DIR", "off")
    assert compositions.folder() is None
    assert compose_dict("default", ["horizon=31"])["horizon"] == 31


def test_the_oldest_compositions_go_beyond_the_limit(cache, monkeypatch):
    monkeypatch.setattr(compositions, "KEEP", 3)
    for horizon in range(30, 36):
        compose_dict("default", [f"horizon={horizon}"])
    assert len(_kept(cache)) == 3
    assert compose_dict("default", ["horizon=35"])["horizon"] == 35


def test_the_key_follows_every_input():
    files, overrides, schema = [("0/config.yaml", b"a: 1\n")], ["horizon=30"], {"horizon": 365}
    base = compositions.key(files, overrides, schema)
    assert base == compositions.key(list(files), list(overrides), dict(schema))
    others = [compositions.key([("0/config.yaml", b"a: 2\n")], overrides, schema),
              compositions.key([("1/config.yaml", b"a: 1\n")], overrides, schema),
              compositions.key(files + [("0/graph/x.yaml", b"")], overrides, schema),
              compositions.key(files, ["horizon=31"], schema),
              compositions.key(files, [], schema),
              compositions.key(files, overrides, {"horizon": 366})]
    assert base not in others and len(set(others)) == len(others)
