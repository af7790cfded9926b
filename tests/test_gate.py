"""The gate's conditions (issue 13): validation of `gate.conditions` / `gate.champion`, one Plan representation for
both backends, bias before the gate that reads it, and the paired champion comparison's arithmetic."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudflow.gate import Condition, json_get
from tests._steps_util import load_step
from tests.conftest import ROOT, run_cli

CORPUS = ROOT / "tests" / "validate_corpus"
ONE = "gate: {metric: roc_auc, threshold: 0.7}"
ev = load_step("evaluate")


def _yaml(tmp: Path, gate: str, bias: str = "bias: {facet: customer_gender_female}") -> Path:
    text = (CORPUS / "valid_minimal.yaml").read_text()
    assert ONE in text
    text = text.replace(ONE, gate.strip().replace("\n", "\n    "))
    text = text.replace("bias: {facet: customer_gender_female}", bias)
    shutil.copytree(CORPUS / "data", tmp / "data", dirs_exist_ok=True)
    (tmp / "pipelines.yaml").write_text(text)
    return tmp / "pipelines.yaml"


def _validate(tmp: Path) -> list[dict[str, Any]]:
    proc = run_cli("validate", "pipelines.yaml", "--format", "json", cwd=tmp)
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    return [d for d in doc["diagnostics"] if d["severity"] == "error"] if isinstance(doc, dict) else doc


# -- validate ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("gate", "bias", "code", "path"),
    [
        ("gate: {conditions: [{metric: DPPL, max_abs: 0.1}]}", "", "FF550", "gate.conditions[0].metric"),
        ("gate: {conditions: [{metric: GE, max: 1}]}", None, "FF551", "gate.conditions[0].metric"),
        ("gate: {conditions: [{metric: DI, min: 1.3, max: 1.25}]}", None, "FF552", "gate.conditions[0].min"),
        (
            "gate: {conditions: [{metric: roc_auc, min: 0.7}, {metric: recall}]}",
            None,
            "FF553",
            "gate.conditions[1]",
        ),
        ("gate: {conditions: [{metric: DPL, max_abs: 0.1}]}", None, "FF554", "gate.conditions[0].metric"),
        (
            "gate:\n  threshold: 0.7\n  champion: {use_interval: true}",
            None,
            "FF555",
            "gate.champion.use_interval",
        ),
        ("gate: {conditions: [{metric: roc_aucc, min: 0.7}]}", None, "FF203", "gate.conditions[0].metric"),
        ("gate: {metric: roc_auc}", None, "FF205", "gate"),
    ],
)
def test_validate_locates_each_gate_mistake(
    tmp_path: Path, gate: str, bias: str | None, code: str, path: str
) -> None:
    yaml_file = _yaml(tmp_path, gate, bias if bias is not None else "bias: {facet: customer_gender_female}")
    if code == "FF555":
        text = yaml_file.read_text().replace("split:", "evaluate: {bootstrap: {samples: 0}}\n    split:")
        yaml_file.write_text(text)
    proc = run_cli("validate", "pipelines.yaml", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    text = proc.stdout + proc.stderr
    line = next(x for x in text.splitlines() if f" {code} " in x)
    assert line.startswith("pipelines.yaml:") and line.split(":")[1].isdigit(), line
    assert f"pipelines.fraud.{path}" in text, text


def test_validate_accepts_the_issues_gate(tmp_path: Path) -> None:
    gate = """
gate:
  conditions:
    - {metric: roc_auc, min: 0.7}
    - {metric: recall, min: 0.5}
    - {metric: DPPL, max_abs: 0.1}
    - {metric: DI, min: 0.8, max: 1.25}
  champion: {metric: roc_auc, min_improvement: 0.0}
