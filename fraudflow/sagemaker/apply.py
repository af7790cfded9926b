"""The AWS side of `plan` and `apply`: compare what render produced with what is deployed, then converge.

boto3's standard credential chain; `AWS_ENDPOINT_URL` (and per-service variants) honoured by boto3 itself.
Every botocore failure becomes a located FF7xx UserError: no traceback when AWS is unreachable or says no.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fraudflow.errors import UserError
from fraudflow.sagemaker.compile import LambdaFunction, Rendered, Upload
from fraudflow.sagemaker.diff import diff
from fraudflow.sagemaker.resources import Action, planned_actions

TERMINAL = ("Succeeded", "Failed", "Stopped")


@contextlib.contextmanager
def aws_errors(what: str, file: str | None = None) -> Iterator[None]:
    """Translate botocore's exceptions into fraudflow errors a user can act on."""
    import botocore.exceptions as bx

    endpoint = os.environ.get("AWS_ENDPOINT_URL") or "AWS"
    try:
        yield
    except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError) as exc:
        raise UserError.single(
            "FF710",
            f"{what}: cannot reach {endpoint}: {exc}",
            file=file,
            hint="check the network, AWS_ENDPOINT_URL and the region; nothing was half-applied that a rerun "
            "cannot finish (apply converges)",
        ) from None
    except (bx.NoCredentialsError, bx.PartialCredentialsError) as exc:
        raise UserError.single(
            "FF711",
            f"{what}: no AWS credentials: {exc}",
            file=file,
            hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (boto3's standard chain)",
        ) from None
    except bx.ClientError as exc:
        err = exc.response.get("Error", {})
        if denied(exc):
            action = denied_action(exc)
            raise UserError.single(
                "FF740",
                f"{what}: AWS denied {action}: {_message(exc) or err.get('Code', 'AccessDenied')}",
                file=file,
                hint=f"the credentials running fraudflow need {action} (on the resource named above): "
                "`fraudflow iam --for operator` prints the policy plan/apply need (docs/iam.md)",
            ) from None
        raise UserError.single(
            "FF712",
            f"{what}: AWS said {err.get('Code', '?')}: {err.get('Message', exc)}",
            file=file,
            hint="check the role/bucket names in pipelines.yaml and the caller's IAM permissions",
        ) from None
    except bx.WaiterError as exc:
        raise UserError.single(
            "FF712", f"{what}: did not become ready: {exc}", file=file, hint="rerun apply: it converges"
        ) from None
    except bx.BotoCoreError as exc:
        raise UserError.single("FF710", f"{what}: {exc}", file=file, hint=f"endpoint: {endpoint}") from None


DENIED_CODES = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")
# Operations whose IAM action is not `<service>:<Operation>`, as the Service Authorization Reference lists them.
ACTIONS = {
    "HeadBucket": "s3:ListBucket",
    "HeadObject": "s3:GetObject (or s3:ListBucket: without it S3 answers a missing object with 403)",
}


def _message(exc: Exception) -> str:
    """AWS's error message; the <Message> of an XML body botocore could not parse (emulators send those)."""
    message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", ""))
    m = re.search(r"<Message>(.*?)</Message>", message, re.S)
    return m.group(1) if m else message


def denied(exc: Exception) -> bool:
    """AccessDenied, by its code, or as an HTTP 403 that says so or answers one of S3's HEAD requests (which
    carry no error body)."""
    if _code(exc) in DENIED_CODES:
        return True
    status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status == 403 and ("AccessDenied" in str(exc) or getattr(exc, "operation_name", "") in ACTIONS)


def denied_action(exc: Exception) -> str:
    """The IAM action AWS refused: named in the message ("… is not authorized to perform: sagemaker:CreatePipeline
    on resource …"), else the action the operation needs (S3's HEAD requests answer a bare 403)."""
    m = re.search(r"perform:? ([a-z0-9-]+:[A-Za-z0-9*]+)", _message(exc))
    if m:
        return m.group(1)
    op = str(getattr(exc, "operation_name", "") or "")
    return ACTIONS.get(op, f"the {op or 'requested'} call")


class Clients:
    def __init__(self, region: str):
        import boto3
        from botocore.config import Config

        # Short connect timeout and few retries: an unreachable endpoint should fail in seconds, not minutes.
        cfg = Config(
            region_name=region,
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
        )
        session = boto3.session.Session(region_name=region)
        self.s3 = session.client("s3", config=cfg)
        self.sagemaker = session.client("sagemaker", config=cfg)
        self.lambda_ = session.client("lambda", config=cfg)
        self._session, self._cfg = session, cfg
        self._more: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        """Any other service's client (events, apigateway, scheduler, iam, ...), made once on first use."""
        if service not in self._more:
            self._more[service] = self._session.client(service, config=self._cfg)
        return self._more[service]


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


@dataclass
class Changes:
    uploads: list[Upload] = field(default_factory=list)
    lambda_action: str | None = (
        None  # create | update code | update configuration | update code and configuration
    )
    pipeline_action: str | None = None  # create | update
    deployed: dict[str, Any] | None = None
    lines: list[str] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)  # resources beside the pipeline (resources.py)

    @property
    def empty(self) -> bool:
        return not self.uploads and not self.lambda_action and not self.pipeline_action and not self.actions


