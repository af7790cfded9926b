"""Experiments: what each run recorded (run.json), listed and compared.

`fraudflow runs` lists the runs of a workspace newest first with the parameters that differ from the run before
(or from `--baseline`), `runs show RUN` prints one run, `runs diff A B` only what differs between two: parameters,
data, metrics with their deltas, and whether the ROC-AUC difference exceeds its paired bootstrap interval.

The record itself (`experiment`) is written into run.json by the runner: the resolved parameters (the pipeline's
config flattened to dotted paths), the content digests of the data sources, the metrics of the evaluation and of
training, and, for a tuned run, the trials of its study.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fraudflow import exits
from fraudflow.errors import UsageError, UserError

KEY_METRICS = ("roc_auc", "pr_auc", "f1")  # the columns of `fraudflow runs`
METRICS = ("roc_auc", "pr_auc", "precision", "recall", "f1", "accuracy")
# Settings that say where or how a run executes, not what it computes: not parameters of an experiment.
NOT_PARAMS = ("data.sources", "sagemaker", "parameters", "description", "deploy", "register")


# ---------------------------------------------------------------------------------------------- the record


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """{"train": {"hyperparameters": {"eta": 0.2}}} → {"train.hyperparameters.eta": 0.2}; lists stay values."""
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: node}


def params_of(config: dict[str, Any]) -> dict[str, Any]:
    flat = flatten(config)
    return {
        k: v for k, v in sorted(flat.items()) if not any(k == p or k.startswith(p + ".") for p in NOT_PARAMS)
    }


def experiment(
    config: dict[str, Any], outputs: dict[str, Path], source_digest: Callable[[str], str]
) -> dict[str, Any]:
    """run.json's experiment fields: `outputs` maps a Plan file label (evaluation, training, study) to its path
    in this run; `source_digest(name)` is the content digest of a data source."""
    data: dict[str, Any] = {}
    for name in config["data"]["sources"]:
        try:
            data[name] = source_digest(name)
        except Exception:  # noqa: BLE001 - a missing source made the run fail: recorded as unknown
            data[name] = None
    metrics: dict[str, Any] = {}
    ev = _read(outputs.get("evaluation"))
    for name in METRICS:
        value = ((ev or {}).get("classification_metrics") or {}).get(name) or {}
        if isinstance(value.get("value"), (int, float)):
            metrics[name] = value["value"]
        ci = value.get("confidence_interval") or {}
        if "lower" in ci:
            metrics[f"{name}_ci"] = [ci["lower"], ci["upper"]]
    training = _read(outputs.get("training"))
    if training:
        metrics["rounds"] = training.get("rounds_trained")
        last = (training.get("rounds_trained") or 0) - 1
        for split, values in (training.get("evaluation_history") or {}).items():
            for metric, series in values.items():
                if 0 <= last < len(series):
                    metrics[f"{split}:{metric}"] = series[last]
    record: dict[str, Any] = {"params": params_of(config), "data": data, "metrics": metrics}
    study = _read(outputs.get("study"))
    if study:
        record["tuning"] = study
        for name, value in ((study.get("best") or {}).get("params") or {}).items():
            record["params"][f"tuned.{name}"] = value  # what the registered model was trained with
    return record


def _read(path: Path | None) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text()) if path else None
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------- the commands


def add_parser(sub: Any, workspace_arg: Callable[[Any], None], cmd: Callable[[str, str], Any]) -> None:
    """`fraudflow runs [--pipeline P] [--baseline RUN] [--format json]`, `runs show RUN`, `runs diff A B`."""
    p = sub.add_parser("runs", help="list past runs, show one, or diff two (parameters, data, metrics)")
    p.add_argument("--pipeline", help="only this pipeline's runs")
    p.add_argument("--baseline", metavar="RUN", help="show parameters that differ from this run")
    p.add_argument("--limit", type=int, default=20, help="newest N runs (default 20; 0: all)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    workspace_arg(p)
    rsub = p.add_subparsers(dest="action", metavar="ACTION")
    r = rsub.add_parser("show", help="one run: status, parameters, data, metrics, trials")
    r.add_argument("run", metavar="RUN", help="a run id (or a unique prefix), or `latest`")
    r.add_argument("--format", choices=["text", "json"], default="text")
    workspace_arg(r)
    r = rsub.add_parser("diff", help="only what differs between two runs")
    r.add_argument("a", metavar="A")
    r.add_argument("b", metavar="B")
    r.add_argument("--format", choices=["text", "json"], default="text")
    workspace_arg(r)
    p.set_defaults(func=cmd("fraudflow.local.runs", "command"))


def command(args: argparse.Namespace) -> int:
    runs_dir = Path(args.workspace) / ".fraudflow" / "runs"
    if args.action == "show":
        return _show(load_run(runs_dir, args.run), args.format)
    if args.action == "diff":
        return _diff(load_run(runs_dir, args.a), load_run(runs_dir, args.b), args.format)
    return _list(runs_dir, args)


def all_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """Every readable run.json, newest first (run ids start with their start time)."""
    out = []
    for path in sorted(runs_dir.glob("*/run.json"), reverse=True):
        if path.parent.name == "latest":
            continue
        doc = _read(path)
        if isinstance(doc, dict) and "run_id" in doc:
            out.append(doc)
    return out


def load_run(runs_dir: Path, ref: str) -> dict[str, Any]:
    runs = all_runs(runs_dir)
    if ref == "latest" and (runs_dir / "latest" / "run.json").is_file():
        ref = (runs_dir / "latest").resolve().name
    found = [r for r in runs if r["run_id"] == ref] or [r for r in runs if r["run_id"].startswith(ref)]
    if len(found) == 1 and ref:
        return found[0]
    if not runs:
        raise UserError.single(
            "FF910",
            f"no run yet in {runs_dir}",
            hint="`fraudflow run` first, or point --workspace at the folder holding .fraudflow/",
        )
    raise UsageError.single(
        "FF911",
        f"run {ref!r} is {'ambiguous' if found else 'not'} in {runs_dir}"
        + (f" ({len(found)} runs start with it)" if found else ""),
        hint="the newest runs: " + ", ".join(r["run_id"] for r in runs[:5]) + " (or `latest`)",
    )


def _list(runs_dir: Path, args: argparse.Namespace) -> int:
    runs = [r for r in all_runs(runs_dir) if not args.pipeline or r.get("pipeline") == args.pipeline]
    if args.pipeline and not runs and all_runs(runs_dir):
        known = sorted({str(r.get("pipeline")) for r in all_runs(runs_dir)})
        raise UsageError.single(
            "FF912", f"no run of pipeline {args.pipeline!r}", hint=f"its runs are of: {', '.join(known)}"
        )
    baseline = load_run(runs_dir, args.baseline) if args.baseline else None
    if args.limit and args.limit > 0:
        runs = runs[: args.limit]
    rows = []
    for i, run in enumerate(runs):
        # the run before: the next older run of the same pipeline (another pipeline's parameters differ anyway)
        older = (r for r in runs[i + 1 :] if r.get("pipeline") == run.get("pipeline"))
        ref = baseline or next(older, None)
        changed = _changed(ref.get("params") if ref else None, run.get("params"))
        rows.append(
            {
                "run": run["run_id"],
                "pipeline": run.get("pipeline"),
                "status": run.get("status"),
                "compared_to": ref["run_id"] if ref else None,
                "changed": changed,
                "metrics": {k: (run.get("metrics") or {}).get(k) for k in KEY_METRICS},
                "trials": len((run.get("tuning") or {}).get("trials") or []) or None,
                "seconds": run.get("seconds"),
            }
        )
    if args.format == "json":
        print(json.dumps(rows, indent=2, default=str))
        return exits.OK
    if not rows:
        print(f"no runs in {runs_dir}")
        return exits.OK
    print(f"{'RUN':<23} {'STATUS':<16} {'ROC_AUC':>7} {'PR_AUC':>7} {'F1':>6} {'TIME':>7}  CHANGED")
    for row in rows:
        m = row["metrics"]
        changes = ", ".join(f"{k}={_short(v)}" for k, (_, v) in row["changed"].items())
        if row["compared_to"] is None:
            changes = "(first run)"
        elif not changes:
            changes = "-"
        if row["trials"]:
            changes += f"  [{row['trials']} trials]"
        print(
            f"{row['run']:<23} {str(row['status']):<16} {_num(m['roc_auc']):>7} {_num(m['pr_auc']):>7} "
            f"{_num(m['f1'], 3):>6} {_secs(row['seconds']):>7}  {changes}"
        )
    return exits.OK


def _changed(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, tuple[Any, Any]]:
    """Parameters whose value differs (a key on one side only too): {path: (old, new)}."""
    if old is None or new is None:
        return {}
    missing = object()
    out = {}
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, missing), new.get(key, missing)
        if a != b:
            out[key] = (None if a is missing else a, None if b is missing else b)
    return out


def _show(run: dict[str, Any], fmt: str) -> int:
    if fmt == "json":
        print(json.dumps(run, indent=2, default=str))
        return exits.OK
    print(f"run {run['run_id']}  {run.get('pipeline')}  {run.get('status')}  {_secs(run.get('seconds'))}")
    print(f"  file {run.get('file')}  env {run.get('env') or '-'}  started {run.get('started')}")
    for step in run.get("steps") or []:
        note = f"  {step['note']}" if step.get("note") else ""
        print(f"  {step['name']:<11} {step['status']:<8} {_secs(step.get('seconds')):>7}{note}")
    if run.get("data"):
        print("data:")
        for name, digest in run["data"].items():
            print(f"  {name:<24} {_digest(digest)}")
    if run.get("metrics"):
        print("metrics:")
        for name, value in run["metrics"].items():
            print(f"  {name:<24} {_short(value)}")
    if run.get("params"):
        print("parameters:")
        for name, value in run["params"].items():
            print(f"  {name:<40} {_short(value)}")
    study = run.get("tuning")
    if study:
        best = study.get("best") or {}
        print(
            f"tuning: {study['strategy']}, {len(study['trials'])} trials, objective {study['objective']['metric']}"
        )
        for t in study["trials"]:
            mark = "  *" if t["number"] == best.get("number") else ""
            value = _num(t["value"]) if t.get("value") is not None else t["state"]
            params = " ".join(f"{k}={_short(v)}" for k, v in t["params"].items())
            print(f"  #{t['number']:<3} {value:>8}  {params}{mark}")
    return exits.OK


# ---------------------------------------------------------------------------------------------- diff


def diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """What differs from run A to run B: parameters, data digests, metrics (with deltas), status."""
    # a run recorded before fraudflow kept experiments has no parameters or data: nothing to compare, not "all new"
    params = _changed(a.get("params"), b.get("params"))
    data = _changed(a.get("data"), b.get("data"))
    ma, mb = a.get("metrics") or {}, b.get("metrics") or {}
    metrics = {}
    for key in [k for k in ma if k in mb] + [k for k in mb if k not in ma]:
        va, vb = ma.get(key), mb.get(key)
        if va == vb:
            continue
        entry: dict[str, Any] = {"a": va, "b": vb}
        if _is_num(va) and _is_num(vb):
            entry["delta"] = float(vb) - float(va)  # type: ignore[arg-type]
        metrics[key] = entry
    out: dict[str, Any] = {
        "a": a["run_id"],
        "b": b["run_id"],
        "params": params,
        "data": data,
        "metrics": metrics,
    }
    if a.get("status") != b.get("status"):
        out["status"] = (a.get("status"), b.get("status"))
    if "roc_auc" in metrics and "delta" in metrics["roc_auc"]:
        out["roc_auc_significance"] = auc_significance(a, b)
    return out


def auc_significance(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Does the ROC-AUC difference exceed its bootstrap interval? When both runs scored the same test rows (the
    same labels in the same order), a paired bootstrap of the difference (the same resamples for both, as
    evaluate's bootstrap settings say); otherwise whether B's AUC lies outside A's own interval."""
    pa, pb = _predictions(a), _predictions(b)
    boot = (((a.get("params") or {}).get("evaluate.bootstrap.samples")), a.get("params") or {})
    samples = int(boot[0] or 1000)
    confidence = float(boot[1].get("evaluate.bootstrap.confidence") or 0.95)
    seed = int(boot[1].get("evaluate.bootstrap.seed") or 0)
    if pa is not None and pb is not None and len(pa[0]) == len(pb[0]) and (pa[0] == pb[0]).all():
        lo, hi = paired_auc_interval(pa[0], pa[1], pb[1], samples, confidence, seed)
        return {
            "method": "paired bootstrap of the difference",
            "interval": [lo, hi],
            "confidence": confidence,
            "exceeds": not (lo <= 0.0 <= hi),
        }
    ci = (a.get("metrics") or {}).get("roc_auc_ci")
    value = (b.get("metrics") or {}).get("roc_auc")
    if not ci or not _is_num(value):
        return {"method": "none (no interval recorded)", "exceeds": None}
    return {
        "method": "B outside A's bootstrap interval",
        "interval": ci,
        "exceeds": not (ci[0] <= value <= ci[1]),
    }


