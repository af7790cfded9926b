"""Serving: the inference script SageMaker's XGBoost container runs (script mode), and the one implementation of
the invocation protocol `fraudflow serve` speaks (fraudflow/local/serving/protocol.py loads this file).

On SageMaker the model's environment names this file (SAGEMAKER_PROGRAM=inference.py,
SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code): train.py ships it in model.tar.gz under code/, next to the
training run's preprocessing snapshot (preprocess.py), the helpers both import (stepkit.py) and feature schema
(feature_schema.json), so the endpoint encodes raw records exactly as training did. The container calls model_fn once, then input_fn -> predict_fn ->
output_fn per request. Runs on the XGBoost 1.7-1 image (Python 3.8, pandas 1.2, numpy 1.2x, xgboost 1.7):
imports only the standard library, stepkit, numpy, pandas (through preprocess.py) and xgboost, plus, only to answer a
client error through it, the serving stack that calls it (flask or sagemaker_inference, both in the image).

Accepted bodies (encoded features are in model order, as SageMaker's XGBoost container takes them):
- text/csv: header-less rows, one per line; an empty field is a missing value (NaN), as in the container.
- application/json: {"instances": [[f1, f2, ...], ...]}, {"instances": [{"features": [...]}, ...]}
  (SageMaker's common JSON format), {"features": [...]} (one row), or raw claim records
  {"records": [{column: value, ...}, ...]} which are encoded with the training run's preprocess.transform.
Answers: encoded rows -> scores (CSV: one per line; JSON: {"predictions": [{"score": p}]}); records ->
{"predictions": [{"probability": p, "decision": 0|1}], "decision_threshold": t} (CSV: "p,decision" lines).
Every accepted request gets exactly one answer per row or record: a record is read only at the feature schema's
raw input columns (`{}` is a record with every feature missing; unknown keys are never read). Without an Accept
header (or */*) the answer has the request's own type. A client mistake is a 4xx with {"code": ..., "message":
...} (plus "ff_code" and the index "record" of the record at fault, when known), never a 500 (see `reject` for
how each server turns it into a status). The FF857-FF859 codes of those bodies are `fraudflow serve`'s: this is
its implementation too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # typing.TypeGuard is 3.10+; the containers run 3.8/3.9 (annotations stay strings there)
    from typing import TypeGuard

import numpy as np
from stepkit import StepError

E_NO_MODEL = "FF660"  # the model folder has no loadable XGBoost model
E_BUNDLE = "FF661"  # code/feature_schema.json or code/preprocess.py is unreadable
E_THRESHOLD = "FF662"  # FRAUDFLOW_DECISION_THRESHOLD is not a number in [0, 1]

MAX_BODY = 6 * 1024 * 1024  # SageMaker real-time endpoints' payload limit
MAX_RECORDS = 1000
CSV, JSON = "text/csv", "application/json"
MODEL_FILES = ("xgboost-model", "model.json")  # what SageMaker's container loads first, then the JSON copy
CODE_DIR = "code"  # in the model folder: SageMaker's convention for script-mode inference code
SCHEMA_FILE, PREPROCESS_FILE = "feature_schema.json", "preprocess.py"
THRESHOLD_ENV = "FRAUDFLOW_DECISION_THRESHOLD"
E_TOO_DEEP = "FF857"  # the JSON body nests deeper than the parser's recursion limit
E_NUMBER_RANGE = "FF858"  # an integer literal outside float64's range
E_RECORD = "FF859"  # one record at fault, named by its index
_SHOWN = 60  # characters of a client's value quoted back in a message
_FLOAT_DIGITS = len(str(int(np.finfo(np.float64).max)))  # 309: a longer integer literal cannot be a float


class BadRequest(Exception):
    """A client mistake: an HTTP status, a stable code and a plain message; `ff_code` and the index of the
    `record` at fault when known."""

    def __init__(
        self, status: int, code: str, message: str, *, ff_code: str | None = None, record: int | None = None
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.ff_code, self.record = ff_code, record

    def located(self) -> dict:
        out: dict = {}
        if self.ff_code:
            out["ff_code"] = self.ff_code
        if self.record is not None:
            out["record"] = self.record
        return out

    def body(self) -> bytes:
        return json.dumps({"code": self.code, "message": self.message, **self.located()}).encode()


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
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


# ---------------------------------------------------------------------------------------------- request


def media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def request_media(content_type: str | None) -> str:
    media = media_type(content_type)
    if media not in (CSV, JSON):
        raise BadRequest(
            415,
            "UnsupportedMediaType",
            f"content type {shown(content_type)} is not supported: use text/csv or application/json",
        )
    return media


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


class TooLargeNumber:
    """An integer literal outside float64's range, kept as a marker so that the check that meets it can name
    where it is (`json_rows`, `json_records`) instead of failing the whole parse anonymously."""

    __slots__ = ("digits",)

    def __init__(self, digits: int):
        self.digits = digits

    def __str__(self) -> str:
        return f"an integer of {self.digits} digits"


def _parse_int(text: str) -> int | TooLargeNumber:
    digits = len(text) - text.startswith("-")  # JSON has no leading zeros: every digit counts
    if digits < _FLOAT_DIGITS:  # every such integer converts to a float: the fast path
        return int(text)
    if digits > _FLOAT_DIGITS:
        # never converted: int() of a long literal is quadratic on the image's Python 3.8 (no 4,300-digit cap)
        return TooLargeNumber(digits)
    try:
        value = int(text)
        float(value)
    except (ValueError, OverflowError):
        return TooLargeNumber(digits)
    return value


def parse_json(body: bytes) -> object:
    """Parse a JSON body. Integers too large for a float become `TooLargeNumber` markers (refused, located, by
    the checks below); NaN and Infinity tokens are accepted as Python's json reads them (missing, inf)."""
    try:
        return json.loads(body, parse_int=_parse_int)
    except RecursionError:
        raise BadRequest(
            400,
            "JSONTooDeep",
            "the JSON body is nested too deeply (a request needs at most 3 levels)",
            ff_code=E_TOO_DEEP,
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(400, "MalformedJSON", f"the body is not valid JSON: {clip(str(exc), 200)}") from None


def _number_error(value: object, where: str, *, record: int | None = None) -> BadRequest:
    if isinstance(value, TooLargeNumber):
        return BadRequest(
            400,
            "NumberOutOfRange",
            f"{where}: {value} does not fit a 64-bit float",
            ff_code=E_NUMBER_RANGE,
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


def json_records(doc: dict) -> list:
    """The `records` list, checked: 1..MAX_RECORDS objects whose values are strings, numbers, booleans or
    null. Keys are not checked here: only the model's raw input columns are ever read (`records_frame`)."""
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
    return BadRequest(400, "InvalidRecords", f"{where} {problem}", ff_code=E_RECORD, record=index)


def is_records(doc: object) -> TypeGuard[dict]:
    return isinstance(doc, dict) and "records" in doc


class Decoded:
    """A parsed request body: encoded `rows`, or raw `records` still to be encoded."""

    __slots__ = ("media", "rows", "records")

    def __init__(self, media: str, rows: np.ndarray | None = None, records: list | None = None):
        self.media, self.rows, self.records = media, rows, records

    def __len__(self) -> int:
        if self.records is not None:
            return len(self.records)
        return 0 if self.rows is None else len(self.rows)


def decode(body: bytes, media: str, n_features: int) -> Decoded:
    """The body of a request of type `media` (from request_media) -> rows or records."""
    if not body:
        raise BadRequest(400, "EmptyBody", "the request body is empty")
    if media == CSV:
        return Decoded(media, rows=parse_csv(body, n_features))
    doc = parse_json(body)
    if is_records(doc):
        return Decoded(media, records=json_records(doc))
    return Decoded(media, rows=json_rows(doc, n_features))


def raw_columns(schema: dict) -> list:
    """The raw input columns preprocess.transform reads (the schema's numeric, ordinal and one-hot columns):
    the only keys of a served record that are ever looked at. A schema with none of those parts belongs to a
    pass-through transform, which reads its `features` as they are."""
    parts = [schema[p] for p in ("numeric", "ordinal", "one_hot") if p in schema]
    if not parts:
        parts = [schema.get("features")]
    cols: list[str] = []
    for spec in parts:
        if isinstance(spec, (dict, list)):
            cols.extend(str(c) for c in spec)
    return list(dict.fromkeys(cols))


def records_frame(records: list, columns: list) -> Any:  # a pandas.DataFrame
    """A DataFrame of exactly len(records) rows holding only `columns` (the model's raw input columns): an
    absent key is a missing value, an unknown key is never read, so neither empty records nor thousands of
    distinct keys change the work or memory a request takes (it is O(records x known columns))."""
    import pandas as pd

    data = {c: [r.get(c) for r in records] for c in columns}
    return pd.DataFrame(data, index=pd.RangeIndex(len(records)), columns=list(columns))


_ENCODERS: dict = {}  # (id(transform), id(schema)) -> (transform, schema, compiled encoder or None)


def record_encoder(model: Any) -> Any:
    """The model's own preprocess.record_encoder compiled for its schema once (None when its preprocess.py
    has none: a model packed before it existed is encoded with transform alone)."""
    key = (id(model.transform), id(model.schema))
    cached = _ENCODERS.get(key)
    if cached is None or cached[0] is not model.transform or cached[1] is not model.schema:
        compile_encoder = getattr(model.transform, "__globals__", {}).get("record_encoder")
        encoder = compile_encoder(model.schema) if callable(compile_encoder) else None
        cached = _ENCODERS[key] = (model.transform, model.schema, encoder)
    return cached[2]


def encode_records(model: Any, records: list) -> np.ndarray:  # a ServedModel or a LoadedModel
    """Raw records -> model rows with the model's own preprocess: its compiled record encoder when every value
    is a plain one (no DataFrame per request), else its transform. One row per record."""
    encoder = record_encoder(model)
    x = encoder(records) if encoder is not None else None
    if x is not None:
        return x
    frame = records_frame(records, model.raw_columns)
    x = np.ascontiguousarray(np.asarray(model.transform(frame, model.schema), dtype=np.float64))
    if x.ndim != 2 or x.shape[0] != len(records):
        raise RuntimeError(f"preprocess produced {x.shape} for {len(records)} records")
    return x


def records_to_rows(model: Any, records: list) -> np.ndarray:
    """Raw records -> model rows, or a 400 naming the first record the preprocess code cannot encode."""
    if model.transform is None or model.schema is None:
        raise BadRequest(
            400,
            "RecordsUnsupported",
            f"{model.ref} has no feature schema or preprocess code: send encoded rows",
        )
    try:
        x = encode_records(model, records)
    except Exception:
        # loading proved an empty record encodes, so a record's values are at fault: find the first one
        raise _bad_record(model, records) from None
    if x.shape[1] != model.n_features:
        raise RuntimeError(f"preprocess produced {x.shape} for a model of {model.n_features} features")
    return x


def _bad_record(model: Any, records: list) -> Exception:
    """Bisect to the first record that fails on its own (O(log n) encodings, on the error path only)."""
    lo, hi = 0, len(records)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            encode_records(model, records[lo:mid])
        except Exception:
            hi = mid
        else:
            lo = mid
    try:
        encode_records(model, records[lo : lo + 1])
    except Exception as exc:
        msg = getattr(exc, "message", None) if hasattr(exc, "ff_code") else None
        msg = msg or f"{type(exc).__name__}: {exc}"
        return record_error(lo, f"cannot be encoded: {clip(msg, 300)}")
    return RuntimeError("records fail to encode together but not one by one")


def predict(booster: Any, rows: np.ndarray) -> np.ndarray:  # an xgboost.Booster
    # inplace_predict skips DMatrix construction: the fast path for small batches.
    return np.asarray(booster.inplace_predict(rows), dtype=np.float64).reshape(-1)


# ---------------------------------------------------------------------------------------------- response


def encode_scores(scores: np.ndarray, accept: str, extra: dict) -> bytes:
    if accept == CSV:
        return ("\n".join(repr(float(s)) for s in scores) + "\n").encode()
    return json.dumps({"predictions": [{"score": float(s)} for s in scores], **extra}).encode()


def encode_decisions(scores: np.ndarray, threshold: float, accept: str, extra: dict) -> bytes:
    decisions = (scores >= threshold).astype(int)
    if accept == CSV:
        return "".join(f"{float(s)!r},{int(d)}\n" for s, d in zip(scores, decisions)).encode()  # noqa: B905 - Python 3.8
    preds = [{"probability": float(s), "decision": int(d)} for s, d in zip(scores, decisions)]  # noqa: B905
    return json.dumps({"predictions": preds, "decision_threshold": threshold, **extra}).encode()


def encode(scores: np.ndarray, request: Decoded, accept: str, threshold: float, extra: dict) -> bytes:
    """Records are answered with probabilities and decisions, encoded rows with scores."""
    if request.records is not None:
        return encode_decisions(scores, threshold, accept, extra)
    return encode_scores(scores, accept, extra)


# ---------------------------------------------------------------------------------------------- the model


class ServedModel:
    """What model_fn loads: the booster, the feature schema, the preprocess transform (None when the schema
    names no raw input column: encoded rows only), the raw columns a record is read at, and the threshold."""

    def __init__(self, booster: Any, schema: dict | None, transform: Any, threshold: float, ref: str) -> None:
        self.raw_columns = raw_columns(schema) if schema is not None and transform is not None else []
        self.booster, self.schema, self.threshold, self.ref = booster, schema, threshold, ref
        self.transform = transform if self.raw_columns else None
        self.n_features = int(booster.num_features())

    def score(self, request: Decoded) -> np.ndarray:
        return score(self, request)


def score(model: Any, request: Decoded) -> np.ndarray:  # a ServedModel or fraudflow's LoadedModel
    """Scores of a decoded request; records are first encoded with the model's preprocess.transform."""
    if request.records is None:
        assert request.rows is not None  # a decoded request holds rows or records
        return predict(model.booster, request.rows)
    scores = predict(model.booster, records_to_rows(model, request.records))
    if len(scores) != len(request.records):
        raise RuntimeError(f"{len(scores)} scores for {len(request.records)} records")
    return scores


def load_module(path: Path, prefix: str = "_fraudflow_preprocess") -> ModuleType:
    """Import a file by path under a name unique to its content (preprocess.py is not a package). Its sibling
    stepkit.py, when there, answers its `import stepkit`: a model's code/ runs with the helpers it was packed with."""
    key = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    spec = importlib.util.spec_from_file_location(f"{prefix}_{key}", str(path))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    kit = path.parent / "stepkit.py"
    if not kit.is_file() or path.name == kit.name:
        spec.loader.exec_module(module)
        return module
    saved = sys.modules.get("stepkit")
    sys.modules["stepkit"] = load_module(kit, "_fraudflow_stepkit")
    try:
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            del sys.modules["stepkit"]
        else:
            sys.modules["stepkit"] = saved
    return module


def _load_booster(model_dir: Path) -> Any:  # xgboost.Booster
    import xgboost as xgb

    path = next((model_dir / f for f in MODEL_FILES if (model_dir / f).is_file()), None)
    if path is None:
        raise StepError(
            E_NO_MODEL,
            f"the model folder holds no model ({' or '.join(MODEL_FILES)})",
            file=str(model_dir),
            hint="train.py writes xgboost-model into SM_MODEL_DIR; ModelDataUrl must be that job's model.tar.gz",
        )
    try:
        booster = xgb.Booster(model_file=str(path))
    except xgb.core.XGBoostError as exc:
        raise StepError(E_NO_MODEL, f"XGBoost cannot load the model: {exc}", file=str(path)) from None
    booster.set_param({"nthread": 1})  # one thread per prediction: OpenMP start-up dominates small requests
    return booster


def _load_bundle(code: Path) -> tuple:
    """(schema, transform) from code/, or (None, None) when the model was packed without them (encoded rows
    only, as `fraudflow serve` does for a version without a feature schema)."""
    schema_path, preprocess_path = code / SCHEMA_FILE, code / PREPROCESS_FILE
    if not schema_path.is_file() or not preprocess_path.is_file():
        return None, None
    try:
        schema = json.loads(schema_path.read_text())
    except (OSError, ValueError) as exc:
        raise StepError(
            E_BUNDLE, f"the feature schema is not readable JSON: {exc}", file=str(schema_path)
        ) from None
    if not isinstance(schema, dict) or not isinstance(schema.get("features"), list):
        raise StepError(E_BUNDLE, "the feature schema has no feature list", file=str(schema_path))
    try:
        transform = getattr(load_module(preprocess_path), "transform", None)
    except Exception as exc:  # a snapshot that does not import on this image: say which file, not a traceback
        raise StepError(
            E_BUNDLE, f"preprocess.py does not import: {type(exc).__name__}: {exc}", file=str(preprocess_path)
        ) from None
    if transform is None:
        raise StepError(E_BUNDLE, "preprocess.py has no transform(df, schema)", file=str(preprocess_path))
    return schema, transform


def decision_threshold(environ: dict | None = None) -> float:
    text = (os.environ if environ is None else environ).get(THRESHOLD_ENV)
    if text is None or text.strip() == "":  # render always sets it: its absence is a deployment error
        raise StepError(
            E_THRESHOLD,
            f"{THRESHOLD_ENV} is not set",
            hint="fraudflow render sets it from evaluate.decision_threshold (the schema's default: 0.5)",
        )
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise StepError(
            E_THRESHOLD,
            f"{THRESHOLD_ENV}={text!r} is not a probability in [0, 1]",
            hint="fraudflow render sets it from evaluate.decision_threshold",
        )
    return value


def load(model_dir: str | Path, ref: str = "model") -> ServedModel:
    model_dir = Path(model_dir)
    booster = _load_booster(model_dir)
    schema, transform = _load_bundle(model_dir / CODE_DIR)
    model = ServedModel(booster, schema, transform, decision_threshold(), ref)
    _check_records(model, model_dir / CODE_DIR / SCHEMA_FILE)
    return model


def _check_records(model: ServedModel, schema_path: Path) -> None:
    """One empty record through the preprocess code: a bundle that cannot encode that cannot encode any record,
    so it fails at load (the health check), and a record that fails later is the record's fault."""
    if model.transform is None:
        return
    try:
        x = encode_records(model, [{}])
    except Exception as exc:
        raise StepError(
            E_BUNDLE,
            f"preprocess.py cannot encode a record ({type(exc).__name__}: {clip(str(exc), 200)})",
            file=str(schema_path),
        ) from None
    if x.shape != (1, model.n_features):
        raise StepError(
            E_BUNDLE,
            f"the feature schema encodes {x.shape[1]} features; the model takes {model.n_features}",
            file=str(schema_path),
        )


# ---------------------------------------------------------------------------------------------- handlers


class Invocation:
    """One request on its way through the handlers. input_fn sees no model (the container's contract), so it
    only checks the content type and keeps the body; predict_fn parses it against the model's width and
    scores it; output_fn answers. A client error found on the way is kept and answered by output_fn after
    the Accept check, so errors come in the same order as from `fraudflow serve` (415, 406, then the body)."""

    __slots__ = ("media", "body", "request", "error", "scores", "threshold")

    def __init__(self, media: str | None, body: bytes = b"", error: BadRequest | None = None):
        self.media, self.body, self.error = media, body, error
        self.request: Decoded | None = None
        self.scores: np.ndarray | None = None
        self.threshold = 0.5


def model_fn(model_dir: str) -> ServedModel:
    try:
        return load(model_dir)
    except StepError as exc:
        # the container logs this and fails the health check: a located message instead of a traceback
        raise RuntimeError(exc.render()) from None


def input_fn(input_data: str | bytes | None, content_type: str | None) -> Invocation:
    try:
        media = request_media(content_type)
    except BadRequest as exc:
        return Invocation(None, error=exc)
    # gunicorn's worker hands text/csv and application/json bodies over as str, the model server as bytes
    body = input_data.encode("utf-8") if isinstance(input_data, str) else bytes(input_data or b"")
    if len(body) > MAX_BODY:
        return Invocation(
            media, error=BadRequest(413, "PayloadTooLarge", f"body over the limit of {MAX_BODY} bytes")
        )
    return Invocation(media, body)


def predict_fn(invocation: Invocation, model: ServedModel) -> Invocation:
    invocation.threshold = model.threshold
    if invocation.error is None and invocation.media is not None:
        try:
            invocation.request = decode(invocation.body, invocation.media, model.n_features)
            invocation.scores = model.score(invocation.request)
        except BadRequest as exc:
            invocation.error = exc
    return invocation


def output_fn(invocation: Invocation, accept: str | None) -> Any:  # (bytes, type) or a server response
    try:
        if invocation.error is not None and invocation.error.status == 415:
            raise invocation.error
        answer = choose_accept(accept, invocation.media or JSON)
        if invocation.error is not None:
            raise invocation.error
        assert invocation.request is not None and invocation.scores is not None
        return encode(invocation.scores, invocation.request, answer, invocation.threshold, {}), answer
    except BadRequest as exc:
        return reject(exc)


def reject(exc: BadRequest) -> Any:  # (bytes, type) or a server response
    """Turn a client error into a 4xx the way each of the XGBoost image's servers allows.

    - Single-model endpoints run sagemaker-containers' Flask worker under gunicorn: it wraps every handler in
      `error_wrapper` (any exception becomes ClientError) and does not catch it, so Flask answers 500. A
      response object returned by output_fn is passed through as it is: return one with the status.
    - Multi-model endpoints run the inference toolkit under MMS: it answers an exception with its status_code
      if it is a BaseInferenceToolkitError, else 500: raise one.
    - Anywhere else (tests, fraudflow): raise the BadRequest itself."""
    try:
        import flask

        if flask.has_request_context():
            return flask.Response(exc.body(), status=exc.status, mimetype=JSON)
    except ImportError:
        pass
    try:
        from sagemaker_inference.errors import GenericInferenceToolkitError
    except ImportError:
        raise exc from None
    raise GenericInferenceToolkitError(exc.status, exc.body().decode(), exc.message) from None
