"""step_code/lambda_deployer.py as the deployer tests use it: the module (loaded by path, as the Lambda runtime
loads the zip's one file), a fake clock for its waits, and moto's client without UpdateEndpoint."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _load() -> Any:
    spec = importlib.util.spec_from_file_location(
        "lambda_deployer", ROOT / "step_code" / "lambda_deployer.py"
    )
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


deployer = _load()


class Clock:
    """Fake time for the deployer's waits: `sleep` advances it, `remaining` counts down from the Lambda budget."""

    def __init__(self, budget: float = 840.0):
        self.t, self.budget, self.sleeps = 0.0, budget, []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def remaining(self) -> float:
        return self.budget - self.t


def deploy(event: dict[str, Any], sm: Any = None, clock: Clock | None = None) -> dict[str, str]:
    """What `handler` does for a pipeline's Lambda step (boto3's client from the environment: moto), on a fake
    clock: the wait for InService polls without sleeping 15 s of real time."""
    clock = clock or Clock()
    return deployer.deploy(event, sm or deployer._client(), sleep=clock.sleep, remaining=clock.remaining)


def on_approval(payload: dict[str, Any], sm: Any = None, clock: Clock | None = None) -> dict[str, str]:
    """What `handler` does with the payload the approval rule delivers, on a fake clock."""
    clock = clock or Clock()
    return deployer.on_approval_event(
        payload["deploy"],
        payload["event"],
        sm or deployer._client(),
        sleep=clock.sleep,
        remaining=clock.remaining,
    )


class NoUpdateEndpoint:
    """moto's client, except UpdateEndpoint (unimplemented in moto): recorded, and DescribeEndpoint then shows
    the endpoint InService with the new config, as SageMaker does once the update is done."""

    def __init__(self, client: Any):
        self._client = client
        self.updates: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        self.updates.append(kwargs)
        return {
            "EndpointArn": self._client.describe_endpoint(EndpointName=kwargs["EndpointName"])["EndpointArn"]
        }

    def describe_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        answer = self._client.describe_endpoint(**kwargs)
        if self.updates:
            answer["EndpointConfigName"] = self.updates[-1]["EndpointConfigName"]
        return answer
