"""The dashboard's logic without a browser: controls from the schema, the reproducing command,
watching a run, the graph sample, the side-by-side comparison and the downloads."""

from __future__ import annotations

import dataclasses
import io
import json
import socket
import subprocess
import sys
import zipfile
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd
import pytest

import sim
from sim.config import dump_yaml
from sim.dashboard import charts, compare, knobs as kn, live
from sim.mechanisms import REGISTRY
from sim.mechanisms.base import Mechanism, MechanismConfig
from sim.schema import ConfigError, param

SMALL = ("population.size=3000", "horizon=40")


# ------------------------------------------------------------------------------ controls
def test_every_numeric_switch_and_choice_of_every_mechanism_gets_a_control_with_its_unit_and_range():
    knobs = kn.mechanism_knobs()
    assert set(knobs) == set(REGISTRY)
    for name, cls in REGISTRY.items():
        by_key = {k.key: k for k in knobs[name]}
        assert knobs[name][0].key == f"mechanisms.{name}.enabled"
        for f in dataclasses.fields(cls.Config):
            default = getattr(cls.Config(), f.name)
            if isinstance(default, (bool, int, float)):
                knob = by_key[f"mechanisms.{name}.{f.name}"]
                assert (knob.unit, knob.doc, knob.lo, knob.hi) == (f.metadata["unit"], f.metadata["doc"], f.metadata["lo"], f.metadata["hi"])


@dataclass(frozen=True)
class _ToyConfig(MechanismConfig):
    coupon_rmb: float = param(3.0, lo=0, hi=50, unit="RMB per coupon", doc="a coupon")
    style: str = param("plain", doc="free text is edited in YAML, not on the page")


class _Toy(Mechanism):
    name = "toy"
    Config = _ToyConfig


def test_a_mechanism_registered_later_gets_its_controls_without_dashboard_changes(monkeypatch):
    monkeypatch.setitem(REGISTRY, "toy", _Toy)
    toy = kn.mechanism_knobs()["toy"]
    assert [k.key for k in toy] == ["mechanisms.toy.enabled", "mechanisms.toy.coupon_rmb"]
    coupon = toy[1]
    assert coupon.unit == "RMB per coupon" and coupon.allowed == "0 – 50" and coupon.slider(3.0)[1] <= 50


@pytest.mark.parametrize("key,value", [("mechanisms.referral.inviter_reward", -5.0), ("population.size", 1),
                                       ("platform.take_rate", 1.5), ("mechanisms.referral.per_inviter_cap", 2.5),
                                       ("mechanisms.referral.conversion", "lots")])
def test_a_bad_value_gets_the_same_one_line_error_as_sim_run(key, value):
    knob = next(k for k in kn.all_knobs() if k.key == key)
    with pytest.raises(ConfigError) as on_page:
        knob.check(knob.parse(str(value)))
    with pytest.raises(ConfigError) as on_cli:
        sim.compose("default", [f"{key}={value}"])
    assert str(on_page.value) == str(on_cli.value)
    assert "\n" not in str(on_page.value) and key in str(on_page.value)


def test_typed_numbers_are_read_as_people_write_them():
    budget = next(k for k in kn.all_knobs() if k.key == "mechanisms.paid_acquisition.daily_budget")
    assert budget.parse("1,500") == 1500 and budget.parse("2e3") == 2000.0 and budget.parse("abc") == "abc"


def test_sliders_stay_inside_the_allowed_range_and_cover_the_scenario_value():
    reference = kn.scenario_values("default")
    for knob in kn.all_knobs():
        value = reference[knob.key]
        rng = knob.slider(value)
        if rng is None:
            continue
        lo, hi, step = rng
        assert step > 0 and lo < hi
        assert lo >= knob.lo and (not knob.lo_open or lo > knob.lo)
        assert knob.hi is None or hi <= knob.hi
        assert lo - step <= value <= hi, knob.key


def test_the_command_holds_only_what_differs_from_the_scenario_and_reproduces_the_screen():
    reference = kn.scenario_values("default")
    values = kn.initial_values(reference)
    knobs = kn.all_knobs()
    assert kn.overrides(reference, reference, knobs) == []
    values.update({"mechanisms.referral.inviter_reward": 20.0, "mechanisms.paid_acquisition.enabled": False,
                   "horizon": 120, "adoption.contagion": "complex", "adoption.external_rate": 0.0003})
    overrides = kn.overrides(values, reference, knobs)
    assert overrides == ["population.size=20000", "horizon=120", "adoption.contagion=complex", "adoption.external_rate=0.0003",
                         "mechanisms.paid_acquisition.enabled=false", "mechanisms.referral.inviter_reward=20"]
    command = kn.command("default", overrides)
    # What the page runs is what the printed command composes, key for key.
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "config", *command.split()[2:]], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == dump_yaml(sim.compose("default", overrides))
    values["mechanisms.referral.inviter_reward"] = reference["mechanisms.referral.inviter_reward"]
    assert not any(o.startswith("mechanisms.referral") for o in kn.overrides(values, reference, knobs))


# ------------------------------------------------------------------------------ watching a run
def test_watching_a_run_publishes_along_the_way_and_does_not_change_it():
    cfg = sim.compose("default", list(SMALL))
    snaps: list[live.Snapshot] = []
    watched = sim.simulate(cfg, progress=live.Watcher(snaps.append, every_seconds=0.0, every_days=5))
    plain = sim.simulate(cfg)
    pd.testing.assert_frame_equal(watched.daily, plain.daily)
    assert len(snaps) >= 4 and [s.day for s in snaps] == sorted({s.day for s in snaps})
    assert snaps[-1].done and snaps[-1].day == cfg.horizon - 1 and not snaps[0].done
    pd.testing.assert_frame_equal(snaps[-1].daily, plain.daily)
    assert snaps[-1].graph_states.shape == (cfg.horizon, snaps[-1].graph.nodes.size)
    # the graph view shows the people's true states on each day
    final = watched.model.pop.state[snaps[-1].graph.nodes]
    assert np.array_equal(snaps[-1].graph_states[-1], final)


