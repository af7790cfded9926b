"""Serving parity: the model `fraudflow run` trains, packed as SageMaker packs it (model.tar.gz of the model
folder) and served by step_code/inference.py under the XGBoost 1.7-1 image's script-mode contract, answers as
`fraudflow serve` does: the same raw claim records and encoded CSV rows give the same probabilities (1e-6), the
same decisions and the same shape; client mistakes are 4xx on both.

The container is the harness's `ServedModel` (tests/sagemaker_harness.py: model.tar.gz extracted to
/opt/ml/model, SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code copied to /opt/ml/code, SAGEMAKER_PROGRAM imported
from there, handlers called in sagemaker-containers 2.8.6.post2's Flask view), the same emulation the end-to-end
harness test uses on the endpoint the deployer Lambda creates.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests import sagemaker_harness as h
from tests.conftest import ROOT, run_cli
from tests.test_serve import Server, call

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, aws_data: Path) -> dict[str, Any]:
    """`fraudflow run` on AWS's data (registers and deploys locally), the rendered model environment, the
    train step's model folder packed as model.tar.gz, and `fraudflow serve` on the run's endpoint."""
    ws = tmp_path_factory.mktemp("ws")
    shutil.copy(ROOT / "pipelines.yaml", ws / "pipelines.yaml")
    sets = ["--set", f"data.sources.claims={aws_data / 'claims.csv'}"]
    sets += ["--set", f"data.sources.customers={aws_data / 'customers.csv'}"]
    proc = run_cli("run", str(ws / "pipelines.yaml"), *sets, cwd=ws)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    render = run_cli("render", str(ws / "pipelines.yaml"), *sets, cwd=ws)
    assert render.returncode == 0, render.stderr
    model_step = next(
        s for s in json.loads(render.stdout)["Steps"][-1]["Arguments"]["IfSteps"] if s["Type"] == "Model"
    )
    env = model_step["Arguments"]["PrimaryContainer"]["Environment"]
    out = ws / ".fraudflow" / "runs" / "latest"
    model_dir = out / "train" / "output" / "model"
    # SageMaker uploads the model folder as model.tar.gz, its entries relative to the folder
    tar_path = tmp_path_factory.mktemp("s3") / "model.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            tar.add(path, arcname=path.relative_to(model_dir).as_posix(), recursive=False)
    container = h.ServedModel.from_archive(tar_path.read_bytes(), env, tmp_path_factory.mktemp("container"))
    assert container.mode == "script"
    server = Server(ws)
    yield {
        "ws": ws,
        "out": out,
        "env": env,
        "tar": tar_path,
        "container": container,
        "server": server,
        "data": aws_data,
    }
    server.stop()


def _records(data: Path, n: int, seed: int) -> list[dict]:
    claims = pd.read_csv(data / "claims.csv")
    customers = pd.read_csv(data / "customers.csv")
    df = claims.merge(customers, on="policy_id", how="left").sample(n, random_state=seed)
    df = df.drop(columns=["fraud"])
    recs = json.loads(df.to_json(orient="records"))
    # the edges the encoding must agree on: missing values, unseen categories, numbers as text, extra keys
    recs[0]["incident_type"] = None
    recs[1]["collision_type"] = "Hovercraft"
    recs[2]["police_report_available"] = "Maybe"
    recs[3] = {k: v for k, v in recs[3].items() if k != "customer_age"}
    recs[4]["customer_age"] = str(recs[4]["customer_age"])
    recs[5]["unexpected_column"] = 42
    return recs


def _test_rows(out: Path) -> bytes:
    rows = pd.read_csv(out / "preprocess" / "output" / "test" / "test.csv", header=None).iloc[:, 1:]
    text = rows.to_csv(header=False, index=False)
    lines = text.splitlines()
    lines[0] = ",".join([""] + lines[0].split(",")[1:])  # an empty field: missing, for both servers
    return ("\n".join(lines) + "\n").encode()


def test_model_tar_holds_the_model_and_its_serving_bundle(deployed: dict) -> None:
    with tarfile.open(deployed["tar"]) as tar:
        names = set(tar.getnames())
        code = {
            n: tar.extractfile(n).read() for n in names if n.startswith("code/") and tar.getmember(n).isfile()
        }  # type: ignore[union-attr]
    assert "xgboost-model" in names
    assert set(code) == {
        "code/inference.py",
        "code/preprocess.py",
        "code/stepkit.py",
        "code/feature_schema.json",
    }
    # the snapshot and schema the registry serves this version with are the ones in the model
    version = deployed["ws"] / ".fraudflow" / "registry" / "fraud-detect-xgb" / "1"
    assert code["code/feature_schema.json"] == (version / "feature_schema.json").read_bytes()
    assert code["code/preprocess.py"] == (version / "preprocess.py").read_bytes()
    assert (
        code["code/stepkit.py"] == (version / "stepkit.py").read_bytes()
    )  # the helpers it imports, beside it
    assert code["code/inference.py"] == (ROOT / "step_code" / "inference.py").read_bytes()
    assert deployed["env"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert deployed["env"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"


@pytest.mark.parametrize("accept", [None, "application/json", "text/csv"])
def test_raw_records_same_probabilities_decisions_and_shape(deployed: dict, accept: str | None) -> None:
    body = json.dumps({"records": _records(deployed["data"], 300, seed=7)}).encode()
    local = call(
        deployed["server"].url + "/invocations",
        body,
        "application/json",
        headers={"Accept": accept} if accept else None,
    )
    cloud = deployed["container"].request(body, "application/json", accept)
    assert local[0] == cloud[0] == 200, (local, cloud)
    assert local[1]["Content-Type"] == cloud[1] == (accept or "application/json")
    if cloud[1] == "text/csv":
        lp, cp = (np.loadtxt(io.BytesIO(b), delimiter=",", ndmin=2) for b in (local[2], cloud[2]))
        np.testing.assert_array_equal(lp[:, 1], cp[:, 1])
        diff = np.abs(lp[:, 0] - cp[:, 0])
    else:
        lj, cj = json.loads(local[2]), json.loads(cloud[2])
        assert set(lj) - {"variant", "model"} == set(cj)  # variant/model: fraudflow serve's extras
        assert lj["decision_threshold"] == cj["decision_threshold"] == 0.1
        assert [p["decision"] for p in lj["predictions"]] == [p["decision"] for p in cj["predictions"]]
        diff = np.abs(
            np.array([p["probability"] for p in lj["predictions"]])
            - np.array([p["probability"] for p in cj["predictions"]])
        )
    print(f"records: {len(diff)} probabilities, max |diff| {diff.max():.3g}")
    assert len(diff) == 300 and diff.max() <= 1e-6


@pytest.mark.parametrize("accept", [None, "application/json", "*/*"])
def test_encoded_csv_rows_same_scores(deployed: dict, accept: str | None) -> None:
    """What Clarify's shadow endpoint sends (header-less rows, text/csv) and reads (one score per line)."""
    body = _test_rows(deployed["out"])
    local = call(
        deployed["server"].url + "/invocations",
        body,
        "text/csv",
        headers={"Accept": accept} if accept else None,
    )
    cloud = deployed["container"].request(body, "text/csv", accept)
    assert local[0] == cloud[0] == 200, (local, cloud)
    want_type = "application/json" if accept == "application/json" else "text/csv"
    assert local[1]["Content-Type"] == cloud[1] == want_type
    if want_type == "text/csv":
        ls, cs = (np.array([float(v) for v in b.decode().split()]) for b in (local[2], cloud[2]))
    else:
        ls, cs = (np.array([p["score"] for p in json.loads(b)["predictions"]]) for b in (local[2], cloud[2]))
    diff = np.abs(ls - cs)
    print(f"csv rows: {len(diff)} scores, max |diff| {diff.max():.3g}")
    assert len(diff) == 500 and diff.max() <= 1e-6


