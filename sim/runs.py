"""One run: simulate a validated configuration and write its run folder atomically.

A run folder holds ``config.yaml`` (fully resolved), ``daily.parquet``, ``cohorts.parquet``,
``channels.parquet``, ``summary.json``, ``plots/*.png`` and ``report.html``. It is assembled in a
hidden temporary folder next to its destination and renamed into place only when complete, so a
folder appears whole or not at all; an existing folder is never overwritten.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from sim import folders
from sim.config import SimConfig, compose, dump_yaml, input_files
from sim.engine import GrowthModel
from sim.folders import AtomicFolder, HelperProcess, read_manifest, slug, write_manifest, write_table
from sim.halves import cores
from sim.inputs import input_hashes
from sim.metrics import channel_table, summary
from sim.schema import ConfigError
from sim.version import __version__

RUN_FILES = ("config.yaml", "daily.parquet", "cohorts.parquet", "channels.parquet", "summary.json", "report.html")


@dataclass
class RunResult:
    """What a run produced: the frames of its run folder, in memory."""

    config: SimConfig
    daily: pd.DataFrame
    cohorts: pd.DataFrame
    channels: pd.DataFrame
    summary: dict
    path: Path | None = None
    model: GrowthModel | None = field(default=None, repr=False)
    plot_helper: PlotHelper | None = field(default=None, repr=False, compare=False)  # (simulate(plots_next=True))

    def save(self, out: str | os.PathLike | None = None, plots: bool = True) -> Path:
        """Write the run folder under ``out`` (default: the config's ``out``) and return its path."""
        self.path = write_run_folder(self, Path(out if out is not None else self.config.out), plots=plots)
        return self.path


def git_revision() -> str | None:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=5)
        return rev.stdout.strip() or None if rev.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def simulate(cfg: SimConfig, progress=None, plots_next: bool = False) -> RunResult:
    """Build the model, run it to the horizon, and collect its outputs (no files written).

    ``plots_next``: a run folder with plots is written next (:func:`write_run_folder`); when this
    process has a core to spare, the process that will draw them starts now (:class:`PlotHelper`)."""
    helper = PlotHelper() if plots_next and spare_core() else None
    try:
        return _simulate(cfg, progress, helper)
    except BaseException:
        if helper is not None:
            helper.stop()
        raise


def _simulate(cfg: SimConfig, progress, helper: PlotHelper | None) -> RunResult:
    t0 = time.perf_counter()
    model = GrowthModel(cfg)
    t_build = time.perf_counter() - t0
    while model.running and model.day + 1 < cfg.horizon:
        model.step()
        if progress is not None:
            progress(model)
    t_sim = time.perf_counter() - t0 - t_build
    daily = model.metrics.daily(model.economics)
    if helper is not None:  # (it draws the daily table's plots while the other tables are made and written)
        helper.begin(model.cfg, daily)
    info = summary(model, daily)
    info.update({
        "scenario": cfg.scenario, "seed": cfg.seed, "version": __version__, "git_revision": git_revision(),
        "build_seconds": round(t_build, 4), "simulate_seconds": round(t_sim, 4),
        "wall_seconds": round(time.perf_counter() - t0, 4),
        "mechanisms": cfg.enabled(),
        "graph_notes": list(getattr(model.graph, "notes", ())),
        "inputs": input_hashes(input_files(cfg)),  # what the run read, for `sim run --config` to notice a change
    })
    cohorts = model.metrics.cohorts()
    if helper is not None:  # (it draws the cohort table's plots next, while the tables are written)
        helper.cohorts(cohorts)
    return RunResult(model.cfg, daily, cohorts, channel_table(model, daily), info, model=model, plot_helper=helper)


def run(scenario: str = "default", overrides: Sequence[str] = (), seed: int | None = None,
        out: str | os.PathLike | None = None, plots: bool = True) -> RunResult:
    """Compose ``scenario`` with Hydra-style ``overrides``, simulate it and return a :class:`RunResult`.

    With ``out`` the run folder is also written there (``result.path``).
    """
    cfg = compose(scenario, overrides, seed=seed, warn=True)
    result = simulate(cfg, plots_next=out is not None and plots)
    if out is not None:
        result.save(out, plots=plots)
    return result


