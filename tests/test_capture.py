"""Data capture of `fraudflow serve`: a real server under concurrent load, restarted (gracefully, then killed),
must leave exactly one SageMaker-layout capture record per accepted request."""

from __future__ import annotations

import base64
import json
import os
import random
import re
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fraudflow.local.serving import capture as C
from tests.test_serve import Server, call, train_and_register

LAYOUT = re.compile(
    r"fraud-detect-xgb/AllTraffic/\d{4}/\d{2}/\d{2}/\d{2}/\d{2}-\d{2}-\d{3}-[0-9a-f-]{36}\.jsonl"
)


def read_captures(root: Path) -> list[tuple[str, dict]]:
    out = []
    for path in sorted(root.rglob("*.jsonl")):
        rel = path.relative_to(root).as_posix()
        for line in path.read_text().splitlines():
            out.append((rel, json.loads(line)))
    return out


def payload(i: int) -> tuple[bytes, str, dict]:
    headers = {"X-Amzn-SageMaker-Inference-Id": f"caller-{i}"} if i % 3 == 0 else {}
    if i % 2:
        body = {"records": [{"incident_type": "Collision", "vehicle_claim": 1000.0 + i}, {}]}
        return json.dumps(body).encode(), "application/json", headers
    return (
        json.dumps({"records": [{"customer_gender": "Female", "num_injuries": i % 4}]}).encode(),
        "application/json",
        headers,
    )


def hammer(server: Server, start: int, n: int) -> dict[str, tuple[bytes, bytes]]:
    """n concurrent requests; returns inference id -> (request body, response body) of each accepted one."""

    def one(i: int) -> tuple[str, bytes, bytes]:
        body, ctype, headers = payload(i)
        status, hdrs, answer = call(server.url + "/invocations", body, ctype, headers=headers)
        assert status == 200, answer
        return hdrs["X-Amzn-SageMaker-Inference-Id"], body, answer

    with ThreadPoolExecutor(16) as pool:
        done = list(pool.map(one, range(start, start + n)))
    return {iid: (body, answer) for iid, body, answer in done}


@pytest.mark.slow
def test_n_concurrent_requests_give_n_records_across_restarts(tmp_path, aws_data):
    train_and_register(tmp_path)
    root = tmp_path / "capture"
    sent: dict[str, tuple[bytes, bytes]] = {}
    server = Server(tmp_path, "--capture-dir", str(root))
    sent |= hammer(server, 0, 150)
    server.stop()  # SIGTERM: a graceful shutdown
    assert server.proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    server = Server(tmp_path, "--capture-dir", str(root), "--workers", "2")
    sent |= hammer(server, 150, 150)
    for pid in [*_children(server.proc.pid), server.proc.pid]:  # SIGKILL: no shutdown, no flush at all
        os.kill(pid, signal.SIGKILL)
    server.proc.wait(10)

    records = read_captures(root)
    assert len(sent) == 300  # caller ids kept, the others unique
    assert len(records) == 300
    assert {r["eventMetadata"]["inferenceId"] for _, r in records} == set(sent)
    assert {f"caller-{i}" for i in range(0, 300, 3)} <= set(sent)
    for rel, r in records:
        assert LAYOUT.fullmatch(rel), rel
        assert list(r) == ["captureData", "eventMetadata", "eventVersion"] and r["eventVersion"] == "0"
        inp, out = r["captureData"]["endpointInput"], r["captureData"]["endpointOutput"]
        assert (inp["mode"], inp["encoding"], out["mode"], out["encoding"]) == (
            "INPUT",
            "JSON",
            "OUTPUT",
            "JSON",
        )
        assert inp["observedContentType"] == "application/json"
        body, answer = sent[r["eventMetadata"]["inferenceId"]]
        assert inp["data"].encode() == body and out["data"].encode() == answer
        assert r["eventMetadata"]["modelVersion"] == "fraud-detect-xgb:1"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["eventMetadata"]["inferenceTime"])


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def writer(tmp_path: Path, **kw) -> C.CaptureWriter:
    return C.CaptureWriter(C.CaptureConfig(tmp_path, **kw), rng=random.Random(0))


def rec(i: int, when: float) -> dict:
    return C.record(
        inference_id=str(i),
        request_type="text/csv",
        request=b"1,2,3",
        response_type="application/octet-stream",
        response=bytes([0, 255, i % 256]),
        model="g:1",
        when=when,
    )


