"""A run that breaks an invariant stops with the day, the column and the config that produced it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import sim
from sim import cli
from sim.mechanisms import REGISTRY
from sim.mechanisms.base import Mechanism, MechanismConfig
from sim.schema import SimulationError


@dataclass(frozen=True)
class BrokenConfig(MechanismConfig):
    pass


class Broken(Mechanism):
    """A deliberately faulty mechanism: on day 3 it counts a negative number of things."""

    name = "broken"
    Config = BrokenConfig
    columns = ("broken_things",)

    def settle(self, model):
        if model.day == 3:
            model.today.count("broken_things", -2)


@pytest.fixture
def broken(monkeypatch):
    monkeypatch.setitem(REGISTRY, "broken", Broken)
    yield


def test_a_negative_count_stops_the_run_naming_day_and_column(broken):
    cfg = sim.compose("default", ["population.size=500", "horizon=10", "mechanisms.broken.enabled=true"])
    with pytest.raises(SimulationError, match=r"^day 3: broken_things = -2.0 \(must be a finite, non-negative number\)$"):
        sim.simulate(cfg)


def test_the_cli_reports_it_in_one_line_and_keeps_the_config(broken, tmp_path, capsys):
    code = cli.main(["run", "population.size=500", "horizon=10", "mechanisms.broken.enabled=true", f"out={tmp_path}"])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert "\n" not in err and err.startswith("error: day 3: broken_things = -2.0")
    kept = list((tmp_path / "failed").glob("*.yaml"))
    assert len(kept) == 1 and str(kept[0]) in err
    assert sim.config.load_yaml(kept[0]).mechanisms["broken"].enabled
    assert [p.name for p in tmp_path.iterdir()] == ["failed"]  # no run folder, complete or partial


@dataclass(frozen=True)
class InjectConfig(MechanismConfig):
    pass


def injector(kind: str, value: float):
    """A mechanism that writes ``value`` into a daily counter or a money account on day 3."""

    class Inject(Mechanism):
        name = "inject"
        Config = InjectConfig
        columns = ("injected_things",)
        accounts = {"cost_injected": "incentive"}

        def settle(self, model):
            if model.day == 3:
                if kind == "count":
                    model.today.count("injected_things", value)
                else:
                    model.economics.book("cost_injected", value)

    return Inject


@pytest.mark.parametrize("kind, value, message", [
    ("count", float("nan"), "day 3: injected_things = nan (must be a finite, non-negative number)"),
    ("count", float("inf"), "day 3: injected_things = inf (must be a finite, non-negative number)"),
    ("money", float("nan"), "day 3: account cost_injected = nan (must be a finite, non-negative number)"),
    ("money", float("inf"), "day 3: account cost_injected = inf (must be a finite, non-negative number)"),
    ("money", -1.0, "day 3: account cost_injected = -1.0 (must be a finite, non-negative number)"),
])
def test_a_nan_injected_mid_run_stops_it_with_day_column_and_config(monkeypatch, tmp_path, capsys, kind, value, message):
    monkeypatch.setitem(REGISTRY, "inject", injector(kind, value))
    code = cli.main(["run", "population.size=500", "horizon=10", "mechanisms.inject.enabled=true", f"out={tmp_path}"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err and err.startswith(f"error: {message}; the config that produced it: "), err
    kept = list((tmp_path / "failed").glob("*.yaml"))
    assert len(kept) == 1 and str(kept[0]) in err
    assert [p.name for p in tmp_path.iterdir()] == ["failed"]
