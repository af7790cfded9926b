"""The deployer the SageMaker pipeline's Lambda step invokes: registered model packages → real-time endpoint.

Serves `deploy.variants` (the `variants` input, a JSON list of {name, weight, model_version}; absent: one
variant `variant_name` serving the newest version). Each variant's package is resolved in the registering
group: `latest` is the package the pipeline just registered (`model_package_arn`), `previous` the version
before it, a number N that version (ARNs end in `/<group>/<version>`; each is checked with
describe_model_package). On the first registration there is no `previous`: that variant's weight goes to the
variant serving `latest` (or, if none does, the variant itself serves `latest`), and the result's `note` says so.
A Rejected version is never served; with `require_approval` every served version must be Approved (otherwise
nothing changes and `reason` says why). `resolve_variants` below is that rule, shared with the local runner.

Creates one model per package version (`<endpoint>-v<version>`), one endpoint config per distinct variant set
(`<endpoint>-v<versions>-<hash of the variants>`), then the endpoint, or points the existing endpoint at the
new config. Every name is derived from what is served, so a retried invocation finds what the first attempt
created and finishes the job instead of duplicating it (idempotent). With `require_approval`, every served
package must be Approved, and a Rejected one is never served; otherwise nothing changes and `reason` names them.

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

With `deploy.when: approved` the pipeline has no Lambda step: an EventBridge rule invokes `handler` with
{"deploy": <these arguments>, "event": <the "SageMaker Model Package State Change" event>}, and
`on_approval_event` deploys an Approved package or rolls a Rejected served one back (see there).

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


def config_name(
    endpoint: str, production_variants: list[dict[str, Any]], capture: dict[str, Any] | None = None
) -> str:
    """<endpoint>-v<versions>-<hash>: one endpoint config per distinct variant set, ≤ 63 characters.

    The hash covers everything the config holds (variant names, models, weights, instance type and count), so
    any change gives a new config (endpoint configs are immutable) and the same set always gives the same name;
    a DataCaptureConfig, when there is one, is hashed with them (without one, names are as they always were).
    """
    hashed: Any = production_variants if capture is None else [production_variants, capture]
    doc = json.dumps(hashed, sort_keys=True, separators=(",", ":"))
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


# ---------------------------------------------------------------------------------------- deploy variants
# The one resolver of `deploy.variants`, for both backends: this Lambda and the local runner (which imports it
# from this file through fraudflow/local/registry.py). Standard library only, so the Lambda's zip ships it.
# Semantics (docs/pipelines-yaml.md, "deploy"):
#   latest    the version this run registered (the newest);
#   previous  the version before it; on the first registration there is none: the variant's weight goes to
#             the variant serving `latest`, or, when none does, the variant itself serves `latest` (a note says so);
#   N         version N, which must be registered;
# then, over every version served: any Rejected one means nothing is deployed (a rejected model never serves
# traffic); with require_approval, any one not Approved means nothing is deployed. `refused` says why.
LATEST, PREVIOUS = "latest", "previous"
APPROVED, REJECTED = "Approved", "Rejected"


class Choice(NamedTuple):
    name: str  # variant name
    version: int
    weight: float


class Resolution(NamedTuple):
    served: list[Choice]  # the variants to serve, a missing `previous`'s weight already moved
    notes: list[str]
    refused: (
        str  # "" to deploy; else why nothing may change (Rejected, or not Approved under require_approval)
    )


def variant_problems(variants: Any) -> list[tuple[int | None, str | None, str]]:
    """The one check of a variant list: (index, field, message) for each problem. pipelines.yaml's semantic
    check reports them (FF507) before anything runs; the resolver refuses a list that has any."""
    if not isinstance(variants, list) or not variants:
        return [(None, None, f"`variants` must be a non-empty list, got {variants!r}")]
    problems: list[tuple[int | None, str | None, str]] = []
    names: list[str] = []
    total = 0.0
    for i, v in enumerate(variants):
        if not isinstance(v, dict) or not isinstance(v.get("name"), str) or not v["name"]:
            problems.append((i, "name", f"variants[{i}] needs a name, got {v!r}"))
            continue
        name = v["name"]
        if name in names:
            problems.append(
                (i, "name", f"variant name {name!r} is used twice (first in variants[{names.index(name)}])")
            )
        names.append(name)
        weight = v.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < float("inf"):
            problems.append(
                (i, "weight", f"variant {name!r}: weight must be a finite number >= 0, got {weight!r}")
            )
        else:
            total += weight
        asked = v.get("model_version", LATEST)
        if _asked_version(asked) is None:
            problems.append(
                (
                    i,
                    "model_version",
                    f"variant {name!r}: model_version must be latest, previous or N >= 1, got {asked!r}",
                )
            )
    if not problems and total <= 0:
        problems.append((None, None, "variant weights sum to 0: no variant would get traffic"))
    return problems


def _asked_version(asked: Any) -> str | int | None:
    """latest | previous | N >= 1 (an int, or its digits as a string: the pipeline passes JSON), else None."""
    if asked in (LATEST, PREVIOUS):
        return str(asked)
    if isinstance(asked, int) and not isinstance(asked, bool):
        return asked if asked >= 1 else None
    if isinstance(asked, str) and asked.strip().isdigit() and int(asked) >= 1:
        return int(asked)
    return None


def resolve_variants(
    variants: list[dict[str, Any]],
    newest: int,
    status_of: Callable[[int], str | None],
    *,
    require_approval: bool = False,
) -> Resolution:
    """Which version each variant serves. `status_of(N)` is version N's approval status, None if not
    registered. Raises DeployError for a bad list or a version that does not exist."""
    problems = variant_problems(variants)
    if problems:
        raise DeployError("; ".join(message for _, _, message in problems))
    picked: list[tuple[Choice, bool]] = []  # (choice, a `previous` with no previous version yet)
    for v in variants:
        name, weight, asked = (
            v["name"],
            float(v.get("weight", 1.0)),
            _asked_version(v.get("model_version", LATEST)),
        )
        if isinstance(asked, int):
            picked.append((Choice(name, asked, weight), False))
        elif asked == PREVIOUS and newest > 1:
            picked.append((Choice(name, newest - 1, weight), False))
        else:  # latest, or a `previous` that does not exist yet
            picked.append((Choice(name, newest, weight), asked == PREVIOUS))
    served, notes = _give_orphans_weight(picked, newest)
    statuses: dict[int, str] = {}
    for c in served:
        if c.version not in statuses:
            status = status_of(c.version)
            if status is None:
                raise DeployError(
                    f"variant {c.name!r} asks for model_version {_asked_text(variants, c.name)}: the group has "
                    f"no version {c.version} (the newest is v{newest})"
                )
            statuses[c.version] = status
    return Resolution(served, notes, _refusal(served, statuses, require_approval))


def _asked_text(variants: list[dict[str, Any]], name: str) -> str:
    return str(next(v.get("model_version", LATEST) for v in variants if v["name"] == name))


def _give_orphans_weight(picked: list[tuple[Choice, bool]], newest: int) -> tuple[list[Choice], list[str]]:
    orphans = [c for c, orphan in picked if orphan]
    heir = next((c for c, orphan in picked if not orphan and c.version == newest), None)
    if heir is None:  # no variant serves latest: the orphans do, under their own names
        notes = [
            f"{o.name}: no version before v{newest} yet, so it serves v{newest} (latest)" for o in orphans
        ]
        return [c for c, _ in picked], notes
    notes = [
        f"{o.name}: no version before v{newest} yet; its weight {o.weight:g} goes to {heir.name} (v{newest})"
        for o in orphans
    ]
    extra = sum(o.weight for o in orphans)
    served = [c._replace(weight=c.weight + extra) if c is heir else c for c, orphan in picked if not orphan]
    return served, notes


def _refusal(served: list[Choice], statuses: dict[int, str], require_approval: bool) -> str:
    def users(version: int) -> str:
        return ", ".join(c.name for c in served if c.version == version)

    rejected = [f"v{v} ({users(v)}) is Rejected" for v, s in statuses.items() if s == REJECTED]
    if rejected:
        return "; ".join(rejected) + ": a rejected version never serves traffic"
    if require_approval:
        pending = [f"v{v} ({users(v)}) is {s}" for v, s in statuses.items() if s != APPROVED]
        if pending:
            return "; ".join(pending) + ", not Approved (deploy.require_approval)"
    return ""


def _variants(event: dict[str, Any]) -> list[dict[str, Any]]:
    raw = event.get("variants")
    if raw in (None, "", []):
        return [{"name": event.get("variant_name") or "AllTraffic", "weight": 1.0, "model_version": LATEST}]
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise DeployError(f"`variants` must be a JSON list, got {raw!r}") from None


def _data_capture(event: dict[str, Any]) -> dict[str, Any] | None:
    """The DataCaptureConfig fraudflow render built from deploy.data_capture (a JSON string), or None."""
    raw = event.get("data_capture")
    if raw in (None, ""):
        return None
    try:
        doc = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or "DestinationS3Uri" not in doc:
        raise DeployError(f"`data_capture` must be a DataCaptureConfig as JSON, got {str(raw)[:200]!r}")
    return doc


def resolve(event: dict[str, Any], sm: Any) -> tuple[list[Served], list[str], str]:
    """The packages to serve, the notes to report, and why nothing may be deployed ("" if it may)."""
    latest = event["model_package_arn"]
    newest = _version(latest)
    if not newest.isdigit():
        raise DeployError(f"model_package_arn must name a versioned package (…/<group>/<N>), got {latest}")
    base = latest.rstrip("/").rsplit("/", 1)[0]  # arn:…:model-package/<group>

    def status_of(version: int) -> str | None:
        found = _exists(sm.describe_model_package, ModelPackageName=f"{base}/{version}")
        return None if found is None else str(found.get("ModelApprovalStatus", ""))

    approval = str(event.get("require_approval", False)).lower() == "true"
    try:
        res = resolve_variants(_variants(event), int(newest), status_of, require_approval=approval)
    except DeployError as exc:
        raise DeployError(f"{exc} in model package group {base.rsplit('/', 1)[-1]!r}") from None
    served = [Served(c.name, f"{base}/{c.version}", str(c.version), c.weight) for c in res.served]
    return served, res.notes, res.refused


def deploy(
    event: dict[str, Any],
    sm: Any,
    *,
    sleep: Callable[[float], None] = time.sleep,
    remaining: Callable[[], float] | None = None,
) -> dict[str, str]:
    remaining = remaining or _budget(None)
    endpoint = event["endpoint_name"]
    served, notes, refused = resolve(event, sm)
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
    capture = _data_capture(event)
    config = config_name(endpoint, production, capture)
    result = {
        "endpoint_name": endpoint,
        "endpoint_config_name": config,
        "model_name": ", ".join(dict.fromkeys(models.values())),
        "variants": ", ".join(f"{s.name}->v{s.version} ({s.weight:g})" for s in served),
    }
    if notes:
        result["note"] = "; ".join(notes)

    if refused:
        return {**result, "action": "skipped", "reason": refused}

    for arn, name in models.items():
        if _exists(sm.describe_model, ModelName=name) is None:
            sm.create_model(
                ModelName=name, ExecutionRoleArn=event["role_arn"], PrimaryContainer={"ModelPackageName": arn}
            )
    if _exists(sm.describe_endpoint_config, EndpointConfigName=config) is None:
        extra = {"DataCaptureConfig": capture} if capture else {}
        _consistent(
            sm.create_endpoint_config,
            sleep,
            EndpointConfigName=config,
            ProductionVariants=production,
            **extra,
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


# ------------------------------------------------------------------------------------ deploy on approval
# With deploy.when: approved the pipeline has no Lambda step: an EventBridge rule on the group's "SageMaker Model
# Package State Change" events (fraudflow/sagemaker/approval_rule.py) invokes this handler with
# {"deploy": <the arguments the Lambda step would get, without model_package_arn>, "event": <the event>}.
STATE_CHANGE = "SageMaker Model Package State Change"


def on_approval_event(
    args: dict[str, Any],
    event: dict[str, Any],
    sm: Any,
    *,
    sleep: Callable[[float], None] = time.sleep,
    remaining: Callable[[], float] | None = None,
) -> dict[str, str]:
    """Approved: deploy that package (`deploy.variants` resolved with it as `latest`, every served version
    Approved). Rejected and served: roll back to the group's newest Approved package, or, with none left, delete
    the endpoint (a rejected model never serves traffic). Any other status, or a package not served: nothing."""
    detail: dict[str, Any] = event["detail"] if isinstance(event.get("detail"), dict) else {}
    arn, status = str(detail.get("ModelPackageArn") or ""), str(detail.get("ModelApprovalStatus") or "")
    if event.get("detail-type") != STATE_CHANGE or not arn:
        raise DeployError(f"not a {STATE_CHANGE} event with a ModelPackageArn: {json.dumps(event)[:300]}")
    decision = {"decision": status, "model_package_arn": arn, **_decided_by(detail, arn, sm)}
    endpoint = args["endpoint_name"]
    if status == APPROVED:
        return {
            **decision,
            **deploy(
                {**args, "model_package_arn": arn, "require_approval": True},
                sm,
                sleep=sleep,
                remaining=remaining,
            ),
        }
    if status != REJECTED:
        return {
            **decision,
            "endpoint_name": endpoint,
            "action": "skipped",
            "reason": f"{status}: nothing to deploy",
        }
    if resource_name(endpoint, arn) not in served_models(sm, endpoint):
        reason = f"v{_version(arn)} is not served by {endpoint}"
        return {**decision, "endpoint_name": endpoint, "action": "unchanged", "reason": reason}
    best = newest_approved(sm, str(detail.get("ModelPackageGroupName") or arn.rsplit("/", 2)[-2]))
    if best is None:
        sm.delete_endpoint(EndpointName=endpoint)
        reason = (
            f"v{_version(arn)} was rejected by {decision['decided_by']} and no version of the group is Approved: "
            f"endpoint {endpoint} deleted; approving a version deploys it again"
        )
        return {**decision, "endpoint_name": endpoint, "action": "stopped", "reason": reason}
    done = deploy(
        {**args, "model_package_arn": best, "require_approval": True}, sm, sleep=sleep, remaining=remaining
    )
    rolled = f"rolled back from v{_version(arn)} (Rejected) to v{_version(best)}, the newest Approved version"
    return {**decision, **done, "note": "; ".join(x for x in (rolled, done.get("note", "")) if x)}


def served_models(sm: Any, endpoint: str) -> set[str]:
    """The model names the endpoint's current config serves (empty when there is no endpoint)."""
    current = _exists(sm.describe_endpoint, EndpointName=endpoint)
    if current is None:
        return set()
    config = sm.describe_endpoint_config(EndpointConfigName=current["EndpointConfigName"])
    return {str(v["ModelName"]) for v in config.get("ProductionVariants", [])}


