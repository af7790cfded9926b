"""`fraudflow monitor --current s3://…`: the capture files of the window, downloaded without the rest.

SageMaker's data capture writes `<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl` (UTC hours). The
prefix is listed a level at a time (ListObjectsV2 with a `/` delimiter) and a year, month, day or hour prefix
that ended before the window is neither listed further nor downloaded: step_code/monitor.py's `before_window`,
the rule its own walk of a local folder follows, so both read the same files. A daily monitor of an endpoint
that has captured for a year reads about a day of capture, not the year.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from fraudflow.errors import UserError

CODE = "FF775"


def since(window_hours: float | None) -> datetime | None:
    return datetime.now(timezone.utc) - timedelta(hours=window_hours) if window_hours else None


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise UserError.single(CODE, f"--current {uri}: no bucket in the S3 URI", hint="s3://BUCKET/PREFIX")
    return bucket, key


def window_keys(client: Any, bucket: str, prefix: str, start: datetime | None) -> list[str]:
    """The keys below `prefix` (a folder: ends in '/' or is empty) that the window can hold."""
    from fraudflow.local.runner import load_script
    from fraudflow.plan import STEP_CODE

    before_window = load_script(STEP_CODE / "monitor.py").before_window
    keys: list[str] = []
    folders = [prefix]
    paginator = client.get_paginator("list_objects_v2")
    while folders:
        folder = folders.pop()
        for page in paginator.paginate(Bucket=bucket, Prefix=folder, Delimiter="/"):
            for sub in page.get("CommonPrefixes", []):
                parts = sub["Prefix"].strip("/").split("/")  # the whole key: the URI may name a year or day
                if not before_window(parts, start):
                    folders.append(sub["Prefix"])
            keys += [o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/")]
    return sorted(keys)


def _is_object(client: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def download_window(uri: str, window_hours: float | None, dest: Path, client: Any = None) -> Path:
    """The objects of the window under `uri` (a capture prefix, or one scored/raw file) copied below `dest`,
    keeping their relative keys (monitor.py reads the hour folders as it would locally); returns the folder."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = _split(uri)
    client = client or boto3.client("s3")
    prefix = key if key.endswith("/") or not key else key + "/"
    try:
        keys = window_keys(client, bucket, prefix, since(window_hours))
        if not keys and key and not key.endswith("/") and _is_object(client, bucket, key):
            keys = [key]  # the URI names one object (a scored or raw file), not a folder
            prefix = key.rpartition("/")[0] + "/" if "/" in key else ""
        if not keys:
            raise UserError.single(
                CODE,
                f"--current {uri}: no objects"
                + (f" in the last {window_hours:g} hours" if window_hours else "")
                + " (data capture writes <endpoint>/<variant>/yyyy/mm/dd/hh/ below its destination)",
                hint="check the URI against deploy.data_capture.destination, or widen --window-hours",
            )
        for k in keys:
            rel = PurePosixPath(k[len(prefix) :])
            if ".." in rel.parts or rel.is_absolute():
                raise UserError.single(
                    CODE, f"--current {uri}: key {k!r} leaves the prefix", hint="rename it"
                )
            target = dest.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, k, str(target))
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise UserError.single(
            CODE,
            f"--current {uri}: {err.get('Code', 'error')}: {err.get('Message', exc)}",
            hint="check the bucket, the prefix and your credentials' s3:ListBucket and s3:GetObject",
        ) from None
    except BotoCoreError as exc:
        raise UserError.single(CODE, f"--current {uri}: {exc}", hint="check your AWS configuration") from None
    return dest
