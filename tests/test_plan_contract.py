"""The Plan is the contract both backends read: each step's config is exactly what its script reads, and readers of
step outputs find files through the Plan."""

from __future__ import annotations

from fraudflow.plan import Plan, build_plan
from fraudflow.spec.load import load_one
from tests.conftest import ROOT


def _plan(*overrides: str) -> Plan:
    return build_plan(
        load_one(str(ROOT / "pipelines.yaml"), env=None, overrides=list(overrides), pipeline=None)
    )


def test_settings_only_the_gate_reads_are_in_no_step_config() -> None:
    """A step's cache key covers its config: a gate-only setting in it would re-run the step for nothing."""
    base = _plan()
    for change in ("gate.threshold=0.71", "gate.metric=pr_auc"):
        other = _plan(change)
        for a, b in zip(base.steps, other.steps, strict=True):
            assert (a.config, a.hyperparameters) == (b.config, b.hyperparameters), (change, a.name)
    assert _plan("gate.threshold=0.71").gate.threshold == 0.71
