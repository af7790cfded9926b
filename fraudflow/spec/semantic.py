"""Checks the schema cannot express: ratios that sum to 1, columns that exist, a facet the encoders produce,
names that meet SageMaker's rules, parameters that point at real settings.

Data files are read by step_code/stepkit.py's reader (the one preprocess uses): a CSV's header (gzip too) with
the csv module, plus one column's values for the facet and label checks; a Parquet file's schema from its
footer, with the standard library. So `validate` never imports pandas (or pyarrow). A file that is absent or remote is skipped with a warning: validate must work
before `fraudflow sample-data` or without AWS credentials. Only regular files are opened (a FIFO or a device is
FF511) and only as far as the header goes (at most MAX_HEADER_CHARS, else FF512); a repeated header column is
FF513, located in the CSV file, as preprocess refuses it.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import difflib
import functools
import math
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

from fraudflow.errors import Diagnostic
from fraudflow.spec import batch_checks, monitor_checks, scaleout
from fraudflow.spec import schema as sch
from fraudflow.spec.api_semantic import check_api
from fraudflow.spec.config_types import (
    BiasConfig,
    DataConfig,
    FeaturesConfig,
    PipelineConfig,
)
from fraudflow.spec.gate_checks import check_gate
from fraudflow.spec.yamlload import PathT, Positions

FACET_SCAN_ROWS = 200_000
# The label check reads fewer: every finding it makes from a prefix is certain (a third value, a value in neither
# class, two values neither of them positive), so a prefix that holds both classes is all it needs.
LABEL_SCAN_ROWS = 20_000
# A CSV header is one line of column names: a first line longer than this is not a header (or not a CSV file).
# Also the longest data line the facet scan reads. The same bound as step_code/stepkit.py's.
MAX_HEADER_CHARS = 1 << 20


def dummy_name(column: str, value: object) -> str:
    """The name of a one-hot column: the same rule as step_code/preprocess.py's (tests/test_spec_semantic.py pins
    that they agree). Numbers are named canonically (3 and 3.0 → `_3`), as pandas reads a numeric column."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        f = float(value)
        value = str(int(f)) if f.is_integer() else repr(f)
    return f"{column}_{str(value).strip().lower().replace(' ', '_')}"


def csv_categories(values: set[str]) -> list[object]:
    """A column's values as pandas would type them: numbers if every value reads as one, else the strings."""
    try:
        return [float(v) for v in values]
    except ValueError:
        return list(values)


RESOLVED = "#/$defs/resolvedPipeline"


def check(name: str, cfg: dict[str, Any], pos: Positions, base_dir: Path) -> list[Diagnostic]:
    """Every semantic problem. Runs even after schema errors (to report everything at once), over the sections the
    schema accepted: a rejected section was reported already, and checking a wrong shape would only add noise.

    So a section, even a required one, may be absent from what the checks see (they read sections with .get), and
    every section present has a shape the schema allows: each check handles all of those, and an exception from
    one is a bug, which surfaces instead of silently dropping the check's other findings."""
    rejected = rejected_sections(cfg)
    valid = cast(PipelineConfig, {k: v for k, v in cfg.items() if k not in rejected})
    out: list[Diagnostic] = []
    out += _check_split(valid, pos, base_dir)
    out += _check_data(valid, pos, base_dir)
    out += _check_deploy(valid, pos, base_dir)
    # parameters are checked one by one: a pattern error in one entry rejects the section, not the others
    targets = _parameter_targets(cfg.get("parameters"))
    out += _check_parameters(valid, targets, pos, rejected)
    out += _check_instance_count(valid, targets, pos)
    out += _check_roles(valid, pos, base_dir)
    out += check_api(valid, pos)  # deploy.api (api_semantic.py)
    out += check_gate(valid, pos)
    out += _check_tune(valid, targets, pos)
    out += _check_capture(valid, pos)
    out += monitor_checks.check(cast(dict[str, Any], valid), pos)
    out += batch_checks.check(cast(dict[str, Any], valid), pos)  # deploy.batch
    out += scaleout.check(cast(dict[str, Any], valid), pos)  # distributed training (FF612-FF614)
    return out


