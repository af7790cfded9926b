"""`fraudflow render | plan | apply`: the SageMaker backend's commands.

render imports neither boto3 nor sagemaker (it must start fast); plan and apply import boto3 when they run.
"""

from __future__ import annotations

import argparse
import sys

from fraudflow.errors import UsageError
from fraudflow.sagemaker.compile import Rendered

EXIT_NO_CHANGES, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


def _render(args: argparse.Namespace) -> Rendered:
    from fraudflow.plan import build_plan
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.spec.load import load_one

    spec = load_one(args.file, env=args.env, overrides=args.overrides, pipeline=args.pipeline)
    return compile_plan(build_plan(spec))


def render(args: argparse.Namespace) -> int:
    rendered = _render(args)
    text = rendered.text + "\n"
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
    return EXIT_NO_CHANGES if ch.empty else EXIT_CHANGES


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
            f"No changes: pipeline {rendered.name}, its Lambda and {len(rendered.uploads)} files are up to date."
        )
        _print_roles(rendered)
    else:
        print(f"Changes for pipeline {rendered.name} (region {rendered.region}):")
        for line in ch.lines:
            print("  " + line)
        _print_roles(rendered)
        if not _confirm(args.yes):
            print("Cancelled: nothing changed.")
            return EXIT_ERROR
        aws.converge(clients, rendered, ch)
        print(
            f"Applied: {len(ch.uploads)} upload(s)"
            + (f", Lambda {ch.lambda_action}" if ch.lambda_action else "")
            + (f", pipeline {ch.pipeline_action}" if ch.pipeline_action else "")
            + "."
        )
    if args.start:
        arn = aws.start(clients, rendered, params)
        if args.wait:
            aws.wait(clients, arn)
    return 0
