"""The local backend's tune step: an Optuna study whose trials call step_code/train.py's `run`.

The runner hands the step the same arguments it would give train.py (channels from preprocessing's cached output,
the model and data folders, the hyperparameters); each trial adds its sampled values as `--name value` text, as
SageMaker's tuner does, so train.py types them exactly as on SageMaker. Trials run in `parallel_trials` worker
processes (spawned: XGBoost's OpenMP does not survive a fork). Only this parent process reads and writes the
study, once per trial; a worker prunes against the curves of the trials finished when its trial started.

The study lives in SQLite under .fraudflow/tune/<key>/ (key: the step's digest, i.e. the tune section, the training
hyperparameters, the code and the content of the data it reads), with each finished trial's model folder beside
it: Ctrl-C keeps every finished trial, and a rerun of the same pipeline on the same data resumes the study.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from fraudflow.errors import Diagnostic, UserError
from fraudflow.plan import Step
from fraudflow.spec.tuning import Objective, Range, objective, search_space, train_hyperparameter_schema

STUDY_NAME = "fraudflow"
OUTCOME = "fraudflow"  # the user attribute holding a finished trial's seconds, rounds, curve or error
PRUNE_WARMUP_ROUNDS = 10  # rounds a trial always trains before the pruner may stop it
PRUNE_STARTUP_TRIALS = 5  # trials that always finish, so the median means something


@dataclass(frozen=True)
class TrialJob:
    """Everything one trial needs, picklable for a worker process."""

    storage: str
    trial_id: int
    number: int
    script: str  # step_code/train.py
    hp_tokens: tuple[str, ...]  # the step's hyperparameters, then the sampled ones (later wins)
    channels: dict[str, str | None]  # train, validation, schema
    trial_dir: str
    objective: tuple[str, str]  # (split, metric)
    prune: bool
    direction: str = "maximize"
    # the per-round objective of every trial finished when this one started: what the pruner compares it with
    curves: tuple[tuple[float, ...], ...] = ()


@dataclass
class TrialOutcome:
    number: int
    state: str  # complete | pruned | failed
    value: float | None = None
    seconds: float = 0.0
    rounds: int | None = None
    error: dict[str, Any] | None = None  # a StepError's fields
    curve: list[float] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- the parent


def run_tuning_step(step: Step, argv: list[str], study_dir: Path, log: Path, out: Any) -> dict[str, Any]:
    """The runner's entry: the study's progress goes to the run's output and to the step's log."""
    lines = _Tee(out)
    try:
        return run_study(step, argv, study_dir, lines)
    finally:
        log.write_text(lines.text())


class _Tee:
    def __init__(self, out: Any):
        self.out = out
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self.out.write(text) if self.out is not None else len(text)

    def flush(self) -> None:
        if self.out is not None:
            self.out.flush()

    def text(self) -> str:
        return "".join(self.parts)


def run_study(step: Step, argv: list[str], study_dir: Path, out: Any) -> dict[str, Any]:
    """Run (or resume) the step's study, then publish the best trial's model and training report where the
    runner expects the train step's, and the study beside them. Returns the study summary."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tune = step.config
    paths = {argv[2 * i]: argv[2 * i + 1] for i in range(len(step.args))}  # the runner puts step.args first
    hp_tokens = tuple(argv[2 * len(step.args) :])
    obj = objective(tune)
    space = search_space(tune, train_hyperparameter_schema())
    study_dir.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{study_dir / 'study.db'}"
    study = optuna.create_study(
        study_name=STUDY_NAME,
        storage=_storage(storage),
        sampler=_sampler(tune, space),
        pruner=_pruner(tune),
        direction=obj.direction,
        load_if_exists=True,
    )
    resumed = _close_stale(study)
    if not study.trials and tune.get("strategy") != "grid":
        _enqueue_baseline(study, step, hp_tokens, space)
    total = int(tune.get("max_trials", 20))
    if tune.get("strategy") == "grid":
        total = min(total, _grid_size(space))
    if resumed:
        print(
            f"  resuming the study: {resumed} of {total} trials finished ({study_dir})", file=out, flush=True
        )
    distributions = _distributions(space)
    prune = _prunes(tune)

    def job(trial: Any) -> TrialJob:
        sampled = [tok for name, value in trial.params.items() for tok in (f"--{name}", _text(value))]
        return TrialJob(
            storage,
            trial._trial_id,
            trial.number,
            str(step.script_path()),
            hp_tokens + tuple(sampled),
            {k: paths.get(f"--{k}") for k in ("train", "validation", "schema")},
            str(study_dir / "trials" / f"{trial.number:04d}"),
            (obj.split, obj.metric),
            prune,
            obj.direction,
            _curves(study) if prune else (),
        )

    _drive(study, job, distributions, total, int(tune.get("parallel_trials", 1)), obj, out)
    summary = study_summary(study, tune, obj, space)
    if summary["best"] is None:
        raise UserError.single(
            "FF681",
            f"tune: none of the {len(summary['trials'])} trials finished",
            file=str(study_dir / "study.db"),
            hint="each failed trial's error is in the step's log; widen or fix the search space",
        )
    best_dir = study_dir / "trials" / f"{summary['best']['number']:04d}"
    _publish(best_dir / "model", Path(paths["--model-dir"]))
    _publish(best_dir / "data", Path(paths["--output-data-dir"]))
    study_out = Path(paths["--model-dir"]).parent / "study"
    study_out.mkdir(parents=True, exist_ok=True)
    (study_out / "study.json").write_text(json.dumps(summary, indent=2) + "\n")
    best = summary["best"]
    print(
        f"  best trial {best['number']}: {obj.name} {best['value']:.4f}  "
        + " ".join(f"{k}={_text(v)}" for k, v in best["params"].items()),
        file=out,
        flush=True,
    )
    return summary


