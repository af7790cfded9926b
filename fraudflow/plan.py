"""Spec → Plan: every step the pipeline runs, with its script, config, inputs and outputs.

Both backends read this one plan — the local runner executes it, the SageMaker compiler renders it — so a rule
of the pipeline (which steps exist, what each one reads, what the gate compares) lives here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from fraudflow import gate as gates
from fraudflow.gate import Condition, metric_json_path
from fraudflow.spec.config_types import DeployConfig, PipelineConfig, TrainConfig
from fraudflow.spec.model import Spec

Settings = Literal["processing", "training", "clarify"]  # the sagemaker.<section>s that size a job


def _step_code_dir() -> Path:
    """step_code/ beside the package (a source checkout), or installed under share/fraudflow (a wheel)."""
    here = Path(__file__).resolve().parents[1] / "step_code"
    if here.is_dir():
        return here
    import sys

    return Path(sys.prefix) / "share" / "fraudflow" / "step_code"


STEP_CODE = _step_code_dir()

# The step scripts' shared helpers (`import stepkit`): shipped beside every script, to both backends.
STEP_KIT = "stepkit.py"
# Shipped with train.py (its sourcedir on SageMaker) and copied by it into the model folder's code/: the endpoint's
# inference script, the preprocessing it encodes raw records with, and the helpers both import. The schema channel
# brings the feature schema.
SERVING_CODE = ("inference.py", "preprocess.py", STEP_KIT)

PROC = "/opt/ml/processing"  # where SageMaker Processing mounts a job's inputs and outputs
CONFIG_PATH = f"{PROC}/input/config"  # every processing script's --config folder (config.json)
THRESHOLD_PATH = "evaluate.decision_threshold"  # the served model's decision threshold, as evaluate used it


@dataclass(frozen=True)
class Input:
    name: str  # what the step calls it: a channel, or the folder the container mounts it at
    step: str | None  # producing step, or None for a data source
    output: str  # the producing step's output name ("*": all of them), or the data source name
    path: str | None = None  # processing: the container path the script's argument defaults to

    @property
    def is_source(self) -> bool:
        return self.step is None


@dataclass(frozen=True)
class Output:
    name: str
    path: str | None = None  # processing: the container folder uploaded as this output
    files: dict[str, str] = field(default_factory=dict)  # what readers call a file → its name in the folder


@dataclass(frozen=True)
class Arg:
    """One argument of the script's local call: `--flag` and what it points at, `config`, `input:NAME`,
    `inputs` (the folder holding every input), `output:NAME` or `outputs` (the folder of every output).
    In the container the script's defaults are the same places (the Plan's container paths)."""

    flag: str
    to: str


@dataclass(frozen=True)
class FileRef:
    step: str
    output: str
    name: str


@dataclass(frozen=True)
class Step:
    name: str  # local folder name and stable id: preprocess, train, evaluate, bias, explain, register, deploy
    title: str  # SageMaker step name
    kind: str  # processing | training | tuning | bias | explain | register | deploy: one handler per kind in a backend
    script: str | None = None  # file in step_code/
    config: dict[str, Any] = field(
        default_factory=dict
    )  # exactly what the script reads (or the step's settings)
    hyperparameters: dict[str, Any] = field(default_factory=dict)  # training: script-mode arguments
    inputs: tuple[Input, ...] = ()
    outputs: tuple[Output, ...] = ()
    args: tuple[Arg, ...] = ()  # the local call's arguments (hyperparameters follow them as `--name value`)
    parameter_args: tuple[
        tuple[str, str], ...
    ] = ()  # (--flag, spec path): a pipeline parameter as an argument
    settings: Settings | None = None  # the sagemaker.<section> of its instances
    image: str | None = None  # sklearn | xgboost | clarify
    gated: bool = False  # runs only when the gate passes
    extra_code: tuple[str, ...] = ()  # files of step_code/ shipped beside the script

    @property
    def code_paths(self) -> tuple[Path, ...]:
        """The script and the files shipped with it (what SageMaker's sourcedir holds)."""
        return tuple(STEP_CODE / f for f in ((self.script,) if self.script else ()) + self.extra_code)

    def script_path(self) -> Path | None:
        return STEP_CODE / self.script if self.script else None

    def input(self, name: str) -> Input:
        return next(i for i in self.inputs if i.name == name)

    def output(self, name: str) -> Output:
        return next(o for o in self.outputs if o.name == name)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)


