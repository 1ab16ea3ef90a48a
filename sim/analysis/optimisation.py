"""Optimisation: search a strategy's settings for the best trade-off between objectives, under noise
and constraints (``sim optimise``, Optuna).

An experiment file's ``optimisation`` section names the settings to search (config key -> a range or
a list of choices), one or more objectives (horizon metrics, each maximised or minimised) and
constraints in the grammar of a comparison's decision ('METRIC OP VALUE', where ``baseline`` is the
scenario as it is, run at the same seeds). The search, then the answer:

- **Common random numbers.** Every trial runs at the same ``replicates`` seeds, and so does the
  baseline: trials differ by their settings, not by their luck, and a constraint against the
  baseline compares paired means.
- **The sampler.** Optuna's TPE, seeded; for several objectives its multi-objective form (MOTPE:
  Ozaki et al. 2020, 2022, which finds better fronts than NSGA-II at budgets of tens to a few hundred
  evaluations, the budgets of a simulation). NSGA-II (Deb et al. 2002), NSGA-III (Deb and Jain 2014)
  and random search can be chosen. Constraints are Optuna's own: each trial records how far it
  breaks each (<= 0 when met), and the sampler prefers feasible trials and, among infeasible ones,
  those that break the constraints least.
- **Noise.** A search keeps the trials that did best on its seeds, partly for their luck there: the
  best of many noisy estimates overstates its true value (the winner's curse; the selection problem
  of ranking and selection, Kim and Nelson 2006). The final candidates (the best non-dominated
  trials, for one objective the top few) are therefore re-evaluated at ``check_replicates`` fresh
  seeds shared with the baseline (paired), and the front shown is the one on those runs: each point
  with its 95 % intervals, its paired difference against the baseline, the share of the fresh
  replicates in which it meets every constraint, and the other points it cannot be told apart from
  (each objective's paired difference has an interval that includes 0).
- **The study** lives in Optuna's SQLite storage, ``study.db`` in the study's folder. ``trials`` is
  the study's size: a session runs until the study holds that many finished trials, so a killed or
  finished study continues with ``resume`` (a larger ``trials`` grows it), and several processes,
  or machines sharing the folder, can add trials to one study at the same time.

The same seed gives the same study: the sampler is seeded, trials are asked ``batch`` at a time (the
history depends on the batch, not on the number of workers) and runs are deterministic. A resumed
session seeds its sampler from the seed and the number of trials already there, so it does not
repeat the first session's proposals.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.calibration import scenario_file, suggest
from sim.analysis.comparison import METRICS, difference_table, grouped_table
from sim.analysis.identification import association
from sim.analysis.sensitivity import base_config, resolve_experiment
from sim.analysis.stats import paired_difference
from sim.assumptions import config_node, set_key
from sim.config import SimConfig
from sim.experiment import _hydra_value, check_space, point_config, run_points
from sim.plans import Constraint, ExperimentSpec, OptimisationSpec, SearchParameter, experiment_yaml, replicate_seeds
from sim.schema import ConfigError, to_plain

STUDY_FILE = "study.db"
STUDY_NAME = "optimisation"  #: the one study of a study folder
EXPERIMENT_FILE = "experiment.yaml"  #: the plan, written when the study starts (``resume=DIR`` reads it)
SUMMARY_FILE = "summary.json"  #: written last: what the other result files describe
OPTIMISED_GROUP = "strategy"  #: candidates' scenario files override the default scenario, as strategies do
BASELINE = "baseline"  #: the name of the scenario as it is, among the re-evaluated strategies
CHECK_STREAM = 1  #: the fresh seeds of the re-evaluation come from (seed, CHECK_STREAM), never the search's


def check_seed(seed: int) -> int:
    """The base seed of the re-evaluation's fresh seeds (``sim compare ... seed=`` reproduces them)."""
    return int(np.random.SeedSequence([int(seed), CHECK_STREAM]).generate_state(1)[0])


# ============================================================================ the search space
def check_search(base: SimConfig, params: Mapping[str, SearchParameter]) -> dict[str, type | None]:
    """Check the search space against the composed base configuration before any run: every key
    exists, a range's ends and every choice are allowed values of it. Returns key -> ``int`` or
    ``float`` for a range, None for choices."""
    from sim.config import validate

    kinds: dict[str, type | None] = dict(check_space(base, {k: p.range for k, p in params.items() if p.choices is None}, "optimisation"))
    plain = to_plain(base)
    for key, p in params.items():
        if p.choices is None:
            continue
        config_node(plain, key, "optimisation.params")
        if key == "seed":
            raise ConfigError("optimisation.params.seed: the seed is not a parameter (use replicates)")
        for value in p.choices:
            data = copy.deepcopy(plain)
            set_key(data, key, value)
            try:
                validate(data)
            except ConfigError as exc:
                raise ConfigError(f"optimisation.params.{key}: {exc}") from None
        kinds[key] = None
    return {k: kinds[k] for k in params}