def test_a_run_the_page_no_longer_wants_stops_part_way():
    cfg = sim.compose("default", list(SMALL))
    days = []

    def stop_after_ten() -> bool:
        return len(days) >= 10

    watcher = live.Watcher(lambda s: None, should_stop=stop_after_ten)
    with pytest.raises(live.Stopped):
        sim.simulate(cfg, progress=lambda m: (days.append(m.day), watcher(m)))
    assert len(days) == 10


def test_the_graph_sample_is_a_connected_neighbourhood_of_real_friendships():
    model = sim.GrowthModel(sim.compose("default", list(SMALL)))
    model.step()
    sample = live.sample_graph(model, 200, seed=1)
    assert sample.nodes.size == 200 and np.unique(sample.nodes).size == 200
    g = nx.Graph(list(map(tuple, sample.edges)))
    assert g.number_of_nodes() == 200 and nx.is_connected(g)
    a, b = sample.nodes[sample.edges[:, 0]], sample.nodes[sample.edges[:, 1]]
    for u, v in zip(a[:50], b[:50]):
        assert v in model.graph.neighbours(u)
    assert sample.xy.shape == (200, 2) and np.all(np.isfinite(sample.xy))


def test_a_well_mixed_market_has_no_graph_to_draw():
    model = sim.GrowthModel(sim.compose("default", [*SMALL, "graph=complete"]))
    model.step()
    assert live.sample_graph(model).empty


# ------------------------------------------------------------------------------ comparison
def test_a_strategy_compared_with_itself_differs_by_exactly_zero():
    s = compare.Strategy("A", "default", SMALL)
    cmp = compare.compare_pair([s, compare.Strategy("A again", "default", SMALL)], replicates=2)
    assert (cmp.differences["mean"] == 0).all() and (cmp.differences["wins"] == 0).all()
    assert set(cmp.daily["strategy"]) == {"A", "A again"} and cmp.seeds == [0, 1]


def test_interval_is_the_student_t_interval_of_the_mean():
    x = np.array([1.0, 2.0, 4.0, 7.0])
    mean, lo, hi = compare.interval(x)
    half = 3.182446305284263 * x.std(ddof=1) / 2  # t(0.975, 3) x sd / sqrt(4)
    assert mean == pytest.approx(3.5) and lo == pytest.approx(3.5 - half) and hi == pytest.approx(3.5 + half)
    assert np.isnan(compare.interval(np.array([1.0]))[1])


@pytest.fixture(scope="module")
def referral_comparison():
    return compare.compare_pair([compare.Strategy("default", "default", SMALL),
                                 compare.Strategy("double rewards", "referral_double", SMALL)], replicates=3)


def test_doubling_referral_rewards_costs_more_in_every_replicate(referral_comparison):
    diff = referral_comparison.differences.set_index("metric")
    assert diff.loc["incentive_cost", "wins"] == 3 and diff.loc["incentive_cost", "lo"] > 0
    assert "higher in 3 of 3 replicates" in compare.verdict(diff.reset_index().iloc[list(diff.index).index("incentive_cost")])


def test_the_comparison_download_holds_its_frames_configs_and_report(referral_comparison):
    name, data = compare.comparison_zip(referral_comparison)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        files = {n.split("/", 1)[1] for n in zf.namelist()}
        assert {"daily.parquet", "horizon.parquet", "differences.parquet", "report.html", "strategies.json",
                "config_default.yaml", "config_double-rewards.yaml"} <= files
        root = name[:-4]
        horizon = pd.read_parquet(io.BytesIO(zf.read(f"{root}/horizon.parquet")))
        assert len(horizon) == 6
        report = zf.read(f"{root}/report.html").decode()
        assert "data:image/png;base64," in report and "sim run scenario=referral_double" in report
        commands = json.loads(zf.read(f"{root}/strategies.json"))
        assert commands[1]["command"] == "sim run scenario=referral_double population.size=3000 horizon=40"


def test_the_run_download_is_a_complete_run_folder(tmp_path):
    result = sim.simulate(sim.compose("default", list(SMALL)))
    name, data = live.run_folder_zip(result)
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path)
    folder = tmp_path / name[:-4]
    from tests.test_end_to_end import assert_complete_run_folder

    assert_complete_run_folder(folder, 40)


# ------------------------------------------------------------------------------ charts
def test_charts_are_plain_json_carrying_the_runs_numbers():
    snaps: list[live.Snapshot] = []
    sim.simulate(sim.compose("default", list(SMALL)), progress=live.Watcher(snaps.append))
    s = snaps[-1]
    options = [charts.growth(s.daily, 40), charts.activity(s.daily, 40), charts.retention(s.retention),
               charts.money(s.daily, 40), charts.graph_view(s.graph.xy, s.graph.edges, s.graph_states[-1], 39)]
    for option in options:
        json.dumps(option, allow_nan=False)
    users_now = next(x for x in options[0]["series"] if x["name"].startswith("users now"))
    assert users_now["data"][-1] == [39, int(s.daily["users"].iloc[-1])]
    states = options[4]["series"][1:]
    assert sum(len(x["data"]) for x in states) == s.graph.nodes.size


# ------------------------------------------------------------------------------ sim dash
def test_sim_dash_on_a_busy_port_fails_in_one_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "sim.cli", "dash", "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "cannot listen" in proc.stderr and "Traceback" not in proc.stderr
