"""fraudflow: one pipelines.yaml, a fraud-detection XGBoost pipeline run locally or on SageMaker."""

from __future__ import annotations

__version__ = "0.1.0"
