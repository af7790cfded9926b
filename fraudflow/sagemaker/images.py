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
from fraudflow.sagemaker import partition

# The image versions the step scripts run on, with each image's Python and library pins as its container
# repository declares them (requirements.txt and docker/<version>/base/Dockerfile.cpu on the version's branch of
# aws/sagemaker-scikit-learn-container and aws/sagemaker-xgboost-container).
# tests/test_step_code_container_versions.py runs the scripts on these pins (the nearest release with a wheel
# for the test machine's Python where a pin has none); the schema's enums list exactly these versions.
SUPPORTED: dict[str, dict[str, dict[str, str]]] = {
    "sklearn": {  # runs preprocess
        "1.2-1": {"python": "3.9", "numpy": "1.24.1", "pandas": "1.1.3", "scikit-learn": "1.2.1", "scipy": "1.8.0"},
        "1.4-2": {"python": "3.10", "numpy": "2.1.0", "pandas": "2.3.2", "scikit-learn": "1.4.2", "scipy": ">=1.9.0"},
    },
    "xgboost": {  # runs train, evaluate and the model
        "1.7-1": {
            "python": "3.9", "xgboost": "1.7.4", "numpy": "1.24.1", "pandas": "1.2.4", "scikit-learn": "0.24.1",
            "scipy": "1.8.0",
        },
    },
}  # fmt: skip
# Images the SDK knows that the scripts do not run on, and why (the hint of the error).
UNSUPPORTED: dict[str, dict[str, str]] = {
    "sklearn": {
        "0.20.0": "Python 3.6 and pandas 0.24: the step scripts need Python >= 3.9 and pandas >= 1.1",
        "0.23-1": "Python 3.7: the step scripts need Python >= 3.9",
        "1.0-1": "Python 3.8: the step scripts need Python >= 3.9",
    },
    "xgboost": {
        "1.3-1": "xgboost 1.3.3: train.py needs xgboost >= 1.7 (Booster.num_boosted_rounds, JSON models)",
        "1.5-1": "xgboost 1.5.2: train.py needs xgboost >= 1.7 (it writes xgboost-model as JSON, which 1.5 "
        "reads only from a .json file name)",
    },
}


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
    if framework in SUPPORTED and version not in SUPPORTED[framework]:
        why = UNSUPPORTED[framework].get(version, "the step scripts are not tested on it")
        raise UserError.single(
            "FF702",
            f"{framework} image version {version!r} is not supported: {why}",
            file=file,
            path="sagemaker.*.framework_version",
            hint="supported: " + ", ".join(SUPPORTED[framework]),
        )
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
    domain = partition.of(
        region
    ).dns_suffix  # as the SDK's retrieve: ECR's hostname in the region's partition
    return f"{registries[region]}.dkr.ecr.{region}.{domain}/{vcfg['repository']}:{tag}"


def sklearn(version: str, region: str, file: str | None = None) -> str:
    return image_uri("sklearn", version, region, file=file)


def xgboost(version: str, region: str, file: str | None = None) -> str:
    return image_uri("xgboost", version, region, file=file)


def clarify(region: str, file: str | None = None) -> str:
    return image_uri("clarify", "1.0", region, scope="processing", file=file)
