"""Deploy on approval on SageMaker (`deploy.when: approved`): an EventBridge rule beside the pipeline.

The pipeline then has no Lambda step. Instead a rule on the default bus matches the group's "SageMaker Model
Package State Change" events whose ModelApprovalStatus is Approved or Rejected and invokes the deployer Lambda
with `{"deploy": <the arguments the Lambda step would get>, "event": <the event>}` (an input transformer: the
reserved `<aws.events.event.json>` is the whole event), so one function serves both ways
(step_code/lambda_deployer.py, `on_approval_event`). The Lambda's resource policy lets events.amazonaws.com
invoke it from that rule only. The rule is named after the pipeline: switching back to `when: registered` (or
removing `deploy`) removes it, its target and the permission.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fraudflow.sagemaker import partition
from fraudflow.sagemaker.resources import RECONCILERS, Action

if TYPE_CHECKING:
    from fraudflow.plan import Plan
    from fraudflow.sagemaker.apply import Clients
    from fraudflow.sagemaker.compile import Rendered

STATE_CHANGE = "SageMaker Model Package State Change"
TARGET_ID = "fraudflow-deployer"
EVENTS = "events.amazonaws.com"


def rule_name(pipeline: str) -> str:
    return f"{pipeline}-deploy-on-approval"[:64]  # EventBridge: 1-64 of [.-_A-Za-z0-9]; pipeline names fit


def event_pattern(group: str) -> dict[str, Any]:
    return {
        "source": ["aws.sagemaker"],
        "detail-type": [STATE_CHANGE],
        "detail": {"ModelPackageGroupName": [group], "ModelApprovalStatus": ["Approved", "Rejected"]},
    }


def input_template(arguments: dict[str, Any]) -> str:
    return '{"deploy": ' + json.dumps(arguments, sort_keys=True) + ', "event": <aws.events.event.json>}'


@dataclass
class ApprovalRule:
    rule: str
    region: str
    account: str
    file: str | None
    group: str | None = None  # None: nothing declared (remove what an earlier apply made)
    function_name: str | None = None
    function_arn: str | None = None
    arguments: dict[str, Any] | None = None
    kind: str = "EventBridge rule"

    @property
    def rule_arn(self) -> str:
        return partition.arn("events", self.region, self.account, f"rule/{self.rule}")

    @property
    def statement_id(self) -> str:
        return f"fraudflow-{self.rule}"[:100]

    def actions(self, c: Clients, r: Rendered) -> list[Action]:
        from fraudflow.sagemaker.apply import aws_errors

        events = c.client("events")
        with aws_errors(f"EventBridge rule {self.rule}", self.file):
            existing = _describe_rule(events, self.rule)
            targets = _targets(events, self.rule) if existing else []
        if self.group is None:
            if existing is None:
                return []
            return [
                Action("-", f"{self.kind} {self.rule}: remove (deploy.when is not approved)", self._remove)
            ]
        out: list[Action] = []
        assert self.arguments is not None and self.function_arn and self.function_name
        want = event_pattern(self.group)
        if existing is None:
            line = (
                f"{self.kind} {self.rule}: create ({STATE_CHANGE} of group {self.group}, Approved or Rejected "
                f"-> Lambda {self.function_name})"
            )
            out.append(Action("+", line, self._put))
        elif json.loads(existing.get("EventPattern") or "{}") != want or existing.get("State") != "ENABLED":
            out.append(
                Action("~", f"{self.kind} {self.rule}: update pattern (group {self.group})", self._put)
            )
        elif not any(_same_target(t, self.function_arn, input_template(self.arguments)) for t in targets):
            out.append(
                Action(
                    "~", f"{self.kind} {self.rule}: update target (Lambda {self.function_name})", self._put
                )
            )
        with aws_errors(f"Lambda {self.function_name} policy", self.file):
            allowed = _allows(c.lambda_, self.function_name, self.statement_id, self.rule_arn)
        if not allowed:
            line = f"Lambda permission {self.statement_id}: {EVENTS} may invoke {self.function_name} from {self.rule}"
            out.append(Action("+", line, self._permit, order=110))
        return out

    def _put(self, c: Clients) -> None:
        from fraudflow.sagemaker.apply import aws_errors

        assert self.group and self.arguments is not None and self.function_arn
        events = c.client("events")
        with aws_errors(f"EventBridge rule {self.rule}", self.file):
            events.put_rule(
                Name=self.rule,
                EventPattern=json.dumps(event_pattern(self.group), sort_keys=True),
                State="ENABLED",
                Description=f"fraudflow: deploy approved versions of {self.group} (deploy.when: approved)",
            )
            transformer = {"InputPathsMap": {}, "InputTemplate": input_template(self.arguments)}
            events.put_targets(
                Rule=self.rule,
                Targets=[{"Id": TARGET_ID, "Arn": self.function_arn, "InputTransformer": transformer}],
            )

    def _permit(self, c: Clients) -> None:
        from fraudflow.sagemaker.apply import aws_errors

        assert self.function_name
        with aws_errors(f"Lambda {self.function_name} permission", self.file):
            _remove_permission(
                c.lambda_, self.function_name, self.statement_id
            )  # a stale one (other rule ARN)
            c.lambda_.add_permission(
                FunctionName=self.function_name,
                StatementId=self.statement_id,
                Action="lambda:InvokeFunction",
                Principal=EVENTS,
                SourceArn=self.rule_arn,
            )

    def _remove(self, c: Clients) -> None:
        from fraudflow.sagemaker.apply import aws_errors

        events = c.client("events")
        with aws_errors(f"EventBridge rule {self.rule}", self.file):
            targets = _targets(events, self.rule)
            if targets:
                events.remove_targets(Rule=self.rule, Ids=[t["Id"] for t in targets])
            events.delete_rule(Name=self.rule)
            for t in targets:  # the permission lives on the function the rule targeted
                if t.get("Arn", "").split(":")[2:3] == ["lambda"]:
                    _remove_permission(c.lambda_, t["Arn"].split(":")[6], self.statement_id)


def _describe_rule(events: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(events.describe_rule(Name=name))
    except events.exceptions.ResourceNotFoundException:
        return None


def _targets(events: Any, name: str) -> list[dict[str, Any]]:
    return list(events.list_targets_by_rule(Rule=name).get("Targets", []))


def _same_target(target: dict[str, Any], arn: str, template: str) -> bool:
    transformer = target.get("InputTransformer") or {}
    return (
        target.get("Id") == TARGET_ID
        and target.get("Arn") == arn
        and transformer.get("InputTemplate") == template
    )


def _allows(lam: Any, function: str, sid: str, source_arn: str) -> bool:
    """Whether the function's resource policy has our statement for this rule (no function yet: no)."""
    try:
        policy = json.loads(lam.get_policy(FunctionName=function)["Policy"])
    except lam.exceptions.ResourceNotFoundException:
        return False
    for st in policy.get("Statement", []):
        if st.get("Sid") == sid:
            principal = st.get("Principal")
            service = principal.get("Service") if isinstance(principal, dict) else principal
            condition = json.dumps(st.get("Condition") or {})
            return service == EVENTS and source_arn in condition
    return False