def _enqueue_baseline(study: Any, step: Step, hp_tokens: tuple[str, ...], space: list[Range]) -> None:
    """The first trial tries train.hyperparameters' own values (those inside the space; the others are sampled),
    so the study's best is never worse than not tuning at all."""
    from fraudflow.local.runner import load_script

    script = step.script_path()
    assert script is not None
    base = load_script(script).parse_hyperparameters(list(hp_tokens))
    inside = {r.name: base[r.name] for r in space if r.name in base and _inside(r, base[r.name])}
    if inside:
        study.enqueue_trial(inside, user_attrs={"baseline": True})


def _inside(r: Range, value: Any) -> bool:
    if r.kind == "categorical":
        return value in r.values
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if r.kind == "integer" and not float(value).is_integer():
        return False
    on_step = (
        r.step is None or abs((value - (r.low or 0)) / r.step - round((value - (r.low or 0)) / r.step)) < 1e-9
    )
    return (r.low or 0) <= value <= (r.high or 0) and on_step


def _drive(
    study: Any, job: Any, distributions: dict[str, Any], total: int, parallel: int, obj: Objective, out: Any
) -> None:
    """Ask for trials while fewer than `total` have finished, `parallel` at a time; tell each outcome."""
    done = _finished(study)
    running: dict[Any, Any] = {}
    pool = (
        cf.ProcessPoolExecutor(
            max_workers=parallel,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(_threads_per_worker(parallel),),
        )
        if parallel > 1
        else None
    )
    try:
        while done + len(running) < total or running:
            while pool is not None and done + len(running) < total and len(running) < parallel:
                trial = study.ask(distributions)
                running[pool.submit(run_trial, job(trial))] = trial
            if pool is None:  # one at a time: in this process, no worker to start
                trial = study.ask(distributions)
                outcome = run_trial(job(trial))
            else:
                finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                future = next(iter(finished))
                trial = running.pop(future)
                outcome = future.result()
            done += _tell(study, trial, outcome)
            _progress(study, outcome, done, total, obj, out)
    except BaseException:  # Ctrl-C (or a stopping error): the finished trials are in the study already
        if pool is not None:
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()  # an unfinished trial is redone by the next run
            pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True)


