"""The helpers every step script shares: the error it reports, the config reader, argument errors, atomic output
writing and the script entry point's error handling.

Shipped beside the scripts to both backends (fraudflow run imports it from step_code/; SageMaker's processing
code folder, training's sourcedir.tar.gz and the model's code/ hold it next to them), so a script says
`import stepkit` as a sibling module. Standard library only, Python 3.8 syntax: it runs in the containers' old
images. It emits no error code of its own: each caller passes the code of its own range.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib.util
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn


class StepError(Exception):
    """A problem with the user's data or config: reported as `error[CODE]: file:line: message`, never a traceback."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: str | int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.ff_code, self.message, self.file, self.line, self.column, self.hint = (
            code,
            message,
            file,
            line,
            column,
            hint,
        )

    def render(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line is not None else "") + ": "
        text = f"error[{self.ff_code}]: {where}{self.message}"
        return text + (f"\n  hint: {self.hint}" if self.hint else "")


class Parser(argparse.ArgumentParser):
    """argparse that raises a StepError with the step's config code instead of exiting the process."""

    def __init__(self, code: str, description: str | None = None) -> None:
        super().__init__(description=description, allow_abbrev=False)
        self.ff_code = code

    def error(self, message: str) -> NoReturn:  # argparse would sys.exit; a step must return
        raise StepError(self.ff_code, f"bad arguments: {message}")


def read_config(path: str, code: str) -> dict:
    """The step's config.json as a dict; a missing file, bad JSON or a non-object is a StepError `code`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StepError(code, "config file not found", file=path) from None
    except json.JSONDecodeError as exc:
        raise StepError(code, f"config is not valid JSON: {exc.msg}", file=path, line=exc.lineno) from None
    if not isinstance(data, dict):
        raise StepError(code, "config must be a JSON object", file=path)
    return data


def publish(output_dir: Path, write: Callable[[Path], None]) -> None:
    """Write into a temporary folder, then move it into place: a failed step leaves nothing behind."""
    output_dir = Path(output_dir)
    if not output_dir.exists():
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.tmp-", dir=output_dir.parent))
        try:
            write(tmp)
            os.replace(tmp, output_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return
    # SageMaker creates the output folders beforehand: stage inside, then move each entry into place.
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=output_dir))
    try:
        write(tmp)
        for entry in sorted(tmp.iterdir()):
            dest = output_dir / entry.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            elif dest.exists() or dest.is_symlink():
                dest.unlink()
            os.replace(entry, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def entry(argv: list[str] | None, work: Callable[[], int]) -> int:
    """A script's main: called with an argument list (the local runner), a StepError propagates to the caller;
    run as a script (argv None) it is printed as `error[CODE]: file:line: message` and 2 is returned."""
    try:
        return work()
    except StepError as exc:
        if argv is not None:
            raise
        print(exc.render(), file=sys.stderr)
        return 2


# ---------------------------------------------------------------------------------------------- data sources
# One reader of source headers for preprocess and `fraudflow validate` (which loads this file with
# fraudflow.stepcode.load_file, so validate never imports pandas). Standard library only, Parquet schemas too.

# A CSV header is one line of column names: a first line longer than this is not a header (or not a CSV file).
MAX_HEADER_CHARS = 1 << 20
HEADER_CHUNK = 1 << 16
FORMATS = ("csv", "parquet")
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_SUFFIXES = (".parquet", ".pq")


class HeaderTooLong(ValueError):
    """The first line does not end within MAX_HEADER_CHARS characters (callers turn it into their own code)."""


def file_format(path: Path, declared: str | None = None, shown: str | None = None) -> str:
    """'csv' or 'parquet': the declared `format`, else the name's extension (the file's, or the name the user
    gave it: the local runner links sources under their bare names), else the file's first bytes."""
    if declared in FORMATS:
        return str(declared)
    for name in (str(path), shown or ""):
        lower = name.lower()
        if lower.endswith(PARQUET_SUFFIXES):
            return "parquet"
        if lower.endswith((".csv", ".csv.gz", ".gz", ".txt")):
            return "csv"
    with open(path, "rb") as fh:
        return "parquet" if fh.read(4) == PARQUET_MAGIC else "csv"


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def open_text(path: Path) -> Any:
    """A CSV file as text, gunzipped when it starts with gzip's magic bytes (whatever its name)."""
    if is_gzip(path):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, newline="", encoding="utf-8-sig")


