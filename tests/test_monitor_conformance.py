"""Conformance: the monitoring pipeline (`render --monitoring`) against the same pipeline built with AWS's
SageMaker Python SDK v2 offline (LambdaStep, ProcessingStep with SKLearnProcessor, ConditionStep on a JsonGet),
step by step, with tests/test_sagemaker_conformance.py's normalisation (S3 keys, the code folder)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.sdk_reference_pipeline import _offline_env
from tests.test_sagemaker_conformance import _as_sdk_code_file, flat_steps, normalise

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
MONITOR = [
    "monitor.schedule=rate(1 day)",
    "monitor.capture=s3://capture-bucket/capture/fraud-detect-xgb",
    "monitor.window_hours=24",
    "monitor.retrain=on_violation",
]


@pytest.fixture(scope="module")
def plan(aws_data: Path) -> Any:
    from fraudflow.plan import build_plan
    from fraudflow.spec.load import load_one

    return build_plan(load_one(ROOT / "pipelines.yaml", env="aws-sample", overrides=MONITOR, pipeline=None))


@pytest.fixture(scope="module")
def ours(plan: Any) -> dict[str, Any]:
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.sagemaker.monitoring import render

    return render(plan, compile_plan(plan))[0]


def sdk_definition(plan: Any, ours: dict[str, Any]) -> dict[str, Any]:
    pytest.importorskip("sagemaker")
    pytest.importorskip("moto")
    from moto import mock_aws

    sm = plan.spec.config["sagemaker"]
    saved = dict(os.environ)
    try:
        _offline_env(sm["region"])
        with mock_aws():
            import boto3

            boto3.client("s3", region_name=sm["region"]).create_bucket(Bucket=sm["bucket"])
            return json.loads(_build(plan, ours, boto3.Session(region_name=sm["region"])))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _build(plan: Any, ours: dict[str, Any], boto_session: Any) -> str:
    from sagemaker.lambda_helper import Lambda
    from sagemaker.processing import ProcessingInput, ProcessingOutput
    from sagemaker.sklearn.processing import SKLearnProcessor
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionGreaterThan
    from sagemaker.workflow.execution_variables import ExecutionVariables
    from sagemaker.workflow.functions import JsonGet
    from sagemaker.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep
    from sagemaker.workflow.parameters import ParameterString
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.pipeline_context import PipelineSession
    from sagemaker.workflow.properties import PropertyFile
    from sagemaker.workflow.steps import ProcessingStep

    from fraudflow.plan import monitor_step

    cfg = plan.spec.config
    sm = cfg["sagemaker"]
    bucket, prefix, role = sm["bucket"], sm.get("prefix") or plan.name, sm["role_arn"]
    session = PipelineSession(boto_session=boto_session, default_bucket=bucket, default_bucket_prefix=prefix)
    fn = Lambda(function_arn=ours["Steps"][0]["FunctionArn"], session=session)
    capture = ParameterString(name="CaptureUri", default_value=cfg["monitor"]["capture"])
    resolve = LambdaStep(
        name="ResolveBaseline",
        lambda_func=fn,
        inputs=ours["Steps"][0][
            "Arguments"
        ],  # the same arguments: what is compared is how the SDK renders them
        outputs=[
            LambdaOutput(output_name=n, output_type=LambdaOutputTypeEnum.String)
            for n in ("model_package_arn", "variant", "baseline_uri", "schema_uri", "evaluation_uri")
        ],
    )
    step = monitor_step(plan.spec)
    proc = sm["processing"]
    sk = SKLearnProcessor(
        framework_version=proc["framework_version"],
        role=role,
        instance_type=proc["instance_type"],
        instance_count=proc["instance_count"],
        volume_size_in_gb=proc["volume_size_gb"],
        sagemaker_session=session,
    )
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(step.config))
        key = f"{prefix}/config/monitor/config.json"
        session.upload_data(str(Path(tmp) / "config.json"), bucket=bucket, key_prefix=key.rsplit("/", 1)[0])
    inputs = [
        ProcessingInput(
            source=resolve.properties.Outputs[f"{i.name}_uri"], destination=i.path, input_name=i.name
        )
        for i in step.inputs
        if not i.is_source
    ]
    inputs += [
        ProcessingInput(source=capture, destination="/opt/ml/processing/current", input_name="current"),
        ProcessingInput(
            source=f"s3://{bucket}/{key}", destination="/opt/ml/processing/input/config", input_name="config"
        ),
    ]
    result = PropertyFile(name="MonitorResult", output_name="monitor", path="result.json")
    monitor = ProcessingStep(
        name="Monitor",
        step_args=sk.run(
            code=str(step.script_path()),
            inputs=inputs,
            outputs=[ProcessingOutput(output_name="monitor", source="/opt/ml/processing/output/monitor")],
        ),
        property_files=[result],
    )
    start_args = ours["Steps"][2]["Arguments"]["IfSteps"][0]["Arguments"]
    start = LambdaStep(
        name="StartTraining",
        lambda_func=fn,
        inputs={**start_args, "token": ExecutionVariables.PIPELINE_EXECUTION_ID},
        outputs=[LambdaOutput(output_name="pipeline_execution_arn", output_type=LambdaOutputTypeEnum.String)],
    )
    check = ConditionStep(
        name="CheckViolations",
        conditions=[
            ConditionGreaterThan(
                left=JsonGet(step_name="Monitor", property_file=result, json_path="violations"), right=0
            )
        ],
        if_steps=[start],
        else_steps=[],
    )
    pipeline = Pipeline(
        name=f"{plan.name}-monitor",
        parameters=[capture],
        steps=[resolve, monitor, check],
        sagemaker_session=session,
        pipeline_experiment_config=None,
    )
    return pipeline.definition()


def test_the_monitoring_pipeline_matches_the_sdk_step_by_step(plan: Any, ours: dict[str, Any]) -> None:
    from fraudflow.sagemaker.diff import _changes

    sdk = sdk_definition(plan, ours)
    theirs = {s["Name"]: s for s in flat_steps(sdk)}
    mine = flat_steps(ours)
    assert [s["Name"] for s in mine] == list(theirs)
    problems = {}
    for step in mine:
        changes = _changes(normalise(theirs[step["Name"]]), normalise(_as_sdk_code_file(step)))
        if changes:
            problems[step["Name"]] = changes
    assert not problems, json.dumps(problems, indent=2, ensure_ascii=False)
    assert sdk["Parameters"] == ours["Parameters"]