def suggest_point(trial, params: Mapping[str, SearchParameter], kinds: Mapping[str, type | None]) -> dict[str, Any]:
    """The trial's values of every searched key."""
    return {k: trial.suggest_categorical(k, list(p.choices)) if p.choices is not None else suggest(trial, k, p.range, kinds[k])
            for k, p in params.items()}


def _same(a: Any, b: Any) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool) and isinstance(a, str) == isinstance(b, str)


def baseline_point(base: SimConfig, params: Mapping[str, SearchParameter]) -> dict[str, Any] | None:
    """The base scenario's own values, if they lie inside the search space (the study's first trial)."""
    plain = to_plain(base)
    values = {}
    for key, p in params.items():
        value = config_node(plain, key, "optimisation.params")
        inside = any(_same(value, c) for c in p.choices) if p.choices is not None else p.low <= value <= p.high
        if not inside:
            return None
        values[key] = value
    return values


# ============================================================================ objectives and constraints
def margin(c: Constraint, value: float, baseline: float) -> float:
    """How far ``value`` lies inside constraint ``c`` (``baseline``: the baseline's value of the same
    metric): >= 0 when met (> 0 for a strict one), negative by as much as it breaks it."""
    rhs = c.offset + (baseline if c.relative else 0.0)
    return value - rhs if c.op in (">=", ">") else rhs - value


def met(c: Constraint, m: float) -> bool:
    return bool(np.isfinite(m) and (m > 0 if c.op in (">", "<") else m >= 0))


def violation(c: Constraint, m: float) -> float:
    """Optuna's constraint value for a margin: <= 0 exactly when the constraint is met."""
    if not math.isfinite(m):
        return math.inf
    return -m if met(c, m) or m != 0 else math.ulp(0.0)  # an equality breaks a strict constraint, by the least amount


def margin_column(c: Constraint) -> str:
    return f"margin: {c.text}"


def pareto_ranks(values: np.ndarray) -> np.ndarray:
    """Non-dominated sorting (Deb et al. 2002) of rows of ``values``, larger better in every column:
    rank 0 is the non-dominated set, rank 1 the set that is non-dominated once rank 0 is removed, ..."""
    v = np.asarray(values, dtype=np.float64)
    n = v.shape[0]
    # dominates[i, j]: row i is at least as good as row j everywhere and better somewhere
    geq = (v[:, None, :] >= v[None, :, :]).all(axis=2)
    gt = (v[:, None, :] > v[None, :, :]).any(axis=2)
    dominates = geq & gt
    ranks = np.full(n, -1)
    left = np.ones(n, dtype=bool)
    rank = 0
    while left.any():
        front = left & ~(dominates[left][:, :].any(axis=0))
        ranks[front] = rank
        left &= ~front
        rank += 1
    return ranks


def crowding(values: np.ndarray) -> np.ndarray:
    """Crowding distance of each row within its set (Deb et al. 2002): the extremes of every
    objective are infinitely far, the others by the normalised gap between their neighbours."""
    v = np.asarray(values, dtype=np.float64)
    n, k = v.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(k):
        order = np.argsort(v[:, j], kind="stable")
        span = v[order[-1], j] - v[order[0], j]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (v[order[2:], j] - v[order[:-2], j]) / span
    return distance


def best_rows(values: np.ndarray, count: int) -> list[int]:
    """The ``count`` best rows (larger better in every column): whole non-dominated ranks in turn,
    the last one cut by crowding distance so its extremes and its sparse regions stay (NSGA-II's
    selection)."""
    ranks = pareto_ranks(values)
    chosen: list[int] = []
    for rank in range(ranks.max() + 1 if len(ranks) else 0):
        members = np.flatnonzero(ranks == rank)
        if len(chosen) + len(members) > count:
            spread = crowding(values[members])
            members = members[np.argsort(-spread, kind="stable")][: count - len(chosen)]
        chosen += [int(m) for m in members]
        if len(chosen) >= count:
            break
    return chosen


# ============================================================================ the study
def plan_of(spec: ExperimentSpec) -> dict[str, Any]:
    """What a study's trials depend on: a resumed study must be continued with the same."""
    o = spec.optimisation
    return {"scenario": o.scenario, "overrides": list(spec.overrides), "params": to_plain(o.params),
            "objectives": [[x.metric, x.sense] for x in o.objectives], "constraints": [c.text for c in o.parsed_constraints],
            "replicates": o.replicates, "seed": spec.seed}


def check_plan(stored: Mapping[str, Any], plan: Mapping[str, Any], folder: Path | None) -> None:
    """A resumed study's plan must be the experiment's: one line naming the first setting that differs."""
    for key, value in plan.items():
        old = stored.get(key)
        if json.dumps(old, sort_keys=True) != json.dumps(json.loads(json.dumps(value)), sort_keys=True):
            where = "optimisation." if key not in ("overrides", "seed") else ""
            raise ConfigError(f"resume = {str(folder)!r}: the study was made with {where}{key} = {json.dumps(old)}, the experiment now "
                              f"has {json.dumps(value)}; set it back, or start a new study (without resume)")


