"""deploy.data_capture → the DataCaptureConfig of the endpoint config the deployer Lambda creates.

Built at render time (so `plan` shows it and the Lambda passes it through untouched). The destination is the
YAML's `destination` when it is an s3:// URI, else s3://<bucket>/<prefix>/data-capture (a local path only
applies to `fraudflow serve`). SageMaker then writes <destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl,
the layout `fraudflow serve` writes locally (fraudflow/local/serving/capture.py).
"""

from __future__ import annotations

from typing import Any

CONTENT_TYPES = {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]}


def destination(section: dict[str, Any], default_uri: str) -> str:
    dest = str(section.get("destination") or "")
    return dest.rstrip("/") if dest.startswith("s3://") else default_uri


def data_capture_config(section: Any, default_uri: str) -> dict[str, Any] | None:
    """SageMaker's DataCaptureConfig for a `deploy.data_capture` section, or None when capture is off."""
    if not section or not section.get("enabled", True):
        return None
    mode = str(section.get("capture_mode", "InputAndOutput"))
    modes = ["Input", "Output"] if mode == "InputAndOutput" else [mode]
    config: dict[str, Any] = {
        "EnableCapture": True,
        "InitialSamplingPercentage": int(section.get("sampling_percentage", 100)),
        "DestinationS3Uri": destination(section, default_uri),
        "CaptureOptions": [{"CaptureMode": m} for m in modes],
        "CaptureContentTypeHeader": CONTENT_TYPES,
    }
    if section.get("kms_key_id"):
        config["KmsKeyId"] = section["kms_key_id"]
    return config
