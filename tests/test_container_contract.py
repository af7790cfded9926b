"""The definition `fraudflow apply` stores, executed step by step under SageMaker's container contracts
(tests/sagemaker_harness.py), compared with `fraudflow run` on the same data: AUC, bias metrics, SHAP values.

Against moto's server, offline, without Docker. Each job gets a private /opt/ml (a mount namespace).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.register_assert_rewrite("tests.conftest_aws", "tests.sagemaker_harness")
from tests import sagemaker_harness as h  # noqa: E402
from tests._steps_util import load_step  # noqa: E402
from tests.conftest_aws import BUCKET, ROOT, Aws, cli  # noqa: E402
from tests.test_serve import Server, call  # noqa: E402

pytest_plugins = ["tests.conftest_aws"]
pytestmark = pytest.mark.aws

PIPELINE = "fraud-detect-xgb"
TOL = 1e-6


@pytest.fixture(scope="module")
def namespaces() -> None:
    problem = h.namespace_problem()
    if problem and os.environ.get("CI"):  # CI runs as root: the proof of the SageMaker backend must not skip
        pytest.fail(f"the container harness {problem}")
    if problem:
        pytest.skip(f"the container harness {problem}")


def emulate(yaml_file: Path, aws: Aws, tmp: Path, **params: object) -> h.PipelineEmulator:
    applied = cli("apply", str(yaml_file), "--yes", env=aws.env)
    assert applied.returncode == 0, applied.stderr
    emu = h.PipelineEmulator(aws, PIPELINE, tmp / "emulated", params)
    emu.run()
    return emu


def local_run(yaml_file: Path) -> Path:
    """`fraudflow run` on the same YAML (its workspace is the YAML's folder)."""
    proc = cli("run", str(yaml_file), cwd=yaml_file.parent, env=dict(os.environ))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\] train .* \d+ trees", proc.stdout), proc.stdout  # read from train/output/data
    return yaml_file.parent / ".fraudflow" / "runs" / "latest"


def tree_state(root: Path) -> list[str]:
    """Every path below `root` (empty if `root` does not exist). Paths, not mtimes: on a shared machine another
    process may rewrite a file that is already there; what a leaking job would add is new paths."""
    if not root.exists():
        return []
    return sorted(str(p) for p in [root, *root.rglob("*")])


def s3_json(aws: Aws, uri: str) -> dict:
    return json.loads(h.get_object(aws.client("s3"), uri))


# ------------------------------------------------------------------------------------- the whole pipeline


