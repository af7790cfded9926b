"""Every ARN and ECR domain fraudflow builds is in the region's partition (aws, aws-cn, aws-us-gov, aws-iso, …),
never a hard-coded `arn:aws` / `amazonaws.com`; and the deployer Lambda gets the time to wait for its endpoint."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import botocore.session
import pytest

from fraudflow.sagemaker import images, partition

ROOT = Path(__file__).resolve().parents[1]
BOTOCORE = botocore.session.get_session()


def registries(framework: str, version: str) -> dict[str, str]:
    cfg = images._framework(framework)
    return cfg.get("training", cfg)["versions"][version]["registries"]


def _all_regions() -> list[str]:
    """Every region botocore knows, in every partition, plus every region the SDK has an image in."""
    regions = set()
    for p in BOTOCORE.get_available_partitions():
        regions.update(BOTOCORE.get_available_regions("sagemaker", partition_name=p))
    for framework, version in (("xgboost", "1.7-1"), ("sklearn", "1.2-1")):
        regions.update(registries(framework, version))
    return sorted(regions)


@pytest.mark.parametrize("region", _all_regions())
def test_partition_and_dns_suffix_are_botocores(region: str) -> None:
    expected = BOTOCORE.get_partition_for_region(region)
    assert partition.of(region).id == expected
    assert partition.arn("lambda", region, "111122223333", "function:f").startswith(f"arn:{expected}:lambda:")
    if region in registries("xgboost", "1.7-1"):
        suffix = BOTOCORE._get_internal_component("endpoint_resolver").get_partition_dns_suffix(expected)
        assert re.fullmatch(rf"\d{{12}}\.dkr\.ecr\.{region}\.{re.escape(suffix)}/sagemaker-xgboost:1\.7-1",
                            images.xgboost("1.7-1", region))  # fmt: skip


def test_the_partitions_sagemaker_runs_in() -> None:
    assert {r: partition.of(r).id for r in ("us-east-1", "cn-north-1", "us-gov-west-1", "us-iso-east-1",
            "us-isob-east-1")} == {"us-east-1": "aws", "cn-north-1": "aws-cn", "us-gov-west-1": "aws-us-gov",
            "us-iso-east-1": "aws-iso", "us-isob-east-1": "aws-iso-b"}  # fmt: skip


def render(region: str, role_partition: str) -> subprocess.CompletedProcess[str]:
    role = f"arn:{role_partition}:iam::111122223333:role/fraudflow-sagemaker"
    deployer = f"arn:{role_partition}:iam::111122223333:role/fraudflow-deployer"
    args = [
        "render",
        "--set",
        f"sagemaker.lambda.role_arn={deployer}",
        "--env",
        "aws-sample",
        "--set",
        f"sagemaker.region={region}",
        "--set",
        f"sagemaker.role_arn={role}",
    ]
    return subprocess.run([sys.executable, "-m", "fraudflow", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize(
    ("region", "expected", "domain"),
    [("cn-north-1", "aws-cn", "amazonaws.com.cn"), ("us-gov-west-1", "aws-us-gov", "amazonaws.com")],
)
def test_render_in_another_partition(region: str, expected: str, domain: str, aws_data: Path) -> None:
    out = render(region, expected)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    arns = re.findall(r"arn:[a-z0-9-]+:", text)
    assert arns and set(arns) == {f"arn:{expected}:"}, set(arns)
    uris = set(re.findall(r"\d{12}\.dkr\.ecr\.[a-z0-9-]+\.[a-z.]+?(?=/)", text))
    assert uris and all(u.endswith(f".{region}.{domain}") for u in uris), uris
    steps = json.loads(text)["Steps"][-1]["Arguments"]["IfSteps"]
    deploy = next(s for s in steps if s["Type"] == "Lambda")
    assert (
        deploy["FunctionArn"]
        == f"arn:{expected}:lambda:{region}:111122223333:function:fraud-detect-xgb-deployer"
    )


def test_a_role_from_another_partition_is_a_clear_error(aws_data: Path) -> None:
    out = render("cn-north-1", "aws")
    assert out.returncode == 1 and out.stdout == "" and "Traceback" not in out.stderr
    assert "FF730" in out.stderr and "'aws-cn'" in out.stderr and "arn:aws-cn:iam::" in out.stderr


def test_the_deployer_lambda_may_wait_lambdas_maximum(aws_data: Path) -> None:
    """The deployer returns only when the endpoint is InService: its function gets Lambda's 15 minutes."""
    from fraudflow.plan import build_plan
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.spec.load import load_one

    plan = build_plan(load_one(ROOT / "pipelines.yaml", env="aws-sample", overrides=[], pipeline=None))
    assert compile_plan(plan).lambda_function.timeout == 900  # type: ignore[union-attr]