def _start_worker(threads: str | None) -> None:
    """Workers leave Ctrl-C to the parent, which stops them (no traceback per worker on the terminal), and share
    the cores: XGBoost's OpenMP takes every core by default, so N workers each spinning N threads fought over
    them and 2 parallel trials ran slower than 1. Set before this fresh process imports XGBoost."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = threads


def _threads_per_worker(parallel: int) -> str | None:
    """cores // workers (at least 1) OpenMP threads per worker, unless the user's OMP_NUM_THREADS says."""
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return str(max(1, cores // parallel))


def _tell(study: Any, trial: Any, outcome: TrialOutcome) -> int:
    """Record a trial's outcome; a data or configuration error (not a sampled value XGBoost refused) stops the
    study with the error train.py raised, as the train step would."""
    import optuna

    # one attribute per trial (each is a transaction): what the summary, the pruner and the resume read
    record: dict[str, Any] = {"seconds": round(outcome.seconds, 3), "rounds": outcome.rounds}
    if outcome.state == "complete" and outcome.curve:
        record["curve"] = outcome.curve  # the pruner of later trials compares with it
    err = outcome.error or {}
    if outcome.state == "failed":
        record["error"] = f"{err.get('code', '')} {err.get('message', '')}".strip()
    trial.set_user_attr(OUTCOME, record)
    if outcome.state == "complete":
        study.tell(trial, outcome.value)
    elif outcome.state == "pruned":
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    else:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        if not err.get("retryable"):
            raise UserError(
                Diagnostic(
                    str(err.get("code")),  # train.py's own StepError code: the trial met bad data
                    f"tune: trial {outcome.number}: {err.get('message', 'failed')}",
                    file=err.get("file"),
                    line=err.get("line"),
                    hint=err.get("hint"),
                )
            )
    return 1


def _progress(study: Any, outcome: TrialOutcome, done: int, total: int, obj: Objective, out: Any) -> None:
    score = (
        f"{outcome.value:.4f}"
        if outcome.value is not None
        else f"pruned at round {len(outcome.curve)}"
        if outcome.state == "pruned"
        else "failed"
    )
    try:
        best = f"best {study.best_value:.4f} (trial {study.best_trial.number})"
    except ValueError:  # no trial completed yet
        best = "best -"
    print(f"  trial {done}/{total}  {obj.name} {score}  {best}  {outcome.seconds:.1f}s", file=out, flush=True)


def _curves(study: Any) -> tuple[tuple[float, ...], ...]:
    from optuna.trial import TrialState

    return tuple(
        tuple(t.user_attrs[OUTCOME]["curve"])
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get(OUTCOME, {}).get("curve")
    )


def _finished(study: Any) -> int:
    """Trials that count against max_trials: the finished ones, not those an interruption left unfinished."""
    from optuna.trial import TrialState

    return sum(
        1
        for t in study.get_trials(deepcopy=False)
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and "error" in t.user_attrs.get(OUTCOME, {}))
    )


def _close_stale(study: Any) -> int:
    """A trial still RUNNING was cut short by an interruption: fail it (it does not count) and say how many
    trials are kept."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
    return _finished(study)


def _storage(url: str) -> Any:
    import optuna

    path = url.removeprefix("sqlite:///")
    return optuna.storages.RDBStorage(url, engine_kwargs={"creator": lambda: _sqlite(path)})


def _sqlite(path: str) -> Any:
    """The study's connection. WAL with synchronous=NORMAL: a commit survives a killed process (Ctrl-C keeps every
    told trial) without an fsync per commit, which on a busy disk cost more than the trials' training; another
    fraudflow process holding the lock for a moment is waited for, not an error."""
    import sqlite3

    conn = sqlite3.connect(path, timeout=120, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _sampler(tune: dict[str, Any], space: list[Range]) -> Any:
    import optuna

    seed = int(tune.get("seed", 0))
    strategy = tune.get("strategy", "bayesian")
    if strategy == "grid":
        return _grid_sampler({r.name: r.grid() for r in space}, seed)
    if strategy == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    startup = max(1, min(10, int(tune.get("max_trials", 20)) // 2))
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=startup, constant_liar=int(tune.get("parallel_trials", 1)) > 1
    )


def _grid_sampler(grid: dict[str, list[Any]], seed: int) -> Any:
    """Optuna's GridSampler, whose after_trial calls `study.stop()` once the grid is exhausted: allowed only
    inside `study.optimize`, and this study is driven by ask and tell, which counts the trials itself."""
    import optuna

    class AskTellGrid(optuna.samplers.GridSampler):
        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return AskTellGrid(grid, seed=seed)


def _prunes(tune: dict[str, Any]) -> bool:
    return bool(tune.get("early_stopping", True)) and tune.get("strategy", "bayesian") != "grid"


def _pruner(tune: dict[str, Any]) -> Any:
    import optuna

    return _median_pruner() if _prunes(tune) else optuna.pruners.NopPruner()


def _distributions(space: list[Range]) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for r in space:
        if r.kind == "categorical":
            out[r.name] = CategoricalDistribution(list(r.values))
        elif r.kind == "integer":
            out[r.name] = IntDistribution(int(r.low or 0), int(r.high or 0), log=r.log, step=int(r.step or 1))
        else:
            out[r.name] = FloatDistribution(float(r.low or 0), float(r.high or 0), log=r.log, step=r.step)
    return out


def _grid_size(space: list[Range]) -> int:
    from fraudflow.spec.tuning import grid_size

    return grid_size(space)


def _publish(src: Path, dest: Path) -> None:
    """Copy a trial's folder into the step's output (the runner's scratch folder: moved into place after)."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)


def study_summary(study: Any, tune: dict[str, Any], obj: Objective, space: list[Range]) -> dict[str, Any]:
    """What the study found, for study.json, the report and the registry: every trial and the best one."""
    from optuna.trial import TrialState

    trials = []
    for t in study.get_trials(deepcopy=False):
        record = t.user_attrs.get(OUTCOME, {})
        if t.state == TrialState.FAIL and "error" not in record:
            continue  # cut short by an interruption and redone
        trials.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": t.value if t.state == TrialState.COMPLETE else None,
                "params": t.params,
                "seconds": record.get("seconds"),
                "rounds": record.get("rounds"),
                **({"error": record["error"]} if "error" in record else {}),
            }
        )
    complete = [t for t in trials if t["state"] == "complete"]
    pick = max if obj.direction == "maximize" else min
    best = pick(complete, key=lambda t: t["value"]) if complete else None
    return {
        "objective": {"metric": obj.name, "direction": obj.direction},
        "strategy": tune.get("strategy", "bayesian"),
        "max_trials": tune.get("max_trials", 20),
        "parallel_trials": tune.get("parallel_trials", 1),
        "seed": tune.get("seed", 0),
        "space": {r.name: _space_text(r) for r in space},
        "trials": trials,
        "best": best and {"number": best["number"], "value": best["value"], "params": best["params"]},
    }


