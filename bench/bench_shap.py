"""Benchmark the explain step (step_code/explain.py, called in-process as the local runner does) against bare
`booster.predict(DMatrix(X), pred_contribs=True)` on the same rows and model, alternating A/B.

    python bench/bench_shap.py [--reps 5] [--rows 100000]

Two cases: the AWS sample data's test split (500 rows) and `--rows` generated rows (all used as test rows).
The step also reads test.csv and writes shap_values.csv, analysis.json and global.json; the bare call does
neither. Goal: step median <= 1.2x the bare median on the large case (on a small test split fixed costs,
model loading and file writes, dominate both).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
import yaml

REPO = Path(__file__).resolve().parents[1]
AWS_DIR = REPO.parent / "shared/data/aws-synthetic-claims"
sys.path.insert(0, str(REPO))

PARAMS = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.2, "subsample": 0.8, "seed": 0}


def load_step(name: str):
    """A step script as the local runner imports it (its `import stepkit` resolved to the sibling file)."""
    sys.path.insert(0, str(REPO))
    from fraudflow.stepcode import load_file

    return load_file(REPO / "step_code" / f"{name}.py", f"bench_step_{name}")


def encoded(claims: pd.DataFrame, customers: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The reference pipeline's encoding, by preprocess.py's own fit/transform (label first)."""
    preprocess = load_step("preprocess")
    cfg = yaml.safe_load((REPO / "pipelines.yaml").read_text())["pipelines"]["fraud-detect-xgb"]
    config = {"data": {k: cfg["data"][k] for k in ("label", "drop")}, "features": cfg["features"]}
    df = claims.merge(customers, on="policy_id", how="left")
    schema = preprocess.fit(df, config)
    X = preprocess.transform(df, schema)
    X.insert(0, "fraud", df["fraud"].to_numpy())
    return X, schema["features"]


def prepare(root: Path, frame: pd.DataFrame, names: list[str], train_rows: pd.DataFrame) -> np.ndarray:
    """preprocess's layout with `frame` as the test split, a 100-round model; returns X for the bare call."""
    (root / "pre/test").mkdir(parents=True)
    (root / "pre/schema").mkdir()
    (root / "model").mkdir()
    frame.to_csv(root / "pre/test/test.csv", header=False, index=False)
    (root / "pre/schema/feature_schema.json").write_text(json.dumps({"label": "fraud", "features": names}))
    dtrain = xgb.DMatrix(train_rows[names].to_numpy(np.float32), label=train_rows["fraud"].to_numpy())
    booster = xgb.train(PARAMS, dtrain, num_boost_round=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        booster.save_model(str(root / "model/xgboost-model"))
    (root / "config.json").write_text(json.dumps({"explain": {"method": "shap", "agg_method": "mean_abs"}}))
    return frame[names].to_numpy(np.float32)


def bench_case(label: str, root: Path, X: np.ndarray, reps: int) -> dict:
    explain = load_step("explain")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Unknown file format": xgboost-model has no extension
        booster = xgb.Booster(model_file=str(root / "model/xgboost-model"))
    argv = ["--config", str(root / "config.json"), "--model-dir", str(root / "model")]
    argv += ["--data-dir", str(root / "pre"), "--output-dir", str(root / "out")]
    step, bare = [], []
    explain.main(argv)  # warm-up: imports, digit tables, page cache
    booster.predict(xgb.DMatrix(X), pred_contribs=True)
    for _ in range(reps):
        t = time.perf_counter()
        explain.main(argv)
        step.append(time.perf_counter() - t)
        t = time.perf_counter()
        booster.predict(xgb.DMatrix(X), pred_contribs=True)
        bare.append(time.perf_counter() - t)
    parts = breakdown(explain, root, booster)
    result = {
        "case": label,
        "rows": len(X),
        "step_median_s": statistics.median(step),
        "bare_median_s": statistics.median(bare),
        **parts,
    }
    result["ratio"] = result["step_median_s"] / result["bare_median_s"]
    print(
        f"{label:>14}: {len(X):>7} rows  step {result['step_median_s'] * 1000:8.1f} ms  "
        f"bare {result['bare_median_s'] * 1000:8.1f} ms  ratio {result['ratio']:.2f}x   "
        f"(step parts: read {parts['read_s'] * 1000:.0f} ms, shap {parts['shap_s'] * 1000:.0f} ms, "
        f"write csv {parts['write_s'] * 1000:.0f} ms)"
    )
    return result


def breakdown(explain, root: Path, booster) -> dict:
    names = explain.load_schema(str(root / "pre"))
    t0 = time.perf_counter()
    X = explain.load_test(str(root / "pre"), len(names))
    t1 = time.perf_counter()
    contribs = explain.tree_shap(booster, X)
    t2 = time.perf_counter()
    explain.write_csv(str(root / "parts.csv"), names + ["bias"], contribs)
    t3 = time.perf_counter()
    return {"read_s": t1 - t0, "shap_s": t2 - t1, "write_s": t3 - t2}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    from fraudflow.sampledata import generate

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        aws, names = encoded(pd.read_csv(AWS_DIR / "claims.csv"), pd.read_csv(AWS_DIR / "customers.csv"))
        test = aws.sample(frac=0.1, random_state=42)
        X = prepare(tmp / "aws", test, names, aws.drop(test.index))
        results.append(bench_case("aws test split", tmp / "aws", X, args.reps))

        generate(tmp / "gen", rows=args.rows, seed=0)
        gen, names = encoded(pd.read_csv(tmp / "gen/claims.csv"), pd.read_csv(tmp / "gen/customers.csv"))
        X = prepare(tmp / "big", gen, names, gen)
        results.append(bench_case("generated", tmp / "big", X, args.reps))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
