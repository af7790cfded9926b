"""The baseline for bench_run.py: the reference pipeline written by hand as one plain script, the way it would
live in a notebook — same join, encodings, split, XGBoost settings, bootstrap AUC, bias and SHAP, same outputs
written to disk — with none of fraudflow's validation, caching, located errors, registry or report.

    python bench/handwritten_pipeline.py CLAIMS_CSV CUSTOMERS_CSV OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split

ORDINAL = {
    "police_report_available": ["No", "Yes"],
    "policy_liability": ["15/30", "25/50", "30/60", "100/200"],
    "customer_education": ["Below High School", "High School", "Associate", "Bachelor", "Advanced Degree"],
}
ONE_HOT = [
    "driver_relationship",
    "incident_type",
    "collision_type",
    "incident_severity",
    "authorities_contacted",
    "policy_state",
    "customer_gender",
]
PARAMS = {
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "max_depth": 3,
    "eta": 0.2,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 1,
    "seed": 0,
}


def main(claims_csv: str, customers_csv: str, out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df = pd.read_csv(claims_csv).merge(pd.read_csv(customers_csv), on="policy_id", how="left")
    df = df.drop(columns=["customer_zip", "policy_id"])
    for col, cats in ORDINAL.items():
        df[col] = df[col].map({c: i for i, c in enumerate(cats)}).fillna(-1)
    df[ONE_HOT] = df[ONE_HOT].fillna("na")
    df = pd.get_dummies(df, columns=ONE_HOT, dtype=int)
    df.columns = [c.lower().replace(" ", "_") for c in df.columns]
    df = df.drop(columns=["customer_gender_unkown"])
    y = df.pop("fraud")
    df.insert(0, "fraud", y)
    train, rest = train_test_split(df, train_size=0.8, stratify=df["fraud"], random_state=42)
    val, test = train_test_split(rest, test_size=0.5, stratify=rest["fraud"], random_state=42)
    for name, part in (("train", train), ("validation", val), ("test", test)):
        part.to_csv(out / f"{name}.csv", header=False, index=False)
    dtrain = xgb.DMatrix(train.iloc[:, 1:], label=train["fraud"])
    dval = xgb.DMatrix(val.iloc[:, 1:], label=val["fraud"])
    booster = xgb.train(
        PARAMS, dtrain, 100, evals=[(dval, "validation")], early_stopping_rounds=10, verbose_eval=False
    )
    booster.save_model(str(out / "model.json"))
    dtest = xgb.DMatrix(test.iloc[:, 1:])
    labels, scores = (
        test["fraud"].to_numpy(),
        booster.predict(dtest, iteration_range=(0, booster.best_iteration + 1)),
    )
    # bootstrap AUC, vectorised as a careful notebook author would (ranks of 1000 resamples at once)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(labels), (1000, len(labels)))
    y, s = labels[idx], scores[idx]
    ranks = s.argsort(axis=1).argsort(axis=1) + 1.0
    pos = y.sum(axis=1)
    ok = (pos > 0) & (pos < len(labels))
    boots = ((ranks * y).sum(axis=1) - pos * (pos + 1) / 2)[ok] / (pos * (len(labels) - pos))[ok]
    pred = (scores >= 0.1).astype(int)
    evaluation = {
        "classification_metrics": {
            "roc_auc": {
                "value": roc_auc_score(labels, scores),
                "confidence_interval": list(np.percentile(boots, [2.5, 97.5])),
            },
            "pr_auc": {"value": average_precision_score(labels, scores)},
            "precision": {"value": precision_score(labels, pred, zero_division=0)},
            "recall": {"value": recall_score(labels, pred)},
            "f1": {"value": f1_score(labels, pred)},
        }
    }
    (out / "evaluation.json").write_text(json.dumps(evaluation, indent=2))
    female = df["customer_gender_female"] == 1
    q_a, q_d = df.loc[~female, "fraud"].mean(), df.loc[female, "fraud"].mean()
    test_female = test["customer_gender_female"].to_numpy() == 1
    bias = {
        "DPL": q_a - q_d,
        "CI": (np.sum(~female) - np.sum(female)) / len(df),
        "DPPL": pred[~test_female].mean() - pred[test_female].mean(),
    }
    (out / "bias.json").write_text(json.dumps(bias, indent=2))
    contribs = booster.predict(dtest, pred_contribs=True, iteration_range=(0, booster.best_iteration + 1))
    pd.DataFrame(contribs, columns=[*test.columns[1:], "bias"]).to_csv(out / "shap_values.csv", index=False)
    (out / "shap_global.json").write_text(
        json.dumps(dict(zip(test.columns[1:], np.abs(contribs[:, :-1]).mean(0).tolist(), strict=True)))
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