def _check_tune(cfg: PipelineConfig, targets: dict[str, str], pos: Positions) -> list[Diagnostic]:
    # the tune section's rules live with its search space (fraudflow/spec/tuning.py)
    from fraudflow.spec.tuning import WARNINGS, problems

    found = problems(cast(dict[str, Any], cfg), targets)
    return [
        pos.diagnostic(c, m, p, hint=h, severity="warning" if c in WARNINGS else "error")
        for c, m, p, h in found
    ]


def _parameter_targets(value: Any) -> dict[str, str]:
    """Each parameter whose target is a string (a wrong type was reported by the schema check)."""
    return {k: v for k, v in value.items() if isinstance(v, str)} if isinstance(value, dict) else {}


def rejected_sections(cfg: dict[str, Any]) -> set[str]:
    """The top-level sections holding a schema error of the resolved pipeline."""
    if sch.is_valid(cfg, RESOLVED):
        return set()
    return {str(e.absolute_path[0]) for e in sch.check_value(cfg, {"$ref": RESOLVED}) if e.absolute_path}


def _reporters(pos: Positions, out: list[Diagnostic]) -> tuple[Any, Any]:

    def err(code: str, message: str, path: PathT, hint: str | None = None, key: bool = False) -> None:
        out.append(pos.diagnostic(code, message, path, key=key, hint=hint))

    def warn(code: str, message: str, path: PathT, hint: str | None = None) -> None:
        out.append(pos.diagnostic(code, message, path, hint=hint, severity="warning"))

    return err, warn


def _check_split(cfg: PipelineConfig, pos: Positions, base_dir: Path) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    err, _ = _reporters(pos, out)
    split = cfg.get("split")
    if split is None:
        return out
    total = split["train"] + split["validation"] + split["test"]
    if not math.isclose(total, 1.0, abs_tol=1e-9):
        err(
            "FF501",
            f"split ratios sum to {total:g}, not 1 (train {split['train']:g} + validation "
            f"{split['validation']:g} + test {split['test']:g})",
            ("split",),
            hint="adjust them so that train + validation + test = 1",
        )
    if (cfg.get("train") or {}).get("early_stopping") and split["validation"] <= 0:
        err("FF508", "early stopping needs a validation split", ("train", "early_stopping"))
    return out


def _check_data(cfg: PipelineConfig, pos: Positions, base_dir: Path) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    err, warn = _reporters(pos, out)
    data = cfg.get("data")
    if data is None:
        return out
    feats: FeaturesConfig = cfg.get("features") or {}  # rejected: check the data alone
    one_hot, ordinal = feats.get("one_hot", []), feats.get("ordinal", {})
    for col in sorted(set(one_hot) & set(ordinal)):
        err(
            "FF505",
            f"column {col!r} is both one-hot and ordinal encoded",
            ("features", "ordinal", col),
            key=True,
            hint="choose one encoding",
        )
    label = data["label"]
    for where, cols in (("drop", data.get("drop", [])), ("one_hot", one_hot), ("ordinal", list(ordinal))):
        if label in cols:
            err("FF505", f"the label {label!r} cannot be in {where}", ("data", "label"))

    sources = data["sources"]
    if len(sources) > 1 and "join" not in data:
        err(
            "FF205",
            "several sources need `join` (the key they are joined on)",
            ("data", "sources"),
            hint="e.g. join: {on: policy_id, how: left}",
        )
    headers = _read_headers(sources, base_dir, pos, out, data.get("format"))
    if headers is not None:
        _check_columns(data, feats, headers, err)

    bias = cfg.get("bias")
    if bias:
        _check_facet(bias, data, feats, headers, base_dir, err, warn)
    _check_labels(data, bias, headers, base_dir, err)
    _check_expect(data, headers, err, warn)
    return out


