"""The JSON Schema of pipelines.yaml: loading it, validating with it, and reading types and defaults from it.

The schema file is the one place that says which keys exist, their types, ranges and defaults: `--set` values and
templated strings are typed by it, and `fill_defaults` applies its `default`s.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from fraudflow.errors import Diagnostic
from fraudflow.spec.yamlload import PathT, Positions, format_path


def schema_path() -> Path:
    """schemas/pipelines.schema.json beside the package (source tree), or installed under share/fraudflow."""
    here = Path(__file__).resolve().parents[2] / "schemas" / "pipelines.schema.json"
    if here.exists():
        return here
    import sys

    return Path(sys.prefix) / "share" / "fraudflow" / "schemas" / "pipelines.schema.json"


@lru_cache(maxsize=1)
def load_schema() -> dict:
    return json.loads(schema_path().read_text())


RANGE_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def is_finite_number(value: Any) -> bool:
    """A number a float can hold: NaN, ±inf and integers beyond ±1.8e308 are not (NaN compares False to every
    bound, so a plain range check lets it through; a huge integer overflows where a float is expected)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return not isinstance(value, int) or isinstance(value, bool) or value.bit_length() <= 1023


def validator_class() -> Any:
    """Draft 2020-12, with one rule added: a number checked against a range must be finite."""
    return _validator_class()


@lru_cache(maxsize=1)
def _validator_class() -> Any:
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import ValidationError

    def finite(keyword: str) -> Any:
        check = Draft202012Validator.VALIDATORS[keyword]

        def validate(validator: Any, bound: Any, instance: Any, schema: dict) -> Any:
            if validator.is_type(instance, "number") and not is_finite_number(instance):
                if keyword == next(k for k in RANGE_KEYWORDS if k in schema):  # once per value
                    yield ValidationError(f"{short_repr(instance)} is not a finite number")
                return
            yield from check(validator, bound, instance, schema)

        return validate

    return validators.extend(Draft202012Validator, {k: finite(k) for k in RANGE_KEYWORDS})


@lru_cache(maxsize=4)
def _validator(ref: str | None) -> Any:
    schema = load_schema()
    if ref is not None:  # validate against a $defs entry, keeping $refs resolvable
        schema = {**{k: v for k, v in schema.items() if k in ("$schema", "$id", "$defs")}, "$ref": ref}
    return validator_class()(schema)


def check_value(value: Any, node: dict) -> list[Any]:
    """jsonschema's errors for `value` against one schema node (e.g. `subschema(path)`), $refs resolvable."""
    schema = {**node, "$defs": load_schema()["$defs"]}
    return list(validator_class()(schema).iter_errors(value))


def validate(
    instance: Any, positions: Positions, *, ref: str | None = None, base: PathT = ()
) -> list[Diagnostic]:
    """All schema violations of `instance` (located at `base` in the document) as diagnostics."""
    if is_valid(instance, ref):
        return []  # the common case, decided without importing jsonschema (a third of validate's start-up)
    out: list[Diagnostic] = []
    for error in _validator(ref).iter_errors(instance):
        out.extend(_diagnose(error, positions, base))
    return out


# ------------------------------------------------------------------------------------------ quick validity check
# A small validator for the keywords this schema uses. It only answers "valid?": when the answer is no (or the
# schema uses a keyword it does not know), jsonschema runs and produces the errors, so that every diagnostic
# still comes from the reference implementation. tests/test_spec_loader.py checks that both agree.

