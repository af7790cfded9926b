"""step_code/bias.py on the real AWS claims data: Clarify's reference numbers, smclarify as an oracle, user errors.

The fixtures run step_code/preprocess.py itself on AWS's data (tests/test_step_explain.py reuses them);
`encode` (the tutorial's encoding) is kept for tests/test_sampledata.py's learnability check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudflow.stepcode import load_file

REPO = Path(__file__).resolve().parents[1]
ORDINAL = {
    "police_report_available": ["No", "Yes"],
    "policy_liability": ["15/30", "25/50", "30/60", "100/200"],
    "customer_education": ["Below High School", "High School", "Associate", "Bachelor", "Advanced Degree"],
}
# Pre-training metrics from SOURCE.md (smclarify 0.5 on the full data, facet Female, fraud = 1 positive).
REFERENCE = {
    "CI": 0.1168,
    "DPL": 0.027107730,
    "KL": 0.014910227,
    "JS": 0.003137467,
    "LP": 0.038336120,
    "TVD": 0.027107730,
    "KS": 0.027107730,
}
PRE = list(REFERENCE)
POST = ["DPPL", "DI", "DCA", "DCR", "RD", "SD", "DAR", "DRR", "AD", "TE", "GE"]


def load_step(name: str):
    """Import step_code/<name>.py as a module, as the local runner does."""
    return load_file(REPO / "step_code" / f"{name}.py", f"step_{name}")


bias = load_step("bias")


def encode(claims: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """The tutorial's encoding: left join, ordinal maps, "na" fill + int one-hot, label first."""
    df = claims.merge(customers, on="policy_id", how="left").drop(columns=["customer_zip"])
    for col, order in ORDINAL.items():
        df[col] = df[col].map({v: i for i, v in enumerate(order)})
    text = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    df[text] = df[text].astype(object).fillna("na")
    df = pd.get_dummies(df, columns=text, dtype=int)
    df.columns = [c.lower().replace(" ", "_") for c in df.columns]
    df = df.drop(columns=["policy_id", "customer_gender_unkown"], errors="ignore")
    return df[["fraud"] + [c for c in df.columns if c != "fraud"]]


def train_booster(splits: dict[str, pd.DataFrame], rounds: int = 100):
    import xgboost as xgb

    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.2, "subsample": 0.8, "seed": 0}
    train = splits["train"]
    dtrain = xgb.DMatrix(train.drop(columns="fraud").to_numpy(float), label=train["fraud"].to_numpy())
    return xgb.train(params, dtrain, num_boost_round=rounds)


def scores_for(booster, frame: pd.DataFrame) -> np.ndarray:
    import xgboost as xgb

    return booster.predict(xgb.DMatrix(frame.drop(columns="fraud").to_numpy(float)))


def write_config(path: Path, **bias_overrides) -> Path:
    config = {
        "data": {"label": "fraud"},
        "bias": {
            "facet": "customer_gender_female",
            "facet_values": [1],
            "label_values": [1],
            "pre_training_metrics": PRE,
            "post_training_metrics": POST,
            "probability_threshold": 0.5,
            **bias_overrides,
        },
    }
    path.write_text(json.dumps(config))
    return path


def run_preprocess(root: Path) -> dict[str, pd.DataFrame]:
    """step_code/preprocess.py itself on AWS's data (the pipeline's config) into root/pre; its splits as
    frames, label first, named by its feature_schema.json."""
    from tests._steps_util import aws_inputs, reference_config
    from tests._steps_util import write_config as write_step_config

    config = write_step_config(root / "preprocess-config.json", reference_config())
    argv = ["--config", str(config), "--input-dir", str(aws_inputs(root / "input")), "--output-dir"]
    assert load_step("preprocess").main([*argv, str(root / "pre")]) == 0
    schema = json.loads((root / "pre" / "schema" / "feature_schema.json").read_text())
    names = [schema["label"], *schema["features"]]
    return {
        n: pd.read_csv(root / "pre" / n / f"{n}.csv", header=None, names=names)
        for n in ("train", "validation", "test")
    }