@pytest.mark.slow
def test_emulated_sagemaker_execution_equals_the_local_run(
    namespaces: None, yaml_file: Path, aws: Aws, tmp_path: Path
) -> None:
    opt_ml_before = tree_state(Path("/opt/ml"))
    emu = emulate(yaml_file, aws, tmp_path)
    ex = emu.execution
    assert ex.status == "Succeeded", ex.failure
    assert [s.name for s in ex.steps] == [
        "Preprocess",
        "Train",
        "Evaluate",
        "CheckMetric",
        "CreateModel-CreateModel",
        "BiasCheck",
        "ExplainabilityCheck",
        "RegisterModel-RegisterModel",
        "Deploy",
    ]
    assert tree_state(Path("/opt/ml")) == opt_ml_before  # the jobs' /opt/ml was private to them
    run = local_run(yaml_file)

    # Training ran as the toolkit launches it: sorted `--key value`, no sagemaker_* keys, SM_* variables
    train = ex.step("Train").detail
    argv = train["argv"]
    assert argv[:2] == ["-m", "train"]
    keys = argv[2::2]
    assert keys == sorted(keys) and not any(k.startswith("--sagemaker_") for k in keys)
    assert argv[argv.index("--objective") + 1] == "binary:logistic"  # JSON-decoded, not '"binary:logistic"'
    assert train["env"]["SM_OUTPUT_DATA_DIR"] == "/opt/ml/output/data"
    s3 = aws.client("s3")
    with tarfile.open(fileobj=io.BytesIO(h.get_object(s3, train["output_uri"]))) as tar:
        assert "training.json" in tar.getnames()  # the report travels in output.tar.gz, not in the model
    # the `schema` channel was downloaded, and train.py packed the serving bundle into model.tar.gz with it
    assert json.loads(train["env"]["SM_CHANNELS"]) == ["schema", "train", "validation"]
    channel_schema = (train["ml_root"] / "input/data/schema/feature_schema.json").read_bytes()
    preprocess_schema = emu.ctx.get(
        "Steps.Preprocess.ProcessingOutputConfig.Outputs['schema'].S3Output.S3Uri"
    )
    assert channel_schema == h.get_object(s3, preprocess_schema + "/feature_schema.json")
    with tarfile.open(fileobj=io.BytesIO(h.get_object(s3, train["model_uri"]))) as tar:
        packed = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    assert set(packed) == {
        "xgboost-model",
        "code/inference.py",
        "code/preprocess.py",
        "code/stepkit.py",  # the helpers inference.py and preprocess.py import: code/ is self-contained
        "code/feature_schema.json",
    }
    assert packed["code/feature_schema.json"] == channel_schema
    for name in ("inference.py", "preprocess.py", "stepkit.py"):
        assert packed[f"code/{name}"] == (ROOT / "step_code" / name).read_bytes()

    # AUC: the Evaluate step's evaluation.json on S3 vs the local run's
    evaluate_out = emu.ctx.get("Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri")
    cloud = s3_json(aws, evaluate_out + "/evaluation.json")["classification_metrics"]
    local = json.loads((run / "evaluate/output/evaluation/evaluation.json").read_text())[
        "classification_metrics"
    ]
    assert abs(cloud["roc_auc"]["value"] - local["roc_auc"]["value"]) <= TOL
    assert cloud == local  # every metric, CI included

    # The shadow endpoint (the Model step's container on model.tar.gz) scores as the local evaluate did
    bias = emu.clarify["BiasCheck"]
    local_pred = pd.read_csv(run / "evaluate/output/evaluation/predictions.csv")
    score_col = [c for c in local_pred.columns if c not in ("label", "fraud")][-1]
    assert bias["dataset"].endswith("/baseline/test_with_header.csv")
    assert (
        bias["mode"] == emu.clarify["ExplainabilityCheck"]["mode"] == "script"
    )  # inference.py: CSV rows in, one score per line out
    assert np.max(np.abs(bias["scores"] - local_pred[score_col].to_numpy())) <= TOL

    # Bias: every post-training metric equal (the same rows on both backends)
    analysis = json.loads((run / "bias/output/analysis/analysis.json").read_text())
    facet = analysis["post_training_bias_metrics"]["facets"]["customer_gender_female"][0]
    local_bias = {m["name"]: m["value"] for m in facet["metrics"]}
    cloud_bias = bias["post_training_bias"]
    assert set(cloud_bias) == set(local_bias)
    for name, value in cloud_bias.items():
        if value is None or not np.isfinite(value):
            assert local_bias[name] is None, name
        else:
            assert abs(value - local_bias[name]) <= TOL, (name, value, local_bias[name])

    # SHAP: the served booster's exact contributions vs the local explain step's, row by row
    explain = emu.clarify["ExplainabilityCheck"]
    local_shap = pd.read_csv(run / "explain/output/analysis/shap_values.csv")
    assert list(local_shap.columns) == [*explain["features"], "bias"]
    assert np.max(np.abs(explain["shap"] - local_shap.to_numpy())) <= TOL
    finite = [n for n, v in cloud_bias.items() if v is not None and np.isfinite(v)]
    print(  # the numbers docs/sagemaker.md reports (pytest -s shows them)
        f"AUC local {local['roc_auc']['value']!r} emulated {cloud['roc_auc']['value']!r}; "
        f"max |diff| scores {np.max(np.abs(bias['scores'] - local_pred[score_col].to_numpy())):.3g}, "
        f"bias {max(abs(cloud_bias[n] - local_bias[n]) for n in finite):.3g}, "
        f"SHAP {np.max(np.abs(explain['shap'] - local_shap.to_numpy())):.3g}"
    )
    margin = np.log(explain["scores"] / (1 - explain["scores"]))
    assert np.max(np.abs(explain["shap"].sum(axis=1) - margin)) <= 1e-4  # they explain what is served

    # The endpoint the Lambda made: each variant's model package -> model.tar.gz -> the script-mode container,
    # asked what `fraudflow serve` (on the model the local run registered) is asked, over HTTP
    endpoint = ex.step("Deploy").detail["event"]["endpoint_name"]
    served = emu.served_endpoint(endpoint, tmp_path / "endpoint")
    assert served
    records = raw_test_records(emu, label=bias["config"]["label"])
    rows = pd.read_csv(io.BytesIO(h.get_object(s3, bias["dataset"]))).drop(columns=[bias["config"]["label"]])
    server = Server(yaml_file.parent)
    try:
        for variant, model in served.items():
            assert model.mode == "script", variant
            got = compare_with_fraudflow_serve(model, server.url, records, encoded_csv(rows))
            print(
                f"endpoint variant {variant}: max |diff| raw records {got['records']:.3g}, csv {got['csv']:.3g}"
            )
            # records Preprocess split and encoded: the endpoint encodes them as Preprocess did
            untouched = got["probabilities"][len(EDGES) :]
            assert np.max(np.abs(untouched - bias["scores"][len(EDGES) :])) <= TOL
            assert np.max(np.abs(h.predict_probabilities(model, rows) - bias["scores"])) <= TOL
    finally:
        server.stop()


