"""Write fraudflow/spec/config_types.py: TypedDicts of a resolved pipeline, generated from
schemas/pipelines.schema.json so that the types and the schema cannot drift.

    python tools/gen_config_types.py          # rewrite the module
    python tools/gen_config_types.py --check  # exit 1 if the module is not what the schema gives (CI, tests)

A key is Required when the schema requires it of a resolved pipeline (`#/$defs/resolvedPipeline`: the section's
own `required` plus what resolvedPipeline adds). Keys the schema fills with a default are still optional in the
type: defaults are filled only inside sections that are present.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schemas" / "pipelines.schema.json"
TARGET = ROOT / "fraudflow" / "spec" / "config_types.py"

HEADER = '''"""Typed view of a resolved pipeline's config (`Spec.config`). GENERATED from schemas/pipelines.schema.json by
tools/gen_config_types.py: edit the schema, then run the tool (tests/test_config_types.py fails when they differ).

Functional TypedDict syntax (ruff's UP013 is off for this file), as `lambda` is a key. `Required[...]` is quoted: typing.Required is Python 3.11+, and
only the type checker reads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, {imports}TypedDict

if TYPE_CHECKING:
    from typing_extensions import Required
'''

SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}


class Generator:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.classes: list[str] = []  # source of each TypedDict, dependencies first

    def deref(self, node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        if isinstance(ref, str):
            return self.deref(self.schema["$defs"][ref.split("/")[-1]])
        return node

    def type_of(self, node: dict[str, Any], name: str, extra_required: dict[str, Any]) -> str:
        node = self.deref(node)
        alternatives = node.get("oneOf") or node.get("anyOf")
        if alternatives:
            return " | ".join(dict.fromkeys(self.type_of(a, name, {}) for a in alternatives))
        if "enum" in node:
            return "Literal[" + ", ".join(repr(v) for v in node["enum"]) + "]"
        kinds = node.get("type")
        if isinstance(kinds, list):
            return " | ".join(
                SCALARS[k] if k in SCALARS else self.type_of({**node, "type": k}, name, {}) for k in kinds
            )
        if kinds == "array":
            items = node.get("items")
            return f"list[{self.type_of(items, name + 'Item', {}) if isinstance(items, dict) else 'Any'}]"
        if kinds == "object":
            if "properties" in node:
                return self.typed_dict(node, name, extra_required)
            extra = node.get("additionalProperties")
            value = self.type_of(extra, name + "Value", {}) if isinstance(extra, dict) else "Any"
            return f"dict[str, {value}]"
        if kinds in SCALARS:
            return SCALARS[kinds]
        return "Any"

    def typed_dict(self, node: dict[str, Any], name: str, extra_required: dict[str, Any]) -> str:
        required = set(node.get("required", [])) | set(extra_required.get("required", []))
        fields = []
        for key, sub in node["properties"].items():
            more = extra_required.get("properties", {}).get(key, {})
            t = self.type_of(sub, name.removesuffix("Config") + _camel(key), more)
            fields.append(f'        "{key}": ' + (f'"Required[{t}]"' if key in required else t) + ",")
        name = (name or "Pipeline") + "Config"  # the root is PipelineConfig, its sections DataConfig...
        self.classes.append(
            f'{name} = TypedDict(\n    "{name}",\n    {{\n'
            + "\n".join(fields)
            + "\n    },\n    total=False,\n)\n"
        )
        return name

    def module(self) -> str:
        defs = self.schema["$defs"]
        resolved = next(part for part in defs["resolvedPipeline"]["allOf"] if "$ref" not in part)
        self.type_of(defs["pipeline"], "", resolved)
        body = "\n\n".join(self.classes)
        used = [n for n in ("Any", "Literal") if re.search(rf"\b{n}\b", body)]
        return HEADER.format(imports="".join(n + ", " for n in used)) + "\n\n" + body


def _camel(key: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in key.split("_"))


def generate() -> str:
    import subprocess

    source = Generator(json.loads(SCHEMA.read_text())).module()
    # the committed file is ruff-formatted: format the same way, so `--check` compares like with like
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(TARGET), "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    return done.stdout if done.returncode == 0 else source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the module differs from the schema's")
    args = parser.parse_args(argv)
    source = generate()
    if args.check:
        if TARGET.read_text() != source:
            print(
                f"{TARGET.relative_to(ROOT)} is stale: run python tools/gen_config_types.py", file=sys.stderr
            )
            return 1
        return 0
    TARGET.write_text(source)
    return 0


if __name__ == "__main__":
    sys.exit(main())
