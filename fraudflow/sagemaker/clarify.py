"""SageMaker Clarify analysis configs, generated from pipelines.yaml in the shapes the SageMaker SDK v2 writes.

Four documents: the bias and the explainability job configs (inputs of the ClarifyCheck steps) and their
model-monitor counterparts (the DriftCheckBaselines' ConfigFile). The SDK uploads them under timestamped, random
keys; fraudflow uploads the same content under content-hashed keys so the definition stays deterministic.
"""

from __future__ import annotations

from typing import Any

REPORT = {"name": "report", "title": "Analysis Report"}


def predictor(instance_type: str, instance_count: int = 1) -> dict[str, Any]:
    """The shadow endpoint Clarify starts from the model (CSV in, the XGBoost probability out)."""
    return {
        "instance_type": instance_type,
        "initial_instance_count": instance_count,
        "accept_type": "text/csv",
        "content_type": "text/csv",
    }


def _bias_core(label: str, bias: dict[str, Any]) -> dict[str, Any]:
    core = {
        "label_values_or_threshold": list(bias["label_values"]),
        "facet": [{"name_or_index": bias["facet"], "value_or_threshold": list(bias["facet_values"])}],
    }
    if bias.get("group_variable"):  # Clarify's subgroups for CDDL / CDDPL
        core["group_variable"] = bias["group_variable"]
    return core


def encoded(bias: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """bias with its label_values (original label values, e.g. ["yes"]) as the encoded 0/1 labels Clarify reads
    in preprocess's CSVs: 1 for a data.positive value, 0 for any other (stepkit's rule, the bias step's too)."""
    from fraudflow.stepcode import kit

    values, unknown = kit().encode_label_values(
        list(bias["label_values"]), list(data.get("positive", [1])), data.get("negative")
    )
    if not values:  # Clarify would get an empty label_values_or_threshold and fail at run time
        from fraudflow.errors import UserError

        raise UserError.single(
            "FF790",
            f"bias.label_values {unknown} are neither in data.positive nor in data.negative: Clarify would "
            "count no positive outcome",
            path="bias.label_values",
            hint="bias.label_values lists original label values, as data.positive does (`fraudflow validate` "
            "reports this as FF543)",
        )
    return {**bias, "label_values": values}


def bias_job_config(label: str, bias: dict[str, Any], pred: dict[str, Any]) -> dict[str, Any]:
    """Post-training bias (ClarifyCheck MODEL_BIAS): the label is read by name from the CSV's header row."""
    return {
        "dataset_type": "text/csv",
        "label": label,
        **_bias_core(label, bias),
        "methods": {"post_training_bias": {"methods": list(bias["post_training_metrics"])}, "report": REPORT},
        "predictor": dict(pred),
        "probability_threshold": bias["probability_threshold"],
    }


def bias_monitor_config(label: str, bias: dict[str, Any]) -> dict[str, Any]:
    return {**_bias_core(label, bias), "label": label}


def shap_config(explain: dict[str, Any]) -> dict[str, Any]:
    """Clarify computes its SHAP baseline by k-means over the dataset: one cluster, i.e. the feature means.

    `use_logit`: Clarify explains logit(probability), the model's margin, which is what the local TreeSHAP
    explains (log-odds): both backends report SHAP values in the same units."""
    return {
        "use_logit": True,
        "save_local_shap_values": True,
        "num_samples": explain["num_samples"],
        "agg_method": explain["agg_method"],
        "num_clusters": 1,
    }


def explain_job_config(label: str, explain: dict[str, Any], pred: dict[str, Any]) -> dict[str, Any]:
    return {
        "dataset_type": "text/csv",
        "label": label,
        "methods": {"shap": shap_config(explain), "report": REPORT},
        "predictor": dict(pred),
    }


def explain_monitor_config(explain: dict[str, Any], pred: dict[str, Any]) -> dict[str, Any]:
    return {"methods": {"shap": shap_config(explain)}, "predictor": dict(pred)}
