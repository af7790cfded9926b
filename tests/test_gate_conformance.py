"""The Condition step of a gate with several conditions (evaluation metrics, bias metrics, the champion) equals what
the SageMaker Python SDK v2 builds for the same conditions, and the bias check the gate reads runs before it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.gate_util import gate_workspace
from tests.test_sagemaker_conformance import _as_sdk_code_file, flat_steps, normalise

pytestmark = [pytest.mark.slow]

GATE = """
gate:
  conditions:
    - {metric: roc_auc, min: 0.7}
    - {metric: recall, min: 0.05}
    - {metric: DPPL, max_abs: 0.1}
    - {metric: DI, min: 0.8, max: 1.25}
  champion: {metric: roc_auc, min_improvement: 0.01, use_interval: true}
"""


@pytest.fixture(scope="module")
def plan(aws_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from fraudflow.plan import build_plan
    from fraudflow.spec.load import load_one

    yaml_file, sets = gate_workspace(tmp_path_factory.mktemp("gate"), aws_data, GATE)
    overrides = [s for s in sets if s != "--set"]
    return build_plan(load_one(str(yaml_file), env=None, overrides=overrides, pipeline=None))


def test_several_conditions_match_the_sdk(plan: Any) -> None:
    pytest.importorskip("sagemaker")
    pytest.importorskip("moto")
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.sagemaker.diff import _changes
    from tests.sdk_reference_pipeline import build

    ours, sdk = compile_plan(plan).definition, build(plan).definition
    assert [(s["Name"], s["Type"]) for s in flat_steps(ours)] == [
        (s["Name"], s["Type"]) for s in flat_steps(sdk)
    ]
    theirs = {s["Name"]: s for s in flat_steps(sdk)}
    problems = {}
    for step in flat_steps(ours):
        changes = _changes(normalise(theirs[step["Name"]]), normalise(_as_sdk_code_file(step)))
        if changes:
            problems[step["Name"]] = changes
    assert not problems, problems
    # the bias check (and the model its shadow endpoint serves) run before the Condition that reads its report
    top = [s["Name"] for s in ours["Steps"]]
    assert top.index("BiasCheck") < top.index("CheckMetric") and top.index(
        "CreateModel-CreateModel"
    ) < top.index("BiasCheck")
    cond = next(s for s in ours["Steps"] if s["Type"] == "Condition")["Arguments"]["Conditions"]
    kinds = [(c["Type"], c["RightValue"]) for c in cond]
    assert kinds == [
        ("GreaterThanOrEqualTo", 0.7),
        ("GreaterThanOrEqualTo", 0.05),
        ("GreaterThanOrEqualTo", -0.1),
        ("LessThanOrEqualTo", 0.1),
        ("GreaterThanOrEqualTo", 0.8),
        ("LessThanOrEqualTo", 1.25),
        ("GreaterThanOrEqualTo", 0.0),
    ]
    dppl = cond[2]["LeftValue"]["Std:JsonGet"]
    assert dppl["Path"] == "post_training_bias_metrics.facets.customer_gender_female[0].metrics[5].value"
    assert dppl["S3Uri"]["Std:Join"]["Values"][-2:] == ["BiasCheck", "analysis.json"]
    assert cond[-1]["LeftValue"]["Std:JsonGet"]["Path"] == "champion.margin"


def test_fail_message_lists_each_condition_with_its_value(plan: Any) -> None:
    from fraudflow.sagemaker.compile import compile_plan

    ours = compile_plan(plan).definition
    gate = next(s for s in ours["Steps"] if s["Type"] == "Condition")
    message = gate["Arguments"]["ElseSteps"][0]["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    names = [v for v in message if isinstance(v, str)]
    for metric in ("roc_auc", "recall", "DPPL", "DI", "champion roc_auc margin over the champion"):
        assert metric in names
    gets = [v["Std:JsonGet"]["Path"] for v in message if isinstance(v, dict)]
    assert gets == [c.json_path for c in plan.gate.conditions]


def test_aws_schema_with_the_stated_relaxations_only(plan: Any) -> None:
    """AWS's pipeline-definition JSON Schema accepts the several-condition gate under the relaxations the
    one-condition definition already needs (the SDK's own JsonGet conditions and Join message need them too)."""
    from fraudflow.sagemaker.compile import compile_plan
    from tests.test_sagemaker_conformance import RELAXATIONS, SCHEMA, schema_errors

    if not SCHEMA.exists():
        pytest.skip(f"{SCHEMA} not found")
    errors = schema_errors(compile_plan(plan).definition)
    unexplained = [e for e in errors if not any(r.applies(e) for r in RELAXATIONS)]
    assert not unexplained, "\n".join(f"{e.step_type} {e.path}: {e.message[:160]}" for e in unexplained)
