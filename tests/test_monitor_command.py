"""`fraudflow monitor` end to end on AWS's synthetic claims and a model trained by a real `fraudflow run`: windows
as raw files and as SageMaker data-capture folders in, report.json / constraint_violations.json / report.html
and exit codes out."""

from __future__ import annotations

import base64
import json
import shutil
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT, aws_sets, run_cli

pytestmark = pytest.mark.slow

SHIFTED = ["customer_age", "vehicle_claim", "months_as_customer"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, aws_data: Path) -> tuple[Path, list[str], pd.DataFrame]:
    ws = tmp_path_factory.mktemp("monitor")
    shutil.copy(ROOT / "pipelines.yaml", ws / "pipelines.yaml")
    sets = aws_sets(aws_data)
    proc = run_cli("run", str(ws / "pipelines.yaml"), *sets, cwd=ws)
    assert proc.returncode == 0, proc.stderr
    raw = pd.read_csv(aws_data / "claims.csv").merge(pd.read_csv(aws_data / "customers.csv"), on="policy_id")
    return ws, sets, raw


def _monitor(ws: Path, sets: list[str], *args: str) -> tuple[int, dict]:
    proc = run_cli("monitor", str(ws / "pipelines.yaml"), *sets, *args, "--format", "json", cwd=ws)
    assert proc.returncode in (0, 4), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_three_features_shifted_by_two_sd_flag_exactly_those_three(trained: tuple, tmp_path: Path) -> None:
    ws, sets, raw = trained
    window = raw.sample(1000, random_state=7)
    for column in SHIFTED:
        window[column] = window[column] + 2 * raw[column].std()
    window.to_csv(tmp_path / "shifted.csv", index=False)
    code, report = _monitor(ws, sets, "--current", str(tmp_path / "shifted.csv"))
    assert code == 4
    assert report["drifted_features"] == sorted(SHIFTED)
    assert {v["feature_name"] for v in report["violations"]} == set(SHIFTED)
    for v in report["violations"]:  # Model Monitor's constraint_violations.json shape
        assert {"feature_name", "constraint_check_type", "description"} <= set(v)
    out = Path(report["report_dir"])
    assert json.loads((out / "monitor" / "constraint_violations.json").read_text()) == {
        "violations": report["violations"]
    }
    html = Path(report["html"]).read_text()
    assert html.count("<svg") == 3  # one plot per drifted feature (no scores in a raw file: no score plot)
    for column in SHIFTED:
        assert f"{column} distribution" in html


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_unshifted_windows_flag_nothing(trained: tuple, tmp_path: Path, seed: int) -> None:
    ws, sets, raw = trained
    raw.sample(1000, random_state=seed, replace=True).to_csv(tmp_path / "same.csv", index=False)
    code, report = _monitor(ws, sets, "--current", str(tmp_path / "same.csv"))
    assert (code, report["violations"]) == (0, [])
    assert len(report["features"]) == 27  # every raw input column of the model was compared


# ---------------------------------------------------------------------------------------------- capture


def _model(ws: Path):  # the registered version, loaded as `fraudflow serve` loads it
    from fraudflow.local.registry import Registry
    from fraudflow.local.serving.model import load_model

    registry = Registry(ws / ".fraudflow")
    try:
        return load_model(registry.latest("fraud-detect-xgb"))
    finally:
        registry.close()


def _event(request: dict, response: dict, inference_id: str, csv_rows: bool = False) -> dict:
    if csv_rows:
        body_in = {
            "observedContentType": "text/csv",
            "mode": "INPUT",
            "data": request["csv"],
            "encoding": "CSV",
        }
        body_out = {
            "observedContentType": "text/csv",
            "mode": "OUTPUT",
            "data": response["csv"],
            "encoding": "CSV",
        }
    else:
        body_in = {
            "observedContentType": "application/json",
            "mode": "INPUT",
            "data": json.dumps(request),
            "encoding": "JSON",
        }
        body_out = {  # base64, as SageMaker writes a content type it was not told is JSON or CSV
            "observedContentType": "application/json",
            "mode": "OUTPUT",
            "data": base64.b64encode(json.dumps(response).encode()).decode(),
            "encoding": "BASE64",
        }
    return {
        "captureData": {"endpointInput": body_in, "endpointOutput": body_out},
        "eventMetadata": {
            "eventId": str(uuid.uuid4()),
            "inferenceId": inference_id,
            "inferenceTime": "2026-11-30T10:00:00Z",
        },
        "eventVersion": "0",
    }


