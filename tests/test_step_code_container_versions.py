"""The step scripts on the library versions of the SageMaker images pipelines.yaml may name, in cached venvs.

What the images hold is `fraudflow.sagemaker.images.SUPPORTED`: each image's Python and library pins from its
container repository (requirements.txt and the base Dockerfile on the version's branch of
aws/sagemaker-scikit-learn-container and aws/sagemaker-xgboost-container). The schema accepts exactly those
versions (test_the_schema_accepts_exactly_the_tested_images). This machine has Python 3.11 only, so a pin with no
cp311 wheel is replaced by the oldest release that has one (`NO_CP311_WHEEL`, below); every other pin is the
image's own. That still covers what breaks in practice: pandas 1.x and 2.x, numpy 1.x and 2.x, xgboost 1.7's
model format. The images' Python (3.9, 3.10) is covered by tests/test_image_versions.py (the scripts parse with that grammar).
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

from fraudflow.sagemaker.images import SUPPORTED
from tests._steps_util import (
    AWS_DATA,
    STEP_CODE,
    aws_inputs,
    hyperparameter_args,
    load_step,
    reference_config,
    write_config,
)

# (package, image pin) → the oldest release with a cp311 wheel; scipy ">=1.9.0" → the release pip chose in the
# 1.4-2 image's build window that supports numpy 2.1.
NO_CP311_WHEEL = {
    ("pandas", "1.1.3"): "1.5.0",
    ("pandas", "1.2.4"): "1.5.0",
    ("scikit-learn", "0.24.1"): "1.1.3",
    ("scipy", "1.8.0"): "1.9.2",
    ("scipy", ">=1.9.0"): "1.14.1",
}


def image_pins(framework: str, version: str) -> tuple[str, ...]:
    libs = {k: v for k, v in SUPPORTED[framework][version].items() if k != "python"}
    return tuple(f"{lib}=={NO_CP311_WHEEL.get((lib, pin), pin)}" for lib, pin in sorted(libs.items()))


SKLEARN_IMAGES = {version: image_pins("sklearn", version) for version in SUPPORTED["sklearn"]}
SKLEARN_IMAGE = SKLEARN_IMAGES["1.2-1"]  # pipelines.yaml's
XGBOOST_IMAGE = image_pins("xgboost", "1.7-1")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fraudflow-container-venv"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("aws_data"),
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
    assert versions(xgb_python, "xgboost", "numpy") == {"xgboost": "1.7.4", "numpy": "1.24.1"}
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


@pytest.mark.parametrize("version", sorted(SKLEARN_IMAGES))
def test_preprocess_runs_on_every_accepted_sklearn_image(version: str, modern, tmp_path):
    """Each scikit-learn image the schema accepts writes the same model rows as this machine's libraries."""
    python = container_python(SKLEARN_IMAGES[version])
    wanted = dict(pin.split("==") for pin in SKLEARN_IMAGES[version])
    assert versions(python, "pandas", "sklearn") == {
        "pandas": wanted["pandas"],
        "sklearn": wanted["scikit-learn"],
    }
    data = tmp_path / "data"
    run_step(python, "preprocess.py", "--config", str(modern["config"]), "--input-dir",
             str(aws_inputs(tmp_path / "in")), "--output-dir", str(data))  # fmt: skip
    for rel in (
        "train/train.csv",
        "validation/validation.csv",
        "test/test.csv",
        "schema/feature_schema.json",
    ):
        assert (data / rel).read_bytes() == (modern["data"] / rel).read_bytes(), (version, rel)


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


def test_inference_script_serves_on_the_container_versions(modern, tmp_path):
    """step_code/inference.py, packed with the model as train.py packs it, gives the XGBoost 1.7 image's
    pandas/numpy/xgboost the same probabilities for raw records and CSV rows as this machine's libraries."""
    xgb_python = container_python(XGBOOST_IMAGE)
    model = tmp_path / "model"
    shutil.copytree(modern["model"], model)
    train = load_step("train")
    train.write_serving_bundle(model, train.serving_bundle(str(modern["data"] / "schema")))
    claims = pd.read_csv(AWS_DATA / "claims.csv").merge(
        pd.read_csv(AWS_DATA / "customers.csv"), on="policy_id"
    )
    records = json.loads(claims.sample(200, random_state=3).to_json(orient="records"))
    records[0]["collision_type"], records[1]["customer_age"] = None, "41"
    rows = (modern["data"] / "test" / "test.csv").read_text().splitlines()
    requests = {
        "records": [json.dumps({"records": records}), "application/json"],
        "rows": ["\n".join(r.split(",", 1)[1] for r in rows) + "\n", "text/csv"],
        # issue 9's hostile records: empty and unknown-key records answered one each, a bad one located
        "empty": [json.dumps({"records": [{}, {"no_such_column": 1}, {}]}), "application/json"],
        "located": [
            json.dumps({"records": [{}, {"customer_age": 40}, {"customer_age": "old"}]}),
            "application/json",
        ],
        "huge": ['{"records": [{"num_injuries": ' + "1" * 5000 + "}]}", "application/json"],
    }
    (tmp_path / "requests.json").write_text(json.dumps(requests))
    probe = (
        "import json, sys\n"
        "sys.path.insert(0, sys.argv[1] + '/code')\n"
        "import inference as m\n"
        "model = m.model_fn(sys.argv[1])\n"
        "out = {}\n"
        "for name, (body, ctype) in json.load(open(sys.argv[2])).items():\n"
        "    try:\n"
        "        answer, _ = m.output_fn(m.predict_fn(m.input_fn(body, ctype), model), 'application/json')\n"
        "    except m.BadRequest as exc:\n"
        "        answer = exc.body()\n"
        "    out[name] = json.loads(answer)\n"
        "print(json.dumps(out))\n"
    )

    def answers(python: str) -> dict:
        proc = subprocess.run(
            [python, "-c", probe, str(model), str(tmp_path / "requests.json")],
            capture_output=True, text=True, timeout=300,
            # the Model's environment on SageMaker always names the threshold (render sets it)
            env={**os.environ, "PYTHONWARNINGS": "ignore", "FRAUDFLOW_DECISION_THRESHOLD": "0.1"},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout)

    old, new = answers(str(xgb_python)), answers(sys.executable)
    for key, field in (("records", "probability"), ("rows", "score")):
        a = np.array([p[field] for p in old[key]["predictions"]])
        b = np.array([p[field] for p in new[key]["predictions"]])
        assert len(a) == len(b) > 100
        print(f"{key}: {len(a)} on the image pins vs here, max |diff| {np.abs(a - b).max():.3g}")
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    assert [p["decision"] for p in old["records"]["predictions"]] == [
        p["decision"] for p in new["records"]["predictions"]
    ]
    for key in ("empty", "located", "huge"):
        assert old[key] == new[key], key
    assert len(new["empty"]["predictions"]) == 3
    assert (new["located"]["code"], new["located"]["ff_code"], new["located"]["record"]) == (
        "InvalidRecords",
        "FF859",
        2,
    )
    assert (new["huge"]["code"], new["huge"]["ff_code"], new["huge"]["record"]) == (
        "NumberOutOfRange",
        "FF858",
        0,
    )
