"""Spec → Plan: every step the pipeline runs, with its script, config, inputs and outputs.

Both backends read this one plan — the local runner executes it, the SageMaker compiler renders it — so a rule
of the pipeline (which steps exist, what each one reads, what the gate compares) lives here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fraudflow.spec.config_types import DeployConfig, PipelineConfig, TrainConfig
from fraudflow.spec.model import Spec


def _step_code_dir() -> Path:
    """step_code/ beside the package (a source checkout), or installed under share/fraudflow (a wheel)."""
    here = Path(__file__).resolve().parents[1] / "step_code"
    if here.is_dir():
        return here
    import sys

    return Path(sys.prefix) / "share" / "fraudflow" / "step_code"


STEP_CODE = _step_code_dir()

# Shipped with train.py (its sourcedir on SageMaker) and copied by it into the model folder's code/: the endpoint's
# inference script and the preprocessing it encodes raw records with. The schema channel brings the feature schema.
SERVING_CODE = ("inference.py", "preprocess.py")

# Where each gate metric sits in evaluation.json (evaluate.py writes it; the gate and SageMaker's JsonGet read it).
EVALUATION_FILE = "evaluation.json"


def metric_json_path(metric: str) -> str:
    return f"classification_metrics.{metric}.value"


@dataclass(frozen=True)
class Input:
    name: str  # what the step calls it: a channel or a subfolder of its input dir
    step: str | None  # producing step, or None for a data source
    output: str  # the producing step's output name, or the data source name

    @property
    def is_source(self) -> bool:
        return self.step is None


@dataclass(frozen=True)
class Step:
    name: str  # local folder name and stable id: preprocess, train, evaluate, bias, explain, register, deploy
    title: str  # SageMaker step name
    kind: str  # processing | training | bias | explain | register | deploy
    script: str | None = None  # file in step_code/
    config: dict[str, Any] = field(
        default_factory=dict
    )  # the JSON config the script reads (or the step's settings)
    hyperparameters: dict[str, Any] = field(default_factory=dict)  # training: script-mode arguments
    inputs: tuple[Input, ...] = ()
    outputs: tuple[str, ...] = ()
    gated: bool = False  # runs only when the gate passes
    extra_code: tuple[str, ...] = ()  # files of step_code/ shipped beside the script

    @property
    def code_paths(self) -> tuple[Path, ...]:
        """The script and the files shipped with it (what SageMaker's sourcedir holds)."""
        return tuple(STEP_CODE / f for f in ((self.script,) if self.script else ()) + self.extra_code)

    @property
    def depends_on(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(i.step for i in self.inputs if i.step))

    def script_path(self) -> Path | None:
        return STEP_CODE / self.script if self.script else None


@dataclass(frozen=True)
class Gate:
    title: str
    metric: str
    threshold: float
    step: str  # the step whose output holds evaluation.json
    output: str

    @property
    def json_path(self) -> str:
        return metric_json_path(self.metric)


@dataclass(frozen=True)
class Parameter:
    name: str
    path: str  # dotted path in the pipeline spec
    type: str  # String | Integer | Float | Boolean (SageMaker's parameter types)
    default: Any


@dataclass(frozen=True)
class Plan:
    spec: Spec
    steps: tuple[Step, ...]
    gate: Gate

    @property
    def name(self) -> str:
        return self.spec.name

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def has(self, name: str) -> bool:
        return any(s.name == name for s in self.steps)

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        return tuple(
            _parameter(n, p, self.spec.config) for n, p in (self.spec.config.get("parameters") or {}).items()
        )

    def parameter_for(self, path: str) -> Parameter | None:
        return next((p for p in self.parameters if p.path == path), None)


def build_plan(spec: Spec) -> Plan:
    cfg = spec.config
    label = cfg["data"]["label"]
    steps = [
        Step(
            "preprocess",
            "Preprocess",
            "processing",
            script="preprocess.py",
            config=spec.section("data", "features", "split"),
            inputs=tuple(Input(src, None, src) for src in cfg["data"]["sources"]),
            outputs=("train", "validation", "test", "schema", "baseline", "report"),
        ),
        Step(
            "train",
            "Train",
            "training",
            script="train.py",
            hyperparameters=training_hyperparameters(cfg["train"]),
            inputs=(
                Input("train", "preprocess", "train"),
                Input("validation", "preprocess", "validation"),
                Input("schema", "preprocess", "schema"),  # feature_schema.json, packed with the model
            ),
            outputs=("model",),
            extra_code=SERVING_CODE,
        ),
        Step(
            "evaluate",
            "Evaluate",
            "processing",
            script="evaluate.py",
            config={"data": {"label": label}, "evaluate": cfg["evaluate"], "gate": cfg["gate"]},
            inputs=(Input("model", "train", "model"), Input("test", "preprocess", "test")),
            outputs=("evaluation",),
        ),
    ]
    if cfg.get("bias"):
        steps.append(
            Step(
                "bias",
                "BiasCheck",
                "bias",
                script="bias.py",
                config={"data": {"label": label}, "bias": cfg["bias"]},
                inputs=(
                    Input("data", "preprocess", "*"),
                    Input("predictions", "evaluate", "evaluation"),
                    Input("model", "train", "model"),
                ),
                outputs=("analysis",),
                gated=True,
            )
        )
    if cfg.get("explain"):
        steps.append(
            Step(
                "explain",
                "ExplainabilityCheck",
                "explain",
                script="explain.py",
                config={"data": {"label": label}, "explain": cfg["explain"]},
                inputs=(Input("model", "train", "model"), Input("data", "preprocess", "*")),
                outputs=("analysis",),
                gated=True,
            )
        )
    report_inputs = [
        Input("model", "train", "model"),
        Input("data", "preprocess", "*"),
        Input("evaluation", "evaluate", "evaluation"),
    ]
    report_inputs += [Input(s.name, s.name, "analysis") for s in steps if s.kind in ("bias", "explain")]
    steps.append(
        Step(
            "register",
            "RegisterModel",
            "register",
            config=dict(cfg["register"]),
            inputs=tuple(report_inputs),
            outputs=("model_package",),
            gated=True,
        )
    )
    if cfg.get("deploy"):
        steps.append(
            Step(
                "deploy",
                "Deploy",
                "deploy",
                config=deploy_config(cfg["deploy"]),
                inputs=(Input("model_package", "register", "model_package"),),
                gated=True,
            )
        )
    gate = Gate(
        "CheckMetric", cfg["gate"]["metric"], float(cfg["gate"]["threshold"]), "evaluate", "evaluation"
    )
    return Plan(spec, tuple(steps), gate)


def training_hyperparameters(train: TrainConfig) -> dict[str, Any]:
    """train.py's script-mode arguments: XGBoost's parameters plus early stopping and CV made explicit."""
    hp = dict(train["hyperparameters"])
    if train.get("early_stopping"):
        hp["early_stopping_rounds"] = train["early_stopping"]["rounds"]
    if train.get("cv"):  # train.py early-stops inside CV, then fits the chosen rounds on the train split
        hp["cv_folds"] = train["cv"]["folds"]
        hp.setdefault("early_stopping_rounds", train["cv"]["early_stopping_rounds"])
    return hp


def deploy_config(deploy: DeployConfig) -> dict[str, Any]:
    variants = deploy.get("variants") or [{"name": "AllTraffic", "weight": 1.0, "model_version": "latest"}]
    return {**deploy, "variants": [{"model_version": "latest", **v} for v in variants]}


_PARAM_TYPES = {bool: "Boolean", int: "Integer", float: "Float", str: "String"}


def _parameter(name: str, path: str, cfg: PipelineConfig) -> Parameter:
    node: Any = cfg
    for part in path.split("."):
        node = node[part]
    kind = _PARAM_TYPES.get(type(node), "String")
    if path == "gate.threshold" or path == "evaluate.decision_threshold":
        kind, node = "Float", float(node)
    return Parameter(name, path, kind, node)