def _check_labels(
    data: DataConfig, bias: BiasConfig | None, headers: dict[str, list[str]] | None, base_dir: Path, err: Any
) -> None:
    """data.positive / data.negative against each other, the label's first values (where cheaply readable)
    and bias.label_values, by the rules preprocess applies (stepkit.value_key, encode_label_values)."""
    kit = _kit()
    positive: list[Any] = list(data.get("positive", [1]))
    negative: list[Any] | None = data.get("negative")
    pos_keys = {kit.value_key(v) for v in positive}
    if negative is not None:
        both = [v for v in negative if kit.value_key(v) in pos_keys]
        if both:
            err(
                "FF540",
                f"label value(s) {both} are in both data.positive and data.negative",
                ("data", "negative"),
            )
            return
    if bias:
        _, unknown = kit.encode_label_values(list(bias.get("label_values", positive)), positive, negative)
        if unknown:
            err(
                "FF543",
                f"bias.label_values {unknown} are neither in data.positive {positive} nor in data.negative {negative}",
                ("bias", "label_values"),
                hint="bias.label_values lists original label values, as data.positive does",
            )
    if headers is None:
        return
    seen, _ = _column_values(
        data["label"], data["sources"], headers, base_dir, data.get("format"), LABEL_SCAN_ROWS
    )
    if not seen:
        return
    values = sorted({kit.value_key(v) for v in _typed(seen)})
    others = [v for v in values if v not in pos_keys]
    if bias and not unknown and negative is None and len(values) == 2:
        stray = [v for v in bias.get("label_values", positive) if kit.value_key(v) not in values]
        if stray:
            err(
                "FF543",
                f"bias.label_values {stray} are not values of label {data['label']!r} ({', '.join(values)})",
                ("bias", "label_values"),
                hint="bias.label_values lists original label values, as data.positive does",
            )
    if negative is not None:
        neg_keys = {kit.value_key(v) for v in negative}
        stray = [v for v in others if v not in neg_keys]
        if stray:
            err(
                "FF541",
                f"label {data['label']!r} has value(s) {stray} in neither data.positive nor data.negative",
                ("data", "negative"),
                hint="add them to data.positive or data.negative",
            )
    elif len(values) > 2:
        err(
            "FF541",
            f"label {data['label']!r} has {len(values)} values ({', '.join(values[:6])}): a binary label has two",
            ("data", "label"),
            hint="list the positive values under data.positive and the others under data.negative",
        )
    elif len(values) == 2 and len(others) == 2:
        err(
            "FF541",
            f"no value of label {data['label']!r} ({', '.join(values)}) is in data.positive {positive}",
            ("data", "positive") if "positive" in data else ("data", "label"),
            hint="set data.positive to the value(s) that mean the positive class, e.g. "
            f"positive: [{others[-1]!r}]",
        )


def _typed(values: set[str]) -> list[object]:
    """CSV texts as pandas types a whole column: booleans if every value is one, else numbers, else strings."""
    words = {"true": True, "false": False}
    if values and all(
        v.lower() in words and v in ("True", "TRUE", "true", "False", "FALSE", "false") for v in values
    ):
        return [words[v.lower()] for v in values]
    return csv_categories(values)