def test_clarify_request_reads_one_score_per_row(deployed: dict) -> None:
    """Clarify's analysis config: content_type and accept_type text/csv, no `probability` key: the whole line
    is the score."""
    from fraudflow.sagemaker.clarify import predictor

    pred = predictor("ml.m5.xlarge")
    body = b"".join(_test_rows(deployed["out"]).splitlines(keepends=True)[:20])
    status, ctype, out = deployed["container"].request(body, pred["content_type"], pred["accept_type"])
    assert (status, ctype) == (200, "text/csv")
    scores = [float(line) for line in out.decode().splitlines()]
    assert len(scores) == 20 and all(0.0 <= s <= 1.0 for s in scores)


MALFORMED = [
    (b"1,2,3\n", "text/csv", None, 400, "WrongFeatureCount"),
    (b"\xff\xfe", "text/csv", None, 400, "MalformedCSV"),
    (b"", "text/csv", None, 400, "EmptyBody"),
    (b"{not json", "application/json", None, 400, "MalformedJSON"),
    (b'{"records": []}', "application/json", None, 400, "InvalidInput"),
    (b'{"records": [1, 2]}', "application/json", None, 400, "InvalidRecords"),
    (b'{"records": [{"customer_age": "old"}]}', "application/json", None, 400, "InvalidRecords"),
    (b'{"records": [{"a": [1]}]}', "application/json", None, 400, "InvalidRecords"),
    (b'{"rows": []}', "application/json", None, 400, "InvalidInput"),
    (b'{"instances": [["x"]]}', "application/json", None, 400, "WrongFeatureCount"),
    (json.dumps({"records": [{}] * 1001}).encode(), "application/json", None, 413, "TooManyRecords"),
    (b"1,2", "application/x-www-form-urlencoded", None, 415, "UnsupportedMediaType"),
    (b'{"records": [{}]}', "application/json", "image/png", 406, "NotAcceptable"),
]


