"""One run: simulate a validated configuration and write its run folder atomically.

A run folder holds ``config.yaml`` (fully resolved), ``daily.parquet``, ``cohorts.parquet``,
``channels.parquet``, ``summary.json``, ``plots/*.png`` and ``report.html``. It is assembled in a
hidden temporary folder next to its destination and renamed into place only when complete, so a
folder appears whole or not at all; an existing folder is never overwritten.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from sim import __version__
from sim.config import SimConfig, compose, dump_yaml, input_files
from sim.inputs import input_hashes
from sim.engine import GrowthModel
from sim.metrics import channel_table, summary
from sim.schema import ConfigError

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


def simulate(cfg: SimConfig, progress=None) -> RunResult:
    """Build the model, run it to the horizon, and collect its outputs (no files written)."""
    t0 = time.perf_counter()
    model = GrowthModel(cfg)
    t_build = time.perf_counter() - t0
    while model.running and model.day + 1 < cfg.horizon:
        model.step()
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
    cfg = compose(scenario, overrides, seed=seed)
    result = simulate(cfg)
    if out is not None:
        result.save(out, plots=plots)
    return result


# ---------------------------------------------------------------------------------- writing
def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)[:60]


#: Free space a results folder must have before any work starts (a run folder of 1M people is a few MB).
MIN_FREE_BYTES = 64 * 2**20


def prepare_parent(out: Path) -> Path:
    """Create ``out`` if needed and check it is writable, before any work is done; remove what
    killed writers left behind (hidden temporary folders of processes that no longer exist)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"out = {str(out)!r}: cannot create the results folder ({exc.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"out = {str(out)!r}: the results folder is not writable")
    free = shutil.disk_usage(out).free
    if free < MIN_FREE_BYTES:
        raise ConfigError(f"out = {str(out)!r}: only {free / 2**20:.1f} MB free on its disk; results need at least "
                          f"{MIN_FREE_BYTES / 2**20:.0f} MB")
    remove_stale_temporaries(out)
    return out


_TMP = re.compile(r"^\.tmp-p(\d+)-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(parent: Path) -> list[Path]:
    """Delete ``.tmp-p<pid>-*`` folders whose writing process has died (killed mid-write)."""
    removed = []
    for path in parent.glob(".tmp-p*"):
        m = _TMP.match(path.name)
        if m and path.is_dir() and not _alive(int(m.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def publish(tmp: Path, parent: Path, name: str) -> Path:
    """Rename a finished temporary folder to ``parent/name`` (or name-2, -3, ...) without overwriting."""
    for k in range(1, 10_000):
        dest = parent / (name if k == 1 else f"{name}-{k}")
        if dest.exists():
            continue
        try:
            os.rename(tmp, dest)  # atomic on one filesystem; fails rather than replace a non-empty folder
            return dest
        except OSError:
            if not dest.exists():
                raise
    raise OSError(f"no free run-folder name under {parent}")


class AtomicFolder:
    """Context manager: a hidden temporary folder published under ``parent`` on success, removed on failure."""

    def __init__(self, parent: Path, name: str):
        self.parent = prepare_parent(Path(parent))
        self.name = name
        self.path: Path | None = None
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        self.tmp = Path(tempfile.mkdtemp(prefix=f".tmp-p{os.getpid()}-{self.name}-", dir=self.parent))
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            try:
                self.path = publish(self.tmp, self.parent, self.name)
                return False
            except OSError as err:
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise self.write_error(err) from err
            except BaseException:
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise
        shutil.rmtree(self.tmp, ignore_errors=True)
        if isinstance(exc, OSError):  # a full disk, a lost permission, a read-only file system: one line
            raise self.write_error(exc) from exc
        return False

    def write_error(self, err: OSError) -> ConfigError:
        reason = err.strerror or str(err) or type(err).__name__
        return ConfigError(f"out = {str(self.parent)!r}: could not write {self.name} ({reason}); nothing was kept")


def write_run_folder(result: RunResult, out: Path, plots: bool = True, name: str | None = None) -> Path:
    """Write the run folder under ``out`` (named ``name``, default: time stamp, scenario and seed)."""
    cfg = result.config
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = AtomicFolder(out, name or f"{stamp}_{_slug(cfg.scenario)}_seed{cfg.seed}")
    with folder as tmp:
        (tmp / "config.yaml").write_text(dump_yaml(cfg))
        result.daily.to_parquet(tmp / "daily.parquet", index=False)
        result.cohorts.to_parquet(tmp / "cohorts.parquet", index=False)
        result.channels.to_parquet(tmp / "channels.parquet", index=False)
        (tmp / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
        from sim import plots as plotting
        from sim.report import run_report

        figures = plotting.run_plots(result, tmp / "plots") if plots else {}
        (tmp / "report.html").write_text(run_report(result, figures))
    return folder.path


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
