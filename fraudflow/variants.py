"""`deploy.variants`, one rule for both backends: the resolver lives in step_code/lambda_deployer.py (standard
library only, so the Lambda's zip ships it) and this module hands it to fraudflow's side: the semantic check
of pipelines.yaml and the local registry's deploy."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, cast


class Choice(NamedTuple):  # the shape of lambda_deployer.Choice
    name: str
    version: int
    weight: float


class Resolution(NamedTuple):  # the shape of lambda_deployer.Resolution
    served: list[Choice]
    notes: list[str]
    refused: str


class _Deployer(Protocol):
    DeployError: type[ValueError]

    def variant_problems(self, variants: Any) -> list[tuple[int | None, str | None, str]]: ...

    def resolve_variants(
        self,
        variants: list[dict[str, Any]],
        newest: int,
        status_of: Callable[[int], str | None],
        *,
        require_approval: bool = False,
    ) -> Resolution: ...


@functools.cache
def _deployer() -> _Deployer:
    from fraudflow.plan import STEP_CODE

    spec = importlib.util.spec_from_file_location(
        "fraudflow_step_lambda_deployer", STEP_CODE / "lambda_deployer.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return cast(_Deployer, module)


def variant_problems(variants: Any) -> list[tuple[int | None, str | None, str]]:
    """(index, field, message) for each problem of a variant list; empty when it is fine."""
    return _deployer().variant_problems(variants)


def resolve_variants(
    variants: list[dict[str, Any]],
    newest: int,
    status_of: Callable[[int], str | None],
    *,
    require_approval: bool = False,
) -> Resolution:
    """See lambda_deployer.resolve_variants; raises `DeployError` (a ValueError)."""
    res = _deployer().resolve_variants(variants, newest, status_of, require_approval=require_approval)
    return Resolution([Choice(*c) for c in res.served], list(res.notes), res.refused)


def deploy_error() -> type[ValueError]:
    return _deployer().DeployError
