"""A reader that stops early (`fraudflow validate bad.yaml | head -1` under `set -o pipefail`) never turns a
command's result into success: every command exits with its real status when its output pipe closes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "validate_corpus"
ROOT = Path(__file__).resolve().parents[1]


def _run_into_closed_pipe(*args: str, stderr_too: bool = False) -> subprocess.CompletedProcess[str]:
    """Run `python -m fraudflow ARGS` with stdout (and stderr) on a pipe whose reader is already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader left before the first byte: every write gets EPIPE
    try:
        return subprocess.run(
            [sys.executable, "-m", "fraudflow", *args],
            cwd=CORPUS,
            stdout=write_end,
            stderr=write_end if stderr_too else subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args, expected",
    [
        (("validate", "several_errors.yaml", "--format", "json"), 1),
        (("validate", "several_errors.yaml"), 1),
        (("validate", "valid_minimal.yaml", "--format", "json"), 0),
        (("resolve", "valid_minimal.yaml", "--set", "split.seed=abc"), 1),
        (("resolve", "valid_minimal.yaml", "--env", "nope"), 64),
        (("resolve", "valid_minimal.yaml", "--format", "json"), 0),
        (("schema",), 0),
        (("--version",), 0),
        (("--help",), 0),
        (("validate", "--no-such-option"), 64),
    ],
)
@pytest.mark.parametrize("stderr_too", [False, True], ids=["stdout", "stdout+stderr"])
def test_closed_pipe_keeps_the_real_exit_status(
    args: tuple[str, ...], expected: int, stderr_too: bool
) -> None:
    proc = _run_into_closed_pipe(*args, stderr_too=stderr_too)
    assert proc.returncode == expected, proc.stderr
    assert "Traceback" not in (proc.stderr or "")


def test_pipefail_with_head_reports_the_invalid_file(tmp_path: Path) -> None:
    # The user's own words: under pipefail, `validate bad.yaml | head -1` must fail. A JSON report far larger
    # than a pipe's buffer makes sure the writer meets the closed pipe after head has gone.
    bad = tmp_path / "bad.yaml"
    items = "\n".join(f"    k{i}: 1" for i in range(4000))
    bad.write_text((CORPUS / "valid_minimal.yaml").read_text() + f"    unknown_section:\n{items}\n")
    script = f'set -o pipefail; "{sys.executable}" -m fraudflow validate "{bad}" --format json | head -1'
    proc = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout.strip() == "{"
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