def paired_auc_interval(
    labels: Any, score_a: Any, score_b: Any, samples: int, confidence: float, seed: int
) -> tuple[float, float]:
    """Percentile interval of AUC(B) - AUC(A) over `samples` resamples of the test rows, the same for both."""
    import numpy as np
    from scipy.stats import rankdata

    rng = np.random.RandomState(seed)
    n = len(labels)
    idx = rng.randint(0, n, size=(samples, n))
    y = labels[idx]
    pos = y.sum(axis=1)
    keep = (pos > 0) & (pos < n)  # a resample holding one class has no AUC
    y, idx, pos = y[keep], idx[keep], pos[keep]

    def aucs(scores: Any) -> Any:
        ranks = rankdata(scores[idx], axis=1)
        return ((ranks * y).sum(axis=1) - pos * (pos + 1) / 2) / (pos * (n - pos))

    delta = aucs(score_b) - aucs(score_a)
    tail = (1 - confidence) / 2 * 100
    return float(np.percentile(delta, tail)), float(np.percentile(delta, 100 - tail))


def _predictions(run: dict[str, Any]) -> tuple[Any, Any] | None:
    import numpy as np

    step = next((s for s in run.get("steps") or [] if s.get("name") == "evaluate"), None)
    if not step or not step.get("path"):
        return None
    path = Path(step["path"]) / "output" / "evaluation" / "predictions.csv"
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except (OSError, ValueError):
        return None
    return table[:, 0], table[:, 1]


