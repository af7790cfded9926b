"""`fraudflow monitor`: compare a window of captured or scored claims with the training baseline of the version
the pipeline serves, write report.json, constraint_violations.json and report.html, and exit 4 on a violation.

The statistics are step_code/monitor.py's (the script the SageMaker monitoring pipeline runs), called in-process
as `fraudflow run` calls its steps. The baseline is found through the registry: the served version's run folder
links the preprocess and evaluate outputs that trained and judged it. `--retrain` with `monitor.retrain:
on_violation` then runs the pipeline, as `fraudflow run` does, on the data its YAML names.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from fraudflow import exits
from fraudflow.errors import UsageError, UserError
from fraudflow.plan import Plan, build_plan, monitor_config, monitor_step

HTML_TEMPLATE = Path(__file__).parent / "local" / "templates" / "monitor.html.j2"


def command(args: argparse.Namespace) -> int:
    from fraudflow.spec.load import load_one

    spec = load_one(args.file, env=args.env, overrides=args.overrides, pipeline=args.pipeline)
    plan = build_plan(spec)
    step = monitor_step(spec)
    if args.retrain and monitor_config(spec.config)["retrain"] != "on_violation":
        raise UsageError.single(
            "FF933",
            "--retrain needs `monitor.retrain: on_violation` in the pipeline",
            file=str(spec.file),
            hint="set monitor.retrain: on_violation (or --set monitor.retrain=on_violation)",
        )
    labels = _existing(args.labels, "--labels") if args.labels else None
    dirs = baseline_dirs(plan, args.model_version)
    out = (
        spec.workspace
        / ".fraudflow"
        / "monitor"
        / (time.strftime("%Y%m%d-%H%M%S") + f"-{secrets.token_hex(3)}")
    )
    current = _current(args.current, args.window_hours, step, out)
    report = run_monitor(step, dirs, current, labels, out, args.window_hours)
    html = write_html(out, report, spec.name, dirs["version"])
    if args.format == "json":
        print(json.dumps({**report, "report_dir": str(out), "html": str(html)}, indent=2))
    else:
        _print_text(report, out, html)
    if not report["violations"]:
        return exits.OK
    if args.retrain:
        from fraudflow.local.runner import run_plan

        print(f"monitor: {len(report['violations'])} violation(s): retraining {plan.name}", file=sys.stderr)
        result = run_plan(plan, out=sys.stderr)
        if result.exit_code != exits.OK:
            return result.exit_code
    return exits.VIOLATIONS


def _current(path: str, window_hours: float | None, step: Any, out: Path) -> Path:
    """The window's folder or file; an s3:// one downloaded into the report folder, only the hours it covers."""
    if not path.startswith("s3://"):
        return _existing(path, "--current")
    from fraudflow.sagemaker.capture_window import download_window

    if window_hours is None:
        window_hours = step.config["monitor"].get("window_hours")
    return download_window(path, window_hours, out / "current")