@dataclass(frozen=True)
class Gate:
    title: str
    metric: str  # the first condition's metric (and `threshold` its minimum): the one-condition form's view
    threshold: float | None
    file: FileRef  # evaluation.json
    conditions: tuple[Condition, ...] = ()  # all must hold (fraudflow/gate.py)
    bias_file: FileRef | None = None  # the bias step's analysis.json, when a condition reads it

    @property
    def json_path(self) -> str:
        return metric_json_path(self.metric)

    def file_of(self, condition: Condition) -> FileRef:
        ref = self.bias_file if condition.source == gates.BIAS else self.file
        assert ref is not None, f"{condition.where} reads the bias report, which no step writes"
        return ref

    @property
    def champion(self) -> Condition | None:
        return next((c for c in self.conditions if c.champion), None)


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

    def file(self, step: str, label: str) -> FileRef:
        """Where a step's named file is: `plan.file("evaluate", "evaluation")` → evaluate/evaluation/evaluation.json.
        Readers (gate, registration, report, notes, the SageMaker definition) never spell a file name."""
        return find_file(self.steps, step, label)

    @property
    def decision_threshold(self) -> float:
        return float(self.spec.config["evaluate"]["decision_threshold"])

    def of_kind(self, kind: str) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.kind == kind)

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        return tuple(
            _parameter(n, p, self.spec.config) for n, p in (self.spec.config.get("parameters") or {}).items()
        )

    def parameter_for(self, path: str) -> Parameter | None:
        return next((p for p in self.parameters if p.path == path), None)


def find_file(steps: Iterable[Step], step: str, label: str) -> FileRef:
    for s in steps:
        for out in s.outputs if s.name == step else ():
            if label in out.files:
                return FileRef(step, out.name, out.files[label])
    raise KeyError(f"{step} has no file {label!r}")


def _processing_outputs(*names: str, **files: dict[str, str]) -> tuple[Output, ...]:
    return tuple(Output(n, f"{PROC}/output/{n}", files.get(n, {})) for n in names)


