"""The dashboard page (Solara): controls generated from the schema, a live run, a comparison.

Run it with ``sim dash`` (see :mod:`sim.dashboard.server`). This module only lays out the page and
wires events: configurations come from :func:`sim.compose`, runs from :func:`sim.simulate` (watched
by :class:`sim.dashboard.live.Watcher`), comparisons from :func:`sim.compare` (through
:mod:`sim.dashboard.compare`, which turns the screen into strategies and the result into tables), figures from
:mod:`sim.dashboard.charts` and the knobs from the schema (:mod:`sim.dashboard.knobs`).

Every browser tab is its own session (Solara's reactive variables are per session).
"""

from __future__ import annotations

import dataclasses
import functools
import html
import logging
import time
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

import numpy as np
import solara
from solara.lab import task

import sim
from sim.analysis.comparison import METRICS
from sim.config import available_scenarios, scenario_description
from sim.dashboard import charts, compare as cp, knobs as kn
from sim.dashboard.live import Snapshot, Stopped, Watcher, run_folder_zip
from sim.plans import experiment_yaml
from sim.schema import ConfigError

log = logging.getLogger("sim.dashboard")

NO_SLIDER = {"seed"}

CSS = """
.sim-header{background:#1d2733;color:white;padding:10px 20px;display:flex;align-items:baseline;gap:16px}
.sim-header h1{font-size:20px;font-weight:600;margin:0;color:white}
.sim-header span{color:#b9c4d0;font-size:13px}
.sim-sidebar{width:400px;min-width:400px;max-height:calc(100vh - 48px);overflow-y:auto;padding:10px 12px;background:#f4f6f8;border-right:1px solid #dde2e8}
.sim-main{flex:1;padding:12px 18px;min-width:0;max-height:calc(100vh - 48px);overflow-y:auto}
.knob{margin:4px 0 10px 0}
.knob-label{font-size:13px;font-weight:600;color:#1d2733}
.knob-unit{font-size:12px;color:#5b6b7b;font-weight:400}
.knob-doc{font-size:11.5px;color:#66727f;line-height:1.25;margin-bottom:2px}
.knob-changed{color:#c25400;font-size:11.5px}
.kpi{background:white;border:1px solid #dde2e8;border-radius:8px;padding:6px 12px;min-width:110px}
.kpi b{display:block;font-size:18px;color:#1d2733}
.kpi span{font-size:12px;color:#5b6b7b}
.section-title{font-size:13px;font-weight:700;color:#1d2733;text-transform:uppercase;letter-spacing:.04em;margin:6px 0 4px 0}
.command{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px;background:#f4f6f8;border:1px solid #dde2e8;border-radius:6px;padding:6px 10px;word-break:break-all;flex:1}
.status{font-size:13px;color:#3b4a5a}
.chart-grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:12px;margin:10px 0}
.chart,.graph-card{background:white;border:1px solid #dde2e8;border-radius:8px;padding:4px}
.graph-card{margin-bottom:10px}
.v-expansion-panel-content__wrap{padding:0 12px 8px 12px !important}
.v-input--switch{margin-top:2px}
.decision-line{font-size:15px;font-weight:600;color:#1d2733;background:#eef4fb;border-left:4px solid #1f5fa8;padding:8px 12px;margin:8px 0 6px 0}
.decision-items{margin-bottom:6px}
.decision-items .kpi b{font-size:15px}
.question .v-input,.assumption .v-input{flex:0 1 auto}
.assumption-error{margin:-6px 0 6px 0}
.table-box{overflow-x:auto;margin-bottom:4px}
.cmp td,.cmp th{padding:4px 10px;border-bottom:1px solid #e5e8ec;text-align:right;font-size:12.5px}
.cmp td:first-child,.cmp th:first-child{text-align:left;min-width:150px}
.cmp th{background:#f4f6f8}
.pnl td,.pnl th{padding:3px 10px;border-bottom:1px solid #e5e8ec;text-align:right;font-size:12.5px;white-space:nowrap}
.pnl td:first-child,.pnl th:first-child,.pnl td:last-child,.pnl th:last-child{text-align:left}
.pnl td:last-child{color:#66727f;font-size:11.5px;white-space:normal}
.pnl tr.line td{font-weight:600}
.pnl tr.line td:last-child{font-weight:400}
.pnl tr.account td:first-child{padding-left:22px;color:#3b4a5a}
.pnl th{background:#f4f6f8}
"""


def Chart(option: dict, name: str, height: int = 300):
    """An ECharts chart filling its grid cell (``name`` becomes a CSS class, for tests)."""
    return solara.FigureEcharts(option=option, attributes={"style": f"height: {height}px; width: 100%;", "class": f"chart chart-{name}"},
                                responsive=True)


