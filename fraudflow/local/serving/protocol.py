"""SageMaker's inference payloads: decode a request body into a numeric matrix (or raw records), encode the
predictions. Everything a client can get wrong raises `BadRequest` with an HTTP status and a plain message.

Accepted bodies (encoded features are in model order, as SageMaker's XGBoost container takes them):
- text/csv: header-less rows, one per line; an empty field is a missing value (NaN), as in the container.
- application/json: {"instances": [[f1, f2, ...], ...]}, {"instances": [{"features": [...]}, ...]}
  (SageMaker's common JSON format), {"features": [...]} (one row), or raw claim records
  {"records": [{column: value, ...}, ...]} which the server encodes with the training run's preprocessing.

The request-parsing rules are plain functions of bytes and parsed documents (no server, no fraudflow import),
so that another front end (the SageMaker inference script) can apply exactly the same ones:
`parse_csv`, `parse_json`, `json_rows`, `json_records`, `records_frame`. Every accepted request gets one
answer per row or record; a record at fault is named by its index (`records[i]`, `"record": i` in the body).
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np

MAX_BODY = 6 * 1024 * 1024  # SageMaker real-time endpoints' payload limit
MAX_RECORDS = 1000
CSV, JSON = "text/csv", "application/json"
_SHOWN = 60  # characters of a client's value quoted back in a message
_FLOAT_MAX = sys.float_info.max


class BadRequest(Exception):
    """A client error: HTTP status, SageMaker-style error name, message; `ff_code` and `record` when known."""

    def __init__(
        self, status: int, code: str, message: str, *, ff_code: str | None = None, record: int | None = None
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.ff_code, self.record = ff_code, record


def shown(value: object, limit: int = _SHOWN) -> str:
    """A client's value quoted for a message: short, one line, and never the repr of a container (a deeply
    nested list's repr can itself recurse too deep)."""
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return f"an object of {len(value)} keys"
    if isinstance(value, TooLargeNumber):
        return str(value)
    return clip(repr(value) if isinstance(value, str) else str(value), limit)


