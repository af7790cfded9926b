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
        if "study" in labels:  # a tuned run: the trials of its study
            ctx["tuning"] = tuning_section(read(plan.file(step.name, "study")))
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


PLOT_W, PLOT_H, PARAM_W = 520, 180, 240  # the tuning charts' plot areas, in SVG pixels


def tuning_section(study: dict[str, Any]) -> dict[str, Any]:
    """The trials as SVG coordinates: the objective per trial with the best so far, and each searched parameter
    against the objective (a log-scaled range on a log axis; categories as columns)."""
    import math

    trials = sorted(study.get("trials") or [], key=lambda t: t["number"])
    done = [t for t in trials if t.get("value") is not None]
    maximize = (study.get("objective") or {}).get("direction", "maximize") == "maximize"
    values = [t["value"] for t in done] or [0.0]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    last = max((t["number"] for t in trials), default=0) or 1

    def y(v: float, height: int) -> float:
        return round((1 - (v - lo) / span) * height, 1)

    points, best, running = [], [], None
    for t in done:
        running = t["value"] if running is None else (max if maximize else min)(running, t["value"])
        x = round(t["number"] / last * PLOT_W, 1)
        points.append({"x": x, "y": y(t["value"], PLOT_H), "number": t["number"], "value": t["value"]})
        best.append(f"{x},{y(running, PLOT_H)}")
    params = []
    for name, space in (study.get("space") or {}).items():
        raw = [t["params"].get(name) for t in done]
        if "values" in space:
            cats = [str(v) for v in space["values"]]
            xs = [(cats.index(str(v)) + 0.5) / len(cats) if str(v) in cats else 0.0 for v in raw]
            ticks = [{"x": round((i + 0.5) / len(cats) * PARAM_W, 1), "label": c} for i, c in enumerate(cats)]
        else:
            log = space.get("scale") == "log"
            f = (lambda v: math.log(v)) if log else (lambda v: float(v))  # noqa: E731 - one axis transform
            a, b = f(space["min"]), f(space["max"])
            xs = [(f(v) - a) / ((b - a) or 1) for v in raw]
            ticks = [{"x": 0, "label": f"{space['min']:g}"}, {"x": PARAM_W, "label": f"{space['max']:g}"}]
        dots = [
            {"x": round(x * PARAM_W, 1), "y": y(t["value"], PLOT_H // 2), "value": t["value"], "v": v}
            for x, t, v in zip(xs, done, raw, strict=True)
        ]
        params.append({"name": name, "dots": dots, "ticks": ticks, "log": space.get("scale") == "log"})
    return {
        "study": study,
        "trials": trials,
        "points": points,
        "best_line": " ".join(best),
        "params": params,
        "lo": lo,
        "hi": hi,
        "w": PLOT_W,
        "h": PLOT_H,
        "pw": PARAM_W,
        "pruned": sum(1 for t in trials if t["state"] == "pruned"),
        "failed": sum(1 for t in trials if t["state"] == "fail"),
    }