@contextlib.contextmanager
def quiet_optuna():
    """Optuna's own warnings (experimental features, deprecations) silenced: the user sees the
    project's lines only."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", module=r"optuna(\.|$)")
        yield


def make_sampler(o: OptimisationSpec, seed: int):
    import optuna

    if o.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=o.startup_trials)
    if o.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # a generation of at least 4 and at most 50 (Optuna's default), so a study of `trials` sees at least four generations
    size = int(np.clip(o.trials // 4, 4, 50))
    cls = optuna.samplers.NSGAIISampler if o.sampler == "nsga2" else optuna.samplers.NSGAIIISampler
    return cls(seed=seed, population_size=size)


def session_seed(seed: int, existing: int) -> int:
    """The sampler's seed: the experiment's for a new study; for a resumed one, derived from it and
    the trials already there (a fresh stream, not a replay of the first session's proposals)."""
    return int(seed) if existing == 0 else int(np.random.SeedSequence([int(seed), int(existing)]).generate_state(1)[0])


def new_study_folder(out: Path, name: str) -> Path:
    """``out/<date>-<time>_<name>``, never an existing folder (``-2``, ``-3`` ... when taken)."""
    from sim.folders import slug

    stem = f"{datetime.now().strftime('%Y%m%d-%H%M%S')}_{slug(name)}"
    for k in range(1, 10_000):
        path = out / (stem if k == 1 else f"{stem}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ConfigError(f"out = {str(out)!r}: no free folder name for {stem}")


def study_folder(path: str | os.PathLike) -> Path:
    """A study folder given by its path: it must hold a study."""
    folder = Path(path).expanduser()
    if not (folder / STUDY_FILE).is_file():
        raise ConfigError(f"resume = {str(path)!r}: no {STUDY_FILE} there (allowed: true, or a study folder of sim optimise)")
    return folder


def find_study(out: Path, name: str, resume: bool | str | os.PathLike) -> Path:
    """The study folder to continue: ``resume`` itself when it is a folder, else (``resume=true``)
    the newest study of this experiment under ``out``."""
    from sim.folders import slug

    if resume is not True:
        return study_folder(resume)
    pattern = re.compile(r"(\d{8}-\d{6})_" + re.escape(slug(name)) + r"(?:-(\d+))?")
    found = sorted((m.group(1), int(m.group(2) or 1), p) for p in Path(out).iterdir()
                   if (m := pattern.fullmatch(p.name)) and (p / STUDY_FILE).is_file())
    if not found:
        raise ConfigError(f"resume = true: no study of {name} under {str(out)!r} (run without resume to start one, or give resume=FOLDER)")
    return found[-1][2]


def open_study(folder: Path | None, o: OptimisationSpec, seed: int):
    """The study in ``folder/study.db`` (created if new; None: in memory), with a seeded sampler."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if folder is None:
        storage = optuna.storages.InMemoryStorage()
        existing = 0
    else:
        # several processes may write one file: wait for the lock rather than fail (SQLite's default is 5 s)
        storage = optuna.storages.RDBStorage(f"sqlite:///{(folder / STUDY_FILE).resolve()}", engine_kwargs={"connect_args": {"timeout": 120}})
        names = [s.study_name for s in optuna.study.get_all_study_summaries(storage, include_best_trial=False)]
        existing = len(optuna.load_study(study_name=STUDY_NAME, storage=storage).trials) if STUDY_NAME in names else 0
    directions = ["maximize" if x.sense == "maximise" else "minimize" for x in o.objectives]
    return optuna.create_study(study_name=STUDY_NAME, storage=storage, directions=directions,
                               sampler=make_sampler(o, session_seed(seed, existing)), load_if_exists=True)


#: A running trial that has not said which process runs it this long after it started was abandoned
#: (a session records its process the moment it asks for the trial; killed in between, it never did).
UNCLAIMED_SECONDS = 120


def fail_abandoned(study) -> int:
    """Mark as failed the running trials whose process is gone (a killed session on this machine, or
    one killed before it could say which process it was), so they neither count towards the study's
    size nor wait for ever. Returns how many."""
    from optuna.trial import TrialState

    from sim.folders import writer_gone

    gone = 0
    now = datetime.now()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.user_attrs.get("worker")
        unclaimed = owner is None and t.datetime_start is not None and (now - t.datetime_start).total_seconds() > UNCLAIMED_SECONDS
        if unclaimed or isinstance(owner, dict) and writer_gone(owner):
            study.tell(t.number, state=TrialState.FAIL)
            gone += 1
    return gone


def _counted(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)))


def _number(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _from_json(x: float | None) -> float:
    return math.nan if x is None else float(x)


def evaluate_batch(study, asked: list, points: list[dict[str, Any]], runs, o: OptimisationSpec, baseline: Mapping[str, float]) -> None:
    """Record each trial of a batch: every metric's mean and 95 % interval over the seeds, each
    constraint's margin (and Optuna's constraint value), and the objectives' means."""
    from optuna.trial import TrialState

    metrics = o.metrics
    table = grouped_table(runs.horizon, ["point"], metrics).set_index("point")
    for k, trial in enumerate(asked):
        row = table.loc[k]
        trial.set_user_attr("metrics", {m: [_number(row[m]), _number(row[f"{m}_low"]), _number(row[f"{m}_high"])] for m in metrics})
        margins = [margin(c, row[c.metric], baseline[c.metric]) for c in o.parsed_constraints]
        trial.set_user_attr("margins", [_number(x) for x in margins])
        for j, (c, x) in enumerate(zip(o.parsed_constraints, margins)):
            trial.set_constraint(f"c{j}", violation(c, x))
        values = [float(row[x.metric]) for x in o.objectives]
        if all(math.isfinite(v) for v in values):
            study.tell(trial, values)
        else:
            study.tell(trial, state=TrialState.FAIL)


def search(study, o: OptimisationSpec, base: SimConfig, kinds: Mapping[str, type | None], seeds: Sequence[int],
           baseline: Mapping[str, float], workers: int | None, progress: Callable[[int], None] | None) -> int:
    """Ask, run and record trials ``batch`` at a time until the study holds ``trials`` finished or
    running ones. Trials a session is interrupted in are marked failed. Returns the trials run."""
    from optuna.trial import TrialState

    from sim.folders import writer

    ran = 0
    while (n := _counted(study)) < o.trials:
        asked = []
        try:
            for _ in range(min(o.batch, o.trials - n)):
                asked.append(study.ask())
                asked[-1].set_user_attr("worker", writer())
            points = [suggest_point(t, o.params, kinds) for t in asked]
            done = ran * len(seeds)
            runs = run_points(base, points, seeds, workers=workers, progress=(lambda d, _t: progress(done + d)) if progress else None)
            evaluate_batch(study, asked, points, runs, o, baseline)
        except BaseException:
            for t in asked:
                if study.get_trials(deepcopy=False)[t.number].state == TrialState.RUNNING:
                    study.tell(t, state=TrialState.FAIL)
            raise
        ran += len(asked)
    return ran


def trials_frame(study, o: OptimisationSpec) -> pd.DataFrame:
    """One row per finished trial: its number, its values (a column per key), every metric's mean
    and 95 % interval over the search seeds, each constraint's margin, and whether it is feasible."""
    from optuna.trial import TrialState

    constraints = o.parsed_constraints
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        row: dict[str, Any] = {"trial": t.number, **{k: t.params[k] for k in o.params}}
        for m, (mean, low, high) in t.user_attrs["metrics"].items():
            row[m], row[f"{m}_low"], row[f"{m}_high"] = _from_json(mean), _from_json(low), _from_json(high)
        margins = [_from_json(x) for x in t.user_attrs["margins"]]
        row.update({margin_column(c): x for c, x in zip(constraints, margins)})
        row["feasible"] = all(met(c, x) for c, x in zip(constraints, margins))
        rows.append(row)
    columns = ["trial", *o.params, *(f"{m}{s}" for m in o.metrics for s in ("", "_low", "_high")), *map(margin_column, constraints), "feasible"]
    return pd.DataFrame(rows, columns=columns).sort_values("trial", kind="stable").reset_index(drop=True)


def objective_matrix(frame: pd.DataFrame, o: OptimisationSpec) -> np.ndarray:
    """The objectives of each row, signed so that larger is better in every column."""
    return np.column_stack([frame[x.metric].to_numpy(np.float64) * x.sign for x in o.objectives])


def pick_candidates(trials: pd.DataFrame, o: OptimisationSpec) -> pd.DataFrame:
    """The trials to re-evaluate: the ``candidates`` best feasible ones (whole non-dominated ranks,
    the last cut by crowding distance); when no trial is feasible, those that break the constraints
    least. A setting tried twice counts once."""
    unique = trials.drop_duplicates(subset=list(o.params), keep="first")
    feasible = unique[unique["feasible"]]
    if len(feasible):
        return feasible.iloc[best_rows(objective_matrix(feasible, o), o.candidates)]
    worst = unique[[margin_column(c) for c in o.parsed_constraints]].min(axis=1)
    return unique.loc[worst.sort_values(ascending=False, kind="stable").index[: o.candidates]]


# ============================================================================ the answer
@dataclass
class Optimisation:
    """A study and its answer: every trial, the re-evaluated candidates and the front among them."""

    name: str
    spec: ExperimentSpec
    base: SimConfig
    trials: pd.DataFrame  # see trials_frame
    candidates: pd.DataFrame  # the baseline, then each re-evaluated trial: values, metrics at the fresh seeds, differences, front
    horizon: pd.DataFrame  # the re-evaluation's runs: strategy, point, replicate, seed, horizon metrics
    search_baseline: dict[str, float]  # the baseline's mean of each metric at the search seeds
    search_seeds: list[int]
    check_seeds: list[int]
    failed: int = 0  # trials that did not finish (interrupted sessions, an objective without a value)
    ran: int = 0  # trials this session ran
    wall_seconds: float = 0.0
    path: Path | None = None

    @property
    def section(self) -> OptimisationSpec:
        return self.spec.optimisation

    @property
    def params(self) -> list[str]:
        return list(self.section.params)

    @property
    def objectives(self) -> list[str]:
        return [x.metric for x in self.section.objectives]

    @property
    def front(self) -> pd.DataFrame:
        """The re-evaluated candidates on the front: feasible and dominated by no other (nor by the
        baseline), best first on the first objective."""
        x = self.section.objectives[0]
        f = self.candidates[self.candidates["on_front"]]
        return f.sort_values(x.metric, ascending=x.sense == "minimise", kind="stable").reset_index(drop=True)

    @property
    def check_seed(self) -> int:
        return check_seed(self.spec.seed)

    @cached_property
    def importance(self) -> pd.DataFrame:
        """Objective x parameter: how much of the variation of each objective over the trials goes
        with each parameter alone (omega squared of the ranks between quantile bins of the parameter,
        as a calibration's identification; choices by their order)."""
        coded = self.trials.copy()
        for key, p in self.section.params.items():
            if p.choices is not None:
                coded[key] = [next(k for k, c in enumerate(p.choices) if _same(v, c)) for v in coded[key]]
        return association(coded, {m: m for m in self.objectives}, self.params, index="objective")

    def scenario_name(self, candidate: str) -> str:
        from sim.folders import slug

        return f"{slug(self.name)}_{candidate}"

    def reproduce_command(self, candidates: Sequence[str] | None = None) -> str:
        """``sim compare`` of the scenario files of the baseline and ``candidates`` (default: the
        front) at the fresh seeds: it reproduces the figures of the report exactly."""
        names = list(dict.fromkeys([BASELINE, *(self.front["candidate"] if candidates is None else candidates)]))
        return (f"SIM_SCENARIO_PATH={self.path or '<the study folder>'}/scenarios sim compare "
                f"scenario={','.join(self.scenario_name(n) for n in names)} replicates={len(self.check_seeds)} seed={self.check_seed}")

    def candidate_config(self, row: Mapping[str, Any]) -> SimConfig:
        values = {} if row["candidate"] == BASELINE else {k: _plain_value(row[k]) for k in self.params}
        return point_config(to_plain(self.base), values, self.check_seeds[0])

    @cached_property
    def _default(self) -> dict[str, Any]:
        from sim.config import compose

        return to_plain(compose("default", []))

    def scenario_yaml(self, row: Mapping[str, Any]) -> str:
        """A candidate (or the baseline) as a scenario file: the default scenario with every setting that differs."""
        c = self.section
        what = ("the scenario as it is (the baseline)" if row["candidate"] == BASELINE else
                f"trial {int(row['trial'])}: {c.scenario} with " + ", ".join(f"{k}={_hydra_value(_plain_value(row[k]))}" for k in self.params))
        figures = "; ".join(f"{m} {row[m]:,.6g} [{row[f'{m}_low']:,.6g}, {row[f'{m}_high']:,.6g}]" for m in self.objectives)
        comment = (f"Found by `sim optimise experiment={self.name}`: {what}.\n"
                   f"At {len(self.check_seeds)} fresh seeds (sim compare ... replicates={len(self.check_seeds)} seed={self.check_seed}): {figures}.\n"
                   "Every setting that differs from the default scenario:")
        return scenario_file(self.candidate_config(row), comment, self._default)

    def text(self) -> str:
        """What ``sim optimise`` prints: the study, the front with intervals, what cannot be told apart."""
        from sim.analysis.stats import percent_text

        c = self.section
        question = "; ".join([", ".join(f"{x.sense} {x.metric}" for x in c.objectives), *(x for x in c.constraints)])
        seeds = f"{c.replicates} seed{'s' if c.replicates > 1 else ''}"
        n = len(self.candidates) - 1
        lines = [f"optimise {self.name}: {len(self.trials)} trials x {seeds} ({question}); {n} candidate{'s' if n != 1 else ''} "
                 f"re-evaluated with the baseline at {len(self.check_seeds)} fresh seeds; {len(self.front)} on the front:"]
        for _, row in pd.concat([self.front, self.candidates[~self.candidates["on_front"] & (self.candidates["candidate"] == BASELINE)]]).iterrows():
            what = ("the scenario as it is" if row["candidate"] == BASELINE else
                    " ".join(f"{_param_label(k)}={_shown(row[k])}" for k in self.params))
            where = "" if row["on_front"] else " (off the front)"
            lines.append(f"  {row['candidate']:<8} {what}{where}")
            lines.append("           " + "; ".join(_with_interval(row, m) + ("" if row["candidate"] == BASELINE else f" ({_signed(row[f'{m}_diff'])} vs baseline)")
                                                   for m in self.objectives)
                         + "".join(f"; {x.text}: margin {_signed(row[margin_column(x)])}" for x in c.parsed_constraints)
                         + (f"; met at {percent_text(row['p_feasible'])} of the fresh seeds" if c.constraints else ""))
        if list(self.front["candidate"]) == [BASELINE]:
            lines.append("  nothing the search found beats the scenario as it is within the constraints: keep it")
        elif not len(self.front):
            lines.append("  no strategy, the baseline included, meets the constraints at the fresh seeds")
        lines += [f"  {line}" for line in self.distinguish_lines()]
        return "\n".join(lines)

    def distinguish_lines(self) -> list[str]:
        """Which front points cannot be told apart from another candidate or the baseline (each pair once)."""
        lines, said = [], set()
        for _, row in self.front.iterrows():
            same = [s for s in row["indistinguishable_from"].split(",") if s and s not in said]
            said.add(row["candidate"])
            if same:
                lines.append(f"{row['candidate']} is not distinguishable from {', '.join(same)} (every objective's paired 95 % interval includes 0)")
        return lines

    def save(self, plots: bool = True) -> Path:
        """Write the results into the study folder: each file whole (written aside, then renamed
        into place), ``summary.json`` last."""
        from sim.folders import replace_entries

        if self.path is None:
            raise ConfigError("out: an optimisation run without a folder (out=None) has nowhere to write its results")
        replace_entries(self.path, lambda tmp: self._write(tmp, plots), last=SUMMARY_FILE)
        return self.path

    def _write(self, tmp: Path, plots: bool) -> None:
        from sim import plots as plotting
        from sim.report import optimisation_report

        self.trials.to_parquet(tmp / "trials.parquet", index=False)
        self.candidates.to_parquet(tmp / "candidates.parquet", index=False)
        self.front.to_parquet(tmp / "front.parquet", index=False)
        self.horizon.to_parquet(tmp / "horizon.parquet", index=False)
        group = tmp / "scenarios" / OPTIMISED_GROUP
        group.mkdir(parents=True)
        for _, row in self.candidates.iterrows():
            (group / f"{row['scenario']}.yaml").write_text(self.scenario_yaml(row))
        figures = {}
        if plots:
            (tmp / "plots").mkdir()
            label = self.label()
            figures["front"] = plotting.optimisation_front(self, tmp / "plots" / "front.png", label)
            figures["history"] = plotting.optimisation_history(self, tmp / "plots" / "history.png", label)
            if len(self.trials) >= 2:
                figures["importance"] = plotting.optimisation_importance(self.importance, tmp / "plots" / "importance.png", label)
        (tmp / "report.html").write_text(optimisation_report(self, figures))
        (tmp / SUMMARY_FILE).write_text(json.dumps(self.summary(), indent=1, ensure_ascii=False) + "\n")

    def summary(self) -> dict[str, Any]:
        from sim.runs import git_revision
        from sim.version import __version__

        c = self.section
        front = [{"candidate": r["candidate"], "trial": int(r["trial"]), "scenario": r["scenario"],
                  "params": {k: _plain_value(r[k]) for k in self.params},
                  "objectives": {m: {"mean": _number(r[m]), "low": _number(r[f"{m}_low"]), "high": _number(r[f"{m}_high"]),
                                     "difference": _number(r[f"{m}_diff"]), "difference_low": _number(r[f"{m}_diff_low"]),
                                     "difference_high": _number(r[f"{m}_diff_high"])} for m in self.objectives},
                  "p_feasible": float(r["p_feasible"]), "indistinguishable_from": [s for s in r["indistinguishable_from"].split(",") if s]}
                 for _, r in self.front.iterrows()]
        return {"experiment": self.name, "study": STUDY_FILE, "trials": len(self.trials), "failed_trials": self.failed,
                "ran_this_session": self.ran, "objectives": [{"metric": x.metric, "direction": x.sense} for x in c.objectives],
                "constraints": list(c.constraints), "sampler": c.sampler, "replicates": c.replicates, "seed": self.spec.seed,
                "search_seeds": self.search_seeds, "check_replicates": len(self.check_seeds), "check_seed": self.check_seed,
                "check_seeds": self.check_seeds, "candidates": [str(n) for n in self.candidates["candidate"]], "front": front,
                "distinguish": self.distinguish_lines(), "reproduce": self.reproduce_command(),
                "resume": f"sim optimise resume={self.path}", "wall_seconds": round(self.wall_seconds, 2),
                "version": __version__, "git_revision": git_revision()}

    def label(self) -> str:
        c = self.section
        question = ", ".join(f"{x.sense} {x.metric}" for x in c.objectives)
        rules = f" subject to {'; '.join(c.constraints)}" if c.constraints else ""
        return f"optimise {self.name}: {question}{rules}\n{len(self.trials)} trials x {c.replicates} seeds; front re-evaluated at {len(self.check_seeds)} fresh seeds"


def _plain_value(v: Any) -> Any:
    """A value from a frame as plain Python (numpy scalars are not YAML)."""
    return v.item() if hasattr(v, "item") else v


def _param_label(key: str) -> str:
    return ".".join(key.split(".")[-2:])


def _shown(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v)


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.3g}"


