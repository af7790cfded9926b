"""`fraudflow serve` end to end: a real XGBoost model trained on the AWS claims data, registered with the
Registry API, served by the real server in a subprocess on a free loopback port, called over HTTP and with
boto3's sagemaker-runtime client."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fraudflow.local.registry import Registry, VariantSpec
from fraudflow.local.serving.model import PROJECT_PREPROCESS, load_preprocess
from fraudflow.spec.load import load_one
from tests.conftest import AWS_DATA

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("aws_data")  # skips, saying where it looked, without the data


def spec_config() -> dict:
    """The repository's pipeline as fraudflow reads it (YAML 1.2, templates and schema defaults applied)."""
    spec = load_one(REPO / "pipelines.yaml", env=None, overrides=[], pipeline="fraud-detect-xgb")
    return {k: spec.config[k] for k in ("data", "features", "split", "evaluate")}


def joined() -> pd.DataFrame:
    claims = pd.read_csv(AWS_DATA / "claims.csv")
    customers = pd.read_csv(AWS_DATA / "customers.csv")
    return claims.merge(customers, on="policy_id", how="left")


def train_and_register(
    workspace: Path,
    *,
    rounds: int = 30,
    depth: int = 3,
    seed: int = 0,
    endpoint: str | None = "fraud-detect-xgb",
):
    """Train on the AWS data with the pipeline's encoding, register, optionally deploy. Returns a dict of
    everything a test compares against."""
    import xgboost as xgb

    tmp = workspace / f"build-{rounds}-{depth}-{seed}"
    tmp.mkdir(parents=True)
    mod, code = load_preprocess(PROJECT_PREPROCESS), PROJECT_PREPROCESS
    cfg = spec_config()
    df = joined()
    schema = mod.fit(df, cfg)
    x = mod.transform(df, schema).to_numpy(dtype=np.float64)
    y = df["fraud"].to_numpy()
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": depth, "eta": 0.2, "seed": seed, "subsample": 0.8},
        xgb.DMatrix(x, label=y),
        num_boost_round=rounds,
    )
    model_dir = tmp / "model"
    model_dir.mkdir()
    booster.save_model(model_dir / "model.json")
    booster.save_model(model_dir / "xgboost-model.ubj")
    (model_dir / "xgboost-model.ubj").rename(model_dir / "xgboost-model")
    (tmp / "feature_schema.json").write_text(json.dumps(schema))
    metrics = {"classification_metrics": {"roc_auc": {"value": 0.81}}, "decision_threshold": 0.5}
    reg = Registry(workspace / ".fraudflow")
    mv = reg.register(
        "fraud-detect-xgb",
        model_dir=model_dir,
        feature_schema=tmp / "feature_schema.json",
        metrics=metrics,
        bias=None,
        explainability=None,
        baselines=None,
        approval_status="PendingManualApproval",
        pipeline="fraud-detect-xgb",
        run_id=f"test-{rounds}-{seed}",
        preprocess_code=code,
    )
    if endpoint:
        reg.deploy(endpoint, [VariantSpec("AllTraffic", mv.group, mv.version, 1.0)])
    reg.close()
    return {"version": mv.version, "booster": booster, "x": x, "df": df, "schema": schema, "module": mod}


