"""`deploy.api` in pipelines.yaml: `fraudflow validate` locates each mistake the schema cannot see (FF585-FF588)
and the schema's own (stage name, throttle required), and accepts the issue's declaration as written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_api_gateway import API_ROLE_ARN, with_api

ROOT = Path(__file__).resolve().parents[1]
JOBS_ROLE = "arn:aws:iam::111122223333:role/fraudflow-sagemaker"


def validate(tmp_path: Path, aws_data: Path, block: str) -> subprocess.CompletedProcess[str]:
    text = (ROOT / "pipelines.yaml").read_text().replace("data_dir: data ", f"data_dir: {aws_data} ", 1)
    path = tmp_path / "pipelines.yaml"
    path.write_text(with_api(text, block))
    env = {k: v for k, v in __import__("os").environ.items() if not k.endswith("ROLE_ARN")}
    return subprocess.run(
        [sys.executable, "-m", "fraudflow", "validate", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def api(*lines: str) -> str:
    return "      api:\n" + "".join(f"        {line}\n" for line in lines)


ROLE = f"role_arn: {API_ROLE_ARN}"


def test_the_issues_declaration_validates(tmp_path: Path, aws_data: Path) -> None:
    block = api("auth: api_key", "throttle: {rate: 50, burst: 100}", "quota: {limit: 100000, period: DAY}",
                "stage: prod", ROLE)  # fmt: skip
    out = validate(tmp_path, aws_data, block)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "FF58" not in out.stdout + out.stderr


@pytest.mark.parametrize(
    ("block", "code", "line", "text"),
    [
        (api("auth: api_key", "throttle: {rate: 50, burst: 100}"), "FF585", 86, "needs deploy.api.role_arn"),
        (api("throttle: {rate: 50, burst: 49}", ROLE), "FF586", 87, "burst (49) is below its rate (50/s)"),
        (api("throttle: {rate: 2.5, burst: 2}", ROLE), "FF586", 87, "hint: set burst to at least 3"),
        (api("auth: iam", "throttle: {rate: 5, burst: 5}", "quota: {limit: 9, period: WEEK}", ROLE),
         "FF587", 89, "quota needs auth: api_key"),
        (api("throttle: {rate: 5, burst: 5}", f"role_arn: {JOBS_ROLE}"), "FF588", 88, "jobs' or the deployer's"),
        (api("throttle: {rate: 5, burst: 5}", "stage: 'prod/v1'", ROLE), "FF206", 88, "stage"),
        (api("stage: prod", ROLE), "FF205", 86, "throttle"),
        (api("throttle: {rate: 5, burst: 5}", "quota: {limit: 9, period: YEAR}", ROLE), "FF203", 88, "YEAR"),
    ],
)  # fmt: skip
def test_mistakes_are_located(
    tmp_path: Path, aws_data: Path, block: str, code: str, line: int, text: str
) -> None:
    out = validate(tmp_path, aws_data, block)
    report = out.stdout + out.stderr
    assert code in report, report
    assert f"pipelines.yaml:{line}:" in report, report
    assert text in report, report
    assert "Traceback" not in report
    assert out.returncode == (0 if code == "FF588" else 1), report
