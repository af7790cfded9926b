"""jinja2 templating inside string values only, after parsing, so every line number stays true.

Sandboxed (no attribute games such as `''.__class__.__mro__`), and an undefined variable is an error rather
than an empty string. Names available: `env.NAME` (environment variables) and `vars.*` (the file's vars, with the
chosen environment's vars over them). jinja2 is imported only when a string holds a template.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from fraudflow.errors import Diagnostic
from fraudflow.spec.yamlload import PathT, Positions

_MARKERS = ("{{", "{%", "{#")


def has_template(value: object) -> bool:
    return isinstance(value, str) and any(m in value for m in _MARKERS)


class Renderer:
    def __init__(
        self, variables: Mapping[str, Any], positions: Positions, environ: Mapping[str, str] | None = None
    ):
        self.context = {"vars": variables, "env": dict(os.environ if environ is None else environ)}
        self.positions = positions
        self.errors: list[Diagnostic] = []
        self._env = None

    def _jinja(self) -> Any:
        if self._env is None:
            from jinja2 import StrictUndefined
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            self._env = ImmutableSandboxedEnvironment(
                undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
            )
        return self._env

    def render_tree(self, value: Any, path: PathT, coerce: Callable[[PathT, str], Any] | None = None) -> Any:
        """Render every templated string below `value`; `coerce` types a rendered string by the schema."""
        if isinstance(value, dict):
            return {k: self.render_tree(v, (*path, k), coerce) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render_tree(v, (*path, i), coerce) for i, v in enumerate(value)]
        if has_template(value):
            rendered = self.render(value, path)
            if rendered is None:
                return value
            return coerce(path, rendered) if coerce else rendered
        return value

    def render(self, text: str, path: PathT) -> str | None:
        from jinja2 import TemplateSyntaxError, UndefinedError
        from jinja2.exceptions import SecurityError

        try:
            return self._jinja().from_string(text).render(self.context)
        except TemplateSyntaxError as exc:
            self._error(
                "FF301",
                f"template syntax error: {exc.message}",
                path,
                hint="templates look like {{ vars.name }} or {{ env.NAME | default('x') }}",
            )
        except UndefinedError as exc:
            self._error(
                "FF302", f"undefined template variable: {exc.message}", path, hint=self._undefined_hint()
            )
        except SecurityError as exc:
            self._error(
                "FF303",
                f"template not allowed: {exc}",
                path,
                hint="templates may read vars.* and env.* only; the sandbox refuses attribute access",
            )
        except (
            Exception
        ) as exc:  # a filter raising on bad input, e.g. int('x'): the user's template is at fault
            self._error("FF304", f"template failed: {type(exc).__name__}: {exc}", path)
        return None

    def _undefined_hint(self) -> str:
        names = sorted(self.context["vars"]) if isinstance(self.context["vars"], Mapping) else []
        known = ", ".join(f"vars.{n}" for n in names) or "none"
        return f"defined variables: {known}; environment variables as env.NAME, with | default('...') if optional"

    def _error(self, code: str, message: str, path: PathT, hint: str | None = None) -> None:
        self.errors.append(self.positions.diagnostic(code, message, path, hint=hint))
