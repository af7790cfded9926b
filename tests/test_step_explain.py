"""step_code/explain.py: exact TreeSHAP of a real XGBoost model on the AWS claims data, in Clarify's layout."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.test_step_bias import REPO, load_step, run_preprocess, train_booster

explain = load_step("explain")


def save_model(booster, path) -> None:
    """As the train step does: SageMaker's file name, whatever format this xgboost picks for it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Saving model in the UBJSON format as default"
        booster.save_model(str(path))


@pytest.fixture(scope="module")
def aws(tmp_path_factory, aws_data: Path):
    root = tmp_path_factory.mktemp("explain")
    splits = run_preprocess(root)
    booster = train_booster(splits)
    (root / "model").mkdir()
    save_model(booster, root / "model" / "xgboost-model")
    return {"root": root, "splits": splits, "booster": booster}


def run_explain(aws, tmp_path, model_dir=None, **explain_config):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"explain": {"method": "shap", "num_samples": 100, **explain_config}}))
    out = tmp_path / "out"
    argv = ["--config", str(config), "--model-dir", str(model_dir or aws["root"] / "model")]
    assert explain.main(argv + ["--data-dir", str(aws["root"] / "pre"), "--output-dir", str(out)]) == 0
    return out


def margins(aws) -> np.ndarray:
    import xgboost as xgb

    test = aws["splits"]["test"]
    return aws["booster"].predict(xgb.DMatrix(test.drop(columns="fraud").to_numpy(float)), output_margin=True)


def test_shap_rows_sum_to_the_margin(aws, tmp_path):
    out = run_explain(aws, tmp_path)
    shap = pd.read_csv(out / "shap_values.csv")
    test = aws["splits"]["test"]
    assert list(shap.columns) == [c for c in test.columns if c != "fraud"] + ["bias"]
    assert len(shap) == len(test)
    np.testing.assert_allclose(shap.sum(axis=1).to_numpy(), margins(aws), atol=1e-4)


def test_analysis_has_clarify_layout_and_global_ranking_is_sorted(aws, tmp_path):
    out = run_explain(aws, tmp_path)
    analysis = json.loads((out / "analysis.json").read_text())
    label0 = analysis["explanations"]["kernel_shap"]["label0"]
    shap = pd.read_csv(out / "shap_values.csv")
    features = [c for c in shap.columns if c != "bias"]
    assert list(label0["global_shap_values"]) == features
    mean_abs = shap[features].abs().mean()
    for name in features:
        assert label0["global_shap_values"][name] == pytest.approx(mean_abs[name], abs=1e-6)
    assert label0["expected_value"] == pytest.approx(shap["bias"].iloc[0], abs=1e-6)
    assert analysis["explanation_method"]["output_space"] == "log_odds"

    ranking = json.loads((out / "global.json").read_text())["ranking"]
    values = [r["value"] for r in ranking]
    assert values == sorted(values, reverse=True)
    assert [r["rank"] for r in ranking] == list(range(1, len(features) + 1))
    assert ranking[0]["value"] > 0


@pytest.mark.parametrize("agg", ["median", "mean_sq"])
def test_other_aggregations(aws, tmp_path, agg):
    out = run_explain(aws, tmp_path, agg_method=agg)
    shap = pd.read_csv(out / "shap_values.csv").drop(columns="bias")
    expected = shap.median() if agg == "median" else (shap**2).mean()
    got = json.loads((out / "analysis.json").read_text())["explanations"]["kernel_shap"]["label0"]
    for name, value in got["global_shap_values"].items():
        assert value == pytest.approx(expected[name], abs=1e-6)


def test_model_tar_gz_as_sagemaker_leaves_it(aws, tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    with tarfile.open(model_dir / "model.tar.gz", "w:gz") as tar:
        tar.add(aws["root"] / "model" / "xgboost-model", arcname="xgboost-model")
    out = run_explain(aws, tmp_path, model_dir=model_dir)
    shap = pd.read_csv(out / "shap_values.csv")
    np.testing.assert_allclose(shap.sum(axis=1).to_numpy(), margins(aws), atol=1e-4)


def test_fixed_point_writer_round_trips():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(scale=3, size=(50, 4)), [[0.0, -0.0, -1e-9, 998.9999999]]])
    back = np.loadtxt(explain.format_rows(values).decode().splitlines(), delimiter=",")
    np.testing.assert_allclose(back, values, atol=0.6e-7)
    assert "-0.0000000" not in explain.format_rows(values).decode()
    big = np.array([[1234.5, -np.inf]])
    assert explain.format_rows(big).decode().strip() == "1234.5000000,-inf"