def read_header(path: Path) -> tuple[list[str], int]:
    """The header row of a CSV file (optionally gzip) as pandas reads it and the line it starts on, reading only
    as far as it goes and never past MAX_HEADER_CHARS characters. Raises HeaderTooLong, csv.Error,
    UnicodeDecodeError, OSError."""
    text = ""
    with open_text(path) as fh:
        while len(text) < MAX_HEADER_CHARS:
            chunk = fh.read(HEADER_CHUNK)
            text += chunk
            found = first_row(text, eof=len(chunk) < HEADER_CHUNK)
            if found is not None:
                return found
    raise HeaderTooLong(str(path))


def first_row(text: str, eof: bool) -> tuple[list[str], int] | None:
    """The first non-empty CSV record of `text` and the line it starts on, once it is complete (its last line
    ended, or the file did); None while more text is needed. Blank lines are skipped, as pandas skips them."""
    lines = io.StringIO(text, newline="").readlines()
    reader = csv.reader(iter(lines))
    start = 1  # a quoted name may span lines: the record starts here
    try:
        for row in reader:
            if row:
                ended = lines[reader.line_num - 1].endswith(("\n", "\r"))
                return (row, start) if ended or eof else None
            start = reader.line_num + 1
    except csv.Error:
        if eof:
            raise
        return None  # e.g. a quote still open at the end of what was read
    return ([], 1) if eof else None


MAX_PARQUET_FOOTER = 64 << 20  # a larger footer is not a footer


def parquet_columns(path: Path) -> list[str]:
    """A Parquet file's top-level column names, from its footer's schema (no rows, no pyarrow: validate and
    preprocess read the schema alike, stdlib only). Raises ValueError for a file that is not Parquet. pandas'
    stored index columns (__index_level_N__) are left out, as pandas.read_parquet leaves them out of columns."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        if size < 12:
            raise ValueError("too short for Parquet")
        fh.seek(size - 8)
        tail = fh.read(8)
        length = int.from_bytes(tail[:4], "little")
        if tail[4:] != PARQUET_MAGIC or not 0 < length <= min(size - 12, MAX_PARQUET_FOOTER):
            raise ValueError("no Parquet footer (the file does not end with PAR1)")
        fh.seek(size - 8 - length)
        footer = fh.read(length)
    schema = _Thrift(footer).schema()
    names, i = [], 1
    for _ in range(schema[0][1] if schema else 0):  # the root's children, skipping nested subtrees
        if i >= len(schema):
            raise ValueError("truncated Parquet schema")
        names.append(schema[i][0])
        i = _skip_subtree(schema, i)
    return [n for n in names if not (n.startswith("__index_level_") and n.endswith("__"))]


def _skip_subtree(schema: list, i: int) -> int:
    """The index after schema element i and all its descendants."""
    pending = 1
    while pending:
        if i >= len(schema):
            raise ValueError("truncated Parquet schema")
        pending += schema[i][1] - 1
        i += 1
    return i


class _Thrift:
    """Just enough of Thrift's compact protocol to read FileMetaData.schema: [(name, num_children)]."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise ValueError("truncated Parquet footer")
        self.pos += 1
        return self.data[self.pos - 1]

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 70:
                raise ValueError("bad varint in Parquet footer")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def binary(self) -> bytes:
        n = self.varint()
        if self.pos + n > len(self.data):
            raise ValueError("truncated Parquet footer")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def fields(self) -> Any:
        """(field id, type) of each field of a struct, until its stop byte; the caller reads or skips each."""
        last = 0
        while True:
            head = self.byte()
            if head == 0:
                return
            delta, kind = head >> 4, head & 0x0F
            last = last + delta if delta else self.zigzag()
            yield last, kind

    def skip(self, kind: int) -> None:
        if kind in (1, 2):  # booleans carry their value in the type
            return
        if kind == 3:
            self.byte()
        elif kind in (4, 5, 6):
            self.varint()
        elif kind == 7:
            self.pos += 8
        elif kind == 8:
            self.binary()
        elif kind in (9, 10):
            size, elem = self.list_head()
            for _ in range(size):
                self.byte() if elem in (1, 2) else self.skip(elem)
        elif kind == 11:
            size = self.varint()
            if size:
                types = self.byte()
                for _ in range(size):
                    self.skip(types >> 4)
                    self.skip(types & 0x0F)
        elif kind == 12:
            for _, k in self.fields():
                self.skip(k)
        else:
            raise ValueError(f"unknown Thrift type {kind} in Parquet footer")

    def list_head(self) -> tuple[int, int]:
        head = self.byte()
        size = head >> 4
        return (self.varint() if size == 15 else size), head & 0x0F

    def schema(self) -> list:
        for fid, kind in self.fields():  # FileMetaData
            if fid == 2 and kind == 9:
                size, elem = self.list_head()
                if elem != 12:
                    raise ValueError("bad Parquet schema")
                return [self.element() for _ in range(size)]
            self.skip(kind)
        raise ValueError("Parquet footer without a schema")

    def element(self) -> tuple[str, int]:
        name, children = "", 0
        for fid, kind in self.fields():  # SchemaElement: 4 name, 5 num_children
            if fid == 4 and kind == 8:
                name = self.binary().decode("utf-8")
            elif fid == 5 and kind == 5:
                children = self.zigzag()
            else:
                self.skip(kind)
        return name, children


