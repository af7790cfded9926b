"""The scoring pipeline `<name>-score` (deploy.batch): `render --scoring` prints its four steps, the join step's
script writes the claims the transform scores, and deploy.batch's semantic checks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
OUT = "s3://scored-claims/fraud-detect"
BATCH = ["--set", f"deploy.batch.output={OUT}"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run(
        [sys.executable, "-m", "fraudflow", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _scoring(yaml_file: Path, *args: str) -> dict[str, Any]:
    out = cli("render", str(yaml_file), "--scoring", *BATCH, *args)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def test_render_scoring_resolves_joins_creates_and_transforms(yaml_file: Path) -> None:
    steps = {s["Name"]: s for s in _scoring(yaml_file)["Steps"]}
    assert list(steps) == ["ResolveModel", "JoinClaims", "CreateModel-CreateModel", "Score"]
    assert steps["ResolveModel"]["Arguments"] == {
        "action": "served_model",
        "endpoint_name": "fraud-detect-xgb",
    }
    join = steps["JoinClaims"]["Arguments"]
    assert join["AppSpecification"]["ContainerArguments"] == ["--records"]
    assert [i["InputName"] for i in join["ProcessingInputs"]] == ["claims", "customers", "config", "code"]
    assert "CacheConfig" not in steps["JoinClaims"]
    container = steps["CreateModel-CreateModel"]["Arguments"]["PrimaryContainer"]
    assert container["ModelDataUrl"] == {"Get": "Steps.ResolveModel.OutputParameters['model_data_url']"}
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    t = steps["Score"]["Arguments"]
    assert t["BatchStrategy"] == "SingleRecord"
    assert t["TransformInput"]["SplitType"] == "Line"
    assert t["TransformInput"]["ContentType"] == "application/json"
    assert t["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == {
        "Get": "Steps.JoinClaims.ProcessingOutputConfig.Outputs['records'].S3Output.S3Uri"
    }
    assert t["TransformOutput"] == {"S3OutputPath": OUT, "Accept": "application/json", "AssembleWith": "Line"}
    assert t["DataProcessing"]["JoinSource"] == "Input"
    assert t["ModelName"] == {"Get": "Steps.CreateModel-CreateModel.ModelName"}


def test_batch_inputs_replace_a_source_and_set_the_instances(yaml_file: Path) -> None:
    args = [
        "--set",
        "deploy.batch.inputs.claims=s3://new-claims/2026/12/",
        "--set",
        "deploy.batch.instance_count=3",
    ]
    steps = {s["Name"]: s for s in _scoring(yaml_file, *args)["Steps"]}
    inputs = {
        i["InputName"]: i["S3Input"]["S3Uri"] for i in steps["JoinClaims"]["Arguments"]["ProcessingInputs"]
    }
    assert inputs["claims"] == "s3://new-claims/2026/12/"
    assert inputs["customers"].endswith("/customers.csv")
    assert steps["Score"]["Arguments"]["TransformResources"]["InstanceCount"] == 3


def test_render_scoring_without_the_section_is_a_usage_error(yaml_file: Path) -> None:
    out = cli("render", str(yaml_file), "--scoring")
    assert out.returncode == 64, out.stderr
    assert "FF765" in out.stderr and "deploy.batch" in out.stderr
    assert "Traceback" not in out.stderr


def test_batch_inputs_naming_no_source_is_located(yaml_file: Path) -> None:
    out = cli("validate", str(yaml_file), *BATCH, "--set", "deploy.batch.inputs.claimz=s3://x-bucket/c/")
    assert out.returncode != 0
    assert "FF567" in out.stderr and "'claimz'" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_join_step_writes_each_joined_claim_as_a_json_record(yaml_file: Path, tmp_path: Path) -> None:
    """preprocess.py --records, run as the processing job runs it (the rendered config, the sources at
    /opt/ml/processing/input/<name>): one line per claim, the customer columns joined, no label."""
    from fraudflow.plan import build_plan
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.sagemaker.scoring import render
    from fraudflow.spec.load import load_one

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    plan = build_plan(load_one(yaml_file, env=None, overrides=[f"deploy.batch.output={OUT}"], pipeline=None))
    _, uploads = render(plan, compile_plan(plan))
    config = next(u for u in uploads if u.key.endswith("/config.json"))
    (tmp_path / "config.json").write_bytes(config.read())
    sources = plan.spec.config["data"]["sources"]
    for name, path in sources.items():
        (tmp_path / "in" / name).mkdir(parents=True)
        shutil.copy(path, tmp_path / "in" / name / Path(path).name)
    run = subprocess.run(
        [sys.executable, str(ROOT / "step_code" / "preprocess.py"), "--records", "--config",
         str(tmp_path / "config.json"), "--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = (tmp_path / "out" / "records" / "records.jsonl").read_text().splitlines()
    claims = pd.read_csv(sources["claims"])
    customers = pd.read_csv(sources["customers"])
    expected = claims.drop(columns=["fraud"]).merge(customers, on="policy_id", how="left")
    assert len(lines) == len(expected)
    first = [json.loads(line)["records"] for line in (lines[0], lines[-1])]
    for doc, row in zip(first, (expected.iloc[0], expected.iloc[-1]), strict=True):
        assert len(doc) == 1 and "fraud" not in doc[0]
        assert set(doc[0]) == set(expected.columns)
        for column, value in row.items():
            assert doc[0][column] == (
                None if pd.isna(value) else pytest.approx(value) if isinstance(value, float) else value
            )


def test_batch_without_sagemaker_settings_is_located(yaml_file: Path) -> None:
    text = yaml_file.read_text()
    start, end = text.index("defaults:\n  sagemaker:"), text.index("\nenvironments:")
    yaml_file.write_text(text[:start] + text[end + 1 :])
    assert "FF568" not in cli("validate", str(yaml_file)).stderr  # only deploy.batch needs the section
    out = cli("validate", str(yaml_file), *BATCH)
    assert out.returncode != 0
    assert "FF568" in out.stderr and "deploy.batch" in out.stderr
    assert "Traceback" not in out.stderr


def _with_schedule(yaml_file: Path, schedule: str, inputs: bool = True) -> int:
    """deploy.batch with `schedule` (and S3 inputs for both sources) written into the file; the schedule's line."""
    from tests.test_api_gateway import with_api

    block = f"      batch:\n        output: {OUT}\n"
    if inputs:
        block += "        inputs: {claims: s3://in-bucket/claims/, customers: s3://in-bucket/customers/}\n"
    block += f"        schedule: {schedule}\n"
    text = with_api(yaml_file.read_text(), block)
    yaml_file.write_text(text)
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("        schedule:"))