class PlotHelper:
    """A helper process forked as a simulation starts (``simulate(plots_next=True)``), importing the
    plotting modules on the core the simulation leaves free, then waiting. The writer never draws
    nor imports the plotting library: as soon as the daily table exists it hands it over
    (:meth:`begin`), and the helper forks a second helper of its own (matplotlib loaded) and the two
    draw their shares of the daily table's plots into memory; the cohort table follows as soon as it
    is made (:meth:`cohorts`), and they draw its plots while the writer writes the tables; once told
    the folder (:meth:`draw`) they write every PNG into it. The tables are handed over in memory (a
    pickle through a pipe: milliseconds, where reading the cohort table's file back took a helper
    0.05-0.7 s), and a table and what its file gives back are equal, types included, so the figures
    are the same bytes as those drawn from the run folder. Forked before the model is built, it
    shares none of the model's memory (no copy-on-write of a large market's state). A helper of a
    result dropped unwritten is stopped with it (or at exit); one never handed the folder ends
    without writing."""

    def __init__(self):
        self.process = HelperProcess(_draw_order, prepare=_prepare_plots).start()
        self._stop = weakref.finalize(self, self.process.stop)

    def begin(self, config: SimConfig, daily: pd.DataFrame) -> None:
        """Hand the helper the run's configuration and daily table (written to it by a thread: a
        small run may end before the helper has loaded the plotting library and reads it)."""
        self.process.send((config, daily), more=True, background=True)

    def cohorts(self, table: pd.DataFrame) -> None:
        """Hand the helper the cohort table (by a thread too, after the daily table)."""
        self.process.send(table, more=True, background=True)

    def draw(self, folder: Path) -> None:
        """Tell the helper the folder to write the plots into."""
        self.process.send(str(folder))

    def wait(self) -> dict[str, Path]:
        """Wait for the helper; name -> path of every plot of the run (as :func:`sim.plots.run_plots`)."""
        return self.process.wait()

    def stop(self) -> None:
        self._stop()


def _prepare_plots() -> None:
    from sim import plots

    plots.warm_up()


def _draw_order(order: tuple[SimConfig, pd.DataFrame]) -> dict[str, Path]:
    """In the :class:`PlotHelper`: fork a helper for half the plots and draw the other half; the
    writer's next orders (the cohort table, the folder) are passed on to that helper as they come."""
    import queue
    import threading
    from types import SimpleNamespace

    config, daily = order
    result = SimpleNamespace(config=config, daily=daily, cohorts=None)
    with HelperProcess(lambda share: _draw_share(result, share, folders.next_order)) as other:
        other.send((1, 2), more=True)
        passed: queue.SimpleQueue = queue.SimpleQueue()

        def pass_on() -> None:  # (a thread: the orders are passed on while this process draws)
            try:
                table = folders.next_order()
                passed.put((True, table))  # (this process draws from it while it goes to the other)
                other.send(table, more=True)
                folder = folders.next_order()
                other.send(folder)  # (sent before this process may finish and wait for the other)
                passed.put((True, folder))
            except BaseException as exc:  # noqa: BLE001 (raised where it is waited for)
                passed.put((False, exc))

        relay = threading.Thread(target=pass_on, name="pass on", daemon=True)
        relay.start()

        def received():
            ok, value = passed.get()
            if not ok:
                raise value
            return value

        figures = _draw_share(result, (0, 2), received)
        relay.join()  # (the other helper is the relay's until it has sent the folder)
        other.wait()
    return figures


def _draw_share(result, share: tuple[int, int], next_order) -> dict[str, Path]:
    """Draw share ``share`` of a run's plots (:func:`sim.plots.split`) into memory: those of the daily
    table first, then, once ``next_order()`` gives the cohort table, those of the cohort table; then,
    once ``next_order()`` gives the folder, write them all into it."""
    from sim import plots

    plan = plots.run_plan(result)
    mine = plots.split(list(plan), share[1], writer_draws=False, seconds=plots.draw_seconds(result))[share[0]]
    files = plots.draw_in_memory(plan, [name for name in mine if name not in plots.COHORT_PLOTS])
    result.cohorts = next_order()
    later = [name for name in mine if name in plots.COHORT_PLOTS]
    if later:
        files |= plots.draw_in_memory(plots.run_plan(result), later)
    folder = Path(next_order())
    folder.mkdir(exist_ok=True)  # (not its parent: a run's temporary folder, which a helper never recreates once removed)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {name: folder / f"{name}.png" for name in plan}


