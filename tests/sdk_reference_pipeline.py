"""Build fraudflow's pipeline with AWS's own SageMaker Python SDK v2, offline: the reference for conformance.

Reads the same pipelines.yaml through fraudflow's loader and planner, then builds every step with the SDK's
classes the way an SDK user would. Offline as /work/shared/aws/README.md describes: moto's in-process mock_aws
with the bucket created first (the SDK uploads code and Clarify configs while it builds), a fixed region, role
validation off. Run as a script it prints the definition JSON (the bench times exactly that, cold).

    python tests/sdk_reference_pipeline.py [pipelines.yaml] [--env E] [--set k=v]... [-o OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _offline_env(region: str) -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["AWS_DEFAULT_REGION"] = region
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    os.environ.pop("AWS_ENDPOINT_URL", None)  # mock_aws intercepts; a real endpoint must not be reached


@dataclass
class Reference:
    definition: dict[str, Any]
    uploads: dict[str, bytes]  # every object the SDK uploaded while building: key -> bytes
    clarify_jobs: list[dict[str, Any]]  # the ClarifyCheck job configs in step order (the SDK reuses one key)


def build(plan: Any) -> Reference:
    """The SDK's definition and uploads, offline under moto's in-process mock_aws."""
    sm = plan.spec.config["sagemaker"]
    saved = dict(os.environ)
    try:
        return _build_offline(plan, sm)
    finally:  # leave the caller's environment (e.g. a test session's AWS_ENDPOINT_URL) as it was
        os.environ.clear()
        os.environ.update(saved)


def _build_offline(plan: Any, sm: dict[str, Any]) -> Reference:
    import logging
    import warnings

    from moto import mock_aws

    _offline_env(sm["region"])
    logging.getLogger("sagemaker").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="sagemaker")
    with mock_aws():
        import boto3
        from sagemaker.workflow import clarify_check_step

        s3 = boto3.client("s3", region_name=sm["region"])
        s3.create_bucket(Bucket=sm["bucket"])
        jobs: list[dict[str, Any]] = []
        original = clarify_check_step._upload_analysis_config

        def capture(path: str, *args: Any, **kwargs: Any) -> str:
            jobs.append(json.loads(Path(path).read_text()))
            return original(path, *args, **kwargs)

        clarify_check_step._upload_analysis_config = capture
        try:
            definition = _build(plan, boto3.Session(region_name=sm["region"]))
        finally:
            clarify_check_step._upload_analysis_config = original
        uploads = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sm["bucket"]):
            for obj in page.get("Contents", []):
                uploads[obj["Key"]] = s3.get_object(Bucket=sm["bucket"], Key=obj["Key"])["Body"].read()
    return Reference(json.loads(definition), uploads, jobs)


def _build(plan: Any, boto_session: Any) -> str:
    with tempfile.TemporaryDirectory(prefix="ff-sdk-") as tmp:  # the config files, uploaded as they are made
        return _build_in(plan, boto_session, Path(tmp))


def _build_in(plan: Any, boto_session: Any, tmp: Path) -> str:  # noqa: PLR0915 - one pipeline, read top to bottom
    from sagemaker import image_uris
    from sagemaker.clarify import BiasConfig, DataConfig, ModelConfig, ModelPredictedLabelConfig, SHAPConfig
    from sagemaker.drift_check_baselines import DriftCheckBaselines
    from sagemaker.inputs import TrainingInput
    from sagemaker.lambda_helper import Lambda
    from sagemaker.model import Model
    from sagemaker.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.processing import ProcessingInput, ProcessingOutput, ScriptProcessor
    from sagemaker.sklearn.processing import SKLearnProcessor
    from sagemaker.workflow.check_job_config import CheckJobConfig
    from sagemaker.workflow.clarify_check_step import (
        ClarifyCheckStep,
        ModelBiasCheckConfig,
        ModelExplainabilityCheckConfig,
    )
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionGreaterThanOrEqualTo, ConditionLessThanOrEqualTo
    from sagemaker.workflow.execution_variables import ExecutionVariables
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.functions import Join, JsonGet
    from sagemaker.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep
    from sagemaker.workflow.model_step import ModelStep
    from sagemaker.workflow.parameters import (
        ParameterBoolean,
        ParameterFloat,
        ParameterInteger,
        ParameterString,
    )
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.pipeline_context import PipelineSession
    from sagemaker.workflow.properties import PropertyFile
    from sagemaker.workflow.step_collections import RegisterModel
    from sagemaker.workflow.steps import CacheConfig, ProcessingStep, TrainingStep
    from sagemaker.xgboost import XGBoost

    spec = plan.spec
    cfg = spec.config
    sm = cfg["sagemaker"]
    bucket, prefix, region, role = sm["bucket"], sm.get("prefix") or spec.name, sm["region"], sm["role_arn"]
    name = sm.get("pipeline_name") or spec.name
    session = PipelineSession(boto_session=boto_session, default_bucket=bucket, default_bucket_prefix=prefix)

    kinds = {"String": ParameterString, "Integer": ParameterInteger, "Float": ParameterFloat}
    kinds["Boolean"] = ParameterBoolean
    params = {}
    for p in plan.parameters:
        default = p.default
        if p.path.startswith("data.sources.") and not default.startswith("s3://"):
            default = _data_uri(bucket, prefix, Path(default))
        params[p.path] = kinds[p.type](name=p.name, default_value=default)

    def value(path: str, fixed: Any) -> Any:
        return params.get(path, fixed)

    cache = None
    if sm["cache"]["enabled"]:
        cache = CacheConfig(enable_caching=True, expire_after=sm["cache"]["expire_after"])
    proc, train_cfg, clarify = sm["processing"], sm["training"], sm["clarify"]

    def config_input(step: Any) -> ProcessingInput:
        folder = tmp / step.name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(step.config, indent=2, sort_keys=True))
        # An SDK user uploads the config and passes its URI: a local source would get a random key.
        key = f"{prefix}/config/{step.name}/config.json"
        session.upload_data(str(folder / "config.json"), bucket=bucket, key_prefix=key.rsplit("/", 1)[0])
        return ProcessingInput(
            source=f"s3://{bucket}/{key}", destination="/opt/ml/processing/input/config", input_name="config"
        )

    # Preprocess: scikit-learn image.
    pre = plan.step("preprocess")
    sk = SKLearnProcessor(
        framework_version=proc["framework_version"],
        role=role,
        instance_type=value("sagemaker.processing.instance_type", proc["instance_type"]),
        instance_count=value("sagemaker.processing.instance_count", proc["instance_count"]),
        volume_size_in_gb=proc["volume_size_gb"],
        sagemaker_session=session,
    )
    inputs = [
        ProcessingInput(
            source=value(f"data.sources.{i.output}", cfg["data"]["sources"][i.output]),
            destination=f"/opt/ml/processing/input/{i.name}",
            input_name=i.name,
        )
        for i in pre.inputs
    ]
    inputs.append(config_input(pre))
    outputs = [
        ProcessingOutput(output_name=o, source=f"/opt/ml/processing/output/{o}") for o in pre.output_names
    ]
    step_pre = ProcessingStep(
        name=pre.title,
        step_args=sk.run(code=str(pre.script_path()), inputs=inputs, outputs=outputs),
        cache_config=cache,
    )

    def out(step: Any, output: str) -> Any:
        return step.properties.ProcessingOutputConfig.Outputs[output].S3Output.S3Uri

    # Train: script mode, step_code/train.py on the XGBoost framework image.
    tr = plan.step("tune") if plan.has("tune") else plan.step("train")
    hps = {k: value(f"train.hyperparameters.{k}", v) for k, v in tr.hyperparameters.items()}
    xgb = XGBoost(
        entry_point=str(tr.script_path()),
        dependencies=[str(path) for path in tr.code_paths[1:]],  # the serving code train.py packs
        framework_version=train_cfg["framework_version"],
        py_version="py3",
        role=role,
        instance_type=value("sagemaker.training.instance_type", train_cfg["instance_type"]),
        instance_count=value("sagemaker.training.instance_count", train_cfg["instance_count"]),
        volume_size=train_cfg["volume_size_gb"],
        max_run=train_cfg["max_runtime_s"],
        output_path=f"s3://{bucket}/{prefix}/model",
        code_location=f"s3://{bucket}/{prefix}/code",
        hyperparameters=hps,
        disable_profiler=True,
        debugger_hook_config=False,
        sagemaker_session=session,
    )
    channels = {
        i.name: TrainingInput(
            s3_data=out(step_pre, i.output),
            content_type="application/json" if i.name == "schema" else "text/csv",
        )
        for i in tr.inputs
    }
    if tr.kind == "tuning":  # the same estimator under a HyperparameterTuner; the best job's model goes on
        step_train = _tuning_step(tr, xgb, channels, cache)
        model_data = step_train.get_top_model_s3_uri(top_k=0, s3_bucket=bucket, prefix=f"{prefix}/model")
    else:
        step_train = TrainingStep(name=tr.title, step_args=xgb.fit(channels), cache_config=cache)
        model_data = step_train.properties.ModelArtifacts.S3ModelArtifacts
    xgb_image = image_uris.retrieve("xgboost", region, version=train_cfg["framework_version"])

    # Evaluate: the XGBoost image again (the model's own library version), with a PropertyFile.
    ev = plan.step("evaluate")
    evp = ScriptProcessor(
        image_uri=xgb_image,
        command=["python3"],
        role=role,
        instance_type=value("sagemaker.processing.instance_type", proc["instance_type"]),
        instance_count=value("sagemaker.processing.instance_count", proc["instance_count"]),
        volume_size_in_gb=proc["volume_size_gb"],
        sagemaker_session=session,
    )
    report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
    step_eval = ProcessingStep(
        name=ev.title,
        step_args=evp.run(
            code=str(ev.script_path()),
            inputs=[
                ProcessingInput(
                    source=model_data, destination="/opt/ml/processing/model", input_name="model"
                ),
                ProcessingInput(
                    source=out(step_pre, "test"), destination="/opt/ml/processing/test", input_name="test"
                ),
                config_input(ev),
            ],
            outputs=[ProcessingOutput(output_name="evaluation", source="/opt/ml/processing/evaluation")],
        ),
        property_files=[report],
        cache_config=cache,
    )
    metric = JsonGet(step_name=step_eval.name, property_file=report, json_path=plan.gate.json_path)
    threshold = value("gate.threshold", plan.gate.threshold)

    # If the gate passes: model, Clarify checks, registration, deployment.
    # The model serves with step_code/inference.py, which train.py packs into model.tar.gz's code/: the
    # environment an SDK user would give Model(env=...) for it (XGBoostModel(entry_point=...) would instead add
    # a repack job; docs/sagemaker.md says why fraudflow does not).
    ev_cfg = plan.step("evaluate").config["evaluate"]
    threshold_param = params.get("evaluate.decision_threshold")
    serving_env = {
        "FRAUDFLOW_DECISION_THRESHOLD": Join(on="", values=[threshold_param])
        if threshold_param
        else json.dumps(float(ev_cfg.get("decision_threshold", 0.5))),
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "*/*",
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_REGION": region,
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    }
    model = Model(
        image_uri=xgb_image, model_data=model_data, role=role, env=serving_env, sagemaker_session=session
    )
    step_model = ModelStep(name="CreateModel", step_args=model.create(instance_type=clarify["instance_type"]))
    dataset = Join(on="/", values=[out(step_pre, "baseline"), "test_with_header.csv"])
    label = cfg["data"]["label"]
    group = cfg["register"]["model_package_group"]
    check_job = CheckJobConfig(
        role=role,
        instance_count=clarify["instance_count"],
        instance_type=clarify["instance_type"],
        volume_size_in_gb=clarify["volume_size_gb"],
        sagemaker_session=session,
    )
    model_config = ModelConfig(
        model_name=step_model.properties.ModelName,
        instance_count=1,
        instance_type=clarify["instance_type"],
        accept_type="text/csv",
        content_type="text/csv",
    )

    def data_config(check: str) -> DataConfig:
        return DataConfig(
            s3_data_input_path=dataset,
            s3_output_path=Join(
                on="/", values=["s3:/", bucket, prefix, ExecutionVariables.PIPELINE_EXECUTION_ID, check]
            ),
            s3_analysis_config_output_path=f"s3://{bucket}/{prefix}/clarify",
            label=label,
            dataset_type="text/csv",
        )

    if_steps: list[Any] = [step_model]
    early: list[Any] = []  # a bias check the gate reads runs before the Condition, with the model it serves
    gate_reads_bias = any(c.source == "bias" for c in plan.gate.conditions)
    bias_step = explain_step = None
    if plan.has("bias"):
        b = plan.step("bias").config["bias"]
        bias_step = ClarifyCheckStep(
            name=plan.step("bias").title,
            clarify_check_config=ModelBiasCheckConfig(
                data_config=data_config(plan.step("bias").title),
                data_bias_config=BiasConfig(
                    label_values_or_threshold=b["label_values"],
                    facet_name=b["facet"],
                    facet_values_or_threshold=b["facet_values"],
                ),
                model_config=model_config,
                model_predicted_label_config=ModelPredictedLabelConfig(
                    probability_threshold=b["probability_threshold"]
                ),
                methods=b["post_training_metrics"],
            ),
            check_job_config=check_job,
            skip_check=False,
            fail_on_violation=b["fail_on_violation"],
            register_new_baseline=True,
            model_package_group_name=group,
            cache_config=cache,
        )
        if gate_reads_bias:
            early = [if_steps.pop(0), bias_step]
        else:
            if_steps.append(bias_step)
    if plan.has("explain"):
        x = plan.step("explain").config["explain"]
        explain_step = ClarifyCheckStep(
            name=plan.step("explain").title,
            clarify_check_config=ModelExplainabilityCheckConfig(
                data_config=data_config(plan.step("explain").title),
                model_config=model_config,
                explainability_config=SHAPConfig(
                    num_samples=x["num_samples"], agg_method=x["agg_method"], num_clusters=1, use_logit=True
                ),
            ),
            check_job_config=check_job,
            skip_check=False,
            fail_on_violation=False,
            register_new_baseline=True,
            model_package_group_name=group,
            cache_config=cache,
        )
        if_steps.append(explain_step)

    def source(uri: Any) -> MetricsSource:
        return MetricsSource(s3_uri=uri, content_type="application/json")

    metrics: dict[str, Any] = {
        "model_statistics": source(Join(on="/", values=[out(step_eval, "evaluation"), "evaluation.json"]))
    }
    drift: dict[str, Any] = {}
    if bias_step:
        metrics["bias_post_training"] = source(bias_step.properties.CalculatedBaselineConstraints)
        drift["bias_post_training_constraints"] = source(
            bias_step.properties.BaselineUsedForDriftCheckConstraints
        )
        drift["bias_config_file"] = _file_source(
            bias_step.clarify_check_config.monitoring_analysis_config_uri
        )
    if explain_step:
        metrics["explainability"] = source(explain_step.properties.CalculatedBaselineConstraints)
        drift["explainability_constraints"] = source(
            explain_step.properties.BaselineUsedForDriftCheckConstraints
        )
        drift["explainability_config_file"] = _file_source(
            explain_step.clarify_check_config.monitoring_analysis_config_uri
        )
    reg = cfg["register"]
    step_register = RegisterModel(
        name=plan.step("register").title,
        model=Model(
            image_uri=xgb_image, model_data=model_data, role=role, env=serving_env, sagemaker_session=session
        ),
        content_types=["text/csv", "application/json"],
        response_types=["text/csv", "application/json"],
        inference_instances=[cfg["deploy"]["instance_type"]] if cfg.get("deploy") else None,
        transform_instances=[cfg["deploy"]["instance_type"]] if cfg.get("deploy") else None,
        model_package_group_name=group,
        approval_status=value("register.approval_status", reg["approval_status"]),
        model_metrics=ModelMetrics(**metrics),
        drift_check_baselines=DriftCheckBaselines(**drift) if drift else None,
        description=reg.get("description"),
    )
    if_steps.append(step_register)
    if plan.has("deploy"):
        d = plan.step("deploy").config
        fn = sm.get("lambda", {}).get("function_name") or f"{name}-deployer"
        account = role.split(":")[4]
        if_steps.append(
            LambdaStep(
                name=plan.step("deploy").title,
                lambda_func=Lambda(
                    function_arn=f"arn:aws:lambda:{region}:{account}:function:{fn}", session=session
                ),
                inputs={
                    "model_package_arn": step_register.properties.ModelPackageArn,
                    "endpoint_name": d["endpoint_name"],
                    "instance_type": d["instance_type"],
                    "instance_count": d["instance_count"],
                    "variant_name": (d.get("variants") or [{"name": "AllTraffic"}])[0]["name"],
                    "require_approval": bool(d.get("require_approval", False)),
                    "role_arn": role,
                },
                outputs=[
                    LambdaOutput(output_name=n, output_type=LambdaOutputTypeEnum.String)
                    for n in ("action", "endpoint_name", "model_name")
                ],
            )
        )
    # Every gate condition, written as an SDK user would: JsonGet on the evaluation PropertyFile or on the bias
    # check's analysis.json in S3, and one comparison per bound.
    conditions: list[Any] = []
    parts: list[Any] = []
    for cond in plan.gate.conditions:
        if cond.source == "bias":
            uri = Join(
                on="/",
                values=[
                    "s3:/",
                    bucket,
                    prefix,
                    ExecutionVariables.PIPELINE_EXECUTION_ID,
                    plan.step("bias").title,
                    "analysis.json",
                ],
            )
            got = JsonGet(s3_uri=uri, json_path=cond.json_path)
        else:
            got = JsonGet(step_name=step_eval.name, property_file=report, json_path=cond.json_path)
        need: list[Any] = []
        if cond.min is not None:
            low = value(cond.parameter, cond.min) if cond.parameter else cond.min
            conditions.append(ConditionGreaterThanOrEqualTo(left=got, right=low))
            need += [">=", low]
        if cond.max is not None:
            conditions.append(ConditionLessThanOrEqualTo(left=got, right=cond.max))
            need += [*(["and"] if need else []), "<=", cond.max]
        if cond.max_abs is not None:
            conditions.append(ConditionGreaterThanOrEqualTo(left=got, right=-cond.max_abs))
            conditions.append(ConditionLessThanOrEqualTo(left=got, right=cond.max_abs))
            need += [*(["and"] if need else []), "|x| <=", cond.max_abs]
        if cond.champion:
            parts.append([f"champion {cond.metric} margin over the champion", got, "needs >= 0"])
        else:
            parts.append([cond.metric, got, "needs", *need])
    if len(plan.gate.conditions) == 1 and plan.gate.conditions[0].parameter:
        message = Join(on=" ", values=[f"{plan.gate.metric}", metric, "is below the threshold", threshold])
    else:
        values: list[Any] = ["the gate stopped the pipeline; every condition must hold:"]
        for i, part in enumerate(parts):
            values += [*([";"] if i else []), *part]
        message = Join(on=" ", values=values)
    fail = FailStep(name="GateFailed", error_message=message)
    gate = ConditionStep(
        name=plan.gate.title,
        conditions=conditions,
        if_steps=if_steps,
        else_steps=[fail],
    )
    pipeline = Pipeline(
        name=name,
        parameters=list(params.values()),
        steps=[step_pre, step_train, step_eval, *early, gate],
        sagemaker_session=session,
        pipeline_experiment_config=None,
    )
    return pipeline.definition()


def _tuning_step(step: Any, estimator: Any, channels: dict[str, Any], cache: Any) -> Any:
    """What an SDK user writes for the tune section: HyperparameterTuner over the train step's estimator."""
    from sagemaker.tuner import (
        CategoricalParameter,
        ContinuousParameter,
        HyperparameterTuner,
        IntegerParameter,
    )
    from sagemaker.workflow.steps import TuningStep

    from fraudflow.spec.tuning import grid_size, objective, search_space, train_hyperparameter_schema

    tune = step.config
    obj = objective(tune)
    space = search_space(tune, train_hyperparameter_schema())
    strategy = {"bayesian": "Bayesian", "random": "Random", "grid": "Grid"}[tune.get("strategy", "bayesian")]
    ranges: dict[str, Any] = {}
    for r in space:
        if r.kind == "categorical" or strategy == "Grid":
            ranges[r.name] = CategoricalParameter(r.grid())
        else:
            kind = IntegerParameter if r.kind == "integer" else ContinuousParameter
            ranges[r.name] = kind(r.low, r.high, scaling_type="Logarithmic" if r.log else "Linear")
    number = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
    tuner = HyperparameterTuner(
        estimator,
        objective_metric_name=obj.name,
        hyperparameter_ranges=ranges,
        metric_definitions=[{"Name": obj.name, "Regex": f"final {obj.logged}: {number}"}],
        strategy=strategy,
        objective_type="Maximize" if obj.direction == "maximize" else "Minimize",
        max_jobs=min(tune["max_trials"], grid_size(space)) if strategy == "Grid" else tune["max_trials"],
        max_parallel_jobs=tune["parallel_trials"],
        early_stopping_type="Auto" if tune["early_stopping"] and strategy != "Grid" else "Off",
        random_seed=None if strategy == "Grid" else tune["seed"],
    )
    return TuningStep(name=step.title, step_args=tuner.fit(channels), cache_config=cache)


def _file_source(uri: str) -> Any:
    from sagemaker.model_metrics import FileSource

    return FileSource(s3_uri=uri, content_type="application/json")


def _data_uri(bucket: str, prefix: str, path: Path) -> str:
    import hashlib

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return f"s3://{bucket}/{prefix}/data/{digest}/{path.name}"


def load_plan(file: str, env: str | None = None, overrides: list[str] | None = None) -> Any:
    sys.path.insert(0, str(ROOT))
    from fraudflow.plan import build_plan
    from fraudflow.spec.load import load_one

    return build_plan(load_one(file, env=env, overrides=overrides or [], pipeline=None))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", default=str(ROOT / "pipelines.yaml"))
    ap.add_argument("--env")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("-o", "--output")
    args = ap.parse_args(argv)
    ref = build(load_plan(args.file, args.env, args.overrides))
    text = json.dumps(ref.definition, indent=2, sort_keys=True)
    if args.output:
        Path(args.output).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
