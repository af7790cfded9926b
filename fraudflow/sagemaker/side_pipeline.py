"""A second SageMaker pipeline beside the training one (`<name>-monitor`, `<name>-score`), converged by a
reconciler: created or updated with its uploads when its definition differs from the deployed one, deleted when
its YAML section is gone; and the EventBridge Scheduler schedule of the same name that starts it
(`monitor.schedule`, `deploy.batch.schedule`), created, updated or deleted the same way."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fraudflow.sagemaker import partition
from fraudflow.sagemaker.resources import Action

if TYPE_CHECKING:
    from fraudflow.plan import Plan
    from fraudflow.sagemaker.apply import Clients
    from fraudflow.sagemaker.compile import Rendered, Upload


SCHEDULE_GROUP = "default"


def definition_text(definition: dict[str, Any]) -> str:
    return json.dumps(definition, indent=2, sort_keys=True, ensure_ascii=False)


def compiled(compiler: Any) -> tuple[dict[str, Any], tuple[Upload, ...]]:
    """A side pipeline compiler's definition and the objects it needs in S3, in key order."""
    definition = compiler.definition()
    return definition, tuple(sorted(compiler.uploads.values(), key=lambda u: u.key))


def plan_of(args: Any) -> Plan:
    """The Plan `fraudflow render --monitoring/--scoring` renders a side pipeline of."""
    from fraudflow.plan import build_plan
    from fraudflow.spec.load import load_one

    return build_plan(load_one(args.file, env=args.env, overrides=args.overrides, pipeline=args.pipeline))


class PipelineReconciler:
    what = "pipeline"  # e.g. "monitoring pipeline", in plan's lines

    def __init__(self, plan: Plan, context: dict[str, Any], name: str):
        self.plan = plan
        self.context = context
        self.name = name

    def declared(self) -> bool:
        raise NotImplementedError

    def render(self, r: Rendered) -> tuple[dict[str, Any], tuple[Upload, ...]]:
        raise NotImplementedError

    def uploads(self, r: Rendered) -> tuple[Upload, ...]:
        return self.render(r)[1]

    def pipeline_actions(self, c: Clients, r: Rendered, order: int = 110) -> list[Action]:
        """Create, update or delete the pipeline (and upload what it reads) to match the YAML."""
        from fraudflow.sagemaker.apply import aws_errors, deployed_definition

        deployed = deployed_definition(c, self.name, r.file)
        if not self.declared():
            if deployed is None:
                return []

            def delete(c: Clients) -> None:
                c.sagemaker.delete_pipeline(
                    PipelineName=self.name, ClientRequestToken=delete_token(self.name)
                )

            return [Action("-", f"{self.what} {self.name}: delete", delete, order + 10)]
        definition, uploads = self.render(r)
        text = definition_text(definition)
        missing = [u for u in uploads if not s3_exists(c, r.bucket, u.key)]
        if deployed == text and not missing:
            return []
        verb = "create" if deployed is None else "update"

        def put_pipeline(c: Clients) -> None:
            with aws_errors(f"{self.what} {self.name}", r.file):
                for u in missing:
                    c.s3.put_object(Bucket=r.bucket, Key=u.key, Body=u.read())
                args = {"PipelineName": self.name, "PipelineDefinition": text, "RoleArn": r.role_arn}
                if verb == "create":
                    c.sagemaker.create_pipeline(
                        **args, PipelineDescription=f"fraudflow {self.what} of {r.name}"[:3072]
                    )
                else:
                    c.sagemaker.update_pipeline(**args)

        symbol = "+" if verb == "create" else "~"
        return [Action(symbol, f"{self.what} {self.name}: {verb}", put_pipeline, order)]

    # -- the schedule that starts it ---------------------------------------------------------------------
    def pipeline_and_schedule_actions(
        self, c: Clients, r: Rendered, expression: str | None, role_arn: str
    ) -> list[Action]:
        """The pipeline's actions and its schedule's: a schedule goes before the pipeline it starts, and comes
        after it."""
        schedule = self.schedule_actions(c, r, expression, role_arn)
        pipeline = self.pipeline_actions(c, r)
        return [*pipeline, *schedule] if expression else [*schedule, *pipeline]

    def pipeline_arn(self, region: str) -> str:
        account = self.context["role_arn"].split(":")[4]
        return partition.arn("sagemaker", region, account, f"pipeline/{self.name.lower()}")

    def schedule_target(self, r: Rendered, role_arn: str) -> dict[str, Any]:
        return {
            "Arn": self.pipeline_arn(r.region),
            "RoleArn": role_arn,
            "SageMakerPipelineParameters": {"PipelineParameterList": []},
        }

    def schedule_actions(
        self, c: Clients, r: Rendered, expression: str | None, role_arn: str, order: int = 120
    ) -> list[Action]:
        """Create or update the schedule `<pipeline>` (group default) to start the pipeline on `expression`,
        assuming `role_arn`; delete it when `expression` is None (the YAML no longer declares it)."""
        from fraudflow.sagemaker.apply import aws_errors

        with aws_errors(f"schedule {self.name}", r.file):
            schedule = _get_schedule(c, self.name)
        if not expression:
            if schedule is None:
                return []
            return [
                Action("-", f"schedule {self.name}: delete", lambda c: _delete_schedule(c, self.name), 110)
            ]
        wanted = {
            "ScheduleExpression": expression,
            "Target": self.schedule_target(r, role_arn),
            "State": "ENABLED",
        }
        if schedule is not None and not _schedule_differs(schedule, wanted):
            return []
        verb = "create" if schedule is None else "update"

        def put_schedule(c: Clients) -> None:
            scheduler = c.client("scheduler")
            with aws_errors(f"schedule {self.name}", r.file):
                call = scheduler.create_schedule if verb == "create" else scheduler.update_schedule
                call(
                    Name=self.name,
                    GroupName=SCHEDULE_GROUP,
                    FlexibleTimeWindow={"Mode": "OFF"},
                    Description=f"fraudflow: runs {self.name}",
                    **wanted,
                )

        symbol = "+" if verb == "create" else "~"
        return [Action(symbol, f"schedule {self.name} ({expression}): {verb}", put_schedule, order)]


def _get_schedule(c: Clients, name: str) -> dict[str, Any] | None:
    import botocore.exceptions as bx

    try:
        return dict(c.client("scheduler").get_schedule(Name=name, GroupName=SCHEDULE_GROUP))
    except bx.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise


def _delete_schedule(c: Clients, name: str) -> None:
    c.client("scheduler").delete_schedule(Name=name, GroupName=SCHEDULE_GROUP)


def _schedule_differs(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    target = current.get("Target") or {}
    have = {
        "ScheduleExpression": current.get("ScheduleExpression"),
        "State": current.get("State"),
        "Target": {k: target.get(k) for k in wanted["Target"]},
    }
    return have != wanted


def delete_token(name: str) -> str:
    return f"fraudflow-delete-{name}"[:128].ljust(32, "0")


def s3_exists(c: Clients, bucket: str, key: str) -> bool:
    import botocore.exceptions as bx

    try:
        c.s3.head_object(Bucket=bucket, Key=key)
        return True
    except bx.ClientError:
        return False