"""
    _yaml(tmp_path, gate)
    proc = run_cli("validate", "pipelines.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- the Plan ---------------------------------------------------------------------------------------------------
def _plan(tmp: Path, gate: str) -> Any:
    from fraudflow.plan import build_plan
    from fraudflow.spec.load import load_one

    return build_plan(load_one(str(_yaml(tmp, gate)), env=None, overrides=[], pipeline=None))


def test_the_one_condition_form_is_one_condition_and_bias_stays_behind_the_gate(tmp_path: Path) -> None:
    plan = _plan(tmp_path, ONE)
    (cond,) = plan.gate.conditions
    assert (cond.metric, cond.min, cond.max, cond.parameter) == ("roc_auc", 0.7, None, "gate.threshold")
    assert plan.gate.threshold == 0.7 and plan.gate.json_path == "classification_metrics.roc_auc.value"
    assert plan.step("bias").gated and plan.gate.bias_file is None
    assert "champion" not in plan.step("evaluate").config  # evaluate's cache key is what it always was


def test_a_bias_condition_moves_bias_before_the_gate_keeping_one_data_flow(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path, "gate: {conditions: [{metric: roc_auc, min: 0.7}, {metric: DI, min: 0.8, max: 1.25}]}"
    )
    assert not plan.step("bias").gated
    assert plan.gate.bias_file == plan.file("bias", "analysis")
    di = plan.gate.conditions[1]
    assert (
        di.json_path == "post_training_bias_metrics.facets.customer_gender_female[0].metrics[4].value"
    )  # sorted: AD DAR DCA DCR DI
    names = [s.name for s in plan.steps]
    for step in plan.steps:  # every step still reads only earlier steps
        assert all(i.step is None or names.index(i.step) < names.index(step.name) for i in step.inputs)


def test_a_champion_gate_gives_evaluate_the_comparison_settings(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "gate: {champion: {metric: pr_auc, min_improvement: 0.02, relative: true}}")
    assert plan.step("evaluate").config["champion"] == {
        "metric": "pr_auc",
        "min_improvement": 0.02,
        "relative": True,
        "use_interval": False,
        "model_package_group": "fraud-detect-xgb",
    }
    (cond,) = plan.gate.conditions
    assert cond.champion and cond.json_path == "champion.margin" and cond.min == 0.0


# -- a condition's verdict ----------------------------------------------------------------------------------------
bound = st.one_of(st.none(), st.floats(-2, 2, allow_nan=False))


@given(
    v=st.one_of(st.none(), st.floats(allow_nan=True), st.booleans(), st.text(max_size=3)),
    lo=bound,
    hi=bound,
    ab=bound,
)
def test_a_condition_holds_exactly_when_every_bound_does(v: Any, lo: Any, hi: Any, ab: Any) -> None:
    ab = abs(ab) if ab is not None else None
    cond = Condition("m", "evaluation", "x", min=lo, max=hi, max_abs=ab)
    number = isinstance(v, float) and math.isfinite(v)
    expected = number and (lo is None or v >= lo) and (hi is None or v <= hi) and (ab is None or abs(v) <= ab)
    assert cond.holds(v) == expected


@given(
    st.recursive(
        st.one_of(st.integers(), st.floats(allow_nan=False)),
        lambda c: (
            st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["a", "b c", "d'e"]), c, max_size=3)
        ),
        max_leaves=8,
    )
)
def test_json_get_finds_every_leaf_by_its_path(doc: Any) -> None:
    from fraudflow.gate import _key

    def leaves(node: Any, path: str) -> Any:
        if isinstance(node, dict):
            for k, v in node.items():
                yield from leaves(v, f"{path}.{_key(k)}" if _key(k)[0] != "[" else path + _key(k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from leaves(v, f"{path}[{i}]")
        else:
            yield path.lstrip("."), node

    for path, value in leaves({"root": doc}, ""):
        assert json_get({"root": doc}, path) == value


# -- the champion comparison's arithmetic (step_code/evaluate.py) ------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 40),
    seed=st.integers(0, 10_000),
    ties=st.booleans(),
    metric=st.sampled_from(["roc_auc", "pr_auc", "precision", "recall", "f1", "accuracy"]),
)
def test_metrics_by_rows_equal_scikit_learns(n: int, seed: int, ties: bool, metric: str) -> None:
    """The vectorised metrics the paired bootstrap uses agree with scikit-learn's (what evaluation.json reports)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=(3, n))
    labels[:, 0], labels[:, 1] = 0, 1  # both classes in every row
    scores = rng.random((3, n))
    if ties:
        scores = np.round(scores, 1)
    got = ev.metric_by_rows(metric, labels, scores, 0.5)
    for row in range(3):
        want = ev.metrics(labels[row], scores[row], 0.5, {"samples": 0, "confidence": 0.9, "seed": 0})[
            metric
        ]["value"]
        assert got[row] == pytest.approx(want, abs=1e-12)