# What a client may send that the encoding must agree on: a missing field, an unknown category, a null, a
# number as text (applied to the first records; the rest are the test split's rows as they are)
EDGES = [
    lambda r: {k: v for k, v in r.items() if k != "customer_age"},
    lambda r: {**r, "collision_type": "Hovercraft"},
    lambda r: {**r, "incident_type": None},
    lambda r: {**r, "police_report_available": "Maybe"},
    lambda r: {**r, "customer_age": str(r["customer_age"])},
]


def raw_test_records(emu: h.PipelineEmulator, label: str) -> list[dict]:
    """The test split's rows before encoding: Preprocess's own split of its job's inputs and config."""
    pre = load_step("preprocess")
    inputs = emu.execution.step("Preprocess").detail["ml_root"] / "processing" / "input"
    config = json.loads((inputs / "config" / "config.json").read_text())
    joined, _ = pre.load_joined(config, inputs)
    _, _, test = pre.split_frame(joined, config)
    records = json.loads(test.drop(columns=[label]).to_json(orient="records"))
    return [edge(r) for edge, r in zip(EDGES, records, strict=False)] + records[len(EDGES) :]


def encoded_csv(rows: pd.DataFrame) -> bytes:
    """Header-less encoded rows (what Clarify sends), the first with an empty field (missing)."""
    lines = rows.to_csv(header=False, index=False, lineterminator="\n").splitlines()
    lines[0] = ",".join(["", *lines[0].split(",")[1:]])
    return ("\n".join(lines) + "\n").encode()


def compare_with_fraudflow_serve(
    model: h.ServedModel, url: str, records: list[dict], csv_rows: bytes
) -> dict[str, object]:
    """The same requests to the emulated container and to `fraudflow serve`: same status, type, decisions and
    threshold; probabilities/scores within 1e-6. Returns the max |diff| of each and the endpoint's answers."""
    body = json.dumps({"records": records}).encode()
    local, cloud = (
        call(url + "/invocations", body, "application/json"),
        model.request(body, "application/json"),
    )
    assert local[0] == cloud.status == 200, (local[:1], cloud.body[:300])
    assert local[1]["Content-Type"].split(";")[0] == cloud.content_type == "application/json"
    lj, cj = json.loads(local[2]), json.loads(cloud.body)
    assert set(lj) - {"variant", "model"} == set(cj)  # variant/model: fraudflow serve's extras
    assert lj["decision_threshold"] == cj["decision_threshold"]
    assert [p["decision"] for p in lj["predictions"]] == [p["decision"] for p in cj["predictions"]]
    lp, cp = (np.array([p["probability"] for p in j["predictions"]]) for j in (lj, cj))
    assert len(cp) == len(records)
    local_csv = call(url + "/invocations", csv_rows, "text/csv", headers={"Accept": "text/csv"})
    cloud_csv = model.request(csv_rows, "text/csv", "text/csv")
    assert local_csv[0] == cloud_csv.status == 200
    assert cloud_csv.content_type == "text/csv"
    ls, cs = (np.array([float(v) for v in b.decode().split()]) for b in (local_csv[2], cloud_csv.body))
    assert len(cs) == csv_rows.count(b"\n")
    out = {
        "records": float(np.max(np.abs(lp - cp))),
        "csv": float(np.max(np.abs(ls - cs))),
        "probabilities": cp,
    }
    assert out["records"] <= TOL and out["csv"] <= TOL, out
    return out