def clip(text: str, limit: int) -> str:
    """Plain text cut to `limit` characters (an error message never grows with the request)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def choose_accept(accept: str | None, default: str) -> str:
    """Pick the response type from an Accept header; only CSV and JSON are produced."""
    if not accept:
        return default
    kinds = [media_type(a) for a in accept.split(",")]
    for k in kinds:
        if k in (CSV, JSON):
            return k
        if k in ("*/*", "text/*", "application/*", ""):
            return default
    raise BadRequest(
        406, "NotAcceptable", f"cannot produce {shown(accept)}: accept text/csv or application/json"
    )


# ---------------------------------------------------------------------------------------------------- CSV


def parse_csv(body: bytes, n_features: int) -> np.ndarray:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(400, "MalformedCSV", "the CSV body is not UTF-8 text") from None
    lines = [ln for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if ln.strip()]
    if not lines:
        raise BadRequest(400, "EmptyBody", "the request body holds no rows")
    for i, ln in enumerate(lines, 1):  # count before splitting: a wrong width costs no field strings
        width = ln.count(",") + 1
        if width != n_features:
            raise BadRequest(
                400,
                "WrongFeatureCount",
                f"CSV row {i} has {width} values; the model takes {n_features} encoded features "
                "(header-less, label omitted)",
            )
    rows = [ln.split(",") for ln in lines]
    del lines
    try:  # fast path: numpy parses the whole block at once
        return np.array(rows, dtype=np.float64)
    except ValueError:
        pass
    out = np.empty((len(rows), n_features), dtype=np.float64)
    for i, r in enumerate(rows):
        for j, v in enumerate(r):
            v = v.strip()
            if v == "":
                out[i, j] = math.nan  # the container reads an empty field as missing
                continue
            try:
                out[i, j] = float(v)
            except ValueError:
                raise BadRequest(
                    400, "NonNumeric", f"CSV row {i + 1}, column {j + 1}: {shown(v, 40)} is not a number"
                ) from None
    return out


# --------------------------------------------------------------------------------------------------- JSON


class TooLargeNumber:
    """An integer literal outside float64's range, kept as a marker so that the check that meets it can
    name where it is (`json_rows`, `json_records`) instead of failing the whole parse anonymously."""

    __slots__ = ("digits",)

    def __init__(self, digits: int):
        self.digits = digits

    def __str__(self) -> str:
        return f"an integer of {self.digits} digits"


def _parse_int(text: str) -> int | TooLargeNumber:
    if len(text) < 300:  # every such integer converts to a float (max ~1.8e308): the fast path
        return int(text)
    digits = len(text.lstrip("-"))
    try:
        value = int(text)  # over 4,300 digits Python refuses the conversion itself (ValueError)
        float(value)
    except (ValueError, OverflowError):
        return TooLargeNumber(digits)
    return value


def parse_json(body: bytes) -> object:
    """Parse a JSON body. Integers too large for a float become `TooLargeNumber` markers (refused, located,
    by the checks below); NaN and Infinity tokens are accepted as Python's json reads them (missing, inf)."""
    try:
        return json.loads(body, parse_int=_parse_int)
    except RecursionError:
        raise BadRequest(
            400,
            "JSONTooDeep",
            "the JSON body is nested too deeply (a request needs at most 3 levels)",
            ff_code="FF857",
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(400, "MalformedJSON", f"the body is not valid JSON: {clip(str(exc), 200)}") from None


def _number_error(value: object, where: str, *, record: int | None = None) -> BadRequest:
    if isinstance(value, TooLargeNumber):
        return BadRequest(
            400,
            "NumberOutOfRange",
            f"{where}: {value} does not fit a 64-bit float",
            ff_code="FF858",
            record=record,
        )
    return BadRequest(400, "NonNumeric", f"{where}: {shown(value)} is not a number", record=record)


def json_rows(doc: object, n_features: int) -> np.ndarray:
    """Encoded feature rows from a parsed JSON document (not the `records` form)."""
    if isinstance(doc, dict) and "instances" in doc:
        inst = doc["instances"]
        if not isinstance(inst, list) or not inst:
            raise BadRequest(400, "InvalidInput", '"instances" must be a non-empty list of rows')
        rows = [r["features"] if isinstance(r, dict) and "features" in r else r for r in inst]
    elif isinstance(doc, dict) and "features" in doc:
        rows = [doc["features"]]
    else:
        raise BadRequest(
            400,
            "InvalidInput",
            'JSON body must be {"instances": [[...], ...]}, {"features": [...]} or {"records": [{...}, ...]}',
        )
    for i, r in enumerate(rows, 1):
        if not isinstance(r, list):
            raise BadRequest(400, "InvalidInput", f"row {i} is not a list of numbers")
        if len(r) != n_features:
            raise BadRequest(
                400, "WrongFeatureCount", f"row {i} has {len(r)} values; the model takes {n_features}"
            )
        for j, v in enumerate(r, 1):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise _number_error(v, f"row {i}, feature {j}")
    return np.array([[math.nan if v is None else v for v in r] for r in rows], dtype=np.float64)


def is_records(doc: object) -> bool:
    return isinstance(doc, dict) and "records" in doc


def json_records(doc: dict) -> list[dict]:
    """The `records` list, checked: 1..MAX_RECORDS objects whose values are strings, numbers, booleans or
    null. Keys are not checked here: only the model's known columns are ever read (`records_frame`)."""
    recs = doc["records"]
    if not isinstance(recs, list) or not recs:
        raise BadRequest(400, "InvalidInput", '"records" must be a non-empty list of objects')
    if len(recs) > MAX_RECORDS:
        raise BadRequest(413, "TooManyRecords", f"{len(recs)} records: at most {MAX_RECORDS} a request")
    for i, r in enumerate(recs):
        if not isinstance(r, dict):
            raise record_error(i, f"is {shown(r)}, not a JSON object")
        for k, v in r.items():
            if v is None or isinstance(v, (str, bool, int, float)):
                continue
            if isinstance(v, TooLargeNumber):
                raise _number_error(v, f"records[{i}][{shown(k, 40)}]", record=i)
            raise record_error(i, f"is {shown(v)}: values must be strings, numbers or null", key=k)
    return recs


def record_error(index: int, problem: str, *, key: str | None = None) -> BadRequest:
    """The 400 for one record at fault, named by its index in `records` (and the key, when one is)."""
    where = f"records[{index}]" + (f"[{shown(key, 40)}]" if key is not None else "")
    return BadRequest(400, "InvalidRecords", f"{where} {problem}", ff_code="FF859", record=index)


def records_frame(records: list[dict], columns: list[str]):
    """A DataFrame of exactly len(records) rows holding only `columns` (the model's raw input columns): an
    absent key is a missing value, an unknown key is never read, so neither empty records nor thousands of
    distinct keys change the work or memory a request takes (it is O(records x known columns))."""
    import pandas as pd

    n = len(records)
    data = {c: [r.get(c) for r in records] for c in columns}
    return pd.DataFrame(data, index=pd.RangeIndex(n), columns=list(columns))


# ------------------------------------------------------------------------------------------------ answers


def encode_scores(scores: np.ndarray, accept: str, extra: dict) -> bytes:
    if accept == CSV:
        return ("\n".join(repr(float(s)) for s in scores) + "\n").encode()
    return json.dumps({"predictions": [{"score": float(s)} for s in scores], **extra}).encode()


def encode_decisions(scores: np.ndarray, threshold: float, accept: str, extra: dict) -> bytes:
    decisions = (scores >= threshold).astype(int)
    if accept == CSV:
        return "".join(f"{float(s)!r},{int(d)}\n" for s, d in zip(scores, decisions, strict=True)).encode()
    preds = [{"probability": float(s), "decision": int(d)} for s, d in zip(scores, decisions, strict=True)]
    return json.dumps({"predictions": preds, "decision_threshold": threshold, **extra}).encode()
