"""The champion a `gate.champion` compares with, locally: the newest Approved version of the group in the local
registry, looked up when the run reaches the evaluate step (a version approved after the last run counts)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Champion:
    argv: tuple[str, ...]  # evaluate.py's arguments: the champion's model folder, or why there is none
    identity: Any  # part of evaluate's cache key: which version, and its model's content


def find_champion(
    config: dict[str, Any] | None, state_dir: Path, content: Callable[[Path, str], str]
) -> Champion:
    if not config:
        return Champion((), None)
    from fraudflow.local.registry import Registry

    group = str(config["model_package_group"])
    if not (state_dir / "registry.db").exists():
        return _none(f"nothing is registered yet (no model package group {group!r})")
    registry = Registry(state_dir)
    try:
        if not any(g["name"] == group for g in registry.list_groups()):
            return _none(f"no model package group {group!r} yet")
        version = registry.latest(group, "Approved")
    finally:
        registry.close()
    if version is None:
        return _none(f"no Approved version in model package group {group!r}")
    label = f"{group}/{version.version}"
    argv = ("--champion-model-dir", str(version.model_dir), "--champion-name", label)
    return Champion(argv, [label, content(version.model_dir, "champion model")])


def _none(reason: str) -> Champion:
    return Champion(("--no-champion", reason), reason)
