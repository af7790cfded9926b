"""The scoring pipeline on SageMaker (`deploy.batch`): `fraudflow predict`'s counterpart.

A second SageMaker pipeline, `<pipeline>-score`, of four steps (docs/sagemaker.md, "Decision: batch scoring"):

1. ResolveModel — a Lambda step calling the deployer Lambda (`action: served_model`): the model package the
   endpoint's main variant serves, its model data and the decision threshold it was registered with.
2. JoinClaims — a processing step running step_code/preprocess.py `--records` (the training join, without the
   label) on the sources, writing JSON Lines `{"records": [claim]}`.
3. CreateModel — that package's model data in the XGBoost image with the packed inference code, exactly as the
   training pipeline creates its model (fraudflow/sagemaker/compile.py).
4. Score — a TransformStep: SplitType Line, BatchStrategy SingleRecord (a JSON body is one document),
   AssembleWith Line, and JoinSource Input so each output line keeps its claim (the key columns).

apply converges it through the reconciler seam (fraudflow/sagemaker/resources.py), as the monitoring pipeline, and
with `deploy.batch.schedule` the EventBridge Scheduler schedule `<pipeline>-score` that starts it (side_pipeline.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fraudflow.plan import PROC, STEP_KIT, Arg, Input, Output, Plan, Step
from fraudflow.sagemaker.compile import MODEL_STEP, _Compiler
from fraudflow.sagemaker.side_pipeline import PipelineReconciler, compiled, definition_text, plan_of

if TYPE_CHECKING:
    from fraudflow.sagemaker.apply import Clients
    from fraudflow.sagemaker.compile import Rendered, Upload
    from fraudflow.sagemaker.resources import Action

RESOLVE, JOIN, SCORE = "ResolveModel", "JoinClaims", "Score"
MODEL_OUTPUTS = ("model_package_arn", "variant", "model_data_url", "decision_threshold")
RECORDS = "records"


def scoring_name(plan: Plan) -> str:
    sm: dict[str, Any] = dict(plan.spec.config.get("sagemaker") or {})
    return f"{sm.get('pipeline_name') or plan.name}-score"[:256]


def batch_config(plan: Plan) -> dict[str, Any] | None:
    deploy: dict[str, Any] = dict(plan.spec.config.get("deploy") or {})
    batch = deploy.get("batch")
    return dict(batch) if batch else None


def join_step(plan: Plan) -> Step:
    """preprocess.py's join of the sources, without splitting, encoding or the label (`--records`)."""
    sources = plan.spec.config["data"]["sources"]
    return Step(
        "join",
        JOIN,
        "processing",
        script="preprocess.py",
        extra_code=(STEP_KIT, "contract.py"),
        config=plan.spec.section("data"),
        inputs=tuple(Input(src, None, src, f"{PROC}/input/{src}") for src in sources),
        outputs=(Output(RECORDS, f"{PROC}/output/{RECORDS}", {"records": "records.jsonl"}),),
        args=(Arg("--config", "config"), Arg("--input-dir", "inputs"), Arg("--output-dir", "outputs")),
        settings="processing",
        image="sklearn",
    )


