"""Fixtures shared by the test modules: the AWS data beside the repository, and a CLI runner."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# CI explores the same examples every run (a clean clone has no example database): a property test that fails
# there fails for everyone, reproducibly, and is found and fixed here first with the default random exploration.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]
AWS_DATA = ROOT.parent / "shared" / "data" / "aws-synthetic-claims"


@pytest.fixture(scope="session")
def aws_data() -> Path:
    if not (AWS_DATA / "claims.csv").exists():
        pytest.skip(f"AWS sample data not found at {AWS_DATA}")
    return AWS_DATA


def sample_pipelines_text(data: Path) -> str:
    """The repo's pipelines.yaml with its data_dir the AWS sample data's absolute path (copies can go anywhere)."""
    return (ROOT / "pipelines.yaml").read_text().replace("data_dir: data ", f"data_dir: {data} ", 1)


@pytest.fixture
def yaml_file(tmp_path: Path, aws_data: Path) -> Path:
    """A copy of pipelines.yaml on the AWS sample data, free to edit (a module may define its own instead)."""
    path = tmp_path / "pipelines.yaml"
    path.write_text(sample_pipelines_text(aws_data))
    return path


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run `python -m fraudflow ...` as a user would, capturing output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "fraudflow", *args],
        cwd=cwd,
        env=full_env,
        text=True,
        capture_output=True,
        timeout=timeout,
    )


def aws_sets(data: Path) -> list[str]:
    """`--set` arguments pointing pipelines.yaml's two sources at a folder holding claims.csv and customers.csv."""
    return [
        "--set",
        f"data.sources.claims={data / 'claims.csv'}",
        "--set",
        f"data.sources.customers={data / 'customers.csv'}",
    ]


def validate_text(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    """`fraudflow validate` (in-process) on `text` written as tmp_path/pipelines.yaml: exit code and stderr."""
    from fraudflow.cli import main

    path = tmp_path / "pipelines.yaml"
    path.write_text(text)
    rc = main(["validate", str(path), *args])
    return rc, capsys.readouterr().err


def ff_errors(stderr: str) -> list[str]:
    """The located diagnostics (`FILE:LINE:COL: FFnnn ...`) of validate's output."""
    return [line for line in stderr.splitlines() if re.search(r": FF\d{3} ", line)]
