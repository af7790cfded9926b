"""A registered version loaded for serving: the booster, its feature schema and the preprocess `transform`
that encoded its training data (the version's snapshot of step_code/preprocess.py, else the project's copy)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from fraudflow.errors import UserError
from fraudflow.local.registry import ModelVersion
from fraudflow.local.serving import protocol as P
from fraudflow.plan import STEP_CODE
from fraudflow.stepcode import load_file

PROJECT_PREPROCESS = STEP_CODE / "preprocess.py"
_modules: dict[str, ModuleType] = {}
_modules_lock = threading.Lock()


def load_preprocess(path: Path) -> ModuleType:
    """Import preprocess.py by file path, once per distinct content (it is not part of the fraudflow package)."""
    data = path.read_bytes()
    key = hashlib.sha256(data).hexdigest()[:16]
    with _modules_lock:
        if key not in _modules:
            _modules[key] = load_file(path, f"_fraudflow_preprocess_{key}")  # with its sibling stepkit.py
        return _modules[key]


@dataclass
class LoadedModel:
    group: str
    version: int
    booster: object  # xgboost.Booster
    n_features: int
    feature_names: list[str] | None
    schema: dict | None
    transform: Callable | None  # preprocess.transform(df, schema) -> DataFrame in model order
    decision_threshold: float
    raw_columns: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.group}:{self.version}"

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return P.predict(self.booster, rows)

    def score(self, request: P.Decoded) -> np.ndarray:
        return P.score(self, request)


def load_model(mv: ModelVersion) -> LoadedModel:
    """Load a registered version for serving, and prove it can answer: every way its snapshot can be damaged
    (model file, feature schema, preprocess code, a schema that does not fit the model) is a UserError
    (FF853 / FF856), never another exception, so callers can report it once and keep what they serve."""
    booster = _load_booster(mv)
    n_features = int(booster.num_features())
    schema = _load_schema(mv)
    transform: Any = None
    columns: list[str] = []
    code = mv.artifact_dir / "preprocess.py"
    code = code if code.is_file() else PROJECT_PREPROCESS
    if schema is not None and code.is_file():
        transform = _load_transform(mv, code)
        columns = raw_columns(schema) if transform is not None else []
    model = LoadedModel(
        group=mv.group,
        version=mv.version,
        booster=booster,
        n_features=n_features,
        feature_names=list(booster.feature_names) if booster.feature_names else None,
        schema=schema,
        transform=transform if columns else None,
        decision_threshold=mv.decision_threshold,
        raw_columns=columns,
    )
    _check_answers(model, mv)
    return model


def _damaged(mv: ModelVersion, what: str, path: Path) -> UserError:
    return UserError.single(
        "FF856",
        f"{mv.group}:{mv.version} cannot be served: {what}",
        file=str(path),
        hint="its registered snapshot is damaged: register the model again (rerun the pipeline)",
    )


def _load_booster(mv: ModelVersion) -> Any:  # an xgboost.Booster
    import xgboost as xgb

    model_dir = mv.model_dir
    for name in ("model.json", "xgboost-model"):
        path = model_dir / name
        if path.is_file():
            break
    else:
        raise UserError.single("FF853", f"{mv.group}:{mv.version} has no model file", file=str(model_dir))
    try:
        booster = xgb.Booster(model_file=str(path))
    except xgb.core.XGBoostError as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else "unreadable"
        raise UserError.single("FF853", f"cannot load the model: {first}", file=str(path)) from None
    # One thread per prediction: single-record requests pay OpenMP start-up otherwise.
    booster.set_param({"nthread": 1})
    return booster


def _load_schema(mv: ModelVersion) -> dict | None:
    path = mv.feature_schema_path
    if not path.is_file():
        return None
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _damaged(mv, f"feature_schema.json is not readable JSON ({str(exc)[:200]})", path) from None
    if not isinstance(schema, dict) or not isinstance(schema.get("features"), list):
        raise _damaged(mv, "feature_schema.json is not a feature schema (no `features` list)", path)
    return schema


def _load_transform(mv: ModelVersion, code: Path) -> Callable | None:
    try:
        module = load_preprocess(code)
    except Exception as exc:  # a damaged snapshot can raise anything while importing (SyntaxError, ...)
        what = f"its preprocess code does not import ({type(exc).__name__}: {str(exc)[:300]})"
        raise _damaged(mv, what, code) from None
    transform = getattr(module, "transform", None)
    return transform if callable(transform) else None


raw_columns = P.raw_columns


def _check_answers(model: LoadedModel, mv: ModelVersion) -> None:
    """One all-missing row through the booster (and one empty record through the preprocess code): a
    version that cannot answer that cannot answer anything, so it is refused at load, not per request."""
    try:
        model.predict(np.full((1, model.n_features), np.nan))
    except Exception as exc:
        raise UserError.single(
            "FF853", f"the model cannot predict: {str(exc)[:300]}", file=str(mv.model_dir)
        ) from None
    if model.transform is None:
        return
    try:
        x = encode_records(model, [{}])
    except Exception as exc:
        raise _damaged(
            mv,
            f"its preprocess code cannot encode a record ({type(exc).__name__}: {str(exc)[:200]})",
            mv.feature_schema_path,
        ) from None
    if x.shape != (1, model.n_features):
        raise _damaged(
            mv,
            f"its feature schema encodes {x.shape[1]} features; the model takes {model.n_features}",
            mv.feature_schema_path,
        )


def encode_records(model: LoadedModel, records: list[dict]) -> np.ndarray:
    """Raw records -> model rows with the version's own preprocess code (step_code/inference.py's encoding)."""
    return P.encode_records(model, records)
