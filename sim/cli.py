"""The ``sim`` command.

    sim run [scenario=NAME] [key=value ...] [out=DIR]     one run; prints the run folder
    sim run --config RUN/config.yaml [key=value ...]      rerun a resolved config exactly
    sim run -m key=a,b seed=range(0,10) [hydra/launcher=ray]   a sweep (Hydra multirun); prints its folder
    sim run -m experiment=NAME                            the sweep of experiments/NAME.yaml
    sim compare scenario=A,B [replicates=30] [baseline=A] [key=value ...] [out=DIR]
    sim compare experiment=NAME                           rerun a named comparison exactly
    sim compare ... [world=fixed] ['decision=maximise users_end; profit >= baseline']   see docs/decisions.md
    sim sensitivity experiment=NAME [method=sobol] [samples=N] [key=value ...] [hydra/launcher=ray]   Morris / Sobol indices
    sim calibrate experiment=NAME [trials=N] [key=value ...]   fit parameters to target series (Optuna)
    sim optimise experiment=NAME [trials=N] [resume=true|DIR] [key=value ...]   the best settings for several objectives
                                                          under constraints (also `sim optimize`; Optuna, a resumable study)
    sim experiments                                       the named experiments
    sim check [NAME ...] [key=value ...] [--update]       regression check against experiments/baselines/
    sim config [scenario=NAME] [key=value ...]            print the resolved configuration
    sim keys [PREFIX]                                     every key: default, unit, allowed values
    sim scenarios                                         the named scenarios, presets and strategies
    sim validate [--quick] [--fact NAME ...] [key=value ...]   stylized facts: pass or fail, report
    sim dash [--port N] [--host H] [--open]               the interactive dashboard (a local web app)
    sim bench [--quick] [--sizes 10000,100000]            speed and memory, against Mesa and NDlib

Bad input (an unknown key, a value out of range, a broken edge list) prints one line naming the key,
the value and what is allowed, and exits with code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import signal
import sys
import threading
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from sim.schema import ConfigError, clip, excerpt

EXIT_USAGE = 2
EXIT_FAILED = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM (SLURM preemption, ``kill``): handled as Ctrl+C is, so every temporary is removed."""

    word = "terminated"


#: The interruptions this command received (SIGTERM or Ctrl+C), so that one that surfaces as another
#: error (raised inside numba's compiler, say, which turns it into a RuntimeError) is still reported
#: as the interruption it was.
_RECEIVED: list[type[KeyboardInterrupt]] = []


def _received(kind: type[KeyboardInterrupt]) -> KeyboardInterrupt:
    _RECEIVED.append(kind)
    sys.unraisablehook = lambda unraisable: None  # objects torn down half-built by the interruption
    return kind()


