"""`fraudflow render | plan | apply`: the SageMaker backend's commands.

render imports neither boto3 nor sagemaker (it must start fast); plan and apply import boto3 when they run.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fraudflow import exits
from fraudflow.errors import UsageError
from fraudflow.sagemaker.compile import Rendered


def _render(args: argparse.Namespace) -> Rendered:
    from fraudflow.plan import build_plan
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.spec.load import load_one

    spec = load_one(args.file, env=args.env, overrides=args.overrides, pipeline=args.pipeline)
    if getattr(args, "param", None):
        check_params(spec, args.param)
    rendered = compile_plan(build_plan(spec))
    _strict_json(rendered.text)
    return rendered


def _strict_json(text: str) -> None:
    """The last guard: a definition holding NaN or Infinity is not JSON, and SageMaker would refuse it."""

    def refuse(constant: str) -> None:
        raise ValueError(f"the pipeline definition would hold {constant}, which is not JSON")

    json.loads(text, parse_constant=refuse)


def check_params(spec: Any, items: list[str]) -> None:
    """Each `--param NAME=VALUE` checked as `--set` checks its value: typed by, and valid against, the schema of
    the setting the parameter maps to (`parameters: {AucThreshold: gate.threshold}`): its type, range, enum and
    pattern, so that an execution cannot get a value the file could not hold (`AucThreshold=-inf`). Names and
    syntax are checked with the definition's types by `apply.typed_params`."""
    from fraudflow.errors import Diagnostic, UserError
    from fraudflow.spec import schema as sch
    from fraudflow.spec.load import UnreadableValue, _coerce
    from fraudflow.spec.yamlload import Mark, Positions

    declared = spec.config.get("parameters") or {}
    problems: list[Diagnostic] = []
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or name not in declared:
            continue  # typed_params explains these
        path = tuple(declared[name].split("."))
        node = sch.subschema(path)
        if node is None:
            continue
        shown = item if len(item) <= 120 else f"{item[:120]}…"
        where = Positions("<command line>")
        where.values[path] = Mark(None, None, file=f"<--param {shown}>")
        try:
            errors = sch.check_value(_coerce(node, raw), node)
        except UnreadableValue as exc:
            problems.append(Diagnostic("FF715", f"{name}: {exc}", file=f"<--param {shown}>", hint=exc.hint))
            continue
        for error in errors[:1]:
            for d in sch.explain(error, where, path):
                problems.append(
                    Diagnostic(
                        "FF715",
                        f"{name} sets {declared[name]}: {d.message}",
                        file=d.file,
                        path=d.path,
                        hint=d.hint or "the value must be one the file itself could hold there",
                    )
                )
    if problems:
        raise UserError(problems)


def render(args: argparse.Namespace) -> int:
    rendered = _render(args)
    text = rendered.text + "\n"
    if getattr(args, "monitoring", False):  # the monitoring pipeline (monitor.schedule) instead
        from fraudflow.sagemaker.monitoring import render_definition

        text = render_definition(args, rendered) + "\n"
    if getattr(args, "scoring", False):  # the scoring pipeline (deploy.batch) instead
        from fraudflow.sagemaker import scoring

        text = scoring.render_definition(args, rendered) + "\n"
    if args.output and args.output != "-":
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
        print(
            f"wrote {args.output}: pipeline {rendered.name}, {len(rendered.uploads)} files for s3://{rendered.bucket}",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(text)
    return 0


def plan(args: argparse.Namespace) -> int:
    from fraudflow.sagemaker import apply as aws

    rendered = _render(args)
    ch = aws.changes(aws.Clients(rendered.region), rendered)
    if ch.empty:
        print(f"No changes: pipeline {rendered.name} is up to date ({len(rendered.uploads)} files in S3).")
    else:
        print(f"Changes for pipeline {rendered.name} (region {rendered.region}):")
        for line in ch.lines:
            print("  " + line)
    _print_roles(rendered)
    return exits.OK if ch.empty else exits.CHANGES


def _print_roles(rendered: Rendered) -> None:
    from fraudflow.sagemaker.iam import describe_roles

    print("\n".join(describe_roles(rendered)))


def _confirm(yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError.single(
            "FF714",
            "apply needs confirmation, and there is no terminal to ask on",
            file="<command line>",
            hint="review `fraudflow plan`, then rerun with --yes",
        )
    answer = input("Apply these changes? [y/N] ").strip().lower()
    return answer in ("y", "yes")


def apply(args: argparse.Namespace) -> int:
    from fraudflow.sagemaker import apply as aws

    rendered = _render(args)
    params = aws.typed_params(rendered, list(args.param or []))
    if (params or args.wait) and not args.start:
        raise UsageError.single(
            "FF715", "--param and --wait apply to an execution: add --start", file="<command line>"
        )
    clients = aws.Clients(rendered.region)
    ch = aws.changes(clients, rendered)
    if ch.empty:
        print(
            f"No changes: pipeline {rendered.name}, its Lambda and {len(rendered.uploads)} files are up to date"
            + (f", as are {len(rendered.resources)} other resource kind(s)." if rendered.resources else ".")
        )
        _print_roles(rendered)
    else:
        print(f"Changes for pipeline {rendered.name} (region {rendered.region}):")
        for line in ch.lines:
            print("  " + line)
        _print_roles(rendered)
        if not _confirm(args.yes):
            print("Cancelled: nothing changed.")
            return exits.ERROR
        aws.converge(clients, rendered, ch)
        print(
            f"Applied: {len(ch.uploads)} upload(s)"
            + (f", Lambda {ch.lambda_action}" if ch.lambda_action else "")
            + (f", pipeline {ch.pipeline_action}" if ch.pipeline_action else "")
            + (f", {len(ch.actions)} other resource change(s)" if ch.actions else "")
            + "."
        )
    if args.start:
        arn = aws.start(clients, rendered, params)
        if args.wait:
            aws.wait(clients, arn)
    return 0