def _signed(x: float) -> str:
    return "–" if not math.isfinite(x) else ("+" if x >= 0 else "-") + _fmt(abs(x))


def _with_interval(row: Mapping[str, Any], m: str) -> str:
    return f"{m} {_fmt(row[m])} [{_fmt(row[f'{m}_low'])}, {_fmt(row[f'{m}_high'])}]"


def reevaluate(base: SimConfig, chosen: pd.DataFrame, o: OptimisationSpec, seeds: Sequence[int], workers: int | None,
               progress: Callable[[int], None] | None) -> tuple[pd.DataFrame, list[str]]:
    """Run the baseline and every chosen trial at the fresh ``seeds``; the runs, with a strategy name each."""
    names = [BASELINE, *(f"t{int(t)}" for t in chosen["trial"])]
    points = [{}, *({k: _plain_value(v) for k, v in row.items()} for row in chosen[list(o.params)].to_dict("records"))]
    runs = run_points(base, points, seeds, workers=workers, progress=(lambda d, _t: progress(d)) if progress else None)
    horizon = runs.horizon.assign(strategy=[names[p] for p in runs.horizon["point"]])
    return horizon[["strategy", *horizon.columns[:-1]]], names


def indistinguishable(horizon: pd.DataFrame, a: str, b: str, metrics: Sequence[str]) -> bool:
    """Every metric's paired difference of ``a`` and ``b`` (replicate by replicate) has a 95 % interval including 0."""
    wide = {m: horizon.pivot(index="replicate", columns="strategy", values=m) for m in metrics}
    for m in metrics:
        d = paired_difference(wide[m][a].to_numpy(), wide[m][b].to_numpy())
        if not (math.isfinite(d.low) and d.low <= 0 <= d.high):
            return False
    return True