@pytest.fixture(scope="module")
def aws(tmp_path_factory, aws_data: Path):
    """Preprocess + evaluate output dirs for the AWS data, with a real 100-round XGBoost model's test scores."""
    root = tmp_path_factory.mktemp("aws")
    splits = run_preprocess(root)
    df = pd.concat(splits.values(), ignore_index=True)
    booster = train_booster(splits)
    test = splits["test"]
    (root / "eval").mkdir()
    scores = scores_for(booster, test)
    pd.DataFrame({"label": test["fraud"].to_numpy(), "score": scores}).to_csv(
        root / "eval/predictions.csv", index=False
    )
    return {"root": root, "df": df, "splits": splits, "scores": scores}


def run_bias(aws, tmp_path: Path, **bias_overrides) -> dict:
    config = write_config(tmp_path / "config.json", **bias_overrides)
    out = tmp_path / "out"
    rc = bias.main(
        [
            "--config",
            str(config),
            "--data-dir",
            str(aws["root"] / "pre"),
            "--predictions-dir",
            str(aws["root"] / "eval"),
            "--output-dir",
            str(out),
        ]
    )
    assert rc == 0
    return json.loads((out / "analysis.json").read_text())


def metrics_of(analysis: dict, stage: str) -> dict:
    facet = analysis[f"{stage}_training_bias_metrics"]["facets"]["customer_gender_female"][0]
    assert facet["value_or_threshold"] == "1"
    return {m["name"]: m["value"] for m in facet["metrics"]}


def test_pretraining_metrics_equal_clarify_reference(aws, tmp_path):
    analysis = run_bias(aws, tmp_path)
    assert analysis["version"] == "1.0"
    pre = analysis["pre_training_bias_metrics"]
    assert pre["label"] == "fraud" and pre["label_value_or_threshold"] == "1"
    values = metrics_of(analysis, "pre")
    for name, expected in REFERENCE.items():
        assert values[name] == pytest.approx(expected, abs=1e-6), name
    assert "fraud in [1]" in analysis["label_convention"]
    report = json.loads((tmp_path / "out/report.json").read_text())
    assert report["pre_training"]["rows"] == 5000
    assert report["pre_training"]["facet_d"]["rows"] == 2208


def test_flipped_label_convention_flips_the_sign(aws, tmp_path):
    """The tutorial's label_values=[0] convention: DPL changes sign, CI does not."""
    values = metrics_of(run_bias(aws, tmp_path, label_values=[0]), "pre")
    assert values["DPL"] == pytest.approx(-REFERENCE["DPL"], abs=1e-9)
    assert values["CI"] == pytest.approx(REFERENCE["CI"])


def test_posttraining_metrics_are_finite_or_explained(aws, tmp_path):
    analysis = run_bias(aws, tmp_path)
    facet = analysis["post_training_bias_metrics"]["facets"]["customer_gender_female"][0]
    assert [m["name"] for m in facet["metrics"]] == sorted(POST)  # Clarify's order: smclarify sorts by name
    for m in facet["metrics"]:
        assert m["value"] is None and m["note"] or np.isfinite(m["value"]), m
    json.dumps(analysis, allow_nan=False)  # strict JSON: no NaN/Infinity


def test_flip_test_is_declared_sagemaker_only(aws, tmp_path):
    analysis = run_bias(aws, tmp_path, post_training_metrics=["DPPL", "FT"])
    ft = analysis["post_training_bias_metrics"]["facets"]["customer_gender_female"][0]["metrics"][1]
    assert ft["name"] == "FT" and ft["value"] is None and "SageMaker" in ft["note"]


