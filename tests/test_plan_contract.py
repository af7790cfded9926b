"""The Plan is the contract both backends read: each step's config is exactly what its script reads, and readers of
step outputs find files through the Plan."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from fraudflow.plan import FileRef, Input, Plan, build_plan
from fraudflow.spec.load import load_one
from tests._steps_util import load_step
from tests.conftest import ROOT


def _plan(*overrides: str) -> Plan:
    return build_plan(
        load_one(str(ROOT / "pipelines.yaml"), env=None, overrides=list(overrides), pipeline=None)
    )


def test_settings_only_the_gate_reads_are_in_no_step_config() -> None:
    """A step's cache key covers its config: a gate-only setting in it would re-run the step for nothing."""
    base = _plan()
    for change in ("gate.threshold=0.71", "gate.metric=pr_auc"):
        other = _plan(change)
        for a, b in zip(base.steps, other.steps, strict=True):
            assert (a.config, a.hyperparameters) == (b.config, b.hyperparameters), (change, a.name)
    assert _plan("gate.threshold=0.71").gate.threshold == 0.71


# Settings whose schema default a script used to repeat (and sometimes contradict). The plan always passes them.
FORMERLY_DEFAULTED = [
    ("preprocess", ("split", "seed"), "FF600"),
    ("preprocess", ("split", "stratify"), "FF600"),
    ("preprocess", ("features", "missing", "categorical"), "FF600"),
    ("preprocess", ("features", "missing", "numeric"), "FF600"),
    ("evaluate", ("evaluate", "decision_threshold"), "FF630"),
    ("evaluate", ("evaluate", "bootstrap", "seed"), "FF630"),
    ("bias", ("bias", "post_training_metrics"), "FF641"),
    ("bias", ("bias", "probability_threshold"), "FF641"),
]


def _without(config: dict, path: tuple[str, ...]) -> dict:
    out = copy.deepcopy(config)
    node = out
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return out


def _read_config(step: str, config: dict, tmp_path: Path) -> None:
    """Run the part of the script that reads the setting, as far as the config takes it."""
    module = load_step(step)
    if step == "preprocess":
        frame = pd.DataFrame({"fraud": [0, 1] * 10, "kind": ["a", None] * 10, "x": range(20)})
        module.split_frame(frame, config)
        module.fit(frame, config)
    elif step == "evaluate":
        module.evaluate(config, tmp_path, tmp_path)
    else:
        (tmp_path / "config.json").write_text(json.dumps(config))
        module.load_settings(str(tmp_path / "config.json"))


@pytest.mark.parametrize(("step", "path", "code"), FORMERLY_DEFAULTED)
def test_a_setting_the_plan_always_passes_has_no_second_default_in_the_script(
    step: str, path: tuple[str, ...], code: str, tmp_path: Path
) -> None:
    config = _plan().step(step).config
    with pytest.raises(Exception) as err:
        _read_config(step, _without(config, path), tmp_path)
    assert getattr(err.value, "ff_code", None) == code, err.value
    assert ".".join(path) in str(err.value)


def _renamed(plan: Plan, names: dict[str, str]) -> Plan:
    """The same plan with every step's local name changed (titles, the SageMaker names, kept)."""

    def inp(i: Input) -> Input:
        return dataclasses.replace(i, step=names.get(i.step, i.step) if i.step else None)

    steps = tuple(
        dataclasses.replace(s, name=names[s.name], inputs=tuple(inp(i) for i in s.inputs)) for s in plan.steps
    )
    file = dataclasses.replace(plan.gate.file, step=names[plan.gate.file.step])
    return dataclasses.replace(plan, steps=steps, gate=dataclasses.replace(plan.gate, file=file))


def test_the_compiler_knows_no_step_by_name(aws_data: Path) -> None:
    """Both backends read steps through the Plan: renaming every step leaves the definition as it was."""
    from fraudflow.sagemaker.compile import compile_plan

    plan = build_plan(load_one(str(ROOT / "pipelines.yaml"), env="aws-sample", overrides=[], pipeline=None))
    names = {s.name: f"step-{i}" for i, s in enumerate(plan.steps)}
    renamed = _renamed(plan, names)
    assert {s.name for s in renamed.steps}.isdisjoint(names)
    assert compile_plan(renamed).text == compile_plan(plan).text


def test_plan_file_names_the_files_the_readers_use() -> None:
    plan = _plan()
    assert plan.file("evaluate", "evaluation") == FileRef("evaluate", "evaluation", "evaluation.json")
    assert plan.gate.file == plan.file("evaluate", "evaluation")
    assert plan.file("preprocess", "feature_schema").output == "schema"
    with pytest.raises(KeyError):
        plan.file("evaluate", "nothing")


@pytest.mark.slow
def test_the_local_runner_knows_no_step_by_name(tmp_path: Path) -> None:
    """A plan whose steps all have other names runs, gates, registers and deploys as the reference one does."""
    from fraudflow.local.runner import run_plan
    from tests.conftest import run_cli

    shutil.copy(ROOT / "pipelines.yaml", tmp_path / "pipelines.yaml")
    assert run_cli("sample-data", "data", "--rows", "1000", cwd=tmp_path).returncode == 0
    spec = load_one(
        str(tmp_path / "pipelines.yaml"), env=None, overrides=["gate.threshold=0.5"], pipeline=None
    )
    plan = build_plan(spec)
    names = {s.name: f"step-{i}" for i, s in enumerate(plan.steps)}
    result = run_plan(_renamed(plan, names))
    assert result.status == "succeeded", result
    assert [(s.name, s.status) for s in result.steps] == [(names[s.name], "ran") for s in plan.steps], (
        result.steps
    )
    assert result.gate and result.gate["passed"] and result.model_package and result.endpoint
    assert (result.run_dir / "report.html").is_file()
    assert "roc_auc" in " ".join(s.detail.get("note", "") for s in result.steps)
