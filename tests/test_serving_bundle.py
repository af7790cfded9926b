"""The pieces of SageMaker script-mode serving that need no trained pipeline: train.py packing code/, the
rendered Model/ModelPackage environment and training inputs, and inference.py's load errors (FF660-FF669)."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tests._steps_util import STEP_CODE, load_step

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def inference():
    return load_step("inference")


def _tiny_model(folder: Path, n_features: int = 3) -> Path:
    import xgboost as xgb

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, n_features))
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(x, label=x[:, 0] > 0), 5)
    folder.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(folder / "model.json"))
    (folder / "xgboost-model").write_bytes((folder / "model.json").read_bytes())
    return folder


def _csv_channel(folder: Path) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 3))
    y = (x[:, 0] > 0).astype(int)
    (folder / "train.csv").write_text(
        "".join(f"{a},{b},{c},{d}\n" for a, (b, c, d) in zip(y, x, strict=True))
    )
    return folder


def _schema_channel(folder: Path, text: str = '{"features": ["a", "b", "c"]}') -> Path:
    folder.mkdir(parents=True)
    (folder / "feature_schema.json").write_text(text)
    return folder


# -- train.py packs the serving bundle ----------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _output_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """train.py's SM_OUTPUT_DATA_DIR default is /opt/ml/output/data: writing there from a test leaks into the
    machine (and into the container-contract test's check that /opt/ml stays private to its jobs)."""
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", str(tmp_path / "output-data"))


def test_train_with_a_schema_channel_packs_code(tmp_path: Path) -> None:
    train = load_step("train")
    data, schema = _csv_channel(tmp_path / "train"), _schema_channel(tmp_path / "schema")
    argv = [
        "--train",
        str(data),
        "--model-dir",
        str(tmp_path / "m"),
        "--schema",
        str(schema),
        "--num_round",
        "3",
        "--output-data-dir",  # not the default /opt/ml/output/data of this machine
        str(tmp_path / "d"),
    ]
    assert train.main(argv) == 0
    code = tmp_path / "m" / "code"
    assert sorted(p.name for p in code.iterdir()) == [
        "feature_schema.json",
        "inference.py",
        "preprocess.py",
        "stepkit.py",  # the helpers both import: code/ is self-contained
    ]
    for name in ("inference.py", "preprocess.py", "stepkit.py"):
        assert (code / name).read_bytes() == (STEP_CODE / name).read_bytes()
    assert (code / "feature_schema.json").read_bytes() == (schema / "feature_schema.json").read_bytes()
    # without the channel, the model folder is as before (no code/)
    argv = ["--train", str(data), "--model-dir", str(tmp_path / "m2"), "--num_round", "3"]
    argv += ["--output-data-dir", str(tmp_path / "d2")]  # not the default /opt/ml/output/data of this machine
    assert train.main(argv) == 0
    assert not (tmp_path / "m2" / "code").exists() and (tmp_path / "m2" / "xgboost-model").is_file()


def test_train_packing_errors_are_located_and_leave_no_model(tmp_path: Path) -> None:
    train = load_step("train")
    data = _csv_channel(tmp_path / "train")
    cases = {
        "FF621": data,  # a channel without feature_schema.json
        "FF669": _schema_channel(tmp_path / "s2", "{not json"),
    }
    for code, channel in cases.items():
        model = tmp_path / f"m-{code}"
        with pytest.raises(train.StepError) as err:
            train.main(["--train", str(data), "--model-dir", str(model), "--schema", str(channel)])
        assert err.value.ff_code == code and err.value.file
        assert not model.exists()


def test_train_shipped_alone_refuses_to_pack(tmp_path: Path) -> None:
    """train.py without inference.py/preprocess.py beside it (nor in /opt/ml/code) cannot make a servable
    model: FF669 naming what is missing, before any training."""
    alone = tmp_path / "alone"
    alone.mkdir()
    for name in ("train.py", "stepkit.py"):  # the helpers it imports, but not the serving code
        shutil.copy(STEP_CODE / name, alone / name)
    from fraudflow.stepcode import load_file

    module = load_file(alone / "train.py", "_train_alone")
    if Path("/opt/ml/code/inference.py").exists():
        pytest.skip("this machine has a SageMaker code folder")
    with pytest.raises(module.StepError) as err:
        module.serving_bundle(str(_schema_channel(tmp_path / "schema")))
    assert err.value.ff_code == "FF669" and "inference.py" in err.value.message


# -- the rendered definition --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rendered(aws_data: Path):
    from fraudflow.plan import build_plan
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.spec.load import load_one

    return compile_plan(
        build_plan(load_one(ROOT / "pipelines.yaml", env="aws-sample", overrides=[], pipeline=None))
    )


def _steps(definition: dict) -> dict:
    out = {}
    for step in definition["Steps"]:
        out[step["Type"]] = out.get(step["Type"], step)
        if step["Type"] == "Condition":
            out.update(_steps({"Steps": step["Arguments"]["IfSteps"]}))
    return out


def test_model_and_package_run_the_inference_script(rendered) -> None:
    steps = _steps(rendered.definition)
    model_env = steps["Model"]["Arguments"]["PrimaryContainer"]["Environment"]
    spec = steps["RegisterModel"]["Arguments"]["InferenceSpecification"]
    assert spec["Containers"][0]["Environment"] == model_env
    assert model_env["SAGEMAKER_PROGRAM"] == "inference.py"
    assert model_env["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert model_env["SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"] == "*/*"
    assert model_env["FRAUDFLOW_DECISION_THRESHOLD"] == "0.1"  # pipelines.yaml's evaluate.decision_threshold
    assert (
        set(spec["SupportedContentTypes"])
        == set(spec["SupportedResponseMIMETypes"])
        == {
            "text/csv",
            "application/json",
        }
    )


def test_training_gets_the_schema_channel_and_ships_the_serving_code(rendered) -> None:
    train = _steps(rendered.definition)["Training"]["Arguments"]
    channels = {c["ChannelName"]: c for c in train["InputDataConfig"]}
    assert channels["schema"]["ContentType"] == "application/json"
    assert "schema" in channels["schema"]["DataSource"]["S3DataSource"]["S3Uri"]["Get"]
    upload = next(u for u in rendered.uploads if u.key.endswith("sourcedir.tar.gz"))
    with tarfile.open(fileobj=io.BytesIO(upload.read())) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert files == {
        n: (STEP_CODE / n).read_bytes() for n in ("train.py", "inference.py", "preprocess.py", "stepkit.py")
    }


def test_a_parameterised_decision_threshold_reaches_the_model(tmp_path: Path, aws_data: Path) -> None:
    from fraudflow.plan import build_plan
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.spec.load import load_one

    text = (ROOT / "pipelines.yaml").read_text()
    text = text.replace(
        "      AucThreshold: gate.threshold",
        "      AucThreshold: gate.threshold\n      Cut: evaluate.decision_threshold",
    )
    (tmp_path / "pipelines.yaml").write_text(text)
    data = aws_data
    sets = [f"data.sources.claims={data / 'claims.csv'}", f"data.sources.customers={data / 'customers.csv'}"]
    plan = build_plan(load_one(tmp_path / "pipelines.yaml", env=None, overrides=sets, pipeline=None))
    env = _steps(compile_plan(plan).definition)["Model"]["Arguments"]["PrimaryContainer"]["Environment"]
    assert env["FRAUDFLOW_DECISION_THRESHOLD"] == {
        "Std:Join": {"On": "", "Values": [{"Get": "Parameters.Cut"}]}
    }


# -- inference.py's load errors -----------------------------------------------------------------------------
def test_model_fn_without_a_model_is_ff660(inference, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"error\[FF660\]: .*holds no model"):
        inference.model_fn(str(tmp_path))
    (tmp_path / "xgboost-model").write_text("not a model")
    with pytest.raises(RuntimeError, match=r"error\[FF660\]"):
        inference.model_fn(str(tmp_path))


def test_model_fn_with_a_broken_bundle_is_ff661(inference, tmp_path: Path) -> None:
    model = _tiny_model(tmp_path / "m")
    (model / "code").mkdir()
    (model / "code" / "preprocess.py").write_text("def transform(df, schema):\n    return df\n")
    for text in ("{oops", '{"no": "features"}'):
        (model / "code" / "feature_schema.json").write_text(text)
        with pytest.raises(RuntimeError, match=r"error\[FF661\]: .*feature_schema.json"):
            inference.model_fn(str(model))
    (model / "code" / "feature_schema.json").write_text('{"features": ["a", "b", "c"]}')
    (model / "code" / "preprocess.py").write_text("import not_a_module_anywhere\n")
    with pytest.raises(RuntimeError, match=r"error\[FF661\]: .*preprocess.py: preprocess.py does not import"):
        inference.model_fn(str(model))


def test_a_model_without_a_bundle_serves_rows_and_refuses_records(
    inference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAUDFLOW_DECISION_THRESHOLD", "0.5")
    model = inference.model_fn(str(_tiny_model(tmp_path / "m")))
    ok = inference.output_fn(inference.predict_fn(inference.input_fn("1,2,3\n", "text/csv"), model), "*/*")
    assert ok[1] == "text/csv" and 0 <= float(ok[0]) <= 1
    inv = inference.predict_fn(inference.input_fn('{"records": [{"a": 1}]}', "application/json"), model)
    with pytest.raises(inference.BadRequest) as err:
        inference.output_fn(inv, "application/json")
    assert (err.value.status, err.value.code) == (400, "RecordsUnsupported")


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan", "half"])
def test_a_bad_threshold_is_ff662(inference, tmp_path: Path, monkeypatch, value: str) -> None:
    monkeypatch.setenv("FRAUDFLOW_DECISION_THRESHOLD", value)
    with pytest.raises(RuntimeError, match=r"error\[FF662\]: FRAUDFLOW_DECISION_THRESHOLD"):
        inference.model_fn(str(_tiny_model(tmp_path / "m")))


@pytest.mark.parametrize("value", [None, "", " "])
def test_an_unset_threshold_is_ff662_not_a_second_default(
    inference, tmp_path: Path, monkeypatch, value
) -> None:
    """The schema holds the one default (0.5) and render always sets the variable: unset is a deployment error."""
    if value is None:
        monkeypatch.delenv("FRAUDFLOW_DECISION_THRESHOLD", raising=False)
    else:
        monkeypatch.setenv("FRAUDFLOW_DECISION_THRESHOLD", value)
    with pytest.raises(RuntimeError, match=r"error\[FF662\]: FRAUDFLOW_DECISION_THRESHOLD is not set"):
        inference.model_fn(str(_tiny_model(tmp_path / "m")))


def test_the_threshold_sets_the_decisions(inference, tmp_path: Path, monkeypatch) -> None:
    folder = _tiny_model(tmp_path / "m")
    (folder / "code").mkdir()
    (folder / "code" / "feature_schema.json").write_text('{"features": ["a", "b", "c"]}')
    (folder / "code" / "preprocess.py").write_text(
        "import pandas as pd\ndef transform(df, schema):\n    return df.reindex(columns=schema['features'])\n"
    )
    body = json.dumps({"records": [{"a": v, "b": 0, "c": 0} for v in (-2.0, 0.0, 2.0)]})
    for cut in ("0", "1"):
        monkeypatch.setenv("FRAUDFLOW_DECISION_THRESHOLD", cut)
        model = inference.model_fn(str(folder))
        out, _ = inference.output_fn(
            inference.predict_fn(inference.input_fn(body, "application/json"), model), "*/*"
        )
        doc = json.loads(out)
        assert doc["decision_threshold"] == float(cut)
        assert {p["decision"] for p in doc["predictions"]} == ({1} if cut == "0" else {0})


def test_inference_script_imports_the_shared_helpers_and_no_fraudflow() -> None:
    import ast

    tree = ast.parse((STEP_CODE / "inference.py").read_text(), feature_version=(3, 8))  # the image's Python
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    # the serving stack's own packages are imported only to answer a 4xx through it (see reject)
    assert imported <= {"__future__", "collections", "hashlib", "importlib", "json", "math", "os", "pathlib",
                        "sys", "types", "typing", "numpy", "pandas", "xgboost", "flask", "sagemaker_inference",
                        "stepkit"}  # fmt: skip
    assert "stepkit" in imported  # its StepError is the steps' one (shipped beside it in code/)


def test_train_packs_exactly_what_the_plan_ships_beside_it() -> None:
    """train.py cannot import fraudflow, so it names the serving files itself: the same as the plan's (which
    render tars into the sourcedir and the local runner's cache digests)."""
    from fraudflow.plan import SERVING_CODE

    assert load_step("train").SERVING_CODE == SERVING_CODE