@solara.component_vue("copy_button.vue")
def CopyButton(text: str):
    pass


# ------------------------------------------------------------------------------ session state
DEFAULT_SCENARIO = "default"  # what the page opens with
scenario = solara.reactive(DEFAULT_SCENARIO)
edits: solara.Reactive[dict[str, Any]] = solara.reactive({})  # knob key -> value set on the page
typed_errors: solara.Reactive[dict[str, str]] = solara.reactive({})  # knob key -> why the text typed last was refused
auto_run = solara.reactive(True)
live: solara.Reactive[Snapshot | None] = solara.reactive(None)
graph_day: solara.Reactive[int | None] = solara.reactive(None)  # None: follow the run
run_error: solara.Reactive[str | None] = solara.reactive(None)
tab = solara.reactive(0)
compare_a = solara.reactive("")
compare_b = solara.reactive(cp.ON_SCREEN)
replicates = solara.reactive(4)
compare_error: solara.Reactive[str | None] = solara.reactive(None)
objective = solara.reactive(cp.OBJECTIVE)  # the decision: sense objective subject to constraints
sense = solara.reactive(cp.sense_of(cp.OBJECTIVE))
constraints = solara.reactive(cp.CONSTRAINTS[0])
assumptions: solara.Reactive[tuple[cp.Assumption, ...]] = solara.reactive(())


@dataclass(frozen=True)
class Finished:
    """A completed run and what produced it."""

    scenario: str
    overrides: tuple[str, ...]
    result: sim.RunResult

    @property
    def command(self) -> str:
        return kn.command(self.scenario, self.overrides)


@functools.lru_cache(maxsize=64)
def scenario_config(name: str) -> sim.SimConfig:
    """The scenario as composed from its files (composing is slow: cached per scenario)."""
    return sim.compose(name)


@functools.lru_cache(maxsize=64)
def reference(name: str) -> dict[str, Any]:
    """The scenario's own value of every knob."""
    return kn.scenario_values(scenario_config(name))


@functools.lru_cache(maxsize=256)
def config_error(name: str, values: tuple[tuple[str, Any], ...]) -> tuple[str, str] | None:
    """(key, one-line error) of checked knob values that cannot run together: settings the schema
    rejects in combination, or a market too large for the memory this machine has left."""
    try:
        cfg = kn.configuration(scenario_config(name), dict(values))
    except ConfigError as exc:
        return str(exc).split(" ", 1)[0].rstrip(":"), str(exc)
    memory = kn.memory_error(cfg)
    return ("population.size", memory) if memory else None


@functools.lru_cache(maxsize=1)
def knob_groups() -> tuple[list[kn.Knob], dict[str, list[kn.Knob]]]:
    return kn.core_knobs(), kn.mechanism_knobs()


def all_knobs() -> list[kn.Knob]:
    core, mechs = knob_groups()
    return [*core, *(k for ks in mechs.values() for k in ks)]


def current_values() -> dict[str, Any]:
    """Every knob's value on screen: the scenario's, at the dashboard's population, plus the edits."""
    return {**kn.initial_values(reference(scenario.value)), **edits.value}


def current_errors(vals: dict[str, Any]) -> dict[str, str]:
    """Knob key -> the one-line error of what is on screen (nothing runs while there is one)."""
    errs = kn.errors(vals, all_knobs())
    if not errs:
        whole = config_error(scenario.value, tuple(sorted(vals.items())))
        if whole is not None:
            errs[whole[0]] = whole[1]
    return errs


def current_overrides() -> tuple[list[str], dict[str, str]]:
    """(overrides, errors) of what is on screen."""
    vals, ks = current_values(), all_knobs()
    errs = current_errors(vals)
    if errs:
        return [], errs
    return kn.overrides(vals, reference(scenario.value), ks), {}


def choose_scenario(name: str) -> None:
    # The population is a speed setting rather than part of a strategy: it survives the switch.
    keep = {k: v for k, v in edits.value.items() if k == "population.size"}
    typed_errors.value = {}
    edits.value = keep
    scenario.value = name


def set_value(key: str, value: Any) -> None:
    edits.value = {**edits.value, key: value}
    typed_errors.value = {k: v for k, v in typed_errors.value.items() if k != key}


def type_value(knob: kn.Knob, text: str) -> None:
    """Text typed in a knob's field: kept when allowed; otherwise refused with its one-line error,
    the knob keeping its last good value."""
    value, error = knob.accept(text, current_values()[knob.key])
    if error is None:
        set_value(knob.key, value)
    else:
        typed_errors.value = {**typed_errors.value, knob.key: error}


