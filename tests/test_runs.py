"""`fraudflow runs`, `runs show`, `runs diff` over recorded runs (run.json files written here, as the runner writes
them): newest first, changes against the previous run of the same pipeline or a baseline, only what differs, and
a paired bootstrap verdict on the ROC-AUC difference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import run_cli


def _record(ws: Path, run_id: str, params: dict[str, Any], auc: float, scores: np.ndarray | None = None,
            labels: np.ndarray | None = None, pipeline: str = "p") -> None:  # fmt: skip
    run_dir = ws / ".fraudflow" / "runs" / run_id
    run_dir.mkdir(parents=True)
    steps = []
    if scores is not None and labels is not None:
        ev = ws / "steps" / run_id / "output" / "evaluation"
        ev.mkdir(parents=True)
        rows = "\n".join(f"{int(y)},{float(s)!r}" for y, s in zip(labels, scores, strict=True))
        (ev / "predictions.csv").write_text("label,score\n" + rows + "\n")
        steps.append(
            {"name": "evaluate", "status": "ran", "seconds": 0.1, "path": str(ws / "steps" / run_id)}
        )
    doc = {
        "run_id": run_id,
        "pipeline": pipeline,
        "status": "succeeded",
        "seconds": 3.0,
        "steps": steps,
        "params": params,
        "data": {"claims": "file:abc"},
        "metrics": {"roc_auc": auc, "roc_auc_ci": [auc - 0.05, auc + 0.05], "pr_auc": 0.1},
    }
    (run_dir / "run.json").write_text(json.dumps(doc))


def _runs(ws: Path, *args: str) -> Any:
    res = run_cli("runs", *args, "--workspace", str(ws))
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout) if "--format" in args else res.stdout


def test_the_list_is_newest_first_with_changes_against_the_previous_run_of_its_pipeline(tmp_path: Path):
    _record(tmp_path, "20260101-000001-aaaaaa", {"d": 3, "e": 0.2}, 0.80)
    _record(tmp_path, "20260101-000002-bbbbbb", {"x": 1}, 0.70, pipeline="other")
    _record(tmp_path, "20260101-000003-cccccc", {"d": 5, "e": 0.2}, 0.82)
    rows = _runs(tmp_path, "--format", "json")
    assert [r["run"] for r in rows] == [
        "20260101-000003-cccccc",
        "20260101-000002-bbbbbb",
        "20260101-000001-aaaaaa",
    ]
    assert rows[0]["changed"] == {"d": [3, 5]} and rows[0]["compared_to"] == "20260101-000001-aaaaaa"
    assert rows[2]["compared_to"] is None
    only = _runs(tmp_path, "--pipeline", "p", "--baseline", "20260101-000003", "--format", "json")
    assert [r["changed"] for r in only] == [{}, {"d": [5, 3]}]
    text = _runs(tmp_path)
    assert "d=5" in text and "(first run)" in text


def test_diff_lists_only_what_differs_and_a_paired_bootstrap_verdict(tmp_path: Path):
    rng = np.random.RandomState(0)
    labels = (rng.rand(400) < 0.2).astype(int)
    noise = rng.rand(400)
    _record(tmp_path, "20260101-000001-aaaaaa", {"d": 3, "e": 0.2}, 0.55, noise, labels)
    better = labels * 0.6 + noise * 0.4  # clearly better ranking
    _record(tmp_path, "20260101-000002-bbbbbb", {"d": 5, "e": 0.2}, 0.95, better, labels)
    _record(
        tmp_path, "20260101-000003-cccccc", {"d": 6, "e": 0.2}, 0.551, noise + 1e-3 * rng.rand(400), labels
    )
    d = _runs(tmp_path, "diff", "20260101-000001", "20260101-000002", "--format", "json")
    assert d["params"] == {"d": [3, 5]} and d["data"] == {}
    assert d["metrics"]["roc_auc"]["delta"] == pytest.approx(0.40)
    sig = d["roc_auc_significance"]
    assert sig["method"].startswith("paired") and sig["exceeds"] is True and sig["interval"][0] > 0
    near = _runs(tmp_path, "diff", "20260101-000001", "20260101-000003", "--format", "json")
    assert near["roc_auc_significance"]["exceeds"] is False
    same = _runs(tmp_path, "diff", "20260101-000001", "20260101-000001")
    assert "no differences" in same


def test_an_ambiguous_or_unknown_run_is_a_usage_error(tmp_path: Path):
    _record(tmp_path, "20260101-000001-aaaaaa", {}, 0.8)
    _record(tmp_path, "20260101-000002-bbbbbb", {}, 0.8)
    res = run_cli("runs", "show", "20260101", "--workspace", str(tmp_path))
    assert res.returncode == 64 and "FF911" in res.stderr and "ambiguous" in res.stderr
    res = run_cli("runs", "--pipeline", "nope", "--workspace", str(tmp_path))
    assert res.returncode == 64 and "FF912" in res.stderr
    assert "run 20260101-000001-aaaaaa" in _runs(tmp_path, "show", "20260101-000001")