def _on_sigterm(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the clean-up is not interrupted again
    raise _received(Terminated)


def _on_sigint(signum, frame) -> None:
    raise _received(KeyboardInterrupt)


def _checkpoint() -> None:
    """Raise an interruption received earlier whose exception was lost (raised inside a destructor,
    where Python can only ignore it): called between simulated days and before writing results."""
    if _RECEIVED:
        raise _RECEIVED[-1]()


def _interrupted(exc: KeyboardInterrupt) -> tuple[str, int]:
    """The word and exit code of an interruption: 130 for Ctrl+C, 143 for SIGTERM."""
    if isinstance(exc, Terminated):
        return exc.word, 128 + signal.SIGTERM
    return "interrupted", 130


@functools.cache
def _bar_class():
    """tqdm without its monitor thread (it only corrects a bar whose updates stall with adaptive
    ``miniters``; these bars redraw on every update at most ten times a second)."""
    from tqdm import tqdm

    class Bar(tqdm):
        monitor_interval = 0

    return Bar


@contextmanager
def progress_bar(label: str, total: int | None = None, quiet: bool = False, unit: str = "it"):
    """A progress bar (tqdm) on stderr while the block runs, cleared when the block ends (finished,
    failed or interrupted) so the closing lines start on a clean line. Nothing when ``quiet`` or when
    stderr is not a terminal (a log file, a pipe), and never anything on stdout, which carries the
    folder path scripts read. Yields ``advance(done, total=None)``: how many are finished so far (and
    the total, once known)."""
    if quiet or not sys.stderr.isatty():
        yield lambda done, total=None: None
        return
    bar = None

    def advance(done: int, total: int | None = None) -> None:
        if total is not None and total != bar.total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        bar = _bar_class()(total=total, desc=label, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True,
                           miniters=1, mininterval=0.1)
        yield advance
    finally:
        if bar is not None:
            bar.close()


def _apply_overrides(data: dict, overrides: Sequence[str]) -> dict:
    """Apply ``key=value`` overrides (Hydra value grammar) to a plain config dict."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from sim.config import check_override_text

    from sim.schema import ConfigError

    cfg = OmegaConf.create(data)
    parser = OverridesParser.create()
    for text in overrides:
        check_override_text(text)
        try:
            ov = parser.parse_override(text)
        except Exception as exc:  # hydra raises its own parse errors; report them in one line
            raise ConfigError(f"override {excerpt(text)}: {clip(str(exc).splitlines()[0], 300)}") from None
        key = ov.key_or_group
        if OmegaConf.select(cfg, key, default="__missing__") == "__missing__":
            raise ConfigError(f"{key}: unknown key (a resolved config.yaml takes key=value overrides only)")
        OmegaConf.update(cfg, key, ov.value(), merge=False)
    return OmegaConf.to_container(cfg)


def save_failed_config(cfg, out: Path) -> Path:
    """Keep the resolved config of a run that broke an invariant, next to the run folders."""
    from datetime import datetime

    from sim.config import dump_yaml

    folder = out / "failed"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{datetime.now():%Y%m%d-%H%M%S}_{cfg.scenario}_seed{cfg.seed}.yaml"
    path.write_text(dump_yaml(cfg))
    return path


def warn_changed_inputs(config: Path, cfg) -> None:
    """One ``warning:`` line per input file a rerun of a run folder's ``config.yaml`` reads (its
    edge list) whose content differs from the hash that run recorded in ``summary.json``."""
    import json

    from sim.config import input_files
    from sim.inputs import changed_inputs, read_text

    summary = config.parent / "summary.json"
    if not summary.is_file():
        return
    try:
        recorded = json.loads(read_text(summary, limit=50_000_000)).get("inputs")
    except (ConfigError, ValueError, AttributeError):
        return
    for change in changed_inputs(recorded, input_files(cfg)):
        print(f"warning: {change}: changed since the run in {config.parent}; this rerun will not reproduce it", file=sys.stderr)


def cmd_run(args) -> int:
    from sim.config import compose, load_yaml, validate
    from sim.folders import prepare_parent
    from sim.schema import SimulationError, to_plain

    if args.multirun:
        return cmd_sweep(args)
    if args.config:
        cfg = load_yaml(args.config)
        if args.overrides:
            cfg = validate(_apply_overrides(to_plain(cfg), args.overrides))
        warn_changed_inputs(Path(args.config), cfg)
    else:
        cfg = compose(None, args.overrides, warn=True)
    from sim.runs import simulate, write_run_folder  # (the engine: not imported for a refused value)

    out = Path(cfg.out)
    prepare_parent(out)  # fail before simulating if results cannot be written
    try:
        with progress_bar(f"{cfg.scenario} seed {cfg.seed}", cfg.horizon, args.quiet, unit="day") as advance:
            result = simulate(cfg, progress=lambda m: (_checkpoint(), advance(m.day + 1)), plots_next=not args.no_plots)
    except SimulationError as exc:
        exc.config_path = save_failed_config(cfg, out)
        raise
    for note in result.summary.get("graph_notes", []):
        print(f"note: {note}", file=sys.stderr)
    _checkpoint()
    path = write_run_folder(result, out, plots=not args.no_plots)
    if not args.quiet:
        print(run_line(cfg, result.summary), file=sys.stderr)
    print(path)
    return 0


def run_line(cfg, s: dict) -> str:
    """The line ``sim run`` ends with: users, MAU and money; for a classic diffusion model's run
    (:func:`sim.diffusion.adoption_only`), adopters alone."""
    from sim.diffusion import adoption_only

    if adoption_only(cfg):
        return (f"{cfg.scenario}: {s['users_total']:,} adopters ({s['adoption_share']:.1%} of {s['population']:,} people) by day {s['days'] - 1}, "
                f"new adopters peaking on day {s['peak_new_users_day']}; simulated in {s['simulate_seconds']:.1f} s")
    return (f"{cfg.scenario}: {s['users_total']:,} users acquired, MAU {s['mau_end']:,} at day {s['days'] - 1}, "
            f"GMV {s['gmv']:,.0f} RMB, profit {s['profit']:,.0f} RMB ({s['profit_with_terminal']:,.0f} with the users left valued); "
            f"simulated in {s['simulate_seconds']:.1f} s")


def _take(overrides: Sequence[str], keys: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Split ``key=value`` settings of the command itself (``keys``) from model overrides."""
    taken, rest = {}, []
    for text in overrides:
        key, eq, value = text.partition("=")
        if eq and key in keys:
            taken[key] = value
        else:
            rest.append(text)
    return taken, rest