@pytest.mark.parametrize(
    "expression", ["rate(1 days)", "rate(0 hours)", "rate(2 weeks)", "cron(0 3 * * *)", "cron(0 3 1 * 1 *)"]
)
def test_a_batch_schedule_eventbridge_refuses_is_located(yaml_file: Path, expression: str) -> None:
    line = _with_schedule(yaml_file, expression)
    out = cli("validate", str(yaml_file))
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"{yaml_file}:{line}:" in out.stderr and "FF776" in out.stderr and expression in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("expression", ["rate(1 day)", "rate(6 hours)", "cron(0 4 * * ? *)"])
def test_a_batch_schedule_on_s3_inputs_validates(yaml_file: Path, expression: str) -> None:
    _with_schedule(yaml_file, expression)
    out = cli("validate", str(yaml_file))
    assert out.returncode == 0 and "FF77" not in out.stdout + out.stderr, out.stdout + out.stderr


def test_a_batch_schedule_over_local_sources_is_a_warning(yaml_file: Path) -> None:
    line = _with_schedule(yaml_file, "rate(1 day)", inputs=False)
    out = cli("validate", str(yaml_file))
    assert out.returncode == 0, out.stdout + out.stderr
    shown = out.stdout + out.stderr
    assert "FF777" in shown and f"{yaml_file}:{line}:" in shown and "'claims', 'customers'" in shown
