"""The monitoring pipeline executed under SageMaker's container contracts (tests/sagemaker_harness.py) after the
training pipeline: the deployer Lambda finds the served version's baseline, step_code/monitor.py runs as a
processing job on captured traffic in S3, and on a violation the Lambda starts the training pipeline."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

pytest.register_assert_rewrite("tests.conftest_aws", "tests.sagemaker_harness")
from tests import sagemaker_harness as h  # noqa: E402
from tests.conftest_aws import BUCKET, Aws, cli  # noqa: E402
from tests.test_container_contract import emulate  # noqa: E402
from tests.test_container_contract import namespaces as namespaces  # noqa: E402, F401 - fixtures

pytest_plugins = ["tests.conftest_aws"]
pytestmark = [pytest.mark.aws, pytest.mark.slow]

CAPTURE = f"s3://{BUCKET}/capture/fraud-detect-xgb"
MONITOR = [
    "--set", "monitor.schedule=rate(1 day)",
    "--set", f"monitor.capture={CAPTURE}",
    "--set", "monitor.window_hours=24",
    "--set", "monitor.retrain=on_violation",
]  # fmt: skip
SHIFTED = ["customer_age", "vehicle_claim", "months_as_customer"]


def _capture(aws: Aws, raw: pd.DataFrame) -> None:
    """Requests of raw records in SageMaker's data-capture layout, written now (inside the window)."""
    now = datetime.now(timezone.utc)
    lines = []
    for start in range(0, len(raw), 25):
        chunk = json.loads(raw.iloc[start : start + 25].drop(columns=["fraud"]).to_json(orient="records"))
        answer = {
            "predictions": [{"probability": 0.05, "decision": 0} for _ in chunk],
            "decision_threshold": 0.1,
        }
        lines.append(
            json.dumps(
                {
                    "captureData": {
                        "endpointInput": {"observedContentType": "application/json", "mode": "INPUT",
                                          "data": json.dumps({"records": chunk}), "encoding": "JSON"},
                        "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                           "data": json.dumps(answer), "encoding": "JSON"},
                    },
                    "eventMetadata": {"eventId": f"e{start}", "inferenceId": f"r{start}",
                                      "inferenceTime": now.isoformat().replace("+00:00", "Z")},
                    "eventVersion": "0",
                }
            )
        )  # fmt: skip
    key = f"capture/fraud-detect-xgb/AllTraffic/{now:%Y/%m/%d/%H}/capture.jsonl"
    aws.client("s3").put_object(Bucket=BUCKET, Key=key, Body="\n".join(lines).encode())


def test_the_monitoring_pipeline_runs_as_sagemaker_would(
    namespaces: None, yaml_file: Path, aws: Aws, tmp_path: Path, aws_data: Path
) -> None:
    emulate(yaml_file, aws, tmp_path)  # the training pipeline: its outputs, the package, the endpoint
    applied = cli("apply", str(yaml_file), "--yes", *MONITOR, env=aws.env)
    assert applied.returncode == 0, applied.stderr
    raw = pd.read_csv(aws_data / "claims.csv").merge(pd.read_csv(aws_data / "customers.csv"), on="policy_id")
    window = raw.sample(600, random_state=4)
    for column in SHIFTED:
        window[column] = window[column] + 2 * raw[column].std()
    _capture(aws, window)

    emu = h.PipelineEmulator(aws, "fraud-detect-xgb-monitor", tmp_path / "monitoring")
    ex = emu.run()
    assert ex.status == "Succeeded", ex.failure
    assert [s.name for s in ex.steps] == ["ResolveBaseline", "Monitor", "CheckViolations", "StartTraining"]
    found = ex.step("ResolveBaseline").detail["result"]
    assert found["baseline_uri"].endswith("/Preprocess/output/baseline")
    out = emu.ctx.get("Steps.Monitor.ProcessingOutputConfig.Outputs['monitor'].S3Output.S3Uri")
    report = json.loads(h.get_object(aws.client("s3"), out + "/report.json"))
    assert report["records"] == 600
    assert report["drifted_features"] == sorted(SHIFTED)
    violations = json.loads(h.get_object(aws.client("s3"), out + "/constraint_violations.json"))["violations"]
    assert {v["feature_name"] for v in violations} >= set(SHIFTED)
    started = ex.step("StartTraining").detail["result"]["pipeline_execution_arn"]
    assert ":pipeline/fraud-detect-xgb/execution/" in started
