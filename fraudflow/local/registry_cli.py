"""`fraudflow registry list|show|approve|reject`: the local registry as readable tables or JSON."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from fraudflow.errors import UsageError, UserError
from fraudflow.local.gate_check import registry_lines as gate_lines
from fraudflow.local.registry import MAX_VERSION, UNPRINTABLE, ModelVersion, Registry


def command(args: argparse.Namespace) -> int:
    state_dir = Path(args.workspace) / ".fraudflow"
    # the command line first: a bad VERSION is a usage mistake whatever the workspace holds
    version = None if args.action == "list" else parse_version_number(args.version)
    if not (state_dir / "registry.db").is_file():
        if args.action == "list" and not args.group:
            _print_empty(args)
            return 0
        raise UserError.single(
            "FF802",
            f"no registry in {state_dir}: nothing is registered yet",
            hint="run the pipeline first, or point --workspace at the folder holding .fraudflow/",
        )
    reg = Registry(state_dir)
    try:
        if version is None:
            return _list(reg, args)
        if args.action == "show":
            return _show(reg.get(args.group, version), args.format)
        return _decide(reg, args.group, version, args.action, args.reason)
    finally:
        reg.close()


def parse_version_number(text: object) -> int:
    """VERSION on the command line: ASCII digits, 1 to SQLite's largest integer (no 4,300-digit int())."""
    s = str(text)
    if s.isascii() and s.isdigit() and len(s) <= 19 and 1 <= int(s) <= MAX_VERSION:
        return int(s)
    shown = s if len(s) <= 40 else s[:39] + "…"
    raise UsageError.single(
        "FF809",
        f"VERSION {shown!r} is not a version number",  # repr: escapes control characters
        hint=f"a whole number from 1 to {MAX_VERSION}; see `fraudflow registry list`",
    )


def _decide(reg: Registry, group: str, version: int, action: str, reason: str) -> int:
    """approve / reject. A follow-approved endpoint repointed by the change must be able to serve the version
    it is repointed to: checked first (the model loads and predicts, as `fraudflow serve` will), and if it
    cannot, nothing changes and the command fails, rather than announce a switch no server can make."""
    status = "Approved" if action == "approve" else "Rejected"
    before = reg.get(group, version).status
    mv = reg.set_status(group, version, status, reason, check=servable)
    note = "unchanged" if before == mv.status else f"was {before}"
    print(f"{mv.group} version {mv.version}: {mv.status} ({note})")
    for change in reg.changes:  # endpoints deploying on approval (deploy.when: approved)
        print(change)
    for ep in reg.list_endpoints():
        served = [v for v in ep.variants if v.group == mv.group]
        if served:
            refs = ", ".join(f"{v.name}={v.group}:{v.version}" for v in served)
            print(f"endpoint {ep.name} serves {refs}")
    return 0


def servable(
    mv: ModelVersion, why: str = "the change would switch an endpoint that follows approvals to it"
) -> None:
    """The check before an endpoint is pointed at `mv` (`registry approve`, and a run's registration and
    deploy): the model loads as `fraudflow serve` will load it, or FF811 saying `why` nothing changed."""
    import warnings

    from fraudflow.local.serving.model import load_model

    try:
        with warnings.catch_warnings():  # xgboost's notes on the file format are not the user's concern here
            warnings.simplefilter("ignore", UserWarning)
            load_model(mv)
    except UserError as exc:
        cause = exc.diagnostics[0]
        raise UserError.single(
            "FF811",
            f"{mv.group}:{mv.version} cannot be served ({cause.code} {printable(cause.message)}): {why}, so "
            "nothing was changed",
            file=cause.file,
            hint="register the model again (rerun the pipeline); `fraudflow registry list` shows what is served",
        ) from None


def printable(text: str) -> str:
    """Text safe to print on a terminal: control characters (ANSI escapes, carriage returns, bidi overrides)
    are shown as escapes (\\x1b, \\r, \\u202e) instead of acting on the terminal."""
    return UNPRINTABLE.sub(_escape, text)


def _escape(m: re.Match) -> str:
    c = m.group()
    return repr(c)[1:-1] if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def _print_empty(args: argparse.Namespace) -> None:
    print("[]" if args.format == "json" else "no model package groups yet")