def test_the_paired_difference_of_a_model_with_itself_is_zero_and_swapping_negates_it() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    a, b = rng.random(300) + 0.3 * y, rng.random(300) + 0.1 * y
    boot = {"samples": 200, "confidence": 0.9, "seed": 3}
    settings_ = {"metric": "roc_auc", "min_improvement": 0.0}
    same = ev.compare_with_champion(settings_, y, a, a, 0.5, boot, "g/1")
    assert same["difference"]["value"] == 0 and same["difference"]["confidence_interval"]["lower"] == 0
    ab = ev.compare_with_champion(settings_, y, a, b, 0.5, boot, "g/1")
    ba = ev.compare_with_champion(settings_, y, b, a, 0.5, boot, "g/1")
    assert ab["difference"]["value"] == pytest.approx(-ba["difference"]["value"])
    assert ab["difference"]["confidence_interval"]["lower"] == pytest.approx(
        -ba["difference"]["confidence_interval"]["upper"]
    )
    assert ab["margin"] > 0 > ba["margin"]
    strict = ev.compare_with_champion(
        {**settings_, "use_interval": True, "min_improvement": 0.5}, y, a, b, 0.5, boot, "g/1"
    )
    assert strict["judged_on"] == "interval lower bound" and strict["margin"] < 0


def test_evaluate_without_a_champion_passes_and_says_why(tmp_path: Path) -> None:
    assert ev.no_champion("no Approved version in model package group 'g'") == {
        "found": False,
        "reason": "no Approved version in model package group 'g'",
        "margin": 0.0,
    }


# -- IAM: the evaluate job looks the champion up with the execution role ------------------------------------------
def test_the_execution_role_allows_the_champion_lookup_and_nothing_of_another_group(tmp_path: Path) -> None:
    from fraudflow.plan import build_plan
    from fraudflow.sagemaker import iam
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.spec.load import load_one
    from tests.iam_eval import allowed

    text = (
        (ROOT / "pipelines.yaml")
        .read_text()
        .replace(ONE, "gate: {metric: roc_auc, threshold: 0.7, champion: {}}")
    )
    (tmp_path / "pipelines.yaml").write_text(text)
    shutil.copytree(CORPUS / "data", tmp_path / "data")
    r = compile_plan(
        build_plan(load_one(str(tmp_path / "pipelines.yaml"), env=None, overrides=[], pipeline=None))
    )
    policy = iam.roles(r)["execution"].policy
    account, region = r.role_arn.split(":")[4], r.region
    pkg = f"arn:aws:sagemaker:{region}:{account}:model-package"
    assert allowed(policy, "sagemaker:ListModelPackages", f"{pkg}/fraud-detect-xgb/3")
    assert allowed(policy, "sagemaker:DescribeModelPackage", f"{pkg}/fraud-detect-xgb/3")
    assert not allowed(policy, "sagemaker:DescribeModelPackage", f"{pkg}/another-group/3")
    champion_model = f"arn:aws:s3:::{r.bucket}/fraud-detect/model/pipelines-abc-Train-x/output/model.tar.gz"
    assert allowed(policy, "s3:GetObject", champion_model)
