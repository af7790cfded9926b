"""step_code/lambda_deployer.py, called directly (moto's Lambda invoke needs Docker) against moto's server.

moto implements create/describe of models, endpoint configs and endpoints, but not UpdateEndpoint (HTTP 500):
the update path runs against moto for everything except that one call, which a thin wrapper records.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

pytest.register_assert_rewrite("tests.conftest_aws")
from tests.conftest_aws import ROLE_ARN, ROOT, Aws  # noqa: E402

pytest_plugins = ["tests.conftest_aws"]
pytestmark = pytest.mark.aws

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def _deployer() -> Any:
    spec = importlib.util.spec_from_file_location(
        "lambda_deployer", ROOT / "step_code" / "lambda_deployer.py"
    )
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


deployer = _deployer()


def register(aws: Aws, status: str = "PendingManualApproval") -> str:
    sm = aws.client("sagemaker")
    groups = sm.list_model_package_groups()["ModelPackageGroupSummaryList"]
    if not groups:
        sm.create_model_package_group(ModelPackageGroupName="fraud")
    return sm.create_model_package(
        ModelPackageGroupName="fraud",
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://b/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelApprovalStatus=status,
    )["ModelPackageArn"]


def event(arn: str, **extra: Any) -> dict[str, Any]:
    return {
        "model_package_arn": arn,
        "endpoint_name": "fraud-ep",
        "instance_type": "ml.m5.large",
        "instance_count": 1,
        "variant_name": "AllTraffic",
        "require_approval": False,
        "role_arn": ROLE_ARN,
        **extra,
    }


def test_creates_model_config_and_endpoint_then_is_idempotent(aws: Aws) -> None:
    arn = register(aws)
    out = deployer.handler(event(arn))  # boto3 picks AWS_ENDPOINT_URL (moto) from the environment
    assert out == {
        "action": "created",
        "endpoint_name": "fraud-ep",
        "model_name": "fraud-ep-v1",
        "endpoint_config_name": "fraud-ep-v1",
    }
    sm = aws.client("sagemaker")
    assert sm.describe_model(ModelName="fraud-ep-v1")["PrimaryContainer"]["ModelPackageName"] == arn
    variant = sm.describe_endpoint_config(EndpointConfigName="fraud-ep-v1")["ProductionVariants"][0]
    assert (variant["VariantName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
        "AllTraffic",
        "ml.m5.large",
        1,
    )
    assert sm.describe_endpoint(EndpointName="fraud-ep")["EndpointConfigName"] == "fraud-ep-v1"

    again = deployer.handler(event(arn))  # a Lambda retry after success
    assert again["action"] == "unchanged"
    assert len(sm.list_models()["Models"]) == 1
    assert len(sm.list_endpoint_configs()["EndpointConfigs"]) == 1


def test_retry_after_partial_failure_finishes_the_job(aws: Aws) -> None:
    arn = register(aws)
    sm = aws.client("sagemaker")
    # A first attempt died after creating the model.
    sm.create_model(
        ModelName="fraud-ep-v1", ExecutionRoleArn=ROLE_ARN, PrimaryContainer={"ModelPackageName": arn}
    )
    out = deployer.handler(event(arn))
    assert out["action"] == "created"
    assert sm.describe_endpoint(EndpointName="fraud-ep")["EndpointStatus"] == "InService"


def test_require_approval_skips_unapproved_versions(aws: Aws) -> None:
    arn = register(aws)
    out = deployer.handler(event(arn, require_approval=True))
    assert out["action"] == "skipped" and "PendingManualApproval" in out["reason"]
    assert aws.client("sagemaker").list_endpoints()["Endpoints"] == []
    approved = register(aws, "Approved")
    assert deployer.handler(event(approved, require_approval=True))["action"] == "created"


class _NoUpdateEndpoint:
    """moto's client, except UpdateEndpoint (unimplemented in moto): recorded instead."""

    def __init__(self, client: Any):
        self._client = client
        self.updates: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        self.updates.append(kwargs)
        return {}


def test_existing_endpoint_is_updated_to_the_new_version(aws: Aws) -> None:
    v1, v2 = register(aws), register(aws)
    deployer.handler(event(v1))
    sm = _NoUpdateEndpoint(aws.client("sagemaker"))
    out = deployer.deploy(event(v2), sm)
    assert out["action"] == "updated" and out["model_name"] == "fraud-ep-v2"
    assert sm.updates == [{"EndpointName": "fraud-ep", "EndpointConfigName": "fraud-ep-v2"}]
    assert sm.describe_model(ModelName="fraud-ep-v2")["PrimaryContainer"]["ModelPackageName"] == v2


def test_resource_names_fit_sagemaker_limits() -> None:
    long = "e" * 63
    name = deployer.resource_name(long, "arn:aws:sagemaker:us-east-1:1:model-package/g/123")
    assert len(name) <= 63 and name.endswith("-v123")
