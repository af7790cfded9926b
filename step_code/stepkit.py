"""The helpers every step script shares: the error it reports, the config reader, argument errors, atomic output
writing and the script entry point's error handling.

Shipped beside the scripts to both backends (fraudflow run imports it from step_code/; SageMaker's processing
code folder, training's sourcedir.tar.gz and the model's code/ hold it next to them), so a script says
`import stepkit` as a sibling module. Standard library only, Python 3.8 syntax: it runs in the containers' old
images. It emits no error code of its own: each caller passes the code of its own range.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn


class StepError(Exception):
    """A problem with the user's data or config: reported as `error[CODE]: file:line: message`, never a traceback."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: str | int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.ff_code, self.message, self.file, self.line, self.column, self.hint = (
            code,
            message,
            file,
            line,
            column,
            hint,
        )

    def render(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line is not None else "") + ": "
        text = f"error[{self.ff_code}]: {where}{self.message}"
        return text + (f"\n  hint: {self.hint}" if self.hint else "")


class Parser(argparse.ArgumentParser):
    """argparse that raises a StepError with the step's config code instead of exiting the process."""

    def __init__(self, code: str, description: str | None = None) -> None:
        super().__init__(description=description, allow_abbrev=False)
        self.ff_code = code

    def error(self, message: str) -> NoReturn:  # argparse would sys.exit; a step must return
        raise StepError(self.ff_code, f"bad arguments: {message}")


def read_config(path: str, code: str) -> dict:
    """The step's config.json as a dict; a missing file, bad JSON or a non-object is a StepError `code`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StepError(code, "config file not found", file=path) from None
    except json.JSONDecodeError as exc:
        raise StepError(code, f"config is not valid JSON: {exc.msg}", file=path, line=exc.lineno) from None
    if not isinstance(data, dict):
        raise StepError(code, "config must be a JSON object", file=path)
    return data


def publish(output_dir: Path, write: Callable[[Path], None]) -> None:
    """Write into a temporary folder, then move it into place: a failed step leaves nothing behind."""
    output_dir = Path(output_dir)
    if not output_dir.exists():
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.tmp-", dir=output_dir.parent))
        try:
            write(tmp)
            os.replace(tmp, output_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return
    # SageMaker creates the output folders beforehand: stage inside, then move each entry into place.
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=output_dir))
    try:
        write(tmp)
        for entry in sorted(tmp.iterdir()):
            dest = output_dir / entry.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            elif dest.exists() or dest.is_symlink():
                dest.unlink()
            os.replace(entry, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def entry(argv: list[str] | None, work: Callable[[], int]) -> int:
    """A script's main: called with an argument list (the local runner), a StepError propagates to the caller;
    run as a script (argv None) it is printed as `error[CODE]: file:line: message` and 2 is returned."""
    try:
        return work()
    except StepError as exc:
        if argv is not None:
            raise
        print(exc.render(), file=sys.stderr)
        return 2
