"""The step scripts are self-contained (SageMaker gets each one as a single file), so the pieces of the step
contract they all carry are copies: these tests keep the copies identical."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

STEP_CODE = Path(__file__).resolve().parents[1] / "step_code"
STEPS = ["preprocess.py", "train.py", "evaluate.py", "bias.py", "explain.py"]


def _definition(script: str, name: str) -> str:
    source = (STEP_CODE / script).read_text()
    node = next(n for n in ast.parse(source).body if getattr(n, "name", None) == name)
    return ast.get_source_segment(source, node) or ""


@pytest.mark.parametrize("script", STEPS[1:])
def test_every_step_reports_errors_with_the_same_step_error(script: str) -> None:
    assert _definition(script, "StepError") == _definition(STEPS[0], "StepError")


@pytest.mark.parametrize("script", STEPS)
def test_every_step_has_the_entry_point_the_runner_calls(script: str) -> None:
    tree = ast.parse((STEP_CODE / script).read_text())
    main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
    assert [a.arg for a in main.args.args] == ["argv"]
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "fraudflow" not in imported  # SageMaker's containers do not have it
