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
from html import unescape
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

import sim
from sim.config import dump_yaml
from sim.dashboard import charts, compare, knobs as kn, live
from sim.plans import replicate_seeds
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


def test_the_market_knobs_are_the_schema_leaves_they_name():
    from sim.config import SimConfig
    from sim.schema import leaves

    fields = {key: f for key, _, f in leaves(SimConfig)}
    core = kn.core_knobs()
    assert [k.key for k in core] == [k for k in kn.CORE_KEYS if k in fields]
    for knob in core:
        meta = fields[knob.key].metadata
        assert (knob.unit, knob.doc) == (meta.get("unit", ""), meta.get("doc", "")), knob.key
        if "lo" in meta:
            assert (knob.lo, knob.hi) == (meta["lo"], meta["hi"]), knob.key


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
    budget = next(k for k in kn.all_knobs() if k.key == "mechanisms.paid_acquisition.budget_per_1000")
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


def test_the_screen_is_the_configuration_its_command_composes():
    default = sim.compose("default")
    values = {**kn.initial_values(kn.scenario_values(default)), "horizon": 120, "mechanisms.loyalty.enabled": True}
    assert kn.configuration(default, values) == sim.compose("default", kn.overrides(values, kn.scenario_values(default), kn.all_knobs()))


def test_settings_that_contradict_each_other_get_the_one_line_error_of_sim_run():
    default = sim.compose("default")
    values = {**kn.scenario_values(default), "mechanisms.loyalty.silver_spend_rmb": 500.0, "mechanisms.loyalty.gold_spend_rmb": 100.0}
    with pytest.raises(ConfigError) as on_page:
        kn.configuration(default, values)
    with pytest.raises(ConfigError) as on_cli:
        sim.compose("default", ["mechanisms.loyalty.silver_spend_rmb=500", "mechanisms.loyalty.gold_spend_rmb=100"])
    assert str(on_page.value) == str(on_cli.value) and str(on_page.value).startswith("mechanisms.loyalty.gold_spend_rmb = 100.0")


def test_a_market_too_large_for_the_memory_left_is_refused_with_the_message_of_sim_run(monkeypatch):
    monkeypatch.setattr("sim.memory.available_bytes", lambda: 1e9)  # a machine with 1 GB left
    default = sim.compose("default")
    values = kn.initial_values(kn.scenario_values(default))
    assert kn.memory_error(kn.configuration(default, values)) is None  # the page's 20,000 people fit
    big = kn.configuration(default, {**values, "population.size": 5_000_000})
    message = kn.memory_error(big)
    assert message.startswith("population.size = 5,000,000: this run needs about") and "\n" not in message
    with pytest.raises(ConfigError) as on_cli:
        sim.GrowthModel(big)
    assert str(on_cli.value) == message
    with pytest.raises(ConfigError, match="population.size = 5,000,000: this run needs"):  # a comparison too, before any graph
        sim.compare([("big", "default", ["population.size=5000000"])], replicates=2, workers=1)


# ------------------------------------------------------------------------------ watching a run
def test_watching_a_run_publishes_along_the_way_and_does_not_change_it():
    cfg = sim.compose("default", list(SMALL))
    snaps: list[live.Snapshot] = []
    ticks = iter(range(10**6))  # a clock that moves 1 s per reading: the days decide, not the machine's speed
    watcher = live.Watcher(snaps.append, every_seconds=0.0, every_days=5, clock=lambda: float(next(ticks)))
    watched = sim.simulate(cfg, progress=watcher)
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
SCREEN = {"population.size": 3000, "horizon": 40}


def page_strategy(choice: str, scenario: str = "default", **edits) -> compare.Strategy:
    """A strategy as the page builds it from what is on screen (a small market, plus ``edits``)."""
    reference = kn.scenario_values(scenario)
    values = {**kn.initial_values(reference), **SCREEN, **{k.replace("__", "."): v for k, v in edits.items()}}
    return compare.strategy(choice, scenario, values, kn.all_knobs(), kn.scenario_values)


def test_the_page_turns_the_screen_into_strategies_with_overrides_of_their_own():
    on_screen = page_strategy(compare.ON_SCREEN, mechanisms__referral__inviter_reward=30.0, seed=7)
    assert on_screen == compare.Strategy(compare.ON_SCREEN, "default", ("population.size=3000", "horizon=40",
                                                                        "mechanisms.referral.inviter_reward=30"))
    named = page_strategy("referral_double", mechanisms__referral__inviter_reward=30.0)
    assert named == compare.Strategy("referral_double", "referral_double", ("population.size=3000", "horizon=40"))
    same = compare.distinct([named, named])
    assert [s.label for s in same] == ["referral_double", "referral_double (again)"] and same[1].overrides == named.overrides


def test_the_dashboard_compares_exactly_as_sim_compare_does():
    """Two named scenarios at the on-screen market: the page's comparison (per-strategy overrides)
    and `sim compare scenario=default,referral_double population.size=10000 horizon=40` (overrides
    for every strategy) make the same runs and reach the same intervals and verdicts. (10,000
    people: the default seed share gives a 3,000-person market one or two first users, too few for
    the richer referral reward to show in every replicate.)"""
    market = {**SCREEN, "population.size": 10_000}
    page = compare.compare_strategies([page_strategy(name, population__size=market["population.size"]) for name in ("default", "referral_double")],
                                      replicates=3, seed=5)
    cli = sim.compare(["default", "referral_double"], replicates=3, seed=5, overrides=[f"{k}={v}" for k, v in market.items()], workers=2)
    assert page.seeds == cli.seeds == replicate_seeds(5, 3)
    for frame in ("daily", "horizon", "table", "differences", "retention"):
        pd.testing.assert_frame_equal(getattr(page, frame), getattr(cli, frame), obj=frame)
    assert compare.headline_verdicts(page) == compare.headline_verdicts(cli)
    assert any("referral_double is higher than default on incentive cost in 3 of 3" in v for v in page.verdicts("incentive_cost"))


