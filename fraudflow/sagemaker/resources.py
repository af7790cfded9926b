"""AWS resources that `plan`/`apply` converge beside the pipeline definition.

The pipeline, its uploads and the deployer Lambda are handled in apply.py. Everything else a pipelines.yaml can
declare around the pipeline (an EventBridge rule, an API in front of the endpoint, a schedule, ...) is one
*reconciler*: it compares what the YAML declares with what exists and returns the actions that converge them,
including removing what the YAML no longer declares (found by a name or tag the reconciler owns). A kind adds
itself by appending its factory to RECONCILERS; plan prints every action's line, apply runs them in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from fraudflow.plan import Plan
    from fraudflow.sagemaker.apply import Clients
    from fraudflow.sagemaker.compile import Rendered


@dataclass(frozen=True)
class Action:
    symbol: str  # "+" create, "~" update, "-" remove (as plan prints them)
    line: str  # what plan prints after the symbol, e.g. "EventBridge rule fraudflow-x: create"
    run: Callable[[Clients], None]  # performs the action; raise through apply.aws_errors for located errors
    order: int = 100  # apply runs actions by (order, position); the pipeline and its Lambda come first


class Reconciler(Protocol):
    kind: str  # e.g. "EventBridge rule", for messages

    def actions(self, c: Clients, r: Rendered) -> list[Action]:
        """What it takes to make AWS match the YAML; [] when it already does."""
        ...


# Each factory reads the Plan and returns its reconciler, or None when the kind cannot apply to this plan at all
# (a reconciler that must remove leftovers when its section is gone returns itself with nothing declared).
ReconcilerFactory = Callable[["Plan", dict[str, Any]], "Reconciler | None"]


def _monitoring(plan: Plan, context: dict[str, Any]) -> Reconciler | None:
    from fraudflow.sagemaker.monitoring import reconciler  # imports the compiler, which imports this module

    return reconciler(plan, context)


RECONCILERS: list[ReconcilerFactory] = [_monitoring]


def reconcilers_for(plan: Plan, context: dict[str, Any]) -> tuple[Reconciler, ...]:
    """context: what the compiler resolved (region, bucket, pipeline name, endpoint name, Lambda name, ...)."""
    found = (factory(plan, context) for factory in RECONCILERS)
    return tuple(r for r in found if r is not None)


def planned_actions(c: Clients, r: Rendered) -> list[Action]:
    actions = [a for rec in r.resources for a in rec.actions(c, r)]
    return sorted(actions, key=lambda a: a.order)  # stable: equal orders keep their position


def _api_gateway(plan: Plan, context: dict[str, Any]) -> Reconciler | None:
    """deploy.api: the HTTPS API in front of the endpoint (imported when used: render stays fast)."""
    from fraudflow.sagemaker.api_gateway import reconciler

    return reconciler(plan, context)


RECONCILERS.append(_api_gateway)


def _scoring(plan: Plan, context: dict[str, Any]) -> Reconciler | None:
    """deploy.batch: the scoring pipeline <name>-score (fraudflow/sagemaker/scoring.py)."""
    from fraudflow.sagemaker.scoring import reconciler

    return reconciler(plan, context)


RECONCILERS.append(_scoring)
