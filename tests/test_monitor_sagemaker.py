"""The monitoring pipeline and its EventBridge Scheduler schedule: rendered by `render --monitoring`, shown by
`plan`, converged by `apply` against moto's server (second apply: nothing; removing monitor.schedule removes
both), and the deployer Lambda's two monitoring actions against moto's SageMaker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.conftest_aws", "tests.iam_eval")
from tests.conftest_aws import BUCKET, Aws, cli  # noqa: E402
from tests.side_pipeline_util import approved_package, serving, set_args  # noqa: E402
from tests.test_iam_moto import Recorder, assert_calls_allowed  # noqa: E402
from tests.test_iam_moto import recorder as recorder  # noqa: E402, F401 - the fixture

pytest_plugins = ["tests.conftest_aws"]
pytestmark = pytest.mark.aws

NAME = "fraud-detect-xgb-monitor"
PAIRS = [
    "monitor.schedule=rate(1 day)",
    f"monitor.capture=s3://{BUCKET}/capture/fraud-detect-xgb",
    "monitor.window_hours=24",
    "monitor.retrain=on_violation",
]
MONITOR = set_args(PAIRS)


def test_render_monitoring_shows_the_three_steps(yaml_file: Path, aws: Aws) -> None:
    out = cli("render", str(yaml_file), "--monitoring", *MONITOR, env=aws.env)
    assert out.returncode == 0, out.stderr
    definition = json.loads(out.stdout)
    steps = {s["Name"]: s for s in definition["Steps"]}
    assert list(steps) == ["ResolveBaseline", "Monitor", "CheckViolations"]
    monitor = steps["Monitor"]["Arguments"]
    assert monitor["AppSpecification"]["ContainerEntrypoint"][-1].endswith("/monitor.py")
    assert "sagemaker-scikit-learn" in monitor["AppSpecification"]["ImageUri"]
    assert (
        "CacheConfig" not in steps["Monitor"]
    )  # the capture prefix is the same each run, its content is not
    start = steps["CheckViolations"]["Arguments"]["IfSteps"][0]
    assert start["Arguments"]["action"] == "start_pipeline"
    assert start["Arguments"]["pipeline_name"] == "fraud-detect-xgb"
    no = cli("render", str(yaml_file), "--monitoring", env=aws.env)
    assert no.returncode == 64 and "FF770" in no.stderr


def test_apply_converges_the_monitoring_pipeline_and_schedule(yaml_file: Path, aws: Aws) -> None:
    plan = cli("plan", str(yaml_file), *MONITOR, env=aws.env)
    assert plan.returncode == 2
    assert f"+ monitoring pipeline {NAME}: create" in plan.stdout
    assert f"+ schedule {NAME} (rate(1 day)): create" in plan.stdout

    first = cli("apply", str(yaml_file), "--yes", *MONITOR, env=aws.env)
    assert first.returncode == 0, first.stderr
    rendered = cli("render", str(yaml_file), "--monitoring", *MONITOR, env=aws.env).stdout
    sm = aws.client("sagemaker")
    assert sm.describe_pipeline(PipelineName=NAME)["PipelineDefinition"] + "\n" == rendered
    schedule = aws.client("scheduler").get_schedule(Name=NAME)
    assert schedule["ScheduleExpression"] == "rate(1 day)"
    assert schedule["Target"]["Arn"].endswith(f":pipeline/{NAME}")
    keys = {o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert any(k.endswith("/monitor.py") for k in keys)

    second = cli("apply", str(yaml_file), "--yes", *MONITOR, env=aws.env)
    assert second.returncode == 0 and "No changes" in second.stdout, second.stdout + second.stderr
    assert cli("plan", str(yaml_file), *MONITOR, env=aws.env).returncode == 0

    changed = [*MONITOR[:1], "monitor.schedule=cron(0 3 * * ? *)", *MONITOR[2:]]
    plan = cli("plan", str(yaml_file), *changed, env=aws.env)
    assert plan.returncode == 2 and f"~ schedule {NAME} (cron(0 3 * * ? *)): update" in plan.stdout
    assert "monitoring pipeline" not in plan.stdout  # the pipeline did not change
    assert cli("apply", str(yaml_file), "--yes", *changed, env=aws.env).returncode == 0
    assert aws.client("scheduler").get_schedule(Name=NAME)["ScheduleExpression"] == "cron(0 3 * * ? *)"

    # the section removed: both go, and then nothing is left to do
    plan = cli("plan", str(yaml_file), env=aws.env)
    assert plan.returncode == 2
    assert (
        f"- schedule {NAME}: delete" in plan.stdout and f"- monitoring pipeline {NAME}: delete" in plan.stdout
    )
    assert cli("apply", str(yaml_file), "--yes", env=aws.env).returncode == 0
    assert not aws.client("scheduler").list_schedules()["Schedules"]
    assert NAME not in [p["PipelineName"] for p in sm.list_pipelines()["PipelineSummaries"]]
    assert "No changes" in cli("apply", str(yaml_file), "--yes", env=aws.env).stdout


def test_the_monitoring_calls_are_what_the_policies_allow(
    yaml_file: Path, aws: Aws, recorder: Recorder
) -> None:
    """apply with and then without a schedule as the operator, and the deployer Lambda's two monitoring actions
    as the deployer (against moto's SageMaker): every call is allowed by the policy `fraudflow iam` prints."""
    from fraudflow.cli import main
    from fraudflow.plan import build_plan
    from fraudflow.sagemaker import iam
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.sagemaker.monitoring import render
    from fraudflow.spec.load import load_one

    plan = build_plan(load_one(yaml_file, env=None, overrides=PAIRS, pipeline=None))
    rendered = compile_plan(plan)
    roles = iam.roles(rendered)
    # the schedule assumes the execution role (no monitor.schedule_role_arn): it trusts Scheduler too
    assert roles["execution"].trust["Statement"][0]["Principal"]["Service"] == [
        "sagemaker.amazonaws.com",
        "scheduler.amazonaws.com",
    ]

    recorder.role = "operator"
    assert main(["apply", str(yaml_file), "--yes", *MONITOR]) == 0

    # the deployer, as the monitoring pipeline's two Lambda steps call it
    recorder.role = None
    prefix = f"s3://{BUCKET}/fraud-detect/fraud-detect-xgb/exec1"
    metrics = f"{prefix}/Evaluate/output/evaluation/evaluation.json"
    package = approved_package(aws, f"s3://{BUCKET}/model.tar.gz", metrics_uri=metrics)
    lam = serving(rendered, package)
    definition, _ = render(plan, rendered)
    resolve = definition["Steps"][0]["Arguments"]
    start = definition["Steps"][2]["Arguments"]["IfSteps"][0]["Arguments"]
    recorder.role = "deployer"
    found = lam.handler(resolve)
    started = lam.handler({**start, "token": "abc123def456"})
    recorder.role = "operator"
    assert main(["apply", str(yaml_file), "--yes"]) == 0  # the section removed: both deleted
    recorder.role = None

    assert found["model_package_arn"] == package
    assert found["baseline_uri"] == f"{prefix}/Preprocess/output/baseline"
    assert found["schema_uri"] == f"{prefix}/Preprocess/output/schema"
    assert found["evaluation_uri"] == f"{prefix}/Evaluate/output/evaluation"
    assert ":pipeline/fraud-detect-xgb/execution/" in started["pipeline_execution_arn"]

    exercised = [
        ("operator", "scheduler:CreateSchedule"), ("operator", "scheduler:DeleteSchedule"),
        ("operator", "sagemaker:DeletePipeline"), ("deployer", "sagemaker:DescribeModelPackage"),
        ("deployer", "sagemaker:StartPipelineExecution"), ("deployer", "sagemaker:DescribeModel"),
    ]  # fmt: skip
    assert_calls_allowed(recorder, roles, exercised)