def cmd_sweep(args) -> int:
    from sim.experiment import _merge, experiment_sweep_overrides, sweep
    from sim.plans import DEFAULT_SWEEP_METRICS, load_experiment

    if args.config:
        raise ConfigError("--config and -m cannot be combined: sweep over key=value overrides instead")
    taken, overrides = _take(args.overrides, ("experiment", "out"))
    metrics = DEFAULT_SWEEP_METRICS
    if "experiment" in taken:
        _, spec = load_experiment(taken["experiment"])
        overrides = _merge(experiment_sweep_overrides(spec), overrides)
        metrics = spec.sweep.metrics
    try:
        folder = sweep(overrides, out=taken.get("out", "results/sweeps"), metrics=metrics, run_plots=not args.no_plots and args.run_plots)
    except BaseException as exc:
        # Ctrl+C or SIGTERM, or another error it caused (landing inside Hydra's or OmegaConf's code, an
        # interruption can leave their state half-changed, which then fails otherwise): the sweep's report.
        interruption = exc if isinstance(exc, KeyboardInterrupt) else _RECEIVED[-1]() if _RECEIVED and isinstance(exc, Exception) else None
        if interruption is None:
            raise
        from sim.experiment import sweep_interrupted

        word, code = _interrupted(interruption)
        print(f"{word}: {sweep_interrupted(exc)}", file=sys.stderr)
        return code
    if not args.quiet:
        print(f"sweep collected: {folder / 'report.html'} (rerun the same command with hydra.sweep.dir={folder} to resume or extend it)",
              file=sys.stderr)
    print(folder)
    return 0


def cmd_compare(args) -> int:
    from sim.analysis.comparison import VERDICT_METRICS  # printed unless `metrics=` chooses (the report has every metric)
    from sim.experiment import _strategy_map, run_comparison
    from sim.plans import decision_from_text, experiment_spec, load_experiment
    from sim.folders import prepare_parent
    from sim.schema import to_plain

    taken, overrides = _take(args.overrides, ("experiment", "scenario", "replicates", "baseline", "out", "workers", "seed", "metrics",
                                              "world", "decision"))
    if "experiment" in taken:
        name, spec = load_experiment(taken.pop("experiment"))
        data = to_plain(spec)
    else:
        if "scenario" not in taken:
            raise ConfigError("scenario: allowed is scenario=A,B,... (the strategies to compare) or experiment=NAME")
        data, name = {}, None
    if "scenario" in taken:
        data["strategies"] = _strategy_map(taken["scenario"])
        data["baseline"] = None
    for key in ("replicates", "seed"):
        if key in taken:
            data[key] = _number(key, taken[key])
    if "baseline" in taken:
        data["baseline"] = taken["baseline"]
    if "metrics" in taken:
        data["metrics"] = [m.strip() for m in taken["metrics"].split(",") if m.strip()]
    if "world" in taken:
        data["world"] = taken["world"]
    if "decision" in taken:
        data["decision"] = decision_from_text(taken["decision"])
    data["overrides"] = [*data.get("overrides", []), *overrides]
    spec = experiment_spec(data)
    workers = _number("workers", taken["workers"]) if "workers" in taken else None
    if workers is not None and workers < 1:
        raise ConfigError(f"workers = {workers}: allowed is a whole number >= 1")
    out = Path(taken.get("out", "results/comparisons"))
    prepare_parent(out)
    with progress_bar(f"compare {len(spec.strategies)} strategies x {spec.replicates} replicates", len(spec.strategies) * spec.replicates,
                      args.quiet, unit="run") as advance:
        result = run_comparison(spec, name or "-vs-".join(spec.strategies), workers=workers, progress=advance)
    for note in result.graph_notes:
        print(f"note: {note}", file=sys.stderr)
    path = result.save(out, plots=not args.no_plots)
    if not args.quiet:
        shown = spec.metrics if "metrics" in taken else [m for m in VERDICT_METRICS if m in spec.metrics]
        for metric in shown:
            for line in result.verdicts(metric):
                print(line, file=sys.stderr)
        runs = len(result.horizon) + (len(result.noise) if result.noise is not None else 0)
        print(f"{runs} runs in {result.wall_seconds:.1f} s", file=sys.stderr)
        if result.decision is not None:  # the answer last, just above the folder (stdout stays the folder alone)
            print(result.decision.line, file=sys.stderr)
    print(path)
    return 0


