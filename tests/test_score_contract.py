"""The scoring pipeline executed under SageMaker's container contracts (tests/sagemaker_harness.py) after the
training pipeline: the deployer Lambda resolves the served package, preprocess.py --records joins the sources as
a processing job, and the batch transform of that package (SingleRecord JSON lines, JoinSource Input) scores
every claim with the probabilities `fraudflow predict` writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.register_assert_rewrite("tests.conftest_aws", "tests.sagemaker_harness")
from tests import sagemaker_harness as h  # noqa: E402
from tests.conftest_aws import BUCKET, Aws, cli  # noqa: E402
from tests.test_container_contract import emulate, local_run  # noqa: E402
from tests.test_container_contract import namespaces as namespaces  # noqa: E402, F401 - fixtures

pytest_plugins = ["tests.conftest_aws"]
pytestmark = [pytest.mark.aws, pytest.mark.slow]

SCORED = f"s3://{BUCKET}/scored/fraud-detect"
BATCH = ["--set", f"deploy.batch.output={SCORED}"]


def test_the_scoring_pipeline_scores_what_predict_scores(
    namespaces: None, yaml_file: Path, aws: Aws, tmp_path: Path, aws_data: Path
) -> None:
    emulate(yaml_file, aws, tmp_path)  # the training pipeline: its outputs, the package, the endpoint
    applied = cli("apply", str(yaml_file), "--yes", *BATCH, env=aws.env)
    assert applied.returncode == 0, applied.stderr

    emu = h.PipelineEmulator(aws, "fraud-detect-xgb-score", tmp_path / "scoring")
    ex = emu.run()
    assert ex.status == "Succeeded", ex.failure
    assert [s.name for s in ex.steps] == ["ResolveModel", "JoinClaims", "CreateModel-CreateModel", "Score"]
    [written] = ex.step("Score").detail["outputs"]
    assert written.startswith(SCORED + "/") and written.endswith("records.jsonl.out")
    lines = [json.loads(ln) for ln in h.get_object(aws.client("s3"), written).decode().splitlines()]
    scored = pd.DataFrame(
        {
            "policy_id": [ln["records"][0]["policy_id"] for ln in lines],
            "probability": [ln["SageMakerOutput"]["predictions"][0]["probability"] for ln in lines],
            "decision": [ln["SageMakerOutput"]["predictions"][0]["decision"] for ln in lines],
        }
    )

    local_run(yaml_file)  # the same pipeline run locally registers the same model
    out = tmp_path / "predicted.csv"
    predicted = cli("predict", str(yaml_file), "-o", str(out), cwd=yaml_file.parent, env=aws.env)
    assert predicted.returncode == 0, predicted.stderr
    want = pd.read_csv(out)
    assert len(scored) == len(want) == len(pd.read_csv(aws_data / "claims.csv"))
    assert scored["policy_id"].tolist() == want["policy_id"].tolist()
    diff = np.abs(scored["probability"].to_numpy() - want["probability"].to_numpy())
    print(f"scoring pipeline vs fraudflow predict: {len(scored)} claims, max |diff| {diff.max():.3g}")
    assert diff.max() == 0
    assert scored["decision"].tolist() == want["decision"].tolist()