@pytest.mark.slow
def test_gate_below_threshold_fails_the_execution_with_the_metric(
    namespaces: None, yaml_file: Path, aws: Aws, tmp_path: Path
) -> None:
    emu = emulate(yaml_file, aws, tmp_path, AucThreshold=0.999)
    ex = emu.execution
    assert ex.status == "Failed"
    assert [s.name for s in ex.steps][-2:] == ["CheckMetric", "GateFailed"]
    assert ex.step("CheckMetric").detail["outcome"] is False
    auc = ex.step("CheckMetric").detail["compared"][0][0]
    assert ex.failure == f"GateFailed: roc_auc {auc} is below the threshold 0.999"
    assert (
        aws.client("sagemaker").list_model_packages(ModelPackageGroupName="fraud-detect-xgb")[
            "ModelPackageSummaryList"
        ]
        == []
    )


# ------------------------------------------------------------------------- the contracts, one by one (fast)


def _model_tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def _booster_bytes(seed: int = 0) -> bytes:
    import xgboost as xgb

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 4))
    y = (x[:, 0] + rng.normal(size=200) > 0).astype(float)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2}, xgb.DMatrix(x, label=y), 5)
    return bytes(booster.save_raw("json"))


class FakeS3:
    def __init__(self, objects: dict[str, bytes]):
        self.objects = objects

    def get_object(self, Bucket: str, Key: str) -> dict:  # noqa: N803 - boto3's names
        return {"Body": io.BytesIO(self.objects[f"s3://{Bucket}/{Key}"])}


@pytest.mark.parametrize(
    "extra",
    [
        {"training.json": b'{"rounds_trained": 5}'},
        {"model.json": b"{}"},
        {"notes.txt": b"hello"},
    ],
)
def test_default_serving_loads_every_file_of_the_model_folder(tmp_path: Path, extra: dict) -> None:
    """The XGBoost container (ensemble on by default) fails on any file that is not a model."""
    s3 = FakeS3({"s3://b/m.tar.gz": _model_tar({"xgboost-model": _booster_bytes(), **extra})})
    with pytest.raises(h.HarnessError, match="cannot be loaded"):
        h.ServedModel.load(s3, {"ModelDataUrl": "s3://b/m.tar.gz"}, tmp_path / "a")


def test_with_ensemble_off_the_container_loads_one_file(tmp_path: Path) -> None:
    import xgboost as xgb

    s3 = FakeS3({"s3://b/m.tar.gz": _model_tar({"a": _booster_bytes(0), "b": _booster_bytes(1)})})
    env = {"SAGEMAKER_INFERENCE_ENSEMBLE": "false"}
    served = h.ServedModel.load(s3, {"ModelDataUrl": "s3://b/m.tar.gz", "Environment": env}, tmp_path)
    assert isinstance(served.model, xgb.Booster)


