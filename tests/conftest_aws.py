"""moto's real AWS server for the SageMaker tests, on loopback and a free port; imported via `pytest_plugins`.

The session starts one server; each test resets its state and gets a fresh bucket and IAM role (the role in
moto's account, 123456789012: moto refuses to pass a role of another account to Lambda).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "ff-test-artifacts"
ROLE_NAME = "fraudflow-test"
ROLE_ARN = f"arn:aws:iam::123456789012:role/{ROLE_NAME}"
DEPLOYER_ROLE_NAME = "fraudflow-test-deployer"  # the deployer Lambda's own role (sagemaker.lambda.role_arn)
DEPLOYER_ROLE_ARN = f"arn:aws:iam::123456789012:role/{DEPLOYER_ROLE_NAME}"
REGION = "us-east-1"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["lambda.amazonaws.com", "sagemaker.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    ],
}


def cli(
    *args: str, env: dict[str, str], cwd: Path = ROOT, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """`python -m fraudflow ...` against moto's server, as a user runs it, with exactly `env` (Aws.env, or a
    copy with credentials taken out: unlike conftest.run_cli, nothing of this process's environment is added)."""
    return subprocess.run(
        [sys.executable, "-m", "fraudflow", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,  # no TTY: apply must not wait for an answer
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> MotoServer:
        exe = shutil.which("moto_server")
        cmd = [exe] if exe else [sys.executable, "-m", "moto.server"]
        self.proc = subprocess.Popen(
            [*cmd, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1)
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("moto_server exited at start-up") from None
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto_server did not start within 30 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).read()


@dataclass
class Aws:
    server: MotoServer
    env: dict[str, str]  # for CLI subprocesses

    def client(self, service: str):  # noqa: ANN201 - a boto3 client
        import boto3

        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.server.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def seed(self, bucket: bool = True) -> None:
        """What the account must hold before apply: the bucket and the roles (apply creates none of them)."""
        if bucket:
            self.client("s3").create_bucket(Bucket=BUCKET)
        iam = self.client("iam")
        for name in (ROLE_NAME, DEPLOYER_ROLE_NAME):
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))


def aws_env(url: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": url,
        "SAGEMAKER_ROLE_ARN": ROLE_ARN,
        "DEPLOYER_ROLE_ARN": DEPLOYER_ROLE_ARN,
        "FRAUDFLOW_BUCKET": BUCKET,
        "FRAUDFLOW_POLL_S": "0.2",
    }


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Aws:
    moto_server.reset()
    env = aws_env(moto_server.url)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    a = Aws(moto_server, {**os.environ, **env})
    a.seed()
    return a