def _check_expect(data: DataConfig, headers: dict[str, list[str]] | None, err: Any, warn: Any) -> None:
    """data.expect's own consistency (bands with min <= max), its columns against the headers, data.format's
    source names."""
    fmt = data.get("format")
    if isinstance(fmt, dict):
        for name in fmt:
            if name not in data["sources"]:
                err(
                    "FF546",
                    f"data.format names source {name!r}, which data.sources does not declare",
                    ("data", "format", name),
                    key=True,
                )
    expect = data.get("expect")
    if not expect:
        return
    bands: list[tuple[PathT, Mapping[str, Any]]] = [
        (("data", "expect", k), cast("Mapping[str, Any]", expect[k]))
        for k in ("rows", "positive_share")
        if k in expect
    ]
    columns = expect.get("columns") or {}
    bands += [(("data", "expect", "columns", c), cast("Mapping[str, Any]", r)) for c, r in columns.items()]
    for where, band in bands:
        if band.get("min") is not None and band.get("max") is not None and band["min"] > band["max"]:
            err("FF545", f"min {band['min']} is above max {band['max']}: no data can pass", where)
    if headers is None:
        return
    all_cols = {c for cols in headers.values() for c in cols}
    for column, rule in columns.items():
        if column not in all_cols:
            level = rule.get("level", expect.get("level", "fail"))
            if isinstance(level, dict):
                level = level.get("present", expect.get("level", "fail"))
            close = difflib.get_close_matches(column, sorted(all_cols), n=1, cutoff=0.6)
            report = err if level == "fail" else warn
            report(
                "FF544",
                f"data.expect names column {column!r}, which is in none of the sources",
                ("data", "expect", "columns", column),
                hint=f"did you mean {close[0]!r}?" if close else None,
                **({"key": True} if level == "fail" else {}),
            )


def _check_deploy(cfg: PipelineConfig, pos: Positions, base_dir: Path) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    err, _ = _reporters(pos, out)
    deploy = cfg.get("deploy")
    variants = (deploy.get("variants") if deploy else None) or []
    if variants:  # the deployer's own check (fraudflow/variants.py), so the rule is written once
        from fraudflow.variants import variant_problems

        for index, key, message in variant_problems(variants):
            where: PathT = ("deploy", "variants") if index is None else ("deploy", "variants", index)
            err("FF507", message, (*where, key) if key and index is not None else where)
    # require_approval: false written out beside when: approved reads as "serve unapproved versions"
    written = ("deploy", "require_approval") in pos.keys
    if deploy and deploy.get("when") == "approved" and written and deploy.get("require_approval") is False:
        err(
            "FF560",
            "deploy.when: approved serves only Approved versions, but require_approval is false",
            ("deploy", "require_approval"),
            hint="remove require_approval (approved deployment implies it), or use when: registered",
        )
    return out


_S3_URI = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?")


def _check_capture(cfg: PipelineConfig, pos: Positions) -> list[Diagnostic]:
    """deploy.data_capture: an s3:// destination SageMaker accepts; a local one only applies to `serve`."""
    out: list[Diagnostic] = []
    err, warn = _reporters(pos, out)
    deploy = cfg.get("deploy")
    capture: dict[str, Any] = dict(deploy.get("data_capture") or {}) if deploy else {}
    dest = capture.get("destination")
    path: PathT = ("deploy", "data_capture", "destination")
    if isinstance(dest, str) and dest.startswith("s3://") and not _S3_URI.fullmatch(dest):
        err("FF565", f"data_capture.destination {dest!r} is not an s3://BUCKET/PREFIX URI", path)
    elif isinstance(dest, str) and "://" in dest and not dest.startswith("s3://"):
        err("FF565", f"data_capture.destination {dest!r}: only s3:// URIs or local paths", path)
    elif isinstance(dest, str) and not dest.startswith("s3://"):
        warn(
            "FF566",
            f"data_capture.destination {dest!r} is a local path: only `fraudflow serve` writes there",
            path,
            hint="on SageMaker the captures go to s3://<bucket>/<prefix>/data-capture; name an s3:// URI to choose",
        )
    if capture and capture.get("enabled", True) and capture.get("sampling_percentage") == 0:
        warn(
            "FF566",
            "data_capture is enabled with sampling_percentage 0: nothing is captured",
            path[:-1] + ("sampling_percentage",),
        )
    return out