def analyse(horizon: pd.DataFrame, names: list[str], chosen: pd.DataFrame, trials: pd.DataFrame, o: OptimisationSpec,
            base_values: Mapping[str, Any], scenario_stem: str) -> pd.DataFrame:
    """A row per re-evaluated strategy (the baseline first): its values, every metric's mean and 95 %
    interval at the fresh seeds, the paired difference against the baseline, each constraint's mean
    margin, the share of seeds meeting every constraint, feasibility (the means meet every
    constraint), what dominates it, whether it is on the front (feasible, dominated by no feasible
    strategy: the baseline is one of them, so it is on the front when nothing found beats it) and
    what it cannot be told apart from."""
    metrics = o.metrics
    constraints = o.parsed_constraints
    table = grouped_table(horizon, ["point"], metrics).set_index("point").sort_index()
    diffs = difference_table(horizon, BASELINE, metrics).set_index(["strategy", "metric"])
    wide = {m: horizon.pivot(index="replicate", columns="strategy", values=m) for m in dict.fromkeys(c.metric for c in constraints)}
    rows = []
    for k, name in enumerate(names):
        row: dict[str, Any] = {"candidate": name, "trial": -1 if k == 0 else int(chosen["trial"].iloc[k - 1])}
        for key in o.params:
            row[key] = _plain_value(chosen[key].iloc[k - 1]) if k else base_values[key]
        for m in metrics:
            row[m], row[f"{m}_low"], row[f"{m}_high"] = table.loc[k, m], table.loc[k, f"{m}_low"], table.loc[k, f"{m}_high"]
            d = diffs.loc[(name, m)] if k else None
            row[f"{m}_diff"] = d["mean_difference"] if k else 0.0
            row[f"{m}_diff_low"], row[f"{m}_diff_high"] = (d["ci_low"], d["ci_high"]) if k else (0.0, 0.0)
        for x in o.objectives:
            row[f"{x.metric}_search"] = float(trials.set_index("trial").loc[row["trial"], x.metric]) if k else math.nan
        ok = np.ones(len(horizon["replicate"].unique()), dtype=bool)
        for c in constraints:
            row[margin_column(c)] = margin(c, row[c.metric], table.loc[0, c.metric])
            per_seed = [margin(c, v, b) for v, b in zip(wide[c.metric][name], wide[c.metric][BASELINE])]
            ok &= np.array([met(c, x) for x in per_seed], dtype=bool)
        row["p_feasible"] = float(ok.mean())
        row["feasible"] = all(met(c, row[margin_column(c)]) for c in constraints)
        row["scenario"] = f"{scenario_stem}_{name}"
        rows.append(row)
    frame = pd.DataFrame(rows)
    values = objective_matrix(frame, o)
    feasible = frame["feasible"].to_numpy()
    dominated_by = []
    for i in range(len(frame)):
        better = [j for j in range(len(frame)) if j != i and feasible[j] and (values[j] >= values[i]).all() and (values[j] > values[i]).any()]
        dominated_by.append(",".join(frame["candidate"].iloc[j] for j in better))
    frame["dominated_by"] = dominated_by
    frame["on_front"] = feasible & (frame["dominated_by"] == "")
    objectives = [x.metric for x in o.objectives]
    frame["indistinguishable_from"] = [",".join(b for b in names if b != a and indistinguishable(horizon, a, b, objectives)) for a in names]
    return frame


