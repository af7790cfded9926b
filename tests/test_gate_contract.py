"""The gate on SageMaker, executed under the container contracts (tests/sagemaker_harness.py) on moto's server: the
Condition step reads the bias check's report and the champion comparison, and the Evaluate job finds the champion
in the model registry when it runs — a version registered and approved after `apply` is the one compared."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.conftest_aws", "tests.sagemaker_harness")
from tests import sagemaker_harness as h  # noqa: E402
from tests.conftest import ROOT  # noqa: E402
from tests.conftest_aws import Aws  # noqa: E402
from tests.test_container_contract import emulate, namespaces, s3_json  # noqa: E402, F401 - a fixture

pytest_plugins = ["tests.conftest_aws"]
pytestmark = [pytest.mark.aws, pytest.mark.slow]

GATE = """gate:
      metric: roc_auc
      threshold: 0.7
      conditions: [{metric: DPPL, max_abs: 0.1}]
      champion: {metric: roc_auc}"""


@pytest.fixture
def gate_yaml(tmp_path: Path, aws_data: Path) -> Path:
    text = (ROOT / "pipelines.yaml").read_text().replace("data_dir: data ", f"data_dir: {aws_data} ", 1)
    text = text.replace("gate: {metric: roc_auc, threshold: 0.7}", GATE)
    path = tmp_path / "pipelines.yaml"
    path.write_text(text)
    return path


def _evaluation(aws: Aws, emu: h.PipelineEmulator) -> dict:
    out = emu.ctx.properties["Evaluate"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    return s3_json(aws, out.rstrip("/") + "/evaluation.json")


def test_the_condition_step_reads_bias_and_the_champion_found_at_execution_time(
    namespaces: None,  # noqa: F811
    gate_yaml: Path,
    aws: Aws,
    tmp_path: Path,
) -> None:
    first = emulate(gate_yaml, aws, tmp_path / "first")
    ex = first.execution
    assert ex.status == "Succeeded", ex.failure
    names = [s.name for s in ex.steps]
    assert names.index("BiasCheck") < names.index("CheckMetric")  # bias before the gate that reads it
    compared = ex.step("CheckMetric").detail["compared"]
    dppl = first.clarify["BiasCheck"]["post_training_bias"]["DPPL"]
    assert (dppl, "GreaterThanOrEqualTo", -0.1) in compared and (dppl, "LessThanOrEqualTo", 0.1) in compared
    none = _evaluation(aws, first)["champion"]  # nothing to beat yet: passes, and says why
    assert none["found"] is False and none["margin"] == 0.0
    assert none["reason"] in (
        "no Approved version in model package group 'fraud-detect-xgb'",
        "no model package group 'fraud-detect-xgb' yet",
    )

    sm = aws.client("sagemaker")
    (v1,) = sm.list_model_packages(ModelPackageGroupName="fraud-detect-xgb")["ModelPackageSummaryList"]
    sm.update_model_package(ModelPackageArn=v1["ModelPackageArn"], ModelApprovalStatus="Approved")

    second = emulate(gate_yaml, aws, tmp_path / "second", MaxDepth=1)
    assert second.execution.status == "Failed"
    champion = _evaluation(aws, second)["champion"]
    assert champion["found"] and champion["model_package"] == v1["ModelPackageArn"]
    assert champion["champion"] == pytest.approx(
        _evaluation(aws, first)["classification_metrics"]["roc_auc"]["value"]
    )  # the approved model, scored on the same test split
    assert champion["margin"] == champion["difference"]["value"] < 0
    failure = second.execution.failure
    assert failure.startswith("GateFailed: the gate stopped the pipeline; every condition must hold:")
    assert f"; champion roc_auc margin over the champion {champion['margin']} needs >= 0" in failure
    assert f"; DPPL {second.clarify['BiasCheck']['post_training_bias']['DPPL']} needs |x| <= 0.1 ;" in failure
