"""Typed view of a resolved pipeline's config (`Spec.config`). GENERATED from schemas/pipelines.schema.json by
tools/gen_config_types.py: edit the schema, then run the tool (tests/test_config_types.py fails when they differ).

Functional TypedDict syntax (ruff's UP013 is off for this file), as `lambda` is a key. `Required[...]` is quoted: typing.Required is Python 3.11+, and
only the type checker reads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypedDict

if TYPE_CHECKING:
    from typing_extensions import Required


DataJoinConfig = TypedDict(
    "DataJoinConfig",
    {
        "on": "Required[str | list[str]]",
        "how": Literal["left", "inner"],
    },
    total=False,
)


DataExpectRowsLevelConfig = TypedDict(
    "DataExpectRowsLevelConfig",
    {
        "present": Literal["fail", "warn"],
        "type": Literal["fail", "warn"],
        "categories": Literal["fail", "warn"],
        "range": Literal["fail", "warn"],
        "max_null_share": Literal["fail", "warn"],
        "unique": Literal["fail", "warn"],
        "rows": Literal["fail", "warn"],
        "positive_share": Literal["fail", "warn"],
    },
    total=False,
)


DataExpectRowsConfig = TypedDict(
    "DataExpectRowsConfig",
    {
        "min": float,
        "max": float,
        "level": Literal["fail", "warn"] | DataExpectRowsLevelConfig,
    },
    total=False,
)


DataExpectPositiveShareLevelConfig = TypedDict(
    "DataExpectPositiveShareLevelConfig",
    {
        "present": Literal["fail", "warn"],
        "type": Literal["fail", "warn"],
        "categories": Literal["fail", "warn"],
        "range": Literal["fail", "warn"],
        "max_null_share": Literal["fail", "warn"],
        "unique": Literal["fail", "warn"],
        "rows": Literal["fail", "warn"],
        "positive_share": Literal["fail", "warn"],
    },
    total=False,
)


DataExpectPositiveShareConfig = TypedDict(
    "DataExpectPositiveShareConfig",
    {
        "min": float,
        "max": float,
        "level": Literal["fail", "warn"] | DataExpectPositiveShareLevelConfig,
    },
    total=False,
)


DataExpectColumnsValueLevelConfig = TypedDict(
    "DataExpectColumnsValueLevelConfig",
    {
        "present": Literal["fail", "warn"],
        "type": Literal["fail", "warn"],
        "categories": Literal["fail", "warn"],
        "range": Literal["fail", "warn"],
        "max_null_share": Literal["fail", "warn"],
        "unique": Literal["fail", "warn"],
        "rows": Literal["fail", "warn"],
        "positive_share": Literal["fail", "warn"],
    },
    total=False,
)


DataExpectColumnsValueConfig = TypedDict(
    "DataExpectColumnsValueConfig",
    {
        "type": Literal["integer", "number", "string", "boolean"],
        "categories": list[float | str | bool],
        "min": float,
        "max": float,
        "max_null_share": float,
        "unique": bool,
        "level": Literal["fail", "warn"] | DataExpectColumnsValueLevelConfig,
    },
    total=False,
)


DataExpectConfig = TypedDict(
    "DataExpectConfig",
    {
        "level": Literal["fail", "warn"],
        "rows": DataExpectRowsConfig,
        "positive_share": DataExpectPositiveShareConfig,
        "columns": dict[str, DataExpectColumnsValueConfig],
    },
    total=False,
)


DataConfig = TypedDict(
    "DataConfig",
    {
        "sources": "Required[dict[str, str]]",
        "join": DataJoinConfig,
        "label": "Required[str]",
        "drop": list[str],
        "positive": list[float | str | bool],
        "negative": list[float | str | bool],
        "format": Literal["csv", "parquet"] | dict[str, Literal["csv", "parquet"]],
        "expect": DataExpectConfig,
    },
    total=False,
)


FeaturesMissingConfig = TypedDict(
    "FeaturesMissingConfig",
    {
        "categorical": str | None,
        "numeric": Literal["none", "zero", "mean", "median"],
    },
    total=False,
)


FeaturesConfig = TypedDict(
    "FeaturesConfig",
    {
        "missing": FeaturesMissingConfig,
        "one_hot": list[str],
        "ordinal": dict[str, list[str | float | bool]],
        "drop_encoded": list[str],
    },
    total=False,
)


SplitConfig = TypedDict(
    "SplitConfig",
    {
        "train": "Required[float]",
        "validation": "Required[float]",
        "test": "Required[float]",
        "seed": int,
        "stratify": bool,
        "train_files": int,
    },
    total=False,
)


TrainHyperparametersConfig = TypedDict(
    "TrainHyperparametersConfig",
    {
        "objective": Literal["binary:logistic", "binary:logitraw", "binary:hinge"],
        "eval_metric": Literal["auc", "aucpr", "logloss", "error", "map"]
        | list[Literal["auc", "aucpr", "logloss", "error", "map"]],
        "num_round": int,
        "eta": float,
        "max_depth": int,
        "min_child_weight": float,
        "gamma": float,
        "subsample": float,
        "colsample_bytree": float,
        "colsample_bylevel": float,
        "colsample_bynode": float,
        "lambda": float,
        "alpha": float,
        "scale_pos_weight": float,
        "max_delta_step": float,
        "tree_method": Literal["auto", "exact", "approx", "hist"],
        "grow_policy": Literal["depthwise", "lossguide"],
        "max_leaves": int,
        "max_bin": int,
        "seed": int,
        "base_score": float,
    },
    total=False,
)


TrainEarlyStoppingConfig = TypedDict(
    "TrainEarlyStoppingConfig",
    {
        "rounds": "Required[int]",
    },
    total=False,
)


TrainCvConfig = TypedDict(
    "TrainCvConfig",
    {
        "folds": int,
        "early_stopping_rounds": int,
    },
    total=False,
)


TrainConfig = TypedDict(
    "TrainConfig",
    {
        "hyperparameters": "Required[TrainHyperparametersConfig]",
        "early_stopping": TrainEarlyStoppingConfig,
        "cv": TrainCvConfig,
    },
    total=False,
)


TuneObjectiveConfig = TypedDict(
    "TuneObjectiveConfig",
    {
        "metric": "Required[str]",
        "direction": Literal["maximize", "minimize"],
    },
    total=False,
)


TuneConfig = TypedDict(
    "TuneConfig",
    {
        "objective": "Required[TuneObjectiveConfig]",
        "strategy": Literal["bayesian", "random", "grid"],
        "max_trials": int,
        "parallel_trials": int,
        "seed": int,
        "early_stopping": bool,
        "hyperparameters": "Required[dict[str, Any]]",
    },
    total=False,
)


EvaluateBootstrapConfig = TypedDict(
    "EvaluateBootstrapConfig",
    {
        "samples": int,
        "confidence": float,
        "seed": int,
    },
    total=False,
)


EvaluateConfig = TypedDict(
    "EvaluateConfig",
    {
        "decision_threshold": float,
        "bootstrap": EvaluateBootstrapConfig,
    },
    total=False,
)


GateConditionsItemConfig = TypedDict(
    "GateConditionsItemConfig",
    {
        "metric": "Required[Literal['roc_auc', 'pr_auc', 'f1', 'precision', 'recall', 'accuracy', 'CI', 'DPL', 'KL', 'JS', 'LP', 'TVD', 'KS', 'CDDL', 'DPPL', 'DI', 'DCA', 'DCR', 'RD', 'SD', 'DAR', 'DRR', 'AD', 'CDDPL', 'TE', 'FT', 'GE']]",
        "min": float,
        "max": float,
        "max_abs": float,
    },
    total=False,
)


GateChampionConfig = TypedDict(
    "GateChampionConfig",
    {
        "metric": Literal["roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy"],
        "min_improvement": float,
        "relative": bool,
        "use_interval": bool,
    },
    total=False,
)


GateConfig = TypedDict(
    "GateConfig",
    {
        "metric": Literal["roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy"],
        "threshold": float,
        "conditions": list[GateConditionsItemConfig],
        "champion": GateChampionConfig,
    },
    total=False,
)


BiasConfig = TypedDict(
    "BiasConfig",
    {
        "facet": "Required[str]",
        "facet_values": list[float | str | bool],
        "label_values": list[float | str | bool],
        "group_variable": str,
        "probability_threshold": float,
        "pre_training_metrics": list[Literal["CI", "DPL", "KL", "JS", "LP", "TVD", "KS", "CDDL"]],
        "post_training_metrics": list[
            Literal["DPPL", "DI", "DCA", "DCR", "RD", "SD", "DAR", "DRR", "AD", "CDDPL", "TE", "FT", "GE"]
        ],
        "fail_on_violation": bool,
    },
    total=False,
)


ExplainConfig = TypedDict(
    "ExplainConfig",
    {
        "method": Literal["shap"],
        "num_samples": int,
        "agg_method": Literal["mean_abs", "median", "mean_sq"],
    },
    total=False,
)


RegisterConfig = TypedDict(
    "RegisterConfig",
    {
        "model_package_group": "Required[str]",
        "approval_status": Literal["PendingManualApproval", "Approved", "Rejected"],
        "description": str,
    },
    total=False,
)


DeployVariantsItemConfig = TypedDict(
    "DeployVariantsItemConfig",
    {
        "name": "Required[str]",
        "weight": "Required[float]",
        "model_version": Literal["latest", "previous"] | int,
    },
    total=False,
)


DeployBatchConfig = TypedDict(
    "DeployBatchConfig",
    {
        "output": "Required[str]",
        "inputs": dict[str, str],
        "instance_type": str,
        "instance_count": int,
        "schedule": str,
    },
    total=False,
)


DeployApiThrottleConfig = TypedDict(
    "DeployApiThrottleConfig",
    {
        "rate": "Required[float]",
        "burst": "Required[int]",
    },
    total=False,
)


DeployApiQuotaConfig = TypedDict(
    "DeployApiQuotaConfig",
    {
        "limit": "Required[int]",
        "period": "Required[Literal['DAY', 'WEEK', 'MONTH']]",
    },
    total=False,
)


DeployApiConfig = TypedDict(
    "DeployApiConfig",
    {
        "auth": Literal["api_key", "iam"],
        "throttle": "Required[DeployApiThrottleConfig]",
        "quota": DeployApiQuotaConfig,
        "stage": str,
        "role_arn": str,
    },
    total=False,
)


DeployDataCaptureConfig = TypedDict(
    "DeployDataCaptureConfig",
    {
        "enabled": bool,
        "sampling_percentage": int,
        "destination": str,
        "capture_mode": Literal["Input", "Output", "InputAndOutput"],
        "kms_key_id": str,
        "rotate_mb": float,
        "rotate_seconds": float,
    },
    total=False,
)


DeployConfig = TypedDict(
    "DeployConfig",
    {
        "endpoint_name": "Required[str]",
        "instance_type": str,
        "instance_count": int,
        "require_approval": bool,
        "when": Literal["registered", "approved"],
        "variants": list[DeployVariantsItemConfig],
        "batch": DeployBatchConfig,
        "api": DeployApiConfig,
        "data_capture": DeployDataCaptureConfig,
    },
    total=False,
)


MonitorFeaturesConfig = TypedDict(
    "MonitorFeaturesConfig",
    {
        "psi": float,
        "psi_bins": int,
        "ks_p_value": float,
        "ks_statistic": float,
        "chi_square_p_value": float,
        "missing_rate_change": float,
        "unseen_categories": float,
    },
    total=False,
)


MonitorColumnsValueConfig = TypedDict(
    "MonitorColumnsValueConfig",
    {
        "psi": float,
        "psi_bins": int,
        "ks_p_value": float,
        "ks_statistic": float,
        "chi_square_p_value": float,
        "missing_rate_change": float,
        "unseen_categories": float,
        "ignore": bool,
    },
    total=False,
)


MonitorPredictionConfig = TypedDict(
    "MonitorPredictionConfig",
    {
        "psi": float,
        "psi_bins": int,
        "ks_p_value": float,
        "ks_statistic": float,
        "positive_rate_change": float,
    },
    total=False,
)


MonitorQualityMinConfig = TypedDict(
    "MonitorQualityMinConfig",
    {
        "roc_auc": float,
        "precision": float,
        "recall": float,
    },
    total=False,
)


MonitorQualityMaxDropConfig = TypedDict(
    "MonitorQualityMaxDropConfig",
    {
        "roc_auc": float,
        "precision": float,
        "recall": float,
    },
    total=False,
)


MonitorQualityConfig = TypedDict(
    "MonitorQualityConfig",
    {
        "min": MonitorQualityMinConfig,
        "max_drop": MonitorQualityMaxDropConfig,
    },
    total=False,
)


MonitorBiasConfig = TypedDict(
    "MonitorBiasConfig",
    {
        "dppl_change": float,
        "di_change": float | None,
    },
    total=False,
)


MonitorLabelsConfig = TypedDict(
    "MonitorLabelsConfig",
    {
        "key": str,
    },
    total=False,
)


MonitorConfig = TypedDict(
    "MonitorConfig",
    {
        "capture": str,
        "window_hours": float | None,
        "features": MonitorFeaturesConfig,
        "columns": dict[str, MonitorColumnsValueConfig],
        "prediction": MonitorPredictionConfig,
        "quality": MonitorQualityConfig,
        "bias": MonitorBiasConfig,
        "labels": MonitorLabelsConfig,
        "retrain": Literal["never", "on_violation"],
        "schedule_role_arn": str,
        "schedule": str,
    },
    total=False,
)


SagemakerProcessingConfig = TypedDict(
    "SagemakerProcessingConfig",
    {
        "instance_type": str,
        "instance_count": int,
        "volume_size_gb": int,
        "framework_version": Literal["1.2-1", "1.4-2"],
    },
    total=False,
)


SagemakerTrainingConfig = TypedDict(
    "SagemakerTrainingConfig",
    {
        "instance_type": str,
        "instance_count": int,
        "volume_size_gb": int,
        "max_runtime_s": int,
        "framework_version": Literal["1.7-1"],
    },
    total=False,
)


SagemakerClarifyConfig = TypedDict(
    "SagemakerClarifyConfig",
    {
        "instance_type": str,
        "instance_count": int,
        "volume_size_gb": int,
    },
    total=False,
)


SagemakerLambdaConfig = TypedDict(
    "SagemakerLambdaConfig",
    {
        "function_name": str,
        "role_arn": str,
        "timeout_s": int,
    },
    total=False,
)


SagemakerCacheConfig = TypedDict(
    "SagemakerCacheConfig",
    {
        "enabled": bool,
        "expire_after": str,
    },
    total=False,
)


SagemakerConfig = TypedDict(
    "SagemakerConfig",
    {
        "region": str,
        "role_arn": "Required[str]",
        "bucket": "Required[str]",
        "prefix": str,
        "pipeline_name": str,
        "processing": SagemakerProcessingConfig,
        "training": SagemakerTrainingConfig,
        "clarify": SagemakerClarifyConfig,
        "lambda": SagemakerLambdaConfig,
        "cache": SagemakerCacheConfig,
        "tags": dict[str, str],
    },
    total=False,
)


PipelineConfig = TypedDict(
    "PipelineConfig",
    {
        "description": str,
        "data": "Required[DataConfig]",
        "features": "Required[FeaturesConfig]",
        "split": "Required[SplitConfig]",
        "train": "Required[TrainConfig]",
        "tune": TuneConfig,
        "evaluate": EvaluateConfig,
        "gate": "Required[GateConfig]",
        "bias": BiasConfig,
        "explain": ExplainConfig,
        "register": "Required[RegisterConfig]",
        "deploy": DeployConfig,
        "monitor": MonitorConfig,
        "parameters": dict[str, str],
        "sagemaker": SagemakerConfig,
    },
    total=False,
)
