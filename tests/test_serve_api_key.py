"""`fraudflow serve` with `deploy.api.auth: api_key`: the real server over HTTP demands header x-api-key and
answers 403 {"message": "Forbidden"} without it, as API Gateway does; a missing or unusable key stops start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudflow.local.serving import api_access
from tests.test_serve import REPO, Server, call, csv_of, train_and_register

KEY = "k3y-0123456789abcdefghij"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, aws_data: Path) -> tuple[Path, dict]:
    ws = tmp_path_factory.mktemp("ws")
    model = train_and_register(ws)
    return ws, model


def test_key_demanded_on_both_invocation_paths(
    workspace: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, model = workspace
    api_access.record(ws / ".fraudflow", "fraud-detect-xgb", {"auth": "api_key", "stage": "prod"})
    monkeypatch.setenv(api_access.ENV, KEY)
    server = Server(ws)
    try:
        body = csv_of(model["x"][:2])
        for path in ("/invocations", "/endpoints/fraud-detect-xgb/invocations"):
            for headers in ({}, {"x-api-key": "wrong-" + KEY}, {"x-api-key": KEY[:-1]}, {"X-Api-Key": ""}):
                status, h, answer = call(server.url + path, body, "text/csv", headers=headers)
                assert status == 403, (path, headers)
                assert json.loads(answer) == {"message": "Forbidden"}
                assert h["x-amzn-errortype"] == "ForbiddenException"
            status, _, answer = call(server.url + path, body, "text/csv", headers={"X-Api-Key": KEY})
            assert status == 200, answer
            assert len(answer.decode().strip().splitlines()) == 2
        assert call(server.url + "/ping", method="GET")[0] == 200  # health checks need no key
    finally:
        server.stop()


def test_key_file_and_no_api_means_open(
    workspace: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, model = workspace
    state = ws / ".fraudflow"
    monkeypatch.delenv(api_access.ENV, raising=False)
    api_access.record(state, "fraud-detect-xgb", {"auth": "api_key"})
    (state / "api" / "fraud-detect-xgb.key").write_text(KEY + "\n")
    server = Server(ws)
    try:
        url, body = server.url + "/invocations", csv_of(model["x"][:1])
        assert call(url, body, "text/csv")[0] == 403
        assert call(url, body, "text/csv", headers={"x-api-key": KEY})[0] == 200
    finally:
        server.stop()
    # deploy.api gone (or auth: iam, which serve cannot check): serve is open again
    for api in (None, {"auth": "iam"}):
        api_access.record(state, "fraud-detect-xgb", api)
        server = Server(ws)
        try:
            assert call(server.url + "/invocations", csv_of(model["x"][:1]), "text/csv")[0] == 200
        finally:
            server.stop()
    (state / "api" / "fraud-detect-xgb.key").unlink()


@pytest.mark.parametrize(
    ("key", "code"), [(None, "FF865"), ("short", "FF866"), ("x" * 19, "FF866"), ("é" * 25, "FF866")]
)
def test_missing_or_unusable_key_stops_start_up(
    workspace: tuple[Path, dict], key: str | None, code: str
) -> None:
    ws, _ = workspace
    api_access.record(ws / ".fraudflow", "fraud-detect-xgb", {"auth": "api_key"})
    env = {k: v for k, v in os.environ.items() if k != api_access.ENV}
    if key is not None:
        env[api_access.ENV] = key
    try:
        out = subprocess.run(
            [sys.executable, "-m", "fraudflow", "serve", "--workspace", str(ws), "--port", "0"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        api_access.record(ws / ".fraudflow", "fraud-detect-xgb", None)
    assert out.returncode != 0
    assert code in out.stderr and "Traceback" not in out.stderr
    assert key is None or key not in out.stderr  # the key itself is never echoed


@given(
    st.text(max_size=40), st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=20)
)
def test_allowed_exactly_when_equal(given_key: str, key: str) -> None:
    encoded = given_key.encode("utf-8").decode("latin-1")  # headers arrive as latin-1 text
    assert api_access.allowed(encoded, key.encode()) == (encoded == key)
    assert api_access.allowed(key, key.encode())
    assert not api_access.allowed(None, key.encode())


@pytest.mark.slow
def test_run_records_the_auth_and_serve_demands_the_key(tmp_path: Path) -> None:
    """End to end: `fraudflow run` of a file with deploy.api makes `fraudflow serve` demand the key; a run of
    the file without it opens the endpoint again."""
    from tests.conftest import ROOT, run_cli
    from tests.test_api_gateway import API_KEY_BLOCK, with_api

    base = (ROOT / "pipelines.yaml").read_text()
    (tmp_path / "pipelines.yaml").write_text(with_api(base, API_KEY_BLOCK))
    assert run_cli("sample-data", "data", "--rows", "600", cwd=tmp_path).returncode == 0
    passing = ("--set", "gate.threshold=0.05")  # the few sample rows give a weak model: let the gate pass
    done = run_cli("run", *passing, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    record = tmp_path / ".fraudflow" / "api" / "fraud-detect-xgb.json"
    assert json.loads(record.read_text()) == {"auth": "api_key", "stage": "prod"}

    env = {k: v for k, v in os.environ.items() if k != api_access.ENV}
    refused = run_cli("serve", "--workspace", str(tmp_path), "--port", "0", env=env, timeout=120)
    assert refused.returncode != 0 and "FF865" in refused.stderr

    body = b'{"records": [{"incident_type": "Collision"}]}'
    os.environ[api_access.ENV] = KEY
    try:
        server = Server(tmp_path)
    finally:
        del os.environ[api_access.ENV]
    try:
        assert call(server.url + "/invocations", body, "application/json")[0] == 403
        assert (
            call(server.url + "/invocations", body, "application/json", headers={"x-api-key": KEY})[0] == 200
        )
    finally:
        server.stop()

    (tmp_path / "pipelines.yaml").write_text(base)
    assert run_cli("run", *passing, cwd=tmp_path).returncode == 0
    assert not record.exists()
