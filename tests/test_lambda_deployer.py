"""step_code/lambda_deployer.py, called directly (moto's Lambda invoke needs Docker) against moto's server.

moto implements create/describe of models, endpoint configs and endpoints, but not UpdateEndpoint (HTTP 500):
the update path runs against moto for everything except that one call, which a thin wrapper records. The wait
for InService runs on a fake clock (tests/deployer_util.py), so no test sleeps the deployer's 15 s poll.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

pytest.register_assert_rewrite("tests.conftest_aws")
from tests.conftest_aws import ROLE_ARN, Aws  # noqa: E402
from tests.deployer_util import NoUpdateEndpoint, deploy, deployer  # noqa: E402

pytest_plugins = ["tests.conftest_aws"]
pytestmark = pytest.mark.aws

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


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
    out = deploy(event(arn))  # boto3 picks AWS_ENDPOINT_URL (moto) from the environment
    config = out.pop("endpoint_config_name")
    assert out == {
        "action": "created",
        "endpoint_name": "fraud-ep",
        "model_name": "fraud-ep-v1",
        "variants": "AllTraffic->v1 (1)",
    }
    assert re.fullmatch(r"fraud-ep-v1-[0-9a-f]{8}", config)
    sm = aws.client("sagemaker")
    assert sm.describe_model(ModelName="fraud-ep-v1")["PrimaryContainer"]["ModelPackageName"] == arn
    variant = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]
    assert (variant["VariantName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
        "AllTraffic",
        "ml.m5.large",
        1,
    )
    assert sm.describe_endpoint(EndpointName="fraud-ep")["EndpointConfigName"] == config

    again = deployer.handler(event(arn))  # a retried execution after success (the real handler: no wait)
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
    out = deploy(event(arn))
    assert out["action"] == "created"
    assert sm.describe_endpoint(EndpointName="fraud-ep")["EndpointStatus"] == "InService"


def test_require_approval_skips_unapproved_versions(aws: Aws) -> None:
    arn = register(aws)
    out = deploy(event(arn, require_approval=True))
    assert out["action"] == "skipped" and "PendingManualApproval" in out["reason"]
    assert aws.client("sagemaker").list_endpoints()["Endpoints"] == []
    approved = register(aws, "Approved")
    assert deploy(event(approved, require_approval=True))["action"] == "created"


def test_existing_endpoint_is_updated_to_the_new_version(aws: Aws) -> None:
    v1, v2 = register(aws), register(aws)
    deploy(event(v1))
    sm = NoUpdateEndpoint(aws.client("sagemaker"))
    out = deploy(event(v2), sm)
    assert out["action"] == "updated" and out["model_name"] == "fraud-ep-v2"
    assert out["endpoint_config_name"].startswith("fraud-ep-v2-")
    assert sm.updates == [{"EndpointName": "fraud-ep", "EndpointConfigName": out["endpoint_config_name"]}]
    assert sm.describe_model(ModelName="fraud-ep-v2")["PrimaryContainer"]["ModelPackageName"] == v2


def test_resource_names_fit_sagemaker_limits() -> None:
    long = "e" * 63
    name = deployer.resource_name(long, "arn:aws:sagemaker:us-east-1:1:model-package/g/123")
    assert len(name) <= 63 and name.endswith("-v123")


# -- production variants ------------------------------------------------------------------------------------


def variants(*items: tuple[str, float, Any]) -> str:
    """The Lambda step's `variants` input, as compile.py renders it."""
    return json.dumps([{"name": n, "weight": w, "model_version": v} for n, w, v in items])


def served(sm: Any, config: str) -> dict[str, tuple[str, float]]:
    rows = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    return {r["VariantName"]: (r["ModelName"], r["InitialVariantWeight"]) for r in rows}


def test_latest_and_previous_split_traffic_then_a_retry_is_a_no_op(aws: Aws) -> None:
    v1, v2 = register(aws), register(aws)
    split = event(v2, variants=variants(("Blue", 0.9, "latest"), ("Green", 0.1, "previous")))
    out = deploy(split)
    assert out["action"] == "created"
    assert out["variants"] == "Blue->v2 (0.9), Green->v1 (0.1)"
    assert out["model_name"] == "fraud-ep-v2, fraud-ep-v1"
    assert re.fullmatch(r"fraud-ep-v2-v1-[0-9a-f]{8}", out["endpoint_config_name"])
    sm = aws.client("sagemaker")
    models = {m["ModelName"] for m in sm.list_models()["Models"]}
    assert models == {"fraud-ep-v1", "fraud-ep-v2"}
    assert sm.describe_model(ModelName="fraud-ep-v1")["PrimaryContainer"]["ModelPackageName"] == v1
    assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]] == [
        out["endpoint_config_name"]
    ]
    assert served(sm, out["endpoint_config_name"]) == {
        "Blue": ("fraud-ep-v2", 0.9),
        "Green": ("fraud-ep-v1", 0.1),
    }
    assert sm.describe_endpoint(EndpointName="fraud-ep")["EndpointConfigName"] == out["endpoint_config_name"]

    again = deploy(split)  # a retried execution after success
    assert again == {**out, "action": "unchanged"}
    assert len(sm.list_models()["Models"]) == 2
    assert len(sm.list_endpoint_configs()["EndpointConfigs"]) == 1


