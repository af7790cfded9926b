"""`fraudflow run` end to end on AWS's synthetic claims: the CLI in, files, registry and exit codes out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from tests.conftest import ROOT, aws_sets, run_cli

pytestmark = pytest.mark.slow


def _workspace(tmp: Path, data: Path) -> tuple[Path, list[str]]:
    shutil.copy(ROOT / "pipelines.yaml", tmp / "pipelines.yaml")
    sets = aws_sets(data)
    return tmp / "pipelines.yaml", sets


def _summary(ws: Path) -> dict:
    return json.loads((ws / ".fraudflow" / "runs" / "latest" / "run.json").read_text())


def _step_out(ws: Path, step: str) -> Path:
    return ws / ".fraudflow" / "runs" / "latest" / step / "output"


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory, aws_data: Path) -> tuple[Path, object]:
    ws = tmp_path_factory.mktemp("run")
    yaml_file, sets = _workspace(ws, aws_data)
    proc = run_cli("run", str(yaml_file), *sets, cwd=ws)
    return ws, proc


def test_reference_run_succeeds_with_progress(reference_run: tuple) -> None:
    ws, proc = reference_run
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    for step in ("preprocess", "train", "evaluate", "gate", "bias", "explain", "register", "deploy"):
        assert f"] {step}" in proc.stdout
    summary = _summary(ws)
    assert summary["status"] == "succeeded"
    assert [s["name"] for s in summary["steps"]] == [
        "preprocess",
        "train",
        "evaluate",
        "bias",
        "explain",
        "register",
        "deploy",
    ]
    assert (ws / ".fraudflow" / "runs" / "latest" / "report.html").read_text().count("<svg") >= 2


def test_join_and_split_sizes(reference_run: tuple) -> None:
    ws, _ = reference_run
    report = json.loads((_step_out(ws, "preprocess") / "report" / "preprocess.json").read_text())
    assert report["joined_rows"] == 5000
    sizes = {k: report["splits"][k]["rows"] for k in ("train", "validation", "test")}
    assert sizes == {"train": 4000, "validation": 500, "test": 500}
    test = pd.read_csv(_step_out(ws, "preprocess") / "test" / "test.csv", header=None)
    assert len(test) == 500 and set(test[0].unique()) <= {0, 1}  # label first, no header


def test_evaluation_format_and_auc_equals_sklearn(reference_run: tuple) -> None:
    ws, _ = reference_run
    out = _step_out(ws, "evaluate") / "evaluation"
    ev = json.loads((out / "evaluation.json").read_text())
    auc = ev["classification_metrics"]["roc_auc"]["value"]
    preds = pd.read_csv(out / "predictions.csv")
    assert len(preds) == 500
    assert auc == pytest.approx(roc_auc_score(preds["label"], preds["score"]), abs=1e-12)
    ci = ev["classification_metrics"]["roc_auc"]["confidence_interval"]
    assert ci["lower"] <= auc <= ci["upper"]
    for key in ("pr_auc", "precision", "recall", "f1", "confusion_matrix"):
        assert key in ev["classification_metrics"]
    gate = _summary(ws)["gate"]
    one = {k: gate[k] for k in ("metric", "value", "threshold", "passed")}  # the one-condition form's fields
    assert one == {"metric": "roc_auc", "value": auc, "threshold": 0.7, "passed": auc >= 0.7}
    assert [(c["metric"], c["value"], c["requirement"], c["passed"]) for c in gate["conditions"]] == [
        ("roc_auc", auc, ">= 0.7", auc >= 0.7)
    ]


def test_label_dpl_matches_an_independent_computation(reference_run: tuple, aws_data: Path) -> None:
    ws, _ = reference_run
    raw = pd.read_csv(aws_data / "claims.csv").merge(pd.read_csv(aws_data / "customers.csv"), on="policy_id")
    female = raw["customer_gender"] == "Female"
    expected = (
        raw.loc[~female, "fraud"].mean() - raw.loc[female, "fraud"].mean()
    )  # q_a - q_d, fraud = 1 positive
    assert expected == pytest.approx(0.027107730, abs=1e-8)
    analysis = json.loads((_step_out(ws, "bias") / "analysis" / "analysis.json").read_text())
    groups = analysis["pre_training_bias_metrics"]["facets"]["customer_gender_female"]
    dpl = next(m["value"] for m in groups[0]["metrics"] if m["name"] == "DPL")
    assert dpl == pytest.approx(expected, abs=1e-9)
    post = analysis["post_training_bias_metrics"]["facets"]["customer_gender_female"][0]["metrics"]
    assert "DPPL" in {m["name"] for m in post}


def test_shap_rows_sum_to_the_margin(reference_run: tuple) -> None:
    ws, _ = reference_run
    shap = pd.read_csv(_step_out(ws, "explain") / "analysis" / "shap_values.csv")
    test = pd.read_csv(_step_out(ws, "preprocess") / "test" / "test.csv", header=None)
    booster = xgb.Booster()
    booster.load_model(bytearray((_step_out(ws, "train") / "model" / "xgboost-model").read_bytes()))
    margin = booster.predict(xgb.DMatrix(test.iloc[:, 1:].to_numpy()), output_margin=True)
    assert len(shap) == len(test)
    np.testing.assert_allclose(shap.sum(axis=1).to_numpy(), margin, atol=1e-4)


def test_registered_and_deployed(reference_run: tuple) -> None:
    ws, _ = reference_run
    proc = run_cli("registry", "show", "fraud-detect-xgb", "1", "--format", "json", "--workspace", str(ws))
    assert proc.returncode == 0, proc.stderr
    version = json.loads(proc.stdout)
    assert version["status"] == "PendingManualApproval"
    ev = json.loads((_step_out(ws, "evaluate") / "evaluation" / "evaluation.json").read_text())
    assert (
        version["metrics"]["classification_metrics"]["roc_auc"]["value"]
        == (ev["classification_metrics"]["roc_auc"]["value"])
    )
    assert _summary(ws)["endpoint"]["variants"][0]["version"] == 1


def test_second_run_reuses_every_step_and_a_change_reruns_from_there(
    reference_run: tuple, aws_data: Path
) -> None:
    ws, _ = reference_run
    yaml_file, sets = _workspace(ws, aws_data)
    again = run_cli("run", str(yaml_file), *sets, cwd=ws)
    assert again.returncode == 0, again.stderr
    status = {s["name"]: s["status"] for s in _summary(ws)["steps"]}
    assert [status[s] for s in ("preprocess", "train", "evaluate", "bias", "explain")] == ["cached"] * 5
    assert status["register"] == "cached"  # the same model: its version is reused, not registered twice
    assert _summary(ws)["model_package"]["version"] == 1
    changed = run_cli("run", str(yaml_file), *sets, "--set", "train.hyperparameters.max_depth=4", cwd=ws)
    assert changed.returncode == 0, changed.stderr
    status = {s["name"]: s["status"] for s in _summary(ws)["steps"]}
    assert status["preprocess"] == "cached" and status["train"] == "ran" and status["evaluate"] == "ran"
    assert status["register"] == "ran" and _summary(ws)["model_package"]["version"] == 2


def test_threshold_099_stops_at_the_gate_and_registers_nothing(tmp_path: Path, aws_data: Path) -> None:
    yaml_file, sets = _workspace(tmp_path, aws_data)
    proc = run_cli("run", str(yaml_file), *sets, "--set", "gate.threshold=0.99", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr + proc.stdout
    assert "stopped at the gate" in proc.stdout and "nothing was registered" in proc.stdout
    summary = _summary(tmp_path)
    assert summary["status"] == "stopped_at_gate" and summary["model_package"] is None
    assert {s["name"]: s["status"] for s in summary["steps"]}["register"] == "skipped"
    listing = run_cli("registry", "list", "--format", "json", "--workspace", str(tmp_path))
    assert listing.returncode == 0
    assert "fraud-detect-xgb" not in listing.stdout or '"versions": []' in listing.stdout


def test_conditional_metrics_with_a_group_variable(tmp_path: Path, aws_data: Path) -> None:
    yaml_file, sets = _workspace(tmp_path, aws_data)
    proc = run_cli(
        "run",
        str(yaml_file),
        *sets,
        "--set",
        "bias.group_variable=customer_education",
        "--set",
        "bias.pre_training_metrics=[DPL, CDDL]",
        "--set",
        "bias.post_training_metrics=[DPPL, CDDPL]",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    analysis = json.loads((_step_out(tmp_path, "bias") / "analysis" / "analysis.json").read_text())
    values = {
        m["name"]: m["value"]
        for stage in ("pre_training_bias_metrics", "post_training_bias_metrics")
        for m in analysis[stage]["facets"]["customer_gender_female"][0]["metrics"]
    }
    assert set(values) == {"DPL", "CDDL", "DPPL", "CDDPL"}
    assert all(isinstance(values[k], float) for k in ("CDDL", "CDDPL"))
