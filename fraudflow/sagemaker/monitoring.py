"""The monitoring pipeline on SageMaker and its EventBridge Scheduler schedule (`monitor.schedule`).

A second SageMaker pipeline, `<pipeline>-monitor`, of three steps:

1. ResolveBaseline — a Lambda step calling the deployer Lambda (`action: baseline`): which model package the
   endpoint's main variant serves, and where the training execution that registered it wrote its baseline,
   feature schema and evaluation (the package's ModelQuality statistics are that execution's evaluation.json).
2. Monitor — a processing step running step_code/monitor.py (the script `fraudflow monitor` runs) in the
   scikit-learn image on the captured traffic under `monitor.capture` (the CaptureUri parameter).
3. With `monitor.retrain: on_violation`: CheckViolations — a Condition on monitor.py's result.json, whose
   IfSteps hold StartTraining, the deployer Lambda again (`action: start_pipeline`), which starts the training
   pipeline with the monitoring execution's id as the idempotency token.

Why the deployer Lambda rather than a new function: it already runs with its own role, reads model packages and
endpoints, and is converged by apply; a second function would need a second role and package for two
describe/start calls. Why a Lambda step rather than an EventBridge rule on the monitoring pipeline's status: the
decision (violations > 0) is in the monitoring pipeline's own definition, visible in Studio and in `render`.

apply converges the pipeline and the schedule through the reconciler seam (fraudflow/sagemaker/resources.py):
plan shows both, a second apply changes nothing, and removing `monitor.schedule` removes both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fraudflow.plan import Plan, Step, monitor_step
from fraudflow.sagemaker.compile import _Compiler
from fraudflow.sagemaker.resources import Action
from fraudflow.sagemaker.side_pipeline import PipelineReconciler, compiled, definition_text, plan_of

if TYPE_CHECKING:
    from fraudflow.sagemaker.apply import Clients
    from fraudflow.sagemaker.compile import Rendered, Upload

RESOLVE, MONITOR, CHECK, START = "ResolveBaseline", "Monitor", "CheckViolations", "StartTraining"
RESULT_FILE = "MonitorResult"
BASELINE_OUTPUTS = ("model_package_arn", "variant", "baseline_uri", "schema_uri", "evaluation_uri")


def monitoring_name(plan: Plan) -> str:
    sm: dict[str, Any] = dict(plan.spec.config.get("sagemaker") or {})
    return f"{sm.get('pipeline_name') or plan.name}-monitor"[:256]


class _MonitorCompiler(_Compiler):
    """The training compiler's building blocks (processing job, code and config uploads) for the monitor step,
    whose inputs come from the ResolveBaseline step and the capture location instead of earlier steps."""

    def __init__(self, plan: Plan, lambda_arn: str):
        super().__init__(plan)
        self.training_name = self.name
        self.name = monitoring_name(plan)
        self.lambda_arn = lambda_arn

    def inputs(self, step: Step) -> list[dict[str, Any]]:
        out = []
        for i in step.inputs:
            assert i.path is not None
            if i.is_source:  # the captured traffic
                self.data_uris[i.output] = self.capture
                out.append(self.s3_input(i.name, {"Get": "Parameters.CaptureUri"}, i.path))
            else:
                uri = {"Get": f"Steps.{RESOLVE}.OutputParameters['{i.name}_uri']"}
                out.append(self.s3_input(i.name, uri, i.path))
        return out

    @property
    def capture(self) -> str:
        return str(self.cfg["monitor"]["capture"])

    def relative(self, step: str, output: str, name: str = "") -> str:
        """Where the training pipeline writes a step's output, under its execution's prefix."""
        title = self.plan.step(step).title
        return "/".join(x for x in (title, "output", output, name) if x)

    def definition(self) -> dict[str, Any]:
        ev = self.plan.file("evaluate", "evaluation")
        resolve = {
            "Name": RESOLVE,
            "Type": "Lambda",
            "Arguments": {
                "action": "baseline",
                "endpoint_name": self.cfg["deploy"]["endpoint_name"],
                "evaluation_file": self.relative(ev.step, ev.output, ev.name),
                "baseline": self.relative("preprocess", "baseline"),
                "schema": self.relative("preprocess", "schema"),
                "evaluation": self.relative(ev.step, ev.output),
            },
            "FunctionArn": self.lambda_arn,
            "OutputParameters": [{"OutputName": n, "OutputType": "String"} for n in BASELINE_OUTPUTS],
        }
        step = monitor_step(self.plan.spec)
        job = self.processing(step)
        job.pop("CacheConfig", None)  # the capture prefix is the same every run while its content is not
        result = step.output("monitor")
        job["PropertyFiles"] = [
            {"PropertyFileName": RESULT_FILE, "OutputName": result.name, "FilePath": result.files["result"]}
        ]
        steps = [resolve, job]
        if self.cfg["monitor"].get("retrain") == "on_violation":
            steps.append(self.retrain())
        return {
            "Version": "2020-12-01",
            "Metadata": {},
            "Parameters": [{"Name": "CaptureUri", "Type": "String", "DefaultValue": self.capture}],
            "Steps": steps,
        }

    def retrain(self) -> dict[str, Any]:
        violations = {
            "Std:JsonGet": {
                "PropertyFile": {"Get": f"Steps.{MONITOR}.PropertyFiles.{RESULT_FILE}"},
                "Path": "violations",
            }
        }
        start = {
            "Name": START,
            "Type": "Lambda",
            "Arguments": {
                "action": "start_pipeline",
                "pipeline_name": self.training_name,
                "reason": "monitor-violation",
                "token": {"Get": "Execution.PipelineExecutionId"},
            },
            "FunctionArn": self.lambda_arn,
            "OutputParameters": [{"OutputName": "pipeline_execution_arn", "OutputType": "String"}],
        }
        return {
            "Name": CHECK,
            "Type": "Condition",
            "Arguments": {
                "Conditions": [{"Type": "GreaterThan", "LeftValue": violations, "RightValue": 0}],
                "IfSteps": [start],
                "ElseSteps": [],
            },
        }


def render(plan: Plan, training: Rendered) -> tuple[dict[str, Any], tuple[Upload, ...]]:
    """The monitoring pipeline's definition and the objects it needs in S3 (the monitor step's code, config)."""
    assert training.lambda_function is not None, "a monitored pipeline deploys (semantic check FF575)"
    return compiled(_MonitorCompiler(plan, training.lambda_function.arn))


def render_definition(args: Any, training: Rendered) -> str:
    """`fraudflow render --monitoring`: the monitoring pipeline's definition, as apply sends it."""
    from fraudflow.errors import UsageError

    plan = plan_of(args)
    if not (plan.spec.config.get("monitor") or {}).get("schedule"):
        raise UsageError.single(
            "FF770",
            f"pipeline {plan.name!r} schedules no monitoring (monitor.schedule)",
            file=str(plan.spec.file),
            hint="declare monitor.schedule and monitor.capture to get a monitoring pipeline",
        )
    definition, _ = render(plan, training)
    return definition_text(definition)


