"""The data contract (`data.expect`): what the joined data must look like before a model is trained on it.

Checked by preprocess after the join and before the split, in both backends (shipped beside preprocess.py as
stepkit.py is). Hand-written in numpy/pandas rather than pandera: SageMaker's scikit-learn 1.2-1 processing
image has pandas 1.1.3 and no pandera (current pandera needs pandas >= 2.1), and a processing job cannot
pip-install without network access. Every rule is one vectorised pass over one column, so the check costs a small
fraction of the step (bench/bench_contract.py).

Each violated rule is located: the file and line (Parquet: row) of the first offending row, its column and
value; each rule has its own error code and a `level`, `fail` (the step stops before training) or `warn`
(reported in preprocess.json and on stderr). Standard library, numpy and pandas only (pandas 1.1 APIs).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import stepkit
from stepkit import StepError

# Error codes (stable; docs/error-codes.md, FF670-FF679).
E_TYPE = "FF672"
E_CATEGORY = "FF673"
E_RANGE = "FF674"
E_NULLS = "FF675"
E_UNIQUE = "FF676"
E_ROWS = "FF677"
E_POSITIVE_SHARE = "FF678"
E_ABSENT = "FF679"

TYPES = ("integer", "number", "string", "boolean")
LEVELS = ("fail", "warn")
RULES = ("present", "type", "categories", "range", "max_null_share", "unique", "rows", "positive_share")
BOOLEAN_KEYS = frozenset({"True", "False", "0", "1"})

Where = Callable[[str, int], dict]  # (column, row) -> {"file": ..., "line": ...}


class Violation:
    """One broken rule, where it was first broken."""

    def __init__(
        self, code: str, rule: str, level: str, message: str, where: dict, column: str | None, value: Any
    ) -> None:
        self.code, self.rule, self.level, self.message = code, rule, level, message
        self.file, self.line = where.get("file"), where.get("line")
        self.column, self.value = column, value

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "rule": self.rule,
            "level": self.level,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "value": _json_value(self.value),
        }

    def error(self, others: int) -> StepError:
        hint = (
            "fix the data, or loosen data.expect (or set this rule's level: warn) if the change is expected"
        )
        if others:
            hint += f"; {others} more contract violation(s) follow once this one is fixed"
        return StepError(
            self.code, self.message, file=self.file, line=self.line, column=self.column, hint=hint
        )

    def render(self) -> str:
        where = (self.file + (f":{self.line}" if self.line is not None else "") + ": ") if self.file else ""
        return f"warning[{self.code}]: {where}{self.message}"


def _json_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def _shown(value: Any) -> str:
    """A value as the message shows it: missing as `missing`, strings quoted."""
    value = _json_value(value)
    return "missing" if value is None else repr(value)


def _level(spec: dict, rule: str, default: str) -> str:
    """A rule's level: `level: warn` for all of an entry's rules, or `level: {categories: warn}` per rule."""
    level = spec.get("level", default)
    return str(level.get(rule, default) if isinstance(level, dict) else level)


def config_problem(expect: object) -> str | None:
    """What is wrong with a data.expect the schema did not check (a hand-written config.json), or None; the
    caller reports it with its own config code."""
    if not isinstance(expect, dict):
        return "data.expect must be a mapping"
    entries = [("data.expect", expect)] + [
        (f"data.expect.{k}", expect[k]) for k in ("rows", "positive_share") if k in expect
    ]
    columns = expect.get("columns") or {}
    if not isinstance(columns, dict):
        return "data.expect.columns must be a mapping"
    entries += [(f"data.expect.columns.{c}", spec or {}) for c, spec in columns.items()]
    for where, spec in entries:
        if not isinstance(spec, dict):
            return f"{where} must be a mapping"
        level = spec.get("level", "fail")
        levels = level.values() if isinstance(level, dict) else [level]
        if any(v not in LEVELS for v in levels):
            return f"{where}.level must be fail or warn"
        if (
            spec.get("type") is not None
            and where.startswith("data.expect.columns.")
            and spec["type"] not in TYPES
        ):
            return f"{where}.type must be one of {', '.join(TYPES)}"
    return None


def check(df: pd.DataFrame, expect: dict, label: str, where: Where) -> list[Violation]:
    """Every violation of `expect` in the joined frame `df` (label already 0/1), in the order the rules are
    declared: table rules first, then each column's."""
    default = str(expect.get("level", "fail"))
    out: list[Violation] = []
    rows = expect.get("rows")
    if isinstance(rows, dict):
        out += _rows(df, rows, _level(rows, "rows", default), where, label)
    share = expect.get("positive_share")
    if isinstance(share, dict):
        out += _positive_share(df, share, _level(share, "positive_share", default), label, where)
    for column, spec in (expect.get("columns") or {}).items():
        spec = spec or {}
        if column not in df.columns:
            out.append(
                Violation(
                    E_ABSENT,
                    "present",
                    _level(spec, "present", default),
                    f"data.expect names column '{column}', which is not in the joined data",
                    where(label, 0) | {"line": 1},
                    column,
                    None,
                )
            )
            continue
        out += _column(df[column], column, spec, functools.partial(_level, spec, default=default), where)
    return out


def enforce(df: pd.DataFrame, expect: dict, label: str, where: Where) -> dict:
    """Check the contract: raise the first `fail` violation as a StepError, print the warnings; the summary for
    preprocess.json."""
    found = check(df, expect, label, where)
    fails = [v for v in found if v.level == "fail"]
    if fails:
        raise fails[0].error(len(fails) - 1)
    for v in found:
        print(v.render(), file=sys.stderr)
    return {"violations": [v.as_dict() for v in found]}


