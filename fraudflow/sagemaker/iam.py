"""`fraudflow iam`: least-privilege IAM policies for the three roles a pipeline involves, read off the rendered
pipeline.

Every resource comes from what `render` produced (compile.py's `Rendered`): the S3 URIs, image URIs, role and
function ARNs, model package group and endpoint name as they stand in the pipeline definition, the uploads'
content-hashed keys (the hash becomes `*`, so a code change needs no new policy), and the deployer's own naming
functions (step_code/lambda_deployer.py) for the models and endpoint configs it creates. No naming rule is
written a second time here. ARNs are built with partition.py, so they carry the region's partition.

The roles:
- execution (`sagemaker.role_arn`): the pipeline's role (SageMaker Pipelines assumes it to start the jobs, create
  the model, register it and invoke the deployer) and the role of every job and of the deployed model;
- deployer (`sagemaker.lambda.role_arn`): the Lambda that creates the models, endpoint config and endpoint;
- api (`deploy.api.role_arn`): the role API Gateway assumes to call InvokeEndpoint on the endpoint, and nothing else;
- operator: whoever runs `fraudflow plan` / `apply` / `apply --start` (a person or CI): exactly the calls of
  fraudflow/sagemaker/apply.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from fraudflow.errors import UsageError
from fraudflow.plan import STEP_CODE
from fraudflow.sagemaker import approval_rule, partition
from fraudflow.sagemaker.api_gateway import ApiGateway, Declared
from fraudflow.sagemaker.compile import LAMBDA_SCRIPT, Rendered

ROLES = ("execution", "deployer", "api", "operator")
SAGEMAKER = "sagemaker.amazonaws.com"
LAMBDA = "lambda.amazonaws.com"
APIGATEWAY = "apigateway.amazonaws.com"
# IAM's limit for a role's inline policies (characters, whitespace not counted); a managed policy allows 6,144.
INLINE_LIMIT = 10_240
# SageMaker Pipelines names what it creates `pipelines-<execution id>-<step>-<token>` (without a custom job prefix,
# which fraudflow does not set); Clarify names its shadow endpoint and endpoint config `sm-clarify-…`.
PIPELINE_JOB_PREFIX = "pipelines-"
CLARIFY_SHADOW_PREFIX = "sm-clarify-"
ECR_PULL = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
LOG_GROUP_ACTIONS = ("logs:CreateLogGroup", "logs:DescribeLogStreams")  # authorised on log-group:NAME
LOG_STREAM_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")  # on log-group:NAME:log-stream:STREAM
LOG_GROUPS = {"Processing": "ProcessingJobs", "ClarifyCheck": "ProcessingJobs", "Training": "TrainingJobs"}


@dataclass(frozen=True)
class Statement:
    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]  # ("*",) only for actions without resource-level permissions
    condition: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "Sid": self.sid,
            "Effect": "Allow",
            "Action": sorted(set(self.actions)),
            "Resource": "*" if self.resources == ("*",) else sorted(set(self.resources)),
        }
        if self.condition:
            doc["Condition"] = self.condition
        return doc


@dataclass(frozen=True)
class Role:
    kind: str  # execution | deployer | operator
    arn: str | None  # None for the operator: fraudflow does not know who runs it
    setting: str  # where pipelines.yaml names it
    assumed_by: str
    trust: dict[str, Any]
    statements: tuple[Statement, ...]
    notes: tuple[str, ...] = ()

    @property
    def policy(self) -> dict[str, Any]:
        return {"Version": "2012-10-17", "Statement": [s.to_json() for s in self.statements]}

    @property
    def size(self) -> int:
        """What IAM counts against its limits: the policy's characters without whitespace."""
        return len("".join(json.dumps(self.policy, separators=(",", ":")).split()))

    def to_json(self) -> dict[str, Any]:
        return {
            "role_arn": self.arn,
            "setting": self.setting,
            "assumed_by": self.assumed_by,
            "trust_policy": self.trust,
            "policy": self.policy,
            "policy_size": self.size,
            "notes": list(self.notes),
        }


