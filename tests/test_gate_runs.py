"""Done-when of issue 13 (gates) on AWS's data: a fairness condition stops the run and names the metric with its
value; relaxed, the run registers; a weaker challenger is refused against the approved champion with the paired
difference shown, and the reverse passes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.gate_util import gate_workspace, summary

pytestmark = pytest.mark.slow

FAIRNESS = """
gate:
  conditions:
    - {metric: roc_auc, min: 0.7}
    - {metric: DPPL, max_abs: %s}
"""
CHAMPION = """
gate:
  metric: roc_auc
  threshold: 0.7
  champion: {metric: roc_auc, min_improvement: 0.0}
"""
ENV = {"OMP_NUM_THREADS": "1"}


def test_a_fairness_condition_stops_the_run_naming_dppl_and_relaxing_it_registers(
    tmp_path: Path, aws_data: Path
) -> None:
    yaml_file, sets = gate_workspace(tmp_path, aws_data, FAIRNESS % "0.01")
    proc = run_cli("run", str(yaml_file), *sets, cwd=tmp_path, env=ENV)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    s = summary(tmp_path)
    dppl = next(c for c in s["gate"]["conditions"] if c["metric"] == "DPPL")
    assert not dppl["passed"] and abs(dppl["value"]) > 0.01
    assert next(c for c in s["gate"]["conditions"] if c["metric"] == "roc_auc")["passed"]
    # the exit-3 message names the failed condition and its value, and only that one
    stop = next(line for line in proc.stdout.splitlines() if line.startswith("stopped at the gate:"))
    assert f"DPPL {dppl['value']:.4f} (needs |x| <= 0.01)" in stop and "roc_auc" not in stop, stop
    # bias ran before the gate; nothing after it
    steps = {st["name"]: st["status"] for st in s["steps"]}
    assert steps["bias"] in ("ran", "cached") and steps["register"] == steps["deploy"] == "skipped"
    # the value the gate read is the one the bias step wrote (Clarify's layout)
    analysis = json.loads(
        (tmp_path / ".fraudflow/runs/latest/bias/output/analysis/analysis.json").read_text()
    )
    facet = analysis["post_training_bias_metrics"]["facets"]["customer_gender_female"][0]
    assert {m["name"]: m["value"] for m in facet["metrics"]}["DPPL"] == dppl["value"]
    report = (tmp_path / ".fraudflow/runs/latest/report.html").read_text()
    assert "DPPL" in report and "FAIL" in report

    yaml_file, sets = gate_workspace(tmp_path, aws_data, FAIRNESS % "0.1")
    proc = run_cli("run", str(yaml_file), *sets, cwd=tmp_path, env=ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    s = summary(tmp_path)
    assert s["gate"]["passed"] and s["model_package"]["version"] == 1
    shown = run_cli("registry", "show", "fraud-detect-xgb", "1", cwd=tmp_path)
    assert re.search(r"DPPL 0\.\d{4} \|x\| <= 0\.1: passed", shown.stdout), shown.stdout


def _run(ws: Path, yaml_file: Path, sets: list[str], *extra: str) -> tuple[int, str, dict]:
    proc = run_cli("run", str(yaml_file), *sets, *extra, cwd=ws, env=ENV)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout, summary(ws)


@pytest.mark.parametrize(
    ("champion_depth", "challenger_depth", "passes"),
    [("3", "1", False), ("1", "3", True)],  # 3: pipelines.yaml's default max_depth
)
def test_a_challenger_must_beat_the_approved_champion_on_the_same_test_split(
    tmp_path: Path, aws_data: Path, champion_depth: str, challenger_depth: str, passes: bool
) -> None:
    yaml_file, sets = gate_workspace(tmp_path, aws_data, CHAMPION)
    code, out, s = _run(
        tmp_path, yaml_file, sets, "--set", f"train.hyperparameters.max_depth={champion_depth}"
    )
    assert code == 0, out
    assert (
        s["gate"]["champion"]["found"] is False and "no champion" in out
    )  # nothing to beat yet: passes, says why
    approve = run_cli("registry", "approve", "fraud-detect-xgb", "1", cwd=tmp_path)
    assert approve.returncode == 0, approve.stderr

    code, out, s = _run(
        tmp_path, yaml_file, sets, "--set", f"train.hyperparameters.max_depth={challenger_depth}"
    )
    champ = s["gate"]["champion"]
    assert champ["found"] and champ["model_package"] == "fraud-detect-xgb/1"
    # both models scored on the same test split: the champion's value is what version 1 scored when it ran
    v1 = json.loads(
        run_cli("registry", "show", "fraud-detect-xgb", "1", "--format", "json", cwd=tmp_path).stdout
    )
    assert champ["champion"] == pytest.approx(v1["metrics"]["classification_metrics"]["roc_auc"]["value"])
    assert champ["challenger"] == pytest.approx(s["gate"]["value"])
    diff = champ["difference"]
    assert diff["value"] == pytest.approx(champ["challenger"] - champ["champion"])
    ci = diff["confidence_interval"]
    assert ci["lower"] <= diff["value"] <= ci["upper"] and ci["samples"] > 900
    shown = f"paired difference {diff['value']:+.4f} [{ci['lower']:.4f}, {ci['upper']:.4f}]"
    assert shown in out, out
    if passes:
        assert code == 0 and diff["value"] > 0 and s["model_package"]["version"] == 2, out
    else:
        assert code == 3 and diff["value"] < 0, out
        stop = next(line for line in out.splitlines() if line.startswith("stopped at the gate:"))
        assert "champion roc_auc" in stop and shown in stop
        assert s["model_package"] is None
