"""Conformance: the scoring pipeline (`render --scoring`) against the same pipeline built with AWS's SageMaker
Python SDK v2 offline (LambdaStep, ProcessingStep with SKLearnProcessor, ModelStep, TransformStep with a
Transformer), step by step, with tests/test_sagemaker_conformance.py's normalisation (S3 keys, the code folder)."""

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
BATCH = ["deploy.batch.output=s3://scored-claims/fraud-detect", "deploy.batch.instance_count=2"]


@pytest.fixture(scope="module")
def plan(aws_data: Path) -> Any:
    from fraudflow.plan import build_plan
    from fraudflow.spec.load import load_one

    return build_plan(load_one(ROOT / "pipelines.yaml", env="aws-sample", overrides=BATCH, pipeline=None))


@pytest.fixture(scope="module")
def ours(plan: Any) -> dict[str, Any]:
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.sagemaker.scoring import render

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
    from sagemaker.model import Model
    from sagemaker.processing import ProcessingInput, ProcessingOutput
    from sagemaker.sklearn.processing import SKLearnProcessor
    from sagemaker.transformer import Transformer
    from sagemaker.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep
    from sagemaker.workflow.model_step import ModelStep
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.pipeline_context import PipelineSession
    from sagemaker.workflow.steps import ProcessingStep, TransformStep

    from fraudflow.sagemaker.scoring import join_step

    cfg = plan.spec.config
    sm = cfg["sagemaker"]
    bucket, prefix, role, region = sm["bucket"], sm.get("prefix") or plan.name, sm["role_arn"], sm["region"]
    session = PipelineSession(boto_session=boto_session, default_bucket=bucket, default_bucket_prefix=prefix)
    fn = Lambda(function_arn=ours["Steps"][0]["FunctionArn"], session=session)
    resolve = LambdaStep(
        name="ResolveModel",
        lambda_func=fn,
        inputs={"action": "served_model", "endpoint_name": cfg["deploy"]["endpoint_name"]},
        outputs=[
            LambdaOutput(output_name=n, output_type=LambdaOutputTypeEnum.String)
            for n in ("model_package_arn", "variant", "model_data_url", "decision_threshold")
        ],
    )
    step = join_step(plan)
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
        key = f"{prefix}/config/score/config.json"
        session.upload_data(str(Path(tmp) / "config.json"), bucket=bucket, key_prefix=key.rsplit("/", 1)[0])
    # the sources where the training pipeline uploads them (what is compared is how the SDK renders an input)
    uploaded = {
        i["InputName"]: i["S3Input"]["S3Uri"] for i in ours["Steps"][1]["Arguments"]["ProcessingInputs"]
    }
    inputs = [
        ProcessingInput(source=uploaded[i.name], destination=i.path, input_name=i.name) for i in step.inputs
    ]
    inputs.append(
        ProcessingInput(
            source=f"s3://{bucket}/{key}", destination="/opt/ml/processing/input/config", input_name="config"
        )
    )
    join = ProcessingStep(
        name="JoinClaims",
        step_args=sk.run(
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
    from sagemaker import image_uris

    xgb_image = image_uris.retrieve("xgboost", region, version=sm["training"]["framework_version"])
    model = Model(
        image_uri=xgb_image,
        model_data=resolve.properties.Outputs["model_data_url"],
        role=role,
        env=serving_env,
        sagemaker_session=session,
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
        sagemaker_session=session,
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
    pipeline = Pipeline(
        name=f"{plan.name}-score",
        parameters=[],
        steps=[resolve, join, step_model, score],
        sagemaker_session=session,
        pipeline_experiment_config=None,
    )
    return pipeline.definition()


def test_the_scoring_pipeline_matches_the_sdk_step_by_step(plan: Any, ours: dict[str, Any]) -> None:
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
    assert sdk["Parameters"] == ours["Parameters"] == []
