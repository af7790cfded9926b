"""The run report: one self-contained HTML page (inline SVG, no scripts) from a jinja2 template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fraudflow.local.store import atomic_write_text
from fraudflow.plan import FileRef, Plan

TEMPLATE = Path(__file__).parent / "templates" / "report.html.j2"


def write_report(run_dir: Path, summary: dict, dirs: dict[str, Path], plan: Plan) -> Path:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    ctx: dict[str, Any] = {"summary": summary, "spec": plan.spec.config}
    if (summary.get("gate") or {}).get("champion"):  # the comparison in words, as `run` prints it
        from fraudflow.local.gate_check import champion_text

        ctx["gate_champion"] = champion_text(summary["gate"]["champion"])

    def where(ref: FileRef) -> Path:
        return dirs[ref.step] / "output" / ref.output / ref.name

    def read(ref: FileRef) -> Any:
        return json.loads(where(ref).read_text())

    # Each section reads the files of the steps that ran, found through the Plan by what they hold.
    for step in plan.steps:
        if step.name not in dirs:
            continue
        labels = {label for out in step.outputs for label in out.files}
        if "report" in labels:
            ctx["data"] = read(plan.file(step.name, "report"))
        if "evaluation" in labels:
            ctx["evaluation"] = read(plan.file(step.name, "evaluation"))
            ctx["roc"] = _roc_points(where(plan.file(step.name, "predictions")))
        if "analysis" in labels:
            _analysis_section(ctx, step.kind, read(plan.file(step.name, "analysis")))
    env = Environment(loader=FileSystemLoader(TEMPLATE.parent), autoescape=select_autoescape(["html", "j2"]))
    html = env.get_template(TEMPLATE.name).render(**ctx)
    path = run_dir / "report.html"
    atomic_write_text(path, html)
    return path


def _analysis_section(ctx: dict[str, Any], kind: str, analysis: dict[str, Any]) -> None:
    """A check's analysis.json (Clarify's layout): SHAP values of an explain step, metrics of a bias step."""
    if kind == "explain":
        ctx["shap"] = _global_shap(analysis)[:20]
    else:
        ctx["bias"] = _bias_rows(analysis)
        ctx["label_convention"] = analysis.get("label_convention")


def _roc_points(predictions: Path, size: int = 260) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_curve

    df = pd.read_csv(predictions)
    fpr, tpr, _ = roc_curve(df["label"], df["score"])
    pts = " ".join(f"{x * size:.1f},{(1 - y) * size:.1f}" for x, y in zip(fpr, tpr, strict=True))
    return {"points": pts, "size": size, "n": int(len(df)), "positives": int(np.sum(df["label"]))}


def _global_shap(analysis: dict) -> list[tuple[str, float]]:
    for per_label in analysis.get("explanations", {}).values():
        for entry in per_label.values():
            values = entry.get("global_shap_values") if isinstance(entry, dict) else None
            if values:
                return sorted(values.items(), key=lambda kv: -abs(kv[1]))
    return []


def _bias_rows(analysis: dict) -> list[dict[str, Any]]:
    rows = []
    for stage in ("pre_training_bias_metrics", "post_training_bias_metrics"):
        block = analysis.get(stage) or {}
        for facet, groups in (block.get("facets") or {}).items():
            for g in groups:
                for m in g.get("metrics", []):
                    rows.append(
                        {
                            "stage": stage.split("_")[0] + "-training",
                            "facet": facet,
                            "value_or_threshold": g.get("value_or_threshold"),
                            **m,
                        }
                    )
    return rows
