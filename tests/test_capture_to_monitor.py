"""The seam between data capture and monitoring: what a real `fraudflow serve` captures is what `fraudflow
monitor --current CAPTURE_DIR` reads. Both sides are tested alone against SageMaker's documented layout; this
pins that they agree with each other (raw claim records in, drift found in exactly the shifted features)."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT, aws_sets, run_cli
from tests.test_serve import Server, call

pytestmark = pytest.mark.slow

SHIFTED = ["customer_age", "vehicle_claim", "months_as_customer"]
ANCHOR = "      endpoint_name: fraud-detect-xgb\n"


def _records(frame: pd.DataFrame) -> list[dict]:
    """JSON records as a claims system sends them: the raw columns, nulls left out."""
    rows = json.loads(frame.to_json(orient="records"))
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def _send(server: Server, frame: pd.DataFrame, batch: int = 10) -> int:
    records = _records(frame.drop(columns=["fraud"]))
    chunks = [records[i : i + batch] for i in range(0, len(records), batch)]

    def one(chunk: list[dict]) -> int:
        status, _, answer = call(
            server.url + "/invocations", json.dumps({"records": chunk}).encode(), "application/json"
        )
        assert status == 200, answer
        return len(chunk)

    with ThreadPoolExecutor(8) as pool:
        return sum(pool.map(one, chunks))


def _monitor(ws: Path, sets: list[str], current: Path) -> tuple[int, dict]:
    proc = run_cli(
        "monitor", str(ws / "pipelines.yaml"), *sets, "--current", str(current), "--format", "json", cwd=ws
    )
    assert proc.returncode in (0, 4), proc.stdout + proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_what_serve_captures_is_what_monitor_reads(tmp_path: Path, aws_data: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    text = (ROOT / "pipelines.yaml").read_text()
    (ws / "pipelines.yaml").write_text(
        text.replace(ANCHOR, ANCHOR + "      data_capture: {destination: caps}\n", 1)
    )
    sets = aws_sets(aws_data)
    done = run_cli("run", str(ws / "pipelines.yaml"), *sets, cwd=ws)
    assert done.returncode == 0, done.stdout + done.stderr
    raw = pd.read_csv(aws_data / "claims.csv").merge(pd.read_csv(aws_data / "customers.csv"), on="policy_id")
    raw = raw.drop(columns=["policy_id", "customer_zip"])  # the pipeline drops them before encoding
    calm = raw.sample(800, random_state=11)
    shifted = raw.sample(800, random_state=12)
    for column in SHIFTED:
        shifted[column] = shifted[column] + 2 * raw[column].std()

    server = Server(ws)
    try:
        assert _send(server, calm) == 800
    finally:
        server.stop()
    code, report = _monitor(ws, sets, ws / "caps")
    assert code == 0, report["violations"]

    shutil.rmtree(ws / "caps")
    server = Server(ws)
    try:
        assert _send(server, shifted) == 800
    finally:
        server.stop()
    code, report = _monitor(ws, sets, ws / "caps")
    assert code == 4
    assert report["drifted_features"] == sorted(SHIFTED)
