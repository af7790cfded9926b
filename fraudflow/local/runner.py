"""The local backend: executes a Plan on this machine, no AWS and no Docker.

Each script step runs in-process (its module imported from step_code/, `main([...])` called with the same
arguments SageMaker would give it, pointed at folders under .fraudflow/), so one interpreter start-up serves the
whole run. A step whose code, config, inputs and library versions are unchanged is reused from the step cache,
like SageMaker's step caching. The gate, registration and deployment are done here, against the local registry.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import functools
import io
import json
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fraudflow import exits
from fraudflow.errors import Diagnostic, UsageError, UserError
from fraudflow.local.serving.capture import local_config as local_capture
from fraudflow.local.serving.capture import save_endpoint_config as save_capture
from fraudflow.local.store import Digests, NotRegular, Store, atomic_write_text, file_digest, step_digest
from fraudflow.plan import FileRef, Plan, Step, build_plan
from fraudflow.stepcode import load_file

CACHEABLE = ("processing", "training", "tuning", "bias", "explain")  # the kinds that run a script
# The registration's inputs that carry a check's analysis → the registry's field for it.
REGISTRY_REPORTS = {"bias": "bias", "explain": "explainability"}


@dataclass
class StepRecord:
    name: str
    status: str  # ran | cached | failed | skipped
    seconds: float = 0.0
    digest: str | None = None
    path: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    status: str  # succeeded | stopped_at_gate | failed
    steps: list[StepRecord]
    gate: dict[str, Any] | None = None
    model_package: dict[str, Any] | None = None
    endpoint: dict[str, Any] | None = None

    @property
    def exit_code(self) -> int:
        return {"succeeded": exits.OK, "stopped_at_gate": exits.GATE_STOPPED}.get(self.status, exits.ERROR)


def run_command(args: argparse.Namespace) -> int:
    from fraudflow.spec.load import load_one

    spec = load_one(args.file, env=args.env, overrides=args.overrides, pipeline=args.pipeline)
    plan = build_plan(spec)
    modes = select_steps(plan, start=getattr(args, "start", None), only=getattr(args, "only", None))
    result = run_plan(plan, use_cache=not args.no_cache, out=sys.stdout, modes=modes)
    return result.exit_code


# What a run does with each step: RUN it (reusing an identical cached result), REUSE its cached result (refused
# when there is none), run it AGAIN whatever the cache holds, or OMIT it (`--only`: not needed).
RUN, REUSE, AGAIN, OMIT = "run", "reuse", "again", "omit"


def select_steps(plan: Plan, *, start: str | None = None, only: str | None = None) -> dict[str, str]:
    """Each step's mode for `run --from START` (the steps before START reused, START and every later step run
    again) or `run --only ONLY` (the steps ONLY reads from, transitively, reused; ONLY run again; the rest
    omitted). Derived from the Plan's order and inputs only, so it holds for any pipeline's steps."""
    names = [s.name for s in plan.steps]
    if start is None and only is None:
        return dict.fromkeys(names, RUN)
    flag, name = ("--from", start) if start is not None else ("--only", only)
    assert name is not None
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        raise UsageError.single(
            "FF696",
            f"{flag} {name!r}: pipeline {plan.name!r} has no such step",
            hint=(f"did you mean {close[0]!r}? " if close else "")
            + f"the steps, in order: {', '.join(names)}",
        )
    if start is not None:
        first = names.index(start)
        return {n: REUSE if i < first else AGAIN for i, n in enumerate(names)}
    needed: set[str] = set()
    todo = [name]
    while todo:
        for inp in plan.step(todo.pop()).inputs:
            if inp.step is not None and inp.step not in needed:
                needed.add(inp.step)
                todo.append(inp.step)
    return {n: AGAIN if n == name else REUSE if n in needed else OMIT for n in names}


def logs_command(args: argparse.Namespace) -> int:
    """`fraudflow logs [RUN] STEP`: print what a step printed in a run (default the latest). A step the run
    reused from the cache shows the log of the run that computed it."""
    run, step = (args.run, args.step) if args.step is not None else ("latest", args.run)
    runs = Store(Path(args.workspace)).runs
    run_dir = _find_run(runs, run)
    try:
        summary = json.loads((run_dir / "run.json").read_text())
        steps = [str(s["name"]) for s in summary["steps"]]
        status = {str(s["name"]): str(s["status"]) for s in summary["steps"]}
    except (OSError, ValueError, KeyError, TypeError):
        summary, steps, status = {}, [], {}
    if step not in steps:
        close = difflib.get_close_matches(step, steps, n=1)
        raise UsageError.single(
            "FF696",
            f"run {run_dir.name} has no step {step!r}",
            file=str(run_dir / "run.json"),
            hint=(f"did you mean {close[0]!r}? " if close else "")
            + (f"its steps: {', '.join(steps)}" if steps else "the run recorded no step"),
        )
    for log in (run_dir / f"{step}.log", run_dir / step / "log.txt"):  # ran here; reused from the cache
        if log.is_file():
            sys.stdout.write(log.read_text(errors="replace"))
            return exits.OK
    raise UserError.single(
        "FF699",
        f"step {step!r} has no log in run {run_dir.name} (status: {status.get(step, '?')})",
        file=str(run_dir),
        hint="only the script steps (processing, training, checks) write a log, and only when they ran or were "
        "reused; see run.json for the others",
    )


def _find_run(runs: Path, run: str) -> Path:
    """The run folder for a run id or `latest`; a name with a path in it is not a run id."""
    path = runs / run
    if "/" not in run and run not in ("", ".", "..") and (path / "run.json").is_file():
        return path.resolve()
    known = sorted(p.name for p in runs.glob("*") if (p / "run.json").is_file() and p.name != "latest")
    raise UsageError.single(
        "FF698",
        f"no run {run!r} in {runs}" if known else f"no run yet in {runs}",
        hint=f"the newest runs: {', '.join(known[-5:][::-1])} (or `latest`)"
        if known
        else "`fraudflow run` first, or point --workspace at the folder holding .fraudflow/",
    )


def run_plan(
    plan: Plan, *, use_cache: bool = True, out: Any = None, modes: dict[str, str] | None = None
) -> RunResult:
    out = out or io.StringIO()
    modes = modes or select_steps(plan)
    quiet_openmp()
    store = Store(plan.spec.workspace)
    run_id, run_dir = store.new_run()
    store.clean_stale_scratch()  # left by runs killed mid-step
    runner = _Runner(plan, store, run_id, run_dir, use_cache, out, modes)
    try:
        result = runner.execute()
    except BaseException:
        try:
            runner.write_summary()
        except UserError as exc:  # the step's own error is the one to report; mention this one
            runner.say(f"warning: {exc}")
        raise
    runner.write_summary()
    return result


def quiet_openmp(environ: Any = os.environ) -> bool:
    """Let XGBoost's OpenMP threads sleep, not spin, between parallel regions (OMP_WAIT_POLICY=PASSIVE), unless the
    user set how they wait. libgomp's threads spin some 300,000 times before sleeping; when the machine's cores
    are shared (other processes, or the steps' own Python work), the spinning thread takes the core from the one
    doing the work: at 1M rows training took twice the CPU and the wall time. libgomp reads the setting once,
    when XGBoost loads it: a no-op (False) once xgboost is imported."""
    if "xgboost" in sys.modules or any(k in environ for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")):
        return False
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


class _Runner:
    def __init__(
        self,
        plan: Plan,
        store: Store,
        run_id: str,
        run_dir: Path,
        use_cache: bool,
        out: Any,
        modes: dict[str, str] | None = None,
    ):
        self.plan, self.store, self.run_id, self.run_dir = plan, store, run_id, run_dir
        self.use_cache, self.out, self.modes = use_cache, out, modes or select_steps(plan)
        self.digests: dict[str, str] = {}
        self._champions: dict[str, Any] = {}
        self.dirs: dict[str, Path] = {}
        self.content = Digests(store.root / "digests.json")
        self.result = RunResult(run_id, run_dir, "failed", [])
        self.started = time.time()

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # ---------------------------------------------------------------------------------------------- driver
    def execute(self) -> RunResult:
        plan = self.plan
        self.say(f"fraudflow run {plan.name}  (run {self.run_id}, {self.run_dir})")
        _library_versions()  # the ML libraries' versions (the steps' cache keys), read once
        ungated = [s for s in plan.steps if not s.gated]
        gated = [s for s in plan.steps if s.gated]
        total = len(plan.steps) + 1
        for i, step in enumerate(ungated, 1):
            self._step(step, i, total)
        if all(self.modes[s.name] == OMIT for s in gated):  # `--only` an ungated step: no gate to pass
            for i, step in enumerate(gated, len(ungated) + 2):
                self._step(step, i, total)
            self.result.status = "succeeded"
            self.say(f"succeeded in {time.time() - self.started:.1f}s — summary: {self.run_dir / 'run.json'}")
            return self.result
        passed = self._gate(len(ungated) + 1, total)
        if not passed:
            for step in gated:
                self.result.steps.append(StepRecord(step.name, "skipped"))
            self.result.status = "stopped_at_gate"
            from fraudflow.local.gate_check import failures

            self.say(
                f"stopped at the gate: {'; '.join(failures(self.result.gate or {}))}; "
                "nothing was registered or deployed (exit 3)"
            )
            return self.result
        for i, step in enumerate(gated, len(ungated) + 2):
            self._step(step, i, total)
        self.result.status = "succeeded"
        took = time.time() - self.started
        self.say(
            f"succeeded in {took:.1f}s — summary: {self.run_dir / 'run.json'}, report: "
            f"{self.run_dir / 'report.html'}"
        )
        return self.result

    def _step(self, step: Step, index: int, total: int) -> None:
        label = f"[{index}/{total}] {step.name:<10}"
        t0 = time.perf_counter()
        path: Path | None
        if self.modes[step.name] == OMIT:
            self.result.steps.append(StepRecord(step.name, "skipped", detail={"note": "not selected"}))
            self.say(f"{label} skipped  not selected")
            return
        try:
            handlers = {"register": self._register, "deploy": self._deploy}  # one handler per step kind
            handler = self._script_step if step.kind in CACHEABLE else handlers[step.kind]
            status, path, detail = handler(step)
        except BaseException:
            self.result.steps.append(StepRecord(step.name, "failed", time.perf_counter() - t0))
            self.say(f"{label} failed")
            raise
        seconds = time.perf_counter() - t0
        self.result.steps.append(
            StepRecord(
                step.name, status, seconds, self.digests.get(step.name), str(path) if path else None, detail
            )
        )
        note = f"  {detail['note']}" if detail.get("note") else ""
        self.say(f"{label} {status:<7} {seconds:6.2f}s{note}")

    # ---------------------------------------------------------------------------------------- script steps
    def _script_step(self, step: Step) -> tuple[str, Path, dict]:
        digest = self._digest(step)
        self.digests[step.name] = digest
        mode = self.modes[step.name]
        cached = self.store.cached(digest) if mode == REUSE or (self.use_cache and mode == RUN) else None
        if cached is None and mode == REUSE:
            raise self._not_cached(step)
        if cached is not None:
            self.dirs[step.name] = cached
            self.store.link(self.run_dir, step.name, cached)
            return "cached", cached, self._note(step, cached)
        scratch = self.store.scratch(digest)
        try:
            self._invoke(step, scratch)
        except BaseException:
            self.store.discard(scratch)
            raise
        meta = {"step": step.name, "digest": digest, "run": self.run_id}
        with _state_write("the step cache", self.store.steps):
            final = self.store.commit(scratch, digest, meta)
        self.dirs[step.name] = final
        self.store.link(self.run_dir, step.name, final)
        return "ran", final, self._note(step, final)

    def _not_cached(self, step: Step) -> UserError:
        again = next(n for n, m in self.modes.items() if m == AGAIN)
        return UserError.single(
            "FF697",
            f"step {step.name!r} has no cached result for its current code, config and inputs; running "
            f"{again!r} again needs it",
            file=str(self.plan.spec.file),
            hint="run the whole pipeline first (`fraudflow run` with the same file, --env and --set), then "
            "this command again",
        )

    def _digest(self, step: Step) -> str:
        """The step's cache key: its code, config, library versions and the content of every file it reads
        (a source file or folder, or the outputs of earlier steps), so that changing any byte of any input
        runs the step again."""
        inputs = []
        for inp in step.inputs:
            if inp.is_source:
                uri = self.plan.spec.config["data"]["sources"][inp.output]
                _check_local_source(uri, inp.output)
                inputs.append([inp.name, self._content(Path(uri), inp.output)])
            else:
                inputs.append([inp.name, self._content(self._input_path(step, inp.name), inp.name)])
        with _state_write("the digest memo", self.content.memo_path):
            self.content.save()
        script = step.script_path()
        return step_digest(
            [
                step.name,
                step.kind,
                file_digest(script) if script else None,
                *([[file_digest(p) for p in step.code_paths]] if step.extra_code else []),
                step.config,
                step.hyperparameters,
                inputs,
                _library_versions(),
                *([self._champion(step).identity] if step.config.get("champion") else []),
            ]
        )

    def _champion(self, step: Step) -> Any:
        """The Approved version a champion gate compares with, read from the local registry when the run starts."""
        from fraudflow.local.champion import find_champion

        if step.name not in self._champions:
            self._champions[step.name] = find_champion(
                step.config.get("champion"), self.store.root, self._content
            )
        return self._champions[step.name]

    def _content(self, path: Path, name: str) -> str:
        try:
            return self.content.tree(path)
        except NotRegular as exc:
            raise UserError.single(
                "FF694",
                f"input {name!r}: {exc.path} is a {exc.kind}, not a regular file or a folder of them",
                file=str(exc.path),
                hint="point the source at a CSV file or a folder of CSV files (a pipe or a device could "
                "block or never end)",
            ) from None

    def _input_path(self, step: Step, name: str) -> Path:
        inp = step.input(name)
        assert inp.step is not None, f"{step.name}.{name} is a data source"
        base = self.dirs[inp.step] / "output"
        return base if inp.output == "*" else base / inp.output

    def _invoke(self, step: Step, scratch: Path) -> None:
        out = scratch / "output"
        config = scratch / "config.json"
        with _state_write("the step's config", config):
            config.write_text(json.dumps(step.config, indent=2, sort_keys=True))
        inputs = scratch / "input"  # data sources, linked under their names as the container mounts them
        aliases: dict[str, str] = {}  # paths the script sees → paths the user knows, for error messages
        for inp in step.inputs:
            if inp.is_source:
                inputs.mkdir(exist_ok=True)
                uri = self.plan.spec.config["data"]["sources"][inp.output]
                _check_local_source(uri, inp.output)
                os.symlink(uri, inputs / inp.name)
                aliases[str(inputs / inp.name)] = uri
        places = {"config": config, "inputs": inputs, "outputs": out}
        argv: list[str] = []
        for arg in step.args:
            kind, _, name = arg.to.partition(":")
            if kind == "input":
                path = inputs / name if step.input(name).is_source else self._input_path(step, name)
            else:
                path = out / name if kind == "output" else places[kind]
            argv += [arg.flag, str(path)]
        for key, value in step.hyperparameters.items():
            argv += [f"--{key}", _hp_text(value)]
        argv += self._champion(step).argv
        # The log lives in the run folder, so it outlives a failed step's scratch folder (FF690 points at it).
        log = self.run_dir / f"{step.name}.log"
        if step.kind == "tuning":  # trials of train.py in worker processes; the study resumes (local/tune.py)
            from fraudflow.local.tune import run_tuning_step

            study = self.store.root / "tune" / self.digests[step.name][:16]
            run_tuning_step(step, argv, study, log, self.out)
        else:
            run_script(step, argv, log, aliases)
        with _state_write("the step's log", scratch / "log.txt"):
            shutil.copy(log, scratch / "log.txt")

    def _file(self, ref: FileRef, base: Path | None = None) -> Path:
        return (base or self.dirs[ref.step]) / "output" / ref.output / ref.name

    def _note(self, step: Step, path: Path) -> dict:
        """A one-line summary of the files of the step that have a note formatter (NOTES: by file, not step)."""
        notes = []
        for out in step.outputs:
            for label, name in out.files.items():
                if label in NOTES:
                    with contextlib.suppress(OSError, KeyError, ValueError, TypeError):  # a note is optional
                        doc = json.loads((path / "output" / out.name / name).read_text())
                        notes.append(NOTES[label](doc))
        return {"note": "; ".join(notes)} if notes else {}

    # ---------------------------------------------------------------------------------------------- gate
    def _gate(self, index: int, total: int) -> bool:
        from fraudflow.local.gate_check import describe, judge

        outcome = judge(self.plan.gate, self._file)
        for row in outcome["conditions"]:  # evaluate.py writes every metric: a missing one is a broken step
            if row["source"] == "evaluation" and row["value"] is None:
                raise UserError.single(
                    "FF692",
                    f"{Path(row['file']).name} has no number at {row['json_path']} ({row['where']})",
                    file=row["file"],
                    hint="evaluate.py writes the gate metrics",
                )
        self.result.gate = outcome
        passed = bool(outcome["passed"])
        lines = [describe(row, outcome.get("champion")) for row in outcome["conditions"]]
        self.say(f"[{index}/{total}] {'gate':<10} {'passed' if passed else 'stopped':<7}          {lines[0]}")
        for line in lines[1:]:
            self.say(f"{'':<41}{line}")
        return passed

    # ------------------------------------------------------------------------------------ register, deploy
    def _registry(self) -> Any:
        from fraudflow.local.registry import Registry

        return Registry(self.store.root)

    def _register(self, step: Step) -> tuple[str, Path | None, dict]:
        """Registers the inputs' files, each found through the Plan: the model folder, the data step's feature
        schema and baseline statistics, the evaluation, and the analysis of each check step that ran."""
        from fraudflow.local.registry_cli import servable

        plan, cfg = self.plan, step.config
        data, evaluation = step.input("data").step, step.input("evaluation").step
        assert data and evaluation
        stats = self._file(plan.file(data, "statistics"))
        checks = {
            REGISTRY_REPORTS[i.name]: json.loads(self._file(plan.file(i.step, "analysis")).read_text())
            for i in step.inputs
            if i.name in REGISTRY_REPORTS and i.step in self.dirs
        }
        model_dir = self._input_path(step, "model")
        schema = self._file(plan.file(data, "feature_schema"))
        metrics = json.loads(self._file(plan.file(evaluation, "evaluation")).read_text())
        if self.result.gate:  # each condition's value and verdict, for `registry show`
            metrics = {**metrics, "gate": self.result.gate}
        registry = self._registry()
        try:
            # A rerun that reproduces the newest version (the same model, schema, metrics, reports, baselines and
            # requested status) reuses it instead of registering it twice; anything different is a new version.
            # --no-cache registers anew, as every SageMaker execution does.
            version = registry.register(
                cfg["model_package_group"],
                model_dir=model_dir,
                feature_schema=schema,
                metrics=metrics,
                bias=checks.get("bias"),
                explainability=checks.get("explainability"),
                baselines=json.loads(stats.read_text()) if stats.exists() else None,
                approval_status=cfg["approval_status"],
                pipeline=self.plan.name,
                run_id=self.run_id,
                description=cfg.get("description") or self.plan.spec.config.get("description", ""),
                reuse_identical=self.use_cache,
                tuning=self._study(),  # the tune step's study (trials, best parameters), when the pipeline tunes
                # an Approved version repoints follow-approved endpoints: checked as `registry approve` checks
                check=functools.partial(
                    servable,
                    why="registering it as Approved would switch an endpoint that follows approvals to it",
                ),
            )
        finally:
            registry.close()
        status = "ran" if version.run_id == self.run_id else "cached"
        self.result.model_package = {
            "group": version.group,
            "version": version.version,
            "status": version.status,
        }
        note = f"{version.group} v{version.version} ({version.status})"
        return (
            status,
            version.artifact_dir,
            {"note": note + (", the same model" if status == "cached" else "")},
        )

    def _study(self) -> dict | None:
        tune = self.plan.of_kind("tuning")
        if not tune or tune[0].name not in self.dirs:
            return None
        return json.loads(self._file(self.plan.file(tune[0].name, "study")).read_text())

    def _deploy(self, step: Step) -> tuple[str, Path | None, dict]:
        from fraudflow.local.registry import VariantSpec
        from fraudflow.local.registry_cli import servable
        from fraudflow.local.serving import api_access

        cfg = step.config
        pkg = self.result.model_package or {}
        group, newest = pkg["group"], pkg["version"]
        registry = self._registry()
        if cfg.get("when") == "approved":  # a run deploys nothing: approvals do (fraudflow/local/approval.py)
            from fraudflow.local.approval import deploy_on_approval

            return deploy_on_approval(registry, cfg, group, servable, self.result)
        try:  # the same rule as the SageMaker deployer Lambda (fraudflow/variants.py)
            chosen = registry.choose(
                group, newest, cfg["variants"], require_approval=bool(cfg.get("require_approval"))
            )
            if chosen.refused:
                hint = (
                    f"; approve with `fraudflow registry approve {group} N`"
                    if "Approved" in chosen.refused
                    else ""
                )
                return "skipped", None, {"note": f"not deployed: {chosen.refused}{hint}"}
            endpoint = registry.deploy(
                cfg["endpoint_name"],
                [VariantSpec(c.name, group, c.version, c.weight) for c in chosen.served],
                follow_approved=bool(cfg.get("require_approval")) and len(chosen.served) == 1,
                check=functools.partial(  # never point an endpoint at a version that cannot load (FF811)
                    servable, why=f"the deploy step would point endpoint {cfg['endpoint_name']!r} at it"
                ),
            )
        finally:
            registry.close()
        self.result.endpoint = endpoint.to_dict()
        api_access.record(self.store.root, endpoint.name, cfg.get("api"))  # what serve demands (deploy.api)
        save_capture(
            self.store.root,
            cfg["endpoint_name"],
            local_capture(cfg, self.store.root, self.plan.spec.workspace),
        )
        served = ", ".join(f"{v.name}→v{v.version} ({v.weight:g})" for v in endpoint.variants)
        return "ran", None, {"note": f"endpoint {endpoint.name}: {served}; `fraudflow serve` serves it"}

    # ----------------------------------------------------------------------------------------------- output
    def _experiment(self) -> dict[str, Any]:
        from fraudflow.local.runs import experiment

        files = {
            label: self.dirs[s.name] / "output" / out.name / name
            for s in self.plan.steps
            if s.name in self.dirs
            for out in s.outputs
            for label, name in out.files.items()
        }
        sources = self.plan.spec.config["data"]["sources"]
        return experiment(dict(self.plan.spec.config), files, lambda n: self.content.tree(Path(sources[n])))

    def write_summary(self) -> None:
        r = self.result
        summary = {
            "run_id": r.run_id,
            "pipeline": self.plan.name,
            "file": str(self.plan.spec.file),
            "env": self.plan.spec.env,
            "status": r.status,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.started)),
            "seconds": round(time.time() - self.started, 3),
            "steps": [
                {
                    "name": s.name,
                    "status": s.status,
                    "seconds": round(s.seconds, 3),
                    "digest": s.digest,
                    "path": s.path,
                    **({"note": s.detail["note"]} if s.detail.get("note") else {}),
                }
                for s in r.steps
            ],
            "gate": r.gate,
            "model_package": r.model_package,
            "endpoint": r.endpoint,
        }
        summary.update(self._experiment())  # parameters, data digests, metrics, trials (local/runs.py)
        with _state_write("the run summary", self.run_dir / "run.json"):
            atomic_write_text(self.run_dir / "run.json", json.dumps(summary, indent=2) + "\n")
        if r.status != "failed":
            from fraudflow.local.report import write_report

            try:
                write_report(self.run_dir, summary, self.dirs, self.plan)
            except (OSError, KeyError, ValueError) as exc:  # a report problem must not fail a finished run
                self.say(f"warning: report.html not written: {exc}")
        self.store.mark_latest(r.run_id)


def run_script(step: Step, argv: list[str], log: Path, aliases: dict[str, str] | None = None) -> None:
    """Import the step's script and call main(argv) in-process; its output goes to the step's log."""
    path = step.script_path()
    assert path is not None
    module = load_script(path)
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            code = module.main(argv)
    except Exception as exc:
        with contextlib.suppress(OSError):  # the step's own error matters more than its log
            log.write_text(buffer.getvalue() + traceback.format_exc())
        ff_code = getattr(exc, "ff_code", None)  # the scripts' StepError, which cannot import fraudflow
        if ff_code:
            raise UserError(
                Diagnostic(
                    ff_code,
                    f"{step.name}: {getattr(exc, 'message', str(exc))}",
                    file=getattr(exc, "file", None),
                    line=getattr(exc, "line", None),
                    column=getattr(exc, "column", None),
                    hint=getattr(exc, "hint", None),
                )
            ) from None
        raise UserError.single(
            "FF690",
            f"step {step.name} failed: {type(exc).__name__}: {exc}",
            file=str(log),
            hint="the step's log holds the traceback",
        ) from None
    with _state_write("the step's log", log):
        log.write_text(buffer.getvalue())
    if code:
        raise UserError.single("FF690", f"step {step.name} exited with {code}", file=str(log))


_MODULES: dict[Path, Any] = {}


def load_script(path: Path) -> Any:
    """step_code scripts are files, not a package (SageMaker gets them one by one): import by path, once."""
    if path not in _MODULES:
        _MODULES[path] = load_file(path, f"fraudflow_step_{path.stem}")
    return _MODULES[path]


def _check_local_source(uri: str, name: str) -> None:
    if uri.startswith("s3://"):
        raise UserError.single(
            "FF691",
            f"source {name!r} is on S3 ({uri}); the local run reads local files",
            hint="download it, or point the source at a local path with --set/--env",
        )
    if not Path(uri).exists():
        raise UserError.single(
            "FF693",
            f"data file not found: {uri}",
            file=uri,
            hint="`fraudflow sample-data data` writes sample claims.csv and customers.csv",
        )


@contextlib.contextmanager
def _state_write(what: str, path: Path | None) -> Any:
    """A failed write of run state (full disk, read-only folder) is a located error, not a traceback."""
    try:
        yield
    except OSError as exc:
        raise UserError.single(
            "FF695",
            f"cannot write {what}: {exc.strerror or exc}",
            file=str(exc.filename or path),
            hint="free disk space or fix the folder's permissions, then run again (finished steps are cached)",
        ) from None


def _data_note(rep: dict[str, Any]) -> str:
    splits = rep.get("splits", {})
    sizes = "/".join(str(splits[k]["rows"]) for k in ("train", "validation", "test") if k in splits)
    note = f"{rep.get('joined_rows', '?')} rows → {sizes}"
    missing = {
        name: src["rows_with_missing_key"]
        for name, src in rep.get("sources", {}).items()
        if src.get("rows_with_missing_key")
    }
    if missing:  # such rows match nothing: worth seeing at once
        counts = ", ".join(f"{name} {n}" for name, n in missing.items())
        note += f"; rows with a missing join key: {counts}"
    return note


def _training_note(t: dict[str, Any]) -> str:
    return f"{t.get('rounds_trained', '?')} trees"


def _evaluation_note(ev: dict[str, Any]) -> str:
    auc = ev["classification_metrics"]["roc_auc"]
    ci = auc.get("confidence_interval") or {}
    ci_text = f" [{ci['lower']:.3f}, {ci['upper']:.3f}]" if "lower" in ci else ""
    return f"roc_auc {auc['value']:.4f}{ci_text}"


def _study_note(s: dict[str, Any]) -> str:
    best = s["best"]
    return (
        f"best of {len(s['trials'])} trials: #{best['number']} {s['objective']['metric']} {best['value']:.4f}"
    )


# The run's one-line notes, by the file (a label in the Plan's outputs) they summarise.
NOTES = {"report": _data_note, "training": _training_note, "evaluation": _evaluation_note}
NOTES["study"] = _study_note  # the tune step's study.json


def _hp_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


@functools.cache
def _library_versions() -> dict[str, str]:
    """The installed versions, from the packages' metadata: importing the libraries to ask them cost a `--only
    tune` run seconds of scikit-learn it never uses (the same strings as their `__version__`)."""
    from importlib.metadata import version

    return {
        "numpy": version("numpy"),
        "pandas": version("pandas"),
        "sklearn": version("scikit-learn"),
        "xgboost": version("xgboost"),
    }


__all__ = ["run_plan", "run_command", "RunResult", "build_plan"]