def test_another_weight_is_another_endpoint_config(aws: Aws) -> None:
    register(aws)
    v2 = register(aws)
    deploy(event(v2, variants=variants(("Blue", 0.9, "latest"), ("Green", 0.1, "previous"))))
    sm = NoUpdateEndpoint(aws.client("sagemaker"))
    out = deploy(event(v2, variants=variants(("Blue", 0.5, "latest"), ("Green", 0.5, "previous"))), sm)
    assert out["action"] == "updated" and out["variants"] == "Blue->v2 (0.5), Green->v1 (0.5)"
    assert len(sm.list_endpoint_configs()["EndpointConfigs"]) == 2
    assert len(sm.list_models()["Models"]) == 2  # the same two versions: no new model
    assert sm.updates == [{"EndpointName": "fraud-ep", "EndpointConfigName": out["endpoint_config_name"]}]


def test_a_number_pins_that_version(aws: Aws) -> None:
    v1, _, v3 = register(aws), register(aws), register(aws)
    out = deploy(event(v3, variants=variants(("Pinned", 1, 1))))
    assert out["action"] == "created" and out["variants"] == "Pinned->v1 (1)"
    sm = aws.client("sagemaker")
    assert served(sm, out["endpoint_config_name"]) == {"Pinned": ("fraud-ep-v1", 1.0)}
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["fraud-ep-v1"]
    assert sm.describe_model(ModelName="fraud-ep-v1")["PrimaryContainer"]["ModelPackageName"] == v1


def test_a_missing_version_is_a_clear_error_and_changes_nothing(aws: Aws) -> None:
    v1 = register(aws)
    with pytest.raises(deployer.DeployError) as info:
        deploy(event(v1, variants=variants(("Blue", 0.9, "latest"), ("Old", 0.1, 7))))
    message = str(info.value)
    assert "'Old'" in message and "no version 7" in message and "'fraud'" in message and "v1" in message
    sm = aws.client("sagemaker")
    assert sm.list_models()["Models"] == [] and sm.list_endpoints()["Endpoints"] == []


def test_previous_on_the_first_registration_gives_its_weight_to_latest(aws: Aws) -> None:
    v1 = register(aws)
    out = deploy(event(v1, variants=variants(("Blue", 0.9, "latest"), ("Green", 0.1, "previous"))))
    assert out["action"] == "created" and out["variants"] == "Blue->v1 (1)"
    assert "Green" in out["note"] and "no version before v1" in out["note"] and "Blue" in out["note"]
    sm = aws.client("sagemaker")
    assert served(sm, out["endpoint_config_name"]) == {"Blue": ("fraud-ep-v1", 1.0)}

    alone = deploy(event(v1, endpoint_name="other-ep", variants=variants(("Green", 1, "previous"))))
    assert alone["variants"] == "Green->v1 (1)" and "serves v1 (latest)" in alone["note"]


def test_require_approval_names_the_unapproved_package(aws: Aws) -> None:
    register(aws)  # v1: PendingManualApproval
    v2 = register(aws, "Approved")
    split = event(
        v2, require_approval=True, variants=variants(("Blue", 0.9, "latest"), ("Green", 0.1, "previous"))
    )
    out = deploy(split)
    assert out["action"] == "skipped"
    assert "v1 (Green) is PendingManualApproval" in out["reason"] and "v2" not in out["reason"]
    sm = aws.client("sagemaker")
    assert sm.list_endpoints()["Endpoints"] == [] and sm.list_models()["Models"] == []


def test_endpoint_config_names_fit_sagemaker_limits() -> None:
    many = [
        {"VariantName": f"V{i}", "ModelName": f"{'e' * 50}-v{10000 + i}", "InitialVariantWeight": 0.1}
        for i in range(10)
    ]
    long = deployer.config_name("e" * 63, many)
    assert len(long) <= 63 and re.fullmatch(r"e+-[0-9a-f]{8}", long)
    assert long == deployer.config_name("e" * 63, [dict(v) for v in many])  # deterministic
    assert long != deployer.config_name("e" * 63, [*many[:9], {**many[9], "InitialVariantWeight": 0.2}])
