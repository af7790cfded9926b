"""Local stand-in for SageMaker Clarify's SHAP job: exact TreeSHAP from XGBoost, in Clarify's output layout.

Clarify approximates SHAP values with KernelSHAP (num_samples perturbations per row) against a baseline; for a
tree model XGBoost computes them exactly (`pred_contribs=True`), in log-odds units (the model's margin), with the
last column the bias (expected margin). Each row's SHAP values plus its bias sum to the row's margin.

Outputs under --output-dir:
- analysis.json: Clarify's explainability layout, explanations.kernel_shap.label0.{global_shap_values,
  expected_value} (Clarify's key names, kept so its readers work), plus `explanation_method` saying what we did;
- shap_values.csv: one row per test row (in order), one column per feature plus `bias`, 7 decimals;
- global.json: features ranked by their aggregated SHAP value.

Self-contained (standard library, numpy, pandas, xgboost; works on xgboost 1.7 / pandas 1.x) per the contract.

Error codes: FF650 config unreadable, FF651 bad `explain` settings, FF652 model missing or unreadable,
FF653 feature schema, FF654 test split, FF655 model and feature schema disagree.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import stepkit
from stepkit import StepError

AGG_METHODS = ("mean_abs", "median", "mean_sq")
DECIMALS = 7


# ---------------------------------------------------------------------------------------------------------------
# Inputs


def load_settings(path: str) -> dict:
    config = stepkit.read_config(path, "FF650")
    explain = config.get("explain") or {}
    method = explain.get("method", "shap")
    if method != "shap":
        raise StepError("FF651", f"explain.method {method!r} is not supported", file=path, hint="use: shap")
    agg = explain.get("agg_method", "mean_abs")
    if agg not in AGG_METHODS:
        raise StepError(
            "FF651", f"explain.agg_method {agg!r} is not one of {', '.join(AGG_METHODS)}", file=path
        )
    return {"agg_method": agg, "num_samples": explain.get("num_samples")}


def load_booster(model_dir: str) -> Any:  # xgboost.Booster (xgboost is imported lazily)
    """`xgboost-model` from the model dir, or from the model.tar.gz that SageMaker training leaves there."""
    import xgboost as xgb

    path = os.path.join(model_dir, "xgboost-model")
    if os.path.exists(path):
        with open(path, "rb") as fh:
            raw = fh.read()
        where = path
    else:
        where = os.path.join(model_dir, "model.tar.gz")
        if not os.path.exists(where):
            raise StepError("FF652", "no model: expected xgboost-model or model.tar.gz", file=model_dir)
        raw = _from_tar(where)
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(raw))
    except xgb.core.XGBoostError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise StepError("FF652", f"not an XGBoost model: {first}", file=where) from None
    return booster


def _from_tar(path: str) -> bytes:
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar.getmembers():
                file = tar.extractfile(member) if member.isfile() else None
                if file is not None and os.path.basename(member.name) == "xgboost-model":
                    return file.read()
    except (tarfile.TarError, OSError) as exc:
        raise StepError("FF652", f"cannot read the model archive: {exc}", file=path) from None
    raise StepError("FF652", "the model archive holds no xgboost-model file", file=path)


def load_schema(data_dir: str) -> list[str]:
    path = os.path.join(data_dir, "schema", "feature_schema.json")
    try:
        with open(path, encoding="utf-8") as fh:
            schema = json.load(fh)
    except FileNotFoundError:
        raise StepError(
            "FF653", "feature schema not found (is --data-dir the preprocess output?)", file=path
        ) from None
    except json.JSONDecodeError as exc:
        raise StepError(
            "FF653", f"feature schema is not valid JSON: {exc.msg}", file=path, line=exc.lineno
        ) from None
    # preprocess.py writes `features`; `feature_names` is accepted too.
    names = schema.get("features", schema.get("feature_names"))
    if not isinstance(names, list) or not names:
        raise StepError("FF653", "feature schema has no `features` list", file=path)
    return [str(n) for n in names]


def load_test(data_dir: str, n_features: int) -> np.ndarray:
    """test/test.csv (header-less, label first) as a float32 feature matrix, the label dropped."""
    path = os.path.join(data_dir, "test", "test.csv")
    if not os.path.exists(path):
        raise StepError("FF654", "test split not found", file=path)
    try:
        frame = pd.read_csv(path, header=None, dtype=np.float32)
    except pd.errors.EmptyDataError:
        raise StepError("FF654", "test split is empty", file=path) from None
    except ValueError as exc:
        raise StepError("FF654", f"test split is not numeric: {exc}", file=path) from None
    if frame.shape[1] != n_features + 1:
        raise StepError(
            "FF654",
            f"test split has {frame.shape[1]} columns, the feature schema needs {n_features + 1} "
            "(label then features)",
            file=path,
            line=1,
        )
    return frame.to_numpy()[:, 1:]


def check_model_fits(booster: Any, names: list[str], model_dir: str) -> None:
    if booster.num_features() != len(names):
        raise StepError(
            "FF655",
            f"the model takes {booster.num_features()} features, the feature schema lists {len(names)}",
            file=model_dir,
            hint="was the model trained on this preprocess output?",
        )
    trained = booster.feature_names
    if trained is not None and list(trained) != names:
        raise StepError("FF655", "the model's feature names differ from the feature schema's", file=model_dir)


# ---------------------------------------------------------------------------------------------------------------
# SHAP


def tree_shap(booster: Any, X: np.ndarray) -> np.ndarray:
    """Exact TreeSHAP in margin units: one column per feature, then the bias. XGBoost's own values, bit for bit:
    grouped by tree (`grouped_tree_shap`) when the model allows it, else all at once."""
    import xgboost as xgb

    grouped = grouped_tree_shap(booster, X)
    if grouped is not None:
        return grouped
    # Names are not given to the DMatrix: check_model_fits compared them, and skipping them saves a copy.
    return booster.predict(xgb.DMatrix(X), pred_contribs=True)


# Below this many rows XGBoost's own pass is already quick.
GROUPED_MIN_ROWS = 2048
MAX_PATTERN_BITS = 62  # decisions of one tree packed into an int64
TABLE_BITS = 16


def grouped_tree_shap(booster: Any, X: np.ndarray) -> np.ndarray | None:
    """`booster.predict(DMatrix(X), pred_contribs=True)`, the same float32 bits, at a fraction of its cost.

    Path-dependent TreeSHAP of one tree depends on a row only through the way the row goes at each split of the
    tree (both subtrees are walked, each weighted by whether the row goes there): rows that go the same way at
    every split get the same values. So per tree, rows are grouped by that pattern (depth-3 trees: at most 128
    patterns for 100,000 rows), XGBoost computes the tree's values for one row of each group, and they are added
    up tree by tree in float32, in XGBoost's order. The bias column is the same for every row (each tree's mean
    value plus the base score): XGBoost's own for one row. None when the model is not a single-output gbtree of
    numerical splits, the rows are few, or a value is infinite: then XGBoost computes everything itself."""
    import xgboost as xgb

    X = np.asarray(X, dtype=np.float32)
    n, n_features = X.shape
    trees = _numerical_trees(booster)
    if trees is None or n < GROUPED_MIN_ROWS or np.isinf(X).any():
        return None
    columns = np.ascontiguousarray(X.T)  # one feature's values contiguous: the split tests read columns
    out = np.zeros((n_features + 1, n), dtype=np.float32)
    for j, tree in enumerate(trees):
        inner = np.flatnonzero(np.asarray(tree["left_children"]) != -1)
        group = _decision_groups(tree, inner, columns)
        if group is None:  # as many patterns as rows: the tree is computed for every row
            first, inverse = np.arange(n), np.arange(n)
        else:
            first, inverse = group
        one = booster[j : j + 1]
        if group is not None:  # a few rows: threads would cost more than they save
            one.set_param({"nthread": 1})
        values = one.predict(
            xgb.DMatrix(X[first], nthread=1 if group is not None else None), pred_contribs=True
        )
        for f in np.unique(np.asarray(tree["split_indices"], dtype=np.int64)[inner]).tolist():
            out[f] += values[inverse, f]  # features off the tree's splits get +0.0, which changes no sum
    out[n_features] = booster.predict(xgb.DMatrix(X[:1]), pred_contribs=True)[0, n_features]
    return np.ascontiguousarray(out.T)


def _numerical_trees(booster: Any) -> list[dict] | None:
    """The model's trees (JSON), one per round, when it is a gbtree with one output and numerical splits only."""
    model = json.loads(bytes(booster.save_raw("json")))
    learner = model.get("learner", {})
    gbm = learner.get("gradient_booster", {})
    params = learner.get("learner_model_param", {})
    trees = gbm.get("model", {}).get("trees", [])
    parallel = gbm.get("model", {}).get("gbtree_model_param", {}).get("num_parallel_tree", "1")
    if (
        gbm.get("name") != "gbtree"
        or str(params.get("num_class", "0")) not in ("0", "1")
        or str(params.get("num_target", "1")) != "1"
        or str(parallel) != "1"
        or not trees
        or len(trees) != booster.num_boosted_rounds()
        or any(any(tree.get("split_type") or ()) for tree in trees)
    ):
        return None
    return trees


