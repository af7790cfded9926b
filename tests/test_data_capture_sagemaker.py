"""deploy.data_capture on SageMaker: rendered into the deployer Lambda's arguments as the SDK v2 builds a
DataCaptureConfig, created on the endpoint config by the Lambda (moto's server), and granted by `fraudflow iam`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fraudflow.sagemaker.capture import data_capture_config
from tests.test_sagemaker_render import render, steps, yaml_copy

CAPTURE = "      data_capture: {sampling_percentage: 30, destination: s3://captures-bucket/fraud/dc}\n"


def with_capture(text: str, block: str = CAPTURE) -> str:
    anchor = "      endpoint_name: fraud-detect-xgb\n"
    return text.replace(anchor, anchor + block, 1)


@pytest.mark.parametrize(
    ("section", "sdk"),
    [
        (
            {"sampling_percentage": 30, "destination": "s3://b/p"},
            {"sampling_percentage": 30, "destination_s3_uri": "s3://b/p"},
        ),
        ({}, None),
        ({"enabled": True}, {"sampling_percentage": 100, "destination_s3_uri": "s3://d/x"}),
        (
            {"capture_mode": "Input", "destination": "local/folder", "kms_key_id": "k"},
            {
                "sampling_percentage": 100,
                "destination_s3_uri": "s3://d/x",
                "capture_options": ["REQUEST"],
                "kms_key_id": "k",
            },
        ),
    ],
)
def test_the_config_is_what_sdk_v2_builds(section: dict, sdk: dict | None) -> None:
    from sagemaker.model_monitor import DataCaptureConfig

    got = data_capture_config(section or None, "s3://d/x")
    if sdk is None:
        assert got is None
        return
    want = DataCaptureConfig(enable_capture=True, sagemaker_session=object(), **sdk)._to_request_dict()
    assert got == want
    assert data_capture_config({**section, "enabled": False}, "s3://d/x") is None


def test_render_passes_it_to_the_deployer_and_iam_lets_the_endpoint_write_there(
    aws_data: Path, tmp_path: Path
) -> None:
    path = yaml_copy(tmp_path, aws_data, with_capture)
    deploy = steps(render(str(path)))["Deploy"]
    capture = json.loads(deploy["Arguments"]["data_capture"])
    assert capture["DestinationS3Uri"] == "s3://captures-bucket/fraud/dc"
    assert capture["InitialSamplingPercentage"] == 30
    from tests.test_sagemaker_render import cli

    out = cli("iam", str(path), "--for", "execution", "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    text = json.dumps(doc)
    assert "arn:aws:s3:::captures-bucket/fraud/dc/*" in text
    for sub in ("plain", "default"):
        (tmp_path / sub).mkdir()
    plain = cli("iam", str(yaml_copy(tmp_path / "plain", aws_data)), "--for", "execution", "--format", "json")
    assert plain.returncode == 0 and "WriteDataCapture" not in plain.stdout  # no capture, no grant
    enabled = yaml_copy(
        tmp_path / "default", aws_data, lambda t: with_capture(t, "      data_capture: {enabled: true}\n")
    )
    dest = json.loads(steps(render(str(enabled)))["Deploy"]["Arguments"]["data_capture"])["DestinationS3Uri"]
    assert dest.startswith("s3://") and dest.endswith("/fraud-detect/data-capture")


@pytest.mark.aws
def test_the_deployer_creates_the_endpoint_config_with_it(aws: Any) -> None:
    from tests.test_lambda_deployer import deployer, event, register

    arn = register(aws)
    capture = data_capture_config({"sampling_percentage": 20, "destination": "s3://b/dc"}, "s3://d/x")
    out = deployer.handler(event(arn, endpoint_name="fraud-cap", data_capture=json.dumps(capture)))
    variants = [{"VariantName": "AllTraffic", "ModelName": "fraud-cap-v1"}]
    assert deployer.config_name("fraud-cap", variants, capture) != deployer.config_name("fraud-cap", variants)
    sm = aws.client("sagemaker")
    got = sm.describe_endpoint_config(EndpointConfigName=out["endpoint_config_name"])["DataCaptureConfig"]
    assert got["DestinationS3Uri"] == "s3://b/dc" and got["InitialSamplingPercentage"] == 20
    assert [o["CaptureMode"] for o in got["CaptureOptions"]] == ["Input", "Output"]
    with pytest.raises(deployer.DeployError, match="data_capture"):
        deployer.handler(event(arn, endpoint_name="fraud-bad", data_capture="{not json"))


pytest_plugins = ["tests.conftest_aws"]
