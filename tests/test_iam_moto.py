"""The calls `plan`, `apply --start --wait` and the deployer really make, recorded against moto's server, are each
allowed by the policy `fraudflow iam` generates for the role that makes them; and a real AccessDenied (moto
enforcing IAM for a user) is reported as FF740 naming the action.

moto does not enforce IAM by default, and when it does (`/moto-api/reset-auth`) it authorises SageMaker and
Lambda calls against the resource `*`, which a resource-scoped policy never matches: so it cannot run apply
"under" these policies. Instead every call is recorded (botocore's `before-parameter-build` event, with its
parameters), translated into the IAM requests AWS authorises for it (action, resource ARN, condition keys, as
the Service Authorization Reference lists them, in AUTHORIZATION below) and evaluated against the generated
policy (tests/iam_eval.py). This proves the policies cover every call fraudflow makes on the paths exercised;
it does not prove AWS's own evaluation agrees (that needs a real account), nor cover what SageMaker does with
the execution role (moto runs no jobs: tests/test_iam.py checks that role against the definition instead).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

pytest.register_assert_rewrite("tests.conftest_aws", "tests.iam_eval")
from tests.conftest_aws import REGION, ROOT, Aws  # noqa: E402
from tests.iam_eval import allowed  # noqa: E402

pytest_plugins = ["tests.conftest_aws"]
pytestmark = pytest.mark.aws


ACCOUNT = "123456789012"  # moto's
Request = tuple[str, str, dict[str, str]]


def _sm(resource: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{resource.lower()}"


def _fn(name: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def _rule(name: str) -> str:
    return f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}"


def _obj(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _schedule(p: dict[str, Any]) -> str:
    return f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{p.get('GroupName', 'default')}/{p['Name']}"


def _pass(role: str, service: str) -> Request:
    return ("iam:PassRole", role, {"iam:PassedToService": f"{service}.amazonaws.com"})


def _gw(verb: str, path: str) -> Request:
    """API Gateway authorises its management calls by HTTP verb on the resource's path."""
    return (f"apigateway:{verb}", f"arn:aws:apigateway:{REGION}::{path}", {})


def _method(p: dict[str, Any]) -> str:
    return f"/restapis/{p['restApiId']}/resources/{p['resourceId']}/methods/{p['httpMethod']}"