def test_default_serving_averages_an_ensemble_and_skips_dotfiles(tmp_path: Path) -> None:
    import xgboost as xgb

    one, two = _booster_bytes(0), _booster_bytes(1)
    s3 = FakeS3({"s3://b/m.tar.gz": _model_tar({"a": one, "b": two, ".hidden": b"junk"})})
    served = h.ServedModel.load(s3, {"ModelDataUrl": "s3://b/m.tar.gz"}, tmp_path)
    rows = pd.DataFrame(np.random.default_rng(2).normal(size=(7, 4)))
    got = h.predict_probabilities(served, rows)
    boosters = []
    for raw in (one, two):
        b = xgb.Booster()
        b.load_model(bytearray(raw))
        boosters.append(b.predict(xgb.DMatrix(rows.to_numpy())))
    np.testing.assert_allclose(got, np.mean(boosters, axis=0), atol=1e-7)
    # a pickled booster loads too (the container tries pickle first)
    s3.objects["s3://b/p.tar.gz"] = _model_tar({"xgboost-model": pickle.dumps(served.model[0])})
    assert h.ServedModel.load(s3, {"ModelDataUrl": "s3://b/p.tar.gz"}, tmp_path / "p").mode == "default"


INFERENCE = b"""
import json, os
import numpy as np
import xgboost as xgb

def model_fn(model_dir):
    b = xgb.Booster()
    b.load_model(os.path.join(model_dir, "xgboost-model"))
    return {"booster": b, "scale": float(os.environ.get("SCALE", "1"))}

def input_fn(body, content_type):  # the container's Flask view hands a text/csv body over as str
    assert content_type == "text/csv" and isinstance(body, str)
    return xgb.DMatrix(np.loadtxt(body.splitlines(), delimiter=",", ndmin=2))

def predict_fn(data, model):
    return model["booster"].predict(data) * model["scale"]

def output_fn(prediction, accept):
    return "\\n".join(str(float(p)) for p in prediction), accept
"""


@pytest.mark.parametrize("where", ["model", "s3"])
def test_script_mode_serving_calls_the_user_handlers(tmp_path: Path, where: str) -> None:
    booster = _booster_bytes()
    files = {"xgboost-model": booster, "code/inference.py": INFERENCE, ".keep": b""}
    objects = {"s3://b/m.tar.gz": _model_tar(files)}
    submit = "/opt/ml/model/code"
    if where == "s3":
        objects["s3://b/src.tar.gz"] = _model_tar({"inference.py": INFERENCE})
        submit = "s3://b/src.tar.gz"
    env = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": submit, "SCALE": "0.5"}
    served = h.ServedModel.load(
        FakeS3(objects), {"ModelDataUrl": "s3://b/m.tar.gz", "Environment": env}, tmp_path
    )
    assert served.mode == "script" and len(served.boosters()) == 1
    rows = pd.DataFrame(np.random.default_rng(3).normal(size=(5, 4)))
    got = h.predict_probabilities(served, rows)
    plain = h.ServedModel.load(
        FakeS3({"s3://b/x.tar.gz": _model_tar({"xgboost-model": booster})}),
        {"ModelDataUrl": "s3://b/x.tar.gz"},
        tmp_path / "plain",
    )
    np.testing.assert_allclose(got, 0.5 * h.predict_probabilities(plain, rows), rtol=1e-6)


def test_script_mode_without_the_program_is_an_import_error(tmp_path: Path) -> None:
    s3 = FakeS3({"s3://b/m.tar.gz": _model_tar({"xgboost-model": _booster_bytes()})})
    env = {"SAGEMAKER_PROGRAM": "inference.py"}  # default submit dir /opt/ml/code: nothing there
    with pytest.raises(h.HarnessError, match="no inference.py"):
        h.ServedModel.load(s3, {"ModelDataUrl": "s3://b/m.tar.gz", "Environment": env}, tmp_path)