def reset() -> None:
    edits.value = {}
    typed_errors.value = {}


# ------------------------------------------------------------------------------ running
def page_watcher() -> Callable[[], bool]:
    """A check, usable from a worker thread, that this session still has a page open.

    A closed browser tab leaves its session behind for a while; its run should not go on."""
    try:
        from solara.server import kernel_context

        ctx = kernel_context.get_current_context()
    except Exception:  # noqa: BLE001 - not served by solara (tests of the functions): always open
        return lambda: True
    return lambda: not ctx.closed_event.is_set() and kernel_context.PageStatus.CONNECTED in ctx.page_status.values()


@task
def run_simulation(name: str, overrides: tuple[str, ...]) -> Finished | None:
    time.sleep(0.1)  # a slider dragged across several values starts one run, not one per value
    if not run_simulation.is_current():
        return None
    try:
        cfg = sim.compose(name, list(overrides))
    except ConfigError as exc:
        run_error.value = str(exc)
        return None
    run_error.value = None
    graph_day.value = None
    page_open = page_watcher()
    watcher = Watcher(publish=live.set, should_stop=lambda: not (run_simulation.is_current() and page_open()))
    try:
        result = sim.simulate(cfg, progress=watcher)
    except Stopped:
        return None
    except ConfigError as exc:
        run_error.value = str(exc)
        return None
    except Exception as exc:  # noqa: BLE001 - the page shows one line; the server log has the traceback
        log.exception("run failed")
        run_error.value = f"the run failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return None
    result.model = None  # the page keeps the frames, not the people
    return Finished(name, tuple(overrides), result)


def start_run() -> None:
    overrides, errs = current_overrides()
    if errs:
        run_error.value = next(iter(errs.values()))
        return
    run_simulation(scenario.value, tuple(overrides))


def strategy(choice: str) -> cp.Strategy:
    """A comparison strategy: what is on screen, or a named scenario at the on-screen market size."""
    _, errs = current_overrides()
    if errs:
        raise ConfigError(next(iter(errs.values())))
    return cp.strategy(choice, scenario.value, current_values(), all_knobs(), reference)


compare_runs: solara.Reactive[tuple[int, int]] = solara.reactive((0, 0))  # (runs done, runs in all)


def strategy_pair(a: str, b: str) -> list[tuple[cp.Strategy, dict[str, Any]]]:
    """Strategies A and B with the knob values each runs with (empty while the screen has an error)."""
    _, errs = current_overrides()
    if errs:
        return []
    vals = current_values()
    return [(strategy(c), cp.strategy_values(c, vals, reference)) for c in (a, b)]


@task
def run_comparison(a: str, b: str, n: int):
    compare_error.value = None
    compare_runs.value = (0, 0)
    try:
        decision = cp.decision_of(sense.value, objective.value, constraints.value)
        uncertain = cp.assumption_specs(assumptions.value) or None
        pair = cp.distinct([strategy(a), strategy(b)])
        seed = int(current_values().get("seed", 0))
        page_open = page_watcher()

        def progress(done: int, total: int) -> None:
            if not (run_comparison.is_current() and page_open()):
                raise Stopped()  # the page closed, or another comparison started
            compare_runs.value = (done, total)
            run_comparison.progress = 100.0 * done / total

        return cp.compare_strategies(pair, replicates=n, seed=seed, progress=progress, decision=decision, assumptions=uncertain)
    except Stopped:
        return None
    except ConfigError as exc:
        compare_error.value = str(exc)
    except Exception as exc:  # noqa: BLE001
        log.exception("comparison failed")
        compare_error.value = f"the comparison failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


# ------------------------------------------------------------------------------ controls
def _fmt_value(knob: kn.Knob, value: Any) -> str:
    if isinstance(value, str):
        return value
    if knob.kind == "float":
        return kn.number(float(value)).replace(",", "")
    return str(value)


@solara.component
def KnobSlider(knob: kn.Knob, shown: float, lo: float, hi: float, step: float):
    def on_change(widget, event, v):
        # Only the slider's "change" event counts: it comes from the user (a drag released, a key
        # pressed). Its value updates also report the slider snapping an off-grid value (365 days
        # on a grid of 10) to its grid, which is not the user's choice.
        if v is None:
            return
        v = round(round(float(v) / step) * step, 10)
        set_value(knob.key, int(round(v)) if knob.kind == "int" else v)

    slider = solara.v.Slider(v_model=shown, min=lo, max=hi, step=step, hide_details=True, dense=True,
                             class_="knob-slider", style_="flex:1; min-width:120px")
    solara.v.use_event(slider, "change", on_change)
    return slider


