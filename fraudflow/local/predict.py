"""`fraudflow predict`: batch scoring of raw claims with a registered version's own preprocessing and model.

The rows come from the pipeline's own sources (the first streamed in chunks, the others joined onto each chunk
as `data.join` joins them), or from files named with `--source NAME=PATH`. Each chunk is encoded by the
version's snapshot of preprocess.transform and scored by its booster, exactly as `fraudflow serve` and the
SageMaker endpoint do (step_code/inference.py, loaded by fraudflow/local/serving/model.py): no second copy of
the encoding exists. Output: the base source's key columns (the join keys, then every `--keep COL`), then
`probability` and `decision` (1 when probability >= the version's decision threshold), as CSV or Parquet
(by the output's extension), written to a temporary file and renamed when complete.

Memory: one chunk of the base source at a time, plus the joined sources' lookup tables, read with only the
columns the model reads (categorical ones as pandas categoricals: a few bytes a row).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from fraudflow.errors import UsageError, UserError
from fraudflow.local.serving.model import LoadedModel

E_SOURCE = "FF920"  # --source / --keep / -o mistakes (usage)
E_INPUT = "FF921"  # an input file cannot be read (missing, not CSV, malformed, no header)
E_ROW = "FF922"  # a row cannot be encoded by the version's preprocessing
E_MODEL = "FF923"  # no version to score with (no deploy section, no endpoint)
E_COLUMN = "FF924"  # a key or --keep column is not in the source
E_KEY = "FF925"  # a joined source repeats a join key
E_OUTPUT = "FF926"  # the output cannot be written
CHUNK_ROWS = 100_000
OUTPUT_COLUMNS = ("probability", "decision")  # the names step_code/inference.py answers records with
_PROGRESS_EVERY = 2.0  # seconds between progress lines


@dataclass
class Source:
    name: str
    files: list[Path]
    shown: list[str]


@dataclass
class Join:
    keys: list[str]
    how: str
    lookups: list[tuple[str, pd.DataFrame]] = field(default_factory=list)  # indexed by the keys


# ---------------------------------------------------------------------------------------------- command


def command(args: argparse.Namespace) -> int:
    from fraudflow.spec.load import load_one

    spec = load_one(args.file, env=args.env, overrides=args.overrides, pipeline=args.pipeline)
    output = Path(args.output)
    writer_kind = _output_kind(output)
    sources = _sources(dict(spec.config["data"]["sources"]), args.sources)
    model = resolve_model(spec.workspace / ".fraudflow", spec.config, args.model_version, args.endpoint)
    join_cfg: dict[str, Any] = dict(spec.config["data"].get("join") or {})
    on = join_cfg.get("on")
    keys = [str(k) for k in on] if isinstance(on, list) else ([str(on)] if on else [])
    keep = list(dict.fromkeys([*keys, *args.keep]))
    stats = score_to_file(
        model,
        sources,
        Join(keys, str(join_cfg.get("how", "left"))),
        keep=keep,
        explicit_keep=list(args.keep),
        output=output,
        kind=writer_kind,
        chunk_rows=args.chunk_rows,
        progress=sys.stderr,
    )
    print(
        f"fraudflow: scored {stats['rows']:,} rows with {model.ref} in {stats['seconds']:.1f}s "
        f"({stats['rows'] / max(stats['seconds'], 1e-9):,.0f} rows/s); {stats['positive']:,} at or above "
        f"the decision threshold {model.decision_threshold:g} → {output}",
        file=sys.stderr,
    )
    return 0


def _output_kind(output: Path) -> str:
    suffix = output.suffix.lower()
    if suffix in (".csv", ".txt"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UsageError.single(
                E_SOURCE,
                f"-o {output}: Parquet output needs pyarrow",
                hint="pip install 'fraudflow[parquet]'",
            ) from None
        return "parquet"
    raise UsageError.single(
        E_SOURCE, f"-o {output}: the extension says neither CSV nor Parquet", hint="name it .csv or .parquet"
    )


def _sources(configured: dict[str, str], overrides: list[str]) -> list[Source]:
    """The pipeline's sources in order (the first is the base), each `--source NAME=PATH` replacing one."""
    paths = dict(configured)
    for item in overrides:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UsageError.single(
                E_SOURCE, f"--source {item!r} is not NAME=PATH", hint="e.g. claims=new.csv"
            )
        if name not in paths:
            raise UsageError.single(
                E_SOURCE,
                f"--source {name}: the pipeline has no source of that name",
                hint=f"its sources: {', '.join(configured)}",
            )
        paths[name] = str(Path(path).resolve())
    return [_source_files(name, uri) for name, uri in paths.items()]


