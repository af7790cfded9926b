"""One error type for everything a user can get wrong: a stable code, a message, a location and a hint.

Modules raise `UserError` (one or many `Diagnostic`s); only the CLI turns them into text, JSON and exit codes.
The codes are listed, with what they mean, in docs/error-codes.md and are stable across releases.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from fraudflow import exits

MAX_MESSAGE = 600  # characters of a message, hint or path as printed


@dataclass(frozen=True)
class Diagnostic:
    code: str  # e.g. "FF201"; stable, documented
    message: str
    file: str | None = None
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    path: str | None = None  # where in the document, e.g. "pipelines.fraud.split.train"
    hint: str | None = None
    severity: str = "error"  # or "warning": reported, but does not make the file invalid

    def __post_init__(self) -> None:
        # A message quotes values; a value can be megabytes long (a YAML alias, a template's output). Keep what
        # is printed readable whatever the emitter quoted.
        for name in ("message", "hint", "path"):
            text = getattr(self, name)
            if text is not None and len(text) > MAX_MESSAGE:
                object.__setattr__(self, name, f"{text[:MAX_MESSAGE]}… ({len(text)} characters)")

    def location(self) -> str:
        parts = [self.file or "fraudflow"]  # no file at fault: name the program, as a shell does
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def render(self) -> str:
        level = "warning " if self.severity == "warning" else ""
        text = f"{self.location()}: {level}{self.code} {self.message}"
        if self.path:
            text += f"\n    at {self.path}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def sort_key(self) -> tuple:
        return (self.file or "", self.line or 0, self.column or 0, self.code, self.message)


class UserError(Exception):
    """A mistake in the user's input: reported as diagnostics, never as a traceback."""

    exit_code = exits.ERROR

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        super().__init__("\n".join(d.render() for d in self.diagnostics))

    @classmethod
    def single(
        cls,
        code: str,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        path: str | None = None,
        hint: str | None = None,
    ) -> UserError:
        return cls(Diagnostic(code, message, file=file, line=line, column=column, path=path, hint=hint))


class UsageError(UserError):
    """The command line itself is wrong (unknown --env, bad --set syntax): exits.USAGE, never `plan`'s 2."""

    exit_code = exits.USAGE


@dataclass
class Report:
    """What a command found, ready for text or JSON output."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

    def render(self, fmt: str) -> str:
        if fmt == "json":
            return json.dumps(
                {"valid": not self.diagnostics, "errors": [d.to_dict() for d in self.diagnostics]}, indent=2
            )
        return "\n".join(d.render() for d in self.diagnostics)