@solara.component
def NumberKnob(knob: kn.Knob, value: Any, ref_value: Any, error: str | None):
    rng = None if knob.key in NO_SLIDER else knob.slider(ref_value)
    changed = not isinstance(value, str) and value != ref_value
    with solara.Column(gap="0px", classes=["knob", f"knob-{knob.key.replace('.', '-')}"]):
        solara.HTML(tag="div", unsafe_innerHTML=f"<span class='knob-label'>{knob.label}</span> "
                    f"<span class='knob-unit'>{('(' + knob.unit + ')') if knob.unit else ''}</span>")
        solara.HTML(tag="div", unsafe_innerHTML=knob.doc, classes=["knob-doc"])
        with solara.Row(gap="10px", style={"align-items": "center"}):
            if rng is not None:
                lo, hi, step = rng
                shown = min(max(float(ref_value if isinstance(value, str) else value), lo), hi)

                KnobSlider(knob, shown, lo, hi, step)
            solara.InputText("", value=_fmt_value(knob, value), on_value=lambda t, knob=knob: type_value(knob, t),
                             error=typed_errors.value.get(knob.key) or error or False, dense=True, hide_details="auto",
                             classes=["knob-field"],
                             style={"max-width": "120px" if rng is not None else "100%"})
        hint = f"allowed {knob.allowed}"
        if changed:
            hint += f" · <span class='knob-changed'>scenario: {_fmt_value(knob, ref_value)}</span>"
        solara.HTML(tag="div", unsafe_innerHTML=hint, classes=["knob-doc"])


@solara.component
def Knob(knob: kn.Knob, value: Any, ref_value: Any, error: str | None):
    css = knob.key.replace(".", "-")
    if knob.kind == "number" or knob.kind in ("float", "int"):
        NumberKnob(knob, value, ref_value, error)
        return
    with solara.Column(gap="0px", classes=["knob", f"knob-{css}"]):
        changed = value != ref_value
        note = f" · <span class='knob-changed'>scenario: {_fmt_value(knob, ref_value)}</span>" if changed else ""
        if knob.kind == "bool":
            solara.Switch(label=knob.label, value=bool(value), on_value=lambda v, knob=knob: set_value(knob.key, bool(v)))
            solara.HTML(tag="div", unsafe_innerHTML=knob.doc + note, classes=["knob-doc"])
        else:
            solara.HTML(tag="div", unsafe_innerHTML=f"<span class='knob-label'>{knob.label}</span>")
            solara.HTML(tag="div", unsafe_innerHTML=knob.doc, classes=["knob-doc"])
            solara.Select(label="", values=list(knob.choices), value=str(value), on_value=lambda v, knob=knob: set_value(knob.key, v), dense=True)
            if note:
                solara.HTML(tag="div", unsafe_innerHTML=note[3:], classes=["knob-doc"])


@solara.component
def Controls():
    vals = current_values()
    ref = reference(scenario.value)
    core, mechs = knob_groups()
    errs = current_errors(vals)
    names = sorted(available_scenarios())
    with solara.Column(gap="6px"):
        solara.HTML(tag="div", unsafe_innerHTML="Scenario", classes=["section-title"])
        solara.Select(label="named scenario, platform preset or strategy", values=names, value=scenario.value, on_value=choose_scenario)
        solara.HTML(tag="div", unsafe_innerHTML=scenario_description(scenario.value), classes=["knob-doc"])
        with solara.Row(gap="8px", style={"align-items": "center"}):
            solara.Button("Run", icon_name="mdi-play", color="primary", on_click=start_run, disabled=bool(errs), classes=["run-button"])
            solara.Button("Reset to scenario", icon_name="mdi-restore", outlined=True, on_click=reset, classes=["reset-button"])
        solara.Switch(label="run again when a setting changes", value=auto_run)
        if not errs:
            changes = kn.overrides(vals, ref, all_knobs())
            text = " ".join(changes) if changes else "none"
            solara.HTML(tag="div", unsafe_innerHTML=f"changes from the scenario: <code class='pending-overrides'>{text}</code>",
                        classes=["knob-doc"])
        solara.HTML(tag="div", unsafe_innerHTML="Market and run", classes=["section-title"])
        for knob in core:
            Knob(knob, vals[knob.key], ref[knob.key], errs.get(knob.key))
        solara.HTML(tag="div", unsafe_innerHTML="Mechanisms", classes=["section-title"])
        with solara.v.ExpansionPanels(multiple=True, accordion=True, value=[i for i, ks in enumerate(mechs.values()) if vals.get(ks[0].key)]):
            for name, ks in mechs.items():
                enabled = bool(vals.get(ks[0].key))
                bad = any(k.key in errs for k in ks)
                with solara.v.ExpansionPanel():
                    with solara.v.ExpansionPanelHeader():
                        solara.HTML(tag="div", unsafe_innerHTML=f"<b>{name.replace('_', ' ')}</b> &nbsp;<span class='knob-unit'>"
                                    f"{'on' if enabled else 'off'}{' · check values' if bad else ''}</span>")
                    with solara.v.ExpansionPanelContent():
                        for knob in ks:
                            if knob is ks[0] or enabled:
                                Knob(knob, vals[knob.key], ref[knob.key], errs.get(knob.key))


