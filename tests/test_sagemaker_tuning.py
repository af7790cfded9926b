"""The tune section on SageMaker: a Tuning step that is the SDK v2's TuningStep, whose objective regex reads what
train.py really prints, whose best model flows into evaluation and registration, and that moto's server accepts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.register_assert_rewrite("tests.conftest_aws")
from tests.conftest_aws import Aws  # noqa: E402

pytest_plugins = ["tests.conftest_aws"]
ROOT = Path(__file__).resolve().parents[1]

BAYESIAN = {
    "objective": {"metric": "validation:auc", "direction": "maximize"},
    "strategy": "bayesian",
    "max_trials": 20,
    "parallel_trials": 2,
    "seed": 0,
    "hyperparameters": {
        "eta": {"min": 0.01, "max": 0.3, "scale": "log"},
        "max_depth": {"min": 2, "max": 8},
        "tree_method": {"values": ["hist", "approx"]},
    },
}
GRID = {
    "objective": {"metric": "validation:auc"},
    "strategy": "grid",
    "max_trials": 12,
    "hyperparameters": {"max_depth": {"min": 2, "max": 5}, "eta": {"min": 0.1, "max": 0.3, "step": 0.1}},
}


def _yaml(tmp_path: Path, data: Path | None, tune: dict[str, Any]) -> Path:
    text = (ROOT / "pipelines.yaml").read_text()
    if data is not None:
        text = text.replace("data_dir: data ", f"data_dir: {data} ", 1)
    text = "\n".join(ln for ln in text.splitlines() if "MaxDepth:" not in ln)
    path = tmp_path / "pipelines.yaml"
    path.write_text(text + f"\n    tune: {json.dumps(tune)}\n")
    return path


def _plan(path: Path) -> Any:
    from fraudflow.plan import build_plan
    from fraudflow.spec.load import load_one

    return build_plan(load_one(path, env=None, overrides=[], pipeline=None))


def _steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from tests.test_sagemaker_conformance import flat_steps

    return {s["Name"]: s for s in flat_steps(definition)}


def test_the_tune_step_replaces_train_and_its_best_model_is_evaluated_and_registered(
    tmp_path: Path, aws_data: Path
):
    from fraudflow.sagemaker.compile import compile_plan

    steps = _steps(compile_plan(_plan(_yaml(tmp_path, aws_data, BAYESIAN))).definition)
    assert "Train" not in steps and steps["Tune"]["Type"] == "Tuning"
    top = {
        "Std:Join": {
            "On": "/",
            "Values": [
                "s3:/",
                "fraudflow-artifacts-111122223333",
                "fraud-detect/model",
                {"Get": "Steps.Tune.TrainingJobSummaries[0].TrainingJobName"},
                "output/model.tar.gz",
            ],
        }
    }
    evaluate = steps["Evaluate"]["Arguments"]["ProcessingInputs"]
    assert next(i for i in evaluate if i["InputName"] == "model")["S3Input"]["S3Uri"] == top
    assert steps["CreateModel-CreateModel"]["Arguments"]["PrimaryContainer"]["ModelDataUrl"] == top
    config = steps["Tune"]["Arguments"]["HyperParameterTuningJobConfig"]
    assert config["ParameterRanges"]["IntegerParameterRanges"] == [
        {"Name": "max_depth", "MinValue": "2", "MaxValue": "8", "ScalingType": "Linear"}
    ]
    assert config["ParameterRanges"]["CategoricalParameterRanges"] == [
        {"Name": "tree_method", "Values": ['"hist"', '"approx"']}
    ]
    static = steps["Tune"]["Arguments"]["TrainingJobDefinition"]["StaticHyperParameters"]
    assert not {"eta", "max_depth", "tree_method"} & set(static)
    assert static["num_round"] == "100"


def test_a_grid_is_categorical_values_without_early_stopping(tmp_path: Path, aws_data: Path):
    from fraudflow.sagemaker.compile import compile_plan

    steps = _steps(compile_plan(_plan(_yaml(tmp_path, aws_data, GRID))).definition)
    config = steps["Tune"]["Arguments"]["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Grid" and config["TrainingJobEarlyStoppingType"] == "Off"
    ranges = {r["Name"]: r["Values"] for r in config["ParameterRanges"]["CategoricalParameterRanges"]}
    assert ranges == {"max_depth": ['"2"', '"3"', '"4"', '"5"'], "eta": ['"0.1"', '"0.2"', '"0.3"']}
    assert config["ResourceLimits"]["MaxNumberOfTrainingJobs"] == 12


def test_the_objective_regex_reads_what_train_py_prints(tmp_path: Path, aws_data: Path):
    """SageMaker finds the objective in the training job's log with the MetricDefinitions regex: it must match the
    line train.py prints, and capture the value train.py computed."""
    from fraudflow.sagemaker.compile import compile_plan

    steps = _steps(compile_plan(_plan(_yaml(tmp_path, aws_data, BAYESIAN))).definition)
    (definition,) = steps["Tune"]["Arguments"]["TrainingJobDefinition"]["AlgorithmSpecification"][
        "MetricDefinitions"
    ]
    rng = np.random.RandomState(0)
    for split, rows in (("train", 200), ("validation", 80)):
        (tmp_path / split).mkdir()
        x = rng.rand(rows, 4)
        y = (x[:, 0] + 0.3 * rng.rand(rows) > 0.6).astype(int)
        np.savetxt(tmp_path / split / "d.csv", np.column_stack([y, x]), delimiter=",", fmt="%.6f")
    res = subprocess.run(
        [sys.executable, str(ROOT / "step_code" / "train.py"), "--train", str(tmp_path / "train"),
         "--validation", str(tmp_path / "validation"), "--model-dir", str(tmp_path / "model"),
         "--output-data-dir", str(tmp_path / "out"), "--eval_metric", "auc", "--num_round", "15", "--eta", "0.1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    found = [float(m) for m in re.findall(definition["Regex"], res.stdout)]
    report = json.loads((tmp_path / "out" / "training.json").read_text())
    expected = report["evaluation_history"]["validation"]["auc"][report["rounds_trained"] - 1]
    assert found == [pytest.approx(expected, rel=0, abs=0)]
    assert definition["Name"] == "validation:auc"


@pytest.mark.slow
@pytest.mark.parametrize("tune", [BAYESIAN, GRID], ids=["bayesian", "grid"])
def test_every_step_matches_the_sdk_s_tuning_step(tmp_path: Path, aws_data: Path, tune: dict[str, Any]):
    """SDK v2: HyperparameterTuner over the train step's estimator, TuningStep, get_top_model_s3_uri(0)."""
    pytest.importorskip("sagemaker")
    pytest.importorskip("moto")
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.sagemaker.diff import _changes
    from tests.sdk_reference_pipeline import build
    from tests.test_sagemaker_conformance import _as_sdk_code_file, normalise

    plan = _plan(_yaml(tmp_path, aws_data, tune))
    ours = _steps(compile_plan(plan).definition)
    theirs = _steps(build(plan).definition)
    # the SDK names each job it would start in a static hyperparameter, a timestamp: not part of the pipeline
    theirs["Tune"]["Arguments"]["TrainingJobDefinition"]["StaticHyperParameters"].pop("sagemaker_job_name")
    assert list(ours) == list(theirs)
    problems = {
        name: c
        for name, step in ours.items()
        if (c := _changes(normalise(theirs[name]), normalise(_as_sdk_code_file(step))))
    }
    assert not problems, json.dumps(problems, indent=2)