def _decision_groups(
    tree: dict, inner: np.ndarray, columns: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """(one row of each decision pattern, each row's pattern) for the tree's inner nodes, as XGBoost decides: a
    missing value takes the default branch, else `value < split_condition` (float32) goes left. None when the
    patterns are too many to gain anything."""
    n = columns.shape[1]
    if len(inner) > MAX_PATTERN_BITS:
        return None
    feature = np.asarray(tree["split_indices"], dtype=np.int64)[inner]
    condition = np.asarray(tree["split_conditions"], dtype=np.float32)[inner]
    default_left = np.asarray(tree["default_left"], dtype=bool)[inner]
    code = np.zeros(n, dtype=np.int64)
    for bit, (f, cond, dflt) in enumerate(zip(feature.tolist(), condition, default_left)):  # noqa: B905
        values = columns[f]
        left = np.where(np.isnan(values), dflt, values < cond)
        code |= left.astype(np.int64) << bit
    if len(inner) <= TABLE_BITS:  # few possible patterns: a table instead of sorting the codes
        seen = np.zeros(1 << len(inner), dtype=bool)
        seen[code] = True
        patterns = np.flatnonzero(seen)
        index = np.zeros(len(seen), dtype=np.int64)
        index[patterns] = np.arange(len(patterns))
        row = np.zeros(len(seen), dtype=np.int64)
        row[code] = np.arange(n)  # some row of each pattern: any gives the same values
        return row[patterns], index[code]
    _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    if len(first) > n // 2:
        return None
    return first, inverse.reshape(-1)


def aggregate(values: np.ndarray, method: str) -> np.ndarray:
    """Clarify's agg_method over rows: mean |SHAP|, median SHAP or mean SHAP squared."""
    values = values.astype(np.float64)
    if method == "mean_abs":
        return np.abs(values).mean(axis=0)
    if method == "median":
        return np.median(values, axis=0)
    return np.square(values).mean(axis=0)


def ranking(names: list[str], agg: np.ndarray) -> list[dict]:
    order = sorted(range(len(names)), key=lambda i: (-abs(float(agg[i])), names[i]))
    return [{"rank": r + 1, "feature": names[i], "value": float(agg[i])} for r, i in enumerate(order)]


# ---------------------------------------------------------------------------------------------------------------
# Fast fixed-point CSV: float formatting dominates writing 100k x 50 values with pandas (about as long as the
# SHAP computation itself), so values are written with DECIMALS decimals from integer digit tables.


def _word_table(strings: list[str], right: bool) -> np.ndarray:
    raw = np.zeros((len(strings), 4), dtype=np.uint8)
    for i, s in enumerate(strings):
        b = list(s.encode())
        if right:
            raw[i, 4 - len(b) :] = b
        else:
            raw[i, : len(b)] = b
    return raw.view(np.uint32).ravel()


_TABLES: dict[str, np.ndarray] = {}


def _tables() -> dict[str, np.ndarray]:
    if not _TABLES:
        ints = [str(i) for i in range(1000)]
        _TABLES["sign_int"] = _word_table(ints + ["-" + s for s in ints], right=True)  # 0 bytes pad the left
        _TABLES["dot3"] = _word_table([f".{i:03d}" for i in range(1000)], right=False)
        _TABLES["dig4"] = _word_table([f"{i:04d}" for i in range(10000)], right=False)
        _TABLES["sep"] = _word_table([",", "\n"], right=False)
    return _TABLES


def format_rows(values: np.ndarray) -> bytes:
    """CSV body (no header) of a float matrix, DECIMALS decimals, as bytes."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return b""
    if not np.isfinite(values).all() or np.abs(values).max() >= 999.5:
        # Rare (SHAP values in log-odds are small): let pandas format them.
        return pd.DataFrame(values).to_csv(header=False, index=False, float_format=f"%.{DECIMALS}f").encode()
    t = _tables()
    scaled = np.rint(np.abs(values) * 10**DECIMALS).astype(np.int64)
    whole, frac = np.divmod(scaled, 10**DECIMALS)
    hi, lo = np.divmod(frac.astype(np.int32), 10000)
    whole += 1000 * ((values < 0) & (scaled > 0))  # the "-" variants; no "-0.0000000"
    out = np.empty(values.shape + (4,), dtype=np.uint32)
    out[..., 0] = t["sign_int"][whole]
    out[..., 1] = t["dot3"][hi]
    out[..., 2] = t["dig4"][lo]
    out[..., 3] = t["sep"][0]
    out[:, -1, 3] = t["sep"][1]
    flat = out.view(np.uint8).reshape(-1)
    return flat[flat != 0].tobytes()


def write_csv(path: str, header: list[str], values: np.ndarray, chunk_rows: int = 16_384) -> None:
    with open(path, "wb") as fh:
        fh.write((",".join(header) + "\n").encode())
        # Small chunks: bounded memory, and buffers the allocator reuses instead of fresh pages per call.
        for start in range(0, len(values), chunk_rows):
            fh.write(format_rows(values[start : start + chunk_rows]))


# ---------------------------------------------------------------------------------------------------------------
# The step


def explain(settings: dict, model_dir: str, data_dir: str) -> tuple[dict, dict, np.ndarray, list[str]]:
    names = load_schema(data_dir)
    booster = load_booster(model_dir)
    check_model_fits(booster, names, model_dir)
    X = load_test(data_dir, len(names))
    contribs = tree_shap(booster, X)
    shap, bias = contribs[:, :-1], contribs[:, -1]
    agg = aggregate(shap, settings["agg_method"])
    expected = float(bias.astype(np.float64).mean())
    analysis = {
        "version": "1.0",
        "explanations": {
            "kernel_shap": {
                "label0": {
                    "global_shap_values": {names[i]: float(agg[i]) for i in range(len(names))},
                    "expected_value": expected,
                }
            }
        },
        "explanation_method": {
            "name": "tree_shap",
            "exact": True,
            "output_space": "log_odds",
            "agg_method": settings["agg_method"],
            "rows": len(X),
            "note": "exact TreeSHAP from XGBoost (pred_contribs) in margin units; Clarify's KernelSHAP "
            f"(num_samples={settings['num_samples']}) approximates the same quantity on SageMaker",
        },
    }
    global_doc = {
        "agg_method": settings["agg_method"],
        "output_space": "log_odds",
        "expected_value": expected,
        "rows": len(X),
        "ranking": ranking(names, agg),
    }
    return analysis, global_doc, contribs, names


def write_outputs(
    out_dir: str, analysis: dict, global_doc: dict, contribs: np.ndarray, names: list[str]
) -> None:
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, ".shap_values.csv.tmp")
    write_csv(tmp, names + ["bias"], contribs)
    os.replace(tmp, os.path.join(out_dir, "shap_values.csv"))
    for name, doc in (("analysis.json", analysis), ("global.json", global_doc)):
        buf = io.StringIO()
        json.dump(doc, buf, indent=2, allow_nan=False)
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as fh:
            fh.write(buf.getvalue() + "\n")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = stepkit.Parser("FF650", "Exact TreeSHAP explanations in Clarify's layout (local stand-in).")
    p.add_argument("--config", default="/opt/ml/processing/input/config/config.json")
    p.add_argument("--model-dir", default="/opt/ml/processing/model")
    p.add_argument("--data-dir", default="/opt/ml/processing/input/data")
    p.add_argument("--output-dir", default="/opt/ml/processing/output")
    return p.parse_args(argv)


def run(argv: Sequence[str] | None) -> dict:
    args = parse_args(argv)
    settings = load_settings(args.config)
    analysis, global_doc, contribs, names = explain(settings, args.model_dir, args.data_dir)
    write_outputs(args.output_dir, analysis, global_doc, contribs, names)
    return global_doc


def main(argv: list[str] | None = None) -> int:
    """Entry point (see stepkit.entry: a StepError propagates in-process, is printed as a script)."""

    def work() -> int:
        doc = run(argv)
        top = ", ".join(r["feature"] for r in doc["ranking"][:3])
        print(f"explain: {doc['rows']} rows, top features: {top}")
        return 0

    return stepkit.entry(argv, work)


if __name__ == "__main__":
    sys.exit(main())
