"""The typed view of a pipeline's config (fraudflow/spec/config_types.py) is generated from the schema and cannot
drift from it: the committed module is what the generator makes of today's schema, and every TypedDict has
exactly the keys of the schema object it stands for."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest

from fraudflow.spec import config_types

REPO = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((REPO / "schemas" / "pipelines.schema.json").read_text())


def _tool() -> Any:
    spec = importlib.util.spec_from_file_location("gen_config_types", REPO / "tools" / "gen_config_types.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_config_types"] = module
    spec.loader.exec_module(module)
    return module


def test_committed_module_is_what_the_schema_generates():
    assert _tool().main(["--check"]) == 0


def test_a_schema_change_makes_the_check_fail():
    tool = _tool()
    schema = copy.deepcopy(SCHEMA)
    schema["$defs"]["pipeline"]["properties"]["gate"]["properties"]["min_recall"] = {"type": "number"}
    changed = tool.Generator(schema).module()
    assert '"min_recall": float' in changed
    assert changed != tool.Generator(copy.deepcopy(SCHEMA)).module()


def _deref(node: dict) -> dict:
    while "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].split("/")[-1]]
    return node


def _pairs(node: dict, typed: Any, where: str) -> list[tuple[str, set[str], set[str]]]:
    """(where, schema keys, TypedDict keys) for this object and every object with fixed properties below it."""
    node = _deref(node)
    out = [(where, set(node["properties"]), set(typed.__annotations__))]
    for key, sub in node["properties"].items():
        sub = _deref(sub)
        if sub.get("type") == "array" and "properties" in sub.get("items", {}):
            sub = sub["items"]
        if "properties" in sub:
            child = typed.__annotations__[key]
            if get_origin(child) is list:
                child = get_args(child)[0]
            if hasattr(child, "__forward_arg__"):  # "Required[...]", quoted
                child = getattr(
                    config_types, child.__forward_arg__.removeprefix("Required[").removesuffix("]")
                )
            out += _pairs(sub, child, f"{where}.{key}")
    return out


@pytest.mark.parametrize(
    "where,schema_keys,typed_keys",
    _pairs(SCHEMA["$defs"]["pipeline"], config_types.PipelineConfig, "pipeline"),
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_typeddict_keys_match_the_schema(where, schema_keys, typed_keys):
    assert typed_keys == schema_keys, where


def test_required_keys_are_those_of_a_resolved_pipeline():
    resolved = next(p for p in SCHEMA["$defs"]["resolvedPipeline"]["allOf"] if "$ref" not in p)
    text = (REPO / "fraudflow" / "spec" / "config_types.py").read_text()
    top = text[text.index("PipelineConfig = TypedDict(") :]
    required = {line.split('"')[1] for line in top.splitlines() if '"Required[' in line}
    assert required == set(resolved["required"])
