"""The Plan's gate conditions as SageMaker Condition-step comparisons and the Fail step's message.

Each condition reads its number with Std:JsonGet, as the SDK's `JsonGet` renders it: from evaluation.json through
the evaluate step's PropertyFile, or from the bias check's analysis.json in S3 (`JsonGet(s3_uri=Join(...))`: a
ClarifyCheck step declares no PropertyFile). Bounds map to SageMaker's condition types: `min` →
GreaterThanOrEqualTo, `max` → LessThanOrEqualTo, `max_abs` → both, around 0. The local runner applies the same
bounds (fraudflow/gate.py), so both backends decide alike.
"""

from __future__ import annotations

from typing import Any

from fraudflow.gate import Condition
from fraudflow.plan import Gate

OPERATORS = {">=": "GreaterThanOrEqualTo", "<=": "LessThanOrEqualTo"}


def compile_conditions(compiler: Any, gate: Gate) -> tuple[list[dict[str, Any]], Any]:
    """(the Condition step's Conditions, the Fail step's ErrorMessage)."""
    conditions: list[dict[str, Any]] = []
    parts: list[Any] = []
    for cond in gate.conditions:
        value = json_get(compiler, gate, cond)
        for op, bound in cond.bounds():
            right: Any = compiler.ref(cond.parameter, bound) if cond.parameter and op == ">=" else bound
            if op == "|x| <=":
                conditions.append(_compare("GreaterThanOrEqualTo", value, -bound))
                conditions.append(_compare("LessThanOrEqualTo", value, bound))
            else:
                conditions.append(_compare(OPERATORS[op], value, right))
        parts.append(_describe(compiler, cond, value))
    legacy = len(gate.conditions) == 1 and gate.conditions[0].parameter is not None
    if legacy:  # the one-metric form keeps its message (pipelines rendered before conditions existed)
        cond = gate.conditions[0]
        value = json_get(compiler, gate, cond)
        threshold = compiler.ref(cond.parameter, cond.min)
        return conditions, {
            "Std:Join": {"On": " ", "Values": [cond.metric, value, "is below the threshold", threshold]}
        }
    values: list[Any] = ["the gate stopped the pipeline; every condition must hold:"]
    for i, part in enumerate(parts):
        values += [*(([";"]) if i else []), *part]
    return conditions, {"Std:Join": {"On": " ", "Values": values}}


def json_get(compiler: Any, gate: Gate, cond: Condition) -> dict[str, Any]:
    from fraudflow.sagemaker.compile import EXECUTION_ID, PROPERTY_FILE

    ref = gate.file_of(cond)
    step = compiler.plan.step(ref.step)
    if step.kind in ("bias", "explain"):  # a ClarifyCheck's report: its output folder, as check() names it
        prefix = ["s3:/", compiler.bucket, *([compiler.prefix] if compiler.prefix else [])]
        uri = {"Std:Join": {"On": "/", "Values": [*prefix, EXECUTION_ID, step.title, ref.name]}}
        return {"Std:JsonGet": {"S3Uri": uri, "Path": cond.json_path}}
    file = {"Get": f"Steps.{step.title}.PropertyFiles.{PROPERTY_FILE}"}
    return {"Std:JsonGet": {"PropertyFile": file, "Path": cond.json_path}}


def _compare(kind: str, left: Any, right: Any) -> dict[str, Any]:
    return {"Type": kind, "LeftValue": left, "RightValue": right}


def _describe(compiler: Any, cond: Condition, value: Any) -> list[Any]:
    """One condition in the Fail message: its name, value and requirement (a parameter's value where one sets it)."""
    if cond.champion:
        return [f"{cond.label} margin over the champion", value, "needs >= 0"]
    requirement: list[Any] = []
    for op, bound in cond.bounds():
        right = compiler.ref(cond.parameter, bound) if cond.parameter and op == ">=" else bound
        requirement += (["and"] if requirement else []) + [op, right]
    return [cond.metric, value, "needs", *requirement]
