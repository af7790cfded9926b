"""The validated, resolved form of one pipeline: what the planner and both backends read."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from fraudflow.spec.config_types import PipelineConfig


def is_remote(uri: str) -> bool:
    return uri.startswith("s3://")


@dataclass(frozen=True)
class Spec:
    name: str
    # the pipeline as in pipelines.yaml: templates, environment, --set and defaults applied; schema-valid, so
    # typed by the TypedDicts generated from the schema
    config: PipelineConfig
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
        resolved = {**config, "data": {**config["data"], "sources": sources}}
        # the loader creates a Spec only from a config that passed the resolved-pipeline schema
        return cls(name=name, config=cast(PipelineConfig, resolved), file=file.resolve(), env=env)

    @property
    def workspace(self) -> Path:
        """Where local state (.fraudflow/) lives: beside the pipelines file."""
        return self.file.parent

    def section(self, *keys: str) -> dict[str, Any]:
        """The subset of the config a step needs, e.g. spec.section("data", "features", "split")."""
        config = cast(dict[str, Any], self.config)  # keys chosen at run time
        return {k: config[k] for k in keys if k in config}

    def to_json(self) -> str:
        return json.dumps(self.config, indent=2, sort_keys=True)