# ------------------------------------------------------------------------------ results
def kpis(snap: Snapshot) -> list[tuple[str, str, str]]:
    """(name, label, value) of the headline numbers so far."""
    d = snap.daily
    last = d.iloc[-1]
    ret = snap.retention

    def at(age: int) -> str:
        return f"{ret[age]:.1%}" if age < ret.size and np.isfinite(ret[age]) else "–"

    mau = float(last["mau"])
    return [
        ("users", "users acquired", f"{int(last['cumulative_users']):,}"),
        ("users-now", "users now (not churned)", f"{int(last['users']):,}"),
        ("mau", "MAU", f"{int(mau):,}"),
        ("stickiness", "DAU/MAU", f"{last['dau'] / mau:.1%}" if mau else "–"),
        ("retention", "day-1 / day-7 / day-30 retention", f"{at(1)} / {at(7)} / {at(30)}"),
        ("gmv", "GMV (RMB)", f"{d['gmv'].sum():,.0f}"),
        ("profit", "profit (RMB)", f"{d['profit'].sum():,.0f}"),
    ]


def pnl_html(result: sim.RunResult) -> str:
    """The run's P&L over the horizon as the run report has it (:func:`sim.report.pnl_rows`): each
    line of the statement, the accounts under it, the value of the users left; RMB and share of GMV."""
    from sim.report import fmt, pnl_rows

    rows = "".join(f"<tr class='{kind}'><td>{html.escape(label)}</td><td>{fmt(amount)}</td><td>{fmt(share, '{:.1%}')}</td>"
                   f"<td>{html.escape(what)}</td></tr>" for label, amount, share, what, kind in pnl_rows(result.summary, result.daily, result.config))
    return f"<table class='pnl'><tr><th>line</th><th>RMB</th><th>of GMV</th><th>what it is</th></tr>{rows}</table>"


@solara.component
def Kpis(snap: Snapshot):
    with solara.Row(gap="10px", style={"flex-wrap": "wrap"}):
        for name, label, value in kpis(snap):
            solara.HTML(tag="div", unsafe_innerHTML=f"<b>{value}</b><span>{label}</span>", classes=["kpi", f"kpi-{name}"])


@solara.component
def GraphView(snap: Snapshot):
    g = snap.graph
    if g.empty:
        solara.Info("This graph has no edges to draw (a well-mixed market), so there is no social graph to show.")
        return
    days = len(snap.graph_states)
    day = days - 1 if graph_day.value is None else min(graph_day.value, days - 1)
    with solara.Column(gap="0px", classes=["graph-card"]):
        Chart(charts.graph_view(g.xy, g.edges, snap.graph_states[day], day), "graph", height=440)
        with solara.Row(style={"align-items": "center"}):
            solara.SliderInt("day shown", value=day, min=0, max=max(days - 1, 0), on_value=graph_day.set, thumb_label=True)
            solara.Button("follow the run", text=True, on_click=lambda: graph_day.set(None), disabled=graph_day.value is None)


@solara.component
def Reproduce(done: Finished | None):
    if done is None:
        return
    solara.HTML(tag="div", unsafe_innerHTML="Reproduce and download", classes=["section-title"])
    with solara.Row(gap="10px", style={"align-items": "center"}):
        solara.HTML(tag="div", unsafe_innerHTML=done.command, classes=["command", "run-command"])
        CopyButton(text=done.command)
    cfg = done.result.config
    solara.FileDownload(lambda: run_folder_zip(done.result)[1], filename=f"{cfg.scenario}_seed{cfg.seed}_run.zip",
                        label="Download the run folder (.zip: data, plots, report)")