def write_capture(ws: Path, raw: pd.DataFrame, folder: Path, *, degrade: bool) -> pd.DataFrame:
    """SageMaker's data-capture layout <endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl, requests of 20 raw records
    answered by the real model (or, degraded, by scores that lost their order) plus a few CSV requests of encoded
    rows; returns the labels (inference_id, record, fraud)."""
    from fraudflow.local.serving.model import encode_records

    model = _model(ws)
    records = json.loads(raw.drop(columns=["fraud"]).to_json(orient="records"))
    rows = encode_records(model, records)
    scores = model.predict(rows)
    if degrade:
        scores = np.random.default_rng(0).permutation(scores)
    t = model.decision_threshold
    hour = folder / "fraud-detect-xgb" / "AllTraffic" / "2026" / "11" / "30" / "10"
    hour.mkdir(parents=True)
    labels = []
    with open(hour / "capture-1.jsonl", "w") as fh:
        for start in range(0, len(records), 20):
            ident = f"req-{start}"
            chunk = range(start, min(start + 20, len(records)))
            preds = [{"probability": float(scores[i]), "decision": int(scores[i] >= t)} for i in chunk]
            if start % 200 == 0:  # encoded rows as text/csv, answered with scores
                csv_rows = "\n".join(",".join(repr(float(v)) for v in rows[i]) for i in chunk)
                answer = "\n".join(repr(float(scores[i])) for i in chunk)
                event = _event({"csv": csv_rows}, {"csv": answer}, ident, csv_rows=True)
            else:
                event = _event(
                    {"records": [records[i] for i in chunk]},
                    {"predictions": preds, "decision_threshold": t, "variant": "AllTraffic"},
                    ident,
                )
            fh.write(json.dumps(event) + "\n")
            labels += [
                {"inference_id": ident, "record": i - start, "fraud": int(raw["fraud"].iloc[i])}
                for i in chunk
            ]
    return pd.DataFrame(labels)


def test_capture_with_true_labels_passes_the_quality_check(trained: tuple, tmp_path: Path) -> None:
    ws, sets, raw = trained
    window = raw.sample(1500, random_state=11)
    labels = write_capture(ws, window, tmp_path / "capture", degrade=False)
    labels.to_csv(tmp_path / "labels.csv", index=False)
    code, report = _monitor(
        ws, sets, "--current", str(tmp_path / "capture"), "--labels", str(tmp_path / "labels.csv")
    )
    assert report["records"] == 1500
    assert report["quality"]["labelled_records"] == 1500
    assert not [v for v in report["violations"] if v["constraint_check_type"] == "model_quality_check"]
    assert report["drifted_features"] == []
    assert report["bias"]["facet"] == "customer_gender_female"


def test_a_degraded_model_fails_the_quality_check(trained: tuple, tmp_path: Path) -> None:
    ws, sets, raw = trained
    window = raw.sample(1500, random_state=11)
    labels = write_capture(ws, window, tmp_path / "capture", degrade=True)
    labels.to_csv(tmp_path / "labels.csv", index=False)
    code, report = _monitor(
        ws, sets, "--current", str(tmp_path / "capture"), "--labels", str(tmp_path / "labels.csv")
    )
    assert code == 4
    failed = {
        v["feature_name"] for v in report["violations"] if v["constraint_check_type"] == "model_quality_check"
    }
    assert "roc_auc" in failed
    assert report["quality"]["metrics"]["roc_auc"]["current"] < 0.65
    assert report["drifted_features"] == []  # the claims did not change; the model did


def test_labels_by_a_key_column(trained: tuple, tmp_path: Path) -> None:
    ws, sets, raw = trained
    window = raw.sample(600, random_state=5)
    write_capture(ws, window, tmp_path / "capture", degrade=True)
    window[["policy_id", "fraud"]].to_csv(tmp_path / "labels.csv", index=False)
    code, report = _monitor(
        ws,
        [*sets, "--set", "monitor.labels.key=policy_id"],
        "--current",
        str(tmp_path / "capture"),
        "--labels",
        str(tmp_path / "labels.csv"),
    )
    # the CSV requests carry encoded rows (no policy_id): only the JSON records join
    assert 0 < report["quality"]["labelled_records"] < 600
    assert code == 4


def test_user_mistakes_are_located_errors(trained: tuple, tmp_path: Path) -> None:
    ws, sets, _ = trained
    proc = run_cli("monitor", str(ws / "pipelines.yaml"), *sets, "--current", str(tmp_path / "nope"), cwd=ws)
    assert proc.returncode == 1 and "FF932" in proc.stderr
    (tmp_path / "bad.jsonl").write_text('{"captureData": {}}\nnot json\n')
    proc = run_cli(
        "monitor", str(ws / "pipelines.yaml"), *sets, "--current", str(tmp_path / "bad.jsonl"), cwd=ws
    )
    assert proc.returncode == 1 and "FF687" in proc.stderr and "bad.jsonl:1" in proc.stderr
    proc = run_cli(
        "monitor", str(ws / "pipelines.yaml"), *sets, "--current", str(tmp_path), "--retrain", cwd=ws
    )
    assert proc.returncode == 64 and "FF933" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_retrain_on_violation_runs_the_pipeline(trained: tuple, tmp_path: Path) -> None:
    ws, sets, raw = trained
    window = raw.sample(500, random_state=3)
    window["vehicle_claim"] = window["vehicle_claim"] * 5
    window.to_csv(tmp_path / "w.csv", index=False)
    runs = ws / ".fraudflow" / "runs"
    before = {p.name for p in runs.iterdir()}
    proc = run_cli(
        "monitor",
        str(ws / "pipelines.yaml"),
        *sets,
        "--set",
        "monitor.retrain=on_violation",
        "--current",
        str(tmp_path / "w.csv"),
        "--retrain",
        cwd=ws,
    )
    assert proc.returncode == 4, proc.stderr
    new = {p.name for p in runs.iterdir()} - before - {"latest"}
    assert len(new) == 1  # `fraudflow run`'s code path: a run folder with its summary
    assert json.loads((runs / new.pop() / "run.json").read_text())["status"] == "succeeded"