def _source_files(name: str, uri: str) -> Source:
    if uri.startswith("s3://"):
        raise UserError.single(
            E_INPUT,
            f"source {name!r} is on S3 ({uri}); predict reads local files",
            hint="download it, or pass a local copy with --source NAME=PATH",
        )
    path = Path(uri)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    elif path.is_file():
        files = [path]
    elif Path(uri + ".csv").is_file():
        files = [Path(uri + ".csv")]
    else:
        raise UserError.single(E_INPUT, f"source {name!r}: no such file or folder", file=uri)
    if not files:
        raise UserError.single(E_INPUT, f"source {name!r}: the folder holds no files", file=uri)
    return Source(name, files, [str(f) for f in files])


def resolve_model(state_dir: Path, config: Any, version: str | None, endpoint: str | None) -> LoadedModel:
    """--version GROUP:V, else the version the endpoint serves (--endpoint, else the pipeline's deploy
    endpoint); with several variants, the one with the largest weight (the first of equals)."""
    from fraudflow.local.registry import Registry
    from fraudflow.local.serving.app import parse_version_ref
    from fraudflow.local.serving.model import load_model

    ref = parse_version_ref(version) if version is not None else None
    if endpoint is None and ref is None:
        endpoint = (config.get("deploy") or {}).get("endpoint_name")
        if endpoint is None:
            raise UsageError.single(
                E_MODEL,
                "the pipeline has no deploy section: no endpoint names the version to score with",
                hint="choose one: --version GROUP:VERSION (see `fraudflow registry list`)",
            )
    if not (state_dir / "registry.db").is_file():
        raise UserError.single(
            E_MODEL, f"no registry in {state_dir}", hint="run the pipeline first (`fraudflow run`)"
        )
    registry = Registry(state_dir)
    try:
        if ref is not None:
            mv = registry.get(*ref)
        else:
            assert endpoint is not None
            variants = registry.get_endpoint(endpoint).variants
            best = max(variants, key=lambda v: v.weight)  # max keeps the first of equal weights
            mv = registry.get(best.group, best.version)
    finally:
        registry.close()
    model = load_model(mv)
    if model.transform is None:
        raise UserError.single(
            E_MODEL,
            f"{model.ref} has no feature schema or preprocess code: it cannot encode raw claims",
            file=str(mv.artifact_dir),
        )
    booster: Any = model.booster  # an xgboost.Booster
    booster.set_param({"nthread": os.cpu_count() or 1})  # batches: every core (serving uses one)
    return model


# ---------------------------------------------------------------------------------------------- reading


def _read_options(model: LoadedModel) -> dict:
    """pandas' CSV options as the version's preprocess.py reads its training data (missing-value spellings,
    exact floats)."""
    g = getattr(model.transform, "__globals__", {})
    opts: dict = {"keep_default_na": False}
    if "NA_VALUES" in g:
        opts["na_values"] = g["NA_VALUES"]
    opts.update(g.get("EXACT_FLOATS", {}))
    return opts


def _header(path: Path, shown: str) -> list[str]:
    try:
        return [str(c) for c in pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns]
    except pd.errors.EmptyDataError:
        raise UserError.single(E_INPUT, "the file is empty (no header)", file=shown) from None
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise UserError.single(E_INPUT, f"not a readable CSV file: {_first_line(exc)}", file=shown) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1][:300] if text else type(exc).__name__


def _categorical(model: LoadedModel) -> set[str]:
    schema = model.schema or {}
    return {str(c) for part in ("ordinal", "one_hot") for c in (schema.get(part) or {})}


