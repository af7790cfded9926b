"""The tune step on SageMaker: a `Tuning` step (HyperParameterTuningJob) around the train step's own training job.

Rendered as the SDK v2's `TuningStep(step_args=HyperparameterTuner(estimator, ...).fit(channels))` renders it (the
conformance test builds that and compares): the training job definition is the train step's (same image, channels,
resources, script-mode hyperparameters) with the searched hyperparameters taken out of the static ones; the ranges
are the tune section's (fraudflow/tuning.py), categorical values JSON-encoded as script mode decodes them; the
objective is read from the `final <split>-<metric>: VALUE` lines train.py prints. The model that evaluation and
registration read is the best training job's, found as `TuningStep.get_top_model_s3_uri(0, ...)` finds it.
"""

from __future__ import annotations

import json
from typing import Any

from fraudflow.plan import Step
from fraudflow.spec.tuning import (
    Objective,
    Range,
    grid_size,
    objective,
    search_space,
    train_hyperparameter_schema,
)

STRATEGIES = {"bayesian": "Bayesian", "random": "Random", "grid": "Grid"}
NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
DEFINITION_KEYS = ("RoleArn", "OutputDataConfig", "StoppingCondition")  # as the train step's
# What the SDK's tuner adds to a framework estimator's static hyperparameters (so `HyperparameterTuner.attach` can
# rebuild the estimator); the training toolkit keeps `sagemaker_*` names away from the script.
ESTIMATOR_METADATA = {
    "sagemaker_estimator_class_name": json.dumps("XGBoost"),
    "sagemaker_estimator_module": json.dumps("sagemaker.xgboost.estimator"),
}


def metric_definition(obj: Objective) -> dict[str, str]:
    """What SageMaker reads the objective from: train.py's `final validation-auc: 0.83` line (train.py's
    final_metrics names the metric as XGBoost logs it)."""
    return {"Name": obj.name, "Regex": f"final {obj.logged}: {NUMBER}"}


def ranges(space: list[Range], strategy: str) -> dict[str, list[dict[str, Any]]]:
    """ParameterRanges. SageMaker's Grid strategy takes categorical ranges only: a grid's integer or stepped
    ranges become their values, as the local GridSampler enumerates them."""
    out: dict[str, list[dict[str, Any]]] = {
        "ContinuousParameterRanges": [],
        "IntegerParameterRanges": [],
        "CategoricalParameterRanges": [],
    }
    for r in space:
        if r.kind == "categorical" or strategy == "grid":
            # each value as script mode's JSON text of its string, as the SDK's CategoricalParameter renders it
            values = [json.dumps(str(v)) for v in r.grid()]
            out["CategoricalParameterRanges"].append({"Name": r.name, "Values": values})
            continue
        key = "IntegerParameterRanges" if r.kind == "integer" else "ContinuousParameterRanges"
        out[key].append(
            {
                "Name": r.name,
                "MinValue": str(r.low),
                "MaxValue": str(r.high),
                "ScalingType": "Logarithmic" if r.log else "Linear",
            }
        )
    return out


def tuning_step(step: Step, training: dict[str, Any]) -> dict[str, Any]:
    """The Tuning step, given the Training step the compiler renders for the same Plan step."""
    tune = step.config
    obj = objective(tune)
    space = search_space(tune, train_hyperparameter_schema())
    strategy = tune.get("strategy", "bayesian")
    args = training["Arguments"]
    searched = {r.name for r in space}
    max_jobs = int(tune.get("max_trials", 20))
    if strategy == "grid":
        max_jobs = min(max_jobs, grid_size(space))
    config: dict[str, Any] = {
        "Strategy": STRATEGIES[strategy],
        "ResourceLimits": {
            "MaxNumberOfTrainingJobs": max_jobs,
            "MaxParallelTrainingJobs": int(tune.get("parallel_trials", 1)),
        },
        # Grid tries every combination: SageMaker allows early stopping only for Bayesian and Random
        "TrainingJobEarlyStoppingType": "Auto"
        if tune.get("early_stopping", True) and strategy != "grid"
        else "Off",
    }
    if strategy != "grid":
        config["RandomSeed"] = int(tune.get("seed", 0))
    config["HyperParameterTuningJobObjective"] = {
        "Type": "Maximize" if obj.direction == "maximize" else "Minimize",
        "MetricName": obj.name,
    }
    config["ParameterRanges"] = ranges(space, strategy)
    definition: dict[str, Any] = {
        "StaticHyperParameters": {
            **{k: v for k, v in args["HyperParameters"].items() if k not in searched},
            **ESTIMATOR_METADATA,
        },
        **{k: args[k] for k in DEFINITION_KEYS},
        # a tuning job's training resources: the train step's, under the name CreateHyperParameterTuningJob uses
        "HyperParameterTuningResourceConfig": args["ResourceConfig"],
        "AlgorithmSpecification": {
            **args["AlgorithmSpecification"],
            "MetricDefinitions": [metric_definition(obj)],
        },
        "InputDataConfig": args["InputDataConfig"],
    }
    rendered = {
        "Name": step.title,
        "Type": "Tuning",
        "Arguments": {"HyperParameterTuningJobConfig": config, "TrainingJobDefinition": definition},
    }
    return {**rendered, **{k: v for k, v in training.items() if k == "CacheConfig"}}


def top_model_uri(step_name: str, output_path: str) -> dict[str, Any]:
    """The best training job's model.tar.gz, as `TuningStep.get_top_model_s3_uri(top_k=0, bucket, prefix)` joins
    it: the training jobs write under the definition's S3OutputPath, one folder per job name."""
    bucket, _, prefix = output_path.removeprefix("s3://").partition("/")
    return {
        "Std:Join": {
            "On": "/",
            "Values": [
                "s3:/",
                bucket,
                *([prefix.strip("/")] if prefix.strip("/") else []),
                {"Get": f"Steps.{step_name}.TrainingJobSummaries[0].TrainingJobName"},
                "output/model.tar.gz",
            ],
        }
    }