def newest_approved(sm: Any, group: str) -> str | None:
    """The ARN of the group's Approved package with the highest version, or None."""
    best: tuple[int, str] | None = None
    kwargs: dict[str, Any] = {"ModelPackageGroupName": group, "ModelApprovalStatus": APPROVED}
    while True:
        page = sm.list_model_packages(**kwargs)
        for p in page.get("ModelPackageSummaryList", []):
            version = _version(str(p["ModelPackageArn"]))
            if version.isdigit() and (best is None or int(version) > best[0]):
                best = (int(version), str(p["ModelPackageArn"]))
        if not page.get("NextToken"):
            return None if best is None else best[1]
        kwargs["NextToken"] = page["NextToken"]


def _decided_by(detail: dict[str, Any], arn: str, sm: Any) -> dict[str, str]:
    """Who decided, when, and their note: the event's own fields, else DescribeModelPackage's (LastModifiedBy
    names the IAM principal or the Studio user profile that made the change)."""
    if not detail.get("LastModifiedBy"):
        detail = {**(_exists(sm.describe_model_package, ModelPackageName=arn) or {}), **detail}
    by: dict[str, Any] = detail["LastModifiedBy"] if isinstance(detail.get("LastModifiedBy"), dict) else {}
    identity: dict[str, Any] = by["IamIdentity"] if isinstance(by.get("IamIdentity"), dict) else {}
    who = identity.get("Arn") or by.get("UserProfileName") or by.get("UserProfileArn") or "unknown principal"
    return {
        "decided_by": str(who),
        "decided_at": str(detail.get("LastModifiedTime") or ""),
        "decision_note": str(detail.get("ApprovalDescription") or ""),
    }