def _section_changes(taken: dict[str, str], numbers: Sequence[str]) -> dict:
    """Command-line settings of an experiment section (``samples=64``) as typed values."""
    return {k: _number(k, v) if k in numbers else v for k, v in taken.items()}


def _experiment_for(command: str, overrides: Sequence[str], section_keys: Sequence[str], numbers: Sequence[str]):
    """Load ``experiment=NAME`` for ``sim sensitivity`` / ``sim calibrate``: its ``section`` settings
    changed by ``key=value`` of the section's own keys, other ``key=value`` appended to its overrides."""
    from sim.config import effective_overrides
    from sim.plans import experiment_spec, load_experiment
    from sim.schema import to_plain

    taken, rest = _take(overrides, ("experiment", "out", "workers", "seed", *section_keys))
    if "experiment" not in taken:
        raise ConfigError(f"experiment: allowed is experiment=NAME (a file in experiments/ with a {command} section) or a path to one")
    name, spec = load_experiment(taken.pop("experiment"))
    if getattr(spec, command) is None:
        raise ConfigError(f"experiment = {name!r}: it has no {command} section")
    out, workers = taken.pop("out", None), taken.pop("workers", None)
    data = to_plain(spec)
    if "seed" in taken:
        data["seed"] = _number("seed", taken.pop("seed"))
    data[command].update(_section_changes(taken, numbers))
    data["overrides"] = effective_overrides([*data.get("overrides", []), *rest])  # the file's size=10000, then size=5000: once
    spec = experiment_spec(data, name)
    workers = _number("workers", workers) if workers is not None else None
    if workers is not None and workers < 1:
        raise ConfigError(f"workers = {workers}: allowed is a whole number >= 1")
    return name, spec, out, workers


def cmd_sensitivity(args) -> int:
    from sim.analysis.sensitivity import run_sensitivity
    from sim.folders import prepare_parent

    launcher = [o for o in args.overrides if o.lstrip("+~").startswith(("hydra.", "hydra/"))]
    overrides = [o for o in args.overrides if o not in launcher]
    name, spec, out, workers = _experiment_for("sensitivity", overrides, ("method", "samples", "levels", "replicates", "scenario"),
                                               ("samples", "levels", "replicates"))
    out = Path(out or "results/sensitivity")
    prepare_parent(out)
    with progress_bar(f"sensitivity {name}", quiet=args.quiet, unit="run") as advance:
        result = run_sensitivity(spec, name, workers=workers, progress=advance, launcher=launcher)
    path = result.save(out, plots=not args.no_plots)
    if not args.quiet:
        print(result.text(), file=sys.stderr)
        print(f"{len(result.horizon) + len(result.noise_runs)} runs in {result.wall_seconds:.1f} s", file=sys.stderr)
    print(path)
    return 0


