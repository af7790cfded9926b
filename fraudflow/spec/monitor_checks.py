"""Semantic checks of the `monitor` section (FF570-FF575): what the schema cannot say about columns, the
schedule expression and where the scheduled monitoring pipeline reads captured traffic."""

from __future__ import annotations

import re
from typing import Any

from fraudflow.errors import Diagnostic

# EventBridge Scheduler's recurring expressions: rate(value unit) and cron(six fields)
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")


def schedule_problem(expression: str) -> str | None:
    """Why EventBridge Scheduler would refuse `expression`, or None."""
    rate = _RATE.match(expression)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        if value < 1:
            return "a rate must be at least 1"
        if (value == 1) != (not unit.endswith("s")):
            return f"write rate({value} {unit.rstrip('s') if value == 1 else unit.rstrip('s') + 's'})"
        return None
    cron = _CRON.match(expression)
    if cron:
        fields = cron.group(1).split()
        if len(fields) != 6:
            return f"cron() takes 6 fields (minutes hours day-of-month month day-of-week year), got {len(fields)}"
        if "?" not in (fields[2], fields[4]):
            return "one of day-of-month and day-of-week must be '?'"
        return None
    return "expected rate(N unit) or cron(minutes hours day-of-month month day-of-week year)"


def check(cfg: dict[str, Any], pos: Any) -> list[Diagnostic]:
    mon = cfg.get("monitor")
    out: list[Diagnostic] = []
    if not isinstance(mon, dict):
        return out
    data = cfg.get("data") or {}
    not_inputs = {data.get("label"), *(data.get("drop") or [])}
    for column in mon.get("columns") or {}:
        if column in not_inputs:
            what = "the label" if column == data.get("label") else "dropped (data.drop)"
            out.append(
                pos.diagnostic(
                    "FF570",
                    f"monitor.columns names {column!r}, which is {what}: not a model input",
                    ("monitor", "columns", column),
                    key=True,
                    hint="monitor.columns overrides thresholds of the raw columns the model reads",
                )
            )
    schedule = mon.get("schedule")
    if isinstance(schedule, str):
        problem = schedule_problem(schedule)
        if problem:
            out.append(
                pos.diagnostic(
                    "FF571",
                    f"monitor.schedule {schedule!r} is not an EventBridge Scheduler expression: {problem}",
                    ("monitor", "schedule"),
                    hint="e.g. rate(1 day) or cron(0 3 * * ? *)",
                )
            )
        capture = mon.get("capture")
        if not (isinstance(capture, str) and capture.startswith("s3://")):
            out.append(
                pos.diagnostic(
                    "FF572",
                    "monitor.schedule runs the monitoring pipeline on SageMaker, which reads captured traffic "
                    "from S3: monitor.capture must be an s3:// URI",
                    ("monitor", "capture") if capture else ("monitor", "schedule"),
                    hint="e.g. capture: s3://my-bucket/fraud-detect/data-capture/fraud-detect-xgb",
                )
            )
        if not cfg.get("deploy"):
            out.append(
                pos.diagnostic(
                    "FF575",
                    "monitor.schedule monitors the endpoint the pipeline deploys, but there is no `deploy` section",
                    ("monitor", "schedule"),
                    hint="declare deploy (the monitoring pipeline judges the version its endpoint serves)",
                )
            )
        if not cfg.get("sagemaker"):
            out.append(
                pos.diagnostic(
                    "FF573",
                    "monitor.schedule needs the `sagemaker` section (the pipeline it starts runs there)",
                    ("monitor", "schedule"),
                )
            )
    if mon.get("window_hours") is None and isinstance(schedule, str):
        out.append(
            pos.diagnostic(
                "FF574",
                "a scheduled monitor without monitor.window_hours compares everything ever captured",
                ("monitor", "schedule"),
                hint="set window_hours to the schedule's period, e.g. 24 for rate(1 day)",
                severity="warning",
            )
        )
    return out
