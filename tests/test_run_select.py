"""`fraudflow run --from STEP` / `--only STEP`: the steps before (or the inputs of) STEP come from the step
cache, STEP (and for --from every later step) runs again, and a missing cached input or an unknown step name is
refused with a located error before anything runs. `fraudflow logs` reads a step's log from a run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fraudflow.local.runner import AGAIN, OMIT, REUSE, select_steps
from fraudflow.plan import build_plan
from fraudflow.spec.load import load_one
from tests.conftest import ROOT, run_cli

PASS = ("--set", "gate.threshold=0.05")  # the few sample rows give a weak model: let the gate pass


def _workspace(root: Path) -> Path:
    shutil.copy(ROOT / "pipelines.yaml", root / "pipelines.yaml")
    done = run_cli("sample-data", "data", "--rows", "600", cwd=root)
    assert done.returncode == 0, done.stderr
    return root


def _statuses(root: Path) -> dict[str, str]:
    summary = json.loads((root / ".fraudflow" / "runs" / "latest" / "run.json").read_text())
    return {s["name"]: s["status"] for s in summary["steps"]}


@pytest.fixture(scope="module")
def plan():
    return build_plan(load_one(str(ROOT / "pipelines.yaml"), env=None, overrides=[], pipeline=None))


# ------------------------------------------------------------------------------------------ the selection


def test_every_step_of_the_plan_can_be_selected(plan) -> None:
    """For every step: --from reuses exactly the earlier steps; --only reuses a set closed under inputs, so
    every step that runs finds each input either reused or run in this run, and omits only unneeded steps."""
    names = [s.name for s in plan.steps]
    for i, name in enumerate(names):
        modes = select_steps(plan, start=name)
        assert [modes[n] for n in names] == [REUSE] * i + [AGAIN] * (len(names) - i)
        modes = select_steps(plan, only=name)
        assert modes[name] == AGAIN and list(modes.values()).count(AGAIN) == 1
        for step in plan.steps:
            if modes[step.name] != OMIT:
                assert all(modes[inp.step] == REUSE for inp in step.inputs if inp.step), (name, step.name)
        assert all(modes[n] == OMIT for n in names[i + 1 :])  # nothing reads a later step


@pytest.mark.parametrize("flag", ["--from", "--only"])
def test_unknown_step_is_a_usage_error_naming_the_steps(tmp_path: Path, flag: str) -> None:
    root = _workspace(tmp_path)
    done = run_cli("run", flag, "trian", cwd=root)
    assert done.returncode == 64, done.stderr
    assert "FF696" in done.stderr and "did you mean 'train'" in done.stderr
    assert "preprocess, train, evaluate" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (root / ".fraudflow" / "steps").exists() or not any((root / ".fraudflow" / "steps").iterdir())


def test_no_cache_with_from_is_a_usage_error(tmp_path: Path) -> None:
    done = run_cli("run", "--no-cache", "--from", "train", cwd=tmp_path)
    assert done.returncode == 64 and "not allowed" in done.stderr


@pytest.mark.parametrize("flag", ["--from", "--only"])
def test_missing_cached_input_is_refused_before_running(tmp_path: Path, flag: str) -> None:
    root = _workspace(tmp_path)
    done = run_cli("run", flag, "train", cwd=root)
    assert done.returncode == 1, done.stderr
    assert f"{root / 'pipelines.yaml'}: FF697 step 'preprocess' has no cached result" in done.stderr
    assert "run the whole pipeline first" in done.stderr
    assert "Traceback" not in done.stderr
    assert _statuses(root) == {"preprocess": "failed"}  # nothing ran


# ----------------------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_from_train_reuses_preprocessing_and_reruns_the_rest(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    assert run_cli("run", *PASS, cwd=root).returncode == 0
    done = run_cli("run", *PASS, "--from", "train", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    statuses = _statuses(root)
    assert statuses["preprocess"] == "cached"
    assert {statuses[n] for n in ("train", "evaluate", "bias", "explain")} == {"ran"}
    assert statuses["deploy"] == "ran"
    _check_logs(root)
    # a changed input of a reused step has no cached result: refused, nothing re-run on stale data
    claims = root / "data" / "claims.csv"
    claims.write_text(claims.read_text() + claims.read_text().splitlines()[-1] + "\n")
    done = run_cli("run", *PASS, "--from", "train", cwd=root)
    assert done.returncode == 1 and "FF697" in done.stderr


@pytest.mark.slow
def test_only_reruns_one_step_on_cached_inputs(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    assert run_cli("run", *PASS, cwd=root).returncode == 0
    done = run_cli("run", *PASS, "--only", "bias", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _statuses(root) == {
        "preprocess": "cached",
        "train": "cached",
        "evaluate": "cached",
        "bias": "ran",
        "explain": "skipped",
        "register": "skipped",
        "deploy": "skipped",
    }
    assert "bias       ran" in done.stdout


def _check_logs(root: Path) -> None:
    """`fraudflow logs` after a full run and a `--from train` run (the latest): a step that ran prints its log,
    a reused one the log of the run that computed it, and mistakes are located errors."""
    runs = root / ".fraudflow" / "runs"
    latest = (runs / "latest").resolve()
    first = min(p for p in runs.iterdir() if p.name != "latest")
    done = run_cli("logs", "train", cwd=root)
    assert done.returncode == 0 and done.stdout == (latest / "train.log").read_text()
    assert "rounds_trained" in done.stdout
    done = run_cli("logs", "latest", "preprocess", "--workspace", str(root))  # reused: the first run's log
    assert done.returncode == 0 and done.stdout == (first / "preprocess.log").read_text() != ""
    done = run_cli("logs", first.name, "train", cwd=root)
    assert done.returncode == 0 and done.stdout == (first / "train.log").read_text()
    done = run_cli("logs", "latest", "trian", cwd=root)
    assert done.returncode == 64 and "FF696" in done.stderr and "did you mean 'train'" in done.stderr
    for bad in ("20990101-000000-abcdef", "../..", "latest/../latest"):
        done = run_cli("logs", bad, "train", cwd=root)
        assert done.returncode == 64 and "FF698" in done.stderr and latest.name in done.stderr, bad
    done = run_cli("logs", "register", cwd=root)
    assert done.returncode == 1 and "FF699 step 'register' has no log" in done.stderr
    assert "Traceback" not in done.stderr


def test_logs_without_any_run(tmp_path: Path) -> None:
    done = run_cli("logs", "train", cwd=tmp_path)
    assert done.returncode == 64, done.stderr
    assert "FF698 no run yet" in done.stderr and "fraudflow run" in done.stderr
    done = run_cli("logs", "a", "b", "c", cwd=tmp_path)
    assert done.returncode == 64