def test_hyperparameters_become_sorted_arguments_as_the_toolkit_passes_them() -> None:
    raw = {
        "max_depth": "3",
        "objective": '"binary:logistic"',
        "eta": "0.2",
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": '"s3://b/k/sourcedir.tar.gz"',
        "plain": "not json",
        "m": '{"b": 2, "a": 1}',
    }
    hps = h.decode_hyperparameters(raw)
    user = {k: v for k, v in hps.items() if not k.startswith("sagemaker_")}
    assert h.to_cmd_args(user) == [
        "--eta", "0.2", "-m", "a=1,b=2", "--max_depth", "3", "--objective", "binary:logistic", "--plain",
        "not json",
    ]  # fmt: skip
    env = h.training_env(["validation", "train"], user, "train", "s3://b/k/sourcedir.tar.gz")
    assert env["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train"
    assert json.loads(env["SM_CHANNELS"]) == ["train", "validation"]
    assert json.loads(env["SM_HOSTS"]) == ["algo-1"] and env["SM_CURRENT_HOST"] == "algo-1"


def test_references_resolve_as_sagemaker_does() -> None:
    ctx = h.Context({"T": 0.7, "N": 3}, "exec1")
    ctx.properties["Evaluate"] = {
        "ProcessingOutputConfig": {
            "Outputs": [{"OutputName": "evaluation", "S3Output": {"S3Uri": "s3://b/e"}}]
        },
        "PropertyFiles": {"Report": {"metrics": {"auc": {"value": 0.81}}, "list": [{"v": 1}]}},
    }
    join = {
        "Std:Join": {
            "On": "/",
            "Values": ["s3:/", "b", {"Get": "Execution.PipelineExecutionId"}, {"Get": "Parameters.N"}],
        }
    }
    assert ctx.resolve(join) == "s3://b/exec1/3"
    uri = {"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"}
    assert ctx.resolve(uri) == "s3://b/e"
    jg = {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Report"},
            "Path": "metrics.auc.value",
        }
    }
    assert ctx.resolve(jg) == 0.81
    jg["Std:JsonGet"]["Path"] = "list[0].v"
    assert ctx.resolve(jg) == 1
    with pytest.raises(h.HarnessError, match="has not run"):
        ctx.resolve({"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"})


def test_rendered_clarify_configs_match_the_sdk_schema(yaml_file: Path) -> None:
    from fraudflow.plan import build_plan
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.spec.load import load_one

    rendered = compile_plan(build_plan(load_one(yaml_file, env=None, overrides=[], pipeline=None)))
    jobs = [json.loads(u.read()) for u in rendered.uploads if u.what.endswith("Clarify config")]
    assert len(jobs) == 2
    shap = next(j for j in jobs if "shap" in j["methods"])["methods"]["shap"]
    assert shap["use_logit"] is True  # Clarify explains the margin, in log-odds like the local TreeSHAP
    for job in jobs:
        h.validate_analysis_config(job)
    broken = {**jobs[0], "dataset_type": "text/tab-separated-values"}
    with pytest.raises(h.HarnessError, match="SDK's schema"):
        h.validate_analysis_config(broken)


def test_clarify_checks_read_the_split_the_local_steps_read(yaml_file: Path) -> None:
    """Local bias (post-training) and explain use the test split: so must both ClarifyChecks."""
    from fraudflow.plan import build_plan
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.spec.load import load_one

    rendered = compile_plan(build_plan(load_one(yaml_file, env=None, overrides=[], pipeline=None)))
    condition = next(s for s in rendered.definition["Steps"] if s["Type"] == "Condition")
    checks = [s for s in condition["Arguments"]["IfSteps"] if s["Type"] == "ClarifyCheck"]
    assert len(checks) == 2
    for check in checks:
        dataset = next(i for i in check["Arguments"]["ProcessingInputs"] if i["InputName"] == "dataset")
        assert dataset["S3Input"]["S3Uri"]["Std:Join"]["Values"][-1] == "test_with_header.csv", check["Name"]


def test_s3_prefix_inputs_download_below_their_prefix(tmp_path: Path, aws: Aws) -> None:
    """An S3Prefix input lands at its key's path below the prefix (an exact key: at its file name)."""
    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key="p/out/train/train.csv", Body=b"1,2\n")
    s3.put_object(Bucket=BUCKET, Key="p/conf/config.json", Body=b"{}")
    dest = tmp_path / "dl"
    got = h.download_prefix(s3, f"s3://{BUCKET}/p/out/train", dest)
    assert got == [dest / "train.csv"]
    assert h.download_prefix(s3, f"s3://{BUCKET}/p/conf/config.json", dest / "c") == [dest / "c/config.json"]
    with pytest.raises(h.HarnessError, match="no S3 object"):
        h.download_prefix(s3, f"s3://{BUCKET}/nothing", dest)
