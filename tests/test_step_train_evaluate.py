"""step_code/train.py and step_code/evaluate.py: real XGBoost on the preprocessed AWS data, reference settings."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import average_precision_score, roc_auc_score

from tests._steps_util import (
    aws_inputs,
    hyperparameter_args,
    load_step,
    reference_config,
    write_config,
)

pp, tr, ev = load_step("preprocess"), load_step("train"), load_step("evaluate")

pytestmark = pytest.mark.usefixtures("aws_data")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, Path]:
    """preprocess -> train -> evaluate, in-process, as the local runner calls them."""
    root = tmp_path_factory.mktemp("steps")
    config = write_config(root / "config.json", reference_config())
    data = root / "preprocess"
    assert (
        pp.main(
            ["--config", str(config), "--input-dir", str(aws_inputs(root / "in")), "--output-dir", str(data)]
        )
        == 0
    )
    model = root / "model"
    args = [
        "--train",
        str(data / "train"),
        "--validation",
        str(data / "validation"),
        "--model-dir",
        str(model),
        "--output-data-dir",
        str(root / "training"),
    ]
    assert tr.main(args + hyperparameter_args()) == 0
    evaluation = root / "evaluation"
    assert (
        ev.main(["--config", str(config), "--model-dir", str(model), "--test-dir", str(data / "test"),
                 "--output-dir", str(evaluation)])
        == 0
    )  # fmt: skip
    return {
        "root": root,
        "config": config,
        "data": data,
        "model": model,
        "training": root / "training",
        "evaluation": evaluation,
    }


def train_args(run: dict, model_dir: Path, validation: bool = True) -> list[str]:
    """model_dir/ gets the model, model_dir.parent/training/ the training report (SM_OUTPUT_DATA_DIR)."""
    args = ["--train", str(run["data"] / "train"), "--model-dir", str(model_dir)]
    args += ["--output-data-dir", str(model_dir.parent / "training")]
    return args + (["--validation", str(run["data"] / "validation")] if validation else [])


# ---------------------------------------------------------------------------------------------- train


def test_model_files_and_early_stopping(run):
    # the model folder holds only what SageMaker's XGBoost serving container loads (it loads every file)
    assert sorted(p.name for p in run["model"].iterdir()) == ["xgboost-model"]
    assert sorted(p.name for p in run["training"].iterdir()) == ["training.json"]
    summary = json.loads((run["training"] / "training.json").read_text())
    assert summary["early_stopping_rounds"] == 10 and summary["num_round"] == 100
    # the saved model holds exactly the best rounds: what SageMaker's container and the endpoint will serve
    assert summary["rounds_trained"] == summary["best_iteration"] + 1 < 100
    assert len(summary["evaluation_history"]["validation"]["auc"]) == summary["best_iteration"] + 11
    assert summary["params"]["max_depth"] == 3 and summary["params"]["eta"] == 0.2  # typed, not strings
    assert summary["features"] == 48 and summary["train_rows"] == 4000 and summary["validation_rows"] == 500


@pytest.mark.parametrize(
    "extra",
    [{}, {"num_round": 5}, {"num_round": 12, "cv_folds": 3}],
    ids=["early-stopping", "fixed-rounds", "cv"],
)
def test_model_folder_loads_in_the_xgboost_serving_container(run, tmp_path, monkeypatch, extra):
    """Whatever the training mode, SageMaker's serving container (ensemble loading: every non-dot file is a
    booster) loads the model folder as one booster, and it is the model train.py trained."""
    from tests.sagemaker_harness import get_loaded_booster

    model, out = tmp_path / "model", tmp_path / "data"
    model.mkdir()  # SageMaker creates both folders before the script starts
    out.mkdir()
    monkeypatch.setenv("SM_MODEL_DIR", str(model))
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", str(out))
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(run["data"] / "train"))
    monkeypatch.setenv("SM_CHANNEL_VALIDATION", str(run["data"] / "validation"))
    assert tr.main(hyperparameter_args(extra, early_stopping=not extra)) == 0
    booster, fmt = get_loaded_booster(model, ensemble=True)
    assert fmt == "xgb_format" and isinstance(booster, xgb.Booster)
    rounds = json.loads((out / "training.json").read_text())["rounds_trained"]
    assert booster.num_boosted_rounds() == rounds


def test_xgboost_model_file_serves_the_same_predictions(run):
    x = pd.read_csv(run["data"] / "test/test.csv", header=None).iloc[:, 1:].to_numpy(float)
    from_json = xgb.Booster()
    from_json.load_model(bytearray((run["model"] / "xgboost-model").read_bytes()))
    container = xgb.Booster()
    container.load_model(bytearray((run["model"] / "xgboost-model").read_bytes()))
    np.testing.assert_array_equal(from_json.predict(xgb.DMatrix(x)), container.predict(xgb.DMatrix(x)))
    param = json.loads((run["model"] / "xgboost-model").read_bytes())["learner"]["learner_model_param"]
    assert not param["base_score"].startswith("[")  # the scalar form XGBoost 1.7 reads


def test_training_is_deterministic(run, tmp_path):
    assert tr.main(train_args(run, tmp_path / "again") + hyperparameter_args()) == 0
    assert (tmp_path / "again/xgboost-model").read_bytes() == (run["model"] / "xgboost-model").read_bytes()


def test_without_early_stopping_trains_num_round(run, tmp_path):
    args = hyperparameter_args({"num_round": 7}, early_stopping=False)
    assert tr.main(train_args(run, tmp_path / "m", validation=False) + args) == 0
    summary = json.loads((tmp_path / "training/training.json").read_text())
    assert (
        summary["rounds_trained"] == 7
        and summary["best_iteration"] is None
        and summary["validation_rows"] is None
    )


def test_cv_chooses_the_rounds(run, tmp_path):
    args = hyperparameter_args({"num_round": 20, "cv_folds": 3})
    assert tr.main(train_args(run, tmp_path / "m") + args) == 0
    summary = json.loads((tmp_path / "training/training.json").read_text())
    cv = summary["cv"]
    assert cv["folds"] == 3 and cv["metric"] == "auc"
    assert summary["rounds_trained"] == cv["rounds_chosen"] == len(cv["results"]["test-auc-mean"])


def test_unknown_xgboost_parameters_pass_through(run, tmp_path):
    args = hyperparameter_args(
        {"num_round": 3, "max_bin": 64, "grow_policy": "lossguide", "reg_alpha": "0.5"}
    )
    assert tr.main(train_args(run, tmp_path / "m") + args) == 0
    params = json.loads((tmp_path / "training/training.json").read_text())["params"]
    assert params["max_bin"] == 64 and params["grow_policy"] == "lossguide" and params["reg_alpha"] == 0.5


@pytest.mark.parametrize(
    ("extra", "validation", "code"),
    [
        ({"num_round": "many"}, True, "FF620"),
        ({"max_depth": -2}, True, "FF623"),
        ({}, False, "FF621"),  # early stopping without a validation channel
    ],
)
def test_bad_hyperparameters(run, tmp_path, extra, validation, code):
    with pytest.raises(tr.StepError) as info:
        tr.main(train_args(run, tmp_path / "m", validation) + hyperparameter_args(extra))
    assert info.value.ff_code == code, info.value.render()
    assert not (tmp_path / "m").exists()


def test_hyperparameter_typing():
    params = tr.parse_hyperparameters(
        ["--max_depth", "3", "--eta=0.2", "--objective", "binary:logistic", "--eval_metric", "auc,logloss",
         "--early_stopping_rounds", "None", "--validate_parameters", "true"]
    )  # fmt: skip
    assert params == {
        "max_depth": 3,
        "eta": 0.2,
        "objective": "binary:logistic",
        "eval_metric": ["auc", "logloss"],
        "validate_parameters": True,
    }


def test_flag_without_value(run, tmp_path):
    with pytest.raises(tr.StepError, match="--eta has no value"):
        tr.main(train_args(run, tmp_path / "m") + ["--eta", "--max_depth", "3"])


def test_training_csv_with_a_header_is_located(run, tmp_path):
    bad = tmp_path / "train"
    bad.mkdir()
    (bad / "train.csv").write_text("fraud,a\n0,1\n1,2\n")
    with pytest.raises(tr.StepError) as info:
        tr.main(["--train", str(bad), "--model-dir", str(tmp_path / "m"), "--num_round", "2"])
    assert (info.value.ff_code, info.value.line) == ("FF622", 1)


# ---------------------------------------------------------------------------------------------- evaluate


def test_evaluation_json_layout(run):
    result = json.loads((run["evaluation"] / "evaluation.json").read_text())
    assert sorted(result) == ["classification_metrics", "decision_threshold", "positives", "rows"]
    m = result["classification_metrics"]
    assert sorted(m) == ["accuracy", "confusion_matrix", "f1", "pr_auc", "precision", "recall", "roc_auc"]
    declared = json.loads(run["config"].read_text())["evaluate"]["decision_threshold"]
    assert (result["rows"], result["positives"], result["decision_threshold"]) == (500, 16, declared)
    cm = m["confusion_matrix"]
    assert cm["0"]["0"] + cm["0"]["1"] == 484 and cm["1"]["0"] + cm["1"]["1"] == 16


def test_metrics_agree_with_sklearn_on_predictions_csv(run):
    result = json.loads((run["evaluation"] / "evaluation.json").read_text())["classification_metrics"]
    predictions = pd.read_csv(run["evaluation"] / "predictions.csv")
    assert list(predictions.columns) == ["label", "score"] and len(predictions) == 500
    test_labels = pd.read_csv(run["data"] / "test/test.csv", header=None)[0]
    assert predictions["label"].tolist() == test_labels.tolist()  # test rows in order
    assert result["roc_auc"]["value"] == roc_auc_score(predictions["label"], predictions["score"])
    assert result["pr_auc"]["value"] == pytest.approx(
        average_precision_score(predictions["label"], predictions["score"])
    )
    assert 0.7 < result["roc_auc"]["value"] < 0.95  # the reference model on this split (about 0.82)
    ci = result["roc_auc"]["confidence_interval"]
    assert ci["lower"] <= result["roc_auc"]["value"] <= ci["upper"]
    assert (ci["level"], ci["samples"]) == (0.95, 1000)


def test_evaluate_extracts_model_tar_gz(run, tmp_path):
    packed = tmp_path / "packed"
    packed.mkdir()
    with tarfile.open(packed / "model.tar.gz", "w:gz") as tar:
        tar.add(run["model"] / "xgboost-model", arcname="xgboost-model")
    out = tmp_path / "ev"
    args = [
        "--config",
        str(run["config"]),
        "--model-dir",
        str(packed),
        "--test-dir",
        str(run["data"] / "test"),
    ]
    assert ev.main(args + ["--output-dir", str(out)]) == 0
    assert (out / "evaluation.json").read_text() == (run["evaluation"] / "evaluation.json").read_text()
    assert sorted(p.name for p in packed.iterdir()) == ["model.tar.gz"]  # extracted elsewhere


def test_rank_auc_matches_sklearn_with_ties():
    rng = np.random.RandomState(1)
    labels = rng.randint(0, 2, size=(50, 40))
    scores = np.round(rng.rand(50, 40), 1)  # many ties
    expected = [roc_auc_score(y, s) for y, s in zip(labels, scores, strict=True)]
    np.testing.assert_allclose(ev.auc_by_ranks(labels, scores), expected, rtol=1e-12)
    assert np.isnan(ev.auc_by_ranks(np.zeros((1, 5), int), np.arange(5.0)[None]))[0]


def test_bootstrap_is_seeded():  # its speed is measured by bench/bench_run.py, not asserted here
    rng = np.random.RandomState(0)
    labels = (rng.rand(500) < 0.04).astype(int)
    scores = rng.rand(500) + labels * 0.3
    first = ev.bootstrap_auc(labels, scores, 1000, 0.95, seed=0)
    assert first == ev.bootstrap_auc(labels, scores, 1000, 0.95, seed=0)
    assert first["samples"] <= 1000 and first["lower"] < roc_auc_score(labels, scores) < first["upper"]


def test_one_class_test_split(run, tmp_path):
    test = tmp_path / "test"
    test.mkdir()
    rows = pd.read_csv(run["data"] / "test/test.csv", header=None)
    rows[rows[0] == 0].to_csv(test / "test.csv", header=False, index=False)
    with pytest.raises(ev.StepError) as info:
        ev.main(["--config", str(run["config"]), "--model-dir", str(run["model"]), "--test-dir", str(test),
                 "--output-dir", str(tmp_path / "out")])  # fmt: skip
    assert info.value.ff_code == "FF633" and "undefined" in info.value.message
    assert not (tmp_path / "out").exists()


def test_feature_count_mismatch(run, tmp_path):
    test = tmp_path / "test"
    test.mkdir()
    pd.read_csv(run["data"] / "test/test.csv", header=None).iloc[:, :-2].to_csv(
        test / "t.csv", header=False, index=False
    )
    with pytest.raises(ev.StepError, match="46 features but the model was trained on 48"):
        ev.main(["--config", str(run["config"]), "--model-dir", str(run["model"]), "--test-dir", str(test),
                 "--output-dir", str(tmp_path / "out")])  # fmt: skip


def test_missing_model(run, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ev.StepError) as info:
        ev.main(["--config", str(run["config"]), "--model-dir", str(tmp_path / "empty"),
                 "--test-dir", str(run["data"] / "test"), "--output-dir", str(tmp_path / "out")])  # fmt: skip
    assert info.value.ff_code == "FF631"


def test_decision_threshold_argument_overrides_the_config(run, tmp_path):
    out = tmp_path / "evaluation"
    ev.main(
        [
            "--config",
            str(run["config"]),
            "--model-dir",
            str(run["model"]),
            "--test-dir",
            str(run["data"] / "test"),
            "--output-dir",
            str(out),
            "--decision-threshold",
            "0.9",
        ]
    )
    assert json.loads((out / "evaluation.json").read_text())["decision_threshold"] == 0.9
