"""What the tests of the side pipelines (monitoring `<name>-monitor`, scoring `<name>-score`) share, so that each
test module keeps only what is specific to its pipeline:

- conformance: the plan with a section set, the SageMaker Python SDK v2's offline build of the same pipeline
  (a PipelineSession on moto's in-process mock, the deployer Lambda, an SKLearnProcessor, the step's config
  uploaded where fraudflow uploads it) and the step-by-step comparison with tests/test_sagemaker_conformance.py's
  normalisation;
- on moto's server: the `--set` arguments, an approved model package and the deployer Lambda serving it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest_aws import Aws
from tests.sdk_reference_pipeline import _offline_env
from tests.test_sagemaker_conformance import _as_sdk_code_file, flat_steps, normalise

ROOT = Path(__file__).resolve().parents[1]


def set_args(pairs: list[str]) -> list[str]:
    """`--set` before each `key=value`, as the CLI takes them."""
    return [arg for pair in pairs for arg in ("--set", pair)]


def side_plan(overrides: list[str]) -> Any:
    """The repo's pipelines.yaml (env aws-sample) with `overrides`, built into a Plan."""
    from fraudflow.plan import build_plan
    from fraudflow.spec.load import load_one

    return build_plan(load_one(ROOT / "pipelines.yaml", env="aws-sample", overrides=overrides, pipeline=None))


@dataclass
class Sdk:
    """One offline SDK build of a side pipeline: the session and what every side pipeline's build uses."""

    plan: Any
    session: Any  # sagemaker.workflow.pipeline_context.PipelineSession
    deployer: (
        Any  # sagemaker.lambda_helper.Lambda: the deployer, which every side pipeline's Lambda steps call
    )

    @property
    def sm(self) -> dict[str, Any]:
        return dict(self.plan.spec.config["sagemaker"])

    @property
    def bucket(self) -> str:
        return str(self.sm["bucket"])

    @property
    def prefix(self) -> str:
        return str(self.sm.get("prefix") or self.plan.name)

    def processor(self) -> Any:
        """The SKLearnProcessor of sagemaker.processing, as the SDK user would configure it."""
        from sagemaker.sklearn.processing import SKLearnProcessor

        proc = self.sm["processing"]
        return SKLearnProcessor(
            framework_version=proc["framework_version"],
            role=self.sm["role_arn"],
            instance_type=proc["instance_type"],
            instance_count=proc["instance_count"],
            volume_size_in_gb=proc["volume_size_gb"],
            sagemaker_session=self.session,
        )

    def config_input(self, folder: str, config: dict[str, Any]) -> Any:
        """The step's config.json uploaded under `<prefix>/config/<folder>/` (where fraudflow uploads it), as the
        ProcessingInput `config`."""
        from sagemaker.processing import ProcessingInput

        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "config.json").write_text(json.dumps(config))
            key_prefix = f"{self.prefix}/config/{folder}"
            self.session.upload_data(
                str(Path(tmp) / "config.json"), bucket=self.bucket, key_prefix=key_prefix
            )
        return ProcessingInput(
            source=f"s3://{self.bucket}/{key_prefix}/config.json",
            destination="/opt/ml/processing/input/config",
            input_name="config",
        )

    def definition(self, suffix: str, steps: list[Any], parameters: list[Any]) -> dict[str, Any]:
        from sagemaker.workflow.pipeline import Pipeline

        pipeline = Pipeline(
            name=f"{self.plan.name}-{suffix}",
            parameters=parameters,
            steps=steps,
            sagemaker_session=self.session,
            pipeline_experiment_config=None,
        )
        return dict(json.loads(pipeline.definition()))


def sdk_definition(plan: Any, ours: dict[str, Any], build: Callable[[Sdk], dict[str, Any]]) -> dict[str, Any]:
    """`build`'s definition, built offline: the SDK's S3 calls go to moto's in-process mock, the environment is
    restored after."""
    pytest.importorskip("sagemaker")
    pytest.importorskip("moto")
    from moto import mock_aws

    sm = plan.spec.config["sagemaker"]
    saved = dict(os.environ)
    try:
        _offline_env(sm["region"])
        with mock_aws():
            import boto3
            from sagemaker.lambda_helper import Lambda
            from sagemaker.workflow.pipeline_context import PipelineSession

            boto3.client("s3", region_name=sm["region"]).create_bucket(Bucket=sm["bucket"])
            session = PipelineSession(
                boto_session=boto3.Session(region_name=sm["region"]),
                default_bucket=sm["bucket"],
                default_bucket_prefix=sm.get("prefix") or plan.name,
            )
            deployer = Lambda(function_arn=ours["Steps"][0]["FunctionArn"], session=session)
            return build(Sdk(plan, session, deployer))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def assert_matches_sdk(ours: dict[str, Any], sdk: dict[str, Any]) -> None:
    """The same steps in the same order, each the same as the SDK's after normalisation, the same parameters."""
    from fraudflow.sagemaker.diff import _changes

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


# -- on moto's server ----------------------------------------------------------------------------------------
def approved_package(aws: Aws, model_data: str, **extra: Any) -> str:
    """An Approved version in a new group `fraud-detect-xgb`, its container serving `model_data`; `extra`:
    `environment` for the container, `metrics_uri` for the evaluation report (ModelQuality statistics)."""
    sm = aws.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="fraud-detect-xgb")
    container: dict[str, Any] = {"Image": "img", "ModelDataUrl": model_data}
    if "environment" in extra:
        container["Environment"] = extra["environment"]
    metrics = {}
    if "metrics_uri" in extra:
        metrics["ModelMetrics"] = {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": extra["metrics_uri"]}}
        }
    return str(
        sm.create_model_package(
            ModelPackageGroupName="fraud-detect-xgb",
            InferenceSpecification={
                "Containers": [container],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            ModelApprovalStatus="Approved",
            **metrics,
        )["ModelPackageArn"]
    )


def serving(rendered: Any, package: str) -> Any:
    """The deployer Lambda's module, after it has put `package` on the endpoint as the training pipeline's
    Lambda step would: the endpoint the side pipelines' first step reads the served version from."""
    from fraudflow.sagemaker import iam
    from tests.test_iam_moto import _deployer

    deploy = next(s for s in iam.steps(rendered.definition) if s["Type"] == "Lambda")
    lam = _deployer()
    assert lam.handler({**deploy["Arguments"], "model_package_arn": package})["action"] == "created"
    return lam