# --- user errors ---------------------------------------------------------------------------------------------


def test_wrong_agg_method(aws, tmp_path):
    with pytest.raises(explain.StepError) as info:
        run_explain(aws, tmp_path, agg_method="max")
    assert info.value.ff_code == "FF651" and "mean_abs" in info.value.message
    assert not (tmp_path / "out").exists()


def test_model_for_other_features(aws, tmp_path):
    import xgboost as xgb

    small = xgb.train({"max_depth": 2}, xgb.DMatrix(np.eye(3), label=[0, 1, 0]), 2)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    save_model(small, model_dir / "xgboost-model")
    with pytest.raises(explain.StepError) as info:
        run_explain(aws, tmp_path, model_dir=model_dir)
    assert info.value.ff_code == "FF655" and "3 features" in info.value.message


def test_script_mode_missing_model(aws, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"explain": {"method": "shap"}}))
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "step_code/explain.py"),
            "--config",
            str(config),
            "--model-dir",
            str(tmp_path / "nomodel"),
            "--data-dir",
            str(aws["root"] / "pre"),
            "--output-dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error[FF652]: ")
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


# --- the SageMaker XGBoost image's library versions (xgboost 1.7, pandas 1.x, numpy 1.x) ------------------------


@pytest.mark.slow
def test_bias_and_explain_on_container_versions(aws, tmp_path):
    """Both scripts, run as scripts in the cached venv with the XGBoost 1.7-1 image's pins, give the results the
    current libraries give."""
    from tests.test_step_bias import write_config
    from tests.test_step_code_container_versions import XGBOOST_IMAGE, container_python

    python = container_python(XGBOOST_IMAGE)
    root = aws["root"]
    config = write_config(tmp_path / "config.json")
    doc = json.loads(config.read_text())
    config.write_text(json.dumps({**doc, "explain": {"method": "shap", "agg_method": "mean_abs"}}))
    (tmp_path / "eval").mkdir()
    test = aws["splits"]["test"]
    scores = aws["booster"].predict(__import__("xgboost").DMatrix(test.drop(columns="fraud").to_numpy(float)))
    pd.DataFrame({"label": test["fraud"].to_numpy(), "score": scores}).to_csv(
        tmp_path / "eval/predictions.csv"
    )
    common = ["--config", str(config), "--data-dir", str(root / "pre")]
    runs = {
        "bias.py": common
        + ["--predictions-dir", str(tmp_path / "eval"), "--output-dir", str(tmp_path / "b")],
        "explain.py": common + ["--model-dir", str(root / "model"), "--output-dir", str(tmp_path / "e")],
    }
    for script, args in runs.items():
        proc = subprocess.run(
            [str(python), str(REPO / "step_code" / script), *args], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    pre = json.loads((tmp_path / "b/analysis.json").read_text())["pre_training_bias_metrics"]
    dpl = next(m for m in pre["facets"]["customer_gender_female"][0]["metrics"] if m["name"] == "DPL")
    assert dpl["value"] == pytest.approx(0.027107730, abs=1e-9)
    # Margins from the venv's own xgboost: 1.7 reads a 3.x model's fitted base_score differently.
    code = (
        "import sys, numpy as np, xgboost as xgb; b = xgb.Booster(model_file=sys.argv[1]); "
        "X = np.loadtxt(sys.argv[2], delimiter=',')[:, 1:]; "
        "np.savetxt(sys.stdout, b.predict(xgb.DMatrix(X), output_margin=True))"
    )
    test_csv = root / "pre/test/test.csv"
    out = subprocess.run(
        [str(python), "-c", code, str(root / "model/xgboost-model"), str(test_csv)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    shap = pd.read_csv(tmp_path / "e/shap_values.csv")
    np.testing.assert_allclose(shap.sum(axis=1).to_numpy(), np.loadtxt(out.stdout.splitlines()), atol=1e-4)
