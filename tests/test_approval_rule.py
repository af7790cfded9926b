"""deploy.when: approved on SageMaker, against moto's server: `apply` makes the EventBridge rule (pattern, target,
the Lambda permission for events.amazonaws.com) instead of a Lambda step; `plan` shows it and a second plan
finds nothing; the events SageMaker sends on approval, matched against the stored rule's pattern and shaped by
its input transformer (moto's own EventBridge code), drive the deployer: approve deploys, reject of the served
version rolls back, then stops serving; switching back to `registered` removes the rule, the target and the
permission."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("tests.conftest_aws")
from fraudflow import exits  # noqa: E402
from tests.conftest import sample_pipelines_text  # noqa: E402
from tests.conftest_aws import Aws, cli  # noqa: E402
from tests.deployer_util import NoUpdateEndpoint, on_approval  # noqa: E402

pytest_plugins = ["tests.conftest_aws"]
pytestmark = pytest.mark.aws

PIPELINE = "fraud-detect-xgb"
GROUP = "fraud-detect-xgb"
ENDPOINT = "fraud-detect-xgb"
RULE = f"{PIPELINE}-deploy-on-approval"
FUNCTION = f"{PIPELINE}-deployer"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def yaml_file(tmp_path: Path, aws_data: Path, when: str) -> Path:
    text = sample_pipelines_text(aws_data)
    anchor = f"      endpoint_name: {ENDPOINT}\n"
    assert anchor in text
    path = tmp_path / "pipelines.yaml"
    path.write_text(text.replace(anchor, f"{anchor}      when: {when}\n"))
    return path


def register(aws: Aws) -> str:
    sm = aws.client("sagemaker")
    if not sm.list_model_package_groups()["ModelPackageGroupSummaryList"]:
        sm.create_model_package_group(ModelPackageGroupName=GROUP)
    return sm.create_model_package(
        ModelPackageGroupName=GROUP,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://b/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelApprovalStatus="PendingManualApproval",
    )["ModelPackageArn"]


def decide(aws: Aws, arn: str, status: str, note: str = "") -> dict[str, Any]:
    """UpdateModelPackage, then the event SageMaker sends for it (the shape of AWS's documented "SageMaker Model
    Package State Change" event: the package's description in `detail`)."""
    sm = aws.client("sagemaker")
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status, ApprovalDescription=note)
    pkg = sm.describe_model_package(ModelPackageName=arn)
    detail = {
        "ModelPackageName": f"{GROUP}/{pkg['ModelPackageVersion']}",
        "ModelPackageGroupName": GROUP,
        "ModelPackageVersion": pkg["ModelPackageVersion"],
        "ModelPackageArn": arn,
        "CreationTime": int(pkg["CreationTime"].timestamp() * 1000),
        "InferenceSpecification": {"Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://b/model.tar.gz"}]},
        "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": status,
        "ApprovalDescription": note,
        "LastModifiedBy": {"IamIdentity": {"Arn": "arn:aws:sts::123456789012:assumed-role/reviewer/alice"}},
    }
    return {
        "version": "0",
        "id": "c800a495-b000-072c-7392-c683e89c96a8",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2026-12-01T22:00:00Z",
        "region": "us-east-1",
        "resources": [arn],
        "detail": detail,
    }


def delivered(aws: Aws, event: dict[str, Any]) -> dict[str, Any] | None:
    """What EventBridge hands the deployer for `event`: None unless the stored rule's pattern matches it (moto's
    EventPattern), else the target's input transformer applied to it (moto's EventTemplateParser)."""
    from moto.events.models import EventPattern
    from moto.events.utils import EventTemplateParser

    events = aws.client("events")
    pattern = events.describe_rule(Name=RULE)["EventPattern"]
    if not EventPattern.load(pattern).matches_event(event):
        return None
    (target,) = events.list_targets_by_rule(Rule=RULE)["Targets"]
    transformer = target["InputTransformer"]
    out = EventTemplateParser.parse(
        input_template=transformer["InputTemplate"],
        input_paths_map=transformer.get("InputPathsMap", {}),
        event={**event, "ingestion-time": 0},
    )
    return out if isinstance(out, dict) else json.loads(out)


def endpoint_versions(sm: Any) -> list[str]:
    config = sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    return [
        v["ModelName"] for v in sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    ]