def _check_parameters(
    cfg: PipelineConfig, targets: dict[str, str], pos: Positions, rejected: set[str]
) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    err, _ = _reporters(pos, out)
    for pname, target in targets.items():
        parts = target.split(".")
        if parts[0] in rejected:
            continue  # the value's section has a schema error, reported already
        if _get(cfg, parts) is None:
            err(
                "FF506",
                f"parameter {pname} points at {target!r}, which this pipeline does not set",
                ("parameters", pname),
                hint="declare that value, or remove the parameter",
            )
    return out


# Jobs that would only repeat the same work on every instance: nothing shards their input (S3DataDistributionType
# is FullyReplicated) and train.py trains on one host. Clarify and the endpoint really scale out, so not these.
SINGLE_INSTANCE_JOBS: tuple[Literal["processing", "training"], ...] = ("processing",)  # training: scaleout.py
INSTANCE_COUNT_JOBS = ("processing", "training")  # no pipeline parameter on either count (FF516)


def _check_instance_count(cfg: PipelineConfig, targets: dict[str, str], pos: Positions) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    err, _ = _reporters(pos, out)
    sm = cfg.get("sagemaker", {})
    for job in SINGLE_INSTANCE_JOBS:
        count = (sm.get(job) or {}).get("instance_count")
        if isinstance(count, int) and not isinstance(count, bool) and count > 1:
            err(
                "FF515",
                f"sagemaker.{job}.instance_count is {count}: every instance would do the same work on all the "
                f"data (nothing shards the data or distributes training), for {count}x the cost",
                ("sagemaker", job, "instance_count"),
                hint="use instance_count: 1 (a larger instance_type scales up instead)",
            )
    for pname, target in targets.items():
        parts = target.split(".")
        if (
            len(parts) == 3
            and parts[0] == "sagemaker"
            and parts[1] in INSTANCE_COUNT_JOBS
            and parts[2] == "instance_count"
        ):
            why = (
                "above split.train_files, where an instance gets no train file (FF612)"
                if parts[1] == "training"
                else "above 1, where every instance repeats the same work (nothing shards the data)"
            )
            err(
                "FF516",
                f"parameter {pname} would let an execution set {target} {why}",
                ("parameters", pname),
                hint=f"remove the parameter, or parameterise sagemaker.{parts[1]}.instance_type to scale up instead",
            )
    return out


def _check_roles(cfg: PipelineConfig, pos: Positions, base_dir: Path) -> list[Diagnostic]:
    """On SageMaker the deployer Lambda creates endpoints: it gets a role of its own, not the jobs' role, so that
    code running in a training or processing container cannot deploy past the gate."""
    out: list[Diagnostic] = []
    err, warn = _reporters(pos, out)
    sm = cfg.get("sagemaker")
    if not cfg.get("deploy") or not sm:
        return out
    role = (sm.get("lambda") or {}).get("role_arn")
    if not role:
        err(
            "FF520",
            "deploy on SageMaker needs sagemaker.lambda.role_arn: the deployer Lambda's own role",
            ("deploy",),
            key=True,
            hint="create a role with the policies `fraudflow iam --for deployer` prints (docs/iam.md) and set "
            "sagemaker.lambda.role_arn to its ARN",
        )
    elif role == sm.get("role_arn"):
        warn(
            "FF521",
            "sagemaker.lambda.role_arn is the jobs' role (sagemaker.role_arn): the code of every training and "
            "processing job could then create and update endpoints",
            ("sagemaker", "lambda", "role_arn"),
            hint="give the deployer a role of its own: `fraudflow iam --for deployer` prints its policies",
        )
    return out


def _declared_format(fmt: Any, key: str) -> str | None:
    """data.format for source `key`: one format for all, or a map by source name."""
    return cast("str | None", fmt.get(key) if isinstance(fmt, dict) else fmt)


