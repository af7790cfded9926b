"""`fraudflow validate` on the `monitor` section: each mistake the schema cannot catch is a located FF57x."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli


def _validate(tmp_path: Path, monitor: str) -> str:
    text = (ROOT / "pipelines.yaml").read_text()
    text = text.replace("    parameters:", f"    monitor:\n{monitor}    parameters:", 1)
    path = tmp_path / "pipelines.yaml"
    path.write_text(text)
    proc = run_cli("validate", str(path), "--format", "text", cwd=tmp_path)
    return proc.stderr + proc.stdout


@pytest.mark.parametrize(
    ("monitor", "code"),
    [
        ("      columns: {fraud: {psi: 0.3}}\n", "FF570"),
        ("      columns: {policy_id: {ignore: true}}\n", "FF570"),
        ("      schedule: rate(1 days)\n      capture: s3://b/c\n      window_hours: 24\n", "FF571"),
        ("      schedule: rate(0 hours)\n      capture: s3://b/c\n      window_hours: 24\n", "FF571"),
        ("      schedule: cron(0 3 * * *)\n      capture: s3://b/c\n      window_hours: 24\n", "FF571"),
        ("      schedule: cron(0 3 1 * 1 *)\n      capture: s3://b/c\n      window_hours: 24\n", "FF571"),
        ("      schedule: rate(1 day)\n      capture: captures\n      window_hours: 24\n", "FF572"),
        ("      schedule: rate(1 day)\n      capture: s3://b/c\n", "FF574"),
    ],
)
def test_monitor_mistakes_are_located(tmp_path: Path, monitor: str, code: str) -> None:
    out = _validate(tmp_path, monitor)
    assert code in out
    assert "pipelines.yaml:" in out and ".monitor." in out


@pytest.mark.parametrize(
    "monitor",
    [
        "      schedule: rate(1 day)\n      capture: s3://b/c\n      window_hours: 24\n",
        "      schedule: rate(6 hours)\n      capture: s3://b/c\n      window_hours: 6\n",
        "      schedule: cron(0 3 * * ? *)\n      capture: s3://b/c\n      window_hours: 24\n",
        "      columns: {vehicle_claim: {psi: 0.5, ks_p_value: 0.0001}, policy_state: {ignore: true}}\n",
    ],
)
def test_valid_monitor_sections(tmp_path: Path, monitor: str) -> None:
    out = _validate(tmp_path, monitor)
    assert "FF57" not in out, out
    assert "valid" in out


def test_schedule_without_deploy(tmp_path: Path) -> None:
    text = (ROOT / "pipelines.yaml").read_text()
    start = text.index("    deploy:\n")
    end = text.index("    parameters:")
    text = (
        text[:start]
        + "    monitor: {schedule: rate(1 day), capture: s3://b/c, window_hours: 24}\n"
        + text[end:]
    )
    (tmp_path / "pipelines.yaml").write_text(text)
    proc = run_cli("validate", str(tmp_path / "pipelines.yaml"), cwd=tmp_path)
    assert proc.returncode == 1 and "FF575" in proc.stderr
