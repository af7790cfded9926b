"""The validated, resolved form of one pipeline: what the planner and both backends read."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def is_remote(uri: str) -> bool:
    return uri.startswith("s3://")


@dataclass(frozen=True)
class Spec:
    name: str
    config: dict[
        str, Any
    ]  # the pipeline as in pipelines.yaml: templates, environment, --set and defaults applied
    file: Path  # the pipelines.yaml it came from
    env: str | None = None

    @classmethod
    def create(cls, name: str, config: dict[str, Any], *, file: Path, env: str | None) -> Spec:
        """Resolve local source paths against the YAML file's folder (not the working directory)."""
        base = file.resolve().parent
        sources = {
            key: uri if is_remote(uri) or Path(uri).is_absolute() else str((base / uri).resolve())
            for key, uri in config["data"]["sources"].items()
        }
        config = {**config, "data": {**config["data"], "sources": sources}}
        return cls(name=name, config=config, file=file.resolve(), env=env)

    @property
    def workspace(self) -> Path:
        """Where local state (.fraudflow/) lives: beside the pipelines file."""
        return self.file.parent

    def section(self, *keys: str) -> dict[str, Any]:
        """The subset of the config a step needs, e.g. spec.section("data", "features", "split")."""
        return {k: self.config[k] for k in keys if k in self.config}

    def to_json(self) -> str:
        return json.dumps(self.config, indent=2, sort_keys=True)