def cmd_calibrate(args) -> int:
    from sim.analysis.calibration import run_calibration
    from sim.folders import prepare_parent

    name, spec, out, workers = _experiment_for("calibration", args.overrides,
                                               ("trials", "startup_trials", "replicates", "check_replicates", "batch", "loss", "scenario"),
                                               ("trials", "startup_trials", "replicates", "check_replicates", "batch"))
    out = Path(out or "results/calibrations")
    prepare_parent(out)
    with progress_bar(f"calibrate {name}", spec.calibration.trials, args.quiet, unit="trial") as advance:
        result = run_calibration(spec, name, workers=workers, progress=advance)
    path = result.save(out, plots=not args.no_plots)
    if not args.quiet:
        print(result.text(), file=sys.stderr)
        print(f"run the fitted model: sim run {' '.join(result.overrides())}", file=sys.stderr)
        print(f"{len(result.trials)} trials in {result.wall_seconds:.1f} s", file=sys.stderr)
    print(path)
    return 0


OPTIMISE_KEYS = ("trials", "replicates", "check_replicates", "candidates", "sampler", "startup_trials", "batch", "scenario")
OPTIMISE_NUMBERS = ("trials", "replicates", "check_replicates", "candidates", "startup_trials", "batch")


def _resume(text: str | None) -> bool | Path:
    """``resume=true`` (the newest study of the experiment), ``false``, or a study folder."""
    if text is None or text.lower() in ("false", "no", "0", ""):
        return False
    if text.lower() in ("true", "yes", "1"):
        return True
    return Path(text).expanduser()


def cmd_optimise(args) -> int:
    from sim.analysis.optimisation import EXPERIMENT_FILE, run_optimisation, study_folder

    taken, overrides = _take(args.overrides, ("resume",))
    resume = _resume(taken.get("resume"))
    if isinstance(resume, Path) and not any(o.startswith("experiment=") for o in overrides):
        overrides = [f"experiment={study_folder(resume) / EXPERIMENT_FILE}", *overrides]  # the plan the study was started with
    name, spec, out, workers = _experiment_for("optimisation", overrides, OPTIMISE_KEYS, OPTIMISE_NUMBERS)
    try:
        with progress_bar(f"optimise {name}", None, args.quiet, unit="run") as advance:
            result = run_optimisation(spec, name, Path(out or "results/optimisations"), resume=resume, workers=workers, progress=advance)
    except KeyboardInterrupt as exc:
        folder = getattr(exc, "study_folder", None)
        if folder is None:
            raise
        word, code = _interrupted(exc)
        print(f"{word}: the study keeps its finished trials in {folder / 'study.db'}; continue it with "
              f"`sim optimise resume={folder}`", file=sys.stderr)
        return code
    _checkpoint()
    path = result.save(plots=not args.no_plots)
    if not args.quiet:
        print(result.text(), file=sys.stderr)
        print(f"the front's figures again: {result.reproduce_command()}", file=sys.stderr)
        print(f"{result.ran} trials run in {result.wall_seconds:.1f} s (the study holds {len(result.trials)}); report: {path / 'report.html'}",
              file=sys.stderr)
    print(path)
    return 0


