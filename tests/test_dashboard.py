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
    cli = sim.compare(["default", "referral_double"], replicates=3, seed=5, overrides=[f"{k}={v}" for k, v in market.items()], workers=2,
                      metrics=compare.comparison_metrics())
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
    assert list(rows[0]) == ["metric", "default", compare.ON_SCREEN, f"{compare.ON_SCREEN} − default"]  # no assumptions: as before
    lines = {m for m, _ in compare.statement()}
    assert not lines & {r["metric"] for r in rows} and "total costs (RMB)" in {r["metric"] for r in rows}  # the P&L's lines are in the P&L
    cost = next(r for r in compare.pnl_rows(cmp) if r["line (RMB)"] == "− incentive cost")
    d = cmp.differences.set_index("metric").loc["incentive_cost"]
    assert cost[f"{compare.ON_SCREEN} − default"] == compare.interval_text(d["mean_difference"], d["ci_low"], d["ci_high"])
    assert cost[f"{compare.ON_SCREEN} − default"].startswith("+") and d["higher"] == 2
    assert next(r for r in rows if r["metric"] == "total costs (RMB)")[f"{compare.ON_SCREEN} − default"].endswith("higher in 2 of 2")
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


# ------------------------------------------------------------------------------ the decision, assumptions, the P&L
def test_the_question_on_the_page_is_the_decision_sim_compare_reads():
    from sim.plans import decision_from_text

    assert compare.decision_of("maximise", "users_end", compare.CONSTRAINTS[0]) == \
        decision_from_text("maximise users_end; profit_with_terminal >= baseline")
    assert compare.decision_of("minimise", "cac_blended", "profit >= baseline - 500; retention_d30 >= 0.05 ;") == \
        {"minimise": "cac_blended", "subject_to": ["profit >= baseline - 500", "retention_d30 >= 0.05"]}
    for none in ("", compare.NO_CONSTRAINT, " ; "):
        assert compare.decision_of("maximise", "users_end", none) == {"maximise": "users_end", "subject_to": []}
    for bad in ("profit >= baseline * 2", "profits >= baseline", "profit => 0"):
        error = compare.decision_error("maximise", "users_end", bad)
        assert error is not None and error.startswith("decision") and "allowed" in error and "\n" not in error, error
    for text in compare.CONSTRAINTS:  # every offered form is one the project accepts, against the baseline
        assert compare.decision_error("maximise", compare.OBJECTIVE, text) is None and "baseline" in text
    assert compare.sense_of("cac_blended") == "minimise" and compare.sense_of("users_end") == "maximise"
    asked = compare.comparison_metrics(compare.decision_of("maximise", "k_factor", "ltv_90 >= baseline"))
    assert {"k_factor", "ltv_90", *(m for m, _ in compare.statement())} <= set(asked) and len(asked) == len(set(asked))


def test_a_difference_reads_with_signed_bounds_and_shares_in_points():
    assert compare.interval_text(1234.4, -80.2, 2549.0) == "+1,234 [-80.2,\u00a0+2,549]"
    assert compare.interval_text(0.012, -0.003, 0.026, points=True) == "+1.2 [-0.3,\u00a0+2.6]\u00a0points"
    assert compare.interval_text(float("nan"), float("nan"), float("nan")) == "– [–,\u00a0–]"


def test_the_statement_runs_top_to_bottom_as_the_economics_books_it():
    from sim.analysis.comparison import METRICS
    from sim.economics import LINES, TOTALS

    lines = [m for m, _ in compare.statement()]
    assert set(lines) <= set(METRICS) and set(lines) <= set(LINES) and set(TOTALS.values()) <= set(lines)
    assert lines[:2] == ["gmv", "revenue"] and lines.index("contribution") == lines.index("fraud_loss") + 1
    assert lines.index("acquisition_cost") > lines.index("contribution") and lines.index("profit") == lines.index("operating_cost") + 1
    assert lines[-4:] == ["profit", "terminal_value", "profit_with_terminal", "merchant_funded"]


def test_an_assumption_starts_on_a_range_the_project_accepts():
    """Every numeric knob a comparison of the default scenario offers gets a first range around its
    value that `sim compare` accepts (inside the allowed range, whole numbers for whole-number keys,
    low below high), whatever the value: zero, at an open bound, near the top."""
    from sim.assumptions import check_assumptions
    from sim.config import compose
    from sim.plans import AssumptionSpec
    from sim.schema import to_plain

    plain = {"default": to_plain(compose("all_mechanisms"))}
    values = kn.scenario_values("all_mechanisms")
    knobs = [k for k in kn.all_knobs() if k.kind in ("float", "int") and k.key not in compare.NOT_ASSUMPTIONS]
    for knob in knobs:
        a = compare.assumption_around(knob, values[knob.key])
        assert a.low < a.high and a.low <= a.mode <= a.high, a
        if knob.kind == "int":
            assert a.low.is_integer() and a.high.is_integer(), a
        for kind in compare.DISTRIBUTIONS:
            spec = dataclasses.replace(a, kind=kind).spec()
            check_assumptions(plain, {knob.key: AssumptionSpec(**spec)})  # raises ConfigError if refused
    cac = compare.assumption_around(next(k for k in knobs if k.key == "mechanisms.paid_acquisition.cac_rmb"), 25.0)
    assert (cac.low, cac.mode, cac.high) == (12.5, 25.0, 37.5) and cac.spec() == {"uniform": [12.5, 37.5]}
    assert dataclasses.replace(cac, kind="triangular").spec() == {"triangular": [12.5, 25.0, 37.5]}