@pytest.mark.parametrize(("body", "ctype", "accept", "status", "code"), MALFORMED)
def test_client_mistakes_are_the_same_4xx(deployed: dict, body, ctype, accept, status, code) -> None:  # noqa: ANN001
    local = call(
        deployed["server"].url + "/invocations", body, ctype, headers={"Accept": accept} if accept else None
    )
    cloud = deployed["container"].request(body, ctype, accept)
    assert (local[0], json.loads(local[2])["code"]) == (status, code)
    assert cloud[0] == status, cloud
    assert cloud[1] == "application/json"
    answer = json.loads(cloud[2])
    if body == b"\xff\xfe":
        # the container's Flask decodes a text/csv body before input_fn sees it, replacing bad bytes: still a
        # 400, but for the row it then reads
        assert answer["code"] == "WrongFeatureCount"
    else:
        assert answer == json.loads(local[2])  # the same code and message


def _features(n: int, first: bytes) -> bytes:
    return first + b", 1" * (n - 1)


# Issue 9's hostile bodies: (body for a model of n features, status, code, ff_code, index of the record at fault)
HOSTILE = {
    "deep-array": (lambda n: b"[" * 2000 + b"]" * 2000, 400, "JSONTooDeep", "FF857", None),
    "deep-record": (
        lambda n: b'{"records": [' + b'{"a":' * 2000 + b"1" + b"}" * 2000 + b"]}",
        400,
        "JSONTooDeep",
        "FF857",
        None,
    ),
    "int-400-digits": (
        lambda n: b'{"features": [' + _features(n, b"9" * 400) + b"]}",
        400,
        "NumberOutOfRange",
        "FF858",
        None,
    ),
    "int-5000-digits": (
        lambda n: b'{"instances": [[-' + _features(n, b"9" * 5000) + b"]]}",
        400,
        "NumberOutOfRange",
        "FF858",
        None,
    ),
    "record-int-100k-digits": (
        lambda n: b'{"records": [{}, {"num_injuries": ' + b"1" * 100_000 + b"}]}",
        400,
        "NumberOutOfRange",
        "FF858",
        1,
    ),
    "record-2-not-an-object": (
        lambda n: b'{"records": [{}, {"customer_age": 40}, "x", {"customer_age": "also bad"}]}',
        400,
        "InvalidRecords",
        "FF859",
        2,
    ),
    "record-2-list-value": (
        lambda n: b'{"records": [{}, {}, {"customer_age": [1]}, {"customer_age": {}}]}',
        400,
        "InvalidRecords",
        "FF859",
        2,
    ),
    "record-2-cannot-be-encoded": (
        lambda n: b'{"records": [{}, {"customer_age": 40}, {"customer_age": "old"}, {"customer_age": "x"}]}',
        400,
        "InvalidRecords",
        "FF859",
        2,
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
@pytest.mark.parametrize("path", ["/invocations", "/endpoints/fraud-detect-xgb/invocations"])
def test_hostile_bodies_get_the_same_located_4xx(deployed: dict, case: str, path: str) -> None:
    """Deep JSON, integers no float holds and a bad record named by its index: the SageMaker handlers answer
    with the status, code, FF code, record index and message `fraudflow serve` gives (on its runtime path
    wrapped in SageMaker's 424 ModelError, whose original status and message are the container's)."""
    make, status, code, ff_code, record = HOSTILE[case]
    body = make(deployed["container"].model.n_features)
    local_status, _, local_body = call(deployed["server"].url + path, body, "application/json")
    cloud_status, cloud_type, cloud_body = deployed["container"].request(body, "application/json")
    cloud = json.loads(cloud_body)
    assert (cloud_status, cloud_type) == (status, "application/json"), cloud
    assert (cloud["code"], cloud["ff_code"], cloud.get("record")) == (code, ff_code, record), cloud
    assert len(cloud["message"]) < 300
    local = json.loads(local_body)
    if path == "/invocations":
        assert local_status == status and local == cloud
    else:
        assert (local_status, local["OriginalStatusCode"], local["OriginalMessage"]) == (
            424,
            status,
            cloud["message"],
        )
        assert (local["code"], local["ff_code"], local.get("record")) == (code, ff_code, record)


def test_empty_and_unknown_key_records_get_one_answer_each_on_both(deployed: dict) -> None:
    """`{}` is a record with every feature missing and unknown keys are never read: n records in, n answers
    out, the same probabilities from both servers."""
    real = _records(deployed["data"], 8, seed=5)[6:]  # past the edge cases _records plants
    records = [{}, {}, {"no_such_column": 1}, real[0], {}, {f"k{i}": i for i in range(2000)}, real[1], {}]
    body = json.dumps({"records": records}).encode()
    local = call(deployed["server"].url + "/invocations", body, "application/json")
    cloud = deployed["container"].request(body, "application/json")
    assert local[0] == cloud[0] == 200, (local, cloud)
    lp, cp = ([p["probability"] for p in json.loads(b)["predictions"]] for b in (local[2], cloud[2]))
    assert len(lp) == len(cp) == len(records)
    np.testing.assert_allclose(lp, cp, atol=1e-6)
    assert lp[0] == lp[1] == lp[2] == lp[4] == lp[5] == lp[7]  # all-missing records score alike


def test_without_the_container_a_client_mistake_is_raised_not_returned(deployed: dict) -> None:
    """Called directly (no Flask request context, no inference toolkit) output_fn raises the BadRequest, so the
    status still reaches whoever calls it (e.g. the fidelity harness)."""
    mod, model = deployed["container"].handlers, deployed["container"].model
    inv = mod.predict_fn(mod.input_fn("1,2\n", "text/csv"), model)
    with pytest.raises(mod.BadRequest) as err:
        mod.output_fn(inv, "text/csv")
    assert (err.value.status, err.value.code) == (400, "WrongFeatureCount")


def test_inference_script_runs_alone_on_the_extracted_model(deployed: dict, tmp_path: Path) -> None:
    """The script imports nothing of fraudflow: a fresh interpreter with only the code folder on its path
    (as /opt/ml/code in the container) loads the model and scores a record."""
    model_dir = tmp_path / "model"
    with tarfile.open(deployed["tar"]) as tar:
        tar.extractall(model_dir, filter="data")
    probe = (
        "import json, inference as m\n"
        "import os\n"
        "model = m.model_fn(os.environ['PROBE_MODEL_DIR'])\n"
        "inv = m.predict_fn(m.input_fn(json.dumps({'records': [{'incident_type': 'Theft'}]}), 'application/json'), model)\n"
        "body, ctype = m.output_fn(inv, 'application/json')\n"
        "print(ctype, json.loads(body)['decision_threshold'], 'fraudflow' in __import__('sys').modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(deployed["env"], PROBE_MODEL_DIR=str(model_dir))
    proc = subprocess.run(
        [sys.executable, "-I", "-c", "import sys; sys.path.insert(0, '.'); exec(sys.stdin.read())"],
        input=probe,
        cwd=model_dir / "code",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["application/json", "0.1", "False"]


TOOLKIT = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fraudflow-sagemaker-inference-1.5.5"
)


def index_unreachable() -> str | None:
    """Why pip's index cannot be reached from here (offline), or None when it answers."""
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/")
    try:
        with urllib.request.urlopen(index.rstrip("/") + "/sagemaker-inference/", timeout=15):
            return None
    except (OSError, ValueError) as exc:
        return f"{index} unreachable ({exc})"


def install_toolkit() -> None:
    """The image's inference toolkit, once per cache, installed whole or not at all (a temporary folder renamed
    into place). An install that fails while the index answers is a failure of the test, not a skip."""
    if (TOOLKIT / "sagemaker_inference").is_dir():
        return
    staging = TOOLKIT.with_name(f"{TOOLKIT.name}.tmp-{os.getpid()}")
    try:
        pip = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(staging),
             "sagemaker-inference==1.5.5"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if pip.returncode == 0:
            shutil.rmtree(TOOLKIT, ignore_errors=True)  # a leftover without the package
            os.replace(staging, TOOLKIT)
            return
        offline = index_unreachable()
        if offline:
            pytest.skip(f"offline, cannot install sagemaker-inference 1.5.5: {offline}")
        pytest.fail(
            f"pip install sagemaker-inference==1.5.5 failed with the index reachable:\n{pip.stderr[-2000:]}"
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


MMS_PROBE = """
import json, sys
from sagemaker_inference import default_inference_handler
from sagemaker_inference.transformer import Transformer

class Request:  # what MMS hands the handler: request headers, response status and type setters
    def __init__(self, headers): self.headers = headers
    def get_request_properties(self): return self.headers

class Context:
    def __init__(self, model_dir, headers):
        self.system_properties = {"model_dir": model_dir}
        self.request_processor = [Request(headers)]
        self.status, self.ctype = 200, None
    def set_response_status(self, code, phrase): self.status = code
    def set_response_content_type(self, idx, ctype): self.ctype = ctype

class Handler(default_inference_handler.DefaultInferenceHandler):  # the XGBoost image's (model_fn comes first)
    def default_model_fn(self, model_dir): raise NotImplementedError

transformer = Transformer(default_inference_handler=Handler())
out = []
for body, headers in json.load(sys.stdin):
    ctx = Context(sys.argv[1], headers)
    answer = transformer.transform([{"body": body.encode("latin-1")}], ctx)[0]
    out.append([ctx.status, ctx.ctype, answer if isinstance(answer, str) else answer.decode()])
print(json.dumps(out))
"""


def test_multi_model_server_path_answers_4xx_through_the_inference_toolkit(
    deployed: dict, tmp_path: Path
) -> None:
    """Under MMS (the image's multi-model path) the inference toolkit 1.5.5 (the image's pin) runs the handlers:
    an answer on success, and a client mistake reaches the client with its 4xx status, not 500."""
    install_toolkit()
    model_dir = tmp_path / "model"
    with tarfile.open(deployed["tar"]) as tar:
        tar.extractall(model_dir, filter="data")
    requests = [
        [
            json.dumps({"records": _records(deployed["data"], 8, seed=1)}),
            {"Content-Type": "application/json"},
        ],
        ["1,2,3\n", {"Content-Type": "text/csv"}],
        ["{}", {"Content-Type": "application/json", "Accept": "image/png"}],
        ["1,2", {"Content-Type": "application/xml"}],
        ['{"records": [{}, "x"]}', {"Content-Type": "application/json"}],
    ]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(deployed["env"], PYTHONPATH=f"{TOOLKIT}{os.pathsep}{model_dir / 'code'}")
    proc = subprocess.run(
        [sys.executable, "-c", MMS_PROBE, str(model_dir)],
        input=json.dumps(requests), capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (ok, rows, accept, media, record) = json.loads(proc.stdout)
    assert ok[0] == 200 and ok[1] == "application/json"
    assert len(json.loads(ok[2])["predictions"]) == 8
    assert [r[0] for r in (rows, accept, media)] == [400, 406, 415]
    assert json.loads(rows[2].split("\n", 1)[0])["code"] == "WrongFeatureCount"
    assert record[0] == 400
    located = json.loads(record[2].split("\n", 1)[0])
    assert (located["code"], located["ff_code"], located["record"]) == ("InvalidRecords", "FF859", 1)