@pytest.mark.aws
def test_apply_to_moto_s_server_stores_the_tuning_step(tmp_path: Path, aws_data: Path, aws: Aws):
    path = _yaml(tmp_path, aws_data, BAYESIAN)
    env = aws.env
    rendered = subprocess.run([sys.executable, "-m", "fraudflow", "render", str(path)], env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    applied = subprocess.run([sys.executable, "-m", "fraudflow", "apply", str(path), "--yes"], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)  # fmt: skip
    assert applied.returncode == 0, applied.stdout + applied.stderr
    stored = aws.client("sagemaker").describe_pipeline(PipelineName="fraud-detect-xgb")["PipelineDefinition"]
    assert stored + "\n" == rendered.stdout
    assert _steps(json.loads(stored))["Tune"]["Type"] == "Tuning"


@pytest.mark.slow
@pytest.mark.aws
def test_the_container_harness_runs_the_tuning_jobs_and_evaluates_the_best(
    tmp_path: Path, aws_data: Path, aws: Aws
) -> None:
    """The stored definition executed under the containers' contracts: each trial is a script-mode training job
    with the tuner's values among its hyperparameters, its objective read from its log with the rendered regex,
    and Evaluate reads the best job's model.tar.gz."""
    from tests import sagemaker_harness as h

    problem = h.namespace_problem()
    if problem:
        pytest.skip(f"the container harness {problem}")
    path = _yaml(tmp_path, aws_data, BAYESIAN)
    # no bias check: smclarify refuses a model that predicts no fraud at the threshold, as a tiny trial's may
    path.write_text(re.sub(r"\n    bias:\n(      .*\n)+", "\n", path.read_text()))
    applied = subprocess.run([sys.executable, "-m", "fraudflow", "apply", str(path), "--yes"], env=aws.env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)  # fmt: skip
    assert applied.returncode == 0, applied.stdout + applied.stderr
    emu = h.PipelineEmulator(aws, "fraud-detect-xgb", tmp_path / "emulated")
    ex = emu.run()
    assert ex.status == "Succeeded", ex.failure
    assert [s.name for s in ex.steps][:3] == ["Preprocess", "Tune", "Evaluate"]
    jobs = ex.step("Tune").detail["jobs"]
    assert len(jobs) == 2
    values = [j["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for j in jobs]
    assert values == sorted(values, reverse=True)  # the best (highest validation:auc) first
    for job in jobs:
        argv = job["detail"]["argv"]
        tuned = job["TunedHyperParameters"]
        # the toolkit JSON-decodes each value: a categorical '"hist"' reaches train.py as hist
        assert argv[argv.index("--tree_method") + 1] == json.loads(tuned["tree_method"])
        assert argv[argv.index("--max_depth") + 1] == tuned["max_depth"]
        assert float(argv[argv.index("--eta") + 1]) == pytest.approx(float(tuned["eta"]))
        assert 0.01 <= float(tuned["eta"]) <= 0.3 and 2 <= int(tuned["max_depth"]) <= 8
        log = job["detail"]["log"]
        assert f"final validation-auc: {job['FinalHyperParameterTuningJobObjectiveMetric']['Value']!r}" in log
    best = jobs[0]["detail"]["model_uri"]
    evaluate = ex.step("Evaluate")
    assert evaluate.status == "Succeeded"
    model_input = emu.ctx.resolve(
        next(s for s in emu.definition["Steps"] if s["Name"] == "Evaluate")["Arguments"]["ProcessingInputs"]
    )
    assert next(i for i in model_input if i["InputName"] == "model")["S3Input"]["S3Uri"] == best
