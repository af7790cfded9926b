"""Plan → SageMaker pipeline definition (format 2020-12-01) and the files it needs in S3. Pure, deterministic.

The same Plan the local runner executes, rendered as the SageMaker Python SDK v2 would render it (the
conformance test checks that step by step), with three differences that make it deterministic and offline:
every uploaded file lives under a content-hashed key (code, configs, Clarify configs, the Lambda zip, local
data), image URIs come from the SDK's JSON data (images.py), and nothing is uploaded while rendering.
No boto3 and no sagemaker import here: render must start fast.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fraudflow.sagemaker.approval_rule  # noqa: F401  (adds its reconciler to RECONCILERS)
from fraudflow.errors import UserError
from fraudflow.plan import CONFIG_PATH, PROC, STEP_CODE, THRESHOLD_PATH, Plan, Settings, Step
from fraudflow.sagemaker import clarify, images, partition
from fraudflow.sagemaker.capture import data_capture_config
from fraudflow.sagemaker.distributed import channel_distribution
from fraudflow.sagemaker.resources import Reconciler, reconcilers_for

FORMAT_VERSION = "2020-12-01"
LAMBDA_SCRIPT = "lambda_deployer.py"
# Lambda's maximum: the deployer waits in-process for the endpoint to be InService (docs/sagemaker.md).
LAMBDA_TIMEOUT_S = 900
LAMBDA_RUNTIME = "python3.12"
PROPERTY_FILE = "EvaluationReport"
MODEL_STEP = "CreateModel"
FAIL_STEP = "GateFailed"
DEPLOY_OUTPUTS = ("action", "endpoint_name", "model_name")
DEPLOY_VARIANT_OUTPUTS = ("endpoint_config_name", "variants")  # declared when `variants` is passed
CHANNEL_TYPES = {"schema": "application/json"}  # training channels that are not the CSV data
# Script-mode serving (step_code/inference.py, packed by train.py into model.tar.gz's code/): the variables the
# XGBoost image's serving stack reads (sagemaker-containers' ServingEnv), as the SDK sets them for a repacked
# model, plus "*/*" as the default Accept so the script answers in the request's own type, as `fraudflow serve`.
INFERENCE_PROGRAM = "inference.py"
SERVING_SUBMIT_DIRECTORY = "/opt/ml/model/code"
SERVING_TYPES = ["text/csv", "application/json"]
EXECUTION_ID = {"Get": "Execution.PipelineExecutionId"}


@dataclass(frozen=True)
class Upload:
    """One object the pipeline needs in S3: bytes made here, or a local data file read at upload time."""

    key: str
    sha256: str
    body: bytes | None = field(default=None, repr=False)
    path: Path | None = None
    what: str = ""

    def read(self) -> bytes:
        return self.body if self.body is not None else Path(self.path).read_bytes()  # type: ignore[arg-type]


@dataclass(frozen=True)
class LambdaFunction:
    name: str
    arn: str
    role_arn: str
    timeout: int
    code: Upload  # the deployment zip
    handler: str = "lambda_deployer.handler"
    runtime: str = LAMBDA_RUNTIME


@dataclass(frozen=True)
class Rendered:
    name: str  # SageMaker pipeline name
    region: str
    bucket: str
    role_arn: str
    definition: dict[str, Any]
    uploads: tuple[Upload, ...]
    lambda_function: LambdaFunction | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    file: str | None = None  # the pipelines.yaml, for error locations
    resources: tuple[Reconciler, ...] = ()  # what apply converges beside the pipeline (resources.py)

    @property
    def text(self) -> str:
        """The canonical JSON: what render prints and what apply sends (byte-identical for the same YAML)."""
        return to_json(self.definition)


def to_json(definition: dict[str, Any]) -> str:
    return json.dumps(definition, indent=2, sort_keys=True, ensure_ascii=False)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def json_bytes(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def sourcedir_tar(files: list[tuple[str, bytes]]) -> bytes:
    """script mode's sourcedir.tar.gz, reproducible: fixed mtimes, owners and modes; gzip without a timestamp."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def lambda_zip(name: str, data: bytes) -> bytes:
    """The Lambda deployment package: one file, fixed timestamp and mode, so the same code hashes the same."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, data)
    return out.getvalue()


class _Compiler:
    def __init__(self, plan: Plan):
        self.plan = plan
        self.cfg = plan.spec.config
        if not self.cfg.get("sagemaker"):
            raise UserError.single(
                "FF704",
                f"pipeline {plan.name!r} has no `sagemaker` settings",
                file=str(plan.spec.file),
                path=f"pipelines.{plan.name}.sagemaker",
                hint="declare sagemaker.role_arn and sagemaker.bucket (or put them under defaults.sagemaker)",
            )
        self.sm = self.cfg["sagemaker"]
        self.file = str(plan.spec.file)
        self.bucket = self.sm["bucket"]
        prefix = self.sm.get("prefix")
        self.prefix = (prefix if prefix is not None else plan.name).strip("/")
        self.region = self.sm["region"]
        self.role = self.sm["role_arn"]
        self._check_partition(plan.name)
        self.name = self.sm.get("pipeline_name") or plan.name
        self.uploads: dict[str, Upload] = {}
        self.data_uris: dict[str, str] = {}
        self.metrics: dict[str, Any] = {}  # ModelMetrics entries of the checks, for the registration
        self.drift: dict[str, Any] = {}  # DriftCheckBaselines entries of the checks
        self.function: LambdaFunction | None = None  # the deployer Lambda, when the plan deploys
        self.on_approval: dict[str, Any] | None = None  # deploy.when: approved: the deployer's arguments
        self.params = {p.path: p for p in plan.parameters}
        self.cache = (
            {"CacheConfig": {"Enabled": True, "ExpireAfter": self.sm["cache"]["expire_after"]}}
            if (self.sm.get("cache") or {}).get("enabled")
            else {}
        )

    def _check_partition(self, pipeline: str) -> None:
        """A role is an ARN in one partition; SageMaker in a region of another cannot assume it (FF730)."""
        expected = partition.of(self.region).id
        roles = {"role_arn": self.role, "lambda.role_arn": (self.sm.get("lambda") or {}).get("role_arn")}
        for where, role in roles.items():
            if role and partition.role_partition(role) != expected:
                raise UserError.single(
                    "FF730",
                    f"sagemaker.{where} is in partition {partition.role_partition(role)!r}, but region "
                    f"{self.region!r} is in {expected!r}",
                    file=self.file,
                    path=f"pipelines.{pipeline}.sagemaker.{where}",
                    hint=f"use the role's ARN in that partition: arn:{expected}:iam::<account>:role/<name>",
                )

    # -- references ---------------------------------------------------------------------------------------
    def ref(self, path: str, fixed: Any) -> Any:
        """A value the YAML may mark as a pipeline parameter: `{"Get": "Parameters.X"}` if it is."""
        p = self.params.get(path)
        return {"Get": f"Parameters.{p.name}"} if p else fixed

    def key(self, *parts: str) -> str:
        return "/".join(x for x in (self.prefix, *parts) if x)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def upload(self, kind: str, filename: str, body: bytes, what: str) -> str:
        digest = sha256(body)
        key = self.key(kind, digest, filename)
        self.uploads[key] = Upload(key, digest, body=body, what=what)
        return self.uri(key)

    def upload_folder(self, kind: str, files: tuple[Path, ...], what: str) -> str:
        """Files under one prefix named by their names and contents (a processing job's code folder): the prefix's
        URI, with a trailing slash so that no other folder's keys fall under it."""
        named = sorted((p.name, p.read_bytes()) for p in files)
        digest = sha256(json_bytes([[name, sha256(body)] for name, body in named]))
        for name, body in named:
            key = self.key(kind, digest, name)
            self.uploads[key] = Upload(key, sha256(body), body=body, what=f"{what}: {name}")
        return self.uri(self.key(kind, digest)) + "/"

    def data_uri(self, source: str, name: str) -> str:
        if source.startswith("s3://"):
            return source
        path = Path(source)
        if not path.is_file():
            raise UserError.single(
                "FF707",
                f"data source {name!r}: {source} does not exist",
                file=str(self.plan.spec.file),
                path=f"pipelines.{self.plan.name}.data.sources.{name}",
                hint="SageMaker reads the file from S3: create it (fraudflow sample-data DIR) or give an s3:// URI",
            )
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        key = self.key("data", digest.hexdigest(), path.name)
        self.uploads[key] = Upload(key, digest.hexdigest(), path=path, what=f"data {name}")
        return self.uri(key)

    def output_uri(self, step: str, output: str) -> dict[str, Any]:
        """Per-execution output location, as the SDK's PipelineSession derives it."""
        values = ["s3:/", self.bucket, *([self.prefix] if self.prefix else []), self.name]
        return {"Std:Join": {"On": "/", "Values": [*values, EXECUTION_ID, step, "output", output]}}

    def step_output(self, step: Step, output: str) -> dict[str, Any]:
        if step.kind == "tuning":  # the best training job's model (fraudflow/sagemaker/tuning.py)
            from fraudflow.sagemaker.tuning import top_model_uri

            return top_model_uri(step.title, self.uri(self.key("model")))
        if step.kind == "training":
            return {"Get": f"Steps.{step.title}.ModelArtifacts.S3ModelArtifacts"}
        return {"Get": f"Steps.{step.title}.ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri"}

    # -- building blocks ----------------------------------------------------------------------------------
    @staticmethod
    def s3_input(name: str, uri: Any, local: str) -> dict[str, Any]:
        return {
            "InputName": name,
            "AppManaged": False,
            "S3Input": {
                "S3Uri": uri,
                "LocalPath": local,
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
                "S3DataDistributionType": "FullyReplicated",
                "S3CompressionType": "None",
            },
        }

    @staticmethod
    def s3_output(name: str, uri: Any, local: str) -> dict[str, Any]:
        return {
            "OutputName": name,
            "AppManaged": False,
            "S3Output": {"S3Uri": uri, "LocalPath": local, "S3UploadMode": "EndOfJob"},
        }

    def resources(self, section: Settings) -> dict[str, Any]:
        res = self.sm[section]
        return {
            "ClusterConfig": {
                "InstanceType": self.ref(f"sagemaker.{section}.instance_type", res["instance_type"]),
                "InstanceCount": self.ref(f"sagemaker.{section}.instance_count", res["instance_count"]),
                "VolumeSizeInGB": res["volume_size_gb"],
            }
        }

    def image(self, step: Step) -> str:
        if step.image == "sklearn":
            return images.sklearn(self.sm["processing"]["framework_version"], self.region, self.file)
        return self.xgb_image  # the XGBoost framework image (training's framework version)

    def inputs(self, step: Step) -> list[dict[str, Any]]:
        """Each input at the container path the Plan gives it: a data source (uploaded, or a parameter), or an
        earlier step's output."""
        out = []
        for i in step.inputs:
            assert i.path is not None
            if i.is_source:
                uri = self.data_uri(self.cfg["data"]["sources"][i.output], i.output)
                self.data_uris[i.output] = uri
                out.append(self.s3_input(i.name, self.ref(f"data.sources.{i.output}", uri), i.path))
            else:
                assert i.step is not None
                out.append(self.s3_input(i.name, self.step_output(self.plan.step(i.step), i.output), i.path))
        return out

    def processing(self, step: Step) -> dict[str, Any]:
        script = step.script_path()
        assert script is not None and step.settings is not None
        inputs = self.inputs(step)
        outputs = {o.name: o.path for o in step.outputs if o.path is not None}
        assert len(outputs) == len(step.outputs), f"{step.name}: every processing output has a container path"
        config = step.config
        if any(i.is_source for i in step.inputs):
            # The script reads input-dir/<name>; the config names S3 (not this machine's paths): portable.
            sources = {i.output: self.data_uris[i.output] for i in step.inputs if i.is_source}
            config = {**config, "data": {**config["data"], "sources": sources}}
        # the script and the files it imports as siblings (stepkit.py): one code folder
        code = self.upload_folder("code", step.code_paths, f"{step.name} code")
        conf = self.upload("config", "config.json", json_bytes(config), f"{step.name} config")
        app: dict[str, Any] = {"ImageUri": self.image(step)}
        arguments: list[Any] = []
        for flag, path in step.parameter_args:  # the config is fixed at render time; an argument is not
            param = self.plan.parameter_for(path)
            if param:
                arguments += [flag, {"Std:Join": {"On": "", "Values": [{"Get": f"Parameters.{param.name}"}]}}]
        if arguments:
            app["ContainerArguments"] = arguments
        app["ContainerEntrypoint"] = ["python3", f"{PROC}/input/code/{script.name}"]
        out: dict[str, Any] = {
            "Name": step.title,
            "Type": "Processing",
            "Arguments": {
                "ProcessingResources": self.resources(step.settings),
                "AppSpecification": app,
                "RoleArn": self.role,
                "ProcessingInputs": [
                    *inputs,
                    self.s3_input("config", conf, CONFIG_PATH),
                    self.s3_input("code", code, f"{PROC}/input/code"),
                ],
                "ProcessingOutputConfig": {
                    "Outputs": [
                        self.s3_output(name, self.output_uri(step.title, name), path)
                        for name, path in outputs.items()
                    ]
                },
            },
            **self.cache,
        }
        gate = self.plan.gate.file
        if gate.step == step.name:  # the gate's JsonGet reads this step's file
            out["PropertyFiles"] = [
                {"PropertyFileName": PROPERTY_FILE, "OutputName": gate.output, "FilePath": gate.name}
            ]
        return out

    def training(self, step: Step) -> dict[str, Any]:
        script = step.script_path()
        assert script is not None and step.settings is not None
        # the script plus the files shipped beside it (train.py: the serving code it packs into the model)
        tar = sourcedir_tar([(p.name, p.read_bytes()) for p in step.code_paths])
        submit = self.upload("code", "sourcedir.tar.gz", tar, f"{step.name} code (script mode)")
        assert step.settings == "training", step.settings  # script mode runs in the training section's image
        tcfg = self.sm[step.settings]
        # Script mode JSON-encodes each value; the training toolkit decodes it and passes `--name value`.
        hps: dict[str, Any] = {}
        for k, v in step.hyperparameters.items():
            p = self.plan.parameter_for(f"train.hyperparameters.{k}")
            hps[k] = (
                {"Std:Join": {"On": "", "Values": [{"Get": f"Parameters.{p.name}"}]}} if p else json.dumps(v)
            )
        hps.update(
            sagemaker_container_log_level="20",
            sagemaker_program=json.dumps(script.name),
            sagemaker_region=json.dumps(self.region),
            sagemaker_submit_directory=json.dumps(submit),
        )
        return {
            "Name": step.title,
            "Type": "Training",
            "Arguments": {
                "AlgorithmSpecification": {
                    "TrainingInputMode": "File",
                    "TrainingImage": images.xgboost(tcfg["framework_version"], self.region, self.file),
                },
                "OutputDataConfig": {"S3OutputPath": self.uri(self.key("model"))},
                "StoppingCondition": {"MaxRuntimeInSeconds": tcfg["max_runtime_s"]},
                "ResourceConfig": {
                    "VolumeSizeInGB": tcfg["volume_size_gb"],
                    "InstanceCount": self.ref(
                        f"sagemaker.{step.settings}.instance_count", tcfg["instance_count"]
                    ),
                    "InstanceType": self.ref(
                        f"sagemaker.{step.settings}.instance_type", tcfg["instance_type"]
                    ),
                },
                "RoleArn": self.role,
                "InputDataConfig": [
                    {
                        "DataSource": {
                            "S3DataSource": {
                                "S3DataType": "S3Prefix",
                                "S3Uri": self.step_output(self.plan.step(i.step or ""), i.output),
                                "S3DataDistributionType": channel_distribution(tcfg, i.name),
                            }
                        },
                        "ContentType": CHANNEL_TYPES.get(i.name, "text/csv"),
                        "ChannelName": i.name,
                    }
                    for i in step.inputs
                ],
                "HyperParameters": hps,
                "ProfilerConfig": {"DisableProfiler": True},
            },
            **self.cache,
        }

    def tuning(self, step: Step) -> dict[str, Any]:
        from fraudflow.sagemaker.tuning import tuning_step  # the train step's job, searched

        return tuning_step(step, self.training(step))

    @property
    def xgb_image(self) -> str:
        return images.xgboost(self.sm["training"]["framework_version"], self.region, self.file)

    @property
    def model_data(self) -> dict[str, Any]:
        model = self.plan.of_kind("register")[0].input("model")
        return self.step_output(self.plan.step(model.step or ""), model.output)

    @property
    def serving_env(self) -> dict[str, Any]:
        """The model's environment: the inference script, and the decision threshold evaluate used (the same
        fixed value or pipeline parameter) for the `decision` of raw records."""
        param = self.plan.parameter_for(THRESHOLD_PATH)
        threshold = self.plan.decision_threshold
        return {
            "FRAUDFLOW_DECISION_THRESHOLD": (
                {"Std:Join": {"On": "", "Values": [{"Get": f"Parameters.{param.name}"}]}}
                if param
                else json.dumps(float(threshold))
            ),
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "*/*",
            "SAGEMAKER_PROGRAM": INFERENCE_PROGRAM,
            "SAGEMAKER_REGION": self.region,
            "SAGEMAKER_SUBMIT_DIRECTORY": SERVING_SUBMIT_DIRECTORY,
        }

    def model(self) -> dict[str, Any]:
        return {
            "Name": f"{MODEL_STEP}-CreateModel",
            "Type": "Model",
            "Arguments": {
                "ExecutionRoleArn": self.role,
                "PrimaryContainer": {
                    "Image": self.xgb_image,
                    "Environment": self.serving_env,
                    "ModelDataUrl": self.model_data,
                },
            },
        }

    def check(self, step: Step, check_type: str, job_config: dict[str, Any]) -> dict[str, Any]:
        cl = self.sm["clarify"]
        config_uri = self.upload(
            "clarify", "analysis_config.json", json_bytes(job_config), f"{step.name} Clarify config"
        )
        # The rows the local step reads: bias.py's post-training metrics and explain.py's SHAP use the test
        # split, so both checks score the test split (with header, label first) on the shadow endpoint.
        data = self.plan.file(step.input("data").step or "", "clarify_dataset")
        dataset = {
            "Std:Join": {
                "On": "/",
                "Values": [self.step_output(self.plan.step(data.step), data.output), data.name],
            }
        }
        output = {
            "Std:Join": {
                "On": "/",
                "Values": [
                    "s3:/",
                    self.bucket,
                    *([self.prefix] if self.prefix else []),
                    EXECUTION_ID,
                    step.title,
                ],
            }
        }
        fail = bool(step.config.get("bias", {}).get("fail_on_violation", False))
        return {
            "Name": step.title,
            "Type": "ClarifyCheck",
            "Arguments": {
                "ProcessingResources": {
                    "ClusterConfig": {
                        "InstanceType": cl["instance_type"],
                        "InstanceCount": cl["instance_count"],
                        "VolumeSizeInGB": cl["volume_size_gb"],
                    }
                },
                "AppSpecification": {"ImageUri": images.clarify(self.region, self.file)},
                "RoleArn": self.role,
                "ProcessingInputs": [
                    self.s3_input("analysis_config", config_uri, f"{PROC}/input/config"),
                    self.s3_input("dataset", dataset, f"{PROC}/input/data"),
                ],
                "ProcessingOutputConfig": {
                    "Outputs": [self.s3_output("analysis_result", output, f"{PROC}/output")]
                },
            },
            **self.cache,
            "CheckType": check_type,
            "ModelPackageGroupName": self.plan.of_kind("register")[0].config["model_package_group"],
            "SkipCheck": False,
            "FailOnViolation": fail,
            # The first registration has no approved baseline to compare with: record this run's as the baseline.
            "RegisterNewBaseline": True,
            "SuppliedBaselineConstraints": None,
            "ModelName": {"Get": f"Steps.{MODEL_STEP}-CreateModel.ModelName"},
        }

    def _clarify_prop(self, step: Step, name: str) -> dict[str, Any]:
        return {"ContentType": "application/json", "S3Uri": {"Get": f"Steps.{step.title}.{name}"}}

    def _monitor(self, doc: dict[str, Any], name: str) -> dict[str, Any]:
        uri = self.upload("clarify", "analysis_config.json", json_bytes(doc), f"{name} monitoring config")
        return {"S3Uri": uri, "ContentType": "application/json"}

    def bias(self, step: Step) -> dict[str, Any]:
        """A ClarifyCheck (MODEL_BIAS); its reports feed the registration's ModelMetrics and drift baselines."""
        label, bias = (
            step.config["data"]["label"],
            clarify.encoded(step.config["bias"], dict(self.cfg["data"])),
        )
        pred = clarify.predictor(self.sm["clarify"]["instance_type"])
        self.metrics["Bias"] = {
            "PostTrainingReport": self._clarify_prop(step, "CalculatedBaselineConstraints")
        }
        self.drift["Bias"] = {
            "ConfigFile": self._monitor(clarify.bias_monitor_config(label, bias), "bias"),
            "PostTrainingConstraints": self._clarify_prop(step, "BaselineUsedForDriftCheckConstraints"),
        }
        return self.check(step, "MODEL_BIAS", clarify.bias_job_config(label, bias, pred))

    def explain(self, step: Step) -> dict[str, Any]:
        """A ClarifyCheck (MODEL_EXPLAINABILITY), likewise."""
        label, explain = step.config["data"]["label"], step.config["explain"]
        pred = clarify.predictor(self.sm["clarify"]["instance_type"])
        out = self.check(step, "MODEL_EXPLAINABILITY", clarify.explain_job_config(label, explain, pred))
        self.metrics["Explainability"] = {"Report": self._clarify_prop(step, "CalculatedBaselineConstraints")}
        self.drift["Explainability"] = {
            "Constraints": self._clarify_prop(step, "BaselineUsedForDriftCheckConstraints"),
            "ConfigFile": self._monitor(clarify.explain_monitor_config(explain, pred), "explainability"),
        }
        return out

    def register(self, step: Step) -> dict[str, Any]:
        metrics, drift = self.metrics, self.drift
        reg = step.config
        ev = self.plan.file(step.input("evaluation").step or "", "evaluation")
        evaluation = self.step_output(self.plan.step(ev.step), ev.output)
        model_metrics = {
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": {"Std:Join": {"On": "/", "Values": [evaluation, ev.name]}},
                }
            },
            **metrics,
        }
        deploys = self.plan.of_kind("deploy")
        spec: dict[str, Any] = {
            "Containers": [
                {"Image": self.xgb_image, "Environment": self.serving_env, "ModelDataUrl": self.model_data}
            ],
            "SupportedContentTypes": SERVING_TYPES,
            "SupportedResponseMIMETypes": SERVING_TYPES,
        }
        if deploys:
            spec["SupportedRealtimeInferenceInstanceTypes"] = [deploys[0].config["instance_type"]]
            spec["SupportedTransformInstanceTypes"] = [deploys[0].config["instance_type"]]
        args: dict[str, Any] = {
            "ModelPackageGroupName": reg["model_package_group"],
            "ModelMetrics": model_metrics,
            "InferenceSpecification": spec,
            "ModelApprovalStatus": self.ref("register.approval_status", reg["approval_status"]),
            "SkipModelValidation": "None",
        }
        if drift:
            args["DriftCheckBaselines"] = drift
        if reg.get("description"):
            args["ModelPackageDescription"] = reg["description"]
        return {"Name": f"{step.title}-RegisterModel", "Type": "RegisterModel", "Arguments": args}

    def deploy(self, step: Step) -> dict[str, Any] | None:
        d = step.config
        variants = d.get("variants") or []
        lam = self.sm.get("lambda") or {}
        fn = lam.get("function_name") or f"{self.name}-deployer"[:64]
        account = self.role.split(":")[4]
        arn = partition.arn("lambda", self.region, account, f"function:{fn}")
        code = (STEP_CODE / LAMBDA_SCRIPT).read_bytes()
        z = lambda_zip(LAMBDA_SCRIPT, code)
        zkey = self.key("lambda", sha256(z), "lambda_deployer.zip")
        self.uploads[zkey] = Upload(zkey, sha256(z), body=z, what="deployer Lambda package")
        if not lam.get("role_arn"):  # validate reports it first (FF520); this guards a spec built in code
            raise UserError.single(
                "FF741",
                f"pipeline {self.plan.name!r} deploys, but names no role for its deployer Lambda",
                file=self.file,
                path=f"pipelines.{self.plan.name}.sagemaker.lambda.role_arn",
                hint="set sagemaker.lambda.role_arn to a role of its own; `fraudflow iam --for deployer` prints "
                "its policies",
            )
        function = LambdaFunction(
            fn,
            arn,
            lam["role_arn"],
            int(lam.get("timeout_s", LAMBDA_TIMEOUT_S)),
            self.uploads[zkey],
        )
        register = self.plan.step(step.input("model_package").step or "")
        variant = (variants or [{"name": "AllTraffic"}])[0]
        arguments = {
            "model_package_arn": {"Get": f"Steps.{register.title}-RegisterModel.ModelPackageArn"},
            "endpoint_name": d["endpoint_name"],
            "instance_type": d["instance_type"],
            "instance_count": d["instance_count"],
            "variant_name": variant.get("name", "AllTraffic"),
            "require_approval": bool(d.get("require_approval", False)),
            "role_arn": self.role,
        }
        capture = data_capture_config(d.get("data_capture"), self.uri(self.key("data-capture")))
        if capture is not None:  # the endpoint config's DataCaptureConfig, built here, passed through as JSON
            arguments["data_capture"] = json.dumps(capture, sort_keys=True, separators=(",", ":"))
        outputs: tuple[str, ...] = DEPLOY_OUTPUTS
        # One variant serving the newest version needs nothing beyond variant_name, and renders as it always did
        # (the SDK conformance test covers that shape). Anything else travels as a JSON string.
        if len(variants) > 1 or any(str(v.get("model_version", "latest")) != "latest" for v in variants):
            served = [
                {
                    "name": v["name"],
                    "weight": v.get("weight", 1.0),
                    "model_version": v.get("model_version", "latest"),
                }
                for v in variants
            ]
            arguments["variants"] = json.dumps(served, sort_keys=True, separators=(",", ":"))
            outputs = DEPLOY_OUTPUTS + DEPLOY_VARIANT_OUTPUTS
        if d.get("when") == "approved":  # approvals deploy (approval_rule.py), not the pipeline: no step
            self.on_approval = {k: v for k, v in arguments.items() if k != "model_package_arn"}
            self.function = function
            return None
        out = {
            "Name": step.title,
            "Type": "Lambda",
            "Arguments": arguments,
            "FunctionArn": arn,
            "OutputParameters": [{"OutputName": n, "OutputType": "String"} for n in outputs],
        }
        self.function = function
        return out

    def gate(self, if_steps: list[dict[str, Any]]) -> dict[str, Any]:
        """Every condition of the Plan's gate as the Condition step's comparisons (all must hold), each reading its
        number with Std:JsonGet: evaluation.json through the evaluate step's PropertyFile, the bias report from
        the bias check's output in S3. The Fail step's message lists each condition with its value."""
        from fraudflow.sagemaker.gate_compile import compile_conditions

        g = self.plan.gate
        conditions, message = compile_conditions(self, g)
        fail = {"Name": FAIL_STEP, "Type": "Fail", "Arguments": {"ErrorMessage": message}}
        return {
            "Name": g.title,
            "Type": "Condition",
            "Arguments": {"Conditions": conditions, "IfSteps": if_steps, "ElseSteps": [fail]},
        }

    def parameters(self) -> list[dict[str, Any]]:
        out = []
        for p in self.plan.parameters:
            default = p.default
            if p.path.startswith("data.sources."):
                default = self.data_uris[p.path.split(".", 2)[2]]
            out.append({"Name": p.name, "Type": p.type, "DefaultValue": default})
        return out

    def compile(self) -> Rendered:
        # One template per step kind; the gated steps run inside the Condition, after the model they serve.
        handlers = {
            "processing": self.processing,
            "training": self.training,
            "tuning": self.tuning,
            "bias": self.bias,
            "explain": self.explain,
            "register": self.register,
            "deploy": self.deploy,
        }
        ungated = [s for s in self.plan.steps if not s.gated]
        # A check the gate reads (bias) runs before the Condition, after the model its shadow endpoint serves.
        early = next((s for s in ungated if s.kind in ("bias", "explain")), None)
        steps: list[dict[str, Any]] = []
        for s in ungated:
            steps += [self.model()] if s is early else []
            rendered = handlers[s.kind](s)
            steps += [rendered] if rendered is not None else []
        gated = (handlers[s.kind](s) for s in self.plan.steps if s.gated)
        if_steps = [*([] if early else [self.model()]), *gated]
        # a deploy on approval has no step
        steps.append(self.gate([s for s in if_steps if s is not None]))
        function = self.function
        definition = {
            "Version": FORMAT_VERSION,
            "Metadata": {},
            "Parameters": self.parameters(),
            "Steps": steps,
        }
        return Rendered(
            name=self.name,
            region=self.region,
            bucket=self.bucket,
            role_arn=self.role,
            definition=definition,
            uploads=tuple(sorted(self.uploads.values(), key=lambda u: u.key)),
            lambda_function=function,
            description=self.cfg.get("description"),
            tags=dict(self.sm.get("tags") or {}),
            file=str(self.plan.spec.file),
            resources=reconcilers_for(self.plan, self.resource_context()),
        )

    def resource_context(self) -> dict[str, Any]:
        """What reconcilers need to know of the compiled pipeline (fraudflow/sagemaker/resources.py)."""
        return {
            "region": self.region,
            "bucket": self.bucket,
            "pipeline_name": self.name,
            "role_arn": self.role,
            "deployer": self.function,  # the deployer Lambda, when the plan deploys
            "deploy_on_approval": self.on_approval,  # its arguments, when approvals deploy
        }


def compile_plan(plan: Plan) -> Rendered:
    return _Compiler(plan).compile()