def _read_headers(
    sources: dict[str, str], base_dir: Path, pos: Positions, out: list[Diagnostic], fmt: Any = None
) -> dict[str, list[str]] | None:
    """Each local source's header (a folder's: its first file's, as preprocess reads it). Only regular files are
    opened, and only their first MAX_HEADER_CHARS: a FIFO would block and /dev/zero would never end."""
    err, warn = _reporters(pos, out)
    headers: dict[str, list[str]] = {}
    complete = True
    for key, uri in sources.items():
        path_ = ("data", "sources", key)
        if uri.startswith("s3://"):
            return None  # remote data is checked when the pipeline runs
        source = Path(uri) if Path(uri).is_absolute() else base_dir / uri
        try:
            files = _source_files(source)
        except FileNotFoundError:
            warn(
                "FF510",
                f"data file {uri} not found: column checks skipped",
                path_,
                hint="`fraudflow sample-data data` writes sample claims.csv and customers.csv",
            )
            return None
        except _NotRegular as exc:
            err(
                "FF511",
                f"data source {uri}: {exc.path} is a {exc.kind}, not a regular file",
                path_,
                hint="point the source at a CSV file or a folder of CSV files (reading a pipe or a device "
                "could block or never end)",
            )
            return None
        except OSError as exc:
            warn("FF510", f"data source {uri} cannot be read ({exc}): column checks skipped", path_)
            return None
        if not files:
            warn("FF510", f"data folder {uri} holds no files: column checks skipped", path_)
            return None
        declared = _declared_format(fmt, key)
        for file in files:
            try:
                fmt_of = _kit().file_format(file, declared, uri)
                row, line = _kit().read_columns(file, fmt_of)
            except _kit().HeaderTooLong:
                err(
                    "FF512",
                    f"{file}: the header line does not end within its first {MAX_HEADER_CHARS // 2**20} MiB",
                    path_,
                    hint="is this a CSV file? its first line must be the column names",
                )
                complete = False
                continue
            except (OSError, UnicodeDecodeError, EOFError, csv.Error) as exc:
                warn("FF510", f"data file {file} cannot be read ({exc}): column checks skipped", path_)
                complete = False
                continue
            except ValueError as exc:  # declared or named Parquet, but it is not (HeaderTooLong: above)
                err(
                    "FF542",
                    f"data file {file} is not a Parquet file ({exc})",
                    path_,
                    hint="name CSV files *.csv, or set data.format for this source",
                )
                complete = False
                continue
            if not row:
                warn("FF510", f"data file {file} is empty: column checks skipped", path_)
                complete = False
                continue
            dup = duplicate_column(row)
            if dup is not None:  # located in the CSV file, at the second occurrence
                first, second = dup
                diag = pos.diagnostic(
                    "FF513",
                    f"column {row[second]!r} appears twice in the header (columns {first + 1} and "
                    f"{second + 1}) of data source {key!r}",
                    path_,
                    hint="rename or remove one of them (read as it is, the second would silently become "
                    f"'{row[second]}.1' and be used as a feature)",
                )
                out.append(dataclasses.replace(diag, file=str(file), line=line, column=second + 1))
            headers.setdefault(key, [c.strip() for c in row])
    return headers if complete and len(headers) == len(sources) else None


class _NotRegular(Exception):
    def __init__(self, path: Path, kind: str):
        super().__init__(f"{path} is a {kind}")
        self.path, self.kind = path, kind


