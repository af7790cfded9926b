"""schemas/pipelines.schema.json: a valid 2020-12 schema, documented everywhere, closed everywhere, and what
editors see when they open pipelines.yaml."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from fraudflow.cli import main
from fraudflow.spec.schema import TEMPLATE_ALT, load_schema, schema_path

REPO = Path(__file__).resolve().parents[1]
SCHEMA_FILE = REPO / "schemas" / "pipelines.schema.json"
SCHEMA = json.loads(SCHEMA_FILE.read_text())

# Maps whose keys are the user's own (names of variables, sources, pipelines...): open, but their values typed.
FREE_FORM_MAPS = {
    "properties/vars",
    "properties/environments",
    "properties/pipelines",
    "$defs/environment/properties/vars",
    "$defs/environment/properties/pipelines",
    "$defs/pipeline/properties/data/properties/sources",
    "$defs/pipeline/properties/data/properties/format/oneOf/1",
    "$defs/pipeline/properties/data/properties/expect/properties/columns",
    "$defs/pipeline/properties/features/properties/ordinal",
    "$defs/pipeline/properties/parameters",
    "$defs/pipeline/properties/tune/properties/hyperparameters",  # name → search range
    "$defs/pipeline/properties/monitor/properties/columns",
    "$defs/pipeline/properties/sagemaker/properties/tags",
    "$defs/pipeline/properties/deploy/properties/batch/properties/inputs",  # source name → s3:// URI
}


def walk(node: object, path: tuple = ()) -> Iterator[tuple[tuple, dict]]:
    """Every subschema with its path (JSON-pointer parts)."""
    if not isinstance(node, dict):
        return
    yield path, node
    for key, value in node.items():
        if key in ("properties", "$defs", "patternProperties"):
            for name, sub in value.items():
                yield from walk(sub, (*path, key, name))
        elif key in (
            "items",
            "additionalProperties",
            "propertyNames",
            "not",
            "if",
            "then",
            "else",
            "contains",
        ):
            yield from walk(value, (*path, key))
        elif key in ("allOf", "anyOf", "oneOf", "prefixItems"):
            for i, sub in enumerate(value):
                yield from walk(sub, (*path, key, i))


def pointer(path: tuple) -> str:
    return "/".join(map(str, path))


def test_schema_is_valid_2020_12() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(SCHEMA)


def test_loader_reads_the_same_file() -> None:
    assert schema_path().resolve() == SCHEMA_FILE.resolve()
    assert load_schema() == SCHEMA


def test_every_property_has_a_description() -> None:
    missing = [
        pointer(p)
        for p, node in walk(SCHEMA)
        if len(p) >= 2 and p[-2] in ("properties", "$defs") and not node.get("description")
    ]
    assert missing == []


def test_every_object_is_closed_or_a_typed_map() -> None:
    problems = []
    for p, node in walk(SCHEMA):
        types = node.get("type")
        if not (types == "object" or (isinstance(types, list) and "object" in types)):
            continue
        if (
            p[-1:] == ("additionalProperties",)
            and pointer(p[:-1]) in FREE_FORM_MAPS
            and isinstance(types, list)
        ):
            continue  # a variable's value: any JSON value, by design
        extra = node.get("additionalProperties")
        if pointer(p) in FREE_FORM_MAPS:
            if not (isinstance(extra, dict) and ("type" in extra or "$ref" in extra)):
                problems.append(f"{pointer(p)}: a map needs a typed additionalProperties")
            elif "$ref" not in extra and not extra.get("description"):
                problems.append(f"{pointer(p)}: describe the map's values")
        elif extra is not False:
            problems.append(f"{pointer(p)}: needs additionalProperties: false")
    assert problems == []


def test_every_ref_resolves() -> None:
    refs = [n["$ref"] for _, n in walk(SCHEMA) if "$ref" in n]
    assert refs
    for ref in refs:
        assert ref.startswith("#/$defs/") and ref.split("/")[-1] in SCHEMA["$defs"], ref


def test_defaults_are_valid_against_their_own_schema() -> None:
    # A default that its own schema rejects would make `fill_defaults` produce invalid pipelines.
    for p, node in walk(SCHEMA):
        if "default" in node and "$ref" not in node:
            sub = {k: v for k, v in node.items() if k != "default"}
            errors = list(
                Draft202012Validator({**sub, "$defs": SCHEMA["$defs"]}).iter_errors(node["default"])
            )
            assert not errors, (pointer(p), [e.message for e in errors])


def test_string_patterns_accept_templates_for_editors() -> None:
    # Editors see raw strings such as "{{ env.AWS_REGION }}"; fraudflow checks the rendered value.
    for p, node in walk(SCHEMA):
        if node.get("type") == "string" and "pattern" in node and "propertyNames" not in p:
            assert node["pattern"].endswith(TEMPLATE_ALT), pointer(p)
            assert re.search(node["pattern"], "{{ vars.x }}"), pointer(p)


def test_schema_command_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == SCHEMA


def test_pipelines_yaml_declares_the_schema_for_editors() -> None:
    first = (REPO / "pipelines.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=schemas/pipelines.schema.json"
    assert (REPO / first.split("$schema=")[1]).resolve() == SCHEMA_FILE.resolve()


def _check_jsonschema() -> list[str]:
    exe = shutil.which("check-jsonschema")
    if exe:
        return [exe]
    pytest.importorskip("check_jsonschema")
    return [sys.executable, "-m", "check_jsonschema"]


def test_check_jsonschema_accepts_raw_pipelines_yaml() -> None:
    proc = subprocess.run(
        [*_check_jsonschema(), "--schemafile", str(SCHEMA_FILE), "pipelines.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_jsonschema_rejects_what_the_schema_forbids(tmp_path: Path) -> None:
    # The same schema catches a typo'd key in an editor, not only in fraudflow.
    bad = tmp_path / "p.yaml"
    bad.write_text((REPO / "pipelines.yaml").read_text().replace("    gate: {", "    gaet: {"))
    proc = subprocess.run(
        [*_check_jsonschema(), "--schemafile", str(SCHEMA_FILE), str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "gaet" in proc.stdout + proc.stderr