# ---------------------------------------------------------------------------------------------- apply


class MonitoringReconciler(PipelineReconciler):
    kind = "monitoring pipeline and schedule"
    what = "monitoring pipeline"

    def __init__(self, plan: Plan, context: dict[str, Any]):
        super().__init__(plan, context, monitoring_name(plan))
        mon = plan.spec.config.get("monitor") or {}
        self.schedule = mon.get("schedule")  # None: nothing declared, leftovers are removed

    # -- the declared state ----------------------------------------------------------------------------
    @property
    def capture(self) -> str:
        return str((self.plan.spec.config.get("monitor") or {}).get("capture") or "")

    @property
    def retrains(self) -> bool:
        return (self.plan.spec.config.get("monitor") or {}).get("retrain") == "on_violation"

    def target_role(self, r: Rendered) -> str:
        return str((self.plan.spec.config.get("monitor") or {}).get("schedule_role_arn") or r.role_arn)

    def output_prefix(self, r: Rendered) -> str:
        """The monitoring executions' output keys (as the compiler's output_uri spells them)."""
        configured = self.plan.spec.config["sagemaker"].get("prefix")
        prefix = (self.plan.name if configured is None else str(configured)).strip("/")
        return "/".join(x for x in (prefix, self.name) if x)

    # -- the actions -----------------------------------------------------------------------------------
    def declared(self) -> bool:
        return bool(self.schedule)

    def render(self, r: Rendered) -> tuple[dict[str, Any], tuple[Upload, ...]]:
        return render(self.plan, r)

    def actions(self, c: Clients, r: Rendered) -> list[Action]:
        return self.pipeline_and_schedule_actions(c, r, self.schedule, self.target_role(r))


def reconciler(plan: Plan, context: dict[str, Any]) -> MonitoringReconciler | None:
    """Always: a schedule removed from the YAML must be removed from AWS too (by its name)."""
    return MonitoringReconciler(plan, context)
