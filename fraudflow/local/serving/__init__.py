"""The local real-time endpoint: SageMaker's inference protocol over a registered model version."""
