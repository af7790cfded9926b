"""Data capture for `fraudflow serve`: requests and responses as JSON Lines in SageMaker's data-capture layout.

Layout (as SageMaker writes under an endpoint config's DataCaptureConfig.DestinationS3Uri):
    <root>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm>-<ss>-<ms>-<uuid>.jsonl
one record a line:
    {"captureData": {"endpointInput": {"observedContentType", "mode": "INPUT", "data", "encoding"},
                     "endpointOutput": {"observedContentType", "mode": "OUTPUT", "data", "encoding"}},
     "eventMetadata": {"eventId", "inferenceId", "inferenceTime", "modelVersion"}, "eventVersion": "0"}
`encoding` is CSV or JSON (the body as text) for those content types, else BASE64. `eventMetadata.modelVersion`
(fraudflow's addition: GROUP:VERSION) names the registered version that answered; `inferenceId` is the one the
caller sent in `X-Amzn-SageMaker-Inference-Id`, or one the server made, and is returned in that header.

Nothing accepted is lost: a record is written (one write(2) on an unbuffered file, so it survives the process
being killed) before its response is sent; a file is closed and a new one started when it reaches
`max_bytes`, when it is `max_seconds` old, or when the hour of the path changes; `close` on shutdown. Each
process (`--workers N`) writes files of its own (the uuid in the name).
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_FILE = "data_capture.json"  # .fraudflow/endpoints/<endpoint>/: what the local deploy step configured
_TEXT_ENCODINGS = {"text/csv": "CSV", "application/json": "JSON"}
CAPTURE_MODES = ("Input", "Output", "InputAndOutput")


@dataclass(frozen=True)
class CaptureConfig:
    root: Path
    sampling_percentage: float = 100.0
    max_bytes: int = 16 * 1024 * 1024
    max_seconds: float = 60.0
    mode: str = "InputAndOutput"

    def to_json(self) -> dict:
        return {
            "root": str(self.root),
            "sampling_percentage": self.sampling_percentage,
            "max_bytes": self.max_bytes,
            "max_seconds": self.max_seconds,
            "mode": self.mode,
        }

    @classmethod
    def from_json(cls, doc: dict) -> CaptureConfig:
        return cls(
            root=Path(doc["root"]),
            sampling_percentage=float(doc.get("sampling_percentage", 100.0)),
            max_bytes=int(doc.get("max_bytes", 16 * 1024 * 1024)),
            max_seconds=float(doc.get("max_seconds", 60.0)),
            mode=str(doc.get("mode", "InputAndOutput")),
        )


def local_config(deploy: dict, state_dir: Path, base: Path) -> CaptureConfig | None:
    """The capture a pipeline's `deploy.data_capture` asks for, on this machine: an S3 destination is mirrored
    under .fraudflow/data-capture/, a local one is used as it is (relative to the pipelines file)."""
    dc = deploy.get("data_capture") or {}
    if not dc or not dc.get("enabled", True):
        return None
    dest = str(dc.get("destination") or "")
    root = state_dir / "data-capture" if not dest or dest.startswith("s3://") else (base / dest).resolve()
    return CaptureConfig(
        root=root,
        sampling_percentage=float(dc.get("sampling_percentage", 100)),
        max_bytes=int(float(dc.get("rotate_mb", 16)) * 1024 * 1024),
        max_seconds=float(dc.get("rotate_seconds", 60)),
        mode=str(dc.get("capture_mode", "InputAndOutput")),
    )


def save_endpoint_config(state_dir: Path, endpoint: str, config: CaptureConfig | None) -> None:
    """Record (or clear) the capture of a local endpoint, for `fraudflow serve` to read."""
    path = state_dir / "endpoints" / endpoint / CONFIG_FILE
    if config is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config.to_json(), indent=2, sort_keys=True))
    os.replace(tmp, path)


def endpoint_config(state_dir: Path, endpoint: str) -> CaptureConfig | None:
    path = state_dir / "endpoints" / endpoint / CONFIG_FILE
    if not path.is_file():
        return None
    return CaptureConfig.from_json(json.loads(path.read_text()))


# InvokeEndpoint's InferenceId (the X-Amzn-SageMaker-Inference-Id header), as AWS's API reference and botocore's
# sagemaker-runtime model state it: length 1-64, pattern \A\S[\p{Print}]*\z (Java's classes: a first character
# that is not white space, then printable ASCII, space to tilde). SageMaker refuses any other with a 400.
INFERENCE_ID_MAX = 64
INFERENCE_ID_PATTERN = r"\A\S[\p{Print}]*\z"
_INFERENCE_ID = re.compile(r"[^ \t\n\x0b\f\r][\x20-\x7e]*")


def inference_id_constraint(value: str) -> str | None:
    """The constraint of SageMaker's InferenceId that `value` fails (in the words of AWS's validation errors),
    or None when SageMaker would accept it."""
    if not value:
        return "Member must have length greater than or equal to 1"
    if len(value) > INFERENCE_ID_MAX:
        return f"Member must have length less than or equal to {INFERENCE_ID_MAX}"
    if not _INFERENCE_ID.fullmatch(value):
        return f"Member must satisfy regular expression pattern: {INFERENCE_ID_PATTERN}"
    return None


def _payload(content_type: str | None, body: bytes, mode: str) -> dict:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    encoding = _TEXT_ENCODINGS.get(media)
    data: str | None = None
    if encoding is not None:
        try:
            data = body.decode("utf-8")
        except UnicodeDecodeError:
            encoding = None
    if encoding is None:
        encoding, data = "BASE64", base64.b64encode(body).decode("ascii")
    return {"observedContentType": content_type or "", "mode": mode, "data": data, "encoding": encoding}


def record(
    *,
    inference_id: str,
    request_type: str | None,
    request: bytes,
    response_type: str | None,
    response: bytes,
    model: str,
    when: float,
    mode: str = "InputAndOutput",
) -> dict:
    """One capture record, SageMaker's fields in SageMaker's order."""
    data: dict[str, Any] = {}
    if mode in ("Input", "InputAndOutput"):
        data["endpointInput"] = _payload(request_type, request, "INPUT")
    if mode in ("Output", "InputAndOutput"):
        data["endpointOutput"] = _payload(response_type, response, "OUTPUT")
    return {
        "captureData": data,
        "eventMetadata": {
            "eventId": str(uuid.uuid4()),
            "inferenceId": inference_id,
            "inferenceTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)),
            "modelVersion": model,
        },
        "eventVersion": "0",
    }


class _File:
    __slots__ = ("fd", "hour", "opened", "size", "path")

    def __init__(self, path: Path, hour: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.path, self.hour, self.opened, self.size = path, hour, time.monotonic(), 0


class CaptureWriter:
    """Thread-safe; one open file per (endpoint, variant)."""

    def __init__(self, config: CaptureConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._files: dict[tuple[str, str], _File] = {}
        self.written = 0

    def sampled(self) -> bool:
        pct = self.config.sampling_percentage
        return pct >= 100 or (pct > 0 and self._rng.random() * 100 < pct)

    def write(self, endpoint: str, variant: str, rec: dict, when: float) -> None:
        line = (json.dumps(rec, separators=(",", ":")) + "\n").encode()
        t = time.gmtime(when)
        hour = time.strftime("%Y/%m/%d/%H", t)
        with self._lock:
            key = (endpoint, variant)
            f = self._files.get(key)
            if f is not None and self._full(f, hour, len(line)):
                os.close(f.fd)
                f = None
            if f is None:
                name = f"{time.strftime('%M-%S', t)}-{int(when * 1000) % 1000:03d}-{uuid.uuid4()}.jsonl"
                f = self._files[key] = _File(self.config.root / endpoint / variant / hour / name, hour)
            view = memoryview(line)
            while view:  # a regular file takes it in one write; loop for the rare partial one
                view = view[os.write(f.fd, view) :]
            f.size += len(line)
            self.written += 1

    def _full(self, f: _File, hour: str, adding: int) -> bool:
        """Rotate: a new hour (the path names it), the size limit (a file holds at least one record), or age."""
        over = f.size > 0 and f.size + adding > self.config.max_bytes
        return f.hour != hour or over or time.monotonic() - f.opened >= self.config.max_seconds

    def close(self) -> None:
        with self._lock:
            for f in self._files.values():
                os.close(f.fd)
            self._files.clear()
