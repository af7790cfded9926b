"""Semantic checks of `gate` the schema cannot express: a bias metric the bias step computes, bounds that can hold."""

from __future__ import annotations

from typing import Any

from fraudflow.errors import Diagnostic
from fraudflow.gate import BIAS_STAGES, EVALUATION_METRICS
from fraudflow.spec.config_types import PipelineConfig
from fraudflow.spec.yamlload import Positions


def check_gate(cfg: PipelineConfig, pos: Positions) -> list[Diagnostic]:
    from fraudflow.spec.semantic import _reporters

    out: list[Diagnostic] = []
    err, _ = _reporters(pos, out)
    gate: dict[str, Any] = dict(cfg.get("gate") or {})
    bias: dict[str, Any] = dict(cfg.get("bias") or {})
    if "gate" in cfg and not any(gate.get(k) is not None for k in ("threshold", "conditions", "champion")):
        err(
            "FF205",
            "gate: 'threshold' is a required property (or give `conditions` or `champion`)",
            ("gate",),
            hint="e.g. gate: {metric: roc_auc, threshold: 0.7}",
            key=True,
        )
    for i, cond in enumerate(gate.get("conditions") or []):
        where = ("gate", "conditions", i)
        metric = cond.get("metric")
        if metric is not None and metric not in EVALUATION_METRICS:
            _check_bias_metric(str(metric), bias, "bias" in cfg, where, err)
        bounds = [k for k in ("min", "max", "max_abs") if cond.get(k) is not None]
        if not bounds:
            err(
                "FF553",
                f"gate condition on {metric} sets no bound, so it can never stop a run",
                where,
                hint=f"give it min, max or max_abs, e.g. {{metric: {metric}, min: 0.7}}",
            )
        if cond.get("min") is not None and cond.get("max") is not None and cond["min"] > cond["max"]:
            err(
                "FF552",
                f"gate condition on {metric}: min {cond['min']:g} is above max {cond['max']:g}, so it never holds",
                (*where, "min"),
                hint="swap them, e.g. the four-fifths rule is {metric: DI, min: 0.8, max: 1.25}",
            )
    champion = gate.get("champion") or {}
    samples = ((cfg.get("evaluate") or {}).get("bootstrap") or {}).get("samples")
    if champion.get("use_interval") and samples == 0:
        err(
            "FF555",
            "gate.champion.use_interval judges the paired bootstrap interval, but evaluate.bootstrap.samples is 0",
            ("gate", "champion", "use_interval"),
            hint="set evaluate.bootstrap.samples (e.g. 1000), or judge the point estimate (use_interval: false)",
        )
    return out


def _check_bias_metric(metric: str, bias: dict[str, Any], has_bias: bool, where: tuple, err: Any) -> None:
    """A gate on a bias metric reads the bias step's report: the step must exist and compute that metric."""
    if not has_bias:
        err(
            "FF550",
            f"gate condition on {metric}, a bias metric, but the pipeline has no `bias` step to compute it",
            (*where, "metric"),
            hint=f"add a bias section (bias: {{facet: COLUMN, post_training_metrics: [{metric}]}})",
        )
        return
    from fraudflow.spec.schema import load_schema

    props = load_schema()["$defs"]["pipeline"]["properties"]["bias"]["properties"]
    key = next(k for k in BIAS_STAGES if metric in props[k]["items"]["enum"])
    if key == "pre_training_metrics":
        err(
            "FF554",
            f"gate condition on {metric}, a pre-training bias metric: it measures the labels, not the model, and "
            "SageMaker's model bias check (the bias step there) computes post-training metrics only",
            (*where, "metric"),
            hint="gate on a post-training metric of the model's predictions (DPPL, DI, ...)",
        )
        return
    if metric in (bias.get(key) or []):
        return
    err(
        "FF551",
        f"gate condition on {metric}, but the bias step does not compute it (not in bias.{key})",
        (*where, "metric"),
        hint=f"add {metric} to bias.{key}",
    )