def _lookup(source: Source, keys: list[str], wanted: set[str], model: LoadedModel) -> pd.DataFrame:
    """A joined source as a table indexed by the join keys, holding only the columns the model reads."""
    frames: list[pd.DataFrame] = []
    cats = _categorical(model)
    for path, shown in zip(source.files, source.shown, strict=True):
        header = _header(path, shown)
        for k in keys:
            if k not in header:
                raise UserError.single(
                    E_COLUMN,
                    f"join key {k!r} (data.join.on) is not in source {source.name!r}",
                    file=shown,
                    line=1,
                )
        cols = [c for c in header if c in wanted or c in keys]
        dtypes = {c: "category" for c in cols if c in cats}
        try:
            frame = pd.read_csv(
                path, usecols=cols, dtype=dtypes, encoding="utf-8-sig", **_read_options(model)
            )
        except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
            raise UserError.single(E_INPUT, f"malformed CSV: {_first_line(exc)}", file=shown) from None
        frame["__ff_line"] = np.arange(2, len(frame) + 2)
        frame["__ff_file"] = len(frames)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    for c in cols:
        if c in cats and not isinstance(table[c].dtype, pd.CategoricalDtype):
            table[c] = table[c].astype("category")  # files of one source with different categories
    table = table[~table[keys].isna().any(axis=1)]  # a missing key matches nothing, as in preprocess
    dup = table.duplicated(keys, keep=False)
    if dup.any():
        rows = table[dup]
        first = rows.iloc[0]
        value = ", ".join(str(first[k]) for k in keys)
        raise UserError.single(
            E_KEY,
            f"join key {'/'.join(keys)}={value} appears {int((rows[keys] == first[keys]).all(axis=1).sum())} "
            f"times in source {source.name!r}: joining would multiply the claims scored",
            file=source.shown[int(first["__ff_file"])],
            line=int(first["__ff_line"]),
            hint="one row per key in a joined source, as the pipeline's preprocess step requires",
        )
    return table.drop(columns=["__ff_line", "__ff_file"]).set_index(keys)


def _chunks(
    source: Source, usecols: set[str], text_cols: set[str], model: LoadedModel, rows: int
) -> Iterator:
    """(file shown, first data line, chunk) for the base source, in order."""
    opts = _read_options(model)
    for path, shown in zip(source.files, source.shown, strict=True):
        header = _header(path, shown)
        cols = [c for c in header if c in usecols]
        reader = pd.read_csv(
            path,
            usecols=cols,
            dtype={c: str for c in cols if c in text_cols},
            chunksize=rows,
            encoding="utf-8-sig",
            **opts,
        )
        line = 2
        with reader:
            while True:
                try:
                    chunk = next(reader)
                except StopIteration:
                    break
                except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
                    raise UserError.single(
                        E_INPUT, f"malformed CSV: {_first_line(exc)}", file=shown
                    ) from None
                yield shown, header, line, chunk
                line += len(chunk)


def _join(chunk: pd.DataFrame, join: Join) -> pd.DataFrame:
    out = chunk
    for _, table in join.lookups:
        probe = out[join.keys].copy()
        for k in join.keys:  # the base's key read as text: compare it the way the lookup's key was read
            kind = table.index.get_level_values(k).dtype
            if pd.api.types.is_numeric_dtype(kind):
                probe[k] = pd.to_numeric(probe[k], errors="coerce")
        probe.index = out.index
        matched = probe.join(table, on=join.keys, how=join.how).drop(columns=join.keys)
        out = out.loc[matched.index].join(matched)
    return out


# ---------------------------------------------------------------------------------------------- scoring


def score_frame(model: LoadedModel, frame: pd.DataFrame) -> np.ndarray:
    """Probabilities of raw rows with the version's own preprocess.transform and booster."""
    x = np.ascontiguousarray(np.asarray(model.transform(frame, model.schema), dtype=np.float64))  # type: ignore[misc]
    if x.shape != (len(frame), model.n_features):
        raise RuntimeError(
            f"preprocess produced {x.shape} for {len(frame)} rows of {model.n_features} features"
        )
    return model.predict(x)


def _bad_row(model: LoadedModel, frame: pd.DataFrame) -> int:
    """The position of the first row that fails to encode on its own (bisection: O(log n) encodings)."""
    lo, hi = 0, len(frame)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            model.transform(frame.iloc[lo:mid], model.schema)  # type: ignore[misc]
        except Exception:
            hi = mid
        else:
            lo = mid
    return lo