def _remove_permission(lam: Any, function: str, sid: str) -> None:
    with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
        lam.remove_permission(FunctionName=function, StatementId=sid)


def approval_rule(plan: Plan, context: dict[str, Any]) -> ApprovalRule | None:
    """Declared when the plan deploys on approval; with `when: registered`, present only to remove an earlier
    rule. Without `deploy` there is none (like the deployer Lambda, a rule left by an earlier apply stays)."""
    pipeline, region = context.get("pipeline_name"), context.get("region")
    role = str(context.get("role_arn") or "")
    if not plan.of_kind("deploy") or not pipeline or not region or role.count(":") < 5:
        return None
    base = ApprovalRule(rule_name(pipeline), region, role.split(":")[4], str(plan.spec.file))
    fn, arguments = context.get("deployer"), context.get("deploy_on_approval")
    register = plan.of_kind("register")
    if fn is None or arguments is None or not register:
        return base
    return ApprovalRule(
        base.rule,
        region,
        str(fn.arn).split(":")[4],
        base.file,
        group=str(register[0].config["model_package_group"]),
        function_name=fn.name,
        function_arn=fn.arn,
        arguments=arguments,
    )


RECONCILERS.append(approval_rule)


def rule_of(r: Rendered) -> ApprovalRule | None:
    """The approval rule a rendered pipeline converges (declared or to remove), if any."""
    return next((x for x in r.resources if isinstance(x, ApprovalRule)), None)


Grant = tuple[str, tuple[str, ...], tuple[str, ...]]  # (sid, actions, resources)


def iam_grants(r: Rendered) -> dict[str, list[Grant]]:
    """What the rule adds to `fraudflow iam`'s roles, by role: (sid, actions, resources). The operator reads
    (and, when it is no longer declared, removes) the rule and the Lambda's permission; with the rule declared,
    it also writes them, and the deployer lists the group's Approved versions to roll back to."""
    rule = rule_of(r)
    if rule is None or r.lambda_function is None:
        return {}
    fn = r.lambda_function.arn
    operator: list[Grant] = [
        (
            "DeployOnApprovalRule",
            (
                "events:DeleteRule",
                "events:DescribeRule",
                "events:ListTargetsByRule",
                "events:PutRule",
                "events:PutTargets",
                "events:RemoveTargets",
            ),
            (rule.rule_arn,),
        ),
        (
            "LetTheRuleInvokeTheDeployer",
            ("lambda:AddPermission", "lambda:GetPolicy", "lambda:RemovePermission"),
            (fn,),
        ),
    ]
    if rule.group is None:
        return {"operator": operator}
    versions = partition.arn("sagemaker", rule.region, rule.account, f"model-package/{rule.group}/*")
    deployer: list[Grant] = [("FindNewestApprovedVersion", ("sagemaker:ListModelPackages",), (versions,))]
    return {"operator": operator, "deployer": deployer}


def deployed_endpoint(r: Rendered) -> str | None:
    """The endpoint the deployer serves on approval (the pipeline has no Lambda step naming it)."""
    rule = rule_of(r)
    return None if rule is None or rule.arguments is None else str(rule.arguments["endpoint_name"])
