"""Semantic checks of `deploy.batch` (FF567-FF568): what the schema cannot say about the sources a scoring
pipeline reads and the SageMaker settings it needs."""

from __future__ import annotations

from typing import Any

from fraudflow.errors import Diagnostic


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
    return out
