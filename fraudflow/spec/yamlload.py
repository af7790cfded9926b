"""Parse YAML into plain data plus the line and column of every key and value.

Why not `yaml.safe_load`: it keeps the last of duplicate keys silently, loses positions, and expands aliases
without bound. Here PyYAML (its C parser when present) only composes the node graph; `_Builder` turns nodes into
Python values itself, so that:
- every mapping key and value has a position (`Positions`), for file:line:col errors;
- duplicate keys, unknown tags (`!!python/object`, any `!custom`) are errors, never executed;
- alias expansion is bounded: a "billion laughs" document is refused after `MAX_NODES` values or `MAX_CHARS`
  characters of text (a 2 MB anchored string aliased 5,000 times);
- plain scalars follow YAML 1.2's core schema: `yes`, `no`, `on`, `off` stay strings (no "Norway problem"),
  dates stay strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fraudflow.errors import Diagnostic, UserError

MAX_NODES = 100_000  # values built from one document, aliases counted each time they are used
MAX_DEPTH = 64
MAX_BYTES = 5 * 1024 * 1024
MAX_CHARS = MAX_BYTES  # text of all values once aliases are expanded: a file without aliases never exceeds it
MAX_INT_DIGITS = 4300  # Python's own limit for reading an integer from text
INT_TOO_LONG = "FF107"

PathT = tuple  # a path into the document: keys and list indices

_PLAIN = "tag:fraudflow:plain"  # marks an untagged plain scalar, resolved below by YAML 1.2 core rules
_STD = "tag:yaml.org,2002:"
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?[0-9]+$|^0o[0-7]+$|^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_SPECIAL_FLOAT = {".inf": float("inf"), "+.inf": float("inf"), "-.inf": float("-inf"), ".nan": float("nan")}


@dataclass(frozen=True)
class Mark:
    line: int | None  # 1-based; None for a value given on the command line
    column: int | None  # 1-based
    file: str | None = None  # where the value came from, when not the document's own file


@dataclass
class Positions:
    """Where each value (and each mapping key) of a document stands in its file."""

    file: str
    values: dict[PathT, Mark] = field(default_factory=dict)
    keys: dict[PathT, Mark] = field(default_factory=dict)
    prefix: PathT = ()  # shown before paths: ("pipelines", name) for a resolved pipeline
    # Values that must not be quoted in messages (they came from environment variables), by position: what to
    # say instead, e.g. "<value from environment variable TOKEN>".
    labels: dict[Mark, str] = field(default_factory=dict)

    def diagnostic(
        self,
        code: str,
        message: str,
        path: PathT,
        *,
        key: bool = False,
        hint: str | None = None,
        severity: str = "error",
    ) -> Diagnostic:
        mark = self.key(path) if key else self.value(path)
        return Diagnostic(
            code,
            message,
            file=(mark.file if mark and mark.file else self.file),
            line=mark.line if mark else None,
            column=mark.column if mark else None,
            path=format_path((*self.prefix, *path)) or "(top level)",
            hint=hint,
            severity=severity,
        )

    def value(self, path: PathT) -> Mark | None:
        """The position of the value at `path`, or of its closest ancestor that has one."""
        path = tuple(path)
        while True:
            if path in self.values:
                return self.values[path]
            if not path:
                return None
            path = path[:-1]

    def key(self, path: PathT) -> Mark | None:
        return self.keys.get(tuple(path)) or self.value(path)

    def label(self, path: PathT) -> str | None:
        """What to say instead of the value at `path` when it must not be quoted, else None."""
        mark = self.value(path)
        return self.labels.get(mark) if mark is not None and self.labels else None


def _resolver_class() -> type[yaml.resolver.BaseResolver]:
    class PlainResolver(yaml.resolver.BaseResolver):
        def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:  # noqa: D102
            if kind is yaml.ScalarNode:
                return _PLAIN if implicit[0] else _STD + "str"
            return _STD + ("seq" if kind is yaml.SequenceNode else "map")

    return PlainResolver


def _loader_class() -> type:
    # The C parser is several times faster; the pure one gives identical nodes and marks.
    # `yaml.CParser` is not exported (cyaml's __all__ lacks it): look in yaml.cyaml, present when libyaml is.
    parser: Any = getattr(getattr(yaml, "cyaml", None), "CParser", None)
    resolver = _resolver_class()
    if parser is not None:
        # bases chosen at run time (libyaml's parser if present): mypy cannot check a variable base class
        class CLoader(parser, yaml.constructor.BaseConstructor, resolver):  # type: ignore[misc, valid-type]
            def __init__(self, stream: str) -> None:
                parser.__init__(self, stream)
                yaml.constructor.BaseConstructor.__init__(self)
                resolver.__init__(self)

        return CLoader

    class PyLoader(
        yaml.reader.Reader,
        yaml.scanner.Scanner,
        yaml.parser.Parser,
        yaml.composer.Composer,
        yaml.constructor.BaseConstructor,
        resolver,  # type: ignore[misc, valid-type]  # a class made at run time: mypy cannot check a variable base
    ):
        def __init__(self, stream: str) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.BaseConstructor.__init__(self)
            resolver.__init__(self)

    return PyLoader


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def parse_text(text: str, file: str, max_nodes: int = MAX_NODES) -> tuple[Any, Positions]:
    """Parse one YAML document. Raises UserError with every structural problem found."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise UserError.single(
            "FF104", f"file is larger than {MAX_BYTES // (1024 * 1024)} MiB", file=file, line=1
        )
    loader = _loader_class()(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        raise UserError.single(
            "FF101",
            f"YAML syntax error: {problem}{context}",
            file=file,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
            hint=_syntax_hint(problem, _char_at(text, mark)),
        ) from None
    except yaml.YAMLError as exc:
        raise UserError.single("FF101", f"YAML error: {exc}", file=file) from None
    finally:
        loader.dispose()
    if node is None:
        raise UserError.single(
            "FF105",
            "the file is empty",
            file=file,
            line=1,
            column=1,
            hint="start from `fraudflow resolve` output or the README's example",
        )
    builder = _Builder(file, max_nodes)
    value = builder.build(node, ())
    if builder.errors:
        raise UserError(builder.errors)
    return value, builder.positions


def parse_file(path: Path) -> tuple[Any, Positions]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError.single(
            "FF100", "file not found", file=str(path), hint="pass the path of your pipelines.yaml"
        ) from None
    except OSError as exc:
        raise UserError.single("FF100", f"cannot read the file: {exc.strerror}", file=str(path)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UserError.single("FF101", "the file is not UTF-8 text", file=str(path), line=line) from None
    return parse_text(text, str(path))


def _char_at(text: str, mark: Any) -> str:
    if mark is None:
        return ""
    lines = text.splitlines()
    line = lines[mark.line] if 0 <= mark.line < len(lines) else ""
    return line[mark.column] if 0 <= mark.column < len(line) else ""


def _syntax_hint(problem: str, char: str = "") -> str | None:
    # libyaml says "found character that cannot start any token" without naming the tab: look at the text.
    if "tab" in problem or "'\\t'" in problem or char == "\t":
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in problem:
        return "a value containing ': ' must be quoted"
    if "could not find expected ':'" in problem or "expected <block end>" in problem:
        return "check the indentation of this line and the one before"
    return None


class _Builder:
    def __init__(self, file: str, max_nodes: int = MAX_NODES) -> None:
        self.positions = Positions(file)
        self.errors: list[Diagnostic] = []
        self.count = 0
        self.max_nodes = max_nodes
        self.chars = (
            0  # characters of every scalar built, keys included: an alias counts each time it is used
        )
        self._bomb = False
        self._seen: set[int] = set()  # collection nodes built once: seeing one again means an alias
        self._alias_path: PathT | None = None  # where the outermost alias being expanded was used

    def _error(
        self,
        code: str,
        message: str,
        node: yaml.Node,
        path: PathT,
        hint: str | None = None,
        mark: Mark | None = None,
    ) -> None:
        m = mark or _mark(node)
        self.errors.append(
            Diagnostic(
                code,
                message,
                file=self.positions.file,
                line=m.line,
                column=m.column,
                path=format_path(path) or "(top level)",
                hint=hint,
            )
        )

    def build(self, node: yaml.Node, path: PathT, depth: int = 0) -> Any:
        self.count += 1
        if isinstance(node, yaml.ScalarNode):
            self.chars += len(node.value)
        if self.count > self.max_nodes or depth > MAX_DEPTH or self.chars > MAX_CHARS:
            if not self._bomb:
                self._bomb = True
                nested = depth > MAX_DEPTH
                what = (
                    f"nesting deeper than {MAX_DEPTH} levels"
                    if nested
                    else f"more than {self.max_nodes} values once aliases are expanded"
                    if self.count > self.max_nodes
                    else f"more than {MAX_CHARS // (1024 * 1024)} MiB of text once aliases are expanded"
                )
                # Blame the alias that started the expansion, not the copy being built when the count ran out.
                at = path if nested or self._alias_path is None else self._alias_path
                mark = None if at is path else (self.positions.keys.get(at) or self.positions.value(at[:-1]))
                self._error(
                    "FF104",
                    f"document too large: {what}",
                    node,
                    at,
                    hint="pipelines.yaml never needs that many levels"
                    if nested
                    else "an alias repeated inside aliases multiplies the document; refused, not expanded",
                    mark=mark,
                )
            return None
        if self._bomb:
            return None
        self.positions.values.setdefault(path, _mark(node))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        outer = id(node) in self._seen and self._alias_path is None
        self._seen.add(id(node))
        if outer:
            self._alias_path = path
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path, depth)
            if node.tag != _STD + "seq":
                self._bad_tag(node, path)
            return [self.build(child, (*path, i), depth + 1) for i, child in enumerate(node.value)]
        finally:
            if outer:
                self._alias_path = None

    def _mapping(self, node: yaml.MappingNode, path: PathT, depth: int) -> dict:
        if node.tag != _STD + "map":
            self._bad_tag(node, path)
        out: dict[Any, Any] = {}
        merged: dict[Any, Any] = {}
        seen: dict[Any, yaml.Node] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _PLAIN and key_node.value == "<<":
                merged.update(self._merge(value_node, path, depth))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._error(
                    "FF101", "a mapping key must be a plain value, not a list or mapping", key_node, path
                )
                continue
            self.chars += len(key_node.value)  # aliased mappings repeat their keys too
            key = self._scalar(key_node, path)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                key = str(key)
            if key in seen:
                first = _mark(seen[key])
                self._error(
                    "FF102",
                    f"duplicate key {key!r} (first defined at line {first.line})",
                    key_node,
                    (*path, key),
                    hint="YAML keeps only one of them: remove or rename one",
                )
                continue
            seen[key] = key_node
            self.positions.keys[(*path, key)] = _mark(key_node)
            out[key] = self.build(value_node, (*path, key), depth + 1)
        for key, value in merged.items():  # explicit keys win over merged ones, as YAML's merge key says
            out.setdefault(key, value)
        return out

    def _merge(self, node: yaml.Node, path: PathT, depth: int) -> dict:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        result: dict = {}
        for src in reversed(sources):  # earlier sources win
            if not isinstance(src, yaml.MappingNode):
                self._error("FF101", "`<<` merges only mappings", src, path)
                continue
            built = self._mapping(src, path, depth + 1)
            result.update(built)
        return result

    def _scalar(self, node: yaml.ScalarNode, path: PathT) -> Any:
        value, tag = node.value, node.tag
        if tag == _PLAIN:
            if _NULL.match(value):
                return None
            if value in _BOOL:
                return _BOOL[value]
            if _INT.match(value):
                return self._int(value, node, path)
            if _FLOAT.match(value):
                return float(value)
            if value.lower() in _SPECIAL_FLOAT:
                return _SPECIAL_FLOAT[value.lower()]
            return value
        if tag == _STD + "str":
            return value
        if tag == _STD + "int":
            try:
                return self._int(value, node, path, base=0)
            except ValueError:
                self._error("FF101", f"!!int value {_quote(value)} is not an integer", node, path)
                return None
        if tag == _STD + "float":
            try:
                return float(value)
            except ValueError:
                self._error("FF101", f"!!float value {value!r} is not a number", node, path)
                return None
        if tag == _STD + "bool":
            if value in _BOOL:
                return _BOOL[value]
            self._error("FF101", f"!!bool value {value!r} is not true or false", node, path)
            return None
        if tag == _STD + "null":
            return None
        self._bad_tag(node, path)
        return None

    def _int(self, text: str, node: yaml.Node, path: PathT, base: int | None = None) -> int | None:
        # Python refuses to read integers of more than 4300 digits (sys.get_int_max_str_digits); no setting of
        # pipelines.yaml needs a number that long.
        digits = len(text.strip().lstrip("+-"))
        if digits > MAX_INT_DIGITS:
            self._error(
                INT_TOO_LONG,
                f"integer too long: {digits} digits (at most {MAX_INT_DIGITS})",
                node,
                path,
                hint="no setting takes a number that large; quote it if it is meant as text",
            )
            return None
        if base is not None:
            return int(text, base)
        return int(text, 0) if text[:2] in ("0o", "0x") else int(text)

    def _bad_tag(self, node: yaml.Node, path: PathT) -> None:
        tag = node.tag
        if tag.startswith(_STD):
            tag = "!!" + tag[len(_STD) :]
        danger = "python/" in tag
        self._error(
            "FF103",
            f"tag {tag} is not allowed"
            + (" (it would run Python code; it is never executed)" if danger else ""),
            node,
            path,
            hint="pipelines.yaml holds plain data only: strings, numbers, booleans, lists and mappings",
        )


def _quote(text: str, limit: int = 200) -> str:
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}… ({len(text)} characters)"


def format_path(path: PathT) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
