"""jinja2 templating inside string values only, after parsing, so every line number stays true.

Sandboxed (no attribute games such as `''.__class__.__mro__`), and an undefined variable is an error rather
than an empty string. Names available: `env.NAME` (environment variables) and `vars.*` (the file's vars, with the
chosen environment's vars over them). jinja2 is imported only when a string holds a template.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from fraudflow.errors import Diagnostic
from fraudflow.spec.yamlload import PathT, Positions

_MARKERS = ("{{", "{%", "{#")


# `{{ vars.a.b }}` or `{{ env.NAME | default('literal') }}`: the templates pipelines.yaml holds in practice. These
# are rendered here without jinja2 (importing and compiling it is a quarter of `validate`'s time); anything else,
# and any lookup that fails, goes to jinja2, so results and error messages stay jinja2's.
_SIMPLE = re.compile(
    r"\{\{-?\s*(vars|env)((?:\.[A-Za-z][A-Za-z0-9_]*)+)\s*"
    r"(?:\|\s*default\(\s*(?:'([^'\\]*)'|\"([^\"\\]*)\"|([0-9]+))\s*\)\s*)?-?\}\}"
)
_MISSING = object()


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
            if coerce is None:
                return rendered
            try:
                return coerce(path, rendered)
            except ValueError as exc:  # load.UnreadableValue: the output is an integer nobody can read
                self._error(getattr(exc, "code", "FF304"), str(exc), path, hint=getattr(exc, "hint", None))
                return value
        return value

    def _lookup(self, root: str, names: list[str]) -> Any:
        node: Any = self.context[root]
        for name in names:
            # jinja2 tries attributes before keys: `vars.items` is dict.items; leave such names to jinja2.
            if not isinstance(node, Mapping) or hasattr(node, name) or name not in node:
                return _MISSING
            node = node[name]
        return node

    def _render_simple(self, text: str) -> str | None:
        """`text` rendered without jinja2, or None when it needs jinja2."""
        if "{%" in text or "{#" in text:
            return None
        out, pos = [], 0
        for m in _SIMPLE.finditer(text):
            if "{{" in text[pos : m.start()] or "-" in (m.group(0)[2], m.group(0)[-3]):
                return None  # a template this pattern does not understand, or whitespace control
            value = self._lookup(m[1], m[2][1:].split("."))
            if value is _MISSING:
                if m[3] is None and m[4] is None and m[5] is None:
                    return None  # undefined: jinja2 reports it
                value = m[3] if m[3] is not None else m[4] if m[4] is not None else str(int(m[5]))
            if not isinstance(value, str) and (not isinstance(value, int) or isinstance(value, bool)):
                return None  # leave str() of floats, lists... to jinja2
            out += [text[pos : m.start()], str(value)]
            pos = m.end()
        if "{{" in text[pos:]:
            return None
        return "".join(out) + text[pos:]

    def render(self, text: str, path: PathT) -> str | None:
        simple = self._render_simple(text)
        if simple is not None:
            return simple
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