def handler(event: dict[str, Any], context: Any = None) -> dict[str, str]:
    if isinstance(event.get("deploy"), dict) and isinstance(
        event.get("event"), dict
    ):  # from the approval rule
        result = on_approval_event(event["deploy"], event["event"], _client(), remaining=_budget(context))
        print(
            json.dumps({"approval": result}, sort_keys=True, default=str)
        )  # the decision, in CloudWatch Logs
        return result
    action = event.get("action")  # the monitoring pipeline's two calls (fraudflow/sagemaker/monitoring.py)
    if action == "baseline":
        return served_baseline(event, _client())
    if action == "start_pipeline":
        return start_pipeline(event, _client())
    if action == "served_model":  # the scoring pipeline's (fraudflow/sagemaker/scoring.py)
        return served_model(event, _client())
    return deploy(event, _client(), remaining=_budget(context))


def served_baseline(event: dict[str, Any], sm: Any) -> dict[str, str]:
    """Where the training execution that produced the endpoint's main variant wrote its outputs: the model
    package's ModelQuality statistics are that execution's evaluation.json (`evaluation_file`, relative to the
    execution's prefix); the baseline, schema and evaluation folders are the given paths under the same prefix."""
    package, variant, described = _served_package(event, sm)
    uri = described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    suffix = "/" + event["evaluation_file"]
    if not uri.endswith(suffix):
        raise DeployError(f"{package}: its ModelQuality statistics {uri} are not a pipeline's {suffix[1:]}")
    prefix = uri[: -len(suffix)]
    out = {"model_package_arn": package, "variant": variant}
    for name in ("baseline", "schema", "evaluation"):
        out[f"{name}_uri"] = f"{prefix}/{event[name]}"
    return out


