"""jinja2 templating inside string values only, after parsing, so every line number stays true.

Sandboxed (no attribute games such as `''.__class__.__mro__`) and bounded (fraudflow/spec/sandbox.py: no value,
output or amount of work without limit), and an undefined variable is an error rather than an empty string.
Names available: `env.NAME` (one environment variable, named explicitly: `env` cannot be listed, iterated or
dumped) and `vars.*` (the file's vars, with the chosen environment's vars over them). A value that came from an
environment variable is never quoted in an error message: `<value from environment variable NAME>` instead.
jinja2 is imported only when a string holds a template that needs it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from fraudflow.errors import Diagnostic, UserError
from fraudflow.spec.budget import Budget, BudgetExceeded
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
MIN_SECRET = 4  # an environment value this long is hidden wherever a message quotes it


def has_template(value: object) -> bool:
    return isinstance(value, str) and any(m in value for m in _MARKERS)


class EnvironmentVariables:
    """`env` in templates: `env.NAME` and `env['NAME']` read one variable; nothing lists them.

    No iteration, `keys`, `items`, `|list`, `|tojson`, `dict(env)`: a template could otherwise copy every
    variable of the machine (credentials included) into a description or a tag that goes to SageMaker.
    """

    __slots__ = ("_values", "_on_read")

    def __init__(self, values: Mapping[str, str], on_read: Callable[[str], None]) -> None:
        self._values = dict(values)
        self._on_read = on_read

    def __getitem__(self, name: object) -> str:
        if not isinstance(name, str) or name not in self._values:
            raise KeyError(name)
        self._on_read(name)
        return self._values[name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._values

    def __iter__(self) -> Any:
        from jinja2.exceptions import SecurityError

        raise SecurityError("env cannot be listed: name each variable, e.g. env.NAME")

    def __repr__(self) -> str:
        return "<environment variables>"

    __str__ = __repr__


# jinja2 shows `'<module>.<class> object' has no attribute 'X'` for undefined names: say "environment".
EnvironmentVariables.__module__ = "builtins"
EnvironmentVariables.__name__ = EnvironmentVariables.__qualname__ = "environment"


def _env_label(names: frozenset[str]) -> str:
    ordered = sorted(names)
    if len(ordered) == 1:
        return f"<value from environment variable {ordered[0]}>"
    return f"<value from environment variables {', '.join(ordered)}>"


class Renderer:
    def __init__(
        self, variables: Mapping[str, Any], positions: Positions, environ: Mapping[str, str] | None = None
    ):
        self._environ = dict(os.environ if environ is None else environ)
        self.env = EnvironmentVariables(self._environ, self._read_env)
        self.context: dict[str, Any] = {"vars": variables, "env": self.env}
        self.positions = positions
        self.errors: list[Diagnostic] = []
        self._jinja_env: Any = None
        self.budget = Budget()  # shared by every template of the document, aliased uses included
        self._compiled: dict[str, Any] = {}
        self._bare_vars: dict[str, bool] = {}
        # Provenance: which environment variables each rendered value (by path) was made from.
        self.taint: dict[PathT, frozenset[str]] = {}
        self.secrets: dict[str, str] = {}  # every environment variable a template read, with its value
        self._reads: set[str] = set()
        self._var_ids: dict[int, PathT] = {}

    # ------------------------------------------------------------------------------------------- provenance
    def _read_env(self, name: str) -> None:
        self._reads.add(name)
        self.secrets[name] = self._environ[name]

    def _read_var(self, path: PathT) -> None:
        """A template read vars at `path`: it now carries whatever environment values are at or below it."""
        n = len(path)
        for p, names in self.taint.items():
            if p[0] == "vars" and (p[:n] == path or path[: len(p)] == p):
                self._reads |= names

    def _on_access(self, obj: Any, key: Any) -> None:
        base = self._var_ids.get(id(obj))
        if base is None:
            return
        if isinstance(obj, Mapping) and key not in obj:  # vars.items(), vars.values(): all of it
            self._read_var(base)
        else:
            self._read_var((*base, key))

    def _index_vars(self, value: Any, path: PathT) -> None:
        if isinstance(value, (dict, list)):
            self._var_ids[id(value)] = path
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for k, v in items:
                self._index_vars(v, (*path, k))

    def labels(self) -> dict[Any, str]:
        """What to say instead of each value made from environment variables, by the position of its template."""
        out = {}
        for path, names in self.taint.items():
            mark = self.positions.values.get(path)
            if mark is not None:
                out[mark] = _env_label(names)
        return out

    def redact(self, diagnostic: Diagnostic) -> Diagnostic:
        """`diagnostic` with every environment value a template read replaced by where it came from."""
        changes = {}
        for field in ("message", "hint"):
            text = getattr(diagnostic, field)
            if not text:
                continue
            new = text
            for name, value in sorted(self.secrets.items(), key=lambda kv: -len(kv[1])):
                if len(value) >= MIN_SECRET or repr(value) in new:
                    new = new.replace(repr(value), _env_label(frozenset([name])))
                    if len(value) >= MIN_SECRET:
                        new = new.replace(value, _env_label(frozenset([name])))
            if new != text:
                changes[field] = new
        return dataclasses.replace(diagnostic, **changes) if changes else diagnostic

    # --------------------------------------------------------------------------------------------- rendering
    def _jinja(self) -> Any:
        if self._jinja_env is None:
            from jinja2 import StrictUndefined

            from fraudflow.spec.sandbox import BoundedEnvironment

            self._jinja_env = BoundedEnvironment(
                self.budget, undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
            )
            self._jinja_env.on_access = self._on_access
        return self._jinja_env

    def _template(self, text: str) -> Any:
        """Compiled once per text: an aliased template is used many times."""
        tpl = self._compiled.get(text)
        if tpl is None:
            env = self._jinja()
            tpl = env.from_string(text)
            self._bare_vars[text] = _uses_vars_whole(env, text)
            if len(self._compiled) < 1000:
                self._compiled[text] = tpl
        return tpl

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

    def use_vars(self, variables: Any) -> None:
        """The rendered vars, for the templates of the rest of the document."""
        self.context["vars"] = variables
        self._var_ids.clear()
        self._index_vars(variables, ("vars",))

    def _lookup(self, root: str, names: list[str]) -> Any:
        if root == "env":
            if len(names) != 1 or names[0] not in self._environ:
                return _MISSING
            return self.env[names[0]]
        node: Any = self.context[root]
        for name in names:
            # jinja2 tries attributes before keys: `vars.items` is dict.items; leave such names to jinja2.
            if not isinstance(node, Mapping) or hasattr(node, name) or name not in node:
                return _MISSING
            node = node[name]
        self._read_var(("vars", *names))
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
        self._reads = set()
        try:
            return self._render(text, path)
        finally:
            if self._reads:
                self.taint[tuple(path)] = frozenset(self._reads)

    def _render(self, text: str, path: PathT) -> str | None:
        simple = self._render_simple(text)
        if simple is not None:
            try:
                self.budget.op()
                self.budget.emit(len(simple))
            except BudgetExceeded as exc:
                self._too_much(str(exc), path, exc.document)
                return None
            return simple
        from jinja2 import TemplateSyntaxError, UndefinedError
        from jinja2.exceptions import SecurityError

        try:
            template = self._template(text)
            if self._bare_vars.get(text):
                self._read_var(("vars",))
            return template.render(self.context)
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
                hint="templates may read vars.* and env.NAME only; the sandbox refuses attribute access",
            )
        except BudgetExceeded as exc:
            self._too_much(str(exc), path, exc.document)
        except (MemoryError, RecursionError) as exc:
            what = "memory" if isinstance(exc, MemoryError) else "recursion depth"
            self._too_much(f"the template ran out of {what}", path, document=False)
        except (
            Exception
        ) as exc:  # a filter raising on bad input, e.g. int('x'): the user's template is at fault
            self._error("FF304", f"template failed: {type(exc).__name__}: {exc}", path)
        return None

    def _too_much(self, message: str, path: PathT, document: bool) -> None:
        self._error(
            "FF305",
            message,
            path,
            hint="templates in pipelines.yaml fill in names and numbers; build nothing large with them",
        )
        if document:  # the whole document's budget is spent: every further template would fail the same way
            raise UserError([self.redact(d) for d in self.errors])

    def _undefined_hint(self) -> str:
        names = sorted(self.context["vars"]) if isinstance(self.context["vars"], Mapping) else []
        known = ", ".join(f"vars.{n}" for n in names) or "none"
        return f"defined variables: {known}; environment variables as env.NAME, with | default('...') if optional"

    def _error(self, code: str, message: str, path: PathT, hint: str | None = None) -> None:
        self.errors.append(self.positions.diagnostic(code, message, path, hint=hint))


def _uses_vars_whole(env: Any, text: str) -> bool:
    """True when the template uses `vars` other than as `vars.x` / `vars['x']` (`vars|tojson`, `for k in vars`):
    then it may carry any variable's value, including those made from environment variables."""
    from jinja2 import nodes

    tree = env.parse(text)
    under = {id(n.node) for n in tree.find_all((nodes.Getattr, nodes.Getitem))}
    return any(n.name == "vars" and id(n) not in under for n in tree.find_all(nodes.Name))
