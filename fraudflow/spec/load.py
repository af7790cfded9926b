"""pipelines.yaml → validated `Spec`s: the one entry point every command uses.

Order, so that every error is found in one pass and points at the right line:
parse (positions) → pick the environment → render templates in strings (typed by the schema) → schema-check the
whole file (every environment included) → per pipeline: deep-merge defaults, environment, pipeline, --set →
fill the schema's defaults → schema-check the resolved pipeline (required keys) → semantic checks.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fraudflow.errors import Diagnostic, UsageError, UserError
from fraudflow.spec import schema as sch
from fraudflow.spec.model import Spec
from fraudflow.spec.schema import _closest_hint
from fraudflow.spec.template import Renderer
from fraudflow.spec.yamlload import INT_TOO_LONG, Mark, PathT, Positions, parse_file, parse_text

TOP_KEYS = ("version", "vars", "defaults", "environments", "pipelines")


@dataclass
class Override:
    path: PathT
    raw: str
    text: str  # as typed, for error locations

    @property
    def origin(self) -> str:
        text = self.text if len(self.text) <= 120 else f"{self.text[:120]}…"
        return f"--set {text}"


@dataclass
class LoadResult:
    specs: list[Spec] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]


def parse_overrides(items: list[str]) -> list[Override]:
    out = []
    for item in items:
        path, sep, raw = item.partition("=")
        if not sep or not path.strip():
            raise UsageError.single(
                "FF402",
                f"--set {item!r}: expected PATH=VALUE",
                file="<command line>",
                hint="e.g. --set gate.threshold=0.8 or --set split.seed=7",
            )
        # A list index is a short run of ASCII digits (str.isdigit also accepts '²', which int() refuses).
        parts: list[Any] = [
            int(p) if p.isascii() and p.isdigit() and len(p) <= 9 else p for p in path.strip().split(".")
        ]
        out.append(Override(tuple(parts), raw, item))
    return out


def load(
    file: str | Path,
    *,
    env: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    pipeline: str | None = None,
    text: str | None = None,
    environ: dict[str, str] | None = None,
) -> LoadResult:
    """Load, resolve and check. Usage mistakes (unknown --env, --pipeline, bad --set) raise UsageError."""
    path = Path(file)
    sets = parse_overrides(list(overrides))
    doc, pos = parse_text(text, str(path)) if text is not None else parse_file(path)
    if not isinstance(doc, dict):
        what = "a list" if isinstance(doc, list) else f"a single value ({type(doc).__name__})"
        raise UserError.single(
            "FF106",
            f"the top level must be a mapping with `version` and `pipelines`, not {what}",
            file=str(path),
            line=1,
            column=1,
            path="(top level)",
            hint="start with `version: 1` and `pipelines:`",
        )
    result = LoadResult()
    envs = _mapping_at(doc, "environments")
    overlay: dict = {}
    if env is not None:
        if env not in envs:
            mark = pos.key(("environments",))
            known = ", ".join(sorted(envs)) or "none declared"
            raise UsageError.single(
                "FF401",
                f"unknown environment {env!r}",
                file=str(path),
                line=mark.line if mark else None,
                column=mark.column if mark else None,
                path="environments",
                hint=f"environments in this file: {known}",
            )
        overlay = envs[env] if isinstance(envs[env], dict) else {}

    # Templates: vars first (they may use env.*), then every other string.
    raw_vars = _merge_dicts(doc.get("vars") or {}, overlay.get("vars") or {})
    renderer = Renderer(raw_vars if isinstance(raw_vars, dict) else {}, pos, environ)
    variables = renderer.render_tree(raw_vars, ("vars",))
    renderer.use_vars(variables)
    rendered = {
        k: (v if k == "vars" else renderer.render_tree(v, (k,), _coerce_root)) for k, v in doc.items()
    }
    result.diagnostics += renderer.errors
    pos.labels.update(renderer.labels())  # values made from environment variables are never quoted

    result.diagnostics += sch.validate(rendered, pos)
    pipelines = _mapping_at(rendered, "pipelines")
    if pipeline is not None and pipeline not in pipelines:
        raise UsageError.single(
            "FF405",
            f"unknown pipeline {pipeline!r}",
            file=str(path),
            path="pipelines",
            hint="pipelines in this file: " + (", ".join(pipelines) or "none"),
        )
    all_envs = _mapping_at(rendered, "environments")
    env_overlay = all_envs.get(env, {}) if env else {}
    # Every environment, not only the chosen one: a typo in the prod overlay should fail in CI, before prod.
    for env_name, overlay_ in all_envs.items():
        overlaid = overlay_.get("pipelines") if isinstance(overlay_, dict) else None
        for name in overlaid if isinstance(overlaid, dict) else {}:
            if name not in pipelines:
                result.diagnostics.append(
                    pos.diagnostic(
                        "FF403",
                        f"environment {env_name!r} overlays unknown pipeline {name!r}",
                        ("environments", env_name, "pipelines", name),
                        key=True,
                        hint=_closest_hint(str(name), list(pipelines)),
                    )
                )

    doc_sets = [o for o in sets if o.path[0] in TOP_KEYS]
    if doc_sets:
        raise UsageError.single(
            "FF402",
            f"--set {doc_sets[0].text!r}: give the path inside the pipeline",
            file="<command line>",
            hint="e.g. --set gate.threshold=0.8 (applies to the pipeline)",
        )
    selected = [pipeline] if pipeline else list(pipelines)
    for name in selected:
        layers: list[tuple[Any, PathT]] = [
            (rendered.get("defaults"), ("defaults",)),
            ((env_overlay or {}).get("defaults"), ("environments", env, "defaults")),
            (pipelines[name], ("pipelines", name)),
            (
                ((env_overlay or {}).get("pipelines") or {}).get(name),
                ("environments", env, "pipelines", name),
            ),
        ]
        spec, diags = _resolve_pipeline(name, layers, pos, sets, path, env)
        result.diagnostics += diags
        if spec is not None:
            result.specs.append(spec)
    # A template that failed keeps its raw text; the schema and semantic checks of that text would only repeat
    # the template error in a less helpful way.
    failed = {(d.file, d.line, d.column) for d in renderer.errors}
    result.diagnostics = [
        d
        for d in result.diagnostics
        if d in renderer.errors or d.code.startswith("FF3") or (d.file, d.line, d.column) not in failed
    ]
    result.diagnostics = [renderer.redact(d) for d in _dedupe(result.diagnostics)]
    return result


def load_one(file: str | Path, *, env: str | None, overrides: list[str], pipeline: str | None) -> Spec:
    """The one pipeline a command works on; raises UserError with every problem when the file is invalid."""
    result = load(file, env=env, overrides=overrides, pipeline=pipeline)
    if result.errors:
        raise UserError(result.errors)
    if len(result.specs) > 1:
        names = ", ".join(s.name for s in result.specs)
        raise UsageError.single(
            "FF406",
            "the file declares several pipelines: choose one with --pipeline",
            file=str(file),
            hint=f"pipelines: {names}",
        )
    return result.specs[0]


def _resolve_pipeline(
    name: str,
    layers: list[tuple[Any, PathT]],
    pos: Positions,
    sets: list[Override],
    file: Path,
    env: str | None,
) -> tuple[Spec | None, list[Diagnostic]]:
    from fraudflow.spec.semantic import check

    present = [(v, p) for v, p in layers if v is not None]
    local = Positions(pos.file, prefix=("pipelines", name), labels=pos.labels)
    merged = _merge_layers(present, (), pos, local) if present else {}
    if not isinstance(merged, dict):
        return None, []
    diags: list[Diagnostic] = []
    for o in sets:
        target = sch.subschema(o.path)
        if target is None:
            parent = o.path[:-1]
            keys = sch.known_keys(parent)
            raise UsageError.single(
                "FF404",
                f"--set {o.text!r}: no such setting {'.'.join(map(str, o.path))!r}",
                file="<command line>",
                hint=_closest_hint(str(o.path[-1]), keys),
            )
        local.values[o.path] = Mark(None, None, file=f"<{o.origin}>")
        local.keys[o.path] = Mark(None, None, file=f"<{o.origin}>")
        try:
            _assign(merged, o.path, _coerce(target, o.raw))
        except UnreadableValue as exc:
            diags.append(local.diagnostic(exc.code, str(exc), o.path, hint=exc.hint))
    resolved = sch.fill_defaults(merged)
    diags += sch.validate(resolved, local, ref="#/$defs/resolvedPipeline")
    bad_numbers = sch.non_finite(resolved, local, set())
    reported = {d.path for d in diags}
    diags += [d for d in bad_numbers if d.path not in reported]
    if (
        not bad_numbers
    ):  # the semantic checks do arithmetic: NaN or a 400-digit integer would mislead or crash it
        diags += check(name, resolved, local, file.resolve().parent)
    if any(d.is_error for d in diags):
        return None, diags
    return Spec.create(name, resolved, file=file, env=env), diags


def _merge_layers(layers: list[tuple[Any, PathT]], rel: PathT, src: Positions, dst: Positions) -> Any:
    """Deep-merge mappings, later layers winning; lists and scalars replace. Records where each value came from."""
    last_plain = max((i for i, (v, _) in enumerate(layers) if not isinstance(v, dict)), default=-1)
    value, origin = layers[-1]
    mark = src.value(origin)
    if mark:
        dst.values[rel] = mark
    key_mark = src.keys.get(tuple(origin))
    if key_mark:
        dst.keys[rel] = key_mark
    if last_plain == len(layers) - 1:
        _copy_positions(value, origin, rel, src, dst)
        return copy.deepcopy(value)
    dicts = layers[last_plain + 1 :]
    out: dict = {}
    for d, _ in dicts:
        for k in d:
            if k not in out:
                out[k] = None
    for k in list(out):
        sub = [(d[k], (*p, k)) for d, p in dicts if k in d]
        out[k] = _merge_layers(sub, (*rel, k), src, dst)
    return out


def _copy_positions(value: Any, origin: PathT, rel: PathT, src: Positions, dst: Positions) -> None:
    """Carry the positions of a list's items (and what they hold) over, so that an error in one item points at
    that item rather than at the whole list."""
    if isinstance(value, list):
        items: Any = enumerate(value)
    elif isinstance(value, dict):
        items = value.items()
    else:
        return
    for k, v in items:
        mark = src.values.get((*origin, k))
        if mark:
            dst.values[(*rel, k)] = mark
        key_mark = src.keys.get((*origin, k))
        if key_mark:
            dst.keys[(*rel, k)] = key_mark
        _copy_positions(v, (*origin, k), (*rel, k), src, dst)


def _mapping_at(doc: dict[str, Any], key: str) -> dict[str, Any]:
    """doc[key] when it is a mapping, else {} (the schema check reports the wrong shape)."""
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def _merge_dicts(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge_dicts(base.get(k), v) if k in base else v
        return out
    return over


def _assign(target: dict, path: PathT, value: Any) -> None:
    node = target
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = value


MAX_VALUE_NODES = 1000  # values in one --set value or template output (a list of metrics needs a handful)


class UnreadableValue(ValueError):
    """A --set value, --param value or template output that parses as YAML no program can read (an integer of
    more than 4300 digits)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.code, self.hint = diagnostic.code, diagnostic.hint


