"""Distributed training's constraints in `fraudflow validate` (FF612-FF614): a training instance count above 1
needs at least as many train files as instances, a tree_method XGBoost trains distributed, and no train.cv.
CLI in, exit code and located errors (FILE:LINE:COL, `at`, hint) out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudflow.cli import main
from tests.conftest import ff_errors as errors
from tests.conftest import validate_text as validate

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "pipelines.yaml").read_text()
TRAINING = '    training: {instance_type: ml.m5.xlarge, instance_count: 1, framework_version: "1.7-1"}'
SPLIT = "    split: {train: 0.8, validation: 0.1, test: 0.1, seed: 42, stratify: true}"
HPS = '      hyperparameters:\n        objective: "binary:logistic"\n'
AT = "at pipelines.fraud-detect-xgb."


def pipeline(instances: int = 1, files: int | None = None, tree_method: str | None = None) -> str:
    text = TEXT.replace(TRAINING, TRAINING.replace("instance_count: 1", f"instance_count: {instances}"))
    if files is not None:
        text = text.replace(
            SPLIT, SPLIT.replace("stratify: true}", f"stratify: true, train_files: {files}}}")
        )
    if tree_method is not None:
        text = text.replace(HPS, HPS + f"        tree_method: {tree_method}\n")
    return text


def location(text: str, line_text: str, value: str) -> tuple[int, int]:
    lines = text.splitlines()
    lineno = next(i for i, t in enumerate(lines, 1) if t.startswith(line_text))
    return lineno, lines[lineno - 1].index(value) + 1


def test_the_reference_pipeline_set_up_for_two_instances_is_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, err = validate(tmp_path, pipeline(2, files=2, tree_method="hist"), capsys)
    assert rc == 0 and not errors(err), err


@pytest.mark.parametrize("instances,files", [(2, None), (3, 2), (100, 99)])
def test_fewer_train_files_than_instances_is_located_at_the_instance_count(
    instances: int, files: int | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = pipeline(instances, files)
    rc, err = validate(tmp_path, text, capsys)
    assert rc == 1
    (first,) = errors(err)
    lineno, col = location(text, "    training: {", f"instance_count: {instances}")
    col += len("instance_count: ")
    assert first.startswith(f"{tmp_path / 'pipelines.yaml'}:{lineno}:{col}: FF612 "), first
    assert f"instance_count is {instances}" in first and f"written as {files or 1} file(s)" in first
    assert f"{AT}sagemaker.training.instance_count" in err
    assert f"hint: set split.train_files: {instances}" in err


@settings(max_examples=25, deadline=None)
@given(instances=st.integers(1, 100), files=st.integers(1, 100))
def test_ff612_exactly_when_an_instance_would_get_no_file(instances: int, files: int) -> None:
    """The class: any count against any file count, through the same CLI (its own temporary file)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pipelines.yaml"
        path.write_text(pipeline(instances, files, tree_method="hist"))
        rc = main(["validate", str(path), "--format", "json"])
    assert rc == (1 if files < instances else 0)


def test_set_on_the_command_line_is_checked_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = validate(tmp_path, TEXT, capsys, "--set", "sagemaker.training.instance_count=4")
    assert rc == 1 and "FF612" in err and "is 4" in err
    rc, err = validate(
        tmp_path, TEXT, capsys, "--set", "sagemaker.training.instance_count=4", "--set", "split.train_files=8"
    )
    assert rc == 0, err


def test_exact_trees_cannot_train_distributed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = pipeline(2, files=2, tree_method="exact")
    rc, err = validate(tmp_path, text, capsys)
    assert rc == 1
    (first,) = errors(err)
    lineno, col = location(text, "        tree_method: exact", "exact")
    assert first.startswith(f"{tmp_path / 'pipelines.yaml'}:{lineno}:{col}: FF613 "), first
    assert f"{AT}train.hyperparameters.tree_method" in err and "hint: use tree_method: hist" in err
    rc, err = validate(tmp_path, pipeline(1, tree_method="exact"), capsys)  # one host: exact is fine
    assert rc == 0, err


