"""The deployer the SageMaker pipeline's Lambda step invokes: registered model packages → real-time endpoint.

Serves `deploy.variants` (the `variants` input, a JSON list of {name, weight, model_version}; absent: one
variant `variant_name` serving the newest version). Each variant's package is resolved in the registering
group: `latest` is the package the pipeline just registered (`model_package_arn`), `previous` the version
before it, a number N that version (ARNs end in `/<group>/<version>`; each is checked with
describe_model_package). On the first registration there is no `previous`: that variant's weight goes to the
variant serving `latest` (or, if none does, the variant itself serves `latest`), and the result's `note` says so.

Creates one model per package version (`<endpoint>-v<version>`), one endpoint config per distinct variant set
(`<endpoint>-v<versions>-<hash of the variants>`), then the endpoint, or points the existing endpoint at the
new config. Every name is derived from what is served, so a retried invocation finds what the first attempt
created and finishes the job instead of duplicating it (idempotent). With `require_approval`, every served
package must be Approved; otherwise nothing changes and `reason` names the ones that are not.

It returns only once the endpoint is InService with the new config, so the pipeline's Succeeded means the
endpoint serves what it says. Each endpoint state is handled (see `converge`): a missing endpoint is created,
an InService one updated; Creating, Updating, SystemUpdating, RollingBack and Deleting are waited out; a Failed
endpoint serves nothing and only DeleteEndpoint works on it, so it is deleted and created again;
UpdateRollbackFailed (serving a mix of configs) and OutOfService fail the step with what to do. A create or
update this invocation started that ends Failed or rolled back fails the step with SageMaker's FailureReason.
The wait is bounded by the Lambda's remaining time (the function timeout is 900 s, Lambda's maximum): past it
the step fails saying the endpoint is still in transition, and a retry of the execution resumes the wait.

Returns what it did, as the step's OutputParameters (strings): action (created | updated | recreated |
unchanged | skipped), endpoint_name, endpoint_config_name, model_name (the models served, comma-separated),
variants (e.g. "A->v2 (0.9), B->v1 (0.1)"), and `note` / `reason` when there is something to say.

Self-contained like all step_code: only the standard library and boto3 (which the Lambda runtime provides).
boto3 honours AWS_ENDPOINT_URL, which the tests point at moto.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from typing import Any, NamedTuple

# Endpoint states that end by themselves: wait. (Deleting ends with the endpoint gone: then it is created.)
TRANSITIONAL = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
MAX_NAME = 63
POLL_S = 15.0  # between DescribeEndpoint calls (SageMaker's own endpoint_in_service waiter polls every 30 s)
MARGIN_S = 20.0  # stop waiting this long before the Lambda's timeout, to return a clear message instead
CONSISTENCY_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0)  # retries of a call that cannot see what was just created


class DeployError(ValueError):
    """A variant asks for something that cannot be served (a version that does not exist, a bad value)."""


class EndpointError(RuntimeError):
    """The endpoint did not reach InService with the new config; the message says why and what to do."""


class Served(NamedTuple):
    name: str  # variant name
    arn: str  # model package ARN
    version: str
    weight: float


def _client() -> Any:
    import boto3

    return boto3.client("sagemaker")


def _error(exc: Exception) -> tuple[str, str]:
    err = getattr(exc, "response", {}).get("Error", {})
    return str(err.get("Code", "")), str(err.get("Message", ""))


def _missing(exc: Exception) -> bool:
    """SageMaker reports a missing model/config/endpoint as a ValidationException 'Could not find ...'."""
    code, message = _error(exc)
    text = f"{code} {message}".lower()
    return "could not find" in text or "does not exist" in text or "not found" in text


def _not_visible_yet(exc: Exception) -> bool:
    """CreateEndpoint/UpdateEndpoint right after CreateEndpointConfig (or a config right after CreateModel) can
    fail with `ValidationException: Could not find endpoint configuration "arn:…"` (or `Could not find model`):
    SageMaker's reads are eventually consistent. Retrying after a pause is the remedy."""
    code, message = _error(exc)
    return code == "ValidationException" and message.startswith("Could not find")