def build_plan(spec: Spec) -> Plan:
    cfg = spec.config
    label = cfg["data"]["label"]
    model_step = "tune" if cfg.get("tune") else "train"  # the step whose model the later steps read
    steps = [
        Step(
            "preprocess",
            "Preprocess",
            "processing",
            script="preprocess.py",
            extra_code=(STEP_KIT, "contract.py"),  # contract.py: data.expect's checks
            config=spec.section("data", "features", "split"),
            inputs=tuple(Input(src, None, src, f"{PROC}/input/{src}") for src in cfg["data"]["sources"]),
            outputs=_processing_outputs(
                "train",
                "validation",
                "test",
                "schema",
                "baseline",
                "report",
                schema={"feature_schema": "feature_schema.json"},
                baseline={"statistics": "statistics.json", "clarify_dataset": "test_with_header.csv"},
                report={"report": "preprocess.json"},
            ),
            args=(Arg("--config", "config"), Arg("--input-dir", "inputs"), Arg("--output-dir", "outputs")),
            settings="processing",
            image="sklearn",
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
            # model: SM_MODEL_DIR (model.tar.gz); data: SM_OUTPUT_DATA_DIR (output.tar.gz), kept out of the model
            outputs=(Output("model"), Output("data", files={"training": "training.json"})),
            args=(
                Arg("--train", "input:train"),
                Arg("--validation", "input:validation"),
                Arg("--model-dir", "output:model"),
                Arg("--output-data-dir", "output:data"),
                Arg("--schema", "input:schema"),  # the channel SageMaker mounts at SM_CHANNEL_SCHEMA
            ),
            settings="training",
            image="xgboost",
            extra_code=SERVING_CODE,
        ),
        Step(
            "evaluate",
            "Evaluate",
            "processing",
            script="evaluate.py",
            extra_code=(STEP_KIT,),
            # the gate reads evaluation.json; a champion gate has evaluate score the champion on the same rows
            config={"data": {"label": label}, "evaluate": cfg["evaluate"], **_champion(cfg)},
            inputs=(
                Input("model", model_step, "model", f"{PROC}/model"),
                Input("test", "preprocess", "test", f"{PROC}/test"),
            ),
            outputs=(
                Output(
                    "evaluation",
                    f"{PROC}/evaluation",
                    {"evaluation": "evaluation.json", "predictions": "predictions.csv"},
                ),
            ),
            args=(
                Arg("--config", "config"),
                Arg("--model-dir", "input:model"),
                Arg("--test-dir", "input:test"),
                Arg("--output-dir", "output:evaluation"),
            ),
            # the config file is fixed at render time; an argument can carry a pipeline parameter
            parameter_args=(("--decision-threshold", THRESHOLD_PATH),),
            settings="processing",
            image="xgboost",
        ),
    ]
    analysis = {"analysis": "analysis.json"}
    conditions = gates.conditions(dict(cfg))
    bias_gated = any(c.source == gates.BIAS for c in conditions)
    if cfg.get("bias"):
        steps.append(
            Step(
                "bias",
                "BiasCheck",
                "bias",
                script="bias.py",
                extra_code=(STEP_KIT,),
                config={
                    "data": {"label": label},
                    "bias": {"label_values": cfg["data"]["positive"], **cfg["bias"]},
                },
                inputs=(
                    Input("data", "preprocess", "*"),
                    Input("predictions", "evaluate", "evaluation"),
                    Input("model", model_step, "model"),
                ),
                outputs=(Output("analysis", files=analysis),),
                args=(
                    Arg("--config", "config"),
                    Arg("--data-dir", "input:data"),
                    Arg("--predictions-dir", "input:predictions"),
                    Arg("--output-dir", "output:analysis"),
                ),
                settings="clarify",
                image="clarify",
                gated=not bias_gated,  # a condition on a bias metric: bias runs before the gate decides
            )
        )
    if cfg.get("explain"):
        steps.append(
            Step(
                "explain",
                "ExplainabilityCheck",
                "explain",
                script="explain.py",
                extra_code=(STEP_KIT,),
                config={"data": {"label": label}, "explain": cfg["explain"]},
                inputs=(Input("model", model_step, "model"), Input("data", "preprocess", "*")),
                outputs=(Output("analysis", files=analysis),),
                args=(
                    Arg("--config", "config"),
                    Arg("--model-dir", "input:model"),
                    Arg("--data-dir", "input:data"),
                    Arg("--output-dir", "output:analysis"),
                ),
                settings="clarify",
                image="clarify",
                gated=True,
            )
        )
    report_inputs = [
        Input("model", model_step, "model"),
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
            outputs=(Output("model_package"),),
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
    if cfg.get("tune"):  # the trials run train.py; the tune step's model folder is the best trial's
        steps[1] = tune_step(steps[1], dict(cfg["tune"]))
    evaluation = find_file(steps, "evaluate", "evaluation")
    first = conditions[0]
    bias_file = find_file(steps, "bias", "analysis") if bias_gated else None
    gate = Gate("CheckMetric", first.metric, first.min, evaluation, conditions, bias_file)
    return Plan(spec, tuple(steps), gate)


def _champion(cfg: PipelineConfig) -> dict[str, Any]:
    champion = gates.champion_config(dict(cfg))
    return {"champion": champion} if champion else {}


def tune_step(train: Step, tune: dict[str, Any]) -> Step:
    """The train step as a search: the same script, channels, hyperparameters (the space overrides some) and
    outputs, plus the study (trials, best parameters) beside the best trial's training report."""
    study = Output("study", files={"study": "study.json"})
    return replace(
        train, name="tune", title="Tune", kind="tuning", config=tune, outputs=(*train.outputs, study)
    )


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
    if path in ("gate.threshold", THRESHOLD_PATH):
        kind, node = "Float", float(node)
    return Parameter(name, path, kind, node)


# monitor.py reads preprocess's NA words, category keys and transform
MONITOR_CODE = (STEP_KIT, "preprocess.py")
MONITOR_ELSEWHERE = (
    "capture",
    "schedule",
    "schedule_role_arn",
    "retrain",
)  # read by fraudflow, not the script


def monitor_config(cfg: PipelineConfig) -> dict[str, Any]:
    """The `monitor` section with the schema's defaults (an absent section: all defaults)."""
    from fraudflow.spec.schema import fill_defaults

    return dict(fill_defaults({"monitor": dict(cfg.get("monitor") or {})})["monitor"])


def monitor_step(spec: Spec) -> Step:
    """The monitoring step (`fraudflow monitor`, the SageMaker monitoring pipeline): the training run's baseline,
    schema and evaluation against a window of captured or scored claims. Not a step of the training pipeline."""
    cfg = spec.config
    return Step(
        "monitor",
        "Monitor",
        "processing",
        script="monitor.py",
        extra_code=MONITOR_CODE,
        config={
            "data": {"label": cfg["data"]["label"]},
            "decision_threshold": float(cfg["evaluate"]["decision_threshold"]),
            "bias": dict(cfg["bias"]) if cfg.get("bias") else None,
            # what the script reads: not where traffic is captured, when it runs or what follows a violation
            "monitor": {k: v for k, v in monitor_config(cfg).items() if k not in MONITOR_ELSEWHERE},
        },
        inputs=(
            Input("baseline", "preprocess", "baseline", f"{PROC}/baseline"),
            Input("schema", "preprocess", "schema", f"{PROC}/schema"),
            Input("evaluation", "evaluate", "evaluation", f"{PROC}/evaluation"),
            Input("current", None, "capture", f"{PROC}/current"),
        ),
        outputs=(
            Output(
                "monitor",
                f"{PROC}/output/monitor",
                {
                    "report": "report.json",
                    "violations": "constraint_violations.json",
                    "result": "result.json",
                },
            ),
        ),
        args=(
            Arg("--config", "config"),
            Arg("--baseline-dir", "input:baseline"),
            Arg("--schema-dir", "input:schema"),
            Arg("--evaluation-dir", "input:evaluation"),
            Arg("--current", "input:current"),
            Arg("--output-dir", "output:monitor"),
        ),
        settings="processing",
        image="sklearn",
    )