# (service, operation) → the IAM requests AWS authorises for the call (Service Authorization Reference: the
# action, its resource types, and the extra permissions: PassRole for a role in the call, s3:GetObject for
# Lambda code in S3, AddTags for tags at creation).
AUTHORIZATION: dict[tuple[str, str], Callable[[dict[str, Any]], list[Request]]] = {
    ("s3", "HeadBucket"): lambda p: [("s3:ListBucket", f"arn:aws:s3:::{p['Bucket']}", {})],
    ("s3", "HeadObject"): lambda p: [("s3:GetObject", _obj(p["Bucket"], p["Key"]), {})],
    ("s3", "PutObject"): lambda p: [("s3:PutObject", _obj(p["Bucket"], p["Key"]), {})],
    ("lambda", "GetFunction"): lambda p: [("lambda:GetFunction", _fn(p["FunctionName"]), {})],
    ("lambda", "CreateFunction"): lambda p: [
        ("lambda:CreateFunction", _fn(p["FunctionName"]), {}),
        _pass(p["Role"], "lambda"),
        ("s3:GetObject", _obj(p["Code"]["S3Bucket"], p["Code"]["S3Key"]), {}),
    ],
    ("lambda", "UpdateFunctionCode"): lambda p: [
        ("lambda:UpdateFunctionCode", _fn(p["FunctionName"]), {}),
        ("s3:GetObject", _obj(p["S3Bucket"], p["S3Key"]), {}),
    ],
    ("lambda", "UpdateFunctionConfiguration"): lambda p: [
        ("lambda:UpdateFunctionConfiguration", _fn(p["FunctionName"]), {}),
        *([_pass(p["Role"], "lambda")] if "Role" in p else []),
    ],
    ("sagemaker", "DescribePipeline"): lambda p: [("sagemaker:DescribePipeline", _sm(f"pipeline/{p['PipelineName']}"), {})],
    ("sagemaker", "CreatePipeline"): lambda p: [
        ("sagemaker:CreatePipeline", _sm(f"pipeline/{p['PipelineName']}"), {}),
        _pass(p["RoleArn"], "sagemaker"),
        *([("sagemaker:AddTags", _sm(f"pipeline/{p['PipelineName']}"), {})] if p.get("Tags") else []),
    ],
    ("sagemaker", "UpdatePipeline"): lambda p: [
        ("sagemaker:UpdatePipeline", _sm(f"pipeline/{p['PipelineName']}"), {}),
        *([_pass(p["RoleArn"], "sagemaker")] if "RoleArn" in p else []),
    ],
    ("sagemaker", "StartPipelineExecution"): lambda p: [("sagemaker:StartPipelineExecution", _sm(f"pipeline/{p['PipelineName']}"), {})],
    ("sagemaker", "DescribePipelineExecution"): lambda p: [("sagemaker:DescribePipelineExecution", p["PipelineExecutionArn"].lower(), {})],
    ("sagemaker", "ListPipelineExecutionSteps"): lambda p: [("sagemaker:ListPipelineExecutionSteps", p["PipelineExecutionArn"].lower(), {})],
    ("sagemaker", "DescribeModelPackage"): lambda p: [("sagemaker:DescribeModelPackage", p["ModelPackageName"].lower(), {})],
    ("sagemaker", "DescribeModel"): lambda p: [("sagemaker:DescribeModel", _sm(f"model/{p['ModelName']}"), {})],
    ("sagemaker", "CreateModel"): lambda p: [
        ("sagemaker:CreateModel", _sm(f"model/{p['ModelName']}"), {}),
        _pass(p["ExecutionRoleArn"], "sagemaker"),
    ],
    ("sagemaker", "DescribeEndpointConfig"): lambda p: [("sagemaker:DescribeEndpointConfig", _sm(f"endpoint-config/{p['EndpointConfigName']}"), {})],
    ("sagemaker", "CreateEndpointConfig"): lambda p: [("sagemaker:CreateEndpointConfig", _sm(f"endpoint-config/{p['EndpointConfigName']}"), {})],
    ("sagemaker", "CreateEndpoint"): lambda p: [
        ("sagemaker:CreateEndpoint", _sm(f"endpoint/{p['EndpointName']}"), {}),
        ("sagemaker:CreateEndpoint", _sm(f"endpoint-config/{p['EndpointConfigName']}"), {}),
    ],
    ("sagemaker", "UpdateEndpoint"): lambda p: [
        ("sagemaker:UpdateEndpoint", _sm(f"endpoint/{p['EndpointName']}"), {}),
        ("sagemaker:UpdateEndpoint", _sm(f"endpoint-config/{p['EndpointConfigName']}"), {}),
    ],
    ("sagemaker", "DescribeEndpoint"): lambda p: [("sagemaker:DescribeEndpoint", _sm(f"endpoint/{p['EndpointName']}"), {})],
    ("sagemaker", "DeleteEndpoint"): lambda p: [("sagemaker:DeleteEndpoint", _sm(f"endpoint/{p['EndpointName']}"), {})],
    # deploy.api (fraudflow/sagemaker/api_gateway.py): tags at creation are authorised on /tags/<arn>
    ("apigateway", "GetRestApis"): lambda p: [_gw("GET", "/restapis")],
    ("apigateway", "GetUsagePlans"): lambda p: [_gw("GET", "/usageplans")],
    ("apigateway", "GetApiKeys"): lambda p: [_gw("GET", "/apikeys")],
    ("apigateway", "GetResources"): lambda p: [_gw("GET", f"/restapis/{p['restApiId']}/resources")],
    ("apigateway", "GetMethod"): lambda p: [_gw("GET", _method(p))],
    ("apigateway", "GetStages"): lambda p: [_gw("GET", f"/restapis/{p['restApiId']}/stages")],
    ("apigateway", "GetUsagePlan"): lambda p: [_gw("GET", f"/usageplans/{p['usagePlanId']}")],
    ("apigateway", "GetUsagePlanKeys"): lambda p: [_gw("GET", f"/usageplans/{p['usagePlanId']}/keys")],
    ("apigateway", "CreateRestApi"): lambda p: [_gw("POST", "/restapis"), _gw("PUT", "/tags/x")],
    ("apigateway", "CreateResource"): lambda p: [_gw("POST", f"/restapis/{p['restApiId']}/resources/{p['parentId']}")],
    ("apigateway", "PutMethod"): lambda p: [_gw("PUT", _method(p))],
    ("apigateway", "DeleteMethod"): lambda p: [_gw("DELETE", _method(p))],
    ("apigateway", "PutIntegration"): lambda p: [
        _gw("PUT", _method(p) + "/integration"),
        *([_pass(p["credentials"], "apigateway")] if p.get("credentials") else []),
    ],
    ("apigateway", "PutMethodResponse"): lambda p: [_gw("PUT", _method(p) + f"/responses/{p['statusCode']}")],
    ("apigateway", "PutIntegrationResponse"): lambda p: [_gw("PUT", _method(p) + f"/integration/responses/{p['statusCode']}")],
    ("apigateway", "CreateDeployment"): lambda p: [_gw("POST", f"/restapis/{p['restApiId']}/deployments")],
    ("apigateway", "UpdateStage"): lambda p: [_gw("PATCH", f"/restapis/{p['restApiId']}/stages/{p['stageName']}")],
    ("apigateway", "DeleteStage"): lambda p: [_gw("DELETE", f"/restapis/{p['restApiId']}/stages/{p['stageName']}")],
    ("apigateway", "DeleteRestApi"): lambda p: [_gw("DELETE", f"/restapis/{p['restApiId']}")],
    ("apigateway", "CreateUsagePlan"): lambda p: [_gw("POST", "/usageplans"), _gw("PUT", "/tags/x")],
    ("apigateway", "UpdateUsagePlan"): lambda p: [_gw("PATCH", f"/usageplans/{p['usagePlanId']}")],
    ("apigateway", "DeleteUsagePlan"): lambda p: [_gw("DELETE", f"/usageplans/{p['usagePlanId']}")],
    ("apigateway", "CreateUsagePlanKey"): lambda p: [_gw("POST", f"/usageplans/{p['usagePlanId']}/keys")],
    ("apigateway", "DeleteUsagePlanKey"): lambda p: [_gw("DELETE", f"/usageplans/{p['usagePlanId']}/keys/{p['keyId']}")],
    ("apigateway", "CreateApiKey"): lambda p: [_gw("POST", "/apikeys"), _gw("PUT", "/tags/x")],
    ("apigateway", "UpdateApiKey"): lambda p: [_gw("PATCH", f"/apikeys/{p['apiKey']}")],
    ("apigateway", "DeleteApiKey"): lambda p: [_gw("DELETE", f"/apikeys/{p['apiKey']}")],
    # deploy.when: approved (fraudflow/sagemaker/approval_rule.py and the deployer's rollback)
    ("sagemaker", "ListModelPackages"): lambda p: [("sagemaker:ListModelPackages", _sm(f"model-package/{p['ModelPackageGroupName']}/*"), {})],
    ("events", "DescribeRule"): lambda p: [("events:DescribeRule", _rule(p["Name"]), {})],
    ("events", "PutRule"): lambda p: [("events:PutRule", _rule(p["Name"]), {})],
    ("events", "DeleteRule"): lambda p: [("events:DeleteRule", _rule(p["Name"]), {})],
    ("events", "ListTargetsByRule"): lambda p: [("events:ListTargetsByRule", _rule(p["Rule"]), {})],
    ("events", "PutTargets"): lambda p: [("events:PutTargets", _rule(p["Rule"]), {})],
    ("events", "RemoveTargets"): lambda p: [("events:RemoveTargets", _rule(p["Rule"]), {})],
    ("lambda", "GetPolicy"): lambda p: [("lambda:GetPolicy", _fn(p["FunctionName"]), {})],
    ("lambda", "AddPermission"): lambda p: [("lambda:AddPermission", _fn(p["FunctionName"]), {})],
    ("lambda", "RemovePermission"): lambda p: [("lambda:RemovePermission", _fn(p["FunctionName"]), {})],
    ("sagemaker", "DeletePipeline"): lambda p: [("sagemaker:DeletePipeline", _sm(f"pipeline/{p['PipelineName']}"), {})],
    ("scheduler", "GetSchedule"): lambda p: [("scheduler:GetSchedule", _schedule(p), {})],
    ("scheduler", "DeleteSchedule"): lambda p: [("scheduler:DeleteSchedule", _schedule(p), {})],
    ("scheduler", "CreateSchedule"): lambda p: [("scheduler:CreateSchedule", _schedule(p), {}), _pass(p["Target"]["RoleArn"], "scheduler")],
    ("scheduler", "UpdateSchedule"): lambda p: [("scheduler:UpdateSchedule", _schedule(p), {}), _pass(p["Target"]["RoleArn"], "scheduler")],
}  # fmt: skip