def _number(key: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{key} = {excerpt(text)}: allowed is a whole number") from None


def cmd_experiments(args) -> int:
    from sim.plans import available_experiments, load_experiment

    for name in sorted(available_experiments()):
        _, spec = load_experiment(name)
        kinds = [k for k, on in (("compare", bool(spec.strategies)), ("sweep", spec.sweep is not None),
                                 ("sensitivity", spec.sensitivity is not None), ("calibrate", spec.calibration is not None),
                                 ("optimise", spec.optimisation is not None)) if on]
        print(f"  {name:<22} [{', '.join(kinds)}] {spec.description}")
    return 0


def cmd_check(args) -> int:
    from sim.check import run_checks, update_baselines

    names = [a for a in args.names if "=" not in a]
    overrides = [a for a in args.names if "=" in a]
    dirs = args.dir or None
    if args.update:
        if overrides:
            raise ConfigError(f"{overrides[0]}: --update takes no key=value overrides (put them in the baseline's overrides)")
        with progress_bar("check --update", quiet=args.quiet, unit="run") as advance:
            updates = update_baselines(names, dirs, workers=args.workers, progress=advance)
        for u in updates:
            print(u.diff if u.diff else f"{u.path}: unchanged", end="" if u.diff else "\n")
        return 0
    with progress_bar("check", quiet=args.quiet, unit="run") as advance:
        result = run_checks(names, overrides, dirs, workers=args.workers, progress=advance)
    print(result.text(verbose=args.verbose))
    if not args.quiet:
        print(f"{'behaviour holds' if result.passed else 'behaviour moved'}: {len(result.table)} checks in {result.wall_seconds:.1f} s"
              + ("" if result.passed else " (if the change is intended, record it with `sim check --update`)"), file=sys.stderr)
    return 0 if result.passed else EXIT_FAILED


def cmd_config(args) -> int:
    from sim.config import compose, dump_yaml

    print(dump_yaml(compose(None, args.overrides, warn=True)), end="")
    return 0


def cmd_keys(args) -> int:
    from sim.config import SimConfig
    from sim.mechanisms import REGISTRY
    from sim.schema import describe

    rows = [r for r in describe(SimConfig) if not r[0].startswith("mechanisms")]
    for name, cls in REGISTRY.items():
        rows += describe(cls.Config, f"mechanisms.{name}")
    prefix = args.prefix or ""
    rows = [r for r in rows if r[0].startswith(prefix)]
    if not rows:
        print(f"error: no key starts with {prefix!r}", file=sys.stderr)
        return EXIT_USAGE
    for key, default, unit, allowed, doc in rows:
        if isinstance(default, dict):
            default = "{" + ", ".join(default) + "}"
        extra = "; ".join(x for x in (unit, allowed) if x)
        print(f"{key} = {default}\n    {doc}" + (f" [{extra}]" if extra else ""))
    return 0


def cmd_scenarios(args) -> int:
    from sim.config import available_scenarios, scenario_description

    found = available_scenarios()
    for group in ("named", "platform", "strategy"):
        names = sorted(n for n, g in found.items() if g == group)
        if not names:
            continue
        print(f"{group}:")
        for name in names:
            try:
                print(f"  {name:<26} {scenario_description(name, brief=True)}")
            except ConfigError as exc:  # a FIFO or a huge file named x.yaml: listed, never read
                print(f"  {name:<26} (cannot be read: {exc})")
    return 0


def cmd_validate(args) -> int:
    from sim.analysis.validation import FACTS, PENDING, print_progress, validate
    from sim.folders import prepare_parent

    prepare_parent(Path(args.out))  # fail before simulating if results cannot be written
    facts = args.fact or [*FACTS, *PENDING]
    done = itertools.count(1)
    with progress_bar("validate", len(facts), args.quiet, unit="fact") as advance:
        def progress(finding) -> None:  # a line per fact, above the bar
            print_progress(finding)
            advance(next(done))

        result = validate(quick=args.quick, overrides=args.overrides, facts=facts, seed=args.seed,
                          replicates=args.replicates, progress=None if args.quiet else progress)
    path = result.save(args.out)
    print(result.text())
    print(path / "report.html")
    return 0 if result.passed else 1


def cmd_dash(args) -> int:
    from sim.dashboard.server import serve

    return serve(args.host, args.port, open_browser=args.open)


def cmd_bench(args) -> int:
    from sim.bench import main_bench

    return main_bench(args)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    parser = argparse.ArgumentParser(prog="sim", parents=[common], description="growth-sim: agent-based simulation of social e-commerce growth")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", parents=[common], help="run one scenario and write a run folder")
    p.add_argument("overrides", nargs="*", help="scenario=NAME and key=value overrides (Hydra grammar)")
    p.add_argument("--config", help="a resolved config.yaml to rerun exactly (e.g. from a run folder)")
    p.add_argument("--no-plots", action="store_true", help="skip the plots (faster)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the run folder")
    p.add_argument("-m", "--multirun", action="store_true", help="sweep: one job per combination of comma-separated values (Hydra multirun)")
    p.add_argument("--run-plots", action="store_true", help="with -m: draw the plots of every run folder too (slower)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compare", parents=[common], help="compare strategies over paired replicates (common random numbers)")
    p.add_argument("overrides", nargs="*", help="scenario=A,B replicates=N baseline=A seed=S workers=N out=DIR experiment=NAME metrics=a,b world=varies|fixed "
                                                 "'decision=maximise METRIC; CONSTRAINT; ...', then key=value overrides for every strategy")
    p.add_argument("--no-plots", action="store_true", help="skip the plots")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the comparison folder")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("sensitivity", parents=[common], help="Morris screening or Sobol indices of horizon metrics (SALib)")
    p.add_argument("overrides", nargs="*", help="experiment=NAME method=morris|sobol samples=N levels=N replicates=N scenario=S seed=S "
                                                 "workers=N out=DIR, then key=value overrides of the base configuration; hydra/launcher=... "
                                                 "runs the points through a Hydra launcher (as sweeps do) instead of the local pool")
    p.add_argument("--no-plots", action="store_true", help="skip the plot")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the folder")
    p.set_defaults(func=cmd_sensitivity)

    p = sub.add_parser("calibrate", parents=[common], help="fit parameters to target series with Optuna (seeded TPE)")
    p.add_argument("overrides", nargs="*", help="experiment=NAME trials=N startup_trials=N replicates=N check_replicates=N batch=N loss=msle|relative "
                                                 "scenario=S seed=S workers=N out=DIR, then key=value overrides of the base configuration")
    p.add_argument("--no-plots", action="store_true", help="skip the plots")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the folder")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("optimise", aliases=["optimize"], parents=[common],
                       help="search settings for the best trade-off between objectives under constraints (Optuna; resumable)")
    p.add_argument("overrides", nargs="*", help="experiment=NAME trials=N replicates=N check_replicates=N candidates=N sampler=tpe|nsga2|nsga3|random "
                                                 "startup_trials=N batch=N scenario=S seed=S workers=N out=DIR resume=true|DIR, then key=value "
                                                 "overrides of the base configuration")
    p.add_argument("--no-plots", action="store_true", help="skip the plots")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the study folder")
    p.set_defaults(func=cmd_optimise)

    p = sub.add_parser("experiments", parents=[common], help="list the named experiments in experiments/")
    p.set_defaults(func=cmd_experiments)

    p = sub.add_parser("check", parents=[common], help="regression check: rerun the baselines in experiments/baselines/ (exit 1 if behaviour moved)")
    p.add_argument("names", nargs="*", metavar="NAME|key=value", help="baselines to check (default: all), then key=value overrides applied to every run")
    p.add_argument("--update", action="store_true", help="rerun and rewrite the baselines' expected values (prints the diff)")
    p.add_argument("--dir", action="append", metavar="DIR", help="a folder of baselines (repeatable; default: experiments/baselines and SIM_BASELINE_PATH)")
    p.add_argument("--workers", type=int, help="processes running seeds in parallel (default: every core)")
    p.add_argument("-v", "--verbose", action="store_true", help="show every check, not only those that moved")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or closing line")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("config", parents=[common], help="print the resolved configuration")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("keys", parents=[common], help="list configuration keys with defaults, units and ranges")
    p.add_argument("prefix", nargs="?")
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser("scenarios", parents=[common], help="list named scenarios, platform presets and strategies")
    p.set_defaults(func=cmd_scenarios)

    p = sub.add_parser("validate", parents=[common], help="check the model against stylized facts (exit 1 if any fails)")
    p.add_argument("overrides", nargs="*", help="key=value overrides applied to every validation run")
    p.add_argument("--quick", action="store_true", help="small runs (about a minute; for tests)")
    p.add_argument("--fact", action="append", metavar="NAME", help="run only this fact (repeatable)")
    p.add_argument("--replicates", type=int, help="seeds per setting (default 3, quick 1)")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--out", default="results/validation", help="folder in which the validation folder is created")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("dash", parents=[common], help="the interactive dashboard, a local web app (Ctrl+C stops it)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765)")
    p.add_argument("--open", action="store_true", help="open the page in the default web browser")
    p.set_defaults(func=cmd_dash)

    p = sub.add_parser("bench", parents=[common], help="measure speed and memory at 10k, 100k and 1M people, against Mesa and NDlib")
    p.add_argument("--sizes", help="comma-separated people counts for the engine table and the scaling sweep (default 10000,100000,1000000)")
    p.add_argument("--horizon", type=int, help="days simulated (default 365)")
    p.add_argument("--quick", action="store_true", help="a tiny run of every part (seconds; for a first look and tests)")
    p.add_argument("--no-reference", action="store_true", help="skip the plain Mesa reference model")
    p.add_argument("--no-ic", action="store_true", help="skip the independent cascade against NDlib")
    p.add_argument("--no-scaling", action="store_true", help="skip the scaling sweep and its plot")
    p.add_argument("--no-horizons", action="store_true", help="skip the five-year horizon against one year")
    p.add_argument("--no-large", action="store_true", help="skip the market of ten million people (minutes, about 10 GB)")
    p.add_argument("--no-commands", action="store_true", help="skip the whole commands (sim run, sim keys, ...) and run-folder writing")
    p.add_argument("--no-two-cores", action="store_true", help="skip the largest size run again on one thread (SIM_THREADS=1)")
    p.add_argument("--out", default="results/bench", help="folder for <date>.json and <date>.png (default results/bench)")
    p.set_defaults(func=cmd_bench)
    return parser