# ---------------------------------------------------------------------------------------------- table rules


def _between(value: float, spec: dict) -> bool:
    low, high = spec.get("min"), spec.get("max")
    return (low is None or value >= low) and (high is None or value <= high)


def _band(spec: dict) -> str:
    return f"[{spec.get('min', '-inf')}, {spec.get('max', 'inf')}]"


def _rows(df: pd.DataFrame, spec: dict, level: str, where: Where, label: str) -> list[Violation]:
    n = len(df)
    if _between(n, spec):
        return []
    return [
        Violation(
            E_ROWS,
            "rows",
            level,
            f"the joined data has {n} rows, outside data.expect.rows {_band(spec)}",
            where(label, 0) | {"line": None},
            None,
            n,
        )
    ]


def _positive_share(df: pd.DataFrame, spec: dict, level: str, label: str, where: Where) -> list[Violation]:
    share = float(df[label].to_numpy().mean()) if len(df) else 0.0
    if _between(share, spec):
        return []
    return [
        Violation(
            E_POSITIVE_SHARE,
            "positive_share",
            level,
            f"{share:.2%} of the rows have a positive label '{label}' ({int(df[label].sum())} of {len(df)}), "
            f"outside data.expect.positive_share {_band(spec)}",
            where(label, 0) | {"line": None},
            label,
            share,
        )
    ]


# ---------------------------------------------------------------------------------------------- column rules


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else None


def _column(
    series: pd.Series, column: str, spec: dict, level: Callable[[str], str], where: Where
) -> list[Violation]:
    out: list[Violation] = []
    missing = series.isna().to_numpy()

    def add(code: str, rule: str, row: int | None, message: str) -> None:
        value = None if row is None else series.iloc[row]
        out.append(Violation(code, rule, level(rule), message, where(column, row or 0), column, value))

    max_nulls = spec.get("max_null_share")
    if max_nulls is not None and len(series):
        share = float(missing.mean())
        if share > float(max_nulls):
            add(
                E_NULLS,
                "max_null_share",
                _first(missing),
                f"column '{column}' is {share:.2%} missing ({int(missing.sum())} of {len(series)} rows), more than "
                f"data.expect's max_null_share {float(max_nulls):.2%}; the first missing value is here",
            )
    kind = spec.get("type")
    if kind is not None:
        row, why = _type_break(series, missing, kind)
        if why:
            add(E_TYPE, "type", row, f"column '{column}' should hold {kind} values, {why}")
    if spec.get("categories") is not None:
        allowed = {stepkit.value_key(v) for v in spec["categories"]}
        present = pd.unique(series[~missing])
        unseen = [v for v in present if stepkit.value_key(v) not in allowed]
        if unseen:
            row = _first(series.isin(unseen).to_numpy() & ~missing)
            add(
                E_CATEGORY,
                "categories",
                row,
                f"column '{column}' has {len(unseen)} value(s) outside data.expect's categories, first "
                f"{_shown(series.iloc[row or 0])}",
            )
    if spec.get("min") is not None or spec.get("max") is not None:
        values = _numbers(series)
        outside = np.zeros(len(series), dtype=bool)
        if spec.get("min") is not None:
            outside |= values < float(spec["min"])
        if spec.get("max") is not None:
            outside |= values > float(spec["max"])
        if outside.any():
            row = _first(outside)
            add(
                E_RANGE,
                "range",
                row,
                f"column '{column}' has {int(outside.sum())} value(s) outside data.expect's range {_band(spec)}, "
                f"first {_shown(series.iloc[row or 0])}",
            )
    if spec.get("unique"):
        repeated = series.duplicated(keep="first").to_numpy() & ~missing
        if repeated.any():
            row = _first(repeated)
            add(
                E_UNIQUE,
                "unique",
                row,
                f"column '{column}' should be unique, but {_shown(series.iloc[row or 0])} repeats "
                f"({int(repeated.sum())} repeated row(s)); the first repeat is here",
            )
    return out


def _numbers(series: pd.Series) -> np.ndarray:
    """The column as float64, non-numbers as NaN (NaN compares False: the type rule reports those)."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype="float64", na_value=np.nan)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")


def _type_break(series: pd.Series, missing: np.ndarray, kind: str) -> tuple[int | None, str | None]:
    """The first row breaking the type and why, or (None, None)."""
    if kind == "string":
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            row = _first(~missing)
            return row, f"but it holds {series.dtype} values (first {_shown(series.iloc[row or 0])})"
        return None, None
    if kind == "boolean":
        if pd.api.types.is_bool_dtype(series):
            return None, None
        present = pd.unique(series[~missing])
        bad = [v for v in present if stepkit.value_key(v) not in BOOLEAN_KEYS]
        if bad:
            row = _first(series.isin(bad).to_numpy() & ~missing)
            return row, f"found {_shown(series.iloc[row or 0])}"
        return None, None
    if pd.api.types.is_bool_dtype(series):
        return _first(~missing), "but it holds booleans"
    values = _numbers(series)
    bad = np.isnan(values) & ~missing
    if bad.any():
        row = _first(bad)
        return row, f"found {_shown(series.iloc[row or 0])}"
    if kind == "integer":
        finite = np.isfinite(values)
        fractional = finite & (values != np.round(values))
        if fractional.any():
            row = _first(fractional)
            return row, f"found {_shown(series.iloc[row or 0])}"
    return None, None