def _coerce(schema: dict | None, raw: str) -> Any:
    """Type a string from the command line or a template by what the schema expects there."""
    types = sch.value_types(schema)
    if types == ["string"] or not types and schema is not None and "enum" not in schema:
        return raw
    try:
        value, _ = parse_text(raw, "<value>", max_nodes=MAX_VALUE_NODES)
    except UserError as exc:
        too_long = [d for d in exc.diagnostics if d.code == INT_TOO_LONG]
        if too_long:
            raise UnreadableValue(too_long[0]) from None
        return raw
    if value is None and raw.strip() == "":
        return raw if "string" in types else None
    if isinstance(value, str) or "string" not in types:
        return value
    kind = {bool: "boolean", int: "integer", float: "number", list: "array", dict: "object"}.get(type(value))
    if kind in types or (kind == "integer" and "number" in types) or (value is None and "null" in types):
        return value
    return raw


def _coerce_root(path: PathT, rendered: str) -> Any:
    return _coerce(sch.subschema(path, "#"), rendered)


def _dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    seen, out = set(), []
    for d in diags:
        key = (d.code, d.file, d.line, d.column, d.message if d.line is None else "")
        if key not in seen:
            seen.add(key)
            out.append(d)
    return sorted(out, key=Diagnostic.sort_key)