def _consistent(call: Callable[..., Any], sleep: Callable[[float], None], **kwargs: Any) -> Any:
    for delay in (*CONSISTENCY_DELAYS, None):
        try:
            return call(**kwargs)
        except Exception as exc:
            if delay is None or not _not_visible_yet(exc):
                raise
            sleep(delay)
    raise AssertionError("unreachable")


def _version(package_arn: str) -> str:
    return package_arn.rstrip("/").rsplit("/", 1)[-1]


def resource_name(endpoint: str, package_arn: str) -> str:
    """<endpoint>-v<version>: one model per registered version, ≤ 63 characters."""
    version = _version(package_arn)
    suffix = f"-v{version}" if version.isdigit() else "-" + re.sub(r"[^a-zA-Z0-9-]", "-", version)[-20:]
    return (endpoint[: MAX_NAME - len(suffix)] + suffix).strip("-")


def config_name(endpoint: str, production_variants: list[dict[str, Any]]) -> str:
    """<endpoint>-v<versions>-<hash>: one endpoint config per distinct variant set, ≤ 63 characters.

    The hash covers everything the config holds (variant names, models, weights, instance type and count), so
    any change gives a new config (endpoint configs are immutable) and the same set always gives the same name.
    """
    doc = json.dumps(production_variants, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(doc.encode()).hexdigest()[:8]
    versions = [v["ModelName"].rsplit("-", 1)[-1] for v in production_variants]
    readable = "-".join(dict.fromkeys(versions))
    suffix = f"-{readable}-{digest}" if len(readable) <= 24 else f"-{digest}"
    return (endpoint[: MAX_NAME - len(suffix)] + suffix).strip("-")


def _exists(describe: Any, **kwargs: Any) -> dict | None:
    try:
        return describe(**kwargs)
    except Exception as exc:  # botocore ClientError; no botocore import needed to recognise it
        if _missing(exc):
            return None
        raise


def _weight(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DeployError(f"variant weight {value!r} is not a number") from None


def _variants(event: dict[str, Any]) -> list[dict[str, Any]]:
    raw = event.get("variants")
    if raw in (None, "", []):
        return [{"name": event.get("variant_name") or "AllTraffic", "weight": 1.0, "model_version": "latest"}]
    variants = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(variants, list) or not variants:
        raise DeployError(f"`variants` must be a non-empty JSON list, got {raw!r}")
    return variants


def resolve(event: dict[str, Any], sm: Any) -> tuple[list[Served], list[str], dict[str, dict]]:
    """The packages to serve, the notes to report, and the describe_model_package answers fetched on the way."""
    latest = event["model_package_arn"]
    newest = _version(latest)
    parts = latest.rstrip("/").split("/")  # arn:…:model-package/<group>/<version>
    base, group = "/".join(parts[:-1]), parts[-2] if len(parts) > 2 else "?"
    described: dict[str, dict] = {}

    def package(version: int, variant: str, asked: str) -> str:
        arn = f"{base}/{version}"
        if arn not in described:
            found = _exists(sm.describe_model_package, ModelPackageName=arn)
            if found is None:
                raise DeployError(
                    f"variant {variant!r} asks for model_version {asked}: model package group {group!r} has no "
                    f"version {version} ({arn} does not exist; the newest is v{newest})"
                )
            described[arn] = found
        return arn

    served: list[tuple[Served, bool]] = []  # (variant, is a `previous` with no previous version yet)
    for v in _variants(event):
        name, asked = str(v["name"]), str(v.get("model_version", "latest")).strip()
        weight = _weight(v.get("weight", 1.0))
        if asked == "latest":
            served.append((Served(name, latest, newest, weight), False))
            continue
        if not newest.isdigit():
            raise DeployError(
                f"variant {name!r}: model_version {asked} needs a versioned package, got {latest}"
            )
        if asked == "previous":
            if int(newest) <= 1:
                served.append((Served(name, latest, newest, weight), True))
                continue
            number = int(newest) - 1
        elif asked.isdigit() and int(asked) >= 1:
            number = int(asked)
        else:
            raise DeployError(
                f"variant {name!r}: model_version must be latest, previous or N ≥ 1, got {asked!r}"
            )
        served.append((Served(name, package(number, name, asked), str(number), weight), False))

    orphans = [s for s, orphan in served if orphan]
    heir = next((s for s, orphan in served if not orphan and s.arn == latest), None)
    if heir is None:  # no variant serves latest: the orphans do, under their own names
        notes = [
            f"{o.name}: no version before v{newest} yet, so it serves v{newest} (latest)" for o in orphans
        ]
        return [s for s, _ in served], notes, described
    notes = [
        f"{o.name}: no version before v{newest} yet; its weight {o.weight:g} goes to {heir.name} (v{newest})"
        for o in orphans
    ]
    extra = sum(o.weight for o in orphans)
    out = [
        Served(s.name, s.arn, s.version, s.weight + extra) if s is heir else s
        for s, orphan in served
        if not orphan
    ]
    return out, notes, described


def deploy(
    event: dict[str, Any],
    sm: Any,
    *,
    sleep: Callable[[float], None] = time.sleep,
    remaining: Callable[[], float] | None = None,
) -> dict[str, str]:
    remaining = remaining or _budget(None)
    endpoint = event["endpoint_name"]
    served, notes, described = resolve(event, sm)
    models = {s.arn: resource_name(endpoint, s.arn) for s in served}
    production = [
        {
            "VariantName": s.name,
            "ModelName": models[s.arn],
            "InstanceType": event["instance_type"],
            "InitialInstanceCount": int(event.get("instance_count", 1)),
            "InitialVariantWeight": float(s.weight),
        }
        for s in served
    ]
    config = config_name(endpoint, production)
    result = {
        "endpoint_name": endpoint,
        "endpoint_config_name": config,
        "model_name": ", ".join(dict.fromkeys(models.values())),
        "variants": ", ".join(f"{s.name}->v{s.version} ({s.weight:g})" for s in served),
    }
    if notes:
        result["note"] = "; ".join(notes)

    if str(event.get("require_approval", False)).lower() == "true":
        refused = []
        for arn in dict.fromkeys(s.arn for s in served):
            if arn not in described:
                described[arn] = sm.describe_model_package(ModelPackageName=arn)
            status = described[arn].get("ModelApprovalStatus")
            if status != "Approved":
                users = ", ".join(s.name for s in served if s.arn == arn)
                refused.append(f"v{_version(arn)} ({users}) is {status}")
        if refused:
            reason = "; ".join(refused) + ", not Approved (deploy.require_approval)"
            return {**result, "action": "skipped", "reason": reason}

    for arn, name in models.items():
        if _exists(sm.describe_model, ModelName=name) is None:
            sm.create_model(
                ModelName=name, ExecutionRoleArn=event["role_arn"], PrimaryContainer={"ModelPackageName": arn}
            )
    if _exists(sm.describe_endpoint_config, EndpointConfigName=config) is None:
        _consistent(
            sm.create_endpoint_config, sleep, EndpointConfigName=config, ProductionVariants=production
        )
    action, events = converge(sm, endpoint, config, sleep, remaining)
    if events:
        result["note"] = "; ".join([*notes, *events])
    return {**result, "action": action}


class _Attempt:
    """What this invocation did to the endpoint, so its own failure is reported instead of retried forever."""

    def __init__(self) -> None:
        self.created = self.updated = self.deleted = False
        self.moved = False  # the endpoint left InService after our update (so InService again means: done)

    @property
    def action(self) -> str:
        if self.deleted:
            return "recreated"
        return "created" if self.created else "updated" if self.updated else "unchanged"


def converge(
    sm: Any, endpoint: str, config: str, sleep: Callable[[float], None], remaining: Callable[[], float]
) -> tuple[str, list[str]]:
    """Drive the endpoint to InService serving `config`; returns (action, notes). Raises EndpointError."""
    did = _Attempt()
    events: list[str] = []
    while True:
        current = _exists(sm.describe_endpoint, EndpointName=endpoint)
        status = None if current is None else current.get("EndpointStatus")
        reason = "" if current is None else current.get("FailureReason") or "no FailureReason given"
        if current is None:
            # (a just-created endpoint may not be visible yet: then wait)
            did.created = did.created or _create(sm, endpoint, config, sleep)
        elif status == "InService":
            if current.get("EndpointConfigName") == config:
                return did.action, events
            if did.updated and not did.moved:
                pass  # DescribeEndpoint has not caught up with UpdateEndpoint yet: look again
            elif did.updated:
                raise EndpointError(
                    f"endpoint {endpoint}: the update to {config} was rolled back, it still serves "
                    f"{current.get('EndpointConfigName')} ({reason}). Fix the cause (CloudWatch log group "
                    f"/aws/sagemaker/Endpoints/{endpoint}), then retry the pipeline execution"
                )
            elif _update(sm, endpoint, config, sleep):
                did.updated = True
        elif status == "Failed":
            if did.created or did.updated:
                raise EndpointError(
                    f"endpoint {endpoint} failed with {config}: {reason}. Fix the cause (CloudWatch log group "
                    f"/aws/sagemaker/Endpoints/{endpoint}), then retry the pipeline execution: the deployer "
                    "deletes the Failed endpoint and creates it again"
                )
            if not did.deleted:  # only DeleteEndpoint works on a Failed endpoint; it serves no traffic
                sm.delete_endpoint(EndpointName=endpoint)
                did.deleted = True
                events.append(f"deleted the Failed endpoint ({reason}) to create it again")
        elif status == "UpdateRollbackFailed":
            raise EndpointError(
                f"endpoint {endpoint} is UpdateRollbackFailed ({reason}): it may serve a mix of endpoint configs, "
                "so the deployer does not touch it. Inspect it (aws sagemaker describe-endpoint --endpoint-name "
                f"{endpoint}), then either point it at a config by hand (aws sagemaker update-endpoint "
                f"--endpoint-name {endpoint} --endpoint-config-name {config}) or delete it (aws sagemaker "
                f"delete-endpoint --endpoint-name {endpoint}), and retry the pipeline execution"
            )
        elif status in TRANSITIONAL:
            did.moved = did.moved or did.updated
            if not (did.created or did.updated or did.deleted or events):
                events.append(f"waited for the endpoint, found {status}")
        else:
            raise EndpointError(
                f"endpoint {endpoint} is {status} ({reason}): the deployer only acts on InService, Failed or "
                "missing endpoints. Check it in the SageMaker console, then retry the pipeline execution"
            )
        left = remaining()
        if left <= 0:
            raise EndpointError(
                f"endpoint {endpoint} is still {status or 'not visible'} and the Lambda's time is up; SageMaker "
                f"carries on with it. Retry the pipeline execution (aws sagemaker retry-pipeline-execution): the "
                "deployer is idempotent and waits again until it is InService with " + config
            )
        sleep(min(POLL_S, left))


def _create(sm: Any, endpoint: str, config: str, sleep: Callable[[float], None]) -> bool:
    """CreateEndpoint; False when another caller created it first (the loop then looks again)."""
    try:
        _consistent(sm.create_endpoint, sleep, EndpointName=endpoint, EndpointConfigName=config)
    except Exception as exc:
        if "already existing" in _error(exc)[1]:
            return False
        raise
    return True


def _update(sm: Any, endpoint: str, config: str, sleep: Callable[[float], None]) -> bool:
    """UpdateEndpoint; False when SageMaker refuses it mid-transition (the loop then waits)."""
    try:
        _consistent(sm.update_endpoint, sleep, EndpointName=endpoint, EndpointConfigName=config)
    except Exception as exc:
        code, message = _error(exc)
        if code == "ValidationException" and "in-progress" in message.lower():
            return False
        raise
    return True


def _budget(context: Any, default_s: float = 840.0) -> Callable[[], float]:
    """Seconds left to wait: the Lambda's remaining time minus a margin (without a context, `default_s`)."""
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        return lambda: context.get_remaining_time_in_millis() / 1000.0 - MARGIN_S
    end = time.monotonic() + default_s
    return lambda: end - time.monotonic()


def handler(event: dict[str, Any], context: Any = None) -> dict[str, str]:
    return deploy(event, _client(), remaining=_budget(context))
