"""A copy of the project's pipelines.yaml with another gate, pointed at AWS's data (tests of the gate)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import ROOT, aws_sets

ONE_CONDITION = "gate: {metric: roc_auc, threshold: 0.7}"


def gate_workspace(tmp: Path, data: Path, gate_yaml: str) -> tuple[Path, list[str]]:
    """pipelines.yaml with `gate_yaml` (indented under the pipeline) instead of the one-condition gate; the
    AucThreshold parameter goes when the new gate has no threshold."""
    text = (ROOT / "pipelines.yaml").read_text()
    assert ONE_CONDITION in text
    text = text.replace(ONE_CONDITION, gate_yaml.strip().replace("\n", "\n    "))
    if "threshold:" not in gate_yaml:
        text = (
            "\n".join(line for line in text.splitlines() if "AucThreshold: gate.threshold" not in line) + "\n"
        )
    (tmp / "pipelines.yaml").write_text(text)
    sets = aws_sets(data)
    return tmp / "pipelines.yaml", sets


def summary(ws: Path) -> dict:
    return json.loads((ws / ".fraudflow" / "runs" / "latest" / "run.json").read_text())


def copy_data(data: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("claims.csv", "customers.csv"):
        shutil.copy(data / name, dest / name)
    return dest