_KNOWN = frozenset(
    {
        *("$schema", "$id", "$defs", "$ref", "title", "description", "default", "examples"),
        *("type", "enum", "const", "allOf", "anyOf", "oneOf"),
        *(
            "properties",
            "additionalProperties",
            "required",
            "propertyNames",
            "minProperties",
            "maxProperties",
        ),
        *("pattern", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"),
        *("items", "minItems", "maxItems", "uniqueItems"),
    }
)


class _Unsupported(Exception):
    pass


def is_valid(instance: Any, ref: str | None = None) -> bool:
    """True if `instance` is valid against the schema (or the `#/$defs/...` entry `ref`); False if invalid or
    if the quick check cannot decide."""
    root = load_schema()
    try:
        return _ok(instance, root if ref is None else {"$ref": ref}, root)
    except _Unsupported:
        return False


@lru_cache(maxsize=256)
def _regex(pattern: str) -> Any:
    import re

    return re.compile(pattern)


def _json_eq(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1 (Python says it is), 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_eq(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_eq(a[k], b[k]) for k in a)
    same_kind = type(a) is type(b) or (isinstance(a, (int, float)) and isinstance(b, (int, float)))
    return same_kind and a == b


def _is_type(value: Any, t: str) -> bool:
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    if t == "string":
        return isinstance(value, str)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if t == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, (int, float))
    raise _Unsupported(t)


def _ok(value: Any, node: dict, root: dict) -> bool:
    if not node.keys() <= _KNOWN:
        raise _Unsupported(sorted(node.keys() - _KNOWN))
    ref = node.get("$ref")
    if ref is not None:
        if not ref.startswith("#/$defs/"):
            raise _Unsupported(ref)
        if not _ok(value, root["$defs"][ref[len("#/$defs/") :]], root):
            return False
    t = node.get("type")
    if t is not None and not any(_is_type(value, x) for x in ([t] if isinstance(t, str) else t)):
        return False
    if "enum" in node and not any(_json_eq(value, e) for e in node["enum"]):
        return False
    if "const" in node and not _json_eq(value, node["const"]):
        return False
    if isinstance(value, str):
        if "pattern" in node and not _regex(node["pattern"]).search(value):
            return False
        if len(value) < node.get("minLength", 0) or len(value) > node.get("maxLength", len(value)):
            return False
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not is_finite_number(value) and any(k in node for k in RANGE_KEYWORDS):
            return False
        if "minimum" in node and value < node["minimum"]:
            return False
        if "maximum" in node and value > node["maximum"]:
            return False
        if "exclusiveMinimum" in node and value <= node["exclusiveMinimum"]:
            return False
        if "exclusiveMaximum" in node and value >= node["exclusiveMaximum"]:
            return False
    elif isinstance(value, dict):
        if any(k not in value for k in node.get("required", ())):
            return False
        if len(value) < node.get("minProperties", 0) or len(value) > node.get("maxProperties", len(value)):
            return False
        props = node.get("properties", {})
        extra = node.get("additionalProperties", True)
        names = node.get("propertyNames")
        for k, v in value.items():
            if names is not None and not _ok(k, names, root):
                return False
            if k in props:
                if not _ok(v, props[k], root):
                    return False
            elif extra is False or (isinstance(extra, dict) and not _ok(v, extra, root)):
                return False
    elif isinstance(value, list):
        if len(value) < node.get("minItems", 0) or len(value) > node.get("maxItems", len(value)):
            return False
        items = node.get("items")
        if isinstance(items, dict) and not all(_ok(v, items, root) for v in value):
            return False
        if items is False and value:
            return False
        if node.get("uniqueItems") and any(
            _json_eq(value[i], value[j]) for i in range(len(value)) for j in range(i + 1, len(value))
        ):
            return False
    if "allOf" in node and not all(_ok(value, sub, root) for sub in node["allOf"]):
        return False
    if "anyOf" in node and not any(_ok(value, sub, root) for sub in node["anyOf"]):
        return False
    return not ("oneOf" in node and sum(_ok(value, sub, root) for sub in node["oneOf"]) != 1)


# ---------------------------------------------------------------------------------------------------- errors


def non_finite(
    value: Any, positions: Positions, reported: set[str | None], path: PathT = ()
) -> list[Diagnostic]:
    """NaN and infinities anywhere in a resolved pipeline, also where the schema sets no range (bias.facet_values):
    every number of a pipeline ends up in JSON (step configs, the SageMaker definition), which has neither."""
    if isinstance(value, dict):
        return [d for k, v in value.items() for d in non_finite(v, positions, reported, (*path, k))]
    if isinstance(value, list):
        return [d for i, v in enumerate(value) for d in non_finite(v, positions, reported, (*path, i))]
    if isinstance(value, (float, int)) and not is_finite_number(value):
        diag = positions.diagnostic(
            "FF204",
            f"{positions.label(path) or short_repr(value)} is not a finite number",
            path,
            hint="NaN and infinity cannot be written as JSON; give a number",
        )
        return [] if diag.path in reported else [diag]
    return []


def explain(error: Any, positions: Positions, base: PathT = ()) -> list[Diagnostic]:
    """A jsonschema error as fraudflow's diagnostics (codes FF201-FF207), located by `positions`."""
    return _diagnose(error, positions, base)


def _diagnose(error: Any, positions: Positions, base: PathT) -> list[Diagnostic]:
    path: PathT = (*base, *error.absolute_path)
    kind = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    label = positions.label(path)  # set when the value came from an environment variable

    def at(
        code: str, message: str, p: PathT = path, hint: str | None = None, key: bool = False
    ) -> Diagnostic:
        return positions.diagnostic(code, message, p, key=key, hint=hint)

    if kind == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(schema.get("properties", {}))
        extras = [k for k in error.instance if k not in schema.get("properties", {})]
        return [
            at("FF201", f"unknown key {k!r}", (*path, k), hint=_closest_hint(str(k), allowed), key=True)
            for k in extras
        ]
    if kind == "pattern" and str(schema.get("pattern", "")).startswith("^ml\\."):
        return [
            at(
                "FF206",
                f"{_describe(error.instance, label)} is not a SageMaker instance type",
                hint="instance types look like ml.m5.xlarge",
            )
        ]
    if "propertyNames" in error.relative_schema_path:
        # jsonschema reports a bad key as a `pattern`/`maxLength` error on the key string, at the parent's path:
        # point at the key itself.
        bad = error.instance
        key_path = (*path, bad) if isinstance(bad, str) else path
        parent = format_path(path) or "top level"
        return [
            at(
                "FF206",
                f"name {bad!r} not allowed in {parent}: {_rule(error)}",
                key_path,
                key=True,
                hint=_name_hint(format_path(path)),
            )
        ]
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return [
            at("FF205", f"missing required key {missing!r}", hint=_required_hint(path, missing), key=True)
        ]
    if kind in ("type", "oneOf", "anyOf"):
        expected = _expected_types(schema)
        return [at("FF202", f"expected {expected}, got {_describe(error.instance, label)}")]
    if kind in ("enum", "const"):
        options = schema.get("enum", [schema.get("const")])
        hint = _closest_hint(str(error.instance), [str(o) for o in options]) or (
            "allowed: " + ", ".join(json.dumps(o) for o in options)
        )
        return [
            at("FF203", f"{_describe(error.instance, label)} is not one of the allowed values", hint=hint)
        ]
    if kind in RANGE_KEYWORDS:
        if not is_finite_number(error.instance):
            return [
                at(
                    "FF204",
                    f"{label or short_repr(error.instance)} is not a finite number: {_range(schema)}",
                    hint="NaN, infinity and numbers beyond a float's range are refused wherever a range applies",
                )
            ]
        return [at("FF204", f"{label or short_repr(error.instance)} is out of range: {_range(schema)}")]
    if kind in ("pattern", "maxLength", "minLength"):
        return [
            at(
                "FF206",
                f"{_describe(error.instance, label)} is not a valid value here: {_rule(error)}",
                hint=_PATTERN_HINTS.get(_pattern(schema), schema.get("description")),
            )
        ]
    return [at("FF207", error.message)]


_PATTERN_HINTS = {
    "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$": "SageMaker names use letters, digits and hyphens only (no spaces, "
    "underscores or dots), starting and ending with a letter or digit",
}


# String patterns in the schema end with this alternative so that an editor checking the raw file (templates not
# yet rendered) accepts `{{ ... }}` values; fraudflow validates the rendered strings, which hold no `{{`.
TEMPLATE_ALT = "|\\{[{%]"


def _pattern(schema: dict) -> str:
    """The schema's pattern as users should read it: without the editors' template alternative."""
    pattern = str(schema.get("pattern", ""))
    return pattern[: -len(TEMPLATE_ALT)] if pattern.endswith(TEMPLATE_ALT) else pattern


def _closest_hint(word: str, options: list[str]) -> str | None:
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if match:
        return f"did you mean {match[0]!r}?"
    if options and len(options) <= 12:
        return "allowed: " + ", ".join(options)
    return None


def _name_hint(parent: str) -> str | None:
    if parent in ("pipelines", ""):
        return "SageMaker names: letters, digits and hyphens, starting with a letter or digit"
    if parent.endswith(".parameters"):
        return "SageMaker parameter names: letters and digits, starting with a letter (e.g. AucThreshold)"
    return None


def _required_hint(path: PathT, missing: str) -> str | None:
    if path and path[0] == "pipelines" and len(path) >= 2:
        return f"declare it in the pipeline or under `defaults` ({'.'.join(map(str, (*path[2:], missing)))})"
    return None


def _rule(error: Any) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "pattern":
        return f"must match {_pattern(schema)}"
    if error.validator == "maxLength":
        return f"at most {schema.get('maxLength')} characters"
    if error.validator == "minLength":
        return f"at least {schema.get('minLength')} characters"
    return error.message


def _range(schema: dict) -> str:
    parts = []
    if "minimum" in schema:
        parts.append(f">= {schema['minimum']}")
    if "exclusiveMinimum" in schema:
        parts.append(f"> {schema['exclusiveMinimum']}")
    if "maximum" in schema:
        parts.append(f"<= {schema['maximum']}")
    if "exclusiveMaximum" in schema:
        parts.append(f"< {schema['exclusiveMaximum']}")
    return "must be " + " and ".join(parts)


_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _expected_types(schema: dict) -> str:
    types = _types(schema)
    words = [_TYPE_WORDS.get(t, t) for t in types]
    return " or ".join(words) if words else "a different value"


def _types(schema: dict) -> list[str]:
    t = schema.get("type")
    if isinstance(t, str):
        return [t]
    if isinstance(t, list):
        return list(t)
    out: list[str] = []
    for branch in schema.get("oneOf", []) + schema.get("anyOf", []):
        for x in _types(branch):
            if x not in out:
                out.append(x)
    return out


MAX_QUOTE = 200  # characters of a value quoted in a message


def short_repr(value: Any, limit: int = MAX_QUOTE) -> str:
    """repr() of a value cut to about `limit` characters (a 5,000-digit integer is not worth quoting whole)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * limit:
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    text = repr(value) if not isinstance(value, (dict, list)) else json.dumps(value, default=str)[: limit + 1]
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(value) if isinstance(value, str) else 'more'} characters)"


def _describe(value: Any, label: str | None = None) -> str:
    if label is not None:  # the value came from the environment: never echoed
        return label
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"string {short_repr(value)}"
    return f"{type(value).__name__} {short_repr(value)}"


# ------------------------------------------------------------------------------------ schema as type information


def _deref(node: dict) -> list[dict]:
    """The subschemas that together describe `node`: follows $ref and allOf."""
    root = load_schema()
    out = [node]
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        out.extend(_deref(root["$defs"][ref.split("/")[-1]]))
    for sub in node.get("allOf", []):
        out.extend(_deref(sub))
    return out


def subschema(path: PathT, start: str = "#/$defs/pipeline") -> dict | None:
    """The merged schema of the value at `path` (relative to the `start` definition), or None if unknown."""
    nodes = [load_schema()] if start == "#" else _deref({"$ref": start})
    for part in path:
        nxt: list[dict] = []
        for n in nodes:
            props = n.get("properties", {})
            if isinstance(part, str) and part in props:
                nxt.extend(_deref(props[part]))
            elif isinstance(part, str) and isinstance(n.get("additionalProperties"), dict):
                nxt.extend(_deref(n["additionalProperties"]))
            elif isinstance(part, int) and isinstance(n.get("items"), dict):
                nxt.extend(_deref(n["items"]))
        if not nxt:
            return None
        nodes = nxt
    merged: dict = {}
    for n in reversed(nodes):
        merged.update(n)
    return merged


def value_types(schema: dict | None) -> list[str]:
    return _types(schema) if schema else []


def known_keys(path: PathT, start: str = "#/$defs/pipeline") -> list[str]:
    node = subschema(path, start)
    return sorted(node.get("properties", {})) if node else []


def fill_defaults(instance: dict, start: str = "#/$defs/pipeline") -> dict:
    """A copy of `instance` with the schema's defaults for absent keys of present objects.

    An object whose schema has a default (`{}`) is created when absent; one without (bias, explain, deploy...) is
    optional and stays absent: its absence switches the step off.
    """
    out = copy.deepcopy(instance)
    _fill(out, _merged(start))
    return out


def _merged(ref: str) -> dict:
    merged: dict = {}
    for n in reversed(_deref({"$ref": ref})):
        for k, v in n.items():
            if k == "properties" and "properties" in merged:
                merged["properties"] = {**merged["properties"], **v}
            else:
                merged[k] = v
    return merged


def _fill(value: Any, schema: dict) -> None:
    if not isinstance(value, dict):
        return
    for key, prop in schema.get("properties", {}).items():
        parts = _deref(prop)
        sub: dict = {}
        for n in reversed(parts):
            sub.update(n)
        if key not in value and "default" in sub:
            value[key] = copy.deepcopy(sub["default"])
        if key in value:
            _fill(value[key], sub)