def test_an_assumption_is_offered_only_on_a_setting_the_strategies_share():
    a = page_strategy("default")
    b = page_strategy(compare.ON_SCREEN, mechanisms__referral__inviter_reward=30.0)
    reference = kn.scenario_values("default")
    screen = {**kn.initial_values(reference), **SCREEN, "mechanisms.referral.inviter_reward": 30.0}
    pair = [(a, compare.strategy_values("default", screen, kn.scenario_values)), (b, compare.strategy_values(compare.ON_SCREEN, screen, None))]
    offered = {k.key for k in compare.assumption_keys(pair, kn.all_knobs())}
    assert "mechanisms.referral.inviter_reward" not in offered  # B sets it: an assumption would erase what B is
    assert not offered & set(compare.NOT_ASSUMPTIONS)
    assert {"mechanisms.referral.invitee_reward", "mechanisms.paid_acquisition.cac_rmb", "graph.avg_degree"} <= offered
    assert not any(k.startswith("mechanisms.group_buy.") for k in offered)  # off in both: its settings change nothing
    assert all(next(k for k in kn.all_knobs() if k.key == key).kind in ("float", "int") for key in offered)
    group = page_strategy("share_group_buy")
    pair = [(a, pair[0][1]), (group, compare.strategy_values("share_group_buy", screen, kn.scenario_values))]
    offered = {k.key for k in compare.assumption_keys(pair, kn.all_knobs())}
    differ = {k for k, v in kn.scenario_values("share_group_buy").items() if v != reference[k]}
    assert offered and not offered & differ


UNCERTAIN = {"mechanisms.paid_acquisition.cac_rmb": {"uniform": [10.0, 60.0]}}
QUESTION = {"maximise": "users_end", "subject_to": ["profit_with_terminal >= baseline"]}


@pytest.fixture(scope="module")
def uncertain_comparison():
    """The page's comparison with its default question and one uncertain assumption (2,000 people,
    40 days, 3 replicates: each run with the draw and again with the assumption at its centre)."""
    small = {"population.size": 2000, "horizon": 40}
    pair = [page_strategy("default", **{k.replace(".", "__"): v for k, v in small.items()}),
            page_strategy(compare.ON_SCREEN, mechanisms__referral__inviter_reward=30.0, **{k.replace(".", "__"): v for k, v in small.items()})]
    return compare.compare_strategies(pair, replicates=3, seed=3, decision=QUESTION, assumptions=UNCERTAIN), pair


def test_the_page_decides_and_draws_assumptions_exactly_as_sim_compare_does(uncertain_comparison):
    cmp, pair = uncertain_comparison
    cli = sim.compare([(s.label, s.scenario, s.overrides) for s in pair], replicates=3, seed=3, workers=2, decision=QUESTION,
                      assumptions=UNCERTAIN, metrics=compare.comparison_metrics(QUESTION))
    for frame in ("horizon", "noise", "table", "differences", "uncertainty", "assumption_effects"):
        pd.testing.assert_frame_equal(getattr(cmp, frame), getattr(cli, frame), obj=frame)
    assert cmp.decision.line == cli.decision.line and cmp.decision.line.startswith("recommended: ")
    pd.testing.assert_frame_equal(cmp.decision.table, cli.decision.table)


def test_the_decision_figures_are_the_comparisons_own(uncertain_comparison):
    cmp, _ = uncertain_comparison
    items = {name: value for name, _, value in compare.decision_items(cmp)}
    row = cmp.decision.table.set_index("strategy").loc[compare.ON_SCREEN]
    from sim.analysis.stats import percent_text

    assert items["p-best"] == f"{percent_text(row['p_best'])} ({percent_text(row['p_best_noise'])} noise only)"
    assert items["p-feasible"] == percent_text(row["p_feasible"]) and items["cost"] == row["money_text"]
    if row["mean_difference"] > 0:  # the line names B's gain on the objective in the same words
        assert f"users_end {items['objective']}" in cmp.decision.line
    assert items["objective"].startswith("+" if row["mean_difference"] > 0 else "-") and items["objective"].count("[") == 1
    assert [k for k, _, _ in compare.decision_items(cmp)] == ["p-best", "p-feasible", "objective", "cost"]  # B only: A is the baseline


