"""Semantic checks of distributed training (`sagemaker.training.instance_count` > 1, FF612-FF614): what the
layout of the train split and the training settings must be for SageMaker's ShardedByS3Key channel and
XGBoost's collective to train one model (fraudflow/sagemaker/distributed.py, step_code/train.py).

Processing stays single-instance (FF515 in semantic.py): the processing scripts do not shard their inputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fraudflow.errors import Diagnostic

# tree methods XGBoost trains distributed: `exact` has no distributed implementation (XGBoost refuses it);
# `auto` is `hist` since XGBoost 2 and `approx` in the container's 1.7 when the collective is on
DISTRIBUTED_TREE_METHODS = ("auto", "approx", "hist")

Problem = tuple[str, str, tuple[Any, ...], str]


def training_instances(cfg: dict[str, Any]) -> int:
    count = ((cfg.get("sagemaker") or {}).get("training") or {}).get("instance_count", 1)
    return count if isinstance(count, int) and not isinstance(count, bool) else 1


def problems(cfg: dict[str, Any]) -> Iterator[Problem]:
    """Every constraint a distributed training job breaks (none when one instance trains)."""
    n = training_instances(cfg)
    if n < 2:
        return
    where = ("sagemaker", "training", "instance_count")
    files = (cfg.get("split") or {}).get("train_files", 1)
    if isinstance(files, int) and files < n:
        yield (
            "FF612",
            f"sagemaker.training.instance_count is {n}, but the train split is written as {files} file(s): "
            f"ShardedByS3Key gives each instance whole files, so {n - files} instance(s) would get none",
            where,
            f"set split.train_files: {n} (or a multiple of {n}, for an even share per instance)",
        )
    hps = (cfg.get("train") or {}).get("hyperparameters") or {}
    method = hps.get("tree_method")
    if isinstance(method, str) and method not in DISTRIBUTED_TREE_METHODS:
        yield (
            "FF613",
            f"tree_method {method!r} cannot train distributed ({n} instances): XGBoost's collective "
            f"supports {', '.join(DISTRIBUTED_TREE_METHODS)}",
            ("train", "hyperparameters", "tree_method"),
            "use tree_method: hist (what XGBoost >= 2 uses by default), or instance_count: 1",
        )
    searched = (((cfg.get("tune") or {}).get("hyperparameters") or {}).get("tree_method") or {}).get("values")
    for i, value in enumerate(searched or []):
        if isinstance(value, str) and value not in DISTRIBUTED_TREE_METHODS:
            yield (
                "FF613",
                f"tune searches tree_method {value!r}, which cannot train distributed ({n} instances)",
                ("tune", "hyperparameters", "tree_method", "values", i),
                f"search only {', '.join(DISTRIBUTED_TREE_METHODS)}, or use instance_count: 1",
            )
    if (cfg.get("train") or {}).get("cv"):
        yield (
            "FF614",
            f"train.cv with {n} training instances: train.py cross-validates on one host's rows only",
            ("train", "cv"),
            "use train.early_stopping on the validation split (every host evaluates all of it), "
            "or instance_count: 1",
        )


def check(cfg: dict[str, Any], pos: Any) -> list[Diagnostic]:
    return [pos.diagnostic(code, msg, path, hint=hint) for code, msg, path, hint in problems(cfg)]