def check_bucket(c: Clients, r: Rendered) -> None:
    import botocore.exceptions as bx

    with aws_errors(f"bucket {r.bucket}", r.file):
        try:
            c.s3.head_bucket(Bucket=r.bucket)
        except bx.ClientError as exc:
            if _code(exc) in ("404", "NoSuchBucket", "NotFound"):
                raise UserError.single(
                    "FF713",
                    f"S3 bucket {r.bucket!r} does not exist",
                    file=r.file,
                    path="sagemaker.bucket",
                    hint=f"create it first (aws s3 mb s3://{r.bucket} --region {r.region}) or set "
                    "FRAUDFLOW_BUCKET / sagemaker.bucket; apply does not create buckets",
                ) from None
            raise


def missing_uploads(c: Clients, r: Rendered) -> list[Upload]:
    """Content-hashed keys: an object that exists already holds exactly these bytes."""
    import botocore.exceptions as bx

    missing = []
    with aws_errors(f"s3://{r.bucket}", r.file):
        for u in r.uploads:
            try:
                c.s3.head_object(Bucket=r.bucket, Key=u.key)
            except bx.ClientError as exc:
                if _code(exc) not in ("404", "NoSuchKey", "NotFound"):
                    raise
                missing.append(u)
    return missing


def _code_sha(fn: LambdaFunction) -> str:
    return base64.b64encode(hashlib.sha256(fn.code.read()).digest()).decode()


def lambda_action(c: Clients, fn: LambdaFunction | None, file: str | None = None) -> str | None:
    import botocore.exceptions as bx

    if fn is None:
        return None
    with aws_errors(f"Lambda function {fn.name}"):
        try:
            conf = c.lambda_.get_function(FunctionName=fn.name)["Configuration"]
        except bx.ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return "create"
            raise
    code = conf.get("CodeSha256") != _code_sha(fn)
    config = (conf.get("Role"), conf.get("Handler"), conf.get("Runtime"), conf.get("Timeout")) != (
        fn.role_arn,
        fn.handler,
        fn.runtime,
        fn.timeout,
    )
    parts = [w for w, changed in (("code", code), ("configuration", config)) if changed]
    return "update " + " and ".join(parts) if parts else None


def deployed_definition(c: Clients, name: str, file: str | None = None) -> str | None:
    import botocore.exceptions as bx

    with aws_errors(f"pipeline {name}", file):
        try:
            return c.sagemaker.describe_pipeline(PipelineName=name)["PipelineDefinition"]
        except bx.ClientError as exc:
            text = str(exc).lower()
            if _code(exc) == "ResourceNotFound" or "could not find" in text or "does not exist" in text:
                return None
            raise