def is_complete(folder: Path) -> bool:
    """A run folder is complete when its manifest lists every run file and all it lists match
    (:func:`sim.folders.is_complete`)."""
    return folders.is_complete(folder, RUN_FILES)


def write_run_folder(result: RunResult, out: Path, plots: bool = True, name: str | None = None, replace: bool = False,
                     parallel: bool | None = None) -> Path:
    """Write the run folder under ``out`` (named ``name``, default: time stamp, scenario and seed);
    ``replace``: see :func:`publish` (sweep jobs). The plots: drawn by the helpers of
    ``simulate(plots_next=True)`` if it started them; otherwise ``parallel``: a helper forked now
    draws part of them while this process writes the tables and draws the rest (default: when this
    process has a core to spare, :func:`spare_core`). ``parallel=False``: this process alone."""
    cfg = result.config
    ahead, result.plot_helper = result.plot_helper, None  # (started by simulate: used once, or stopped)
    try:
        if ahead is not None and (not plots or parallel is False):
            ahead.stop()
            ahead = None
        shares = 2 if plots and ahead is None and (spare_core() if parallel is None else parallel) else 1
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = AtomicFolder(out, name or f"{stamp}_{slug(cfg.scenario)}_seed{cfg.seed}", replace=replace, required=RUN_FILES)
        # (helpers are stopped before the temporary folder is removed, on any way out)
        with folder as tmp, contextlib.ExitStack() as helpers:
            if ahead is not None:  # (it has the tables: only the folder to write its plots into)
                helpers.callback(ahead.stop)
                ahead.draw(tmp / "plots")
            elif shares == 2:  # (forked first, so that it draws while this process writes the tables)
                helper = helpers.enter_context(HelperProcess(lambda share: _draw(result, tmp / "plots", share)))
                helper.send((1, 2))
            config_yaml = dump_yaml(cfg)
            (tmp / "config.yaml").write_text(config_yaml)
            write_table(result.daily, tmp / "daily.parquet")
            write_table(result.cohorts, tmp / "cohorts.parquet")
            write_table(result.channels, tmp / "channels.parquet")
            (tmp / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
            from sim.report import run_report

            if ahead is not None:
                figures = ahead.wait()
            else:
                figures = _draw(result, tmp / "plots", (0, shares)) if plots else {}
                if shares == 2:
                    helper.wait()
            (tmp / "report.html").write_text(run_report(result, figures, config_yaml))
            write_manifest(tmp, folder.name)
    finally:
        if ahead is not None:
            ahead.stop()
    return folder.path


def _draw(result: RunResult, folder: Path, share: tuple[int, int], writer_draws: bool = True) -> dict[str, Path]:
    from sim import plots as plotting

    return plotting.run_plots(result, folder, share, writer_draws)


def spare_core() -> bool:
    """Whether this process may keep a second core busy with a forked helper: it may run on two or
    more; it is not a worker of a process pool (a comparison's, a sweep's), whose workers already
    keep them busy; and this is its main thread (a server's other threads may hold locks a fork would
    copy held)."""
    import multiprocessing
    import threading

    return (cores() >= 2 and hasattr(os, "fork") and multiprocessing.parent_process() is None
            and threading.current_thread() is threading.main_thread())


def load_run(path: str | os.PathLike) -> RunResult:
    """Read a run folder back into a :class:`RunResult` (without the model)."""
    from sim.config import load_yaml

    p = Path(path)
    missing = [f for f in RUN_FILES if not (p / f).exists()]
    if missing:
        raise ConfigError(f"{p}: not a complete run folder (missing {', '.join(missing)})")
    return RunResult(load_yaml(p / "config.yaml"), pd.read_parquet(p / "daily.parquet"),
                     pd.read_parquet(p / "cohorts.parquet"), pd.read_parquet(p / "channels.parquet"),
                     json.loads((p / "summary.json").read_text()), path=p)