def _space_text(r: Range) -> dict[str, Any]:
    if r.kind == "categorical":
        return {"values": list(r.values)}
    return {"min": r.low, "max": r.high, "scale": "log" if r.log else "linear", "type": r.kind}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------------------------- a trial


def run_trial(job: TrialJob) -> TrialOutcome:
    """One trial (in a worker process, or in the parent when parallel_trials is 1): train.py's `run` with the
    sampled hyperparameters into the trial's own folders; the pruner may stop it between rounds."""
    from fraudflow.local.runner import load_script

    train = load_script(Path(job.script))
    _read_each_channel_once(train)
    started = time.perf_counter()
    out_dir = Path(job.trial_dir)
    if out_dir.exists():  # left by an interrupted attempt of the same trial number: not a finished trial
        shutil.rmtree(out_dir)
    pruning = _Pruning(job) if job.prune else None
    try:
        params = train.parse_hyperparameters(list(job.hp_tokens))
        summary = train.run(
            params,
            job.channels["train"],
            job.channels["validation"],
            out_dir / "model",
            out_dir / "data",
            job.channels["schema"],
            callbacks=[pruning.callback()] if pruning else None,
        )
    except Exception as exc:
        code = getattr(exc, "ff_code", None)
        if not code:
            raise
        error = {k: getattr(exc, k, None) for k in ("message", "file", "line", "hint")}
        # XGBoost refused the sampled values: that trial fails and the study goes on; bad data stops it
        error["retryable"] = code == train.E_XGBOOST
        return TrialOutcome(
            job.number, "failed", seconds=time.perf_counter() - started, error={"code": code, **error}
        )
    seconds = time.perf_counter() - started
    if pruning is not None and pruning.pruned:
        shutil.rmtree(out_dir, ignore_errors=True)  # a pruned trial's model is never used
        return TrialOutcome(job.number, "pruned", seconds=seconds, curve=pruning.curve)
    value = train.final_metrics(summary)[f"{job.objective[0]}-{job.objective[1]}"]
    return TrialOutcome(
        job.number,
        "complete",
        value=value,
        seconds=seconds,
        rounds=summary["rounds_trained"],
        curve=pruning.curve if pruning else [],
    )


