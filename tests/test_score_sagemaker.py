"""The scoring pipeline (deploy.batch) on moto's server: `plan` shows it, `apply` converges it (a second apply
changes nothing, removing the section removes it) and its EventBridge Scheduler schedule (deploy.batch.schedule),
the deployer Lambda's `served_model` action resolves the served package, and every call is allowed by the
policies `fraudflow iam` prints."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.conftest_aws", "tests.iam_eval")
from tests.conftest_aws import BUCKET, Aws, cli  # noqa: E402
from tests.side_pipeline_util import approved_package, serving, set_args  # noqa: E402
from tests.test_iam_moto import Recorder, assert_calls_allowed  # noqa: E402
from tests.test_iam_moto import recorder as recorder  # noqa: E402, F401 - the fixture

pytest_plugins = ["tests.conftest_aws"]
pytestmark = pytest.mark.aws

NAME = "fraud-detect-xgb-score"
PAIRS = [f"deploy.batch.output=s3://{BUCKET}/scored", "deploy.batch.instance_count=2"]
BATCH = set_args(PAIRS)
SCHEDULED = [*PAIRS, "deploy.batch.schedule=rate(1 day)"]


def test_apply_converges_the_scoring_pipeline(yaml_file: Path, aws: Aws) -> None:
    plan = cli("plan", str(yaml_file), *BATCH, env=aws.env)
    assert plan.returncode == 2
    assert f"+ scoring pipeline {NAME}: create" in plan.stdout

    first = cli("apply", str(yaml_file), "--yes", *BATCH, env=aws.env)
    assert first.returncode == 0, first.stderr
    rendered = cli("render", str(yaml_file), "--scoring", *BATCH, env=aws.env).stdout
    sm = aws.client("sagemaker")
    assert sm.describe_pipeline(PipelineName=NAME)["PipelineDefinition"] + "\n" == rendered
    keys = {o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert any(k.endswith("/preprocess.py") for k in keys) and any(k.endswith("/config.json") for k in keys)

    second = cli("apply", str(yaml_file), "--yes", *BATCH, env=aws.env)
    assert second.returncode == 0 and "No changes" in second.stdout, second.stdout + second.stderr

    changed = [*BATCH[:3], "deploy.batch.instance_count=3"]
    plan = cli("plan", str(yaml_file), *changed, env=aws.env)
    assert plan.returncode == 2 and f"~ scoring pipeline {NAME}: update" in plan.stdout
    assert cli("apply", str(yaml_file), "--yes", *changed, env=aws.env).returncode == 0

    plan = cli("plan", str(yaml_file), env=aws.env)
    assert plan.returncode == 2 and f"- scoring pipeline {NAME}: delete" in plan.stdout
    assert cli("apply", str(yaml_file), "--yes", env=aws.env).returncode == 0
    assert NAME not in [p["PipelineName"] for p in sm.list_pipelines()["PipelineSummaries"]]
    assert "No changes" in cli("apply", str(yaml_file), "--yes", env=aws.env).stdout


def test_apply_converges_the_scoring_schedule(yaml_file: Path, aws: Aws) -> None:
    def plan(*pairs: str) -> str:
        out = cli("plan", str(yaml_file), *set_args(list(pairs)), env=aws.env)
        assert out.returncode in (0, 2), out.stderr
        return out.stdout

    def apply(*pairs: str) -> str:
        out = cli("apply", str(yaml_file), "--yes", *set_args(list(pairs)), env=aws.env)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    scheduler, sm = aws.client("scheduler"), aws.client("sagemaker")
    shown = plan(*SCHEDULED)
    assert (
        f"+ scoring pipeline {NAME}: create" in shown and f"+ schedule {NAME} (rate(1 day)): create" in shown
    )
    apply(*SCHEDULED)
    schedule = scheduler.get_schedule(Name=NAME)
    assert schedule["ScheduleExpression"] == "rate(1 day)" and schedule["State"] == "ENABLED"
    assert schedule["Target"]["Arn"].endswith(f":pipeline/{NAME}")
    assert schedule["Target"]["RoleArn"] == aws.env["SAGEMAKER_ROLE_ARN"]  # the execution role starts it
    assert "No changes" in apply(*SCHEDULED) and "schedule" not in plan(*SCHEDULED)

    cron = [*PAIRS, "deploy.batch.schedule=cron(0 4 * * ? *)"]
    shown = plan(*cron)
    assert f"~ schedule {NAME} (cron(0 4 * * ? *)): update" in shown and "scoring pipeline" not in shown
    apply(*cron)
    assert scheduler.get_schedule(Name=NAME)["ScheduleExpression"] == "cron(0 4 * * ? *)"

    shown = plan(*PAIRS)  # the schedule removed, the pipeline kept
    assert f"- schedule {NAME}: delete" in shown and "scoring pipeline" not in shown
    apply(*PAIRS)
    assert not scheduler.list_schedules()["Schedules"]
    assert NAME in [p["PipelineName"] for p in sm.list_pipelines()["PipelineSummaries"]]

    apply(*SCHEDULED)
    shown = plan()  # the whole section removed: both go
    assert f"- schedule {NAME}: delete" in shown and f"- scoring pipeline {NAME}: delete" in shown
    apply()
    assert not scheduler.list_schedules()["Schedules"]
    assert NAME not in [p["PipelineName"] for p in sm.list_pipelines()["PipelineSummaries"]]
    assert "No changes" in apply()


def test_the_scoring_calls_are_what_the_policies_allow(yaml_file: Path, aws: Aws, recorder: Recorder) -> None:
    """apply with and then without deploy.batch as the operator, and the deployer Lambda's `served_model` as the
    scoring pipeline's first step calls it (against moto's SageMaker)."""
    from fraudflow.cli import main
    from fraudflow.plan import build_plan
    from fraudflow.sagemaker import iam
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.sagemaker.scoring import render
    from fraudflow.spec.load import load_one

    plan = build_plan(load_one(yaml_file, env=None, overrides=SCHEDULED, pipeline=None))
    rendered = compile_plan(plan)
    roles = iam.roles(rendered)
    execution = {a for s in roles["execution"].policy["Statement"] for a in _list(s["Action"])}
    assert "sagemaker:CreateTransformJob" in execution
    # the schedule starts the scoring pipeline as the execution role, which therefore trusts Scheduler too
    assert roles["execution"].trust["Statement"][0]["Principal"]["Service"] == [
        "sagemaker.amazonaws.com",
        "scheduler.amazonaws.com",
    ]
    starts = [s for s in roles["execution"].policy["Statement"] if s.get("Sid") == "ScheduleStartsScoring"]
    assert starts and starts[0]["Resource"] == [f"arn:aws:sagemaker:us-east-1:123456789012:pipeline/{NAME}"]

    recorder.role = "operator"
    assert main(["apply", str(yaml_file), "--yes", *set_args(SCHEDULED)]) == 0

    recorder.role = None
    model_data = f"s3://{BUCKET}/exec1/Train/output/model.tar.gz"
    package = approved_package(aws, model_data, environment={"FRAUDFLOW_DECISION_THRESHOLD": "0.35"})
    lam = serving(rendered, package)
    definition, _ = render(plan, rendered)
    recorder.role = "deployer"
    found = lam.handler(definition["Steps"][0]["Arguments"])
    recorder.role = "operator"
    assert main(["apply", str(yaml_file), "--yes"]) == 0  # the section removed: the pipeline deleted
    recorder.role = None

    assert found == {
        "model_package_arn": package,
        "variant": "AllTraffic",
        "model_data_url": model_data,
        "decision_threshold": "0.35",
    }
    exercised = [
        ("operator", "sagemaker:CreatePipeline"), ("operator", "sagemaker:DeletePipeline"),
        ("operator", "scheduler:CreateSchedule"), ("operator", "scheduler:DeleteSchedule"),
        ("deployer", "sagemaker:DescribeModelPackage"), ("deployer", "sagemaker:DescribeModel"),
    ]  # fmt: skip
    assert_calls_allowed(recorder, roles, exercised)


def _list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value