@pytest.mark.parametrize("method", ["auto", "approx", "hist"])
def test_distributed_tree_methods_are_accepted(
    method: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, err = validate(tmp_path, pipeline(4, files=8, tree_method=method), capsys)
    assert rc == 0 and not errors(err), err


def test_a_tuned_exact_tree_method_is_located_at_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    anchor = "    evaluate:\n"
    tune = (
        '    tune:\n      objective: {metric: "validation:auc"}\n      hyperparameters:\n'
        "        tree_method: {values: [hist, exact]}\n"
    )
    text = pipeline(2, files=2).replace(anchor, tune + anchor, 1)
    rc, err = validate(tmp_path, text, capsys)
    assert rc == 1
    ff613 = [e for e in errors(err) if "FF613" in e]
    assert len(ff613) == 1 and "tune searches tree_method 'exact'" in ff613[0]
    lineno, col = location(text, "        tree_method: {values:", "exact")
    assert ff613[0].startswith(f"{tmp_path / 'pipelines.yaml'}:{lineno}:{col}: FF613 "), ff613[0]
    assert f"{AT}tune.hyperparameters.tree_method.values[1]" in err


def test_cross_validation_is_refused_with_several_instances(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    anchor = "      early_stopping: {rounds: 10}"
    cv = "      cv: {folds: 3}"
    text = pipeline(2, files=2).replace(anchor, cv)
    rc, err = validate(tmp_path, text, capsys)
    assert rc == 1
    (first,) = errors(err)
    lineno, col = location(text, cv, "{folds")
    assert first.startswith(f"{tmp_path / 'pipelines.yaml'}:{lineno}:{col}: FF614 "), first
    assert f"{AT}train.cv" in err and "hint: use train.early_stopping" in err
    rc, err = validate(tmp_path, pipeline(1).replace(anchor, cv), capsys)
    assert rc == 0, err


def test_processing_stays_single_instance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = validate(
        tmp_path, pipeline(2, files=2), capsys, "--set", "sagemaker.processing.instance_count=2"
    )
    assert rc == 1 and [e.split(": ")[1].split()[0] for e in errors(err)] == ["FF515"], err


# ------------------------------------------------------------------------------------- the rendered job


def rendered_training(aws_data: Path, *sets: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "fraudflow", "render", "--env", "aws-sample", *sets],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (train,) = [s for s in json.loads(proc.stdout)["Steps"] if s["Name"] == "Train"]
    return train["Arguments"]


@pytest.mark.parametrize("instances", [1, 2, 4])
def test_the_train_channel_is_sharded_exactly_when_several_instances_train(
    aws_data: Path, instances: int
) -> None:
    args = rendered_training(
        aws_data,
        "--set", f"sagemaker.training.instance_count={instances}",
        "--set", f"split.train_files={2 * instances}",
    )  # fmt: skip
    assert args["ResourceConfig"]["InstanceCount"] == instances
    kinds = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
        for c in args["InputDataConfig"]
    }
    train = "ShardedByS3Key" if instances > 1 else "FullyReplicated"
    assert kinds == {"train": train, "validation": "FullyReplicated", "schema": "FullyReplicated"}


def test_a_tuning_job_trains_each_trial_distributed(aws_data: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fraudflow", "render", "--env", "aws-sample",
         "--set", "sagemaker.training.instance_count=2", "--set", "split.train_files=2",
         "--set", "tune.objective.metric=validation:auc", "--set", "tune.hyperparameters.eta={min: 0.05, max: 0.3}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (tune,) = [s for s in json.loads(proc.stdout)["Steps"] if s["Type"] == "Tuning"]
    definition = tune["Arguments"]["TrainingJobDefinition"]
    assert definition["HyperParameterTuningResourceConfig"]["InstanceCount"] == 2
    kinds = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
        for c in definition["InputDataConfig"]
    }
    assert kinds == {"train": "ShardedByS3Key", "validation": "FullyReplicated", "schema": "FullyReplicated"}
