"""The `fraudflow` command: parse arguments, call one function, map errors to exit codes. Nothing else.

Heavy libraries (pandas, xgboost, boto3, sagemaker) are imported inside the commands that need them, so that
`fraudflow validate` starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from fraudflow import exits
from fraudflow.errors import UserError
from fraudflow.local.runs import add_parser as _runs_parser


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a bad command line, which `plan` uses for "changes": use exits.USAGE instead."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(exits.USAGE, f"{self.prog}: error: {message}\n")


def _spec_args(p: argparse.ArgumentParser, *, pipeline: bool = True) -> None:
    p.add_argument(
        "file", nargs="?", default="pipelines.yaml", help="pipelines file (default: pipelines.yaml)"
    )
    if pipeline:
        p.add_argument("--pipeline", "-p", help="pipeline to use when the file declares several")
    p.add_argument("--env", "-e", help="environment overlay from the file's `environments`")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a value, e.g. --set gate.threshold=0.8 (typed by the schema; repeatable)",
    )


def _workspace_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workspace", "-w", default=".", help="folder holding .fraudflow/ (default: current folder)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fraudflow",
        description="Declare a fraud-detection pipeline in pipelines.yaml; run it here or on SageMaker.",
    )
    parser.add_argument("--version", action="version", version=f"fraudflow {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("validate", help="check pipelines.yaml and report every error at once")
    _spec_args(p, pipeline=False)
    p.add_argument(
        "more_files", nargs="*", metavar="FILE", help="more files (as a pre-commit hook passes them)"
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=_cmd("fraudflow.commands", "validate"))

    p = sub.add_parser(
        "resolve", help="print the fully resolved pipeline (templates, --env and --set applied)"
    )
    _spec_args(p)
    p.add_argument("--format", choices=["yaml", "json"], default="yaml")
    p.set_defaults(func=_cmd("fraudflow.commands", "resolve"))

    p = sub.add_parser("schema", help="print the JSON Schema of pipelines.yaml")
    p.set_defaults(func=_cmd("fraudflow.commands", "schema"))

    p = sub.add_parser("run", help="run the whole pipeline on this machine")
    _spec_args(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--no-cache", action="store_true", help="run every step even if an identical one ran before"
    )
    g.add_argument(
        "--from",
        dest="start",
        metavar="STEP",
        help="reuse the cached results of the steps before STEP; run STEP and every later step again",
    )
    g.add_argument(
        "--only",
        metavar="STEP",
        help="run STEP again on the cached results of the steps it reads; run nothing else",
    )
    p.set_defaults(func=_cmd("fraudflow.local.runner", "run_command"))

    p = sub.add_parser(
        "logs",
        help="print a step's log from a run (default: the latest run)",
        usage="fraudflow logs [-h] [--workspace WORKSPACE] [RUN] STEP",
    )
    p.add_argument("run", metavar="RUN", help="a run id or `latest` (default); with one argument, the STEP")
    p.add_argument("step", nargs="?", metavar="STEP", help="the step whose log to print")
    _workspace_arg(p)
    p.set_defaults(func=_cmd("fraudflow.local.runner", "logs_command"))

    _runs_parser(sub, _workspace_arg, _cmd)  # fraudflow runs [show RUN | diff A B]

    p = sub.add_parser("sample-data", help="write claims-like sample data (claims.csv, customers.csv)")
    p.add_argument("dir", help="output folder")
    p.add_argument("--rows", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd("fraudflow.sampledata", "command"))

    __import__("fraudflow.contract").contract.add_parser(sub, _spec_args, _cmd)  # contract infer

    p = sub.add_parser("registry", help="the local model registry: list, show, approve, reject")
    rsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = rsub.add_parser("list", help="model package groups and their versions")
    r.add_argument("group", nargs="?")
    r.add_argument("--format", choices=["text", "json"], default="text")
    _workspace_arg(r)
    r = rsub.add_parser("show", help="one version with its metrics, reports and baselines")
    r.add_argument("group")
    r.add_argument("version")  # checked by registry_cli (FF809)
    r.add_argument("--format", choices=["text", "json"], default="text")
    _workspace_arg(r)
    for action in ("approve", "reject"):
        r = rsub.add_parser(action, help=f"{action} a version (as Model Registry's approval status)")
        r.add_argument("group")
        r.add_argument("version")  # checked by registry_cli (FF809)
        r.add_argument(
            "--reason", "--note", dest="reason", default="", help="recorded in the approval history"
        )
        _workspace_arg(r)
    p.set_defaults(func=_cmd("fraudflow.local.registry_cli", "command"))

    p = sub.add_parser("serve", help="serve a deployed model with SageMaker's inference protocol")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--endpoint", help="local endpoint name (default: the only one deployed)")
    g.add_argument(
        "--version", dest="model_version", metavar="GROUP:VERSION", help="serve this registered version"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument(
        "--capture-dir", metavar="DIR", help="capture requests and responses here (SageMaker's layout)"
    )
    p.add_argument(
        "--capture-sampling",
        type=float,
        default=100.0,
        metavar="PCT",
        help="percent of requests --capture-dir captures (default 100)",
    )
    _workspace_arg(p)
    p.set_defaults(func=_cmd("fraudflow.local.serve", "command"))

    p = sub.add_parser(
        "predict", help="score raw claims in batch with a registered version (CSV/Parquet out)"
    )
    _spec_args(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--version", dest="model_version", metavar="GROUP:VERSION", help="score with this version")
    g.add_argument(
        "--endpoint", help="score with the version this local endpoint serves (default: the pipeline's)"
    )
    p.add_argument("--source", dest="sources", action="append", default=[], metavar="NAME=PATH")
    p.add_argument("--keep", action="append", default=[], metavar="COL", help="copy this input column out")
    p.add_argument("--chunk-rows", type=int, default=100_000, help="rows scored at a time (memory bound)")
    p.add_argument("-o", "--output", required=True, help="output file: .csv or .parquet")
    p.set_defaults(func=_cmd("fraudflow.local.predict", "command"))

    p = sub.add_parser(
        "monitor", help="compare captured or scored claims with the training baseline (exit 4: drift)"
    )
    _spec_args(p)
    p.add_argument(
        "--current",
        required=True,
        metavar="PATH",
        help="a capture folder or a scored/raw file, local or s3://",
    )
    p.add_argument("--labels", metavar="PATH", help="ground truth, joined by monitor.labels.key")
    p.add_argument("--version", dest="model_version", metavar="GROUP:VERSION", help="judge this version")
    p.add_argument("--window-hours", type=float, help="only records captured in the last N hours")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument(
        "--retrain", action="store_true", help="on a violation, run the pipeline (monitor.retrain)"
    )
    p.set_defaults(func=_cmd("fraudflow.monitoring", "command"))

    p = sub.add_parser("render", help="render the SageMaker pipeline definition (offline, deterministic)")
    _spec_args(p)
    p.add_argument("-o", "--output", help="write the definition here instead of stdout")
    p.add_argument(
        "--monitoring", action="store_true", help="the monitoring pipeline (monitor.schedule) instead"
    )
    p.add_argument("--scoring", action="store_true", help="the scoring pipeline (deploy.batch) instead")
    p.set_defaults(func=_cmd("fraudflow.sagemaker.commands", "render"))

    p = sub.add_parser(
        "plan", help="show what apply would change on SageMaker (exit 0 none, 1 error, 2 changes)"
    )
    _spec_args(p)
    p.set_defaults(func=_cmd("fraudflow.sagemaker.commands", "plan"))

    p = sub.add_parser("iam", help="print least-privilege IAM policies for the pipeline's roles")
    _spec_args(p)
    p.add_argument(
        "--for", dest="role", choices=["execution", "deployer", "api", "operator"], help="one role only"
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument(
        "--document", choices=["trust", "policy"], help="print only this JSON document of the --for role"
    )
    p.set_defaults(func=_cmd("fraudflow.sagemaker.iam", "command"))

    p = sub.add_parser("apply", help="upload code, upsert the SageMaker pipeline, optionally start it")
    _spec_args(p)
    p.add_argument("--start", action="store_true", help="start an execution after the upsert")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="execution parameter")
    p.add_argument("--wait", action="store_true", help="follow the execution until it ends")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=_cmd("fraudflow.sagemaker.commands", "apply"))
    return parser


def _cmd(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """Import the command's module only when it runs: keeps start-up light."""

    def call(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), name)(args)

    return call


