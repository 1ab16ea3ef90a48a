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
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from sim import folders
from sim.config import SimConfig, compose, dump_yaml, input_files
from sim.engine import GrowthModel
from sim.folders import AtomicFolder, HelperProcess, read_manifest, slug, write_manifest
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

    ``plots_next``: a run folder with plots is written next; the plotting modules are imported in a
    background thread meanwhile (:func:`preload_plots`), from the second day on."""
    t0 = time.perf_counter()
    model = GrowthModel(cfg)
    t_build = time.perf_counter() - t0
    while model.running and model.day + 1 < cfg.horizon:
        model.step()
        if plots_next:
            preload_plots()
            plots_next = False
        if progress is not None:
            progress(model)
    t_sim = time.perf_counter() - t0 - t_build
    daily = model.metrics.daily(model.economics)
    info = summary(model, daily)
    info.update({
        "scenario": cfg.scenario, "seed": cfg.seed, "version": __version__, "git_revision": git_revision(),
        "build_seconds": round(t_build, 4), "simulate_seconds": round(t_sim, 4),
        "wall_seconds": round(time.perf_counter() - t0, 4),
        "mechanisms": cfg.enabled(),
        "graph_notes": list(getattr(model.graph, "notes", ())),
        "inputs": input_hashes(input_files(cfg)),  # what the run read, for `sim run --config` to notice a change
    })
    return RunResult(model.cfg, daily, model.metrics.cohorts(), channel_table(model, daily), info, model=model)


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


#: The thread importing the plotting modules, once started (:func:`preload_plots`).
_PRELOAD: list[threading.Thread] = []


def preload_plots() -> None:
    """Start importing the plotting modules (matplotlib, a third of a second or more) in a background
    thread, once per process, so that the run folder written next finds them loaded. Meant to run
    while a simulation does: its compiled kernels leave the interpreter to other threads. Started
    after the first simulated day, when the simulation has imported all it needs (two threads
    importing the same modules for the first time could wait on each other)."""
    if _PRELOAD or "sim.plots" in sys.modules:
        return
    thread = threading.Thread(target=_import_plots, name="import plots", daemon=True)
    _PRELOAD.append(thread)
    thread.start()


def _import_plots() -> None:
    with contextlib.suppress(Exception):  # (an error shows again where the plots are drawn)
        from sim import plots

        plots.warm_up()


def _preloaded() -> None:
    """Wait for :func:`preload_plots`'s import to end: a fork while a thread imports could copy its
    locks held."""
    for thread in _PRELOAD:
        thread.join()


def is_complete(folder: Path) -> bool:
    """A run folder is complete when its manifest lists every run file and all it lists match
    (:func:`sim.folders.is_complete`)."""
    return folders.is_complete(folder, RUN_FILES)


def write_run_folder(result: RunResult, out: Path, plots: bool = True, name: str | None = None, replace: bool = False,
                     parallel: bool | None = None) -> Path:
    """Write the run folder under ``out`` (named ``name``, default: time stamp, scenario and seed);
    ``replace``: see :func:`publish` (sweep jobs). ``parallel``: a forked helper process draws part
    of the plots meanwhile (default: when this process has a core to spare, :func:`spare_core`)."""
    cfg = result.config
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = AtomicFolder(out, name or f"{stamp}_{slug(cfg.scenario)}_seed{cfg.seed}", replace=replace, required=RUN_FILES)
    shares = 2 if plots and (spare_core() if parallel is None else parallel) else 1
    _preloaded()
    with folder as tmp, contextlib.ExitStack() as helpers:
        if shares == 2:  # (forked first, so that it draws while this process writes the tables)
            helper = helpers.enter_context(HelperProcess(lambda: _draw(result, tmp / "plots", (1, 2))))
        (tmp / "config.yaml").write_text(dump_yaml(cfg))
        result.daily.to_parquet(tmp / "daily.parquet", index=False)
        result.cohorts.to_parquet(tmp / "cohorts.parquet", index=False)
        result.channels.to_parquet(tmp / "channels.parquet", index=False)
        (tmp / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
        from sim.report import run_report

        figures = _draw(result, tmp / "plots", (0, shares)) if plots else {}
        (tmp / "report.html").write_text(run_report(result, figures))
        if shares == 2:
            helper.wait()
        write_manifest(tmp, folder.name)
    return folder.path


def _draw(result: RunResult, folder: Path, share: tuple[int, int]) -> dict[str, Path]:
    from sim import plots as plotting

    return plotting.run_plots(result, folder, share)


def spare_core() -> bool:
    """Whether this process may keep a second core busy with a forked helper: it may run on two or
    more; it is not a worker of a process pool (a comparison's, a sweep's), whose workers already
    keep them busy; and this is its main thread (a server's other threads may hold locks a fork would
    copy held)."""
    import multiprocessing
    import threading

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # (not on Linux)
        cores = os.cpu_count() or 1
    return (cores >= 2 and hasattr(os, "fork") and multiprocessing.parent_process() is None
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