def test_with_assumptions_every_difference_has_its_noise_only_interval_and_share(uncertain_comparison):
    cmp, _ = uncertain_comparison
    head = f"{compare.ON_SCREEN} − default"
    u = cmp.uncertainty.set_index("metric")
    pnl = compare.pnl_rows(cmp)
    for rows in (pnl, compare.summary_rows(cmp)):
        assert list(rows[0])[-3:] == [head, f"{head}, noise only", "share from assumptions"]
    profit = next(r for r in pnl if r["line (RMB)"] == "= profit with terminal value")
    p = u.loc["profit_with_terminal"]
    assert profit[f"{head}, noise only"] == compare.interval_text(p["noise_mean_difference"], p["noise_ci_low"], p["noise_ci_high"])
    assert profit[f"{head}, noise only"] != profit[head]  # two sets of runs, two intervals
    assert profit["share from assumptions"].endswith(" %")
    # the lines shown add up as the statement does: revenue less the costs is the contribution, in every run's mean
    t = cmp.table.set_index(["strategy", "metric"])["mean"]
    for s in cmp.strategies:
        costs = sum(t[(s, m)] for m in ("goods_cost", "variable_cost", "incentive_cost", "fraud_loss"))
        assert t[(s, "contribution")] == pytest.approx(t[(s, "revenue")] - costs, abs=1e-6)
        assert t[(s, "profit_with_terminal")] == pytest.approx(t[(s, "profit")] + t[(s, "terminal_value")], abs=1e-6)
    shown = [r["line (RMB)"] for r in pnl]
    assert "− cost of first-party goods" not in shown and "− fixed operating cost" not in shown  # zero in every run of a marketplace
    assert shown[0] == "GMV" and shown[-1] == "= profit with terminal value"


def test_the_objective_chart_holds_each_replicates_difference_around_its_interval(uncertain_comparison):
    cmp, _ = uncertain_comparison
    sets = compare.objective_replicates(cmp)
    assert [s["set"] for s in sets] == ["with assumptions", "noise only"]
    u = cmp.uncertainty.set_index("metric").loc["users_end"]
    for s, prefix in zip(sets, ("", "noise_")):
        assert len(s["values"]) == 3 and np.mean(s["values"]) == pytest.approx(u[f"{prefix}mean_difference"])
        assert s["low"] <= s["mean"] <= s["high"]
    option = charts.difference_chart(sets, "users at the horizon", "people")
    json.dumps(option, allow_nan=False)
    dots = [x for x in option["series"] if x["name"].endswith("replicates")]
    assert [[d[0] for d in x["data"]] for x in dots] == [list(map(float, s["values"])) for s in sets]


def test_the_flip_table_names_each_assumption_with_what_it_drew(uncertain_comparison):
    cmp, _ = uncertain_comparison
    rows = compare.flip_rows(cmp)
    e = cmp.assumption_effects.iloc[0]
    assert [r["assumption"] for r in rows] == ["mechanisms.paid_acquisition.cac_rmb"]
    drawn = cmp.horizon["assumption:mechanisms.paid_acquisition.cac_rmb"]
    assert rows[0]["distribution"] == "uniform: low 10, high 60" and 10 <= drawn.min() <= drawn.max() <= 60
    assert rows[0]["flips"] == ("yes" if e["flips"] else "")
    assert rows[0]["recommended (lower / upper half)"] == f"{e['recommended_low'] or 'none'} / {e['recommended_high'] or 'none'}"


def test_without_assumptions_the_page_shows_no_second_interval(screen_comparison):
    cmp, _ = screen_comparison
    assert cmp.uncertainty is None and compare.flip_rows(cmp) == [] and compare.decision_items(cmp) == []
    assert not any("noise only" in k for r in compare.pnl_rows(cmp) for k in r)


def test_the_run_tab_shows_the_runs_pnl_as_its_report_does():
    from sim.dashboard import app
    from sim.report import pnl_rows

    result = sim.simulate(sim.compose("default", list(SMALL)))
    page = unescape(app.pnl_html(result))
    rows = pnl_rows(result.summary, result.daily, result.config)
    assert page.count("<tr class=") == len(rows)
    for label, amount, _, what, _ in rows:
        assert label in page and what in page
    assert "= profit with terminal value" in page and f"{result.summary['profit_with_terminal']:,.0f}" in page


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


def test_the_server_prepares_the_first_page_and_its_run_while_it_waits_and_never_fails_for_it(monkeypatch):
    """``sim dash`` warms up in the background (sim.dashboard.server.warm_up): in a fresh process, the
    page's caches are filled and the kernels the opening scenario's run needs are loaded, so that
    its first run loads none; and a warm-up that fails says nothing and leaves the page to report."""
    code = """
import sim
from sim import compiled
from sim.dashboard import app, server
server.warm_up()
assert app.reference.cache_info().currsize == 1 and app.knob_groups.cache_info().currsize == 1
before = compiled.spent()["loaded"]
sim.simulate(sim.compose(app.DEFAULT_SCENARIO, ["population.size=3000", "horizon=60"]))
print(compiled.spent()["loaded"] - before)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0"]  # (warmed: the first run loads no kernel)
    from sim.dashboard import server

    def broken(*a, **k):
        raise RuntimeError("no disk")

    monkeypatch.setattr(sim, "simulate", broken)
    server.warm_up()  # (no exception, nothing printed)
