"""SageMaker's inference payloads: decode a request body into a numeric matrix (or raw records), encode the
predictions. Everything a client can get wrong raises `BadRequest` with an HTTP status and a plain message.

Accepted bodies (encoded features are in model order, as SageMaker's XGBoost container takes them):
- text/csv: header-less rows, one per line; an empty field is a missing value (NaN), as in the container.
- application/json: {"instances": [[f1, f2, ...], ...]}, {"instances": [{"features": [...]}, ...]}
  (SageMaker's common JSON format), {"features": [...]} (one row), or raw claim records
  {"records": [{column: value, ...}, ...]} which the server encodes with the training run's preprocessing.
"""

from __future__ import annotations

import json
import math

import numpy as np

MAX_BODY = 6 * 1024 * 1024  # SageMaker real-time endpoints' payload limit
MAX_RECORDS = 1000
CSV, JSON = "text/csv", "application/json"


class BadRequest(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


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
    raise BadRequest(406, "NotAcceptable", f"cannot produce {accept!r}: accept text/csv or application/json")


def parse_csv(body: bytes, n_features: int) -> np.ndarray:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(400, "MalformedCSV", "the CSV body is not UTF-8 text") from None
    lines = [ln for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if ln.strip()]
    if not lines:
        raise BadRequest(400, "EmptyBody", "the request body holds no rows")
    rows = [ln.split(",") for ln in lines]
    for i, r in enumerate(rows, 1):
        if len(r) != n_features:
            raise BadRequest(
                400,
                "WrongFeatureCount",
                f"CSV row {i} has {len(r)} values; the model takes {n_features} encoded features "
                "(header-less, label omitted)",
            )
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
                    400, "NonNumeric", f"CSV row {i + 1}, column {j + 1}: {v[:40]!r} is not a number"
                ) from None
    return out


def parse_json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(400, "MalformedJSON", f"the body is not valid JSON: {exc}") from None


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
                raise BadRequest(400, "NonNumeric", f"row {i}, feature {j}: {v!r} is not a number")
    try:
        return np.array([[math.nan if v is None else v for v in r] for r in rows], dtype=np.float64)
    except (ValueError, OverflowError) as exc:
        raise BadRequest(400, "NonNumeric", f"feature values are not numbers: {exc}") from None


def json_records(doc: dict) -> list[dict]:
    recs = doc["records"]
    if not isinstance(recs, list) or not recs:
        raise BadRequest(400, "InvalidInput", '"records" must be a non-empty list of objects')
    if len(recs) > MAX_RECORDS:
        raise BadRequest(413, "TooManyRecords", f"{len(recs)} records: at most {MAX_RECORDS} a request")
    for i, r in enumerate(recs, 1):
        if not isinstance(r, dict):
            raise BadRequest(400, "InvalidInput", f"record {i} is not a JSON object")
        for k, v in r.items():
            if v is not None and not isinstance(v, (str, int, float, bool)):
                raise BadRequest(
                    400, "InvalidInput", f"record {i}, {k!r}: values must be strings, numbers or null"
                )
    return recs


def is_records(doc: object) -> bool:
    return isinstance(doc, dict) and "records" in doc


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
