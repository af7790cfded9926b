"""Only the container image versions the step scripts run on are accepted (validate, render), and the scripts
parse with those images' Python. The libraries themselves: tests/test_step_code_container_versions.py (slow)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fraudflow.errors import UserError
from fraudflow.sagemaker import images

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "schemas" / "pipelines.schema.json").read_text())
# Which image runs which script (docs/sagemaker.md): preprocess on scikit-learn, the rest on XGBoost.
SCRIPTS = {"sklearn": ("preprocess.py",), "xgboost": ("train.py", "evaluate.py", "bias.py", "explain.py")}


def _framework_enums() -> dict[str, list[str]]:
    """The schema's framework_version enums, wherever the sagemaker block sits in it."""
    found: dict[str, list[str]] = {}

    def walk(node: object) -> None:
        if isinstance(node, dict):
            props = node.get("properties") or {}
            for job, framework in (("processing", "sklearn"), ("training", "xgboost")):
                fv = ((props.get(job) or {}).get("properties") or {}).get("framework_version")
                if isinstance(fv, dict) and "enum" in fv:
                    found[framework] = fv["enum"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(SCHEMA)
    return found


def test_the_schema_accepts_exactly_the_tested_images() -> None:
    assert _framework_enums() == {k: list(v) for k, v in images.SUPPORTED.items()}


def test_every_image_the_sdk_knows_is_supported_or_refused_with_a_reason() -> None:
    for framework in ("sklearn", "xgboost"):
        cfg = images._framework(framework)
        known = set(cfg.get("training", cfg)["versions"])
        assert set(images.SUPPORTED[framework]) <= known
        for version in known - set(images.SUPPORTED[framework]):
            with pytest.raises(UserError) as info:
                images.image_uri(framework, version, "us-east-1")
            (d,) = info.value.diagnostics
            assert d.code == "FF702" and "not supported" in d.message and d.hint
            assert ", ".join(images.SUPPORTED[framework]) in d.hint


def test_xgboost_1_3_and_1_5_are_refused_for_what_train_py_needs() -> None:
    for version, lib in (("1.3-1", "xgboost 1.3.3"), ("1.5-1", "xgboost 1.5.2")):
        with pytest.raises(UserError) as info:
            images.xgboost(version, "us-east-1")
        assert lib in info.value.diagnostics[0].message and ">= 1.7" in info.value.diagnostics[0].message


@pytest.mark.parametrize("framework", sorted(SCRIPTS))
def test_the_step_scripts_parse_with_the_images_python(framework: str) -> None:
    for pins in images.SUPPORTED[framework].values():
        major, minor = (int(x) for x in pins["python"].split("."))
        for script in SCRIPTS[framework]:
            source = (ROOT / "step_code" / script).read_text()
            ast.parse(source, filename=script, feature_version=(major, minor))  # SyntaxError: fails the test


@pytest.mark.parametrize(("job", "version"), [("training", "1.3-1"), ("training", "1.5-1"), ("processing", "0.23-1"), ("processing", "1.0-1")])  # fmt: skip
def test_validate_refuses_an_untested_image_where_it_is_written(
    job: str, version: str, tmp_path: Path
) -> None:
    text = (ROOT / "pipelines.yaml").read_text()
    line = f"    {job}: {{instance_type: ml.m5.xlarge, instance_count: 1, framework_version: "
    assert line in text
    bad = text.replace(line + '"1.7-1"}', line + f'"{version}"}}').replace(
        line + '"1.2-1"}', line + f'"{version}"}}'
    )
    path = tmp_path / "pipelines.yaml"
    path.write_text(bad)
    out = subprocess.run([sys.executable, "-m", "fraudflow", "validate", str(path)], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 1 and "Traceback" not in out.stderr
    lineno = next(i for i, t in enumerate(bad.splitlines(), 1) if line in t)
    assert f"{path}:{lineno}:" in out.stderr and "FF203" in out.stderr and f"'{version}'" in out.stderr
    assert f"defaults.sagemaker.{job}.framework_version" in out.stderr and "hint:" in out.stderr
