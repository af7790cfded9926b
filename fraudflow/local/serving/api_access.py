"""`deploy.api` locally: `fraudflow serve` demands the API key API Gateway would, so a client is written once.

The local deploy step records the endpoint's `deploy.api.auth` beside the registry (`.fraudflow/api/<endpoint>.json`;
removed when the YAML drops `deploy.api`). With `auth: api_key`, serve answers POST /invocations (and the runtime
path) only with header `x-api-key` equal to the key, else 403 `{"message": "Forbidden"}` as API Gateway does. The
key comes from the environment variable FRAUDFLOW_API_KEY, else the file `.fraudflow/api/<endpoint>.key` (its first
line); neither is ever written by fraudflow, and `.fraudflow/` is git-ignored. `auth: iam` (SigV4) is not checked
locally: serve stays open, as it is without `deploy.api`.
"""

from __future__ import annotations

import hmac
import json
import os
from pathlib import Path
from typing import Any

from fraudflow.errors import UserError

ENV = "FRAUDFLOW_API_KEY"
HEADER = "x-api-key"
MIN_LENGTH = 20  # API Gateway's shortest API key value
FORBIDDEN = b'{"message":"Forbidden"}'  # API Gateway's body for a missing or wrong key (HTTP 403)


def _dir(state_dir: Path) -> Path:
    return Path(state_dir) / "api"


def record(state_dir: Path, endpoint: str, api: dict[str, Any] | None) -> None:
    """What the local deploy step leaves for serve: the endpoint's auth, or nothing when it declares no API."""
    path = _dir(state_dir) / f"{endpoint}.json"
    if not api:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"auth": api.get("auth", "api_key"), "stage": api.get("stage", "prod")}) + "\n"
    )


def required_key(state_dir: Path, endpoint: str) -> bytes | None:
    """The key serve demands for `endpoint`, or None when it demands none. A missing or unusable key is a
    start-up error: serving an api_key endpoint open would hide what a client forgot."""
    path = _dir(state_dir) / f"{endpoint}.json"
    try:
        auth = json.loads(path.read_text()).get("auth")
    except (OSError, ValueError, AttributeError):
        return None
    if auth != "api_key":
        return None
    key_file = _dir(state_dir) / f"{endpoint}.key"
    source = f"${ENV}"
    key = os.environ.get(ENV)
    if key is None and key_file.is_file():
        lines = key_file.read_text(encoding="utf-8", errors="replace").splitlines()
        key, source = (lines[0].strip() if lines else ""), str(key_file)
    if key is None:
        raise UserError.single(
            "FF865",
            f"endpoint {endpoint!r} declares deploy.api.auth: api_key, and serve has no key to demand",
            hint=f"export {ENV}=<the key> (on AWS: the API key apply created; `aws apigateway get-api-key "
            f"--api-key ID --include-value`), or write it to {key_file}",
        )
    if len(key) < MIN_LENGTH or not key.isascii() or not key.isprintable():
        raise UserError.single(
            "FF866",
            f"the API key in {source} is not one API Gateway would accept: it needs at least {MIN_LENGTH} "
            "printable ASCII characters",
            hint="use the value of the API key apply created, or generate one (e.g. `openssl rand -hex 20`)",
        )
    return key.encode("ascii")


def allowed(given: str | None, key: bytes) -> bool:
    """Constant-time comparison: the answer's timing does not tell how much of a guess was right."""
    return given is not None and hmac.compare_digest(given.encode("latin-1"), key)