class Server:
    """`fraudflow serve` in a subprocess on a free port (--port 0); collects its log lines."""

    def __init__(self, workspace: Path, *extra: str):
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fraudflow",
                "serve",
                "--workspace",
                str(workspace),
                "--port",
                "0",
                *extra,
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            cwd=REPO,
        )
        self.lines: list[str] = []
        self.url = None
        deadline = time.monotonic() + 60
        while self.url is None:
            line = self.proc.stderr.readline()
            if not line:
                raise RuntimeError(f"server exited: {self.proc.wait()}: {''.join(self.lines)}")
            self.lines.append(line)
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                self.url = m.group(1)
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
        threading.Thread(target=self._drain, daemon=True).start()
        for _ in range(600):  # workers may still be importing xgboost
            try:
                if call(self.url + "/ping", method="GET")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)

    def access_log(self) -> list[dict]:
        out = []
        for ln in self.lines:
            if ln.startswith("{"):
                rec = json.loads(ln)
                if "status" in rec:
                    out.append(rec)
        return out

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def call(url: str, body: bytes | None = None, ctype: str | None = None, method: str = "POST", headers=None):
    req = urllib.request.Request(url, data=body, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def runtime_client(url: str, **config: Any) -> Any:
    """boto3's sagemaker-runtime client pointed at a `fraudflow serve` (`config`: botocore Config options)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(**config),
    )


def csv_of(rows: np.ndarray) -> bytes:
    return "".join(",".join(repr(float(v)) for v in r) + "\n" for r in rows).encode()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    ws = tmp_path_factory.mktemp("ws")
    model = train_and_register(ws)
    server = Server(ws)
    yield ws, model, server
    server.stop()


def test_csv_rows_match_in_process_predictions(served):
    _, model, server = served
    x = model["x"][:200]
    status, headers, body = call(server.url + "/invocations", csv_of(x), "text/csv")
    assert status == 200, body
    assert headers["Content-Type"] == "text/csv"
    assert headers["x-Amzn-Invoked-Production-Variant"] == "AllTraffic"
    got = np.array([float(v) for v in body.decode().split()])
    want = model["booster"].predict(__import__("xgboost").DMatrix(x))
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_json_instances_and_features_forms(served):
    _, model, server = served
    x = model["x"][:5]
    want = model["booster"].inplace_predict(x)
    for doc in ({"instances": x.tolist()}, {"instances": [{"features": r} for r in x.tolist()]}):
        status, _, body = call(server.url + "/invocations", json.dumps(doc).encode(), "application/json")
        assert status == 200, body
        out = json.loads(body)
        np.testing.assert_allclose([p["score"] for p in out["predictions"]], want, atol=1e-6)
        assert out["variant"] == "AllTraffic"
    status, _, body = call(
        server.url + "/invocations", json.dumps({"features": x[0].tolist()}).encode(), "application/json"
    )
    assert status == 200 and abs(json.loads(body)["predictions"][0]["score"] - want[0]) < 1e-6
    # CSV in, JSON out when asked
    status, headers, body = call(
        server.url + "/invocations", csv_of(x), "text/csv", headers={"Accept": "application/json"}
    )
    assert status == 200 and headers["Content-Type"] == "application/json"
    np.testing.assert_allclose([p["score"] for p in json.loads(body)["predictions"]], want, atol=1e-6)


def test_raw_records_are_encoded_like_training(served):
    _, model, server = served
    df = model["df"]
    sample = df.sample(300, random_state=1)
    # what preprocess itself turns these records into, fed to the model in-process
    want = model["booster"].inplace_predict(
        model["module"].transform(sample, model["schema"]).to_numpy(dtype=np.float64)
    )
    records = json.loads(sample.drop(columns=["fraud"]).to_json(orient="records"))
    status, headers, body = call(
        server.url + "/invocations", json.dumps({"records": records}).encode(), "application/json"
    )
    assert status == 200, body
    out = json.loads(body)
    probs = np.array([p["probability"] for p in out["predictions"]])
    np.testing.assert_allclose(probs, want, atol=1e-6)
    assert [p["decision"] for p in out["predictions"]] == [int(p >= 0.5) for p in probs]
    assert out["decision_threshold"] == 0.5 and out["model"] == f"fraud-detect-xgb:{model['version']}"


def test_boto3_sagemaker_runtime_client(served):
    from botocore.exceptions import ClientError

    _, model, server = served
    rt = runtime_client(server.url)
    x = model["x"][:3]
    resp = rt.invoke_endpoint(EndpointName="fraud-detect-xgb", ContentType="text/csv", Body=csv_of(x))
    assert resp["InvokedProductionVariant"] == "AllTraffic"
    assert resp["ContentType"] == "text/csv"
    got = [float(v) for v in resp["Body"].read().decode().split()]
    np.testing.assert_allclose(got, model["booster"].inplace_predict(x), atol=1e-6)

    with pytest.raises(ClientError) as err:
        rt.invoke_endpoint(EndpointName="nope", ContentType="text/csv", Body=csv_of(x))
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert "nope" in err.value.response["Error"]["Message"]

    with pytest.raises(ClientError) as err:  # the container's 400 arrives as SageMaker's ModelError
        rt.invoke_endpoint(EndpointName="fraud-detect-xgb", ContentType="text/csv", Body=b"1,2,3")
    e = err.value.response
    assert e["Error"]["Code"] == "ModelError" and e["OriginalStatusCode"] == 400
    assert "encoded features" in e["Error"]["Message"]


@pytest.mark.parametrize(
    ("body", "ctype", "status", "code"),
    [
        (b"", "text/csv", 400, "EmptyBody"),
        (b"1,2,3\n", "text/csv", 400, "WrongFeatureCount"),
        (b"{", "application/json", 400, "MalformedJSON"),
        (b'{"instances": [["a"]]}', "application/json", 400, "WrongFeatureCount"),
        (b'{"rows": []}', "application/json", 400, "InvalidInput"),
        (b"1,2", "application/x-www-form-urlencoded", 415, "UnsupportedMediaType"),
        (b"1,2", None, 415, "UnsupportedMediaType"),
        (json.dumps({"records": [{}] * 1001}).encode(), "application/json", 413, "TooManyRecords"),
        (b"0" * (6 * 1024 * 1024 + 1), "text/csv", 413, "PayloadTooLarge"),
        (
            json.dumps({"records": [{"customer_age": "old"}]}).encode(),
            "application/json",
            400,
            "InvalidRecords",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None,
)
def test_bad_requests_get_a_clear_4xx(served, body, ctype, status, code):
    _, _, server = served
    got, headers, out = call(server.url + "/invocations", body, ctype)
    assert got == status, out
    doc = json.loads(out)
    assert doc["code"] == code and doc["message"]


def test_non_numeric_csv_names_the_cell(served):
    _, model, server = served
    row = [repr(float(v)) for v in model["x"][0]]
    row[2] = "abc"
    status, _, out = call(server.url + "/invocations", (",".join(row) + "\n").encode(), "text/csv")
    assert status == 400
    assert json.loads(out)["message"] == "CSV row 1, column 3: 'abc' is not a number"


def test_routes_methods_and_access_log(served):
    _, _, server = served
    assert call(server.url + "/ping", method="GET")[0] == 200
    assert call(server.url + "/nowhere", method="GET")[0] == 404
    assert call(server.url + "/invocations", method="GET")[0] == 405
    time.sleep(0.2)
    log = server.access_log()
    assert {"method", "path", "status", "latency_ms", "variant", "rows"} <= set(log[-1])
    assert any(r["path"] == "/nowhere" and r["status"] == 404 for r in log)


def test_version_option_and_startup_errors(served, tmp_path):
    ws, model, _ = served
    s = Server(ws, "--version", f"fraud-detect-xgb:{model['version']}")
    try:
        status, headers, _ = call(s.url + "/invocations", csv_of(model["x"][:1]), "text/csv")
        assert status == 200 and headers["x-fraudflow-model"] == f"fraud-detect-xgb:{model['version']}"
    finally:
        s.stop()
    for args, code in (
        (["--version", "fraud-detect-xgb:99"], "FF803"),
        (["--version", "nonsense"], "FF852"),
        (["--endpoint", "other"], "FF805"),
    ):
        r = subprocess.run(
            [sys.executable, "-m", "fraudflow", "serve", "--workspace", str(ws), "--port", "0", *args],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
        )
        assert r.returncode == 1 and code in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "fraudflow", "serve", "--workspace", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert r.returncode == 1 and "FF851" in r.stderr


@pytest.mark.slow
def test_variants_split_by_weight_and_hot_switch(tmp_path):
    ws = tmp_path
    a = train_and_register(ws, rounds=20, endpoint=None)
    b = train_and_register(ws, rounds=40, seed=1, endpoint=None)
    reg = Registry(ws / ".fraudflow")
    reg.deploy(
        "fraud",
        [
            VariantSpec("Blue", "fraud-detect-xgb", a["version"], 3),
            VariantSpec("Green", "fraud-detect-xgb", b["version"], 1),
        ],
    )
    server = Server(ws)
    try:
        x = a["x"][:1]
        seen = Counter()
        expected = {"Blue": a["booster"].inplace_predict(x)[0], "Green": b["booster"].inplace_predict(x)[0]}
        for _ in range(1000):
            status, headers, body = call(server.url + "/endpoints/fraud/invocations", csv_of(x), "text/csv")
            assert status == 200
            v = headers["x-Amzn-Invoked-Production-Variant"]
            seen[v] += 1
            assert abs(float(body) - expected[v]) < 1e-6
        assert 700 <= seen["Blue"] <= 800 and seen["Blue"] + seen["Green"] == 1000

        # hot switch under concurrent load: every request succeeds, and the new model takes over
        stop = threading.Event()
        results: list[tuple[int, str]] = []

        def hammer():
            while not stop.is_set():
                s, h, _ = call(server.url + "/invocations", csv_of(x), "text/csv")
                results.append((s, h.get("x-fraudflow-model", "")))

        with ThreadPoolExecutor(4) as pool:
            futs = [pool.submit(hammer) for _ in range(4)]
            time.sleep(0.5)
            reg.deploy("fraud", [VariantSpec("AllTraffic", "fraud-detect-xgb", b["version"], 1)])

            # Green already served b before the switch: wait for the server's own switch event, not for a b
            def switched() -> bool:
                return any(
                    json.loads(ln).get("event") == "switch" for ln in list(server.lines) if ln.startswith("{")
                )

            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not switched():
                time.sleep(0.05)
            time.sleep(0.5)  # requests keep flowing after the switch
            stop.set()
            for f in futs:
                f.result()
        assert results and all(s == 200 for s, _ in results)
        assert results[-1][1] == f"fraud-detect-xgb:{b['version']}"
        assert any(json.loads(ln).get("event") == "switch" for ln in server.lines if ln.startswith("{"))

        # an endpoint that follows approvals switches when `registry approve` approves a newer version
        def served_model() -> str:
            return call(server.url + "/invocations", csv_of(x), "text/csv")[1]["x-fraudflow-model"]

        def wait_model(ref: str) -> bool:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and served_model() != ref:
                time.sleep(0.05)
            return served_model() == ref

        reg.set_status("fraud-detect-xgb", a["version"], "Approved")
        reg.deploy(
            "fraud", [VariantSpec("AllTraffic", "fraud-detect-xgb", a["version"], 1)], follow_approved=True
        )
        assert wait_model(f"fraud-detect-xgb:{a['version']}")
        from fraudflow.cli import main

        assert (
            main(["registry", "approve", "fraud-detect-xgb", str(b["version"]), "--workspace", str(ws)]) == 0
        )
        assert wait_model(f"fraud-detect-xgb:{b['version']}")
    finally:
        server.stop()
        reg.close()


def _parent_pid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no PPid for {pid}")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads /proc to find the workers' parent")
def test_two_workers_serve(served):
    """--workers 2 means two processes answer: each answer names its process (X-Fraudflow-Worker), and the
    test sees two distinct pids, both children of the `fraudflow serve` it started, both scoring correctly."""
    from concurrent.futures import ThreadPoolExecutor

    ws, model, _ = served
    s = Server(ws, "--workers", "2")
    body, expected = csv_of(model["x"][:8]), model["booster"].inplace_predict(model["x"][:8])
    answered: dict[int, int] = {}
    try:
        with ThreadPoolExecutor(8) as pool:
            for _ in range(50):  # bursts of concurrent connections until both workers have accepted some
                for status, headers, out in pool.map(
                    lambda _: call(s.url + "/invocations", body, "text/csv"), range(8)
                ):
                    assert status == 200
                    assert np.allclose([float(v) for v in out.decode().split()], expected, atol=1e-6)
                    pid = int(headers["X-Fraudflow-Worker"])
                    answered[pid] = answered.get(pid, 0) + 1
                if len(answered) == 2:
                    break
        assert len(answered) == 2, f"only worker(s) {answered} answered"
        assert {_parent_pid(pid) for pid in answered} == {s.proc.pid}, answered
    finally:
        s.stop()


@pytest.mark.slow
def test_served_raw_records_match_the_runs_own_test_predictions(tmp_path, aws_data):
    """No training/serving skew: `fraudflow run` on the AWS data, then `fraudflow serve`; the raw test-split
    records, sent as claims+customers columns, score exactly as the run's evaluate step scored them."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (tmp_path / "shared" / "data").mkdir(parents=True)  # the aws-sample environment's ../shared/data/…
    (tmp_path / "shared" / "data" / aws_data.name).symlink_to(aws_data)
    (proj / "pipelines.yaml").write_text((REPO / "pipelines.yaml").read_text())
    r = subprocess.run(
        [sys.executable, "-m", "fraudflow", "run", "--env", "aws-sample"],
        cwd=proj,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    preds = next((proj / ".fraudflow").rglob("evaluation/predictions.csv"))
    want = pd.read_csv(preds)["score"].to_numpy()

    mod = load_preprocess(PROJECT_PREPROCESS)
    cfg = spec_config()
    cfg["data"]["sources"] = {"claims": "claims.csv", "customers": "customers.csv"}
    _, _, test = mod.split_frame(joined(), cfg)
    records = json.loads(test.drop(columns=["fraud"]).to_json(orient="records"))
    server = Server(proj)
    try:
        status, _, body = call(
            server.url + "/invocations", json.dumps({"records": records}).encode(), "application/json"
        )
    finally:
        server.stop()
    assert status == 200, body
    got = np.array([p["probability"] for p in json.loads(body)["predictions"]])
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_busy_port_and_bad_workers_are_plain_errors(served, capsys):
    import socket

    from fraudflow.cli import main

    ws, _, _ = served
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = str(busy.getsockname()[1])
        assert main(["serve", "--workspace", str(ws), "--port", port]) == 1
        assert f"FF854 cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    finally:
        busy.close()
    assert main(["serve", "--workspace", str(ws), "--workers", "0"]) == 1
    assert "FF855" in capsys.readouterr().err


# -- one answer per record, located record errors, hostile JSON (issue 9, items 5, 7, 11) ---------------------


def post_json(server: Server, doc_or_body, path: str = "/invocations"):
    body = doc_or_body if isinstance(doc_or_body, bytes) else json.dumps(doc_or_body).encode()
    status, headers, out = call(server.url + path, body, "application/json")
    return status, json.loads(out)


def in_process(model: dict, frame: pd.DataFrame) -> np.ndarray:
    """The oracle: the version's preprocess.transform and booster, called directly."""
    x = model["module"].transform(frame, model["schema"]).to_numpy(dtype=np.float64)
    return model["booster"].inplace_predict(x)


def test_empty_records_each_get_the_all_missing_answer(served):
    _, model, server = served
    want = in_process(model, pd.DataFrame(index=range(3)))  # three rows, every column missing
    for path in ("/invocations", "/endpoints/fraud-detect-xgb/invocations"):
        status, out = post_json(server, {"records": [{}, {}, {}]}, path)
        assert status == 200, out
        probs = [p["probability"] for p in out["predictions"]]
        assert len(probs) == 3
        np.testing.assert_allclose(probs, want, atol=1e-6)


def test_any_accepted_records_get_one_answer_each_as_preprocess_encodes_them(served):
    """Property: records holding any subset of their columns plus any unknown keys get exactly one answer
    each, equal to preprocess.transform on the same records (unknown keys ignored, absent = missing)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    _, model, server = served
    real = json.loads(model["df"].drop(columns=["fraud"]).head(200).to_json(orient="records"))
    scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    unknown = st.dictionaries(st.text(min_size=1, max_size=12).map(lambda k: "x_" + k), scalar, max_size=5)

    @st.composite
    def record(draw) -> dict:
        base = draw(st.sampled_from(real))
        keep = draw(st.lists(st.sampled_from(sorted(base)), unique=True))
        return {**{k: base[k] for k in keep}, **draw(unknown)}

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(record(), min_size=1, max_size=12))
    def check(records: list[dict]) -> None:
        status, out = post_json(server, {"records": records})
        assert status == 200, out
        probs = [p["probability"] for p in out["predictions"]]
        assert len(probs) == len(records)
        np.testing.assert_allclose(probs, in_process(model, pd.DataFrame(records)), atol=1e-6)

    check()


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("not an object", "records[2] is 'not an object', not a JSON object"),
        ({"customer_age": [1]}, "records[2]['customer_age'] is a list of 1"),
        ({"customer_age": "old"}, "records[2] cannot be encoded: column 'customer_age' expects numbers"),
        ({"num_injuries": 10**400}, "records[2]['num_injuries']: an integer of 401 digits"),
    ],
    ids=["not-object", "list-value", "not-a-number", "huge-int"],
)
def test_a_bad_record_is_named_by_its_index_on_both_routes(served, bad, fragment):
    _, _, server = served
    records = [{}, {"customer_age": 40}, bad, {}, {"customer_age": "also bad"}]
    status, out = post_json(server, {"records": records})
    assert status == 400 and out["record"] == 2 and fragment in out["message"], out
    assert out["ff_code"] in ("FF858", "FF859")
    status, out = post_json(server, {"records": records}, "/endpoints/fraud-detect-xgb/invocations")
    assert status == 424 and out["OriginalStatusCode"] == 400 and out["record"] == 2, out
    assert fragment in out["OriginalMessage"]


@pytest.mark.parametrize(
    ("body", "code", "ff_code"),
    [
        (b"[" * 2000 + b"]" * 2000, "JSONTooDeep", "FF857"),
        (b'{"records": [' + b'{"a":' * 2000 + b"1" + b"}" * 2000 + b"]}", "JSONTooDeep", "FF857"),
        (b'{"features": [' + b"9" * 400 + b", 1" * 47 + b"]}", "NumberOutOfRange", "FF858"),
        (b'{"instances": [[-' + b"9" * 5000 + b", 1" * 47 + b"]]}", "NumberOutOfRange", "FF858"),
        (b'{"records": [{"num_injuries": ' + b"1" * 4301 + b"}]}", "NumberOutOfRange", "FF858"),
    ],
    ids=["deep-array", "deep-record", "int-400-digits", "int-5000-digits", "record-int-4301-digits"],
)
def test_deep_json_and_huge_integers_are_4xx_on_both_routes(served, body, code, ff_code):
    _, model, server = served
    assert model["x"].shape[1] == 48  # the rows above have 48 values
    status, out = post_json(server, body)
    assert (status, out["code"], out["ff_code"]) == (400, code, ff_code), out
    assert len(out["message"]) < 300
    status, out = post_json(server, body, "/endpoints/fraud-detect-xgb/invocations")
    assert (status, out["code"], out["OriginalStatusCode"], out["ff_code"]) == (424, code, 400, ff_code)


def test_unknown_keys_are_ignored_not_expanded(served):
    """1,000 records with 150 distinct unknown keys each (the 2 MB body that took 12 s and 2 GB): answered,
    one per record, as if the unknown keys were absent."""
    _, model, server = served
    base = json.loads(model["df"].drop(columns=["fraud"]).head(1000).to_json(orient="records"))
    records = [{**r, **{f"k{i}_{j}": j for j in range(150)}} for i, r in enumerate(base)]
    body = json.dumps({"records": records}).encode()
    assert len(body) > 2_000_000
    status, out = post_json(server, body)
    assert status == 200, out
    probs = [p["probability"] for p in out["predictions"]]
    np.testing.assert_allclose(probs, in_process(model, pd.DataFrame(base)), atol=1e-6)


def test_huge_numbers_in_integer_columns_are_not_wrapped(served):
    """1e300 or inf in an integer column reaches the model as itself, not as int64's wrapped minimum."""
    _, model, server = served
    records = [{"num_injuries": 1e300}, {"num_injuries": 10**300}, {"num_injuries": "1e999"}]
    status, out = post_json(server, {"records": records})
    assert status == 200, out
    frame = pd.DataFrame({"num_injuries": [1e300, 1e300, np.inf]})
    x = model["module"].transform(frame, model["schema"])
    assert x["num_injuries"].tolist() == [1e300, 1e300, np.inf]
    np.testing.assert_allclose([p["probability"] for p in out["predictions"]], in_process(model, frame))


@pytest.mark.parametrize(
    "ref", ["fraud-detect-xgb:" + "1" * 5000, "fraud-detect-xgb:" + "9" * 20, "fraud-detect-xgb:١", ":1"]
)
def test_serve_version_with_a_bad_number_is_a_short_ff852(served, capsys, ref):
    from fraudflow.cli import main

    ws, _, _ = served
    assert main(["serve", "--workspace", str(ws), "--port", "0", "--version", ref]) == 1
    err = capsys.readouterr().err
    assert "FF852" in err and len(err) < 400, err


# -- weight-0 variants, hot-switch failures, truthful approvals (issue 9, items 13 and 14) ---------------------


def test_a_weight_0_variant_gets_no_traffic_but_is_served_when_targeted(tmp_path):
    """As on SageMaker: TargetVariant reaches a variant whose weight is 0 (a shadow about to be ramped up)."""

    a = train_and_register(tmp_path, rounds=20, endpoint=None)
    b = train_and_register(tmp_path, rounds=40, seed=1, endpoint=None)
    reg = Registry(tmp_path / ".fraudflow")
    reg.deploy(
        "fraud",
        [
            VariantSpec("Live", "fraud-detect-xgb", a["version"], 1),
            VariantSpec("Shadow", "fraud-detect-xgb", b["version"], 0),
        ],
    )
    reg.close()
    x = a["x"][:1]
    server = Server(tmp_path)
    try:
        url = server.url + "/endpoints/fraud/invocations"
        untargeted = {
            call(url, csv_of(x), "text/csv")[1]["x-Amzn-Invoked-Production-Variant"] for _ in range(20)
        }
        assert untargeted == {"Live"}
        status, headers, body = call(
            url, csv_of(x), "text/csv", headers={"X-Amzn-SageMaker-Target-Variant": "Shadow"}
        )
        assert status == 200, body
        assert headers["x-Amzn-Invoked-Production-Variant"] == "Shadow"
        assert abs(float(body) - b["booster"].inplace_predict(x)[0]) < 1e-6
        rt = runtime_client(server.url)
        resp = rt.invoke_endpoint(
            EndpointName="fraud", ContentType="text/csv", Body=csv_of(x), TargetVariant="Shadow"
        )
        assert resp["InvokedProductionVariant"] == "Shadow"
        status, _, body = call(
            url, csv_of(x), "text/csv", headers={"X-Amzn-SageMaker-Target-Variant": "Nope"}
        )
        assert status == 400 and json.loads(body)["code"] == "ValidationError"
    finally:
        server.stop()


def events(server: Server, name: str) -> list[dict]:
    out = []
    for ln in list(server.lines):
        if ln.startswith("{"):
            rec = json.loads(ln)
            if rec.get("event") == name:
                out.append(rec)
    return out


def wait_for(predicate, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def served_ref(server: Server, x: np.ndarray) -> str:
    status, headers, _ = call(server.url + "/invocations", csv_of(x), "text/csv")
    assert status == 200
    return headers["x-fraudflow-model"]


@pytest.mark.slow
def test_a_damaged_snapshot_is_logged_once_and_the_old_version_keeps_serving(tmp_path):
    """Redeploying to a version whose snapshot is damaged (feature schema not JSON; preprocess code not
    Python): one switch_failed event per generation, no poll_error flood, the old version keeps answering,
    and a later good deployment still switches."""
    a = train_and_register(tmp_path, rounds=20, endpoint="fraud")
    b = train_and_register(tmp_path, rounds=25, endpoint=None)
    c = train_and_register(tmp_path, rounds=30, endpoint=None)
    reg = Registry(tmp_path / ".fraudflow")
    reg.get("fraud-detect-xgb", b["version"]).feature_schema_path.write_text("{not json")
    (reg.get("fraud-detect-xgb", c["version"]).artifact_dir / "preprocess.py").write_text("def transform(:\n")
    x = a["x"][:1]
    old = f"fraud-detect-xgb:{a['version']}"
    server = Server(tmp_path)
    try:
        for bad, gen in ((b, 2), (c, 3)):
            reg.deploy("fraud", [VariantSpec("AllTraffic", "fraud-detect-xgb", bad["version"], 1)])
            assert wait_for(
                lambda gen=gen: any(e["generation"] == gen for e in events(server, "switch_failed"))
            )
            time.sleep(4)  # four more polls: the same failure must not be logged again
            failed = [e for e in events(server, "switch_failed") if e["generation"] == gen]
            assert len(failed) == 1 and "FF856" in failed[0]["error"], failed
            assert served_ref(server, x) == old
        assert events(server, "poll_error") == []
        reg.deploy("fraud", [VariantSpec("Blue", "fraud-detect-xgb", a["version"], 1)])
        assert wait_for(lambda: len(events(server, "switch")) == 1)
        assert served_ref(server, x) == old and server.proc.poll() is None
    finally:
        server.stop()
        reg.close()


@pytest.mark.slow
def test_the_poller_survives_an_unreadable_registry_on_its_first_poll(tmp_path):
    import sqlite3

    a = train_and_register(tmp_path, rounds=20, endpoint="fraud")
    b = train_and_register(tmp_path, rounds=30, endpoint=None)
    db = tmp_path / ".fraudflow" / "registry.db"
    server = Server(tmp_path)
    try:
        with sqlite3.connect(db) as conn:  # as if a newer fraudflow had migrated it: FF808 on every open
            conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
        assert wait_for(lambda: len(events(server, "poll_error")) >= 1)
        time.sleep(3)
        assert len(events(server, "poll_error")) == 1  # once per distinct error
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
        reg = Registry(tmp_path / ".fraudflow")
        reg.deploy("fraud", [VariantSpec("AllTraffic", "fraud-detect-xgb", b["version"], 1)])
        reg.close()
        # the first retry comes after a back-off of a few seconds at most
        assert wait_for(lambda: served_ref(server, a["x"][:1]) == f"fraud-detect-xgb:{b['version']}", 30)
    finally:
        server.stop()


def test_approve_refuses_to_switch_an_endpoint_to_a_version_that_cannot_be_served(tmp_path, capsys):
    """`registry approve` on a follow-approved endpoint: a damaged version is refused (exit 1, FF811, nothing
    changes), instead of printing a switch no server can make; a sound version switches."""
    from fraudflow.cli import main

    a = train_and_register(tmp_path, rounds=20, endpoint=None)
    b = train_and_register(tmp_path, rounds=25, endpoint=None)
    c = train_and_register(tmp_path, rounds=30, endpoint=None)
    reg = Registry(tmp_path / ".fraudflow")
    reg.set_status("fraud-detect-xgb", a["version"], "Approved")
    reg.deploy(
        "fraud", [VariantSpec("AllTraffic", "fraud-detect-xgb", a["version"], 1)], follow_approved=True
    )
    reg.get("fraud-detect-xgb", b["version"]).feature_schema_path.write_text('{"features": [')
    ws = ["--workspace", str(tmp_path)]
    assert main(["registry", "approve", "fraud-detect-xgb", str(b["version"]), *ws]) == 1
    captured = capsys.readouterr()
    assert "FF811" in captured.err and "FF856" in captured.err and "nothing was changed" in captured.err
    assert "serves" not in captured.out
    assert reg.get("fraud-detect-xgb", b["version"]).status == "PendingManualApproval"
    assert reg.get_endpoint("fraud").variants[0].version == a["version"]

    assert main(["registry", "approve", "fraud-detect-xgb", str(c["version"]), *ws]) == 0
    assert f"endpoint fraud serves AllTraffic=fraud-detect-xgb:{c['version']}" in capsys.readouterr().out
    assert reg.get_endpoint("fraud").variants[0].version == c["version"]
    reg.close()