def _kind(mode: int) -> str | None:
    """None for a regular file, else what it is."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def _source_files(source: Path) -> list[Path]:
    """The files preprocess reads for a source: the file itself, or the non-hidden entries of a folder (sorted),
    each of which must be a regular file. Raises FileNotFoundError or _NotRegular."""
    mode = os.stat(source).st_mode
    if not stat.S_ISDIR(mode):
        kind = _kind(mode)
        if kind:
            raise _NotRegular(source, kind)
        return [source]
    files = []
    for entry in sorted(source.iterdir()):
        if entry.name.startswith("."):
            continue
        try:
            mode = os.stat(entry).st_mode
        except FileNotFoundError:  # a dangling link: preprocess skips it too
            continue
        if stat.S_ISDIR(mode):
            continue  # preprocess reads only the files at the top of the folder
        kind = _kind(mode)
        if kind:
            raise _NotRegular(entry, kind)
        files.append(entry)
    return files


def _kit() -> Any:
    """step_code/stepkit.py: the one source reader preprocess uses too (stdlib only, Parquet schemas included)."""
    from fraudflow.stepcode import kit

    return kit()


def read_header(file: Path) -> tuple[list[str], int]:
    """The header row of a CSV file (optionally gzip) and the line it starts on: stepkit's reader, which
    preprocess uses. Raises stepkit's HeaderTooLong when the header does not end within MAX_HEADER_CHARS."""
    return cast("tuple[list[str], int]", _kit().read_header(file))


def duplicate_column(row: list[str]) -> tuple[int, int] | None:
    """The (first, second) 0-based positions of the first repeated column name, or None (stepkit's rule)."""
    return cast("tuple[int, int] | None", _kit().duplicate_column(row))


def _check_columns(data: DataConfig, feats: FeaturesConfig, headers: dict[str, list[str]], err: Any) -> None:
    all_cols = list(dict.fromkeys(c for cols in headers.values() for c in cols))  # linear on wide headers

    def missing(col: str, path: PathT, what: str, among: list[str] | None = None, key: bool = False) -> None:
        among = among if among is not None else all_cols
        if col not in among:
            close = difflib.get_close_matches(col, among, n=1, cutoff=0.6)
            err(
                "FF502",
                f"{what} {col!r} is not a column of the data",
                path,
                key=key,
                hint=f"did you mean {close[0]!r}?" if close else f"columns: {', '.join(among[:30])}",
            )

    join = data.get("join")
    if join and len(headers) > 1:
        keys = join["on"] if isinstance(join["on"], list) else [join["on"]]
        for source, cols in headers.items():
            for k in keys:
                if k not in cols:
                    missing(k, ("data", "join", "on"), f"join key (in source {source})", cols)
    missing(data["label"], ("data", "label"), "label")
    for i, col in enumerate(data.get("drop", [])):
        missing(col, ("data", "drop", i), "dropped column")
    for i, col in enumerate(feats.get("one_hot", [])):
        missing(col, ("features", "one_hot", i), "one-hot column")
    for col in feats.get("ordinal", {}):
        missing(col, ("features", "ordinal", col), "ordinal column", key=True)
    dropped = set(data.get("drop", []))
    for i, col in enumerate(feats.get("drop_encoded", [])):
        producers = [c for c in feats.get("one_hot", []) if col.startswith(c + "_")]
        if not producers and col not in all_cols:
            err(
                "FF504",
                f"drop_encoded column {col!r} is not produced by any encoding",
                ("features", "drop_encoded", i),
                hint="one-hot columns are named <column>_<value in lower case>",
            )
        elif col in dropped:
            err("FF504", f"{col!r} is already dropped before encoding", ("features", "drop_encoded", i))


