"""Semantic checks of `deploy.batch` (FF567-FF568, FF776-FF777): what the schema cannot say about the sources a
scoring pipeline reads, the SageMaker settings it needs and the schedule that starts it."""

from __future__ import annotations

from typing import Any

from fraudflow.errors import Diagnostic
from fraudflow.spec.monitor_checks import schedule_problem


def check(cfg: dict[str, Any], pos: Any) -> list[Diagnostic]:
    batch = (cfg.get("deploy") or {}).get("batch")
    if not isinstance(batch, dict):
        return []
    out: list[Diagnostic] = []
    sources = list((cfg.get("data") or {}).get("sources") or {})
    for name in batch.get("inputs") or {}:
        if name not in sources:
            out.append(
                pos.diagnostic(
                    "FF567",
                    f"deploy.batch.inputs names {name!r}, which is not a data source",
                    ("deploy", "batch", "inputs", name),
                    key=True,
                    hint=f"the sources are: {', '.join(sources)}",
                )
            )
    if not cfg.get("sagemaker"):
        out.append(
            pos.diagnostic(
                "FF568",
                "deploy.batch declares a SageMaker scoring pipeline, but the pipeline has no `sagemaker` section",
                ("deploy", "batch"),
                key=True,
                hint="declare sagemaker.role_arn and sagemaker.bucket, or score locally with `fraudflow predict`",
            )
        )
    out += _schedule(cfg, batch, pos)
    return out


def _schedule(cfg: dict[str, Any], batch: dict[str, Any], pos: Any) -> list[Diagnostic]:
    """deploy.batch.schedule: an expression EventBridge Scheduler takes (the monitoring schedule's rule), and a
    schedule that would score the same uploaded local files every time is pointed out."""
    schedule = batch.get("schedule")
    if not isinstance(schedule, str):
        return []
    path = ("deploy", "batch", "schedule")
    problem = schedule_problem(schedule)
    if problem:
        return [
            pos.diagnostic(
                "FF776",
                f"deploy.batch.schedule {schedule!r} is not an EventBridge Scheduler expression: {problem}",
                path,
                hint="e.g. rate(1 day) or cron(0 4 * * ? *) (minutes hours day-of-month month day-of-week year)",
            )
        ]
    sources = (cfg.get("data") or {}).get("sources") or {}
    given = batch.get("inputs") or {}
    local = [n for n, uri in sources.items() if n not in given and not str(uri).startswith("s3://")]
    if not local:
        return []
    return [
        pos.diagnostic(
            "FF777",
            f"deploy.batch.schedule scores the same claims every run: source(s) {', '.join(map(repr, local))} "
            "are local files, which apply uploads once",
            path,
            hint="name the S3 location new claims arrive at in deploy.batch.inputs (or data.sources)",
            severity="warning",
        )
    ]