def _row_error(
    model: LoadedModel, frame: pd.DataFrame, exc: Exception, shown: str, header: list[str]
) -> UserError:
    pos = _bad_row(model, frame)
    line = int(frame["__ff_line"].iloc[pos])
    column = getattr(exc, "column", None)
    message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
    return UserError.single(
        E_ROW,
        f"this row cannot be encoded by {model.ref}'s preprocessing: {message}",
        file=shown,
        line=line,
        column=header.index(column) + 1 if column in header else None,
        hint="fix the value, or drop the row; the version encodes a column as it was encoded in training",
    )


def score_to_file(
    model: LoadedModel,
    sources: list[Source],
    join: Join,
    *,
    keep: list[str],
    explicit_keep: list[str],
    output: Path,
    kind: str,
    chunk_rows: int = CHUNK_ROWS,
    progress: IO[str] | None = None,
) -> dict:
    if chunk_rows < 1:
        raise UsageError.single(E_SOURCE, f"--chunk-rows {chunk_rows}: needs at least 1")
    base, joined = sources[0], sources[1:]
    if joined and not join.keys:
        raise UserError.single(E_COLUMN, "data.join.on is required to join several sources")
    wanted = set(model.raw_columns)
    join.lookups = [(s.name, _lookup(s, join.keys, wanted, model)) for s in joined]
    header = _header(base.files[0], base.shown[0])
    for c in keep:
        if c not in header:
            what = "--keep column" if c in explicit_keep else "join key (data.join.on)"
            raise UserError.single(
                E_COLUMN, f"{what} {c!r} is not in source {base.name!r}", file=base.shown[0], line=1
            )
    key_cols = [c for c in keep if c not in wanted]
    usecols = wanted | set(keep)
    tmp = output.with_name(f".{output.name}.partial-{os.getpid()}")
    start = last = time.monotonic()
    stats = {"rows": 0, "positive": 0, "seconds": 0.0}
    try:
        with _writer(tmp, kind, [*keep, *OUTPUT_COLUMNS]) as write:
            for shown, head, line, chunk in _chunks(base, usecols, set(key_cols), model, chunk_rows):
                chunk["__ff_line"] = np.arange(line, line + len(chunk))
                frame = _join(chunk, join) if join.lookups else chunk
                try:
                    scores = score_frame(model, frame)
                except Exception as exc:
                    raise _row_error(model, frame, exc, shown, head) from None
                decisions = (scores >= model.decision_threshold).astype("int64")
                out = pd.DataFrame({c: frame[c].to_numpy() for c in keep})
                out[OUTPUT_COLUMNS[0]] = scores
                out[OUTPUT_COLUMNS[1]] = decisions
                write(out)
                stats["rows"] += len(out)
                stats["positive"] += int(decisions.sum())
                now = time.monotonic()
                if progress is not None and now - last >= _PROGRESS_EVERY:
                    last = now
                    rate = stats["rows"] / max(now - start, 1e-9)
                    print(
                        f"fraudflow: scored {stats['rows']:,} rows ({rate:,.0f} rows/s)",
                        file=progress,
                        flush=True,
                    )
        os.replace(tmp, output)
    except OSError as exc:
        raise UserError.single(
            E_OUTPUT, f"cannot write the output: {exc.strerror or exc}", file=str(output)
        ) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    stats["seconds"] = time.monotonic() - start
    return stats


@contextlib.contextmanager
def _writer(path: Path, kind: str, columns: list[str]) -> Iterator:
    """A function writing one chunk at a time: CSV (header once) or Parquet (one row group a chunk)."""
    if kind == "csv":
        with open(path, "w", encoding="utf-8", newline="") as fh:
            first = [True]

            def write_csv(frame: pd.DataFrame) -> None:
                frame.to_csv(fh, header=first[0], index=False, lineterminator="\n")
                first[0] = False

            yield write_csv
            if first[0]:  # no rows at all: still a header
                fh.write(",".join(columns) + "\n")
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    state: dict[str, Any] = {}

    def write_parquet(frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if "writer" not in state:
            state["writer"] = pq.ParquetWriter(str(path), table.schema)
        else:
            table = table.cast(state["writer"].schema)
        state["writer"].write_table(table)

    try:
        yield write_parquet
    finally:
        if "writer" in state:
            state["writer"].close()
