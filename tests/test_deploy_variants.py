"""`deploy.variants` resolve the same way in both backends: one table of cases, each run against the local
registry (what `fraudflow run`'s deploy step asks) and against the SageMaker deployer Lambda over a model
package listing (what the pipeline's Lambda step asks), with identical choices, notes and refusals."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudflow.errors import UserError
from fraudflow.local.registry import Registry
from tests.deployer_util import deployer
from tests.test_registry import register

GROUP_ARN = "arn:aws:sagemaker:us-east-1:111122223333:model-package/fraud"
P, A, R = "PendingManualApproval", "Approved", "Rejected"


class _NotFound(Exception):
    """What botocore raises for a package that does not exist (its `response` is what the deployer reads)."""

    response = {"Error": {"Code": "ValidationException", "Message": "Model package not found"}}


class ModelPackages:
    """SageMaker's DescribeModelPackage over a group whose versions have these statuses (1-based)."""

    def __init__(self, statuses: list[str]) -> None:
        self.statuses = statuses

    def describe_model_package(self, ModelPackageName: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        version = int(ModelPackageName.rsplit("/", 1)[-1])
        if not 1 <= version <= len(self.statuses):
            raise _NotFound(ModelPackageName)
        return {"ModelPackageArn": ModelPackageName, "ModelApprovalStatus": self.statuses[version - 1]}


Outcome = tuple[
    str, Any, Any
]  # ("error", None, None) | ("refused", reason, None) | ("deploy", served, notes)


def on_sagemaker(statuses: list[str], variants: list[dict[str, Any]], require_approval: bool) -> Outcome:
    event = {
        "model_package_arn": f"{GROUP_ARN}/{len(statuses)}",
        "variants": variants,
        "require_approval": require_approval,
    }
    try:
        served, notes, refused = deployer.resolve(event, ModelPackages(statuses))
    except deployer.DeployError:
        return "error", None, None
    if refused:
        return "refused", refused, None
    return "deploy", [(s.name, int(s.version), s.weight) for s in served], notes


def locally(statuses: list[str], variants: list[dict[str, Any]], require_approval: bool) -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        reg = Registry(Path(tmp) / ".fraudflow")
        try:
            for i, status in enumerate(statuses):
                register(reg, Path(tmp), f"r{i}", status=status)
            try:
                chosen = reg.choose("fraud", len(statuses), variants, require_approval=require_approval)
            except UserError:
                return "error", None, None
        finally:
            reg.close()
    if chosen.refused:
        return "refused", chosen.refused, None
    return "deploy", [(c.name, c.version, c.weight) for c in chosen.served], chosen.notes


def V(name: str, weight: float, version: str | int = "latest") -> dict[str, Any]:  # noqa: N802
    return {"name": name, "weight": weight, "model_version": version}


# (versions' statuses, variants, require_approval) -> what is served, or "refused"/"error"
CASES = [
    ([P], [V("All", 1)], False, [("All", 1, 1.0)]),
    ([P, P, P], [V("All", 1)], False, [("All", 3, 1.0)]),
    ([P, P, P], [V("Blue", 0.9), V("Green", 0.1, "previous")], False, [("Blue", 3, 0.9), ("Green", 2, 0.1)]),
    ([P, P, P], [V("Pinned", 1, 1)], False, [("Pinned", 1, 1.0)]),
    ([P, P, P], [V("Pinned", 1, "2")], False, [("Pinned", 2, 1.0)]),
    # the first registration has no previous: its weight goes to the variant serving latest
    ([P], [V("Blue", 0.9), V("Green", 0.1, "previous")], False, [("Blue", 1, 1.0)]),
    # ... or, when no variant serves latest, the variant serves latest itself
    ([P], [V("Green", 1, "previous")], False, [("Green", 1, 1.0)]),
    ([P, P], [V("Old", 1, 7)], False, "error"),  # not registered
    ([P, P], [V("Blue", 1), V("Blue", 1, 1)], False, "error"),  # a name twice
    ([P, P], [V("Blue", 0), V("Green", 0, 1)], False, "error"),  # no traffic
    # a Rejected version is never served, whatever require_approval says
    ([A, R], [V("All", 1)], False, "refused"),
    ([R, A], [V("Blue", 0.9), V("Green", 0.1, "previous")], False, "refused"),
    ([R, A], [V("Pinned", 1, 1)], True, "refused"),
    # require_approval: every served version must be Approved
    ([A, P], [V("All", 1)], True, "refused"),
    ([P, A], [V("Blue", 0.9), V("Green", 0.1, "previous")], True, "refused"),
    ([A, A], [V("Blue", 0.9), V("Green", 0.1, "previous")], True, [("Blue", 2, 0.9), ("Green", 1, 0.1)]),
    ([P, A], [V("All", 1)], True, [("All", 2, 1.0)]),
    ([A], [V("Blue", 0.9), V("Green", 0.1, "previous")], True, [("Blue", 1, 1.0)]),
]


@pytest.mark.parametrize("statuses, variants, require_approval, expected", CASES)
def test_both_backends_choose_the_same_versions(
    statuses: list[str], variants: list[dict[str, Any]], require_approval: bool, expected: Any
) -> None:
    local, cloud = (
        locally(statuses, variants, require_approval),
        on_sagemaker(statuses, variants, require_approval),
    )
    assert local == cloud
    if isinstance(expected, list):
        assert local[:2] == ("deploy", expected)
    else:
        assert local[0] == expected


def test_a_refusal_names_the_versions_and_the_rule() -> None:
    _, reason, _ = locally([P, A], [V("Blue", 0.9), V("Green", 0.1, "previous")], True)
    assert reason == "v1 (Green) is PendingManualApproval, not Approved (deploy.require_approval)"
    _, reason, _ = on_sagemaker([R, A], [V("Pinned", 1, 1)], False)
    assert reason == "v1 (Pinned) is Rejected: a rejected version never serves traffic"


VARIANT = st.builds(
    V,
    st.sampled_from(["A", "B", "C"]),
    st.sampled_from([0, 0.1, 0.5, 1]),
    st.one_of(st.sampled_from(["latest", "previous"]), st.integers(1, 5)),
)


@settings(max_examples=60, deadline=None)
@given(
    statuses=st.lists(st.sampled_from([P, A, R]), min_size=1, max_size=4),
    variants=st.lists(VARIANT, min_size=1, max_size=3),
    require_approval=st.booleans(),
)
def test_any_variant_list_resolves_identically_in_both_backends(
    statuses: list[str], variants: list[dict[str, Any]], require_approval: bool
) -> None:
    assert locally(statuses, variants, require_approval) == on_sagemaker(statuses, variants, require_approval)