def _version() -> str:
    from fraudflow import __version__

    return __version__


class _PipeGuard:
    """A stream that survives its reader going away (`fraudflow validate | head -1`).

    On EPIPE the rest of the output goes to /dev/null (as Python's docs on SIGPIPE recommend) and the command
    carries on to its real exit status: a closed pipe must never turn an invalid result into success, and must
    not interrupt a command half-way (apply).
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.broken = False

    def _divert(self) -> None:
        self.broken = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # not a real file (pytest's capture): drop the output
            self._stream = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._divert()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._divert()
            with contextlib.suppress(OSError):
                self._stream.flush()  # what was buffered now goes to /dev/null

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _PipeGuard(sys.stdout), _PipeGuard(sys.stderr)
    try:
        return _main(argv)
    finally:  # also when argparse exits (--help, --version, a usage error) into a closed pipe
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = saved


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        for d in exc.diagnostics:
            print(d.render(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return exits.INTERRUPTED
    except OSError as exc:  # a file the user named cannot be read or written
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"{where}error: {exc.strerror or exc}", file=sys.stderr)
        return exits.ERROR
    except Exception as exc:  # a bug in fraudflow: one line here, the traceback in a file
        log = _crash_log(args, exc)
        message = " ".join(str(exc).split())[:300] or "(no message)"
        print(
            f"fraudflow: internal error ({type(exc).__name__}): {message} — details in {log}", file=sys.stderr
        )
        return exits.INTERNAL


def _crash_log(args: argparse.Namespace, exc: BaseException) -> Path:
    """Write the traceback to .fraudflow/logs/crash-<time>.log beside the pipeline file (or in --workspace);
    to the temp folder when neither is writable. Returns where it went."""
    text = f"fraudflow {_version()} internal error\nargv: {sys.argv!r}\npython: {sys.version}\n\n" + "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__)
    )
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
    for folder in (*_state_dirs(args), Path(tempfile.gettempdir()) / "fraudflow"):
        path = folder / "logs" / f"crash-{stamp}.log"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError:
            continue
        return path
    return Path(os.devnull)  # nowhere writable: the one line is all there is


def _state_dirs(args: argparse.Namespace) -> list[Path]:
    """The .fraudflow/ folder a command uses: beside its pipelines file, or the registry's --workspace."""
    file, workspace = getattr(args, "file", None), getattr(args, "workspace", None)
    if isinstance(file, str) and Path(file).is_file():
        return [Path(file).resolve().parent / ".fraudflow"]
    if isinstance(workspace, str) and Path(workspace).is_dir():
        return [Path(workspace).resolve() / ".fraudflow"]
    return []


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
