"""`validate`, `resolve` and `schema`: the commands that only read pipelines.yaml (no pandas, no AWS)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fraudflow import exits
from fraudflow.errors import Diagnostic, Report, UserError


def validate(args: argparse.Namespace) -> int:
    """Check each file given (a pre-commit hook passes every changed one); the exit code is the worst."""
    files = [args.file, *getattr(args, "more_files", [])]
    if len(files) == 1:
        return _validate_one(files[0], args)
    codes: list[int] = []
    docs: list[Any] = []  # several files in JSON: one list of the per-file documents
    for file in files:
        try:
            codes.append(_validate_one(file, args, docs))
        except UserError as exc:  # a fatal error in one file: report it, check the others
            for d in exc.diagnostics:
                print(d.render(), file=sys.stderr)
            codes.append(exc.exit_code)
    if args.format == "json":
        print(json.dumps(docs, indent=2))
    return max(codes)


def _validate_one(file: str, args: argparse.Namespace, sink: list[dict] | None = None) -> int:
    from fraudflow.spec.load import load

    try:
        result = load(file, env=args.env, overrides=args.overrides)
    except UserError as exc:  # fatal (unparsable file, bad --env/--set): JSON readers still get JSON
        if args.format != "json":
            raise
        _print_json(file, [], exc.diagnostics, sink)
        return exc.exit_code
    report = Report(result.diagnostics)
    if args.format == "json":
        names = [s.name for s in result.specs] if not result.errors else []
        _print_json(file, names, result.diagnostics, sink)
    else:
        if report.diagnostics:
            print(report.render("text"), file=sys.stderr)
        if result.errors:
            n = len(result.errors)
            print(f"{file}: {n} error{'s' if n != 1 else ''}", file=sys.stderr)
        else:
            listed = ", ".join(s.name for s in result.specs)
            print(
                f"{file}: valid ({len(result.specs)} pipeline{'s' if len(result.specs) != 1 else ''}: {listed})"
            )
    return exits.ERROR if result.errors else exits.OK


def _print_json(
    file: str, pipelines: list[str], diagnostics: list[Diagnostic], sink: list[dict] | None = None
) -> None:
    errors = [d.to_dict() for d in diagnostics if d.is_error]
    doc = {
        "file": file,
        "valid": not errors,
        "pipelines": pipelines,
        "errors": errors,
        "warnings": [d.to_dict() for d in diagnostics if not d.is_error],
    }
    if sink is not None:
        sink.append(doc)
    else:
        print(json.dumps(doc, indent=2))


def resolve(args: argparse.Namespace) -> int:
    from fraudflow.spec.load import load_one

    spec = load_one(args.file, env=args.env, overrides=args.overrides, pipeline=args.pipeline)
    if args.format == "json":
        print(json.dumps({spec.name: spec.config}, indent=2))
    else:
        import yaml

        print(f"# {spec.name}, resolved from {args.file}" + (f" with --env {spec.env}" if spec.env else ""))
        print(yaml.safe_dump({spec.name: spec.config}, sort_keys=False, default_flow_style=False), end="")
    return 0


def schema(args: argparse.Namespace) -> int:
    from fraudflow.spec.schema import schema_path

    sys.stdout.write(schema_path().read_text())
    return 0
