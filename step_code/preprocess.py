"""Preprocess step: join the raw sources, split, encode, and write the CSVs SageMaker's XGBoost reads.

Runs unchanged in SageMaker's scikit-learn 1.2-1 processing image and in `fraudflow run`, so it imports only the
standard library, numpy, pandas and scikit-learn, and avoids APIs newer than pandas 1.5 / scikit-learn 1.2.
See docs/step-contract.md for inputs, outputs and the error codes.

Encoders are fitted on the training split only (no leakage) and recorded in feature_schema.json, so
`transform(df, schema)` rebuilds the model row of any raw record: the serving endpoint calls the same function.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import io
import json
import math
import os
import re
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import stepkit
from stepkit import StepError

SCHEMA_VERSION = 1
# pandas >= 2 reads the string "None" as missing, pandas 1.x does not; the data writes "None" for missing, so
# spell the pandas 2 list out to get the same result on the container's pandas 1.x.
NA_VALUES = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]  # fmt: skip
NUMERIC_FILLS = ("none", "zero", "mean", "median")
_FILE, _LINE = "__ff_file", "__ff_line"  # where each base row came from, for located errors

# Error codes (stable; listed in docs/step-contract.md).
E_CONFIG = "FF600"
E_MISSING_COLUMN = "FF601"
E_NO_DATA = "FF602"
E_MALFORMED = "FF603"
E_LABEL = "FF604"
E_SPLIT = "FF605"
E_DUPLICATE_KEY = "FF606"
E_UNDECLARED_TEXT = "FF607"
E_BAD_VALUE = "FF608"
E_DUPLICATE_COLUMN = "FF609"
E_NOT_REGULAR = "FF610"
E_HEADER_TOO_LONG = "FF611"
E_LABEL_VALUES = "FF670"  # a label value that is neither data.positive nor data.negative
E_FORMAT = "FF671"  # a source that is not the CSV or Parquet it is declared as, or no Parquet engine

# A CSV header is one line of column names: a first line longer than this is not a header (or not a CSV file), and
# is refused before pandas tries to hold it in memory. fraudflow validate applies the same bound.
MAX_HEADER_CHARS = stepkit.MAX_HEADER_CHARS

# pandas < 3 parses floats with a fast parser that can be off in the last digit (so pandas 1.x in the containers
# and pandas 3 here would disagree); pandas 3 is exact by default and deprecates the option.
EXACT_FLOATS = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


# ---------------------------------------------------------------------------------------------- config


def _get(cfg: dict, dotted: str, default: Any = ..., kind: type | tuple | None = None) -> Any:
    """Read `a.b.c` from the config; a missing required key or a wrong type is a located config error."""
    node: object = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node or node[part] is None:
            if default is not ...:
                return default
            raise StepError(E_CONFIG, f"config key '{dotted}' is missing", file="config.json")
        node = node[part]
    if kind is not None and not isinstance(node, kind):
        raise StepError(
            E_CONFIG, f"config key '{dotted}' has the wrong type ({type(node).__name__})", file="config.json"
        )
    return node


def _required(cfg: dict, dotted: str) -> object:
    """A key that must be present but may be null (null is a setting, not an absent key)."""
    *parents, last = dotted.split(".")
    node = _get(cfg, ".".join(parents), kind=dict) if parents else cfg
    if not isinstance(node, dict) or last not in node:
        raise StepError(E_CONFIG, f"config key '{dotted}' is missing", file="config.json")
    return node[last]


def _split_ratios(cfg: dict) -> tuple[float, float, float]:
    train, validation, test = (
        float(_get(cfg, f"split.{k}", kind=(int, float))) for k in ("train", "validation", "test")
    )
    ratios = (train, validation, test)
    if min(ratios) <= 0 or abs(sum(ratios) - 1.0) > 1e-6:
        raise StepError(
            E_CONFIG,
            f"split ratios train/validation/test must be positive and sum to 1, got {ratios}",
            file="config.json",
        )
    return ratios


# ---------------------------------------------------------------------------------------------- reading


def _kind(path: Path) -> str | None:
    """None for a regular file or a folder (links followed), else what it is; FileNotFoundError if absent."""
    mode = os.stat(path).st_mode
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    for test, name in (
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISCHR, "device"),
        (stat.S_ISBLK, "device"),
    ):
        if test(mode):
            return name
    return "socket" if stat.S_ISSOCK(mode) else "special file"


def _refuse_special(path: Path, name: str) -> None:
    """Only regular files are read: a FIFO would block the step and /dev/zero would fill the memory."""
    try:
        kind = _kind(path)
    except FileNotFoundError:
        return
    if kind:
        raise StepError(
            E_NOT_REGULAR,
            f"source '{name}': {path} is a {kind}, not a regular file",
            file=str(path),
            hint="point the source at a CSV file or a folder of CSV files",
        )


def _source_files(input_dir: Path, name: str, configured: str) -> list[Path]:
    path = input_dir / name
    _refuse_special(path, name)
    if path.is_file():
        return [path]
    if path.is_dir():
        entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
        for entry in entries:
            _refuse_special(entry, name)
        files = [p for p in entries if p.is_file()]
        if not files:
            raise StepError(E_NO_DATA, f"source '{name}' has no files in {path}", file=str(path))
        return files
    if Path(str(path) + ".csv").is_file():
        return [Path(str(path) + ".csv")]
    raise StepError(
        E_NO_DATA,
        f"source '{name}' ({configured}) was not found at {path}",
        file=str(path),
        hint="each name under data.sources must be a CSV file or a folder of CSV files",
    )


def _display(files: list[Path], configured: str, name: str) -> list[str]:
    """Name files as the user declared them when the step reads one copy of (or a link to) a declared file."""
    if len(files) == 1 and configured and (files[0].name in (name, Path(configured).name)):
        return [configured]
    return [str(f) for f in files]


def read_header(path: Path) -> tuple[list[str], int]:
    """The header row of a CSV file (optionally gzip) as pandas reads it and the line it starts on (stepkit's
    reader, which `fraudflow validate` shares). Raises StepError when it does not end within MAX_HEADER_CHARS."""
    try:
        return stepkit.read_header(path)
    except stepkit.HeaderTooLong:
        raise StepError(
            E_HEADER_TOO_LONG,
            f"the header line does not end within the first {MAX_HEADER_CHARS // 2**20} MiB",
            file=str(path),
            line=1,
            hint="is this a CSV file? its first line must be the column names",
        ) from None


duplicate_column = stepkit.duplicate_column


def _check_header(path: Path, shown: str) -> None:
    """Refuse what pandas would silently change: a repeated column name becomes `name.1`, a new feature."""
    try:
        row, line = read_header(path)
    except StepError as exc:
        exc.file = shown
        raise
    except csv.Error as exc:
        raise StepError(E_MALFORMED, f"malformed CSV header: {exc}", file=shown, line=1) from None
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:  # EOFError: a truncated gzip file
        raise StepError(E_MALFORMED, f"not a UTF-8 text CSV file ({_reason(exc)})", file=shown) from None
    _refuse_duplicate(row, line, shown)


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "reason", None) or exc or type(exc).__name__)


def _refuse_duplicate(row: list[str], line: int, shown: str) -> None:
    dup = duplicate_column(row)
    if dup is not None:
        first, second = dup
        raise StepError(
            E_DUPLICATE_COLUMN,
            f"column '{row[second]}' appears twice in the header (columns {first + 1} and {second + 1})",
            file=shown,
            line=line,
            column=second + 1,
            hint=f"rename or remove one of them (read as it is, the second would silently become "
            f"'{row[second]}.1' and be used as a feature)",
        )


def _read_csv(path: Path, shown: str) -> pd.DataFrame:
    _check_header(path, shown)
    try:
        gz = "gzip" if stepkit.is_gzip(path) else None  # by content: local runs link sources under bare names
        df = pd.read_csv(path, na_values=NA_VALUES, keep_default_na=False, compression=gz, **EXACT_FLOATS)
    except pd.errors.EmptyDataError:
        raise StepError(E_NO_DATA, "the file is empty (no header, no rows)", file=shown) from None
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise StepError(
            E_MALFORMED,
            f"malformed CSV: {str(exc).strip().splitlines()[-1]}",
            file=shown,
            line=int(m.group(1)) if m else None,
            hint="every row must have as many fields as the header; quote fields that contain commas",
        ) from None
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise StepError(E_MALFORMED, f"not a UTF-8 text CSV file ({_reason(exc)})", file=shown) from None
    if df.empty:
        raise StepError(E_NO_DATA, "the file has a header but no rows", file=shown, line=1)
    unnamed = [c for c in df.columns if str(c).startswith("Unnamed: ")]
    if unnamed:
        raise StepError(E_MALFORMED, "the header has an empty column name", file=shown, line=1)
    return df


def _read_parquet(path: Path, shown: str) -> pd.DataFrame:
    """A Parquet file as pandas reads it (pandas' pyarrow engine); its columns are checked as a CSV header is,
    from the footer's schema before any row is read. A stored named index comes back as a column."""
    try:
        columns = stepkit.parquet_columns(path)
    except ValueError as exc:
        raise StepError(
            E_FORMAT,
            f"not a Parquet file ({exc})",
            file=shown,
            hint="name CSV files *.csv (or set data.format for this source)",
        ) from None
    _refuse_duplicate(columns, 1, shown)
    try:
        df = pd.read_parquet(path, engine="pyarrow")
    except ImportError:
        raise StepError(
            E_FORMAT,
            "reading Parquet needs pyarrow, which this Python does not have",
            file=shown,
            hint="SageMaker's sklearn 1.2-1 and 1.4-2 processing images ship it; elsewhere pip install pyarrow, "
            "or convert the source to CSV",
        ) from None
    if any(name is not None for name in df.index.names):
        df = df.reset_index()
    if df.empty:
        raise StepError(E_NO_DATA, "the file has a schema but no rows", file=shown)
    if any(str(c) == "" for c in df.columns):
        raise StepError(E_MALFORMED, "the schema has an empty column name", file=shown)
    return df


def source_format(config: dict, name: str) -> str | None:
    """The declared format of source `name`: data.format, one word for all or a map by source name."""
    fmt = _get(config, "data.format", None)
    if isinstance(fmt, dict):
        fmt = fmt.get(name)
    if fmt is not None and fmt not in stepkit.FORMATS:
        raise StepError(
            E_CONFIG, f"data.format of source '{name}' must be csv or parquet", file="config.json"
        )
    return fmt


def read_source(
    input_dir: Path, name: str, configured: str, declared: str | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Read one source (a CSV, gzip CSV or Parquet file, or a folder of them with the same columns), tagging each
    row with file and line (for Parquet: the row number, 1-based)."""
    files = _source_files(input_dir, name, configured)
    shown = _display(files, configured, name)
    frames: list[pd.DataFrame] = []
    for i, (path, label) in enumerate(zip(files, shown)):  # noqa: B905 - no strict= on the containers' Python 3.8/3.9
        parquet = stepkit.file_format(path, declared, label) == "parquet"
        df = _read_parquet(path, label) if parquet else _read_csv(path, label)
        if frames and list(df.columns) != list(frames[0].columns[:-2]):  # [:-2]: less _FILE, _LINE
            raise StepError(
                E_MALFORMED,
                f"header differs from {shown[0]}'s: files of one source must share their columns",
                file=label,
                line=1,
            )
        df[_FILE] = i
        df[_LINE] = (
            np.arange(1, len(df) + 1) if parquet else np.arange(2, len(df) + 2)
        )  # CSV: line 1 is the header
        frames.append(df)
    return (pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]), shown


def _plain(value: object) -> object:
    """numpy scalars as plain Python values, so messages read 5, not np.int64(5)."""
    return value.item() if hasattr(value, "item") else value


def _where(df: pd.DataFrame, shown: list[str], row: int) -> dict:
    return {"file": shown[int(df[_FILE].iloc[row])], "line": int(df[_LINE].iloc[row])}


def _closest(name: str, candidates: list[str]) -> str | None:
    found = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return found[0] if found else None


# ---------------------------------------------------------------------------------------------- join


def _check_label(df: pd.DataFrame, label: str, shown: list[str], classes: tuple[list, list | None]) -> dict:
    """Refuse missing labels, then map the label to 1 (a data.positive value) or 0: the original values by class."""
    missing = df[label].isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise StepError(
            E_LABEL,
            f"label '{label}' is missing in {int(missing.sum())} row(s); the first is here",
            **_where(df, shown, row),
            hint="every row needs a label; remove unlabelled rows",
        )
    return _map_label(df, label, shown, *classes)


def _label_classes(config: dict) -> tuple[list, list | None]:
    """data.positive (default [1]) and data.negative (None: every other value, at most one)."""
    positive = _get(config, "data.positive", [1], kind=list)
    negative = _get(config, "data.negative", None, kind=list)
    return positive, negative


def _map_label(df: pd.DataFrame, label: str, shown: list[str], positive: list, negative: list | None) -> dict:
    """Replace the label column by 1 where its value is one of `positive` (compared by stepkit.value_key, so 1,
    "1" and 1.0 are one value; True and "True" one), else 0. More than two values need data.negative to list the
    other ones; a value in neither list is an error, as is data.positive matching no row."""
    column = df[label]
    pos_keys = {stepkit.value_key(v) for v in positive}
    values = list(pd.unique(column))  # in order of first appearance
    pos = [v for v in values if stepkit.value_key(v) in pos_keys]
    neg = [v for v in values if stepkit.value_key(v) not in pos_keys]
    if negative is not None:
        neg_keys = {stepkit.value_key(v) for v in negative}
        stray = [v for v in neg if stepkit.value_key(v) not in neg_keys]
        if stray:
            row = int(np.flatnonzero(column.isin(stray[:1]).to_numpy())[0])
            raise StepError(
                E_LABEL_VALUES,
                f"label '{label}' has the value {_plain(stray[0])!r}, which is neither in data.positive "
                f"{positive} nor in data.negative {negative} ({int(column.isin(stray).sum())} such row(s))",
                **_where(df, shown, row),
                column=label,
                hint="add it to data.positive or data.negative, or remove those rows",
            )
    elif len(values) > 2:
        odd = _odd_label(column, pos, neg)
        row = int(np.flatnonzero(column.isin([odd]).to_numpy())[0])
        raise StepError(
            E_LABEL_VALUES,
            f"label '{label}' has {len(values)} distinct values ({', '.join(repr(_plain(v)) for v in values[:6])}"
            f"{', ...' if len(values) > 6 else ''}), found {_plain(odd)!r}: a binary label has two",
            **_where(df, shown, row),
            column=label,
            hint="list the positive values under data.positive and all the others under data.negative",
        )
    if not pos and len(neg) > 1:  # two classes and neither positive: data.positive is not the data's spelling
        raise StepError(
            E_LABEL_VALUES,
            f"no row of label '{label}' has a data.positive value {positive}; its values are "
            f"{sorted(repr(_plain(v)) for v in values[:6])}",
            file=shown[0],
            line=1,
            column=label,
            hint=f"set data.positive to the value(s) that mean the positive class, e.g. positive: "
            f"[{_plain(neg[-1])!r}]"
            if neg
            else None,
        )
    df[label] = column.isin(pos).to_numpy().astype("int64")
    return {"positive": _originals(pos), "negative": _originals(neg)}


def _odd_label(column: pd.Series, pos: list, neg: list) -> object:
    """The value that makes a label non-binary, to point at: the rarest of the non-positive values beyond the
    most common one (with no positive value matched, beyond the two most common)."""
    counts = column[column.isin(neg)].value_counts()
    keep = 1 if pos else 2
    return counts.index[-1] if len(counts) > keep else neg[-1]


def _originals(values: list) -> list:
    """Label values as JSON keeps them (plain Python, in a stable order) for the report and the bias step."""
    return sorted((_plain(v) for v in values), key=stepkit.value_key)


def _key_text(keys: list[str]) -> str:
    return keys[0] if len(keys) == 1 else f"({', '.join(keys)})"


def _check_unique_keys(df: pd.DataFrame, keys: list[str], name: str, shown: list[str]) -> None:
    dup = df.duplicated(subset=keys, keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        values = tuple(_plain(df[k].iloc[rows[0]]) for k in keys)
        same = (df[keys] == pd.Series(values, index=keys)).all(axis=1)
        value = values[0] if len(keys) == 1 else values
        raise StepError(
            E_DUPLICATE_KEY,
            f"join key {_key_text(keys)}={value!r} appears {int(same.sum())} times in source '{name}' "
            f"({len(rows)} rows have a repeated key): joining would multiply rows of the base table",
            **_where(df, shown, int(rows[1])),
            hint=f"make {_key_text(keys)} unique in '{name}' (one row per key) before joining",
        )


def _missing_key(df: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """Rows whose join key (any of its columns) is missing: such a row never matches another (pandas alone
    would match a missing key to a missing key)."""
    return df[keys].isna().any(axis=1).to_numpy()


def _require_column(df: pd.DataFrame, column: str, shown: list[str], what: str) -> None:
    if column not in df.columns:
        near = _closest(column, [c for c in df.columns if not c.startswith("__ff_")])
        raise StepError(
            E_MISSING_COLUMN,
            f"{what} column '{column}' is not in {shown[0]}",
            file=shown[0],
            line=1,
            column=column,
            hint=f"did you mean '{near}'?" if near else None,
        )


def load_joined(config: dict, input_dir: str | Path, labelled: bool = True) -> tuple[pd.DataFrame, dict]:
    """Read every source, check labels and keys, and join them onto the first. Returns (joined, report).
    labelled=False (claims to score, `--records`): the label is neither required nor checked."""
    input_dir = Path(input_dir)
    sources = _get(config, "data.sources", kind=dict)
    if not sources:
        raise StepError(E_CONFIG, "data.sources is empty", file="config.json")
    label = str(_get(config, "data.label", kind=str))
    key = _get(config, "data.join.on", None)
    keys = [str(k) for k in key] if isinstance(key, list) else [str(key)]
    how = str(_get(config, "data.join.how", "left"))
    if how not in ("left", "inner"):
        raise StepError(E_CONFIG, f"data.join.how must be left or inner, got {how!r}", file="config.json")
    report: dict = {"sources": {}}
    origins: dict = {}  # column -> (file column, line column, files) of a joined source, for located errors
    tables = []
    for name, configured in sources.items():
        df, shown = read_source(input_dir, name, str(configured), source_format(config, name))
        report["sources"][name] = {"files": shown, "rows": int(len(df))}
        tables.append((name, df, shown))
    if len(tables) > 1 and key is None:
        raise StepError(
            E_CONFIG, "data.join.on is required when there are several sources", file="config.json"
        )
    all_shown = [s for _, _, shown in tables for s in shown]
    holders = [(n, df, s) for n, df, s in tables if label in df.columns]
    if not holders and labelled:
        columns = [c for _, df, _ in tables for c in df.columns if not c.startswith("__ff_")]
        near = _closest(label, columns)
        raise StepError(
            E_MISSING_COLUMN,
            f"label column '{label}' (data.label) is in none of the sources ({', '.join(all_shown)})",
            file=tables[0][2][0],
            line=1,
            column=label,
            hint=f"did you mean '{near}'?" if near else None,
        )
    if labelled:
        report["label_values"] = _check_label(holders[0][1], label, holders[0][2], _label_classes(config))
    base_name, joined, base_shown = tables[0]
    for name, df, shown in tables[1:]:
        for k in keys:
            _require_column(joined, k, base_shown, "join key (data.join.on)")
            _require_column(df, k, shown, "join key (data.join.on)")
        missing = _missing_key(df, keys)
        report["sources"][name]["rows_with_missing_key"] = int(missing.sum())
        df = df[~missing]
        _check_unique_keys(df, keys, name, shown)
        overlap = (set(joined.columns) & set(df.columns)) - {*keys, _FILE, _LINE}
        if overlap:
            raise StepError(
                E_BAD_VALUE,
                f"source '{name}' repeats column(s) {sorted(overlap)} of earlier sources",
                file=shown[0],
                line=1,
                hint="drop the duplicate columns from one of the files",
            )
        joined = joined.merge(
            _origin_tagged(df, name, shown, origins, joined.columns), on=keys, how=how, sort=False
        )
    if len(tables) > 1:
        # base rows with a missing key match nothing: a left join keeps them with the joined columns missing,
        # an inner join drops them
        report["sources"][base_name]["rows_with_missing_key"] = int(_missing_key(tables[0][1], keys).sum())
    joined = joined.reset_index(drop=True)
    if joined.empty:
        raise StepError(E_NO_DATA, f"the {how} join on '{_key_text(keys)}' left no rows", file=base_shown[0])
    if not labelled:
        report["joined_rows"] = int(len(joined))
        return joined.drop(columns=[label], errors="ignore"), report
    if joined[label].isna().any():  # label held by a joined source with unmatched base rows
        row = int(np.flatnonzero(joined[label].isna().to_numpy())[0])
        why = "its join key is missing" if _missing_key(joined.iloc[[row]], keys)[0] else "it has no match"
        raise StepError(
            E_LABEL,
            f"label '{label}' is missing after the join: this base row's label comes from "
            f"'{holders[0][0]}' and {why} there",
            **_where(joined, base_shown, row),
        )
    joined[label] = joined[label].astype("int64")
    report["joined_rows"] = int(len(joined))
    joined.attrs["ff_shown"] = base_shown
    joined.attrs["ff_origins"] = origins
    return joined, report


def _origin_tagged(df: pd.DataFrame, name: str, shown: list[str], origins: dict, base: Any) -> pd.DataFrame:
    """A joined source keeps its rows' file and line under its own names, so a contract violation in one of its
    columns is located in its file (the base table's _FILE/_LINE stay those of the base rows)."""
    tags = (f"{_FILE}:{name}", f"{_LINE}:{name}")
    for c in df.columns:
        if not str(c).startswith("__ff_") and c not in base:  # the join keys are the base table's
            origins.setdefault(c, (*tags, shown))
    return df.rename(columns={_FILE: tags[0], _LINE: tags[1]})


# ---------------------------------------------------------------------------------------------- contract


def check_contract(joined: pd.DataFrame, config: dict) -> dict | None:
    """data.expect on the joined data, before the split (step_code/contract.py); None without a contract."""
    expect = _get(config, "data.expect", None, kind=dict)
    if not expect:
        return None
    contract = stepkit.sibling("contract")
    problem = contract.config_problem(expect)
    if problem:
        raise StepError(E_CONFIG, problem, file="config.json")
    shown = joined.attrs.get("ff_shown") or ["<data>"]
    origins = joined.attrs.get("ff_origins") or {}

    def where(column: str, row: int) -> dict:
        if column in origins:
            file_col, line_col, files = origins[column]
            line = joined[line_col].iloc[row]
            if not pd.isna(line):  # NaN: a base row the left join matched to nothing in that source
                return {"file": files[int(joined[file_col].iloc[row])], "line": int(line)}
        return _where(joined, shown, row)

    return contract.enforce(joined, expect, str(_get(config, "data.label")), where)


# ---------------------------------------------------------------------------------------------- split


def split_frame(df: pd.DataFrame, config: dict) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Two seeded train_test_split calls giving exactly the declared ratios (0.8/0.1/0.1 of 5000 -> 4000/500/500)."""
    from sklearn.model_selection import train_test_split

    label = str(_get(config, "data.label"))
    _, val_ratio, test_ratio = _split_ratios(config)
    seed = int(_get(config, "split.seed", kind=int))
    stratify = bool(_get(config, "split.stratify", kind=bool))
    n = len(df)
    n_test, n_val = int(round(test_ratio * n)), int(round(val_ratio * n))
    if min(n_test, n_val, n - n_test - n_val) < 1:
        raise StepError(E_SPLIT, f"{n} rows are too few for the split ratios", file="config.json")
    # Split row positions, then take each part once: the same rows in the same order as splitting the frame
    # itself, without copying the 90% `rest` frame (string columns make every copy slow at millions of rows).
    labels = df[label].to_numpy()
    try:
        rest, test_at = train_test_split(
            np.arange(n), test_size=n_test, random_state=seed, stratify=labels if stratify else None
        )
        train_at, val_at = train_test_split(
            rest, test_size=n_val, random_state=seed, stratify=labels[rest] if stratify else None
        )
    except ValueError as exc:  # e.g. "The least populated class in y has only 1 member"
        raise StepError(
            E_SPLIT, f"cannot split the data stratified by '{label}': {exc}", file="config.json"
        ) from None
    train, val, test = df.iloc[train_at], df.iloc[val_at], df.iloc[test_at]
    parts = {"train": train, "validation": val, "test": test}
    for name, part in parts.items():
        classes = sorted(part[label].unique().tolist())
        if len(classes) < 2:
            raise StepError(
                E_SPLIT,
                f"the {name} split ({len(part)} rows) holds only label {classes[0]}: "
                f"{int(df[label].sum())} positive(s) in {n} rows are too few",
                file="config.json",
                hint="add labelled positives, or enlarge the split (split.validation / split.test)",
            )
    return train, val, test


# ---------------------------------------------------------------------------------------------- encode


def _key(value: object) -> str:
    """Canonical category text: 3, 3.0 and "3" are one category; strings are kept as they are."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        f = float(value)
        return str(int(f)) if f.is_integer() else repr(f)
    return str(value)


def dummy_name(column: str, value: object) -> str:
    # the same rule as fraudflow/spec/semantic.py's dummy_name, which checks declared names before a run
    return f"{column}_{_key(value).strip().lower().replace(' ', '_')}"


def category_codes(values: pd.Series, fill: object) -> tuple[np.ndarray, list[str]]:
    """Each value's canonical category text (`_key`) as a code into the returned list of distinct texts; a
    missing value takes `fill`'s text, or code -1 when `fill` is None. `_key` runs once per distinct value, not
    per row: at a million rows the per-row calls were most of preprocess's time."""
    if (
        isinstance(values.dtype, pd.CategoricalDtype)
        or pd.api.types.is_numeric_dtype(values)
        or pd.api.types.is_bool_dtype(values)
        or pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty")
    ):
        inverse, uniques = pd.factorize(values)  # missing -> -1
        texts = [_key(u) for u in uniques]
    else:  # mixed Python objects (a JSON record): a hash table would merge True with 1, so key each value
        objects = values.to_numpy(dtype=object)
        present = ~np.asarray(pd.isna(objects), dtype=bool)
        texts = [_key(v) for v in objects[present]]
        inverse = np.full(len(objects), -1, dtype=np.int64)
        inverse[present] = np.arange(len(texts))
    distinct = list(dict.fromkeys(texts))
    missing_code = -1
    if fill is not None and (inverse < 0).any():
        distinct = list(dict.fromkeys([*distinct, _key(fill)]))
        missing_code = distinct.index(_key(fill))
    position = {t: i for i, t in enumerate(distinct)}
    lookup = np.array([position[t] for t in texts] + [missing_code], dtype=np.int64)  # [-1]: missing
    return lookup[np.asarray(inverse)], distinct


def _is_text(series: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


def _number(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def fit(df: pd.DataFrame, config: dict) -> dict:
    """Fit fill values, one-hot categories and ordinal maps on `df` (the training split) -> the feature schema."""
    label = str(_get(config, "data.label"))
    drop = [str(c) for c in _get(config, "data.drop", [], kind=list)]
    one_hot = [str(c) for c in _get(config, "features.one_hot", [], kind=list)]
    ordinal = {
        str(k): [_key(v) for v in vals] for k, vals in _get(config, "features.ordinal", {}, kind=dict).items()
    }
    drop_encoded = [str(c) for c in _get(config, "features.drop_encoded", [], kind=list)]
    cat_fill = _required(config, "features.missing.categorical")  # null: leave missing
    num_fill = str(_get(config, "features.missing.numeric", kind=str))
    if num_fill not in NUMERIC_FILLS:
        raise StepError(
            E_CONFIG, f"features.missing.numeric must be one of {NUMERIC_FILLS}, got {num_fill!r}"
        )
    shown = df.attrs.get("ff_shown") or ["<data>"]
    columns = [c for c in df.columns if not str(c).startswith("__ff_")]
    _check_declared(columns, label, drop, one_hot, ordinal, shown)
    used = [c for c in columns if c != label and c not in drop]
    undeclared = [c for c in used if c not in one_hot and c not in ordinal and _is_text(df[c])]
    if undeclared:
        c = undeclared[0]
        sample = df[c].dropna().astype(str).unique()[:3].tolist()
        raise StepError(
            E_UNDECLARED_TEXT,
            f"text column(s) {undeclared} are neither one-hot, ordinal nor dropped (e.g. {c} = {sample})",
            file=shown[0],
            line=1,
            column=c,
            hint="declare each under features.one_hot, features.ordinal, or data.drop",
        )
    numeric: dict[str, dict] = {}
    for c in used:
        if c in one_hot or c in ordinal:
            continue
        values = pd.to_numeric(df[c], errors="coerce").astype("float64")
        fill = {"none": None, "zero": 0.0, "mean": values.mean(), "median": values.median()}[num_fill]
        integer = pd.api.types.is_integer_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])
        numeric[c] = {"fill": _number(fill), "integer": bool(integer)}
    cats = {}
    for c in one_hot:
        _, found = category_codes(df[c], cat_fill)
        keys = sorted(set(found))
        names = [dummy_name(c, k) for k in keys]
        if len(set(names)) != len(names):
            raise StepError(
                E_BAD_VALUE, f"categories of '{c}' differ only by case or spaces: {keys}", column=c
            )
        cats[c] = keys
    features = [c for c in used if c not in one_hot] + [dummy_name(c, k) for c in one_hot for k in cats[c]]
    for c in drop_encoded:
        if c not in features:
            near = _closest(c, features)
            raise StepError(
                E_MISSING_COLUMN,
                f"features.drop_encoded names '{c}', which is not an encoded column",
                file="config.json",
                column=c,
                hint=f"did you mean '{near}'?"
                if near
                else "encoded columns are named <column>_<value lowercased>",
            )
    return {
        "version": SCHEMA_VERSION,
        "label": label,
        "drop": drop,
        "missing": {"categorical": cat_fill, "numeric": num_fill},
        "numeric": numeric,
        "one_hot": {
            c: {"categories": cats[c], "columns": [dummy_name(c, k) for k in cats[c]]} for c in one_hot
        },
        "ordinal": {c: {"values": vals, "unknown": -1} for c, vals in ordinal.items()},
        "drop_encoded": drop_encoded,
        "features": [f for f in features if f not in drop_encoded],
    }


def _check_declared(
    columns: list[str], label: str, drop: list[str], one_hot: list[str], ordinal: dict, shown: list[str]
) -> None:
    for what, names in (
        ("data.drop", drop),
        ("features.one_hot", one_hot),
        ("features.ordinal", list(ordinal)),
    ):
        for c in names:
            if c not in columns:
                near = _closest(c, columns)
                raise StepError(
                    E_MISSING_COLUMN,
                    f"{what} names column '{c}', which is in none of the sources ({', '.join(shown)})",
                    file="config.json",
                    column=c,
                    hint=f"did you mean '{near}'?" if near else None,
                )
    both = sorted(set(one_hot) & set(ordinal))
    if both:
        raise StepError(E_CONFIG, f"column(s) {both} are both one-hot and ordinal", file="config.json")


def transform(df: pd.DataFrame, schema: dict) -> pd.DataFrame:
    """Raw records -> model rows (features in model order). Missing columns count as missing values; unknown
    categories give all-zero dummies (one-hot) or -1 (ordinal); extra columns, the label included, are ignored.

    Works on numpy arrays column by column rather than pandas Series: the serving endpoint calls this for every
    request, often with one record, where pandas' per-Series overhead would dominate."""
    n = len(df)
    cat_fill = schema["missing"]["categorical"]
    out: dict[str, np.ndarray] = {}

    def column(c: str) -> np.ndarray:
        return df[c].to_numpy() if c in df.columns else np.full(n, np.nan)

    def series(c: str) -> pd.Series:
        return df[c] if c in df.columns else pd.Series(np.full(n, np.nan))

    for c, spec in schema["numeric"].items():
        raw = column(c)
        if raw.dtype.kind in "biuf":
            values = raw.astype("float64")
        else:
            values = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(dtype="float64")
            bad = np.isnan(values) & ~pd.isna(raw)
            if bad.any():
                raise StepError(
                    E_BAD_VALUE, f"column '{c}' expects numbers, got {_plain(raw[bad][0])!r}", column=c
                )
        if spec["fill"] is not None:
            values = np.where(np.isnan(values), spec["fill"], values)
        # integer columns stay integers in the CSVs unless a missing value forces floats; a value an int64
        # cannot hold exactly (inf, 1e300) keeps the column float rather than wrap to garbage in the cast
        integral = (
            spec.get("integer")
            and bool(np.isfinite(values).all())
            and bool((np.abs(values) <= 2**53).all())
            and bool((values == np.round(values)).all())
        )
        out[c] = values.astype("int64") if integral else values
    for c, spec in schema["ordinal"].items():
        codes, texts = category_codes(series(c), cat_fill)
        index = {v: i for i, v in enumerate(spec["values"])}
        lookup = np.array([index.get(t, -1) for t in texts] + [-1], dtype="int64")  # [-1]: code -1, missing
        out[c] = lookup[codes]
    for c, spec in schema["one_hot"].items():
        codes, texts = category_codes(series(c), cat_fill)
        position = {t: i for i, t in enumerate(texts)}
        for k, name in zip(spec["categories"], spec["columns"]):  # noqa: B905 - Python 3.8/3.9 in the containers
            out[name] = (codes == position.get(k, -2)).astype("int64")  # -2: no value has it
    return pd.DataFrame({f: out[f] for f in schema["features"]}, columns=schema["features"])


def as_categories(df: pd.DataFrame, config: dict) -> pd.DataFrame:
    """The declared one-hot and ordinal text columns as pandas categoricals (same values): splitting copies rows,
    and taking a million rows of a text column costs seconds where a categorical's codes cost milliseconds."""
    ordinal = _get(config, "features.ordinal", {}, kind=dict)
    for c in [*_get(config, "features.one_hot", [], kind=list), *ordinal]:
        if c in df.columns and _is_text(df[c]) and not isinstance(df[c].dtype, pd.CategoricalDtype):
            df[c] = df[c].astype("category")
    return df


_EXACT_INT = 2**53  # a larger integer would become another float in a float column


def _plain_number(value: object) -> bool:
    """An int (not a bool) or float that every path turns into the same float64."""
    return type(value) is float or (type(value) is int and -_EXACT_INT <= value <= _EXACT_INT)  # noqa: E721


def record_encoder(schema: dict) -> Any:
    """`transform` compiled for raw records (dicts, as a serving request holds them): a function of a list of
    records returning their model rows as a float64 array, equal to `transform(DataFrame(records), schema)`'s,
    or None when a record holds a value outside the plain cases (a number is an int, a float or missing;
    a category a string, an int, a float or missing), which the caller then encodes with `transform`. The
    column maps are built once here, so encoding one record costs no DataFrame and no per-column pandas call.
    None when the schema is not one `fit` wrote."""
    if schema.get("version") != SCHEMA_VERSION or not all(
        k in schema for k in ("numeric", "ordinal", "one_hot")
    ):
        return None
    at = {f: i for i, f in enumerate(schema["features"])}
    cat_fill = schema["missing"]["categorical"]
    fill_key = None if cat_fill is None else _key(cat_fill)
    numeric = [
        (c, at[c], spec["fill"], bool(spec.get("integer")))
        for c, spec in schema["numeric"].items()
        if c in at
    ]
    ordinal = [
        (c, at[c], {v: i for i, v in enumerate(spec["values"])})
        for c, spec in schema["ordinal"].items()
        if c in at
    ]
    one_hot = [
        (c, {k: at[n] for k, n in zip(spec["categories"], spec["columns"]) if n in at})  # noqa: B905
        for c, spec in schema["one_hot"].items()
    ]
    covered = (
        {i for _, i, *_ in numeric} | {i for _, i, _ in ordinal} | {i for _, m in one_hot for i in m.values()}
    )
    if len(covered) != len(at):
        return None

    def category(value: object) -> str | None:
        if value is None or (type(value) is float and value != value):  # noqa: E721
            return fill_key
        if type(value) is str:  # noqa: E721
            return value
        if _plain_number(value):
            return _key(value)
        raise _Unplain

    def encode(records: list) -> np.ndarray | None:
        rows = np.zeros((len(records), len(at)), dtype=np.float64)
        try:
            for c, i, fill, integer in numeric:
                values = [r.get(c) for r in records]
                if not all(v is None or _plain_number(v) for v in values):
                    return None
                floats = [math.nan if v is None else float(v) for v in values]
                if fill is not None:
                    floats = [fill if v != v else v for v in floats]
                # transform keeps an integer column int64 when every value is a whole number (then -0.0 is 0)
                if integer and all(
                    math.isfinite(v) and abs(v) <= _EXACT_INT and v == round(v) for v in floats
                ):
                    floats = [v + 0.0 for v in floats]
                rows[:, i] = floats
            for c, i, index in ordinal:
                rows[:, i] = [index.get(category(r.get(c)), -1) for r in records]
            for c, columns in one_hot:
                for row, r in enumerate(records):
                    j = columns.get(category(r.get(c)))
                    if j is not None:
                        rows[row, j] = 1.0
        except _Unplain:
            return None
        return rows

    return encode


class _Unplain(Exception):
    """A record value record_encoder leaves to transform."""


def model_frame(df: pd.DataFrame, schema: dict) -> pd.DataFrame:
    """Label first, then the features: the rows the XGBoost container reads."""
    features = transform(df, schema)
    features.insert(0, schema["label"], df[schema["label"]].to_numpy().astype("int64"))
    return features


# ---------------------------------------------------------------------------------------------- outputs


def statistics(frame: pd.DataFrame) -> dict:
    """Per-feature training statistics: the drift baseline."""
    stats = {}
    for c in frame.columns:
        v = frame[c].astype("float64")
        q = v.quantile([0.25, 0.5, 0.75]) if v.notna().any() else pd.Series([np.nan] * 3)
        stats[c] = {
            "count": int(v.notna().sum()),
            "missing": int(v.isna().sum()),
            "mean": _number(v.mean()),
            "std": _number(v.std()),
            "min": _number(v.min()),
            "p25": _number(q.iloc[0]),
            "p50": _number(q.iloc[1]),
            "p75": _number(q.iloc[2]),
            "max": _number(v.max()),
        }
    return {"rows": int(len(frame)), "features": stats}


def raw_inputs(df: pd.DataFrame, schema: dict) -> pd.DataFrame:
    """The raw columns the model reads, as they were before encoding (missing values kept): the monitor's
    baseline of feature drift, missing rates and categories (step_code/monitor.py)."""
    columns = [*schema["numeric"], *schema["ordinal"], *schema["one_hot"]]
    return df[[c for c in df.columns if c in columns]]


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")


CSV_CHUNK_ROWS = 65_536


def csv_bytes(frame: pd.DataFrame) -> bytes | None:
    """The header-less CSV body pandas' `to_csv(header=False, index=False)` writes, byte for byte, for a frame of
    int64/float64 columns (what model_frame returns) and categoricals of strings (raw_inputs'); None for other
    frames. pandas formats each value (numpy's `astype(str)`, missing values as empty fields, strings through the
    csv module) and then joins them field by field in Python; here each distinct value is formatted once, each
    column's text is a fixed-width byte matrix, and the rows are joined by dropping the padding NUL bytes."""
    if len(frame.columns) < 2 or not all(_csv_column_ok(frame.iloc[:, i]) for i in range(len(frame.columns))):
        return None  # one column: pandas quotes an empty row ("")
    parts = []
    for i in range(len(frame.columns)):
        shown, inverse = _csv_fields(frame.iloc[:, i])
        text = shown[inverse]
        sep = b"\n" if i == len(frame.columns) - 1 else b","
        parts.append(text.view(np.uint8).reshape(len(frame), text.dtype.itemsize))
        parts.append(np.full((len(frame), 1), ord(sep), dtype=np.uint8))
    flat = np.concatenate(parts, axis=1).ravel()
    return flat[flat != 0].tobytes()


def _csv_column_ok(column: pd.Series) -> bool:
    """int64/float64, or a categorical of strings without NUL characters (csv_bytes drops NUL bytes)."""
    if column.dtype.kind in "if":
        return True
    if not isinstance(column.dtype, pd.CategoricalDtype):
        return False
    categories = column.cat.categories
    return all(type(c) is str and "\x00" not in c for c in categories)  # noqa: E721


def _csv_fields(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(each distinct value's CSV field as bytes, each row's index into them) for csv_bytes."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        # the csv module quotes a string as pandas' writer does (the same module, the same dialect); [:-2]: ",\n"
        fields = []
        for text in column.cat.categories:
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerow([text, ""])
            fields.append(buffer.getvalue()[:-2].encode("utf-8"))
        codes = column.cat.codes.to_numpy().astype(np.int64)
        codes[codes < 0] = len(fields)  # missing: an empty field
        return np.array([*fields, b""], dtype=bytes), codes
    values = column.to_numpy()
    if values.dtype.kind == "f":  # distinct bit patterns: 0.0 == -0.0, but they are written differently
        bits, inverse = np.unique(values.astype(np.float64).view(np.int64), return_inverse=True)
        # Python's repr is numpy's str of a float64 (the shortest round trip), and faster
        shown = np.array(["" if v != v else repr(v) for v in bits.view(np.float64).tolist()], dtype=str)
    elif len(values) and int(values.max()) - int(values.min()) < max(len(values), 1024):
        # a narrow range of integers (0/1 columns, counts): offsets into the range, no sort
        low, span = int(values.min()), int(values.max()) - int(values.min())
        shown, inverse = (np.arange(span + 1, dtype=np.int64) + low).astype(str), values - low
    else:
        distinct, inverse = np.unique(values, return_inverse=True)
        shown = distinct.astype(str)
    width = max(1, int(np.char.str_len(shown).max())) if len(shown) else 1
    return shown.astype(f"S{width}"), inverse.reshape(-1)  # ASCII: digits, signs, '.', 'e', 'inf'


def _write_csv(path: Path, frame: pd.DataFrame, header: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if csv_bytes(frame.iloc[:1]) is None:  # not a frame csv_bytes writes
        frame.to_csv(path, header=header, index=False)
        return
    with open(path, "wb") as fh:
        if header:  # pandas writes (and quotes) the header line
            fh.write(frame.iloc[:0].to_csv(index=False).encode())
        for start in range(0, len(frame), CSV_CHUNK_ROWS):
            fh.write(csv_bytes(frame.iloc[start : start + CSV_CHUNK_ROWS]) or b"")


def _with_header(path: Path, frame: pd.DataFrame, *bodies: Path) -> None:
    """`frame.to_csv(path, index=False)` when `bodies` already hold its header-less CSV (in order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(frame.iloc[:0].to_csv(index=False).encode())
        for body in bodies:
            with open(body, "rb") as src:
                shutil.copyfileobj(src, fh, 1 << 20)


TRAIN_PART = "part-{:05d}.csv"  # the train split's files when split.train_files > 1 (name order = row order)


def train_files(config: dict, rows: int) -> int:
    """split.train_files (default 1): how many files the train split is written as, each with at least one row."""
    files = int(_get(config, "split.train_files", 1, kind=int))
    if files < 1:
        raise StepError(E_CONFIG, f"split.train_files must be at least 1, got {files}", file="config.json")
    if files > rows:
        raise StepError(
            E_SPLIT,
            f"the train split has {rows} rows, too few for split.train_files={files} (every file needs a row)",
            file="config.json",
            hint="lower split.train_files (it must still be >= sagemaker.training.instance_count)",
        )
    return files


def write_split(out: Path, name: str, frame: pd.DataFrame, files: int = 1) -> list[Path]:
    """A split as `<name>/<name>.csv`, or as `files` CSVs of contiguous, near-equal row ranges (the shards
    SageMaker's ShardedByS3Key hands out whole): read in name order they are the one file's rows."""
    if files == 1:
        paths = [out / name / f"{name}.csv"]
        _write_csv(paths[0], frame, header=False)
        return paths
    bounds = np.linspace(0, len(frame), files + 1).round().astype(int)
    paths = [out / name / TRAIN_PART.format(k) for k in range(files)]
    for k, path in enumerate(paths):  # (no zip(strict=): the sklearn 1.2-1 image runs Python 3.9)
        _write_csv(path, frame.iloc[bounds[k] : bounds[k + 1]], header=False)
    return paths


def run(config: dict, input_dir: str | Path, output_dir: str | Path) -> dict:
    """The whole step; returns the report. Raises StepError for bad data, writing nothing."""
    _split_ratios(config)  # fail on a bad config before reading any data
    joined, report = load_joined(config, input_dir)
    report["contract"] = check_contract(joined, config)
    joined = as_categories(joined, config)
    train, val, test = split_frame(joined, config)
    train.attrs["ff_shown"] = joined.attrs.get("ff_shown")
    schema = fit(train, config)
    schema["label_values"] = report["label_values"]  # the original values of each class (bias, report)
    frames = {
        name: model_frame(part, schema)
        for name, part in (("train", train), ("validation", val), ("test", test))
    }
    label = schema["label"]
    report["splits"] = {
        name: {"rows": int(len(f)), "positives": int(f[label].sum())} for name, f in frames.items()
    }
    report["features"] = len(schema["features"])

    shards = train_files(config, len(train))
    if shards > 1:  # the default report stays as it was
        report["splits"]["train"]["files"] = shards

    def write(out: Path) -> None:
        written = {n: write_split(out, n, f, shards if n == "train" else 1) for n, f in frames.items()}
        # the baselines are the same rows with a header line: copy the bytes rather than format them again
        for name in ("train", "test"):
            _with_header(out / "baseline" / f"{name}_with_header.csv", frames[name], *written[name])
        _write_csv(out / "baseline" / "train_raw.csv", raw_inputs(train, schema), header=True)
        _write_json(out / "baseline" / "statistics.json", statistics(frames["train"][schema["features"]]))
        _write_json(out / "schema" / "feature_schema.json", schema)
        _write_json(out / "report" / "preprocess.json", report)

    stepkit.publish(Path(output_dir), write)
    return report


def records(config: dict, input_dir: str | Path, output_dir: str | Path) -> dict:
    """The scoring pipeline's join (`--records`): the sources joined as for training, without the label, written
    as JSON Lines `{"records": [claim]}` (one claim per line: what inference.py reads as a JSON document, and what a
    batch transform with SplitType Line and BatchStrategy SingleRecord sends it one at a time)."""
    joined, report = load_joined(config, input_dir, labelled=False)
    claims = joined[[c for c in joined.columns if not str(c).startswith("__ff_")]]

    def write(out: Path) -> None:
        target = out / "records" / "records.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", encoding="utf-8") as f:
            for start in range(0, len(claims), 10000):
                lines = claims.iloc[start : start + 10000].to_json(orient="records", lines=True)
                f.writelines('{"records": [' + line + "]}\n" for line in lines.splitlines() if line)

    stepkit.publish(Path(output_dir), write)
    return report


# ---------------------------------------------------------------------------------------------- entry


def main(argv: list[str] | None = None) -> int:
    """Entry point (see stepkit.entry: a StepError propagates in-process, is printed as a script)."""
    parser = stepkit.Parser(E_CONFIG, __doc__.splitlines()[0])
    parser.add_argument("--config", default="/opt/ml/processing/input/config/config.json")
    parser.add_argument("--input-dir", default="/opt/ml/processing/input")
    parser.add_argument("--output-dir", default="/opt/ml/processing/output")
    parser.add_argument(
        "--records", action="store_true", help="join only: write records/records.jsonl to score"
    )

    def work() -> int:
        args = parser.parse_args(argv)
        config = stepkit.read_config(args.config, E_CONFIG)
        if args.records:  # the scoring pipeline's join (fraudflow/sagemaker/scoring.py)
            print(json.dumps({"records": records(config, args.input_dir, args.output_dir)["joined_rows"]}))
            return 0
        report = run(config, args.input_dir, args.output_dir)
        print(json.dumps({"preprocess": report["splits"]}))
        return 0

    return stepkit.entry(argv, work)


if __name__ == "__main__":
    sys.exit(main())
