"""One exit-code table (fraudflow/exits.py) for every command: `plan` keeps Terraform's meaning (0 no changes,
1 error, 2 changes), so no usage mistake of any command may exit 2; a bug exits 70 with one line on stderr and
the traceback in a crash log."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from fraudflow import exits
from fraudflow.cli import main

ROOT = Path(__file__).resolve().parents[1]
VALID = ROOT / "tests" / "validate_corpus" / "valid_minimal.yaml"
SPEC_COMMANDS = ("validate", "resolve", "run", "render", "plan", "apply")
PIPELINE_COMMANDS = ("resolve", "run", "render", "plan", "apply")


def _exit(argv: list[str]) -> int:
    """main()'s exit status, whether it returns it or argparse raises SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


USAGE_MISTAKES = [
    *[([cmd, str(VALID), "--no-such-flag"], f"{cmd}: bad flag") for cmd in SPEC_COMMANDS],
    *[([cmd, str(VALID), "--env", "nope"], f"{cmd} --env nope") for cmd in SPEC_COMMANDS],
    *[([cmd, str(VALID), "--set", "no-equals-sign"], f"{cmd} --set syntax") for cmd in SPEC_COMMANDS],
    *[([cmd, str(VALID), "--set", "no.such.key=1"], f"{cmd} --set unknown") for cmd in SPEC_COMMANDS],
    *[([cmd, str(VALID), "--pipeline", "nope"], f"{cmd} --pipeline nope") for cmd in PIPELINE_COMMANDS],
    (["no-such-command"], "unknown command"),
    ([], "no command"),
    (["registry"], "registry without action"),
    (["registry", "show", "g", "not-a-number"], "registry show bad version"),
    (["serve", "--port", "eighty"], "serve bad port"),
    (["sample-data"], "sample-data without folder"),
]


@pytest.mark.parametrize("argv", [a for a, _ in USAGE_MISTAKES], ids=[i for _, i in USAGE_MISTAKES])
def test_every_usage_mistake_exits_usage_never_plans_changes(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _exit(argv) == exits.USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip(), err


def test_the_codes_are_distinct_and_usage_is_not_plans_changes() -> None:
    table = {k: v for k, v in vars(exits).items() if k.isupper()}
    assert len(set(table.values())) == len(table), table
    assert (exits.OK, exits.ERROR, exits.CHANGES) == (0, 1, 2)  # Terraform's -detailed-exitcode
    assert exits.USAGE not in (exits.OK, exits.ERROR, exits.CHANGES, exits.GATE_STOPPED)


def test_exit_constants_live_only_in_the_table() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in (ROOT / "fraudflow").rglob("*.py")
        if path.name != "exits.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\bEXIT_[A-Z_]+\s*[,=]|exit_code\s*=\s*\d|sys\.exit\(\d", line)
    ]
    assert not offenders, offenders


def _crash(monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(*args: object, **kwargs: object) -> None:
        raise KeyError("a key the code forgot\nsecond line")

    monkeypatch.setattr("fraudflow.spec.load.load", bug)


def test_a_bug_prints_one_line_and_logs_the_traceback_beside_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(VALID, tmp_path / "pipelines.yaml")
    _crash(monkeypatch)
    assert _exit(["validate", str(tmp_path / "pipelines.yaml")]) == exits.INTERNAL
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    match = re.fullmatch(r"fraudflow: internal error \(KeyError\): (.+) — details in (\S+)", lines[0])
    assert match, lines[0]
    log = Path(match.group(2))
    assert log.parent == tmp_path / ".fraudflow" / "logs" and log.name.startswith("crash-")
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "a key the code forgot" in text
    assert "def bug" not in err and out == ""


def test_a_bug_without_a_pipelines_file_logs_to_the_temp_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    _crash(monkeypatch)
    assert _exit(["validate", str(tmp_path / "missing" / "pipelines.yaml")]) == exits.INTERNAL
    err = capsys.readouterr().err
    log = Path(err.strip().rsplit(" ", 1)[-1])
    assert log.is_file() and log.is_relative_to(tmp_path / "fraudflow" / "logs"), err