def run_optimisation(spec: ExperimentSpec, name: str, out: str | os.PathLike | None = "results/optimisations", *,
                     resume: bool | str | os.PathLike = False, workers: int | None = None,
                     progress: Callable[[int, int], None] | None = None) -> Optimisation:
    """Search the settings of ``spec.optimisation`` (a study in ``out``, or continued with
    ``resume``), then re-evaluate the best trials at fresh seeds. ``progress(done, total)`` counts runs."""
    from optuna.trial import TrialState

    from sim.folders import slug

    o = spec.optimisation
    if o is None:
        raise ConfigError(f"{name}: the experiment has no optimisation section (params, objectives)")
    t0 = time.perf_counter()
    base = base_config(spec, o.scenario)
    kinds = check_search(base, o.params)
    search_seeds = replicate_seeds(spec.seed, o.replicates)
    check_seeds = replicate_seeds(check_seed(spec.seed), o.check_replicates)
    folder = None
    if out is not None:
        from sim.folders import prepare_parent

        out = prepare_parent(Path(out))
        if resume:
            folder = find_study(out, name, resume)
            prepare_parent(folder)  # clears what a killed session left half-written
        else:
            folder = new_study_folder(out, name)
            (folder / EXPERIMENT_FILE).write_text(experiment_yaml(spec, name).replace("sim compare", "sim optimise"))
    elif resume:
        raise ConfigError("resume: a study without a folder (out=None) lives in memory and cannot be resumed")
    with quiet_optuna():
        study = open_study(folder, o, spec.seed)
        stored = study.user_attrs.get("plan")
        if stored is None:
            study.set_user_attr("plan", json.loads(json.dumps(plan_of(spec))))
            study.set_user_attr("experiment", name)
        else:
            check_plan(stored, plan_of(spec), folder)
            name = study.user_attrs.get("experiment", name)
        fail_abandoned(study)
    runs_total = [max(0, o.trials - _counted(study)) * len(search_seeds) + (o.candidates + 1) * len(check_seeds)]
    report = (lambda done: progress(done, runs_total[0])) if progress else None
    if report:
        report(0)
    baseline = study.user_attrs.get("baseline")
    if baseline is None:
        row = grouped_table(run_points(base, [{}], search_seeds, workers=workers).horizon, ["point"], list(METRICS)).iloc[0]
        baseline = {m: _number(row[m]) for m in METRICS}
        with quiet_optuna():
            study.set_user_attr("baseline", baseline)
    baseline = {m: _from_json(v) for m, v in baseline.items()}
    with quiet_optuna():
        if not study.trials and (first := baseline_point(base, o.params)) is not None:
            study.enqueue_trial(first)
        try:
            ran = search(study, o, base, kinds, search_seeds, baseline, workers, report)
        except KeyboardInterrupt as exc:
            exc.study_folder = folder  # where the interrupted study is, for the line the command prints
            raise
        trials = trials_frame(study, o)
        failed = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
    if trials.empty:
        raise ConfigError(f"optimisation: no trial finished ({failed} failed: an objective had no value in any replicate)")
    base_values = {k: config_node(to_plain(base), k, "optimisation.params") for k in o.params}
    chosen = pick_candidates(trials, o)
    chosen = chosen[[not all(_same(_plain_value(r[k]), base_values[k]) for k in o.params) for _, r in chosen.iterrows()]]  # the baseline runs anyway
    done = ran * len(search_seeds)
    runs_total[0] = done + (len(chosen) + 1) * len(check_seeds)
    horizon, names = reevaluate(base, chosen, o, check_seeds, workers, (lambda d: report(done + d)) if report else None)
    candidates = analyse(horizon, names, chosen, trials, o, base_values, slug(name))
    return Optimisation(name, spec, base, trials, candidates, horizon, search_baseline=baseline, search_seeds=search_seeds,
                        check_seeds=check_seeds, failed=failed, ran=ran, wall_seconds=time.perf_counter() - t0, path=folder)


def optimise(experiment: str | os.PathLike | Mapping[str, Any] | ExperimentSpec, out: str | os.PathLike | None = "results/optimisations",
             *, resume: bool | str | os.PathLike = False, workers: int | None = None, plots: bool = True,
             progress: Callable[[int, int], None] | None = None, **changes: Any) -> Optimisation:
    """Optimise an experiment (``experiments/NAME.yaml``, a path, or a mapping): search the settings of
    its ``optimisation`` section, re-evaluate the best at fresh seeds and, with ``out``, keep the study
    (``study.db``) and write the results in its folder (``result.path``). ``resume=True`` continues
    the newest study of the experiment under ``out`` (``resume=FOLDER``: that one). ``changes``
    replace settings of the section (``trials=100``, ``replicates=5`` ...)."""
    name, spec = resolve_experiment(experiment, "optimisation", changes)
    result = run_optimisation(spec, name, out, resume=resume, workers=workers, progress=progress)
    if out is not None:
        result.save(plots=plots)
    return result


optimize = optimise

__all__ = ["Optimisation", "best_rows", "check_search", "optimise", "optimize", "pareto_ranks", "run_optimisation"]
