"""A registered version loaded for serving: the booster, its feature schema and the preprocess `transform`
that encoded its training data (the version's snapshot of step_code/preprocess.py, else the project's copy)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from fraudflow.errors import UserError
from fraudflow.local.registry import ModelVersion
from fraudflow.local.serving import protocol as P
from fraudflow.plan import STEP_CODE

PROJECT_PREPROCESS = STEP_CODE / "preprocess.py"
_modules: dict[str, ModuleType] = {}
_modules_lock = threading.Lock()


def load_preprocess(path: Path) -> ModuleType:
    """Import preprocess.py by file path, once per distinct content (it is not part of the fraudflow package)."""
    data = path.read_bytes()
    key = hashlib.sha256(data).hexdigest()[:16]
    with _modules_lock:
        if key not in _modules:
            spec = importlib.util.spec_from_file_location(f"_fraudflow_preprocess_{key}", path)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _modules[key] = module
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

    @property
    def ref(self) -> str:
        return f"{self.group}:{self.version}"

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return P.predict(self.booster, rows)

    def score(self, request: P.Decoded) -> np.ndarray:
        return P.score(self, request)


def load_model(mv: ModelVersion) -> LoadedModel:
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
        raise UserError.single("FF853", f"cannot load the model: {exc}", file=str(path)) from None
    # One thread per prediction: single-record requests pay OpenMP start-up otherwise.
    booster.set_param({"nthread": 1})
    schema = None
    if mv.feature_schema_path.is_file():
        schema = json.loads(mv.feature_schema_path.read_text())
    transform = None
    code = mv.artifact_dir / "preprocess.py"
    code = code if code.is_file() else PROJECT_PREPROCESS
    if schema is not None and code.is_file():
        transform = getattr(load_preprocess(code), "transform", None)
    return LoadedModel(
        group=mv.group,
        version=mv.version,
        booster=booster,
        n_features=int(booster.num_features()),
        feature_names=list(booster.feature_names) if booster.feature_names else None,
        schema=schema,
        transform=transform,
        decision_threshold=mv.decision_threshold,
    )
