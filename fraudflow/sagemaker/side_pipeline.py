"""A second SageMaker pipeline beside the training one (`<name>-monitor`, `<name>-score`), converged by a
reconciler: created or updated with its uploads when its definition differs from the deployed one, deleted when
its YAML section is gone."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fraudflow.sagemaker.resources import Action

if TYPE_CHECKING:
    from fraudflow.plan import Plan
    from fraudflow.sagemaker.apply import Clients
    from fraudflow.sagemaker.compile import Rendered, Upload


def definition_text(definition: dict[str, Any]) -> str:
    return json.dumps(definition, indent=2, sort_keys=True, ensure_ascii=False)


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


def delete_token(name: str) -> str:
    return f"fraudflow-delete-{name}"[:128].ljust(32, "0")


def s3_exists(c: Clients, bucket: str, key: str) -> bool:
    import botocore.exceptions as bx

    try:
        c.s3.head_object(Bucket=bucket, Key=key)
        return True
    except bx.ClientError:
        return False