def _list(reg: Registry, args: argparse.Namespace) -> int:
    groups = [args.group] if args.group else [g["name"] for g in reg.list_groups()]
    data = {g: reg.list_versions(g) for g in groups}
    endpoints = reg.list_endpoints()
    serving: dict[tuple[str, int], list[str]] = {}
    for ep in endpoints:
        for v in ep.variants:
            serving.setdefault((v.group, v.version), []).append(
                ep.name if len(ep.variants) == 1 else f"{ep.name}/{v.name}"
            )
    if args.format == "json":
        out = [
            {
                "group": g,
                "versions": [
                    {
                        "version": mv.version,
                        "status": mv.status,
                        "roc_auc": mv.roc_auc,
                        "created": mv.created,
                        "pipeline": mv.pipeline,
                        "run_id": mv.run_id,
                        "endpoints": serving.get((g, mv.version), []),
                    }
                    for mv in versions
                ],
            }
            for g, versions in data.items()
        ]
        print(json.dumps(out, indent=2))
        return 0
    if not data:
        print("no model package groups yet")
        return 0
    for i, (g, versions) in enumerate(data.items()):
        if i:
            print()
        print(f"{g} ({len(versions)} version{'s' * (len(versions) != 1)})")
        rows = [
            [
                str(mv.version),
                mv.status,
                "-" if mv.roc_auc is None else f"{mv.roc_auc:.4f}",
                mv.created.replace("T", " ")[:19],
                mv.run_id,
                ", ".join(serving.get((g, mv.version), [])) or "-",
            ]
            for mv in versions
        ]
        print(_table(["VERSION", "STATUS", "ROC_AUC", "CREATED (UTC)", "RUN", "ENDPOINT"], rows))
    return 0


def _show(mv: ModelVersion, fmt: str) -> int:
    if fmt == "json":
        print(json.dumps(mv.to_dict(), indent=2, sort_keys=True))
        return 0
    m = mv.metrics.get("classification_metrics", {}) if isinstance(mv.metrics, dict) else {}
    lines = [
        f"{mv.group} version {mv.version}",
        f"  status              {mv.status}",
        f"  created             {mv.created}",
        f"  pipeline / run      {mv.pipeline} / {mv.run_id}",
        f"  decision threshold  {mv.decision_threshold:g}",
        f"  artifacts           {mv.artifact_dir}",
    ]
    if mv.description:
        lines.append(f"  description         {mv.description}")
    if m:
        lines.append("metrics")
        for name, val in m.items():
            if isinstance(val, dict) and "value" in val:
                text = _num(val["value"])
                ci = val.get("confidence_interval")
                if isinstance(ci, dict) and "lower" in ci:
                    text += f"  ({ci.get('level', 0.95):g} CI {_num(ci['lower'])} .. {_num(ci['upper'])})"
                lines.append(f"  {name:<18}  {text}")
    lines += gate_lines(mv.metrics)  # each gate condition, its value and verdict; the champion comparison
    if mv.bias:
        lines.append("bias (Clarify analysis)")
        for stage in ("pre_training_bias_metrics", "post_training_bias_metrics"):
            for facet in (mv.bias.get(stage) or {}).get("facets", {}).values():
                for f in facet:
                    metrics = ", ".join(f"{x['name']}={_num(x.get('value'))}" for x in f.get("metrics", []))
                    lines.append(f"  {stage.split('_')[0]:<5} {f.get('value_or_threshold', '')}: {metrics}")
    if mv.explainability:
        lines.append("explainability: top features by mean |SHAP|")
        for name, val in _top_shap(mv.explainability):
            lines.append(f"  {name:<32} {_num(val)}")
    lines.append(f"baselines           {'yes' if mv.baselines else 'none'}")
    lines.append("approval history")
    for a in mv.history:
        lines.append(f"  {a.at}  {a.status:<22} by {a.actor}" + (f": {a.reason}" if a.reason else ""))
    print("\n".join(printable(line) for line in lines))
    return 0


def _top_shap(doc: dict, n: int = 10) -> list[tuple[str, float]]:
    """Clarify's layout: explanations.kernel_shap.label0.global_shap_values {feature: value}."""
    try:
        values = next(iter(doc["explanations"].values()))
        values = next(iter(values.values()))["global_shap_values"]
        return sorted(values.items(), key=lambda kv: -abs(float(kv[1])))[:n]
    except (KeyError, StopIteration, AttributeError, TypeError, ValueError):
        return []


def _num(v: object) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _table(header: list[str], rows: list[list[str]]) -> str:
    rows = [[printable(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    )