def _check_facet(
    bias: BiasConfig,
    data: DataConfig,
    feats: FeaturesConfig,
    headers: dict[str, list[str]] | None,
    base_dir: Path,
    err: Any,
    warn: Any,
) -> None:
    facet, one_hot = bias["facet"], feats.get("one_hot", [])
    path = ("bias", "facet")
    if facet == data["label"]:
        err("FF503", "the bias facet cannot be the label", path)
        return
    if facet in feats.get("drop_encoded", []) or facet in data.get("drop", []):
        err("FF503", f"bias facet {facet!r} is dropped before training", path)
        return
    producers = [c for c in one_hot if facet.startswith(c + "_")]
    raw_kept = (
        headers is not None
        and any(facet in cols for cols in headers.values())
        and facet not in one_hot
        and facet not in feats.get("ordinal", {})
    )
    if not producers:
        if headers is None or raw_kept:
            if headers is None and not raw_kept:
                warn("FF503", f"bias facet {facet!r} cannot be checked without the data", path)
            return
        hint = "a facet is a model column: a numeric column, or <column>_<value> of a one-hot column"
        if one_hot:
            hint += f" (one-hot columns: {', '.join(one_hot)})"
        err("FF503", f"bias facet {facet!r} is not a column the encodings produce", path, hint=hint)
        return
    if headers is None:
        return
    column = max(producers, key=len)
    values, complete = _column_values(column, data["sources"], headers, base_dir, data.get("format"))
    if values is None:
        return
    produced = {dummy_name(column, v) for v in csv_categories(values)}
    missing_fill = feats.get("missing", {}).get("categorical")
    if missing_fill is not None:
        produced.add(dummy_name(column, missing_fill))
    if facet not in produced:
        options = sorted(produced)
        close = difflib.get_close_matches(facet, options, n=1, cutoff=0.6)
        text = (
            f"bias facet {facet!r} is not produced by one-hot encoding {column!r} "
            f"(it produces {', '.join(options[:12])})"
        )
        suggestion = f"did you mean {close[0]!r}?" if close else None
        if complete:
            err("FF503", text, path, hint=suggestion)
        else:
            warn("FF503", text + f" in the first {FACET_SCAN_ROWS} rows", path, hint=suggestion)


@functools.cache
def missing_words() -> frozenset[str]:
    """The cell texts preprocess reads as missing: its NA_VALUES, read from the script's source (the one list;
    importing the script would import pandas into validate)."""
    from fraudflow.plan import STEP_CODE

    tree = ast.parse((STEP_CODE / "preprocess.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "NA_VALUES" for t in node.targets):
            return frozenset(ast.literal_eval(node.value))
    raise LookupError("step_code/preprocess.py defines no NA_VALUES")  # pragma: no cover - a packaging error


def _column_values(
    column: str,
    sources: dict[str, str],
    headers: dict[str, list[str]],
    base_dir: Path,
    fmt: Any = None,
    limit: int = FACET_SCAN_ROWS,
) -> tuple[set[str] | None, bool]:
    for key, cols in headers.items():
        if column in cols:
            uri = sources[key]
            file = Path(uri) if Path(uri).is_absolute() else base_dir / uri
            idx = cols.index(column)
            values: set[str] = set()
            try:
                if not file.is_file():
                    return None, False  # a folder: the facet is checked when the pipeline runs
                if _kit().file_format(file, _declared_format(fmt, key), uri) == "parquet":
                    return (
                        None,
                        False,
                    )  # values need pyarrow and pandas (seconds): checked when the run reads them
                with _kit().open_text(file) as fh:
                    reader = csv.reader(_bounded_lines(fh))
                    next(reader, None)
                    for n, row in enumerate(reader):
                        if n >= limit:
                            return values, False
                        if idx < len(row) and row[idx] not in missing_words():
                            values.add(row[idx])
            except (OSError, UnicodeDecodeError, EOFError, csv.Error):
                return None, False
            return values, True
    return None, False


def _bounded_lines(fh: Any) -> Any:
    """The file's lines; a line longer than MAX_HEADER_CHARS is a csv.Error (never read whole into memory)."""
    while True:
        line = fh.readline(MAX_HEADER_CHARS)
        if not line:
            return
        if len(line) >= MAX_HEADER_CHARS and not line.endswith(("\n", "\r")):
            raise csv.Error(f"a line longer than {MAX_HEADER_CHARS} characters")
        yield line


def _get(cfg: Mapping[str, Any], parts: list[str]) -> Any:
    node: Any = cfg
    for p in parts:
        if not isinstance(node, dict) or p not in node:
            return None
        node = node[p]
    return node