def changes(c: Clients, r: Rendered) -> Changes:
    check_bucket(c, r)
    ch = Changes(uploads=missing_uploads(c, r), lambda_action=lambda_action(c, r.lambda_function, r.file))
    text = deployed_definition(c, r.name, r.file)
    if text is None:
        ch.pipeline_action = "create"
    else:
        try:
            ch.deployed = json.loads(text)
        except ValueError:
            ch.deployed = {}
        if text != r.text:
            ch.pipeline_action = "update"
    ch.lines = [f"+ upload s3://{r.bucket}/{u.key} ({u.what})" for u in ch.uploads]
    if ch.lambda_action and r.lambda_function:  # an action only for a function the definition has
        ch.lines.append(
            f"{'+' if ch.lambda_action == 'create' else '~'} Lambda {r.lambda_function.name}: "
            f"{ch.lambda_action}"
        )
    if ch.pipeline_action:
        step_lines = diff(ch.deployed, r.definition)
        if ch.pipeline_action == "update" and not step_lines:
            step_lines = ["~ definition text (formatting only)"]
        ch.lines.append(
            f"{'+' if ch.pipeline_action == 'create' else '~'} pipeline {r.name}: {ch.pipeline_action}"
        )
        ch.lines += ["    " + x for x in step_lines]
    ch.actions = planned_actions(c, r)
    ch.lines += [f"{a.symbol} {a.line}" for a in ch.actions]
    return ch


def converge(c: Clients, r: Rendered, ch: Changes, out: Any = None) -> None:
    """Apply the changes in dependency order: objects, then the Lambda (its code is in S3), then the pipeline."""
    out = out or sys.stdout  # looked up per call: sys.stdout may have been replaced since import
    for u in ch.uploads:
        with aws_errors(f"upload s3://{r.bucket}/{u.key}", r.file):
            c.s3.put_object(Bucket=r.bucket, Key=u.key, Body=u.read())
        print(f"uploaded s3://{r.bucket}/{u.key}", file=out)
    fn = r.lambda_function
    if fn and ch.lambda_action:
        with aws_errors(f"Lambda function {fn.name}", r.file):
            if ch.lambda_action == "create":
                c.lambda_.create_function(
                    FunctionName=fn.name,
                    Runtime=fn.runtime,
                    Role=fn.role_arn,
                    Handler=fn.handler,
                    Code={"S3Bucket": r.bucket, "S3Key": fn.code.key},
                    Timeout=fn.timeout,
                    Description=f"fraudflow deployer for pipeline {r.name}",
                )
                _wait_lambda(c, fn.name, "function_active_v2")
            else:
                if "code" in ch.lambda_action:
                    c.lambda_.update_function_code(FunctionName=fn.name, S3Bucket=r.bucket, S3Key=fn.code.key)
                    # Lambda refuses a second update while the first is in progress (ResourceConflictException).
                    _wait_lambda(c, fn.name, "function_updated_v2")
                if "configuration" in ch.lambda_action:
                    c.lambda_.update_function_configuration(
                        FunctionName=fn.name,
                        Role=fn.role_arn,
                        Handler=fn.handler,
                        Runtime=fn.runtime,
                        Timeout=fn.timeout,
                    )
        print(
            f"Lambda {fn.name}: {ch.lambda_action}d"
            if ch.lambda_action == "create"
            else f"Lambda {fn.name}: {ch.lambda_action} done",
            file=out,
        )
    if ch.pipeline_action:
        args: dict[str, Any] = {"PipelineName": r.name, "PipelineDefinition": r.text, "RoleArn": r.role_arn}
        if r.description:
            args["PipelineDescription"] = r.description[:3072]
        with aws_errors(f"pipeline {r.name}", r.file):
            if ch.pipeline_action == "create":
                if r.tags:
                    args["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(r.tags.items())]
                arn = c.sagemaker.create_pipeline(**args)["PipelineArn"]
            else:
                arn = c.sagemaker.update_pipeline(**args)["PipelineArn"]
        print(f"pipeline {r.name}: {ch.pipeline_action}d ({arn})", file=out)
    for action in ch.actions:
        action.run(c)
        print(f"{action.line}: done", file=out)


def _wait_lambda(c: Clients, name: str, waiter: str) -> None:
    c.lambda_.get_waiter(waiter).wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})