@solara.component
def RunView():
    snap = live.value
    done = run_simulation.value if run_simulation.finished else None
    if run_error.value:
        solara.Error(run_error.value, classes=["run-error"])
    if snap is None:
        if run_simulation.pending:
            solara.ProgressLinear(True)
            solara.HTML(tag="div", unsafe_innerHTML="building the population and its social graph…", classes=["status"])
        else:
            solara.Info("Choose a scenario and press Run. Curves appear while the simulation runs.")
        return
    running = run_simulation.pending
    status = (f"day {snap.day + 1} of {snap.horizon}" + (" · running…" if running else " · done")
              + f" · {snap.seconds:.1f} s")
    with solara.Row(style={"align-items": "center"}):
        solara.HTML(tag="div", unsafe_innerHTML=status, classes=["status", "run-status-done" if not running and snap.done else "run-status"])
    solara.ProgressLinear(100 * snap.progress if running else False)
    Kpis(snap)
    with solara.Div(classes=["chart-grid"]):
        Chart(charts.growth(snap.daily, snap.horizon), "growth")
        Chart(charts.activity(snap.daily, snap.horizon), "activity")
        Chart(charts.retention(snap.retention), "retention")
        Chart(charts.money(snap.daily, snap.horizon), "money")
    if not running and done is not None:
        solara.HTML(tag="div", unsafe_innerHTML="Profit and loss over the horizon", classes=["section-title"])
        solara.HTML(tag="div", unsafe_innerHTML=pnl_html(done.result), classes=["run-pnl", "table-box"])
    GraphView(snap)
    if not running:
        Reproduce(done)


@solara.component
def Question():
    """The decision: maximise (or minimise) a metric subject to constraints, as ``sim compare decision=``."""
    error = cp.decision_error(sense.value, objective.value, constraints.value)

    def choose_objective(m: str) -> None:
        objective.value = m
        sense.value = cp.sense_of(m)

    with solara.Row(gap="12px", classes=["question"], style={"align-items": "center", "flex-wrap": "wrap"}):
        solara.Select("decide", values=["maximise", "minimise"], value=sense, style={"max-width": "130px"}, classes=["decision-sense"])
        solara.Select("objective", values=list(cp.OBJECTIVES), value=objective.value, on_value=choose_objective,
                      style={"max-width": "230px"}, classes=["decision-objective"])
        combo = solara.v.Combobox(label="subject to (a form below, or type METRIC OP VALUE; several joined by ;)",
                                  items=[*cp.CONSTRAINTS, cp.NO_CONSTRAINT], v_model=constraints.value,
                                  error_messages=[error] if error else [], style_="min-width:420px; max-width:560px",
                                  class_="decision-constraints")
        solara.v.use_event(combo, "change", lambda widget, event, v: constraints.set(v if isinstance(v, str) else ""))


@solara.component
def Assumptions(a: str, b: str):
    """Uncertain inputs: a numeric setting the strategies share, drawn once per replicate."""
    pair = strategy_pair(a, b)
    eligible = cp.assumption_keys(pair, all_knobs()) if pair else []
    by_key = {k.key: k for k in all_knobs()}
    rows = list(assumptions.value)

    def shared_value(key: str) -> float:
        return float(pair[0][1][key]) if pair else float(reference(scenario.value)[key])

    def put(i: int, row: cp.Assumption | None) -> None:
        new = list(assumptions.value)
        if row is None:
            del new[i]
        else:
            new[i] = row
        assumptions.value = tuple(new)

    def add() -> None:
        used = {r.key for r in assumptions.value}
        knob = next((k for k in eligible if k.key not in used), None)
        if knob is not None:
            assumptions.value = (*assumptions.value, cp.assumption_around(knob, shared_value(knob.key)))

    with solara.Row(gap="10px", style={"align-items": "center"}):
        solara.Button("Add an uncertain assumption", icon_name="mdi-plus", text=True, on_click=add,
                      disabled=not eligible or len(rows) >= len(eligible), classes=["add-assumption"])
        if rows:
            solara.HTML(tag="div", classes=["knob-doc"], unsafe_innerHTML=(
                "each replicate draws every assumption once, the same for both strategies; the same seeds run again with every "
                "assumption at its centre (noise only): twice the runs"))
    for i, row in enumerate(rows):
        keys = [k.key for k in eligible] + ([] if row.key in {k.key for k in eligible} else [row.key])
        with solara.Row(gap="10px", classes=["assumption", f"assumption-{i}"], style={"align-items": "center", "flex-wrap": "wrap"}):
            solara.Select("setting", values=keys, value=row.key, style={"min-width": "300px", "max-width": "340px"},
                          on_value=lambda k, i=i: put(i, cp.assumption_around(by_key[k], shared_value(k))))
            solara.Select("distribution", values=list(cp.DISTRIBUTIONS), value=row.kind, style={"max-width": "130px"},
                          on_value=lambda v, i=i, row=row: put(i, dataclasses.replace(row, kind=v)))
            ends = ["low", "mode", "high"] if row.kind == "triangular" else ["low", "high"]
            for end in ends:
                solara.InputFloat(end, value=getattr(row, end), style={"max-width": "95px"}, classes=[f"assumption-{end}"],
                                  on_value=lambda v, i=i, row=row, end=end: put(i, dataclasses.replace(row, **{end: v})) if v is not None else None)
            unit = by_key[row.key].unit if row.key in by_key else ""
            solara.HTML(tag="div", unsafe_innerHTML=html.escape(unit), classes=["knob-unit"])
            solara.Button(icon_name="mdi-close", icon=True, on_click=lambda i=i: put(i, None), classes=["remove-assumption"])
        error = cp.assumption_error(row)
        if error:
            solara.HTML(tag="div", unsafe_innerHTML=html.escape(error), classes=["knob-changed", "assumption-error"])