class _ScoreCompiler(_Compiler):
    """The training compiler's building blocks for the scoring pipeline: the sources come from deploy.batch.inputs
    (or data.sources), the model from the ResolveModel step, and nothing is a training pipeline parameter."""

    def __init__(self, plan: Plan, lambda_arn: str):
        super().__init__(plan)
        self.name = scoring_name(plan)
        self.lambda_arn = lambda_arn
        self.params = {}  # the training pipeline's parameters are not this pipeline's
        self.batch: dict[str, Any] = dict(batch_config(plan) or {})

    def inputs(self, step: Step) -> list[dict[str, Any]]:
        out = []
        for i in step.inputs:
            assert i.path is not None and i.is_source
            given = (self.batch.get("inputs") or {}).get(i.output)
            uri = given or self.data_uri(self.cfg["data"]["sources"][i.output], i.output)
            self.data_uris[i.output] = uri
            out.append(self.s3_input(i.name, uri, i.path))
        return out

    @property
    def model_data(self) -> dict[str, Any]:
        return _resolved("model_data_url")

    @property
    def serving_env(self) -> dict[str, Any]:
        # the served package's own threshold, not the YAML's current one (the package may be older)
        return {**super().serving_env, "FRAUDFLOW_DECISION_THRESHOLD": _resolved("decision_threshold")}

    def resolve(self) -> dict[str, Any]:
        return {
            "Name": RESOLVE,
            "Type": "Lambda",
            "Arguments": {"action": "served_model", "endpoint_name": self.cfg["deploy"]["endpoint_name"]},
            "FunctionArn": self.lambda_arn,
            "OutputParameters": [{"OutputName": n, "OutputType": "String"} for n in MODEL_OUTPUTS],
        }

    def join(self) -> dict[str, Any]:
        job = self.processing(join_step(self.plan))
        job.pop("CacheConfig", None)  # the same prefixes hold new claims every run
        job["Arguments"]["AppSpecification"]["ContainerArguments"] = ["--records"]
        return job

    def transform(self) -> dict[str, Any]:
        records = f"Steps.{JOIN}.ProcessingOutputConfig.Outputs['{RECORDS}'].S3Output.S3Uri"
        return {
            "Name": SCORE,
            "Type": "Transform",
            "Arguments": {
                "ModelName": {"Get": f"Steps.{MODEL_STEP}-CreateModel.ModelName"},
                "TransformInput": {
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": {"Get": records}}},
                    "ContentType": "application/json",
                    "SplitType": "Line",
                },
                "TransformOutput": {
                    "S3OutputPath": str(self.batch["output"]),
                    "Accept": "application/json",
                    "AssembleWith": "Line",
                },
                "TransformResources": {
                    "InstanceType": self.batch.get("instance_type", "ml.m5.large"),
                    "InstanceCount": int(self.batch.get("instance_count", 1)),
                },
                "BatchStrategy": "SingleRecord",
                "DataProcessing": {"JoinSource": "Input"},
            },
        }

    def definition(self) -> dict[str, Any]:
        return {
            "Version": "2020-12-01",
            "Metadata": {},
            "Parameters": [],
            "Steps": [self.resolve(), self.join(), self.model(), self.transform()],
        }


def _resolved(name: str) -> dict[str, Any]:
    return {"Get": f"Steps.{RESOLVE}.OutputParameters['{name}']"}


def render(plan: Plan, training: Rendered) -> tuple[dict[str, Any], tuple[Upload, ...]]:
    """The scoring pipeline's definition and the objects it needs in S3 (the join's code, config, local data)."""
    assert training.lambda_function is not None, "deploy.batch is a part of deploy"
    return compiled(_ScoreCompiler(plan, training.lambda_function.arn))


def render_definition(args: Any, training: Rendered) -> str:
    """`fraudflow render --scoring`: the scoring pipeline's definition, as apply sends it."""
    from fraudflow.errors import UsageError

    plan = plan_of(args)
    if not batch_config(plan):
        raise UsageError.single(
            "FF765",
            f"pipeline {plan.name!r} declares no batch scoring (deploy.batch)",
            file=str(plan.spec.file),
            hint="declare deploy.batch.output (an s3:// prefix) to get a scoring pipeline",
        )
    definition, _ = render(plan, training)
    return definition_text(definition)


# ---------------------------------------------------------------------------------------------- apply


class ScoringReconciler(PipelineReconciler):
    kind = "scoring pipeline"
    what = "scoring pipeline"

    def __init__(self, plan: Plan, context: dict[str, Any]):
        super().__init__(plan, context, scoring_name(plan))

    def declared(self) -> bool:
        return batch_config(self.plan) is not None

    @property
    def batch(self) -> dict[str, Any]:
        return batch_config(self.plan) or {}

    def output_prefix(self) -> str:
        """The scoring executions' own outputs (the joined records), as the compiler's output_uri spells them."""
        configured = self.plan.spec.config["sagemaker"].get("prefix")
        prefix = (self.plan.name if configured is None else str(configured)).strip("/")
        return "/".join(x for x in (prefix, self.name) if x)

    def render(self, r: Rendered) -> tuple[dict[str, Any], tuple[Upload, ...]]:
        return render(self.plan, r)

    @property
    def schedule(self) -> str | None:
        """deploy.batch.schedule: EventBridge Scheduler starts the scoring pipeline as the execution role."""
        return self.batch.get("schedule") or None

    def actions(self, c: Clients, r: Rendered) -> list[Action]:
        return self.pipeline_and_schedule_actions(c, r, self.schedule, r.role_arn)


def reconciler(plan: Plan, context: dict[str, Any]) -> ScoringReconciler | None:
    """Always: a section removed from the YAML must remove its pipeline from AWS too (by its name)."""
    return ScoringReconciler(plan, context)