def typed_params(r: Rendered, items: list[str]) -> list[dict[str, str]]:
    """--param NAME=VALUE, checked against the definition's parameters and typed by their type."""
    declared = {p["Name"]: p for p in r.definition.get("Parameters", [])}
    out = []
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or name not in declared:
            raise UserError.single(
                "FF715",
                f"--param {item!r}: " + ("expected NAME=VALUE" if not sep else f"unknown parameter {name!r}"),
                file="<command line>",
                hint="parameters: " + (", ".join(declared) or "none (declare them under `parameters:`)"),
            )
        kind = declared[name]["Type"]
        try:
            if kind == "Integer":
                raw = str(int(raw))
            elif kind == "Float":
                raw = repr(float(raw))
            elif kind == "Boolean":
                if raw.lower() not in ("true", "false"):
                    raise ValueError(raw)
                raw = raw.lower()
        except ValueError:
            raise UserError.single(
                "FF715", f"--param {item!r}: {name} is {kind}, not {raw!r}", file="<command line>"
            ) from None
        out.append({"Name": name, "Value": raw})
    return out


def start(c: Clients, r: Rendered, params: list[dict[str, str]], out: Any = None) -> str:
    out = out or sys.stdout
    with aws_errors(f"start pipeline {r.name}", r.file):
        arn = c.sagemaker.start_pipeline_execution(
            PipelineName=r.name,
            PipelineParameters=params,
            PipelineExecutionDisplayName=f"fraudflow-{int(time.time())}",
        )["PipelineExecutionArn"]
    shown = ", ".join(f"{p['Name']}={p['Value']}" for p in params) or "defaults"
    print(f"started execution {arn} (parameters: {shown})", file=out)
    return arn


def wait(c: Clients, arn: str, out: Any = None, poll_s: float | None = None) -> str:
    """Follow an execution until it ends, printing each status and step change with the elapsed time."""
    out = out or sys.stdout
    import botocore.exceptions as bx

    poll = poll_s if poll_s is not None else float(os.environ.get("FRAUDFLOW_POLL_S", "15"))
    t0, last = time.monotonic(), None
    seen_steps: dict[str, Any] = {}
    steps_supported = True
    while True:
        with aws_errors("describe pipeline execution"):
            desc = c.sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
        status = desc["PipelineExecutionStatus"]
        if steps_supported:
            try:
                for s in c.sagemaker.list_pipeline_execution_steps(PipelineExecutionArn=arn)[
                    "PipelineExecutionSteps"
                ]:
                    key = s["StepName"]
                    if seen_steps.get(key) != s["StepStatus"]:
                        seen_steps[key] = s["StepStatus"]
                        print(f"  [{time.monotonic() - t0:6.0f}s] step {key}: {s['StepStatus']}", file=out)
            except (bx.ClientError, bx.BotoCoreError):
                steps_supported = False  # e.g. an emulator without the API: report the execution only
        if status != last:
            print(f"[{time.monotonic() - t0:6.0f}s] execution {status}", file=out, flush=True)
            last = status
        if status in TERMINAL:
            if status != "Succeeded":
                raise UserError.single(
                    "FF716",
                    f"pipeline execution {status}: {desc.get('FailureReason') or 'no reason given'}",
                    hint=f"aws sagemaker list-pipeline-execution-steps --pipeline-execution-arn {arn}",
                )
            return status
        time.sleep(poll)