def _existing(path: str, flag: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise UserError.single("FF932", f"{flag} {path}: no such file or folder", file=path)
    return p


def baseline_dirs(plan: Plan, model_version: str | None = None) -> dict[str, Any]:
    """The version to judge (--version, else the version the pipeline's endpoint serves, else the group's newest)
    and the folders of the run that trained it: preprocess's baseline and schema, evaluate's evaluation."""
    from fraudflow.local.registry import Registry

    state = plan.spec.workspace / ".fraudflow"
    group = plan.spec.config["register"]["model_package_group"]
    if not (state / "registry.db").is_file():
        raise UserError.single(
            "FF930",
            f"no registry in {state}: nothing has been registered to monitor",
            hint="run the pipeline first (`fraudflow run`)",
        )
    registry = Registry(state)
    try:
        version = _chosen(registry, plan, group, model_version)
    finally:
        registry.close()
    run = state / "runs" / version.run_id
    pre, ev = plan.step("preprocess"), plan.step("evaluate")
    found = {
        "baseline": run / pre.name / "output" / "baseline",
        "schema": run / pre.name / "output" / "schema",
        "evaluation": run / ev.name / "output" / "evaluation",
    }
    for path in found.values():
        if not path.is_dir():
            raise UserError.single(
                "FF931",
                f"the baseline of {version.group} version {version.version} is gone: run {version.run_id} no "
                f"longer holds {path.relative_to(run)}",
                file=str(path),
                hint="run the pipeline again (`fraudflow run`) to register a version with its baseline",
            )
    return {**found, "version": f"{version.group}:{version.version}"}


def _chosen(registry: Any, plan: Plan, group: str, model_version: str | None) -> Any:
    if model_version:
        name, _, number = model_version.rpartition(":")
        if not name or not number.isdigit():
            raise UsageError.single(
                "FF934", f"--version {model_version!r}: expected GROUP:VERSION, e.g. {group}:3"
            )
        return registry.get(name, int(number))
    deploy = plan.spec.config.get("deploy")
    if deploy and any(e.name == deploy["endpoint_name"] for e in registry.list_endpoints()):
        variants = registry.get_endpoint(deploy["endpoint_name"]).variants
        top = max(variants, key=lambda v: v.weight)  # the variant that takes most of the traffic
        return registry.get(top.group, top.version)
    version = registry.latest(group) if any(g["name"] == group for g in registry.list_groups()) else None
    if version is None:
        raise UserError.single(
            "FF930",
            f"model package group {group!r} has no version to monitor",
            hint="run the pipeline first (`fraudflow run`)",
        )
    return version


def run_monitor(
    step: Any, dirs: dict[str, Any], current: Path, labels: Path | None, out: Path, window_hours: float | None
) -> dict:
    """monitor.py in-process, as `fraudflow run` calls a step: its StepErrors become located UserErrors."""
    from fraudflow.local.runner import run_script

    config = dict(step.config)
    if window_hours is not None:
        config["monitor"] = {**config["monitor"], "window_hours": window_hours}
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    argv = [
        "--config", str(out / "config.json"),
        "--baseline-dir", str(dirs["baseline"]),
        "--schema-dir", str(dirs["schema"]),
        "--evaluation-dir", str(dirs["evaluation"]),
        "--current", str(current),
        "--output-dir", str(out / "monitor"),
        "--labels", str(labels) if labels else str(out / "no-labels"),
    ]  # fmt: skip
    if labels:
        argv.append("--labels-required")
    run_script(step, argv, out / "monitor.log")
    report = json.loads((out / "monitor" / "report.json").read_text())
    report["version"] = dirs["version"]
    return report


def _print_text(report: dict, out: Path, html: Path) -> None:
    v = report["violations"]
    print(f"monitor: {report['records']} records of {report['version']}: {len(v)} violation(s)")
    for item in v:
        print(f"  {item['feature_name']}: {item['constraint_check_type']}: {item['description']}")
    print(f"report: {out / 'monitor' / 'report.json'}, {html}")


# ---------------------------------------------------------------------------------------------- HTML


def _bars(hist: dict, width: int = 360, height: int = 120) -> dict:
    """An inline SVG's bars: the baseline's and the window's share per bin, side by side."""
    base, cur = hist["baseline"], hist["current"]
    if "categories" in hist:
        labels = [str(c) for c in hist["categories"]]
    else:
        edges = hist["edges"]
        labels = [f"< {edges[0]:.4g}" if edges else "all"]
        labels += [f"{a:.4g}–{b:.4g}" for a, b in zip(edges, edges[1:], strict=False)]
        labels += [f"≥ {edges[-1]:.4g}"] if edges else []
    n = max(len(base), 1)
    top = max([*base, *cur, 1e-9])
    slot = width / n
    bars = []
    for i, (b, c) in enumerate(zip(base, cur, strict=False)):
        for j, (share, colour) in enumerate(((b, "#9aa7c7"), (c, "#d0572f"))):
            h = height * share / top
            bars.append(
                {"x": round(i * slot + j * slot / 2.2, 1), "y": round(height - h, 1), "w": round(slot / 2.4, 1),
                 "h": round(h, 1), "colour": colour, "title": f"{labels[i]}: {share:.1%}"}
            )  # fmt: skip
    return {"bars": bars, "width": width, "height": height}


def write_html(out: Path, report: dict, pipeline: str, version: str) -> Path:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    from fraudflow.local.store import atomic_write_text

    drifted = set(report.get("drifted_features", []))
    plots = [
        {
            "column": f["column"],
            "kind": f["kind"],
            "violations": f["violations"],
            "svg": _bars(f["histogram"]),
        }
        for f in report.get("features", [])
        if f["column"] in drifted and f.get("histogram")
    ]
    prediction = report.get("prediction")
    env = Environment(
        loader=FileSystemLoader(HTML_TEMPLATE.parent), autoescape=select_autoescape(["html", "j2"])
    )
    html = env.get_template(HTML_TEMPLATE.name).render(
        report=report,
        pipeline=pipeline,
        version=version,
        plots=plots,
        prediction_svg=_bars(prediction["histogram"]) if prediction else None,
    )
    path = out / "report.html"
    atomic_write_text(path, html)
    return path
