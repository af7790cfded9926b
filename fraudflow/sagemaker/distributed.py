"""Scale-out of the training job (`sagemaker.training.instance_count` > 1): how its channels reach the instances.

SageMaker's `ShardedByS3Key` gives each training instance whole S3 objects of a channel's prefix (about 1/N of
them each), `FullyReplicated` every object to every instance. The train channel is sharded, so each host reads
its share of preprocess's `train/part-*.csv` (split.train_files of them) and XGBoost's collective sums their
histograms (step_code/train.py, `distributed`); validation (early stopping, the tuning objective) and the
feature schema stay replicated, so every host evaluates the same rows and agrees on when to stop.
validate's constraints on this layout are in fraudflow/spec/scaleout.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SHARDED = "ShardedByS3Key"
REPLICATED = "FullyReplicated"
SHARDED_CHANNELS = ("train",)  # the channels split across instances; every other channel is replicated


def instance_count(training: Mapping[str, Any]) -> int:
    """The training job's instance count (validate refuses a pipeline parameter on it, FF516)."""
    count = training.get("instance_count", 1)
    return count if isinstance(count, int) and not isinstance(count, bool) else 1


def channel_distribution(training: Mapping[str, Any], channel: str) -> str:
    """S3DataDistributionType of a training channel: sharded when several instances train, else replicated
    (a one-instance job's definition stays as it was)."""
    return SHARDED if channel in SHARDED_CHANNELS and instance_count(training) > 1 else REPLICATED
