"""The step scripts on the library versions of the SageMaker images pipelines.yaml names, in cached venvs.

What the images hold (their Dockerfiles and requirements in aws/sagemaker-scikit-learn-container and
aws/sagemaker-xgboost-container):
- scikit-learn 1.2-1 (runs preprocess): Python 3.9, scikit-learn 1.2.1, numpy 1.24.1, pandas 1.1.3, scipy 1.8.0;
- XGBoost 1.7-1 (runs train and evaluate): Python 3.8, xgboost 1.7.4, numpy 1.19.2, pandas 1.2.4,
  scikit-learn 0.24.1, scipy 1.6.2.
This machine has Python 3.11 only, so each pin below is the image's version where a cp311 wheel exists, else the
oldest release that has one (pandas 1.5.0, numpy 1.23.2, scikit-learn 1.1.3, scipy 1.9.2). That still covers what
breaks in practice: pandas 1.x (no "None" as missing, get_dummies/dtype differences), numpy 1.x, xgboost 1.7's
model format.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests._steps_util import (
    AWS_DATA,
    STEP_CODE,
    aws_inputs,
    hyperparameter_args,
    load_step,
    reference_config,
    write_config,
)

SKLEARN_IMAGE = ("numpy==1.24.1", "pandas==1.5.0", "scikit-learn==1.2.1", "scipy==1.9.2")
XGBOOST_IMAGE = ("numpy==1.23.2", "pandas==1.5.0", "scikit-learn==1.1.3", "scipy==1.9.2", "xgboost==1.7.4")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fraudflow-container-venv"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not AWS_DATA.is_dir(), reason=f"AWS sample data not found at {AWS_DATA}"),
]


def container_python(pins: tuple[str, ...]) -> Path:
    """A venv with `pins`, built once per set of pins (keyed by their hash) and reused; skip if pip cannot
    install them (no registry)."""
    key = hashlib.sha256(" ".join((sys.version.split()[0], *pins)).encode()).hexdigest()[:12]
    venv = CACHE / key
    python = venv / "bin" / "python"
    if (venv / "ready").is_file():
        return python
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = CACHE / f".{key}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(staging)], check=True, timeout=300)
    pip = subprocess.run(
        [str(staging / "bin/python"), "-m", "pip", "install", "-q", "--only-binary=:all:", *pins],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if pip.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        pytest.skip(f"pip cannot install the container pins {pins}: {pip.stderr.strip()[-400:]}")
    (staging / "pins.txt").write_text("\n".join(pins) + "\n")
    (staging / "ready").write_text("ok\n")
    try:
        staging.rename(venv)  # another test process may have won the race: use its venv
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return python


def run_step(python: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(python), str(STEP_CODE / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 0, f"{script} failed in the container venv:\n{proc.stderr[-3000:]}"
    return proc


def versions(python: Path, *modules: str) -> dict:
    code = f"import json, importlib; print(json.dumps({{m: importlib.import_module(m).__version__ for m in {list(modules)!r}}}))"
    return json.loads(
        subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout
    )


@pytest.fixture(scope="module")
def modern(tmp_path_factory) -> dict[str, Path]:
    """The same steps on this machine's libraries, for comparison."""
    pp, tr, ev = load_step("preprocess"), load_step("train"), load_step("evaluate")
    root = tmp_path_factory.mktemp("modern")
    config = write_config(root / "config.json", reference_config())
    assert (
        pp.main(
            [
                "--config",
                str(config),
                "--input-dir",
                str(aws_inputs(root / "in")),
                "--output-dir",
                str(root / "data"),
            ]
        )
        == 0
    )
    data = root / "data"
    assert (
        tr.main(
            [
                "--train",
                str(data / "train"),
                "--validation",
                str(data / "validation"),
                "--model-dir",
                str(root / "model"),
                "--output-data-dir",
                str(root / "training"),
            ]
            + hyperparameter_args()
        )
        == 0
    )
    assert (
        ev.main(
            [
                "--config",
                str(config),
                "--model-dir",
                str(root / "model"),
                "--test-dir",
                str(data / "test"),
                "--output-dir",
                str(root / "ev"),
            ]
        )
        == 0
    )
    return {"root": root, "config": config, "data": data, "model": root / "model", "ev": root / "ev"}


def test_steps_run_on_the_container_library_versions(modern, tmp_path):
    sk_python, xgb_python = container_python(SKLEARN_IMAGE), container_python(XGBOOST_IMAGE)
    assert versions(sk_python, "pandas", "sklearn") == {"pandas": "1.5.0", "sklearn": "1.2.1"}
    assert versions(xgb_python, "xgboost", "numpy") == {"xgboost": "1.7.4", "numpy": "1.23.2"}
    config, data = modern["config"], tmp_path / "data"

    run_step(
        sk_python,
        "preprocess.py",
        "--config",
        str(config),
        "--input-dir",
        str(aws_inputs(tmp_path / "in")),
        "--output-dir",
        str(data),
    )
    # pandas 1.5 + scikit-learn 1.2 write byte-identical model rows: same split, same "None" handling, same encoding
    for rel in (
        "train/train.csv",
        "validation/validation.csv",
        "test/test.csv",
        "schema/feature_schema.json",
    ):
        assert (data / rel).read_bytes() == (modern["data"] / rel).read_bytes(), rel

    model = tmp_path / "model"
    run_step(
        xgb_python,
        "train.py",
        "--train",
        str(data / "train"),
        "--validation",
        str(data / "validation"),
        "--model-dir",
        str(model),
        "--output-data-dir",
        str(tmp_path / "training"),
        *hyperparameter_args(),
    )
    assert sorted(p.name for p in model.iterdir()) == ["xgboost-model"]  # what the serving container loads
    summary = json.loads((tmp_path / "training" / "training.json").read_text())
    assert (
        summary["xgboost_version"] == "1.7.4" and summary["rounds_trained"] == summary["best_iteration"] + 1
    )

    ev = tmp_path / "ev"
    run_step(
        xgb_python,
        "evaluate.py",
        "--config",
        str(config),
        "--model-dir",
        str(model),
        "--test-dir",
        str(data / "test"),
        "--output-dir",
        str(ev),
    )
    result = json.loads((ev / "evaluation.json").read_text())
    auc = result["classification_metrics"]["roc_auc"]
    assert (
        0.65 < auc["value"] < 0.95
        and auc["confidence_interval"]["lower"] <= auc["value"] <= auc["confidence_interval"]["upper"]
    )
    assert (result["rows"], result["positives"]) == (500, 16)


def test_container_xgboost_serves_a_locally_trained_model_identically(modern, tmp_path):
    """`xgboost-model` written by XGBoost 3 must score the same in the 1.7 container (base_score format)."""
    xgb_python = container_python(XGBOOST_IMAGE)
    ev = tmp_path / "ev"
    run_step(xgb_python, "evaluate.py", "--config", str(modern["config"]), "--model-dir", str(modern["model"]),
             "--test-dir", str(modern["data"] / "test"), "--output-dir", str(ev))  # fmt: skip
    old = pd.read_csv(ev / "predictions.csv")
    new = pd.read_csv(modern["ev"] / "predictions.csv")
    np.testing.assert_allclose(old["score"], new["score"], rtol=1e-6)
    assert json.loads((ev / "evaluation.json").read_text()) == json.loads(
        (modern["ev"] / "evaluation.json").read_text()
    )
