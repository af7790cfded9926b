"""`instance_count > 1` for processing buys N copies of the same work (the scripts do not shard their inputs):
validate refuses it where it is written (FF515), and a pipeline parameter that would let an execution set a
processing or training count (FF516). Clarify and the endpoint really scale out: allowed; distributed training
has its own constraints (tests/test_scaleout_validate.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ff_errors as errors
from tests.conftest import validate_text as validate

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "pipelines.yaml").read_text()
LINE = {
    "processing": '    processing: {instance_type: ml.m5.xlarge, instance_count: 1, framework_version: "1.2-1"}',
    "training": '    training: {instance_type: ml.m5.xlarge, instance_count: 1, framework_version: "1.7-1"}',
    "clarify": "    clarify: {instance_type: ml.m5.xlarge, instance_count: 1}",
}


@pytest.mark.parametrize("job", ["processing"])
@pytest.mark.parametrize("count", [2, 3, 100])
def test_more_than_one_instance_is_refused_where_it_is_written(
    job: str, count: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert LINE[job] in TEXT
    text = TEXT.replace(LINE[job], LINE[job].replace("instance_count: 1", f"instance_count: {count}"))
    rc, err = validate(tmp_path, text, capsys)
    assert rc == 1
    (first,) = errors(err)
    lineno = next(
        i for i, t in enumerate(text.splitlines(), 1) if t == LINE[job].replace(": 1,", f": {count},")
    )
    col = text.splitlines()[lineno - 1].index(f"instance_count: {count}") + len("instance_count: ") + 1
    assert first.startswith(f"{tmp_path / 'pipelines.yaml'}:{lineno}:{col}: FF515 ")
    assert f"sagemaker.{job}.instance_count is {count}" in first
    assert (
        f"at pipelines.fraud-detect-xgb.sagemaker.{job}.instance_count" in err
        and "hint: use instance_count: 1" in err
    )


def test_set_on_the_command_line_is_refused_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = validate(tmp_path, TEXT, capsys, "--set", "sagemaker.processing.instance_count=4")
    assert rc == 1 and "FF515" in err and "is 4" in err


@pytest.mark.parametrize("job", ["processing", "training"])
def test_an_instance_count_parameter_is_refused(
    job: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    anchor = "      MaxDepth: train.hyperparameters.max_depth\n"
    assert anchor in TEXT
    text = TEXT.replace(anchor, anchor + f"      Count: sagemaker.{job}.instance_count\n")
    rc, err = validate(tmp_path, text, capsys)
    assert rc == 1
    (first,) = errors(err)
    lineno = text.splitlines().index(f"      Count: sagemaker.{job}.instance_count") + 1
    assert f":{lineno}:" in first and "FF516" in first and "parameter Count" in first
    assert "at pipelines.fraud-detect-xgb.parameters.Count" in err and "instance_type" in err


def test_clarify_and_endpoint_instances_scale_out_and_are_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = TEXT.replace(LINE["clarify"], LINE["clarify"].replace("instance_count: 1", "instance_count: 3"))
    rc, err = validate(tmp_path, text, capsys, "--set", "deploy.instance_count=2")
    assert rc == 0, err
    assert not errors(err)


def test_one_instance_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = validate(tmp_path, TEXT, capsys)
    assert rc == 0 and not errors(err), err
