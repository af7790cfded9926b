"""The AWS partition of a region (aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, …) and its DNS suffix, for every
ARN and ECR domain fraudflow builds.

Read from botocore's own partition data (`botocore/data/partitions.json`, the table boto3 resolves endpoints
with), located with `importlib.util.find_spec` so `render` imports neither boto3 nor botocore. Without botocore,
a copy of its region rules for the partitions SageMaker runs in.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from pathlib import Path
from typing import NamedTuple


class Partition(NamedTuple):
    id: str  # the ARN's second field: arn:<id>:service:region:account:resource
    dns_suffix: str  # amazonaws.com, amazonaws.com.cn, c2s.ic.gov, …


_FALLBACK = [  # botocore 1.35's partitions.json: id, dnsSuffix, regionRegex
    {"id": "aws", "outputs": {"dnsSuffix": "amazonaws.com"}, "regionRegex": r"^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$"},
    {"id": "aws-cn", "outputs": {"dnsSuffix": "amazonaws.com.cn"}, "regionRegex": r"^cn\-\w+\-\d+$"},
    {"id": "aws-us-gov", "outputs": {"dnsSuffix": "amazonaws.com"}, "regionRegex": r"^us\-gov\-\w+\-\d+$"},
    {"id": "aws-iso", "outputs": {"dnsSuffix": "c2s.ic.gov"}, "regionRegex": r"^us\-iso\-\w+\-\d+$"},
    {"id": "aws-iso-b", "outputs": {"dnsSuffix": "sc2s.sgov.gov"}, "regionRegex": r"^us\-isob\-\w+\-\d+$"},
]  # fmt: skip


@functools.cache
def _partitions() -> list[dict]:
    spec = importlib.util.find_spec("botocore")  # locates the package; does not import it
    if spec is not None and spec.submodule_search_locations:
        data = Path(next(iter(spec.submodule_search_locations))) / "data" / "partitions.json"
        if data.is_file():
            return json.loads(data.read_text())["partitions"]
    return _FALLBACK


@functools.cache
def of(region: str) -> Partition:
    """The partition `region` belongs to: listed by name first, else by the partition's region pattern (the
    aws pattern also matches us-gov-…, so the explicit lists and the more specific patterns go first)."""
    table = _partitions()
    found = next((p for p in table if region in (p.get("regions") or {})), None)
    if found is None:
        matches = [p for p in table if re.match(p["regionRegex"], region)]
        found = next((p for p in matches if p["id"] != "aws"), matches[0] if matches else table[0])
    return Partition(found["id"], found["outputs"]["dnsSuffix"])


def arn(service: str, region: str, account: str, resource: str) -> str:
    return f"arn:{of(region).id}:{service}:{region}:{account}:{resource}"


def role_partition(role_arn: str) -> str:
    return role_arn.split(":")[1] if role_arn.count(":") >= 5 else "aws"
