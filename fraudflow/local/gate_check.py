"""The local backend's gate: reads each condition's number from the report the Plan names and records the outcome.

The conditions and their bounds are the Plan's (fraudflow/gate.py), so the local gate and SageMaker's Condition step
decide the same way on the same files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fraudflow.errors import UserError
from fraudflow.gate import Condition, json_get
from fraudflow.plan import FileRef, Gate


def judge(gate: Gate, path_of: Callable[[FileRef], Path]) -> dict[str, Any]:
    """The gate's outcome: each condition with its value, requirement and pass/fail, and the champion comparison
    evaluate.py wrote. A bias metric Clarify could not compute (null) fails its condition."""
    docs: dict[Path, Any] = {}
    rows = []
    for cond in gate.conditions:
        path = path_of(gate.file_of(cond))
        if path not in docs:
            docs[path] = _read(path, cond)
        value = json_get(docs[path], cond.json_path)
        rows.append(
            {
                "metric": cond.label,
                "where": cond.where,
                "source": cond.source,
                "file": str(path),
                "json_path": cond.json_path,
                "value": value,
                "requirement": cond.requirement,
                "passed": cond.holds(value),
            }
        )
    outcome: dict[str, Any] = {"passed": all(r["passed"] for r in rows), "conditions": rows}
    champ = gate.champion
    if champ is not None:
        outcome["champion"] = json_get(docs[path_of(gate.file_of(champ))], "champion")
    first = gate.conditions[0]
    # the one-condition form's fields, as run.json always had them
    outcome.update(metric=first.label, value=rows[0]["value"], threshold=first.min)
    return outcome


def _read(path: Path, cond: Condition) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError.single(
            "FF625",
            f"the gate cannot read {path.name} for {cond.where}: {exc}",
            file=str(path),
            hint="run the step that writes it again",
        ) from None


def failures(outcome: dict[str, Any]) -> list[str]:
    """Each failed condition with its value: what `run` prints when the gate stops it (exit 3)."""
    out = []
    for row in outcome["conditions"]:
        if not row["passed"]:
            if row["where"] == "gate.champion":
                out.append(f"{row['metric']}: {champion_text(outcome.get('champion') or {})}")
            else:
                out.append(f"{row['metric']} {_value(row)} (needs {row['requirement']})")
    return out


def describe(row: dict[str, Any], champion: dict[str, Any] | None = None) -> str:
    """One condition's line: its value, requirement and verdict (the champion's: the comparison)."""
    verdict = "passed" if row["passed"] else "FAILED"
    if row["where"] == "gate.champion":
        return f"{row['metric']} {verdict}: {champion_text(champion or {})}"
    return f"{row['metric']} {_value(row)} {row['requirement']}: {verdict}"


def champion_text(champ: dict[str, Any]) -> str:
    """The champion comparison in one line: the paired difference and its interval, or why there was none."""
    if not champ.get("found"):
        return f"no champion: {champ.get('reason', 'none')}; the condition passes"
    diff = champ.get("difference") or {}
    ci = diff.get("confidence_interval") or {}
    interval = (
        f" [{ci['lower']:.4f}, {ci['upper']:.4f}] ({ci.get('level', 0):g} paired bootstrap, {ci.get('samples')} "
        "resamples)"
        if ci.get("lower") is not None
        else ""
    )
    kind = "relative difference" if champ.get("relative") else "difference"
    return (
        f"{champ['challenger']:.4f} vs champion {champ.get('model_package')} {champ['champion']:.4f}, paired "
        f"difference {diff.get('value', 0):+.4f}{interval}; the {kind}'s {champ.get('judged_on')} "
        f"{champ.get('judged', 0):+.4f} must be >= {champ.get('required', 0):+.4f}"
    )


def _value(row: dict[str, Any]) -> str:
    v = row["value"]
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{v:.4f}"
    return "undefined" if v is None else repr(v)


def registry_lines(metrics: Any) -> list[str]:
    """`registry show`'s gate section: each condition the version passed, with its value, and the champion
    comparison (from the run's gate outcome, or the champion section of a registered evaluation.json)."""
    if not isinstance(metrics, dict):
        return []
    gate = metrics.get("gate") if isinstance(metrics.get("gate"), dict) else None
    champion = (gate or {}).get("champion") or metrics.get("champion")
    lines = []
    for row in (gate or {}).get("conditions") or []:
        lines.append("  " + describe(row, champion))
    if champion and not any(r.get("where") == "gate.champion" for r in (gate or {}).get("conditions") or []):
        lines.append("  champion: " + champion_text(champion))
    return ["gate"] + lines if lines else []
