"""Container image URIs from the SageMaker SDK's own image data, without importing the SDK.

The SDK ships its account/region/tag tables as JSON (`sagemaker/image_uri_config/<framework>.json`). Reading
those files directly keeps `render` fast (importing `sagemaker` costs seconds) and the URIs exactly the SDK's.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

from fraudflow.errors import UserError

# Partition DNS suffixes (botocore's endpoint data, which the SDK consults): only these differ from aws.
_DOMAINS = {"cn-": "amazonaws.com.cn", "us-iso-": "c2s.ic.gov", "us-isob-": "sc2s.sgov.gov"}


@functools.lru_cache(maxsize=1)
def config_dir() -> Path:
    spec = importlib.util.find_spec("sagemaker")  # locates the package; does not import it
    if spec is None or not spec.submodule_search_locations:
        raise UserError.single(
            "FF701",
            "the SageMaker Python SDK is not installed: render reads its image-URI data",
            hint="pip install 'sagemaker>=2.200,<3' (or pip install fraudflow[sagemaker])",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "image_uri_config"


@functools.cache
def _framework(name: str) -> dict:
    return json.loads((config_dir() / f"{name}.json").read_text())


def _listing(items: list[str], limit: int = 12) -> str:
    head = ", ".join(items[:limit])
    return head + (f" … ({len(items)} in all)" if len(items) > limit else "")


def image_uri(
    framework: str, version: str, region: str, scope: str = "training", file: str | None = None
) -> str:
    """As `sagemaker.image_uris.retrieve(framework, region, version, image_scope=scope)` for CPU images."""
    cfg = _framework(framework)
    cfg = cfg.get(scope, cfg)
    version = (cfg.get("version_aliases") or {}).get(version, version)
    versions = cfg.get("versions") or {}
    if version not in versions:
        raise UserError.single(
            "FF702",
            f"{framework} image version {version!r} is not in the SageMaker SDK's image data",
            file=file,
            path="sagemaker.*.framework_version",
            hint="known versions: " + _listing(sorted(versions)),
        )
    vcfg = versions[version]
    registries = vcfg.get("registries") or {}
    if region not in registries:
        raise UserError.single(
            "FF703",
            f"no {framework} {version} image in region {region!r}",
            file=file,
            path="sagemaker.region",
            hint="regions with this image: " + _listing(sorted(registries)),
        )
    processors = vcfg.get("processors") or cfg.get("processors")
    processor = "cpu" if processors and "cpu" in processors else None
    py = vcfg.get("py_versions")
    py_version = py[0] if py and len(py) == 1 else ("py3" if py else None)
    tag = "-".join(x for x in (vcfg.get("tag_prefix", version), processor, py_version) if x)
    domain = next((d for p, d in _DOMAINS.items() if region.startswith(p)), "amazonaws.com")
    return f"{registries[region]}.dkr.ecr.{region}.{domain}/{vcfg['repository']}:{tag}"


def sklearn(version: str, region: str, file: str | None = None) -> str:
    return image_uri("sklearn", version, region, file=file)


def xgboost(version: str, region: str, file: str | None = None) -> str:
    return image_uri("xgboost", version, region, file=file)


def clarify(region: str, file: str | None = None) -> str:
    return image_uri("clarify", "1.0", region, scope="processing", file=file)