@solara.component
def CompareView():
    names = sorted(available_scenarios())
    options = [cp.ON_SCREEN, *names]
    a = compare_a.value or scenario.value
    solara.HTML(tag="div", unsafe_innerHTML="Compare two strategies", classes=["section-title"])
    solara.HTML(tag="div", classes=["knob-doc"], unsafe_innerHTML=(
        "The comparison <code>sim compare</code> makes: every strategy runs the same replicates, whose seeds are derived from "
        "the on-screen seed (common random numbers), so differences are paired. Named scenarios run at the on-screen "
        "population and horizon. Bands are 95 % intervals of the mean over the replicates."))
    with solara.Row(gap="12px", style={"align-items": "center", "flex-wrap": "wrap"}):
        solara.Select("strategy A (baseline)", values=options, value=a, on_value=compare_a.set, style={"max-width": "260px"})
        solara.Select("strategy B", values=options, value=compare_b.value, on_value=compare_b.set, style={"max-width": "260px"})
        with solara.Div(classes=["replicates"], style={"min-width": "220px"}):
            solara.SliderInt("replicates", value=replicates, min=2, max=12, thumb_label="always")
        solara.Button("Compare", icon_name="mdi-scale-balance", color="primary", classes=["compare-button"],
                      on_click=lambda: run_comparison(a, compare_b.value, replicates.value))
    Question()
    Assumptions(a, compare_b.value)
    if compare_error.value:
        solara.Error(compare_error.value, classes=["compare-error"])
    if run_comparison.pending:
        done, total = compare_runs.value
        solara.ProgressLinear(run_comparison.progress or True)
        text = f"{done} of {total} runs done…" if total else "composing the strategies…"
        solara.HTML(tag="div", unsafe_innerHTML=text, classes=["status", "compare-status"])
        return
    cmp = run_comparison.value if run_comparison.finished else None
    if cmp is None:
        return
    CompareResult(cmp)