def read_columns(path: Path, fmt: str) -> tuple[list[str], int]:
    """The column names of a source file and the line they are on (1 for Parquet: its schema)."""
    if fmt == "parquet":
        return parquet_columns(path), 1
    return read_header(path)


def duplicate_column(row: list[str]) -> tuple[int, int] | None:
    """The (first, second) 0-based positions of the first repeated column name, or None. Names are compared as
    written, as pandas compares them; empty names are left to the empty-name check."""
    seen: dict = {}
    for i, column in enumerate(row):
        if column == "":
            continue
        if column in seen:
            return seen[column], i
        seen[column] = i
    return None


# ---------------------------------------------------------------------------------------------- labels


def value_key(value: object) -> str:
    """Canonical text of a label or category value: 1, 1.0, "1" and numpy's 1 are one value; True and "True"
    one; other strings are kept as they are. YAML's `positive: [yes]` and the data's values compare by it."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalar
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        f = float(value)
        return str(int(f)) if f.is_integer() else repr(f)
    return str(value)


def encode_label_values(values: list, positive: list, negative: list | None) -> tuple[list, list]:
    """Label values as the user writes them (bias.label_values: original values, e.g. ["yes"]) -> the encoded
    labels preprocess writes (1: a data.positive value, 0: any other, or only a data.negative one when those are
    listed), and the values in neither class. Clarify and the bias step read the encoded labels."""
    pos = {value_key(v) for v in positive}
    neg = None if negative is None else {value_key(v) for v in negative}
    encoded: list = []
    unknown: list = []
    for v in values:
        k = value_key(v)
        code = 1 if k in pos else 0 if neg is None or k in neg else None
        if code is None:
            unknown.append(v)
        elif code not in encoded:
            encoded.append(code)
    return encoded, unknown


def sibling(name: str) -> ModuleType:
    """Import step_code/<name>.py, shipped beside this file to both backends, once per process. While it
    executes, `import stepkit` in it names this module (fraudflow puts no folder on sys.path)."""
    path = Path(__file__).with_name(f"{name}.py")
    key = f"_ff_step_{name}_{abs(hash(str(path)))}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, path)
        assert spec and spec.loader, path
        module = importlib.util.module_from_spec(spec)
        saved = sys.modules.get("stepkit")
        sys.modules[key], sys.modules["stepkit"] = module, sys.modules[__name__]
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[key]
            raise
        finally:
            if saved is None:
                del sys.modules["stepkit"]
            else:
                sys.modules["stepkit"] = saved
    return sys.modules[key]
