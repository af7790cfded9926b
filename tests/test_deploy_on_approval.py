"""deploy.when: approved, locally: a run binds the endpoint to the group's approvals and serves nothing new;
`registry approve` deploys the approved version to a running `fraudflow serve` without dropping a request;
rejecting the served version rolls back to the newest Approved one, or stops serving with a clear 503; each
decision is recorded (who, when, the --note) and `registry show` prints the history."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fraudflow.local.approval import bind
from fraudflow.local.registry import Registry
from tests.test_serve import REPO, Server, call, csv_of, train_and_register

pytestmark = pytest.mark.usefixtures("aws_data")
GROUP = "fraud-detect-xgb"
ONE = [{"name": "AllTraffic", "weight": 1.0, "model_version": "latest"}]


def cli(ws: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "fraudflow", *args, "--workspace", str(ws)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
    )


def served_model(server: Server, x) -> tuple[int, str, bytes]:
    status, headers, body = call(server.url + "/invocations", csv_of(x), "text/csv")
    return status, headers.get("x-fraudflow-model", ""), body


def wait_until(pred, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


class Load:
    """Four clients calling the endpoint in a loop; every answer is kept."""

    def __init__(self, server: Server, x) -> None:
        self.server, self.x = server, x
        self.stop = threading.Event()
        self.results: list[tuple[int, str]] = []
        self.pool = ThreadPoolExecutor(4)
        self.futures = [self.pool.submit(self._hammer) for _ in range(4)]

    def _hammer(self) -> None:
        while not self.stop.is_set():
            status, model, _ = served_model(self.server, self.x)
            self.results.append((status, model))

    def finish(self) -> list[tuple[int, str]]:
        time.sleep(0.3)  # requests keep flowing after the switch
        self.stop.set()
        for f in self.futures:
            f.result()
        self.pool.shutdown()
        return self.results


@pytest.mark.slow
def test_approve_deploys_reject_rolls_back_or_stops_and_serve_never_drops_a_request(tmp_path):
    ws = tmp_path
    a = train_and_register(ws, rounds=20, endpoint=None)
    b = train_and_register(ws, rounds=40, seed=1, endpoint=None)
    reg = Registry(ws / ".fraudflow")
    try:
        note = bind(reg, "fraud", GROUP, ONE, None)  # what the run's deploy step does under when: approved
    finally:
        reg.close()
    assert "nothing yet" in note and "registry approve" in note
    x = a["x"][:1]
    server = Server(ws)
    try:
        # nothing is Approved: the endpoint answers a clear 503, not a crash
        status, _, body = served_model(server, x)
        assert status == 503, body
        doc = json.loads(body)
        assert doc["code"] == "ServiceUnavailable"
        assert f"no version of {GROUP} is Approved yet" in doc["message"]
        assert f"fraudflow registry approve {GROUP} N" in doc["message"]

        done = cli(ws, "registry", "approve", GROUP, str(a["version"]), "--note", "QA ticket 7")
        assert done.returncode == 0, done.stderr
        assert f"endpoint fraud now serves AllTraffic={GROUP}:{a['version']}" in done.stdout
        assert wait_until(lambda: served_model(server, x)[1] == f"{GROUP}:{a['version']}")

        # approving b switches a running server under load without dropping a request
        load = Load(server, x)
        time.sleep(0.3)
        done = cli(ws, "registry", "approve", GROUP, str(b["version"]))
        assert done.returncode == 0, done.stderr
        assert wait_until(lambda: load.results and load.results[-1][1] == f"{GROUP}:{b['version']}")
        results = load.finish()
        assert results and all(s == 200 for s, _ in results), {s for s, _ in results}
        assert {m for _, m in results} == {f"{GROUP}:{a['version']}", f"{GROUP}:{b['version']}"}

        # rejecting the served version rolls back to the newest Approved one, again without a dropped request
        load = Load(server, x)
        time.sleep(0.3)
        done = cli(ws, "registry", "reject", GROUP, str(b["version"]), "--note", "drifted")
        assert done.returncode == 0, done.stderr
        assert f"rolled back from {GROUP}:{b['version']} to AllTraffic={GROUP}:{a['version']}" in done.stdout
        assert wait_until(lambda: load.results and load.results[-1][1] == f"{GROUP}:{a['version']}")
        results = load.finish()
        assert all(s == 200 for s, _ in results)
        assert results[-1][1] == f"{GROUP}:{a['version']}"

        # rejecting the last Approved version stops serving: a 503 saying who rejected what
        done = cli(ws, "registry", "reject", GROUP, str(a["version"]))
        assert done.returncode == 0, done.stderr
        assert "stopped serving" in done.stdout
        assert wait_until(lambda: served_model(server, x)[0] == 503)
        message = json.loads(served_model(server, x)[2])["message"]
        assert f"{GROUP} v{a['version']} was rejected by {getpass.getuser()}" in message
        assert server.proc.poll() is None  # still running
    finally:
        server.stop()

    # the history: who, when, the note
    shown = cli(ws, "registry", "show", GROUP, str(b["version"]))
    assert shown.returncode == 0, shown.stderr
    history = shown.stdout.split("approval history", 1)[1].splitlines()[1:]
    assert [h.split()[1] for h in history] == ["PendingManualApproval", "Approved", "Rejected"]
    assert history[2].endswith(f"by {getpass.getuser()}: drifted")
    as_json = json.loads(cli(ws, "registry", "show", GROUP, str(a["version"]), "--format", "json").stdout)
    approved = [h for h in as_json["history"] if h["status"] == "Approved"][0]
    assert approved["actor"] == getpass.getuser() and approved["reason"] == "QA ticket 7"
    assert approved["at"].endswith("Z")


@pytest.mark.slow
def test_a_run_with_when_approved_registers_but_serves_nothing_new_until_approved(tmp_path, aws_data):
    shutil.copy(REPO / "pipelines.yaml", tmp_path / "pipelines.yaml")
    text = (tmp_path / "pipelines.yaml").read_text()
    text = text.replace("data_dir: data ", f"data_dir: {aws_data} ", 1)
    text = text.replace(
        "      endpoint_name: fraud-detect-xgb\n",
        "      endpoint_name: fraud-detect-xgb\n      when: approved\n",
    )
    (tmp_path / "pipelines.yaml").write_text(text)

    def run(*extra: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "fraudflow", "run", str(tmp_path / "pipelines.yaml"), *extra],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads((tmp_path / ".fraudflow" / "runs" / "latest" / "run.json").read_text())

    first = run()
    assert first["model_package"]["status"] == "PendingManualApproval"
    assert first["endpoint"]["variants"] == []  # bound, serving nothing
    deploy = next(s for s in first["steps"] if s["name"] == "deploy")
    assert "deploys on approval" in deploy["note"] and "nothing yet" in deploy["note"]

    v1 = first["model_package"]["version"]
    assert cli(tmp_path, "registry", "approve", GROUP, str(v1)).returncode == 0
    reg = Registry(tmp_path / ".fraudflow")
    assert [v.version for v in reg.get_endpoint("fraud-detect-xgb").variants] == [v1]
    reg.close()

    # a second run registers a new version; the endpoint keeps serving the approved one
    second = run("--no-cache", "--set", "train.hyperparameters.max_depth=2")
    v2 = second["model_package"]["version"]
    assert v2 == v1 + 1
    assert [v["version"] for v in second["endpoint"]["variants"]] == [v1]
    reg = Registry(tmp_path / ".fraudflow")
    assert [v.version for v in reg.get_endpoint("fraud-detect-xgb").variants] == [v1]
    reg.close()
    done = cli(tmp_path, "registry", "approve", GROUP, str(v2))
    assert done.returncode == 0 and f"now serves AllTraffic={GROUP}:{v2}" in done.stdout


def _validate(tmp_path: Path, aws_data: Path, deploy_lines: str) -> subprocess.CompletedProcess:
    text = (REPO / "pipelines.yaml").read_text().replace("data_dir: data ", f"data_dir: {aws_data} ", 1)
    anchor = "      endpoint_name: fraud-detect-xgb\n"
    (tmp_path / "pipelines.yaml").write_text(text.replace(anchor, anchor + deploy_lines))
    return subprocess.run(
        [sys.executable, "-m", "fraudflow", "validate", str(tmp_path / "pipelines.yaml")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_when_is_validated_and_contradicting_require_approval_is_located(tmp_path, aws_data):
    assert _validate(tmp_path, aws_data, "      when: approved\n").returncode == 0
    assert (
        _validate(tmp_path, aws_data, "      when: registered\n      require_approval: false\n").returncode
        == 0
    )
    bad = _validate(tmp_path, aws_data, "      when: approved\n      require_approval: false\n")
    assert bad.returncode == 1
    line = next(ln for ln in bad.stdout.splitlines() + bad.stderr.splitlines() if "FF560" in ln)
    text = (tmp_path / "pipelines.yaml").read_text().splitlines()
    number = next(i for i, t in enumerate(text, 1) if "require_approval: false" in t)
    assert f"pipelines.yaml:{number}:" in line and "require_approval" in line
    typo = _validate(tmp_path, aws_data, "      when: approval\n")
    assert typo.returncode == 1 and "approved" in typo.stdout + typo.stderr