@solara.component
def CompareResult(cmp):
    labels = cmp.strategies
    n = len(cmp.seeds)
    uncertain = cmp.uncertainty is not None
    solara.HTML(tag="div", unsafe_innerHTML=f"{len(cmp.horizon) * (2 if uncertain else 1)} runs in {cmp.wall_seconds:.1f} s · "
                f"baseline {cmp.baseline}" + (" · with assumptions, and again with each at its centre" if uncertain else ""),
                classes=["status", "compare-status-done"])
    if cmp.decision is not None:
        solara.HTML(tag="div", unsafe_innerHTML=html.escape(cmp.decision.line), classes=["decision-line"])
        with solara.Row(gap="10px", style={"flex-wrap": "wrap"}, classes=["decision-items"]):
            for name, label, value in cp.decision_items(cmp):
                solara.HTML(tag="div", unsafe_innerHTML=f"<b>{html.escape(value)}</b><span>{html.escape(label)}</span>",
                            classes=["kpi", f"decision-{name}"])
    for text in cp.headline_verdicts(cmp):
        solara.HTML(tag="div", unsafe_innerHTML=html.escape(text), classes=["status", "verdict"])
    with solara.Div(classes=["chart-grid"]):
        for name, (_, _, title, unit) in cp.CURVES.items():
            Chart(charts.band_chart(cp.curve_bands(cmp, name), labels, title, unit), f"cmp-{name.replace('_', '-')}")
        Chart(charts.band_chart(cp.retention_bands(cmp), labels, "Day-N retention", "% of cohort (log scale)",
                                "days since joining", percent=True, log=True), "cmp-retention")
    if uncertain:
        meta = METRICS[cmp.decision.question.objective if cmp.decision is not None else cp.OBJECTIVE]
        Chart(charts.difference_chart(cp.objective_replicates(cmp), f"{meta.label.capitalize()}: {labels[1]} − {labels[0]}, per replicate",
                                      meta.unit or "difference"), "cmp-objective", height=210)
        solara.HTML(tag="div", classes=["knob-doc"], unsafe_innerHTML=(
            "Curves and their bands are the runs with the assumptions drawn. Per replicate: each dot is one replicate's paired "
            "difference, the light bar the 95 % interval of the mean with the assumptions drawn, the darker one with noise only "
            "(every assumption at its centre)."))
        solara.HTML(tag="div", unsafe_innerHTML="Which assumption could flip the decision", classes=["section-title"])
        solara.HTML(tag="div", classes=["flip-table", "table-box"], unsafe_innerHTML=(
            f"{cp.table_html(cp.flip_rows(cmp))}<div class='knob-doc'>Spearman: rank correlation of the draw with the difference "
            f"(within about ±{1.96 / max(n - 1, 1) ** 0.5:.2f} chance alone gives it with {n} replicates); the replicates split at "
            "the draw's median, the mean difference and the recommendation in each half; <b>yes</b> when the sign or the "
            "recommendation changes.</div>"))
    note = ("; with assumptions, the same with noise only and the share of the variance of a replicate's difference they bring"
            if uncertain else "")
    solara.HTML(tag="div", unsafe_innerHTML="Profit and loss", classes=["section-title"])
    solara.HTML(tag="div", classes=["compare-pnl", "table-box"], unsafe_innerHTML=(
        f"{cp.table_html(cp.pnl_rows(cmp))}<div class='knob-doc'>RMB over the horizon, mean [95 % interval] over {n} replicates; "
        f"the difference from the baseline is paired replicate by replicate{note}. Lines zero in every run are left out.</div>"))
    solara.HTML(tag="div", unsafe_innerHTML="Users, retention and unit economics", classes=["section-title"])
    solara.HTML(tag="div", classes=["compare-table", "table-box"], unsafe_innerHTML=(
        f"{cp.table_html(cp.summary_rows(cmp))}<div class='knob-doc'>mean [95 % interval] over {n} replicates; "
        "the paired difference from the baseline (in % of its mean, or in the metric's unit near zero) with its "
        f"interval, and in how many replicates the strategy was higher{note}.</div>"))
    solara.HTML(tag="div", unsafe_innerHTML="Reproduce and download", classes=["section-title"])
    for s in cp.strategies_of(cmp):
        with solara.Row(gap="10px", style={"align-items": "center"}):
            solara.HTML(tag="div", unsafe_innerHTML=html.escape(f"{s.label}: {s.command} seed=<replicate seed>"), classes=["command"])
            CopyButton(text=s.command)
    yaml_text = experiment_yaml(cmp.spec, cmp.name)
    solara.HTML(tag="details", classes=["knob-doc", "experiment-yaml"], unsafe_innerHTML=(
        f"<summary>The experiment: <code>sim compare experiment=config.yaml</code> reruns this comparison exactly (the "
        f"download holds this file; replicate seeds are in <code>horizon.parquet</code>)</summary><pre>{html.escape(yaml_text)}</pre>"))
    solara.FileDownload(lambda: cp.comparison_zip(cmp)[1], filename=f"comparison_{'_vs_'.join(labels).replace(' ', '-')}.zip",
                        label="Download the comparison folder (.zip: report.html, data, plots, configs)")


@solara.component
def Page():
    solara.Title("growth-sim dashboard")
    solara.Style(CSS)
    overrides, errs = current_overrides()

    def maybe_run():
        if auto_run.value and not errs:
            run_simulation(scenario.value, tuple(overrides))

    solara.use_effect(maybe_run, [scenario.value, tuple(overrides), bool(errs)])
    with solara.Column(gap="0px", style={"height": "100vh"}):
        solara.HTML(tag="div", unsafe_innerHTML="<h1>growth-sim</h1><span>strategy dashboard · agent-based simulation of "
                    "user growth on a social e-commerce platform</span>", classes=["sim-header"])
        with solara.Row(gap="0px", style={"flex": "1", "align-items": "stretch"}):
            with solara.Column(classes=["sim-sidebar"]):
                Controls()
            with solara.Column(classes=["sim-main"]):
                if errs:
                    solara.Error(next(iter(errs.values())), classes=["config-error"])
                with solara.lab.Tabs(value=tab, color="primary"):
                    with solara.lab.Tab("Run", icon_name="mdi-chart-line"):
                        RunView()
                    with solara.lab.Tab("Compare strategies", icon_name="mdi-scale-balance"):
                        CompareView()