class Recorder:
    """Every API call made through boto3 while `role` is set, with its parameters as the caller passed them."""

    def __init__(self) -> None:
        self.role: str | None = None
        self.calls: list[tuple[str, str, str, dict[str, Any]]] = []

    def hook(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.role:
            self.calls.append(
                (
                    self.role,
                    model.service_model.service_name,
                    model.name,
                    json.loads(json.dumps(params, default=str)),
                )
            )


def assert_calls_allowed(
    recorder: Recorder,
    roles: dict[str, Any],
    expected: list[tuple[str, str]],
    also: dict[str, list[dict[str, Any]]] | None = None,
) -> None:
    """Every recorded call is one AUTHORIZATION knows, and each IAM request it makes is allowed by the policy
    `fraudflow iam` generates for the role that made it (or by one of `also[role]`). `expected`, the
    (role, "service:Operation") pairs the run must have made, keeps the check from passing on a run that did
    nothing."""
    ops = {(role, f"{svc}:{op}") for role, svc, op, _ in recorder.calls}
    for pair in expected:
        assert pair in ops, f"the run did not exercise {pair} (recorded: {sorted(ops)})"
    denied = []
    for role, service, op, params in recorder.calls:
        assert (service, op) in AUTHORIZATION, f"{role} called {service}:{op}: add it to AUTHORIZATION"
        policies = [roles[role].policy, *(also or {}).get(role, [])]
        for request in AUTHORIZATION[(service, op)](params):
            if not any(allowed(policy, *request) for policy in policies):
                denied.append((role, f"{service}:{op}", request))
    assert denied == []


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    rec = Recorder()
    original = boto3.session.Session.client

    def client(self: Any, *args: Any, **kwargs: Any) -> Any:
        c = original(self, *args, **kwargs)
        c.meta.events.register("before-parameter-build", rec.hook)
        return c

    monkeypatch.setattr(boto3.session.Session, "client", client)
    boto3.DEFAULT_SESSION = None  # the deployer's boto3.client() makes a new default session: patched too
    yield rec
    boto3.DEFAULT_SESSION = None


def _deployer() -> Any:
    from fraudflow.sagemaker.iam import _deployer as load

    return load()


def test_apply_and_the_deployer_call_only_what_their_policies_allow(
    yaml_file: Path, aws: Aws, recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    from fraudflow.cli import main
    from fraudflow.plan import build_plan
    from fraudflow.sagemaker import iam
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.spec.load import load_one

    rendered = compile_plan(build_plan(load_one(yaml_file, env=None, overrides=[], pipeline=None)))
    roles = iam.roles(rendered)

    recorder.role = "operator"
    assert main(["plan", str(yaml_file)]) == 2
    assert main(["apply", str(yaml_file), "--yes", "--start", "--wait"]) == 0
    changed = ["--set", "gate.threshold=0.75", "--set", "sagemaker.lambda.timeout_s=600"]
    assert main(["apply", str(yaml_file), "--yes", *changed]) == 0  # update pipeline + Lambda configuration
    assert main(["plan", str(yaml_file), *changed]) == 0
    out = capsys.readouterr().out
    assert "Deploy (Lambda fraud-detect-xgb-deployer): deployer " + roles["deployer"].arn in out  # type: ignore[operator]
    assert f"Train (Training): execution {rendered.role_arn}" in out

    # The deployer, invoked as the pipeline's Lambda step would: the step's arguments, a registered version.
    recorder.role = None
    sm = aws.client("sagemaker")
    group = rendered.definition["Steps"][-1]["Arguments"]["IfSteps"][-2]["Arguments"]["ModelPackageGroupName"]
    sm.create_model_package_group(ModelPackageGroupName=group)
    image = rendered.definition["Steps"][1]["Arguments"]["AlgorithmSpecification"]["TrainingImage"]
    package = sm.create_model_package(
        ModelPackageGroupName=group,
        InferenceSpecification={
            "Containers": [{"Image": image, "ModelDataUrl": f"s3://{rendered.bucket}/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelApprovalStatus="Approved",
    )["ModelPackageArn"]
    step = next(s for s in iam.steps(rendered.definition) if s["Type"] == "Lambda")
    event = {**step["Arguments"], "model_package_arn": package, "require_approval": True}
    recorder.role = "deployer"
    assert _deployer().handler(event)["action"] == "created"
    recorder.role = None

    exercised = [
        ("operator", "s3:PutObject"), ("operator", "lambda:CreateFunction"), ("operator", "sagemaker:CreatePipeline"),
        ("operator", "sagemaker:UpdatePipeline"), ("operator", "lambda:UpdateFunctionConfiguration"),
        ("operator", "sagemaker:StartPipelineExecution"), ("operator", "sagemaker:DescribePipelineExecution"),
        ("deployer", "sagemaker:CreateModel"), ("deployer", "sagemaker:CreateEndpointConfig"),
        ("deployer", "sagemaker:CreateEndpoint"), ("deployer", "sagemaker:DescribeModelPackage"),
    ]  # fmt: skip
    assert_calls_allowed(recorder, roles, exercised)


def test_the_operator_policy_covers_every_api_gateway_call(
    yaml_file: Path, aws: Aws, recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    """deploy.api's whole life (create, converge each object, switch auth, remove) under the operator policy of
    the file that declares it, which is the one in force until apply has removed the API."""
    from fraudflow.cli import main
    from fraudflow.plan import build_plan
    from fraudflow.sagemaker import iam
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.spec.load import load_one
    from tests.test_api_gateway import API_KEY_BLOCK, with_api

    base = yaml_file.read_text()
    yaml_file.write_text(with_api(base, API_KEY_BLOCK))
    roles = iam.roles(compile_plan(build_plan(load_one(yaml_file, env=None, overrides=[], pipeline=None))))
    edited = API_KEY_BLOCK.replace("prod", "live").replace(
        "        quota: {limit: 100000, period: DAY}\n", ""
    )
    recorder.role = "operator"
    for block in (API_KEY_BLOCK, edited, edited.replace("auth: api_key", "auth: iam"), API_KEY_BLOCK, None):
        yaml_file.write_text(with_api(base, block) if block else base)
        assert main(["apply", str(yaml_file), "--yes"]) == 0
    assert main(["plan", str(yaml_file)]) == 0
    recorder.role = None
    capsys.readouterr()
    assert aws.client("apigateway").get_rest_apis()["items"] == []

    operations = ("CreateRestApi", "PutIntegration", "DeleteMethod", "CreateDeployment", "DeleteStage",
                  "CreateUsagePlan", "UpdateUsagePlan", "DeleteUsagePlan", "CreateApiKey", "DeleteApiKey",
                  "CreateUsagePlanKey", "DeleteRestApi")  # fmt: skip
    assert_calls_allowed(recorder, roles, [("operator", f"apigateway:{op}") for op in operations])


def test_the_evaluator_denies_a_call_outside_the_policy(yaml_file: Path, aws: Aws) -> None:
    """The check above can fail: the deployer's own calls are denied under the operator's policy, and the
    operator's CreateFunction is denied once the deployer role is not the one in the policy."""
    from fraudflow.plan import build_plan
    from fraudflow.sagemaker import iam
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.spec.load import load_one

    roles = iam.roles(compile_plan(build_plan(load_one(yaml_file, env=None, overrides=[], pipeline=None))))
    create = AUTHORIZATION[("sagemaker", "CreateEndpoint")]({"EndpointName": "fraud-detect-xgb", "EndpointConfigName": "fraud-detect-xgb-v1-0a1b2c3d"})  # fmt: skip
    assert all(allowed(roles["deployer"].policy, *r) for r in create)
    assert not any(allowed(roles["operator"].policy, *r) for r in create)
    fn = {"FunctionName": "fraud-detect-xgb-deployer", "Role": f"arn:aws:iam::{ACCOUNT}:role/admin",
          "Code": {"S3Bucket": "b", "S3Key": "k"}}  # fmt: skip
    assert not all(
        allowed(roles["operator"].policy, *r) for r in AUTHORIZATION[("lambda", "CreateFunction")](fn)
    )


# -- a real AccessDenied: moto enforcing IAM for a user ------------------------------------------------------
def _reset_auth(aws: Aws, count: str) -> None:
    url = f"{aws.server.url}/moto-api/reset-auth"  # a raw body: as form data Flask would swallow it
    req = urllib.request.Request(
        url, data=count.encode(), method="POST", headers={"Content-Type": "text/plain"}
    )
    urllib.request.urlopen(req, timeout=10).read()


@pytest.mark.parametrize(
    ("user_allows", "action"), [(["s3:*"], "sagemaker:DescribePipeline"), ([], "s3:ListBucket")]
)
def test_access_denied_names_the_action_and_points_at_fraudflow_iam(
    yaml_file: Path, aws: Aws, user_allows: list[str], action: str
) -> None:
    # Without `deploy`: moto's Lambda refuses every request signature while it enforces IAM (a moto limitation).
    text = re.sub(r"\n    deploy:\n(      .*\n)+", "\n", yaml_file.read_text())
    yaml_file.write_text(text.replace("    lambda: {role_arn", "    # lambda: {role_arn"))
    iam_client = aws.client("iam")
    iam_client.create_user(UserName="ci")
    statements = [{"Effect": "Allow", "Action": user_allows, "Resource": "*"}] if user_allows else []
    policy = {
        "Version": "2012-10-17",
        "Statement": statements or [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}],
    }
    iam_client.put_user_policy(UserName="ci", PolicyName="partial", PolicyDocument=json.dumps(policy))
    key = iam_client.create_access_key(UserName="ci")["AccessKey"]
    env = {
        **aws.env,
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }
    _reset_auth(aws, "0")  # from now on moto checks every request against the caller's policies
    try:
        out = subprocess.run(
            [sys.executable, "-m", "fraudflow", "plan", str(yaml_file)],
            env=env, capture_output=True, text=True, timeout=300, cwd=ROOT,
        )  # fmt: skip
    finally:
        _reset_auth(aws, "inf")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "FF740" in out.stderr and f"denied {action}" in out.stderr, out.stderr
    assert "fraudflow iam --for operator" in out.stderr
    assert os.environ.get("AWS_ACCESS_KEY_ID") != key["AccessKeyId"]


@pytest.mark.slow
def test_deploy_on_approval_calls_only_what_the_policies_allow(
    yaml_file: Path, aws: Aws, recorder: Recorder
) -> None:
    """deploy.when: approved: plan/apply converge the EventBridge rule and the Lambda permission, the deployer
    deploys an approved package and rolls a rejected one back, and back to `registered` apply removes the rule:
    every call is allowed by the policy `fraudflow iam` prints for the role that makes it."""
    from fraudflow.cli import main
    from fraudflow.plan import build_plan
    from fraudflow.sagemaker import iam
    from fraudflow.sagemaker.approval_rule import rule_of
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.spec.load import load_one
    from tests.deployer_util import NoUpdateEndpoint, on_approval

    approved = ["--set", "deploy.when=approved"]
    rendered = compile_plan(build_plan(load_one(yaml_file, env=None, overrides=approved[1:], pipeline=None)))
    roles = iam.roles(rendered)
    recorder.role = "operator"
    assert main(["plan", str(yaml_file), *approved]) == 2
    assert main(["apply", str(yaml_file), "--yes", *approved]) == 0
    assert main(["plan", str(yaml_file), *approved]) == 0
    recorder.role = None

    rule = rule_of(rendered)
    assert rule is not None and rule.arguments is not None and rule.group
    sm = aws.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName=rule.group)
    spec = {"Containers": [{"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                            "ModelDataUrl": f"s3://{rendered.bucket}/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}  # fmt: skip
    v1, v2 = (
        sm.create_model_package(ModelPackageGroupName=rule.group, InferenceSpecification=spec, ModelApprovalStatus="Approved")["ModelPackageArn"]
        for _ in range(2)
    )  # fmt: skip

    def decided(arn: str, status: str) -> dict[str, Any]:
        sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status)
        detail = {"ModelPackageArn": arn, "ModelPackageGroupName": rule.group, "ModelApprovalStatus": status}
        return {
            "deploy": rule.arguments,
            "event": {"detail-type": "SageMaker Model Package State Change", "detail": detail},
        }

    deployer_sm = NoUpdateEndpoint(boto3.client("sagemaker"))
    approve = decided(v2, "Approved")  # the reviewer's call, not the deployer's
    recorder.role = "deployer"
    assert on_approval(approve, deployer_sm)["action"] == "created"
    recorder.role = None
    reject = decided(v2, "Rejected")
    recorder.role = "deployer"
    assert on_approval(reject, deployer_sm)["action"] == "updated"  # back to v1
    recorder.role = "operator"
    assert main(["apply", str(yaml_file), "--yes", "--set", "deploy.when=registered"]) == 0
    recorder.role = None

    exercised = [
        ("operator", "events:PutRule"), ("operator", "events:PutTargets"), ("operator", "lambda:AddPermission"),
        ("operator", "events:DeleteRule"), ("operator", "lambda:RemovePermission"),
        ("deployer", "sagemaker:ListModelPackages"), ("deployer", "sagemaker:CreateEndpoint"),
    ]  # fmt: skip
    registered = iam.roles(
        compile_plan(
            build_plan(load_one(yaml_file, env=None, overrides=["deploy.when=registered"], pipeline=None))
        )
    )
    # the removing apply runs with `registered`: its operator policy must allow what it does
    assert_calls_allowed(recorder, roles, exercised, also={"operator": [registered["operator"].policy]})
