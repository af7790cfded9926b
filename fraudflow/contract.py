"""`fraudflow contract infer`: a starting data contract (`data.expect`) from the current data, as YAML to paste.

The data is read and joined by step_code/preprocess.py itself (the same reader, join and label mapping a run
uses), so what the contract describes is exactly what the contract check will see. The bands it writes are
deliberately loose around what it observes (row count ÷2..×2, positive share ÷2..×2, null shares with margin,
the observed value ranges and category lists): a starting point to tighten, never a fit to the last byte.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from fraudflow.errors import Diagnostic, UserError

MAX_CATEGORIES = 50  # a text column with more distinct values is free text or an id: no category list
E_REMOTE, E_MISSING, E_DATA = "FF940", "FF941", "FF942"


def add_parser(sub: Any, spec_args: Any, cmd: Any) -> None:
    """`fraudflow contract infer [FILE] [--pipeline P] [--env E] [--set K=V]` (cli.py calls this)."""
    p = sub.add_parser("contract", help="the data contract (data.expect): infer a starting one from the data")
    csub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = csub.add_parser("infer", help="print a data.expect inferred from the current data, as YAML to paste")
    spec_args(c)
    c.set_defaults(func=cmd("fraudflow.contract", "infer_command"))


def infer_command(args: argparse.Namespace) -> int:
    from fraudflow.spec.load import load_one

    spec = load_one(args.file, env=args.env, overrides=args.overrides, pipeline=args.pipeline)
    data = spec.config["data"]
    joined = _read_joined(dict(data), Path(str(spec.file)).parent)
    keys = data.get("join", {}).get("on")
    expect = infer(joined, data["label"], [keys] if isinstance(keys, str) else list(keys or []))
    sys.stdout.write(render(expect, spec.name, len(joined)))
    return 0


def _read_joined(data: dict[str, Any], base: Path) -> Any:
    """The joined frame preprocess would check: sources linked under their names, as a run stages them."""
    from fraudflow.local.runner import load_script
    from fraudflow.plan import STEP_CODE

    with tempfile.TemporaryDirectory(prefix="fraudflow-infer-") as tmp:
        for name, uri in data["sources"].items():
            if uri.startswith("s3://"):
                raise UserError.single(
                    E_REMOTE,
                    f"source {name!r} is on S3 ({uri}); contract infer reads local files",
                    hint="download a sample of it and point the source at it with --set/--env",
                )
            path = Path(uri) if Path(uri).is_absolute() else base / uri
            if not path.exists():
                raise UserError.single(
                    E_MISSING,
                    f"data file not found: {uri}",
                    file=str(path),
                    hint="`fraudflow sample-data data` writes sample claims.csv and customers.csv",
                )
            os.symlink(path.resolve(), Path(tmp) / name)
        config = {"data": {k: v for k, v in data.items() if k != "expect"}}
        preprocess = load_script(STEP_CODE / "preprocess.py")
        try:
            joined, _ = preprocess.load_joined(config, tmp)
        except Exception as exc:
            code = getattr(exc, "ff_code", None)
            if not code:
                raise
            raise UserError(
                Diagnostic(
                    E_DATA,
                    f"the data cannot be read as a run reads it: [{code}] {getattr(exc, 'message', exc)}",
                    file=getattr(exc, "file", None),
                    line=getattr(exc, "line", None),
                    hint=getattr(exc, "hint", None) or "`fraudflow run` reports the same error",
                )
            ) from None
    return joined


def infer(df: Any, label: str, keys: list[str]) -> dict[str, Any]:
    """The contract `df` (preprocess's joined frame, label 0/1) satisfies, with room to spare."""
    n = len(df)
    share = float(df[label].mean())
    expect: dict[str, Any] = {
        "level": "fail",
        "rows": {"min": n // 2, "max": n * 2},
        "positive_share": {"min": _round_down(share / 2), "max": min(1.0, _round_up(share * 2))},
        "columns": {},
    }
    for column in df.columns:
        if str(column).startswith("__ff_") or column == label:
            continue
        expect["columns"][str(column)] = _column(df[column], str(column) in keys)
    return expect


def _column(series: Any, key: bool) -> dict[str, Any]:
    import pandas as pd

    from fraudflow.stepcode import kit

    rule: dict[str, Any] = {}
    values = series.dropna()
    nulls = float(series.isna().mean())
    if pd.api.types.is_bool_dtype(series):
        rule["type"] = "boolean"
    elif pd.api.types.is_integer_dtype(series) or (
        pd.api.types.is_float_dtype(series) and len(values) and bool((values == values.round()).all())
    ):
        rule["type"] = "integer"
    elif pd.api.types.is_numeric_dtype(series):
        rule["type"] = "number"
    else:
        rule["type"] = "string"
    if rule["type"] in ("integer", "number") and len(values):
        low, high = values.min(), values.max()
        rule["min"], rule["max"] = _plain(low), _plain(high)
    distinct = values.unique()
    if rule["type"] in ("string", "boolean") and len(distinct) <= MAX_CATEGORIES:
        rule["categories"] = sorted((_plain(v) for v in distinct), key=kit().value_key)
    rule["max_null_share"] = 0.0 if nulls == 0 else min(1.0, _round_up(nulls * 2 + 0.01))
    candidate = key or (rule["type"] in ("integer", "string") and len(distinct) == len(series) > 1)
    if candidate and not series.duplicated().any():
        rule["unique"] = True
    return rule


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _round_up(x: float) -> float:
    return math.ceil(x * 10_000) / 10_000


def _round_down(x: float) -> float:
    return math.floor(x * 10_000) / 10_000


def render(expect: dict[str, Any], pipeline: str, rows: int) -> str:
    """YAML to paste under the pipeline's `data:` (indented as it sits there)."""
    import yaml

    body = yaml.safe_dump({"expect": expect}, sort_keys=False, default_flow_style=None, width=110)
    head = (
        f"# data contract inferred from {rows} joined rows of pipeline {pipeline}: paste under its `data:`,\n"
        "# then tighten or loosen it (docs/pipelines-yaml.md, data.expect)\n"
    )
    return head + "".join(f"      {line}\n" for line in body.splitlines())