def test_no_predicted_positives_gives_null_with_note(aws, tmp_path):
    analysis = run_bias(aws, tmp_path, probability_threshold=1.0)
    post = analysis["post_training_bias_metrics"]["facets"]["customer_gender_female"][0]["metrics"]
    by_name = {m["name"]: m for m in post}
    assert by_name["DPPL"]["value"] == 0.0
    assert by_name["DI"]["value"] == 0.0 and "0/0" in by_name["DI"]["note"]
    # FN/FP is infinite on both sides: Clarify takes the difference as 0, and we say so.
    assert by_name["TE"]["value"] == 0.0 and "both sides infinite" in by_name["TE"]["note"]


def _oracle():
    try:
        from smclarify.bias import report
    except Exception as exc:  # an optional oracle: say exactly how to get it
        pytest.skip(
            f"smclarify not importable ({exc}); pip install --no-deps smclarify pyfunctional dill tabulate"
        )
    return report


def _clarify_values(results: list[dict]) -> dict:
    return {m["name"]: m["value"] for m in results[0]["metrics"]}


@pytest.mark.parametrize("threshold", [0.5, 0.1])
def test_matches_smclarify_oracle(aws, tmp_path, threshold):
    report = _oracle()
    ours_an = run_bias(aws, tmp_path, probability_threshold=threshold)
    df = aws["df"]
    facet = report.FacetColumn("customer_gender_female", [1])
    pre_label = report.LabelColumn("fraud", df["fraud"], [1])
    pre = report.bias_report(df, facet, pre_label, report.StageType.PRE_TRAINING, metrics=PRE)
    ours_pre = metrics_of(ours_an, "pre")
    for name, value in _clarify_values(pre).items():
        assert ours_pre[name] == pytest.approx(value, abs=1e-12), name

    test = aws["splits"]["test"].reset_index(drop=True)
    predicted = pd.Series((aws["scores"] > threshold).astype(int), name="predicted")
    post = report.bias_report(
        test.assign(predicted=predicted),
        facet,
        report.LabelColumn("fraud", test["fraud"], [1]),
        report.StageType.POST_TRAINING,
        predicted_label_column=report.LabelColumn("predicted", predicted, [1]),
        metrics=POST,
    )
    ours_post = metrics_of(ours_an, "post")
    for name, value in _clarify_values(post).items():
        if value in ("Infinity", "-Infinity"):
            assert ours_post[name] is None, name
        else:
            assert ours_post[name] == pytest.approx(value, abs=1e-12), name


# --- user errors: located and clear, nothing written ----------------------------------------------------------


def error_of(aws, tmp_path, **bias_overrides) -> bias.StepError:
    with pytest.raises(bias.StepError) as info:
        run_bias(aws, tmp_path, **bias_overrides)
    assert not (tmp_path / "out").exists()
    return info.value


def test_missing_facet_column_suggests_close_names(aws, tmp_path):
    err = error_of(aws, tmp_path, facet="customer_gender_femal")
    assert err.ff_code == "FF646"
    assert "customer_gender_femal" in err.message
    assert "customer_gender_female" in err.hint and "customer_gender_male" in err.hint


def test_absent_label_values(aws, tmp_path):
    err = error_of(aws, tmp_path, label_values=[7])
    assert err.ff_code == "FF648" and "label values present in 'fraud': 0, 1" in err.hint


def test_empty_facet_group(aws, tmp_path):
    err = error_of(aws, tmp_path, facet_values=[5])
    assert err.ff_code == "FF647" and "facet d" in err.message and "0, 1" in err.hint


def test_unknown_metric(aws, tmp_path):
    err = error_of(aws, tmp_path, pre_training_metrics=["DPL", "XYZ"])
    assert err.ff_code == "FF641" and "XYZ" in err.message and "CDDL" in err.hint


def test_script_mode_prints_error_without_traceback(aws, tmp_path):
    config = write_config(tmp_path / "config.json", facet="gender")
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "step_code/bias.py"),
            "--config",
            str(config),
            "--data-dir",
            str(aws["root"] / "pre"),
            "--predictions-dir",
            str(aws["root"] / "eval"),
            "--output-dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error[FF646]: ") and "feature_schema.json" in proc.stderr
    assert "Traceback" not in proc.stderr