@pytest.mark.slow
def test_apply_makes_the_rule_and_the_rule_drives_the_deployer(
    tmp_path: Path, aws: Aws, aws_data: Path
) -> None:
    approved = yaml_file(tmp_path, aws_data, "approved")
    definition = json.loads(cli("render", str(approved), env=aws.env).stdout)
    text = json.dumps(definition)
    assert '"Type": "Lambda"' not in text  # no deployment inside the pipeline

    plan = cli("plan", str(approved), env=aws.env)
    assert plan.returncode == exits.CHANGES, plan.stderr
    assert (
        f"+ EventBridge rule {RULE}: create (SageMaker Model Package State Change of group {GROUP}"
        in plan.stdout
    )
    assert f"+ Lambda permission fraudflow-{RULE}: events.amazonaws.com may invoke {FUNCTION}" in plan.stdout

    applied = cli("apply", str(approved), "--yes", env=aws.env)
    assert applied.returncode == 0, applied.stderr
    events, lam = aws.client("events"), aws.client("lambda")
    rule = events.describe_rule(Name=RULE)
    assert rule["State"] == "ENABLED"
    assert json.loads(rule["EventPattern"]) == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": [GROUP], "ModelApprovalStatus": ["Approved", "Rejected"]},
    }
    function_arn = lam.get_function(FunctionName=FUNCTION)["Configuration"]["FunctionArn"]
    (target,) = events.list_targets_by_rule(Rule=RULE)["Targets"]
    assert target["Arn"] == function_arn
    (statement,) = json.loads(lam.get_policy(FunctionName=FUNCTION)["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "lambda:InvokeFunction"
    assert rule["Arn"] in json.dumps(statement["Condition"])

    again = cli("plan", str(approved), env=aws.env)
    assert again.returncode == exits.OK, again.stdout + again.stderr

    # the flow: events the rule matches reach the deployer with the pipeline's deploy arguments
    sm = NoUpdateEndpoint(aws.client("sagemaker"))
    v1, v2 = register(aws), register(aws)
    pending = decide(aws, v1, "PendingManualApproval")
    assert delivered(aws, pending) is None  # not a decision: the rule does not fire
    payload = delivered(aws, decide(aws, v1, "Approved", "QA-1"))
    assert payload is not None and payload["deploy"]["endpoint_name"] == ENDPOINT
    assert payload["event"]["detail"]["ModelPackageArn"] == v1
    out = on_approval(payload, sm)
    assert out["action"] == "created" and out["model_name"] == f"{ENDPOINT}-v1"
    assert out["decided_by"].endswith("assumed-role/reviewer/alice") and out["decision_note"] == "QA-1"
    assert endpoint_versions(sm) == [f"{ENDPOINT}-v1"]

    out = on_approval(delivered(aws, decide(aws, v2, "Approved")), sm)
    assert out["action"] == "updated" and endpoint_versions(sm) == [f"{ENDPOINT}-v2"]

    out = on_approval(delivered(aws, decide(aws, v2, "Rejected", "drift")), sm)
    assert out["action"] == "updated" and "rolled back from v2 (Rejected) to v1" in out["note"]
    assert endpoint_versions(sm) == [f"{ENDPOINT}-v1"]

    out = on_approval(delivered(aws, decide(aws, v2, "Rejected")), sm)  # not served any more: nothing to do
    assert out["action"] == "unchanged"

    out = on_approval(delivered(aws, decide(aws, v1, "Rejected")), sm)
    assert out["action"] == "stopped" and "no version of the group is Approved" in out["reason"]
    assert sm.list_endpoints()["Endpoints"] == []

    # back to `registered`: plan says the rule goes, apply removes it with its target and permission
    registered = yaml_file(tmp_path, aws_data, "registered")
    plan = cli("plan", str(registered), env=aws.env)
    assert plan.returncode == exits.CHANGES
    assert f"- EventBridge rule {RULE}: remove" in plan.stdout
    applied = cli("apply", str(registered), "--yes", env=aws.env)
    assert applied.returncode == 0, applied.stderr
    assert RULE not in [r["Name"] for r in events.list_rules()["Rules"]]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName=FUNCTION)
    final = cli("plan", str(registered), env=aws.env)
    assert final.returncode == exits.OK, final.stdout


def test_an_event_of_another_group_does_not_match(aws: Aws) -> None:
    from moto.events.models import EventPattern

    from fraudflow.sagemaker.approval_rule import event_pattern

    mine = EventPattern.load(json.dumps(event_pattern(GROUP)))
    event = {
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "detail": {"ModelPackageGroupName": GROUP, "ModelApprovalStatus": "Approved"},
    }
    assert mine.matches_event(event)
    assert not mine.matches_event({**event, "detail": {**event["detail"], "ModelPackageGroupName": "other"}})
    assert not mine.matches_event({**event, "detail-type": "SageMaker Model State Change"})