def _read_each_channel_once(train: Any) -> None:
    """Every trial reads the same train and validation channels: this process parses each once (train.py's own
    `read_channel`, remembered by the channel's files, their sizes and modification times)."""
    if getattr(train.read_channel, "remembers", False):
        return
    read = train.read_channel
    seen: dict[Any, Any] = {}

    def read_channel(channel: str | None, name: str) -> Any:
        folder = Path(channel) if channel else None
        files = sorted(folder.iterdir()) if folder and folder.is_dir() else [folder] if folder else []
        key = (channel, name, tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files if f))
        if key not in seen:
            if len(seen) >= 4:  # train and validation of the newest data are worth keeping
                seen.clear()
            seen[key] = read(channel, name)
        return seen[key]

    read_channel.remembers = True  # type: ignore[attr-defined]
    train.read_channel = read_channel


class _Pruning:
    """Stops a trial whose per-round objective falls behind: Optuna's median pruner, asked in this process
    against an in-memory study holding the curves of the trials finished when this one started (the SQLite study
    is touched only by the parent, once per trial, not once per round)."""

    def __init__(self, job: TrialJob):
        import optuna
        from optuna.trial import TrialState, create_trial

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction=cast(Any, job.direction), pruner=_median_pruner())
        for curve in job.curves:
            study.add_trial(
                create_trial(
                    state=TrialState.COMPLETE,
                    value=curve[-1],
                    intermediate_values=dict(enumerate(curve)),
                )
            )
        self.trial = study.ask()
        self.split, self.metric = job.objective
        self.curve: list[float] = []
        self.pruned = False

    def callback(self) -> Any:
        import xgboost as xgb

        pruning = self

        class Prune(xgb.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                return pruning.after_round(epoch, evals_log)

        return Prune()

    def after_round(self, epoch: int, evals_log: Any) -> bool:
        value = float(evals_log[self.split][self.metric][-1])
        self.curve.append(value)
        self.trial.report(value, epoch)
        if epoch >= PRUNE_WARMUP_ROUNDS and self.trial.should_prune():
            self.pruned = True
            return True  # stops xgb.train; the trial is told PRUNED
        return False


def _median_pruner() -> Any:
    import optuna

    return optuna.pruners.MedianPruner(
        n_startup_trials=PRUNE_STARTUP_TRIALS, n_warmup_steps=PRUNE_WARMUP_ROUNDS
    )