# -- reading the rendered definition ------------------------------------------------------------------------
def _pattern(value: Any, params: dict[str, Any]) -> str | None:
    """A definition value as text: parameters at their default, step properties and the execution id as `*`."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Get" in value:
        ref = str(value["Get"])
        if ref.startswith("Parameters."):
            default = params.get(ref.split(".", 1)[1])
            return None if default is None else str(default)
        return "*"
    if isinstance(value, dict) and "Std:Join" in value:
        parts = [_pattern(v, params) for v in value["Std:Join"]["Values"]]
        return None if any(p is None for p in parts) else value["Std:Join"]["On"].join(parts)
    return None


def _walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(node, dict):
        if "Get" in node or "Std:Join" in node:
            yield path, node
            return
        for k, v in node.items():
            yield from _walk(v, (*path, str(k)))
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, path)
    else:
        yield path, node


def steps(definition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every step, the Condition's branches included."""

    def walk(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for s in items:
            yield s
            args = s.get("Arguments") or {}
            if s.get("Type") == "Condition":
                yield from walk(args.get("IfSteps", []))
                yield from walk(args.get("ElseSteps", []))

    return walk(definition.get("Steps", []))


@dataclass
class Needs:
    """What the definition touches: S3 reads and writes (URI patterns), images, step types, and so on."""

    reads: set[str] = field(default_factory=set)
    writes: set[str] = field(default_factory=set)
    images: set[str] = field(default_factory=set)
    step_types: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    functions: set[str] = field(default_factory=set)
    endpoints: set[str] = field(default_factory=set)
    captures: set[str] = field(default_factory=set)  # data-capture destinations (s3:// prefixes)


WRITE_KEYS = ("S3Output", "S3OutputPath")
IMAGE_KEYS = ("ImageUri", "TrainingImage", "Image")


def needs(r: Rendered) -> Needs:
    params = {p["Name"]: p.get("DefaultValue") for p in r.definition.get("Parameters", [])}
    out = Needs()
    for step in steps(r.definition):
        out.step_types.add(step.get("Type", ""))
        if step.get("Type") == "Lambda":
            out.functions.add(step["FunctionArn"])
            endpoint = (step.get("Arguments") or {}).get("endpoint_name")
            if endpoint:
                out.endpoints.add(endpoint)
            capture = (step.get("Arguments") or {}).get("data_capture")
            if isinstance(capture, str):  # the endpoint writes captures with the model's (execution) role
                out.captures.add(json.loads(capture)["DestinationS3Uri"])
        for path, value in _walk(
            {k: v for k, v in step.items() if k != "Arguments" or step["Type"] != "Condition"}
        ):
            key = path[-1] if path else ""
            if key == "ModelPackageGroupName" and isinstance(value, str):
                out.groups.add(value)
            text = _pattern(value, params)
            if text is None:
                continue
            if key == "sagemaker_submit_directory":  # script mode JSON-encodes its hyperparameters
                text = json.loads(text)
            if key in IMAGE_KEYS and ".dkr.ecr." in text:
                out.images.add(text)
            elif text.startswith("s3://"):
                (out.writes if any(k in path for k in WRITE_KEYS) else out.reads).add(text)
    return out


# -- ARNs ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arns:
    region: str
    account: str

    @property
    def partition(self) -> str:
        return partition.of(self.region).id

    def s3(self, bucket: str, key: str = "") -> str:
        return f"arn:{self.partition}:s3:::{bucket}" + (f"/{key}" if key else "")

    def sagemaker(self, resource: str) -> str:
        # SageMaker ARNs hold resource names in lower case (an endpoint `Fraud` is `…:endpoint/fraud`).
        return partition.arn("sagemaker", self.region, self.account, resource.lower())

    def log_group(self, group: str) -> str:
        return partition.arn("logs", self.region, self.account, f"log-group:{group}")

    def log_streams(self, group: str) -> str:
        return f"{self.log_group(group)}:log-stream:*"

    def ecr_repository(self, image: str) -> str:
        registry, _, rest = image.partition(".dkr.ecr.")
        region = rest.split(".", 1)[0]
        repository = image.split("/", 1)[1].split("@")[0].rsplit(":", 1)[0]
        return partition.arn("ecr", region, registry, f"repository/{repository}")

    def iam_root(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:root"


def _s3_split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def _upload_patterns(r: Rendered) -> dict[str, str]:
    """Each uploaded key → the same key with its content hash as `*` (the hash is what changes with the code)."""
    return {u.key: u.key.replace(u.sha256, "*") for u in r.uploads}


def _read_resources(r: Rendered, n: Needs, arns: Arns) -> tuple[set[str], dict[str, set[str]]]:
    """Objects the jobs read, and the key prefixes they list (S3Prefix inputs list the bucket), per bucket."""
    patterns = _upload_patterns(r)
    objects: set[str] = set()
    prefixes: dict[str, set[str]] = {}
    for uri in n.reads:
        bucket, key = _s3_split(uri)
        if key.startswith("*"):
            continue  # a step's output (Steps.X…): covered by the write patterns
        # an upload's exact key (hash as *); a user's s3:// source is a prefix (S3DataType S3Prefix)
        key = patterns[key] if key in patterns and bucket == r.bucket else f"{key}*"
        objects.add(arns.s3(bucket, key))
        prefixes.setdefault(bucket, set()).add(key)
    return objects, prefixes


def _write_resources(n: Needs, arns: Arns) -> tuple[set[str], dict[str, set[str]]]:
    objects: set[str] = set()
    prefixes: dict[str, set[str]] = {}
    for uri in n.writes:
        bucket, key = _s3_split(uri)
        objects.add(arns.s3(bucket, f"{key.rstrip('/')}/*"))
        prefixes.setdefault(bucket, set()).add(f"{key.rstrip('/')}/*")
    return objects, prefixes


@functools.cache
def _deployer() -> ModuleType:
    """The deployer Lambda's own module: the policy uses its naming functions, not a copy of them."""
    spec = importlib.util.spec_from_file_location("fraudflow_lambda_deployer", STEP_CODE / LAMBDA_SCRIPT)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def deployer_name_patterns(endpoint: str) -> tuple[str, str]:
    """The names the deployer gives its models and endpoint configs, as IAM patterns: the common prefix of the
    names its own functions give for versions of every width and variant sets of every size (a long endpoint
    name is truncated by as much as the suffix needs, and the suffix length varies with them)."""
    d = _deployer()

    def model(version: int) -> str:
        return d.resource_name(endpoint, f"arn:x:model-package/g/{version}")

    widths = range(1, 13)  # versions of 1 to 12 digits
    models = [model(10 ** (w - 1)) for w in widths] + [model(2)]
    configs = []
    for w in widths:
        for count in range(1, 7):
            production = [
                {"VariantName": f"V{i}", "ModelName": model(10 ** (w - 1) + i), "InstanceType": "ml.m5.large",
                 "InitialInstanceCount": 1, "InitialVariantWeight": 1.0}
                for i in range(count)
            ]  # fmt: skip
            configs.append(d.config_name(endpoint, production))
    return os.path.commonprefix(models) + "*", os.path.commonprefix(configs) + "*"


def _pass_role(sid: str, roles: list[str], service: str) -> Statement:
    return Statement(sid, ("iam:PassRole",), tuple(roles), {"StringEquals": {"iam:PassedToService": service}})


def _trust(service: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def _logs(sid: str, arns: Arns, groups: list[str], group_actions: tuple[str, ...]) -> list[Statement]:
    return [
        Statement(f"{sid}Groups", group_actions, tuple(arns.log_group(g) for g in groups)),
        Statement(f"{sid}Streams", LOG_STREAM_ACTIONS, tuple(arns.log_streams(g) for g in groups)),
    ]


def _list_bucket(sid: str, arns: Arns, prefixes: dict[str, set[str]]) -> list[Statement]:
    return [
        Statement(
            f"{sid}{i}" if len(prefixes) > 1 else sid,
            ("s3:ListBucket",),
            (arns.s3(bucket),),
            {"StringLike": {"s3:prefix": sorted(keys)}},
        )
        for i, (bucket, keys) in enumerate(sorted(prefixes.items()))
    ]


# -- the roles ----------------------------------------------------------------------------------------------
def execution_role(r: Rendered, n: Needs, arns: Arns) -> Role:
    reads, read_prefixes = _read_resources(r, n, arns)
    writes, write_prefixes = _write_resources(n, arns)
    listed = {
        b: read_prefixes.get(b, set()) | write_prefixes.get(b, set())
        for b in {*read_prefixes, *write_prefixes}
    }
    job = PIPELINE_JOB_PREFIX + "*"
    st = [
        Statement("ReadInputs", ("s3:GetObject",), tuple(reads)),
        Statement("WriteAndReadRunOutputs", ("s3:GetObject", "s3:PutObject"), tuple(writes)),
        Statement(
            "WriteDataCapture",
            ("s3:PutObject",),
            tuple(sorted(arns.s3(*_s3_split(f"{u.rstrip('/')}/*")) for u in n.captures)),
        ),
        *_list_bucket("ListInputAndOutputPrefixes", arns, listed),
        Statement("PullStepImages", ECR_PULL, tuple(sorted({arns.ecr_repository(i) for i in n.images}))),
        Statement("EcrLoginHasNoResourceLevel", ("ecr:GetAuthorizationToken",), ("*",)),
    ]
    groups = sorted({f"/aws/sagemaker/{LOG_GROUPS[t]}" for t in n.step_types if t in LOG_GROUPS})
    groups += [f"/aws/sagemaker/Endpoints/{e}" for e in sorted(n.endpoints)]
    if "ClarifyCheck" in n.step_types:
        groups.append(f"/aws/sagemaker/Endpoints/{CLARIFY_SHADOW_PREFIX}*")
    st += _logs("JobLogs", arns, groups, LOG_GROUP_ACTIONS)
    st.append(
        Statement(
            "JobMetricsHaveNoResourceLevel",
            ("cloudwatch:PutMetricData",),
            ("*",),
            {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
        )
    )
    # What SageMaker Pipelines does with this role: start the jobs, create the model, register it, invoke the Lambda.
    jobs: list[str] = []
    actions: list[str] = []
    if n.step_types & {"Processing", "ClarifyCheck"}:
        jobs.append(arns.sagemaker(f"processing-job/{job}"))
        actions += [
            "sagemaker:CreateProcessingJob",
            "sagemaker:DescribeProcessingJob",
            "sagemaker:StopProcessingJob",
        ]
    if "Training" in n.step_types:
        jobs.append(arns.sagemaker(f"training-job/{job}"))
        actions += [
            "sagemaker:CreateTrainingJob",
            "sagemaker:DescribeTrainingJob",
            "sagemaker:StopTrainingJob",
        ]
    if jobs:
        st.append(Statement("PipelineJobs", (*actions, "sagemaker:AddTags"), tuple(jobs)))
    if "Model" in n.step_types:
        st.append(
            Statement(
                "PipelineModel",
                ("sagemaker:AddTags", "sagemaker:CreateModel", "sagemaker:DescribeModel"),
                (arns.sagemaker(f"model/{job}"),),
            )
        )
    for g in sorted(n.groups):
        st.append(
            Statement(
                "RegisterInGroup" if len(n.groups) == 1 else f"RegisterInGroup{g.replace('-', '')}",
                (
                    "sagemaker:CreateModelPackage",
                    "sagemaker:CreateModelPackageGroup",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:ListModelPackages",
                ),
                (arns.sagemaker(f"model-package-group/{g}"), arns.sagemaker(f"model-package/{g}/*")),
            )
        )
    if "ClarifyCheck" in n.step_types:
        shadow = CLARIFY_SHADOW_PREFIX + "*"
        st.append(
            Statement(
                "ClarifyShadowEndpoint",
                (
                    "sagemaker:CreateEndpoint",
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:DeleteEndpoint",
                    "sagemaker:DeleteEndpointConfig",
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:InvokeEndpoint",
                ),
                (arns.sagemaker(f"endpoint/{shadow}"), arns.sagemaker(f"endpoint-config/{shadow}")),
            )
        )
    if n.functions:
        st.append(Statement("InvokeDeployer", ("lambda:InvokeFunction",), tuple(sorted(n.functions))))
    st.append(_pass_role("PassItselfToSageMaker", [r.role_arn], SAGEMAKER))
    st += monitoring_statements("execution", r, arns)
    st += scoring_statements("execution", r, arns)
    return Role(
        "execution",
        r.role_arn,
        "sagemaker.role_arn",
        SAGEMAKER,
        monitoring_trust(r, _trust(SAGEMAKER)),
        tuple(s for s in st if s.resources),
        notes=(
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level permissions in IAM, "
            "so their Resource is * (the metrics are limited to SageMaker's namespaces by a condition)",
            "SageMaker Pipelines names its jobs and models pipelines-<execution>-<step>-…, Clarify its shadow "
            "endpoint sm-clarify-…: those prefixes are the narrowest pattern IAM can use",
            "data sources declared as pipeline parameters are allowed at their default; an execution that "
            "passes another S3 URI needs read access to it",
        ),
    )


def deployer_role(r: Rendered, n: Needs, arns: Arns) -> Role | None:
    fn = r.lambda_function
    if fn is None:
        return None
    st: list[Statement] = []
    groups = sorted(n.groups)
    st.append(
        Statement(
            "DescribeRegisteredVersions",
            ("sagemaker:DescribeModelPackage",),
            tuple(arns.sagemaker(f"model-package/{g}/*") for g in groups),
        )
    )
    models, configs, endpoints = [], [], []
    for e in sorted(n.endpoints):
        model, config = deployer_name_patterns(e)
        models.append(arns.sagemaker(f"model/{model}"))
        configs.append(arns.sagemaker(f"endpoint-config/{config}"))
        endpoints.append(arns.sagemaker(f"endpoint/{e}"))
    st += [
        Statement("ServedModels", ("sagemaker:CreateModel", "sagemaker:DescribeModel"), tuple(models)),
        Statement(
            "EndpointConfigs",
            ("sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpointConfig"),
            tuple(configs),
        ),
        # CreateEndpoint and UpdateEndpoint are authorised on the endpoint and on the config it is pointed at.
        Statement(
            "PointEndpointAtConfig",
            ("sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"),
            (*endpoints, *configs),
        ),
        Statement(
            "WatchAndRecreateEndpoint",
            ("sagemaker:DeleteEndpoint", "sagemaker:DescribeEndpoint"),
            tuple(endpoints),
        ),
        _pass_role("PassExecutionRoleToModels", [r.role_arn], SAGEMAKER),
        *_logs("OwnLogs", arns, [f"/aws/lambda/{fn.name}"], ("logs:CreateLogGroup",)),
        *monitoring_statements("deployer", r, arns),
    ]
    return Role(
        "deployer",
        fn.role_arn,
        "sagemaker.lambda.role_arn",
        LAMBDA,
        _trust(LAMBDA),
        tuple(s for s in st if s.resources),
        notes=(
            "the model and endpoint-config patterns are the prefixes of the names step_code/lambda_deployer.py "
            "gives them (<endpoint>-v<version>, <endpoint>-v<versions>-<hash>)",
        ),
    )


def declared_api(r: Rendered) -> Declared | None:
    """deploy.api as its reconciler resolved it (fraudflow/sagemaker/api_gateway.py), if the pipeline has one."""
    return next((rec.d for rec in r.resources if isinstance(rec, ApiGateway) and rec.d), None)


def api_role(r: Rendered, arns: Arns) -> Role | None:
    d = declared_api(r)
    if d is None:
        return None
    invoke = Statement(
        "InvokeThisEndpointOnly", ("sagemaker:InvokeEndpoint",), (arns.sagemaker(f"endpoint/{d.endpoint}"),)
    )
    return Role(
        "api",
        d.role_arn or None,
        "deploy.api.role_arn",
        APIGATEWAY,
        _trust(APIGATEWAY),
        (invoke,),
        notes=("API Gateway's integration for POST /invocations runs under this role (its `credentials`)",),
    )


def _api_operator(r: Rendered, arns: Arns) -> list[Statement]:
    """What the API Gateway reconciler calls: API Gateway authorises by HTTP verb on resource paths, and the API's
    id is unknown before it exists, so the paths are the region's REST APIs, usage plans, API keys and tags."""
    d = declared_api(r)
    base = f"arn:{arns.partition}:apigateway:{arns.region}::"
    if d is None:  # plan still looks for APIs an earlier apply made, to remove them: listing only
        return [
            Statement(
                "FindEarlierEndpointApis",
                ("apigateway:GET",),
                (f"{base}/restapis", f"{base}/usageplans", f"{base}/apikeys"),
            )
        ]
    paths = ("/restapis", "/restapis/*", "/usageplans", "/usageplans/*", "/apikeys", "/apikeys/*", "/tags/*")
    verbs = tuple(f"apigateway:{v}" for v in ("DELETE", "GET", "PATCH", "POST", "PUT"))
    out = [Statement("ManageEndpointApi", verbs, tuple(base + p for p in paths))]
    if d.role_arn:
        out.append(_pass_role("PassApiRoleToApiGateway", [d.role_arn], APIGATEWAY))
    return out


def operator_role(r: Rendered, n: Needs, arns: Arns) -> Role:
    uploads = sorted({arns.s3(r.bucket, p) for p in _upload_patterns(r).values()})
    pipeline = arns.sagemaker(f"pipeline/{r.name}")
    pipeline_actions = [
        "sagemaker:CreatePipeline",
        "sagemaker:DescribePipeline",
        "sagemaker:StartPipelineExecution",
        "sagemaker:UpdatePipeline",
    ]
    if r.tags:
        pipeline_actions.append("sagemaker:AddTags")  # CreatePipeline with Tags
    st = [
        # HeadBucket is authorised as s3:ListBucket; without it HeadObject of a missing key answers 403, not 404.
        Statement("FindBucketAndUploads", ("s3:ListBucket",), (arns.s3(r.bucket),)),
        Statement("UploadCodeConfigsAndData", ("s3:GetObject", "s3:PutObject"), tuple(uploads)),
        Statement("UpsertAndStartPipeline", tuple(pipeline_actions), (pipeline,)),
        Statement(
            "FollowExecutions",
            ("sagemaker:DescribePipelineExecution", "sagemaker:ListPipelineExecutionSteps"),
            (f"{pipeline}/execution/*",),
        ),
        _pass_role("PassExecutionRoleToSageMaker", [r.role_arn], SAGEMAKER),
        *monitoring_statements("operator", r, arns),
        *scoring_statements("operator", r, arns),
    ]
    fn = r.lambda_function
    if fn is not None:
        st += [
            Statement(
                "ManageDeployerFunction",
                (
                    "lambda:CreateFunction",
                    "lambda:GetFunction",
                    "lambda:UpdateFunctionCode",
                    "lambda:UpdateFunctionConfiguration",
                ),
                (fn.arn,),
            ),
            _pass_role("PassDeployerRoleToLambda", [fn.role_arn], LAMBDA),
        ]
    st += _api_operator(r, arns)
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": arns.iam_root()}, "Action": "sts:AssumeRole"}],
    }
    return Role(
        "operator",
        None,
        "(who runs fraudflow plan/apply)",
        f"principals of account {arns.account} allowed to assume it",
        trust,
        tuple(s for s in st if s.resources),
        notes=(
            "apply does not create the bucket, the roles or the model package group: the pipeline's "
            "RegisterModel step creates the group under the execution role",
            "for CI, replace the trust policy with a web-identity one (docs/ci.md)",
        ),
    )


def roles(r: Rendered) -> dict[str, Role]:
    account = r.role_arn.split(":")[4]
    arns = Arns(r.region, account)
    n = needs(r)
    n.endpoints.update(filter(None, [approval_rule.deployed_endpoint(r)]))  # deployed on approval, no step
    out = {"execution": execution_role(r, n, arns)}
    deployer = deployer_role(r, n, arns)
    if deployer is not None:
        out["deployer"] = deployer
    api = api_role(r, arns)
    if api is not None:
        out["api"] = api
    out["operator"] = operator_role(r, n, arns)
    for kind, grants in approval_rule.iam_grants(
        r
    ).items():  # the EventBridge rule's calls (approval_rule.py)
        extra = tuple(Statement(sid, actions, res) for sid, actions, res in grants)
        out[kind] = dataclasses.replace(out[kind], statements=out[kind].statements + extra)
    return out


def step_roles(r: Rendered) -> list[tuple[str, str, str]]:
    """(step, role kind, role ARN) for every step that runs under a role: what plan and apply print."""
    out = []
    for s in steps(r.definition):
        args = s.get("Arguments") or {}
        if s.get("Type") == "Lambda" and r.lambda_function is not None:
            out.append(
                (f"{s['Name']} (Lambda {r.lambda_function.name})", "deployer", r.lambda_function.role_arn)
            )
        elif s.get("Type") in ("Condition", "Fail"):
            continue
        else:
            role = args.get("RoleArn") or args.get("ExecutionRoleArn") or r.role_arn
            out.append((f"{s['Name']} ({s.get('Type')})", "execution", role))
    return out


def describe_roles(r: Rendered) -> list[str]:
    lines = [
        "Roles (`fraudflow iam --for ROLE` prints each one's policies):",
        f"  pipeline {r.name}: execution {r.role_arn}",
    ]
    lines += [f"  {step}: {kind} {arn}" for step, kind, arn in step_roles(r)]
    api = declared_api(r)
    if api is not None:
        lines.append(
            f"  API POST /invocations → endpoint {api.endpoint}: api {api.role_arn or '(deploy.api.role_arn unset)'}"
        )
    lines.append("  this command: your AWS credentials (operator)")
    return lines


# -- the command --------------------------------------------------------------------------------------------
def _render(args: argparse.Namespace) -> Rendered:
    from fraudflow.sagemaker.commands import _render as render

    return render(args)


def command(args: argparse.Namespace) -> int:
    rendered = _render(args)
    found = roles(rendered)
    wanted = [args.role] if args.role else list(found)
    if args.role and args.role not in found:
        raise UsageError.single(
            "FF742",
            f"pipeline {rendered.name} has no {args.role} role: it declares no "
            + ("`deploy.api`" if args.role == "api" else "`deploy`"),
            file="<command line>",
            hint="roles: " + ", ".join(found),
        )
    if args.document:
        if not args.role:
            raise UsageError.single(
                "FF742", "--document prints one role's document: add --for ROLE", file="<command line>"
            )
        role = found[args.role]
        print(json.dumps(role.trust if args.document == "trust" else role.policy, indent=2))
        return 0
    if args.format == "json":
        doc = {
            "pipeline": rendered.name,
            "region": rendered.region,
            "partition": partition.of(rendered.region).id,
            "roles": {k: found[k].to_json() for k in wanted},
        }
        print(json.dumps(doc, indent=2))
        return 0
    out = sys.stdout
    print(
        f"# IAM for pipeline {rendered.name} in {rendered.region} (partition {partition.of(rendered.region).id})",
        file=out,
    )
    for k in wanted:
        role = found[k]
        print(
            f"\n## {k} role: {role.arn or 'any name'} ({role.setting}), assumed by {role.assumed_by}",
            file=out,
        )
        print("### trust policy", file=out)
        print(json.dumps(role.trust, indent=2), file=out)
        print(f"### identity policy ({role.size} of {INLINE_LIMIT} characters of an inline policy)", file=out)
        print(json.dumps(role.policy, indent=2), file=out)
        for note in role.notes:
            print(f"# note: {note}", file=out)
    return 0


# -- monitoring (monitor.schedule: fraudflow/sagemaker/monitoring.py) -----------------------------------------
SCHEDULER = "scheduler.amazonaws.com"


def _monitoring(r: Rendered) -> Any | None:
    from fraudflow.sagemaker.monitoring import MonitoringReconciler

    return next((x for x in r.resources if isinstance(x, MonitoringReconciler)), None)


def monitoring_statements(kind: str, r: Rendered, arns: Arns) -> list[Statement]:
    """What each role needs for the monitoring pipeline and its schedule. The operator may always find and
    remove them (apply removes what the YAML no longer declares); the rest only when a schedule is declared."""
    m = _monitoring(r)
    if m is None:
        return []
    pipeline = arns.sagemaker(f"pipeline/{m.name}")
    declared = bool(m.schedule)
    find_schedule, upsert_schedule = _schedule_statements("Monitoring", m.name, arns, m.target_role(r))
    if kind == "operator":
        st = [
            Statement("FindOrRemoveMonitoringPipeline", ("sagemaker:DeletePipeline", "sagemaker:DescribePipeline"), (pipeline,)),
            *find_schedule,
        ]  # fmt: skip
        if declared:
            uploads = tuple(sorted({arns.s3(r.bucket, u.key.replace(u.sha256, "*")) for u in m.uploads(r)}))
            st += [
                Statement("UploadMonitoringCodeAndConfig", ("s3:GetObject", "s3:PutObject"), uploads),
                Statement("UpsertMonitoringPipeline", ("sagemaker:CreatePipeline", "sagemaker:UpdatePipeline"), (pipeline,)),
                *upsert_schedule,
            ]  # fmt: skip
        return st
    if not declared:
        return []
    if kind == "deployer":
        if m.retrains:
            return [Statement("StartTrainingOnViolation", ("sagemaker:StartPipelineExecution",), (arns.sagemaker(f"pipeline/{r.name}"),))]  # fmt: skip
        return []
    capture_bucket, capture_key = _s3_split(m.capture)
    capture = f"{capture_key.rstrip('/')}/*" if capture_key else "*"
    monitor_out = f"{m.output_prefix(r)}/*"
    st = [
        Statement("ReadCapturedTraffic", ("s3:GetObject",), (arns.s3(capture_bucket, capture),)),
        Statement("ReadMonitoringCodeAndConfig", ("s3:GetObject",), tuple(sorted({arns.s3(r.bucket, u.key) for u in m.uploads(r)}))),
        Statement("WriteMonitoringReports", ("s3:GetObject", "s3:PutObject"), (arns.s3(r.bucket, monitor_out),)),
        *_list_bucket("ListCapturedTraffic", arns, {capture_bucket: {capture}}),
    ]  # fmt: skip
    if m.target_role(r) == r.role_arn:  # the schedule starts the monitoring pipeline as the execution role
        st.append(Statement("ScheduleStartsMonitoring", ("sagemaker:StartPipelineExecution",), (pipeline,)))
    return st


def _schedule_statements(
    label: str, name: str, arns: Arns, role: str
) -> tuple[list[Statement], list[Statement]]:
    """The operator's statements for the schedule `name` that starts a side pipeline: finding and removing it
    (always: apply removes what the YAML no longer declares), and upserting it and passing it `role` (when
    declared)."""
    schedule = partition.arn("scheduler", arns.region, arns.account, f"schedule/default/{name}")
    find = [Statement(f"FindOrRemove{label}Schedule", ("scheduler:DeleteSchedule", "scheduler:GetSchedule"), (schedule,))]  # fmt: skip
    pass_sid = (
        "PassScheduleRoleToScheduler" if label == "Monitoring" else f"Pass{label}ScheduleRoleToScheduler"
    )
    upsert = [
        Statement(f"Upsert{label}Schedule", ("scheduler:CreateSchedule", "scheduler:UpdateSchedule"), (schedule,)),
        _pass_role(pass_sid, [role], SCHEDULER),
    ]  # fmt: skip
    return find, upsert


def monitoring_trust(r: Rendered, trust: dict[str, Any]) -> dict[str, Any]:
    """The execution role's trust, with EventBridge Scheduler when a schedule (monitoring's, or scoring's, which
    always starts its pipeline as the execution role) assumes that role."""
    m, s = _monitoring(r), _scoring(r)
    monitors = m is not None and bool(m.schedule) and m.target_role(r) == r.role_arn
    scores = s is not None and s.declared() and bool(s.schedule)
    if not (monitors or scores):
        return trust
    statement = {**trust["Statement"][0], "Principal": {"Service": [SAGEMAKER, SCHEDULER]}}
    return {**trust, "Statement": [statement]}


# -- batch scoring (deploy.batch: fraudflow/sagemaker/scoring.py) ----------------------------------------------
def _scoring(r: Rendered) -> Any | None:
    from fraudflow.sagemaker.scoring import ScoringReconciler

    return next((x for x in r.resources if isinstance(x, ScoringReconciler)), None)


def scoring_statements(kind: str, r: Rendered, arns: Arns) -> list[Statement]:
    """What each role needs for the scoring pipeline: the operator may always find and remove it; the execution
    role runs its join, model and transform. The deployer's `served_model` reads what deploying already reads."""
    s = _scoring(r)
    if s is None:
        return []
    pipeline = arns.sagemaker(f"pipeline/{s.name}")
    declared = s.declared()
    find_schedule, upsert_schedule = _schedule_statements("Scoring", s.name, arns, r.role_arn)
    if kind == "operator":
        st = [
            Statement("FindOrRemoveScoringPipeline", ("sagemaker:DeletePipeline", "sagemaker:DescribePipeline"), (pipeline,)),
            *find_schedule,
        ]  # fmt: skip
        if declared:
            uploads = tuple(sorted({arns.s3(r.bucket, u.key.replace(u.sha256, "*")) for u in s.uploads(r)}))
            st += [
                Statement("UploadScoringCodeConfigAndData", ("s3:GetObject", "s3:PutObject"), uploads),
                Statement("UpsertScoringPipeline", ("sagemaker:CreatePipeline", "sagemaker:UpdatePipeline"), (pipeline,)),
                *(upsert_schedule if s.schedule else []),
            ]  # fmt: skip
        return st
    if kind != "execution" or not declared:
        return []
    inputs = [_s3_split(u) for u in (s.batch.get("inputs") or {}).values()]
    out_bucket, out_key = _s3_split(str(s.batch["output"]))
    writes = [
        (r.bucket, f"{s.output_prefix()}/*"),
        (out_bucket, f"{out_key.rstrip('/')}/*" if out_key else "*"),
    ]
    listed: dict[str, set[str]] = {}
    for bucket, key in [*((b, f"{k}*") for b, k in inputs), *writes]:
        listed.setdefault(bucket, set()).add(key)
    job = PIPELINE_JOB_PREFIX + "*"
    group = "/aws/sagemaker/TransformJobs"
    return [
        Statement("ReadScoringCodeConfigAndClaims", ("s3:GetObject",), tuple(sorted({arns.s3(r.bucket, u.key) for u in s.uploads(r)} | {arns.s3(b, f"{k}*") for b, k in inputs}))),
        Statement("WriteScoredClaims", ("s3:GetObject", "s3:PutObject"), tuple(sorted(arns.s3(b, k) for b, k in writes))),
        *_list_bucket("ListScoringPrefixes", arns, listed),
        Statement("ScoringTransformJob", ("sagemaker:AddTags", "sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob"), (arns.sagemaker(f"transform-job/{job}"),)),
        *_logs("TransformJobLogs", arns, [group], LOG_GROUP_ACTIONS),
        # deploy.batch.schedule starts the scoring pipeline as the execution role
        *([Statement("ScheduleStartsScoring", ("sagemaker:StartPipelineExecution",), (pipeline,))] if s.schedule else []),
    ]  # fmt: skip
