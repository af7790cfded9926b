"""The step scripts share their helpers through one sibling module, step_code/stepkit.py, which ships beside them
to both backends (fraudflow run imports it from step_code/; SageMaker gets it in each processing job's code folder,
in training's sourcedir.tar.gz and in the model's code/). These tests keep the copies gone and the shipping whole."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from fraudflow.plan import SERVING_CODE, build_plan
from fraudflow.spec.load import load_one

ROOT = Path(__file__).resolve().parents[1]
STEP_CODE = ROOT / "step_code"
STEPS = ["preprocess.py", "train.py", "evaluate.py", "bias.py", "explain.py"]
SCRIPTS = [*STEPS, "inference.py"]
SHARED = ("StepError", "publish", "Parser", "_Parser", "read_config", "_load_config", "entry")
SIBLINGS = {p.stem for p in STEP_CODE.glob("*.py")}


def _tree(script: str) -> ast.Module:
    return ast.parse((STEP_CODE / script).read_text(), feature_version=(3, 8))  # the images' Python


def _imported(tree: ast.Module) -> set[str]:
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    return names


@pytest.mark.parametrize("script", SCRIPTS)
def test_no_script_carries_its_own_copy_of_a_shared_helper(script: str) -> None:
    defined = {getattr(n, "name", None) for n in _tree(script).body}
    assert not defined & set(SHARED), (
        f"{script} defines {sorted(defined & set(SHARED))}: import it from stepkit"
    )
    assert "stepkit" in _imported(_tree(script))


def test_stepkit_is_standard_library_only() -> None:
    imported = _imported(_tree("stepkit.py"))
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
    assert {n.name for n in _tree("stepkit.py").body if isinstance(n, (ast.ClassDef, ast.FunctionDef))} >= {
        "StepError",
        "publish",
        "read_config",
        "Parser",
        "entry",
    }


@pytest.mark.parametrize("script", STEPS)
def test_every_step_has_the_entry_point_the_runner_calls(script: str) -> None:
    tree = _tree(script)
    main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
    assert [a.arg for a in main.args.args] == ["argv"]
    assert "fraudflow" not in _imported(tree)  # SageMaker's containers do not have it


def test_every_step_ships_the_step_code_modules_it_imports() -> None:
    """Whatever a step's script imports from step_code/ (and what those import) is among the files the Plan
    ships with it: SageMaker's code folder and sourcedir hold exactly Step.code_paths."""
    plan = build_plan(load_one(ROOT / "pipelines.yaml", env=None, overrides=[], pipeline=None))
    scripted = [s for s in plan.steps if s.script]
    assert {s.script for s in scripted} == set(STEPS)
    for step in scripted:
        shipped = {p.name for p in step.code_paths}
        todo, needed = [str(step.script)], set()
        while todo:
            name = todo.pop()
            needed.add(name)
            todo += [f"{m}.py" for m in _imported(_tree(name)) & SIBLINGS if f"{m}.py" not in needed]
        assert needed <= shipped, (
            f"{step.name} imports {sorted(needed - shipped)} but the Plan does not ship it"
        )


def test_the_serving_bundle_is_self_contained() -> None:
    """model.tar.gz's code/ holds inference.py and everything it and preprocess.py import from step_code/."""
    for script in ("inference.py", "preprocess.py"):
        siblings = {f"{m}.py" for m in _imported(_tree(script)) & SIBLINGS}
        assert siblings <= set(SERVING_CODE), (script, siblings)


FIRST_FLAG = {"train.py": "--train"}  # the processing steps all take --config


@pytest.mark.parametrize("script", STEPS)
def test_a_bad_argument_is_a_located_step_error_in_both_modes(script: str) -> None:
    """Through stepkit.Parser and stepkit.entry: in-process the StepError propagates (the runner reports it);
    run as a script beside its stepkit.py, one `error[CODE]` line and exit 2, never a traceback or SystemExit."""
    from fraudflow.stepcode import load_file

    flag = FIRST_FLAG.get(script, "--config")
    module = load_file(STEP_CODE / script, f"_ff_contract_{script[:-3]}")
    with pytest.raises(module.StepError) as err:
        module.main([flag])  # the flag without its value
    assert err.value.ff_code.startswith("FF6") and "bad arguments" in err.value.message
    proc = subprocess.run(
        [sys.executable, str(STEP_CODE / script), flag], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    assert (
        proc.stderr.startswith(f"error[{err.value.ff_code}]: bad arguments")
        and "Traceback" not in proc.stderr
    )
