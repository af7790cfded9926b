"""The deployer the SageMaker pipeline's Lambda step invokes: registered model package → real-time endpoint.

Creates a model from the package, an endpoint config and the endpoint; when the endpoint exists, points it at the
new config. Every name derives from the package's version, so a retried invocation finds what the first attempt
created and finishes the job instead of duplicating it (idempotent). Returns what it did, as the step's
OutputParameters (strings): action (created | updated | unchanged | skipped), endpoint_name, model_name.

Self-contained like all step_code: only the standard library and boto3 (which the Lambda runtime provides).
boto3 honours AWS_ENDPOINT_URL, which the tests point at moto.
"""

from __future__ import annotations

import re
from typing import Any

IN_PROGRESS = ("Creating", "Updating", "SystemUpdating", "RollingBack")


def _client() -> Any:
    import boto3

    return boto3.client("sagemaker")


def _missing(exc: Exception) -> bool:
    """SageMaker reports a missing model/config/endpoint as a ValidationException 'Could not find ...'."""
    err = getattr(exc, "response", {}).get("Error", {})
    text = f"{err.get('Code', '')} {err.get('Message', '')}".lower()
    return "could not find" in text or "does not exist" in text or "not found" in text


def resource_name(endpoint: str, package_arn: str) -> str:
    """<endpoint>-v<version>: one model and one endpoint config per registered version, ≤ 63 characters."""
    version = package_arn.rstrip("/").rsplit("/", 1)[-1]
    suffix = f"-v{version}" if version.isdigit() else "-" + re.sub(r"[^a-zA-Z0-9-]", "-", version)[-20:]
    return (endpoint[: 63 - len(suffix)] + suffix).strip("-")


def _exists(describe: Any, **kwargs: Any) -> dict | None:
    try:
        return describe(**kwargs)
    except Exception as exc:  # botocore ClientError; no botocore import needed to recognise it
        if _missing(exc):
            return None
        raise


def deploy(event: dict[str, Any], sm: Any) -> dict[str, str]:
    arn = event["model_package_arn"]
    endpoint = event["endpoint_name"]
    name = resource_name(endpoint, arn)
    result = {"endpoint_name": endpoint, "model_name": name, "endpoint_config_name": name}
    if str(event.get("require_approval", False)).lower() == "true":
        status = sm.describe_model_package(ModelPackageName=arn).get("ModelApprovalStatus")
        if status != "Approved":
            return {**result, "action": "skipped", "reason": f"model package is {status}, not Approved"}

    if _exists(sm.describe_model, ModelName=name) is None:
        sm.create_model(
            ModelName=name, ExecutionRoleArn=event["role_arn"], PrimaryContainer={"ModelPackageName": arn}
        )
    if _exists(sm.describe_endpoint_config, EndpointConfigName=name) is None:
        sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": event.get("variant_name") or "AllTraffic",
                    "ModelName": name,
                    "InstanceType": event["instance_type"],
                    "InitialInstanceCount": int(event.get("instance_count", 1)),
                    "InitialVariantWeight": 1.0,
                }
            ],
        )
    current = _exists(sm.describe_endpoint, EndpointName=endpoint)
    if current is None:
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=name)
        return {**result, "action": "created"}
    if current.get("EndpointConfigName") == name:
        return {**result, "action": "unchanged"}  # a retry after the update went through
    if current.get("EndpointStatus") in IN_PROGRESS:
        # SageMaker refuses an update mid-transition; failing lets the pipeline's retry policy try again.
        raise RuntimeError(f"endpoint {endpoint} is {current['EndpointStatus']}; retry when it is InService")
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=name)
    return {**result, "action": "updated"}


def handler(event: dict[str, Any], context: Any = None) -> dict[str, str]:
    return deploy(event, _client())