@pytest.fixture(scope="module")
def screen_comparison():
    """The page's comparison of the default scenario (A) with richer on-screen referral rewards (B)."""
    done = []
    cmp = compare.compare_strategies([page_strategy("default"), page_strategy(compare.ON_SCREEN, mechanisms__referral__inviter_reward=30.0)],
                                     replicates=2, progress=lambda d, t: done.append((d, t)))
    return cmp, done


def test_the_comparison_reports_progress_after_every_run(screen_comparison):
    _, done = screen_comparison
    assert done == [(k, 4) for k in range(5)]


def test_a_comparison_the_page_no_longer_wants_stops_after_the_run_under_way():
    runs = []

    def progress(done: int, total: int) -> None:
        runs.append(done)
        if done == 1:
            raise live.Stopped()

    with pytest.raises(live.Stopped):
        compare.compare_strategies([page_strategy("default"), page_strategy("referral_double")], replicates=3, progress=progress)
    assert runs == [0, 1]


def test_the_comparison_download_is_the_folder_sim_compare_writes_and_reruns_exactly(screen_comparison, tmp_path, capsys):
    cmp, _ = screen_comparison
    name, data = compare.comparison_zip(cmp)
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path)
    folder = tmp_path / name[:-4]
    for file in ("config.yaml", "daily.parquet", "horizon.parquet", "differences.parquet", "table.parquet", "retention.parquet",
                 "report.html", "plots/curves.png", "plots/retention.png", "resolved/on-screen-settings.yaml"):
        assert (folder / file).is_file(), file
    report = unescape((folder / "report.html").read_text())
    assert all(v in report for v in cmp.differences["verdict"])
    # the folder's experiment file reruns the page's comparison on the command line, run for run
    from sim.cli import main

    assert main(["compare", "-q", "--no-plots", "workers=1", f"experiment={folder / 'config.yaml'}", f"out={tmp_path / 'again'}"]) == 0
    again = Path(capsys.readouterr().out.strip())
    pd.testing.assert_frame_equal(pd.read_parquet(again / "horizon.parquet"), cmp.horizon)
    pd.testing.assert_frame_equal(pd.read_parquet(again / "differences.parquet"), cmp.differences)


def test_the_table_shows_each_metric_with_its_interval_and_the_paired_difference(screen_comparison):
    cmp, _ = screen_comparison
    rows = compare.summary_rows(cmp)
    assert [r["metric"] for r in rows][:2] == ["users acquired (people)", "users at the horizon (people)"]
    assert list(rows[0]) == ["metric", "default", compare.ON_SCREEN, f"{compare.ON_SCREEN} − default"]
    cost = next(r for r in rows if r["metric"] == "incentive cost (RMB)")
    d = cmp.differences.set_index("metric").loc["incentive_cost"]
    assert cost[f"{compare.ON_SCREEN} − default"].endswith(f"higher in {d['higher']} of 2") and d["higher"] == 2
    mean = cmp.table.set_index(["strategy", "metric"]).loc[("default", "incentive_cost"), "mean"]
    assert cost["default"].startswith(f"{mean:,.0f} [")


def test_curve_bands_hold_every_replicate_between_their_means(screen_comparison):
    cmp, _ = screen_comparison
    users = compare.curve_bands(cmp, "users")
    d = cmp.daily[cmp.daily["strategy"] == "default"].pivot(index="day", columns="replicate", values="users")
    mine = users[users["strategy"] == "default"].set_index("x")
    assert np.allclose(mine["mean"], d.mean(axis=1)) and (mine["lo"] <= mine["mean"]).all() and (mine["mean"] <= mine["hi"]).all()
    profit = compare.curve_bands(cmp, "cumulative_profit")
    last = profit[profit["x"] == 39].set_index("strategy")["mean"]
    assert last["default"] == pytest.approx(cmp.horizon.groupby("strategy")["profit"].mean()["default"])
    retention = compare.retention_bands(cmp)
    day1 = retention[retention["x"] == 1].set_index("strategy")["mean"]
    assert day1["default"] == pytest.approx(cmp.horizon.groupby("strategy")["retention_d1"].mean()["default"])


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


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "1e400", "abc", "", "-5"])
@pytest.mark.parametrize("key", ["mechanisms.referral.inviter_reward", "population.size", "graph.avg_degree"])
def test_a_bad_number_typed_in_a_knob_is_refused_and_the_last_good_value_kept(key, text):
    """NaN typed in a field used to become the knob's value: the slider got NaN and the widget broke
    until reset. It is refused with the standard line, and the knob keeps a number it can show."""
    import math

    knob = next(k for k in kn.all_knobs() if k.key == key)
    last = kn.scenario_values("default")[key]
    value, error = knob.accept(text, last)
    assert value == last and isinstance(value, (int, float)) and math.isfinite(value)
    assert error is not None and error.startswith(f"{key} = ") and "allowed is" in error and "\n" not in error
    if knob.slider(value) is not None:
        lo, hi, _ = knob.slider(value)
        assert math.isfinite(lo) and math.isfinite(hi)
    good, none = knob.accept("12", last)
    assert none is None and good == 12
