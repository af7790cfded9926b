"""The monitoring pipeline and its EventBridge Scheduler schedule: rendered by `render --monitoring`, shown by
`plan`, converged by `apply` against moto's server (second apply: nothing; removing monitor.schedule removes
both), and the deployer Lambda's two monitoring actions against moto's SageMaker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.conftest_aws", "tests.iam_eval")
from tests.conftest_aws import BUCKET, Aws  # noqa: E402
from tests.iam_eval import allowed  # noqa: E402
from tests.test_iam_moto import AUTHORIZATION, Recorder, _deployer  # noqa: E402
from tests.test_iam_moto import recorder as recorder  # noqa: E402, F401 - the fixture
from tests.test_sagemaker_apply import cli  # noqa: E402

pytest_plugins = ["tests.conftest_aws"]
pytestmark = pytest.mark.aws

NAME = "fraud-detect-xgb-monitor"
MONITOR = [
    "--set",
    "monitor.schedule=rate(1 day)",
    "--set",
    f"monitor.capture=s3://{BUCKET}/capture/fraud-detect-xgb",
    "--set",
    "monitor.window_hours=24",
    "--set",
    "monitor.retrain=on_violation",
]


@pytest.fixture
def yaml_file(tmp_path: Path, aws_data: Path) -> Path:
    text = (Path(__file__).resolve().parents[1] / "pipelines.yaml").read_text()
    path = tmp_path / "pipelines.yaml"
    path.write_text(text.replace("data_dir: data ", f"data_dir: {aws_data} ", 1))
    return path


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


def _pairs(args: list[str]) -> list[str]:
    return [a for a in args if a != "--set"]


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

    plan = build_plan(load_one(yaml_file, env=None, overrides=_pairs(MONITOR), pipeline=None))
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
    sm = aws.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="fraud-detect-xgb")
    prefix = f"s3://{BUCKET}/fraud-detect/fraud-detect-xgb/exec1"
    package = sm.create_model_package(
        ModelPackageGroupName="fraud-detect-xgb",
        InferenceSpecification={
            "Containers": [{"Image": "img", "ModelDataUrl": f"s3://{BUCKET}/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"{prefix}/Evaluate/output/evaluation/evaluation.json",
                }
            }
        },
        ModelApprovalStatus="Approved",
    )["ModelPackageArn"]
    deploy = next(s for s in iam.steps(rendered.definition) if s["Type"] == "Lambda")
    lam = _deployer()
    assert lam.handler({**deploy["Arguments"], "model_package_arn": package})["action"] == "created"
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

    ops = {(role, f"{svc}:{op}") for role, svc, op, _ in recorder.calls}
    for expected in [
        ("operator", "scheduler:CreateSchedule"), ("operator", "scheduler:DeleteSchedule"),
        ("operator", "sagemaker:DeletePipeline"), ("deployer", "sagemaker:DescribeModelPackage"),
        ("deployer", "sagemaker:StartPipelineExecution"), ("deployer", "sagemaker:DescribeModel"),
    ]:  # fmt: skip
        assert expected in ops, f"the run did not exercise {expected}"
    denied = []
    for role, service, op, params in recorder.calls:
        assert (service, op) in AUTHORIZATION, f"{role} called {service}:{op}: add it to AUTHORIZATION"
        for request in AUTHORIZATION[(service, op)](params):
            if not allowed(roles[role].policy, *request):
                denied.append((role, f"{service}:{op}", request))
    assert denied == []