def _diff(a: dict[str, Any], b: dict[str, Any], fmt: str) -> int:
    d = diff(a, b)
    if fmt == "json":
        print(json.dumps(d, indent=2, default=str))
        return exits.OK
    print(f"diff {d['a']} → {d['b']}")
    if "status" in d:
        print(f"status: {d['status'][0]} → {d['status'][1]}")
    for title, key in (("parameters", "params"), ("data", "data")):
        if d[key]:
            print(f"{title}:")
            for name, (va, vb) in d[key].items():
                shown = (_digest(va), _digest(vb)) if key == "data" else (_short(va), _short(vb))
                print(f"  {name:<40} {shown[0]} → {shown[1]}")
    if d["metrics"]:
        print("metrics:")
        for name, m in d["metrics"].items():
            delta = f"  ({m['delta']:+.4f})" if "delta" in m else ""
            print(f"  {name:<40} {_short(m['a'])} → {_short(m['b'])}{delta}")
    sig = d.get("roc_auc_significance")
    if sig and sig.get("exceeds") is not None:
        lo, hi = sig["interval"]
        verdict = "exceeds" if sig["exceeds"] else "is within"
        print(
            f"roc_auc: the difference {verdict} the bootstrap interval [{lo:+.4f}, {hi:+.4f}] ({sig['method']})"
        )
    if not (d["params"] or d["data"] or d["metrics"] or "status" in d):
        print("no differences")
    return exits.OK


# ---------------------------------------------------------------------------------------------- formatting


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _num(v: Any, digits: int = 4) -> str:
    return f"{v:.{digits}f}" if _is_num(v) else "-"


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    text = json.dumps(v, default=str) if isinstance(v, (list, dict)) else str(v)
    return text if len(text) <= 60 else text[:59] + "…"


def _secs(v: Any) -> str:
    return f"{v:.1f}s" if _is_num(v) else "-"


def _digest(v: Any) -> str:
    return str(v)[:21] if v else "-"
