"""Conformance: the scoring pipeline (`render --scoring`) against the same pipeline built with AWS's SageMaker
Python SDK v2 offline (LambdaStep, ProcessingStep with SKLearnProcessor, ModelStep, TransformStep with a
Transformer), step by step, with tests/test_sagemaker_conformance.py's normalisation (S3 keys, the code folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.side_pipeline_util import Sdk, assert_matches_sdk, sdk_definition, side_plan

pytestmark = [pytest.mark.slow]

BATCH = ["deploy.batch.output=s3://scored-claims/fraud-detect", "deploy.batch.instance_count=2"]


@pytest.fixture(scope="module")
def plan(aws_data: Path) -> Any:
    return side_plan(BATCH)


@pytest.fixture(scope="module")
def ours(plan: Any) -> dict[str, Any]:
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.sagemaker.scoring import render

    return render(plan, compile_plan(plan))[0]


def _build(sdk: Sdk, ours: dict[str, Any]) -> dict[str, Any]:
    from sagemaker import image_uris
    from sagemaker.model import Model
    from sagemaker.processing import ProcessingInput, ProcessingOutput
    from sagemaker.transformer import Transformer
    from sagemaker.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep
    from sagemaker.workflow.model_step import ModelStep
    from sagemaker.workflow.steps import ProcessingStep, TransformStep

    from fraudflow.sagemaker.scoring import join_step

    cfg = sdk.plan.spec.config
    role, region = sdk.sm["role_arn"], sdk.sm["region"]
    resolve = LambdaStep(
        name="ResolveModel",
        lambda_func=sdk.deployer,
        inputs={"action": "served_model", "endpoint_name": cfg["deploy"]["endpoint_name"]},
        outputs=[
            LambdaOutput(output_name=n, output_type=LambdaOutputTypeEnum.String)
            for n in ("model_package_arn", "variant", "model_data_url", "decision_threshold")
        ],
    )
    step = join_step(sdk.plan)
    # the sources where the training pipeline uploads them (what is compared is how the SDK renders an input)
    uploaded = {
        i["InputName"]: i["S3Input"]["S3Uri"] for i in ours["Steps"][1]["Arguments"]["ProcessingInputs"]
    }
    inputs = [
        ProcessingInput(source=uploaded[i.name], destination=i.path, input_name=i.name) for i in step.inputs
    ]
    inputs.append(sdk.config_input("score", step.config))
    join = ProcessingStep(
        name="JoinClaims",
        step_args=sdk.processor().run(
            code=str(step.script_path()),
            inputs=inputs,
            outputs=[ProcessingOutput(output_name="records", source="/opt/ml/processing/output/records")],
            arguments=["--records"],
        ),
    )
    serving_env = {
        "FRAUDFLOW_DECISION_THRESHOLD": resolve.properties.Outputs["decision_threshold"],
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "*/*",
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_REGION": region,
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    }
    xgb_image = image_uris.retrieve("xgboost", region, version=sdk.sm["training"]["framework_version"])
    model = Model(
        image_uri=xgb_image,
        model_data=resolve.properties.Outputs["model_data_url"],
        role=role,
        env=serving_env,
        sagemaker_session=sdk.session,
    )
    batch = cfg["deploy"]["batch"]
    step_model = ModelStep(name="CreateModel", step_args=model.create(instance_type=batch["instance_type"]))
    transformer = Transformer(
        model_name=step_model.properties.ModelName,
        instance_type=batch["instance_type"],
        instance_count=batch["instance_count"],
        output_path=batch["output"],
        accept="application/json",
        assemble_with="Line",
        strategy="SingleRecord",
        sagemaker_session=sdk.session,
    )
    score = TransformStep(
        name="Score",
        step_args=transformer.transform(
            data=join.properties.ProcessingOutputConfig.Outputs["records"].S3Output.S3Uri,
            content_type="application/json",
            split_type="Line",
            join_source="Input",
        ),
    )
    return sdk.definition("score", [resolve, join, step_model, score], [])


def test_the_scoring_pipeline_matches_the_sdk_step_by_step(plan: Any, ours: dict[str, Any]) -> None:
    sdk = sdk_definition(plan, ours, lambda sdk: _build(sdk, ours))
    assert_matches_sdk(ours, sdk)
    assert ours["Parameters"] == []