def _value_options(parser: argparse.ArgumentParser) -> set[str]:
    """Option strings that take a value (``--config``, ``--out``, ...), in every subcommand."""
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _value_options(sub)
        elif action.option_strings and action.nargs != 0:
            found.update(action.option_strings)
    return found


def _overrides_last(argv: list[str], value_options: set[str] | None = None) -> list[str]:
    """Let options and key=value overrides mix in any order (``sim run x=1 --no-plots y=2``):
    argparse wants a positional list in one piece, so the overrides are moved to the end. The value
    of an option (``--config runs/a=b/config.yaml``) stays with its option, ``=`` or not."""
    value_options = _value_options(build_parser()) if value_options is None else value_options
    keep, overrides = [], []
    for k, a in enumerate(argv):
        is_value = k > 0 and argv[k - 1] in value_options
        (overrides if "=" in a and not a.startswith("-") and not is_value else keep).append(a)
    return keep + overrides


def main(argv: Sequence[str] | None = None) -> int:
    from sim.schema import ConfigError, SimulationError

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    parser = build_parser()
    args = parser.parse_args(_overrides_last(argv, _value_options(parser)))
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    from sim.folders import remove_created_if_empty

    main_thread = threading.current_thread() is threading.main_thread()
    _RECEIVED.clear()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    # Ctrl+C as Python handles it, recorded; where SIGINT is ignored (a background job) it stays so.
    previous_int = signal.getsignal(signal.SIGINT) if main_thread else None
    if main_thread and previous_int is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        try:
            return args.func(args)
        except Exception:
            if _RECEIVED:  # the interruption surfaced as another error: report it as what it was
                raise _RECEIVED[-1]() from None
            raise
    except ConfigError as exc:
        remove_created_if_empty()  # a refused command leaves no empty results folder behind
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SimulationError as exc:
        if debug:
            raise
        where = getattr(exc, "config_path", None)
        print(f"error: {exc}" + (f"; the config that produced it: {where}" if where else ""), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt as exc:
        remove_created_if_empty()
        word, code = _interrupted(exc)
        print(f"{word}: nothing was written", file=sys.stderr)
        return code
    except OSError as exc:  # reading or writing outside a results folder: still one line
        remove_created_if_empty()
        if debug:
            raise
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
            if previous_int is signal.default_int_handler:
                signal.signal(signal.SIGINT, previous_int)


def command() -> int:
    """The ``sim`` command (and ``python -m sim.cli``): :func:`main`, then a quick exit. Shutting the
    interpreter down would spend about 0.3 s collecting the garbage of a run (numba's type registries,
    the model's objects) just before the operating system reclaims the process's memory anyway;
    freezing what is alive (``gc.freeze``) leaves it to the operating system. Files are closed and
    flushed as before. For the command only: a caller of :func:`main` in a process that goes on
    (a test, a notebook) keeps its garbage collector as it was."""
    code = main()
    import gc

    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(command())