def test_files_rotate_by_size_time_and_hour_and_keep_every_record(tmp_path, monkeypatch):
    w = writer(tmp_path, max_bytes=2000, max_seconds=3600)
    t0 = 1_764_000_000.0  # an hour boundary is crossed below
    for i in range(40):
        w.write("ep", "v", rec(i, t0 + i * 100), t0 + i * 100)
    w.close()
    files = sorted(tmp_path.rglob("*.jsonl"))
    records = [json.loads(ln) for f in files for ln in f.read_text().splitlines()]
    assert sorted(int(r["eventMetadata"]["inferenceId"]) for r in records) == list(range(40))
    assert all(f.stat().st_size <= 2000 for f in files) and len(files) > 2
    hours = {f.parent.relative_to(tmp_path).as_posix() for f in files}
    assert len(hours) == 2  # 4,000 s of records straddle two hours: each record is under its own hour
    for f in files:
        for ln in f.read_text().splitlines():
            when = json.loads(ln)["eventMetadata"]["inferenceTime"]
            assert f.parent.relative_to(tmp_path / "ep" / "v").as_posix() == when[:13].replace(
                "-", "/"
            ).replace("T", "/")

    clock = [0.0]
    monkeypatch.setattr(C.time, "monotonic", lambda: clock[0])
    w = writer(tmp_path / "t", max_seconds=60)
    for i in range(5):
        clock[0] = i * 40.0  # a new file every 60 s: at 0, 80, 160
        w.write("ep", "v", rec(i, t0), t0)
    w.close()
    assert len(list((tmp_path / "t").rglob("*.jsonl"))) == 3


def test_binary_bodies_are_base64_and_text_is_kept_as_text():
    r = rec(7, 1_764_000_000.0)
    assert r["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": "1,2,3",
        "encoding": "CSV",
    }
    out = r["captureData"]["endpointOutput"]
    assert out["encoding"] == "BASE64" and base64.b64decode(out["data"]) == bytes([0, 255, 7])


@pytest.mark.parametrize("pct", [0, 25, 100])
def test_sampling_percentage(tmp_path, pct):
    w = writer(tmp_path, sampling_percentage=pct)
    taken = sum(w.sampled() for _ in range(4000))
    assert abs(taken - 40 * pct) <= 150 if 0 < pct < 100 else taken == 40 * pct


def test_the_yaml_capture_reaches_the_local_endpoint(tmp_path):
    deploy = {
        "endpoint_name": "ep",
        "data_capture": {"sampling_percentage": 30, "destination": "s3://b/p/dc"},
    }
    cfg = C.local_config(deploy, tmp_path / ".fraudflow", tmp_path)
    assert cfg == C.CaptureConfig(tmp_path / ".fraudflow" / "data-capture", 30.0, 16 * 2**20, 60.0)
    C.save_endpoint_config(tmp_path / ".fraudflow", "ep", cfg)
    assert C.endpoint_config(tmp_path / ".fraudflow", "ep") == cfg
    local = C.local_config({"data_capture": {"destination": "caps"}}, tmp_path / ".fraudflow", tmp_path)
    assert local is not None and local.root == tmp_path / "caps"
    assert C.local_config({"data_capture": {"enabled": False}}, tmp_path, tmp_path) is None
    C.save_endpoint_config(tmp_path / ".fraudflow", "ep", None)
    assert C.endpoint_config(tmp_path / ".fraudflow", "ep") is None


@pytest.mark.parametrize(
    ("block", "code", "exit_code"),
    [
        ("{destination: 's3://Bad_Bucket/x'}", "FF565", 1),
        ("{destination: 'https://example.com/x'}", "FF565", 1),
        ("{destination: captures}", "FF566", 0),
        ("{sampling_percentage: 0}", "FF566", 0),
        ("{sampling_percentage: 101}", "FF204", 1),
        ("{destination: 's3://good-bucket/p'}", None, 0),
    ],
)
def test_validate_checks_the_capture_section(tmp_path, block, code, exit_code):
    from tests.conftest import run_cli
    from tests.test_sagemaker_render import ROOT

    text = (ROOT / "pipelines.yaml").read_text()
    anchor = "      endpoint_name: fraud-detect-xgb\n"
    (tmp_path / "pipelines.yaml").write_text(
        text.replace(anchor, anchor + f"      data_capture: {block}\n", 1)
    )
    done = run_cli("validate", str(tmp_path / "pipelines.yaml"))
    assert done.returncode == exit_code, done.stdout + done.stderr
    shown = done.stdout + done.stderr
    if code:
        assert code in shown and "pipelines.yaml:" in shown
    else:
        assert "FF56" not in shown


@pytest.mark.slow
def test_the_yaml_section_makes_the_run_and_serve_capture(tmp_path):
    """pipelines.yaml's deploy.data_capture → `fraudflow run` records it → `fraudflow serve` captures."""
    from fraudflow.sampledata import generate
    from tests.conftest import run_cli
    from tests.test_sagemaker_render import ROOT

    text = (ROOT / "pipelines.yaml").read_text()
    anchor = "      endpoint_name: fraud-detect-xgb\n"
    block = "      data_capture: {destination: caps, sampling_percentage: 100}\n"
    (tmp_path / "pipelines.yaml").write_text(text.replace(anchor, anchor + block, 1))
    generate(tmp_path / "data", rows=2000, seed=3)
    done = run_cli("run", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    server = Server(tmp_path)
    try:
        sent = hammer(server, 0, 20)
    finally:
        server.stop()
    got = read_captures(tmp_path / "caps")
    assert {r["eventMetadata"]["inferenceId"] for _, r in got} == set(sent) and len(got) == 20