def _served_package(event: dict[str, Any], sm: Any) -> tuple[str, str, dict[str, Any]]:
    """The model package the endpoint's main variant (the heaviest) serves: (ARN, variant, its description)."""
    endpoint = sm.describe_endpoint(EndpointName=event["endpoint_name"])
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    main = max(config["ProductionVariants"], key=lambda v: float(v.get("InitialVariantWeight", 1.0)))
    model = sm.describe_model(ModelName=main["ModelName"])
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    package = container["ModelPackageName"]
    return package, str(main["VariantName"]), sm.describe_model_package(ModelPackageName=package)


def served_model(event: dict[str, Any], sm: Any) -> dict[str, str]:
    """The scoring pipeline's call (fraudflow/sagemaker/scoring.py): the served package and its model data."""
    package, variant, described = _served_package(event, sm)
    container = described["InferenceSpecification"]["Containers"][0]
    threshold = (container.get("Environment") or {}).get("FRAUDFLOW_DECISION_THRESHOLD")
    if threshold is None:  # every package fraudflow registers has it (compile.py's serving_env)
        raise DeployError(
            f"{package}: its container has no FRAUDFLOW_DECISION_THRESHOLD: not a fraudflow model"
        )
    return {
        "model_package_arn": package,
        "variant": variant,
        "model_data_url": container["ModelDataUrl"],
        "decision_threshold": str(threshold),
    }


def start_pipeline(event: dict[str, Any], sm: Any) -> dict[str, str]:
    """Start the training pipeline (a monitoring pipeline found a violation)."""
    started = sm.start_pipeline_execution(
        PipelineName=event["pipeline_name"],
        PipelineExecutionDisplayName=str(event.get("reason", "monitor-violation"))[:82],
        ClientRequestToken=f"monitor-{event['token']}".ljust(32, "0")[
            :128
        ],  # a retried step starts nothing new
    )
    return {"pipeline_execution_arn": started["PipelineExecutionArn"]}
