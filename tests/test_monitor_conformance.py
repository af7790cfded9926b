"""Conformance: the monitoring pipeline (`render --monitoring`) against the same pipeline built with AWS's
SageMaker Python SDK v2 offline (LambdaStep, ProcessingStep with SKLearnProcessor, ConditionStep on a JsonGet),
step by step, with tests/test_sagemaker_conformance.py's normalisation (S3 keys, the code folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.side_pipeline_util import Sdk, assert_matches_sdk, sdk_definition, side_plan

pytestmark = [pytest.mark.slow]

MONITOR = [
    "monitor.schedule=rate(1 day)",
    "monitor.capture=s3://capture-bucket/capture/fraud-detect-xgb",
    "monitor.window_hours=24",
    "monitor.retrain=on_violation",
]


@pytest.fixture(scope="module")
def plan(aws_data: Path) -> Any:
    return side_plan(MONITOR)


@pytest.fixture(scope="module")
def ours(plan: Any) -> dict[str, Any]:
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.sagemaker.monitoring import render

    return render(plan, compile_plan(plan))[0]


def _build(sdk: Sdk, ours: dict[str, Any]) -> dict[str, Any]:
    from sagemaker.processing import ProcessingInput, ProcessingOutput
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionGreaterThan
    from sagemaker.workflow.execution_variables import ExecutionVariables
    from sagemaker.workflow.functions import JsonGet
    from sagemaker.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep
    from sagemaker.workflow.parameters import ParameterString
    from sagemaker.workflow.properties import PropertyFile
    from sagemaker.workflow.steps import ProcessingStep

    from fraudflow.plan import monitor_step

    capture = ParameterString(name="CaptureUri", default_value=sdk.plan.spec.config["monitor"]["capture"])
    resolve = LambdaStep(
        name="ResolveBaseline",
        lambda_func=sdk.deployer,
        inputs=ours["Steps"][0][
            "Arguments"
        ],  # the same arguments: what is compared is how the SDK renders them
        outputs=[
            LambdaOutput(output_name=n, output_type=LambdaOutputTypeEnum.String)
            for n in ("model_package_arn", "variant", "baseline_uri", "schema_uri", "evaluation_uri")
        ],
    )
    step = monitor_step(sdk.plan.spec)
    inputs = [
        ProcessingInput(
            source=resolve.properties.Outputs[f"{i.name}_uri"], destination=i.path, input_name=i.name
        )
        for i in step.inputs
        if not i.is_source
    ]
    inputs += [
        ProcessingInput(source=capture, destination="/opt/ml/processing/current", input_name="current"),
        sdk.config_input("monitor", step.config),
    ]
    result = PropertyFile(name="MonitorResult", output_name="monitor", path="result.json")
    monitor = ProcessingStep(
        name="Monitor",
        step_args=sdk.processor().run(
            code=str(step.script_path()),
            inputs=inputs,
            outputs=[ProcessingOutput(output_name="monitor", source="/opt/ml/processing/output/monitor")],
        ),
        property_files=[result],
    )
    start_args = ours["Steps"][2]["Arguments"]["IfSteps"][0]["Arguments"]
    start = LambdaStep(
        name="StartTraining",
        lambda_func=sdk.deployer,
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
    return sdk.definition("monitor", [resolve, monitor, check], [capture])


def test_the_monitoring_pipeline_matches_the_sdk_step_by_step(plan: Any, ours: dict[str, Any]) -> None:
    assert_matches_sdk(ours, sdk_definition(plan, ours, lambda sdk: _build(sdk, ours)))
