"""A readable, step-level diff between two pipeline definitions (what `plan` prints)."""

from __future__ import annotations

import json
from typing import Any

MAX_LINES_PER_STEP = 12


def steps_by_name(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every step, the Condition's branches included, keyed by name (names are unique in a pipeline)."""
    out: dict[str, dict[str, Any]] = {}

    def walk(steps: list[dict[str, Any]], where: str) -> None:
        for s in steps:
            if s.get("Type") == "Condition":
                args = s.get("Arguments", {})
                shallow = {
                    **s,
                    "Arguments": {k: v for k, v in args.items() if k not in ("IfSteps", "ElseSteps")},
                }
                shallow["Branches"] = {
                    "IfSteps": [x.get("Name") for x in args.get("IfSteps", [])],
                    "ElseSteps": [x.get("Name") for x in args.get("ElseSteps", [])],
                }
                out[s["Name"]] = shallow
                walk(args.get("IfSteps", []), f"{s['Name']} (if)")
                walk(args.get("ElseSteps", []), f"{s['Name']} (else)")
            else:
                out[s.get("Name", "?")] = s

    walk(definition.get("Steps", []), "")
    return out


def _changes(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        lines = []
        for k in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{k}" if path else str(k)
            if k not in old:
                lines.append(f"+ {sub}: {_short(new[k])}")
            elif k not in new:
                lines.append(f"- {sub}: {_short(old[k])}")
            else:
                lines += _changes(old[k], new[k], sub)
        return lines
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        lines = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            lines += _changes(a, b, f"{path}[{i}]")
        return lines
    return [] if old == new else [f"~ {path}: {_short(old)} → {_short(new)}"]


def _short(value: Any, limit: int = 100) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def diff(deployed: dict[str, Any] | None, rendered: dict[str, Any]) -> list[str]:
    """Lines describing what would change; empty when the definitions are equal."""
    if deployed is None:
        names = ", ".join(steps_by_name(rendered))
        return [f"+ pipeline (new): {len(steps_by_name(rendered))} steps: {names}"]
    if deployed == rendered:
        return []
    lines: list[str] = []
    top_old = {k: v for k, v in deployed.items() if k != "Steps"}
    top_new = {k: v for k, v in rendered.items() if k != "Steps"}
    if top_old != top_new:
        old_params = {p.get("Name"): p for p in top_old.pop("Parameters", []) or []}
        new_params = {p.get("Name"): p for p in top_new.pop("Parameters", []) or []}
        for name in sorted(set(old_params) | set(new_params)):
            if name not in old_params:
                lines.append(f"+ parameter {name} = {_short(new_params[name].get('DefaultValue'))}")
            elif name not in new_params:
                lines.append(f"- parameter {name}")
            elif old_params[name] != new_params[name]:
                lines += [
                    f"~ parameter {name}: " + x[2:] for x in _changes(old_params[name], new_params[name])
                ]
        lines += ["  definition: " + x for x in _changes(top_old, top_new)]
    old, new = steps_by_name(deployed), steps_by_name(rendered)
    for name in new:
        if name not in old:
            lines.append(f"+ step {name} ({new[name].get('Type')})")
    for name in old:
        if name not in new:
            lines.append(f"- step {name} ({old[name].get('Type')})")
    for name in new:
        if name in old and old[name] != new[name]:
            changes = _changes(old[name], new[name])
            lines.append(f"~ step {name} ({new[name].get('Type')}): {len(changes)} change(s)")
            lines += ["    " + c for c in changes[:MAX_LINES_PER_STEP]]
            if len(changes) > MAX_LINES_PER_STEP:
                lines.append(f"    … and {len(changes) - MAX_LINES_PER_STEP} more")
    return lines
