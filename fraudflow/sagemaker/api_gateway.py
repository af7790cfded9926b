"""`deploy.api` on SageMaker: an API Gateway REST API in front of the endpoint, converged beside the pipeline.

One REST API named after the endpoint, with one `POST /invocations` whose AWS service integration calls SageMaker
runtime's InvokeEndpoint directly (no Lambda in the request path) under `deploy.api.role_arn`; a stage throttled
as declared; for `auth: api_key` a usage plan (throttle, quota) and an API key linked to it. Bodies and content
types pass through unchanged, so the API accepts exactly what the endpoint accepts.

Everything it creates carries the tag `fraudflow:pipeline=<pipeline>`: removal finds what the YAML no longer
declares (the API, or its usage plan and key when auth becomes iam) by that tag, never by a name alone. Each
action looks up the ids it needs when it runs, so actions of one apply can build on each other.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fraudflow.sagemaker import partition
from fraudflow.sagemaker.resources import Action

if TYPE_CHECKING:
    from fraudflow.plan import Plan
    from fraudflow.sagemaker.apply import Clients
    from fraudflow.sagemaker.compile import Rendered

TAG = "fraudflow:pipeline"  # its value: the SageMaker pipeline that owns the object
PATH = "invocations"
# Headers that pass through in both directions: the endpoint picks its decoder by Content-Type, its encoder by Accept.
REQUEST_HEADERS = ("Content-Type", "Accept")
# SageMaker's status → the method's (a non-proxy integration cannot pass a status through): the bodies still do.
RESPONSES = {"200": None, "400": "4\\d{2}", "500": "5\\d{2}"}
ORDER = 200  # after the pipeline and its Lambda; removals first, so a renamed API never meets its predecessor


@dataclass(frozen=True)
class Declared:
    """What `deploy.api` asks for, resolved: names, the integration URI and the role."""

    name: str  # the REST API's, usage plan's and API key's name: the endpoint's
    endpoint: str
    region: str
    auth: str  # api_key | iam
    stage: str
    rate: float
    burst: int
    quota: dict[str, Any] | None
    role_arn: str

    @property
    def uri(self) -> str:
        return f"arn:{partition.of(self.region).id}:apigateway:{self.region}:runtime.sagemaker:path/endpoints/{self.endpoint}/invocations"

    @property
    def api_key(self) -> bool:
        return self.auth == "api_key"

    def method(self) -> dict[str, Any]:
        """The method and its integration, as get_method answers them (what drift is measured against)."""
        return {
            "authorizationType": "NONE" if self.api_key else "AWS_IAM",
            "apiKeyRequired": self.api_key,
            "requestParameters": {f"method.request.header.{h}": False for h in REQUEST_HEADERS},
            "integration": {
                "type": "AWS",
                "httpMethod": "POST",
                "uri": self.uri,
                "credentials": self.role_arn,
                "passthroughBehavior": "WHEN_NO_MATCH",
                "requestParameters": {
                    f"integration.request.header.{h}": f"method.request.header.{h}" for h in REQUEST_HEADERS
                },
                "responses": {code: pattern or "" for code, pattern in RESPONSES.items()},
            },
        }

    def plan_throttle(self) -> dict[str, Any]:
        return {"rateLimit": float(self.rate), "burstLimit": int(self.burst)}

    def plan_quota(self) -> dict[str, Any] | None:
        return {"limit": int(self.quota["limit"]), "period": self.quota["period"]} if self.quota else None

    def describe_limits(self) -> str:
        quota = f", quota {self.quota['limit']}/{self.quota['period']}" if self.quota else ""
        return f"throttle {self.rate:g}/s burst {self.burst}{quota}"


def declared(plan: Plan, context: dict[str, Any]) -> Declared | None:
    deploy: dict[str, Any] = dict(plan.spec.config.get("deploy") or {})
    api = deploy.get("api")
    if not api:
        return None
    if not api.get("role_arn"):  # validate reports it first (FF585); this guards a spec built in code
        from fraudflow.errors import UserError

        raise UserError.single(
            "FF780",
            f"pipeline {plan.name!r} declares deploy.api, but no role for API Gateway to call the endpoint with",
            file=str(plan.spec.file),
            path=f"pipelines.{plan.name}.deploy.api.role_arn",
            hint="set deploy.api.role_arn; `fraudflow iam --for api` prints its policies",
        )
    throttle = api["throttle"]
    return Declared(
        name=deploy["endpoint_name"],
        endpoint=deploy["endpoint_name"],
        region=context["region"],
        auth=api.get("auth", "api_key"),
        stage=api.get("stage", "prod"),
        rate=float(throttle["rate"]),
        burst=int(throttle["burst"]),
        quota=dict(api["quota"]) if api.get("quota") else None,
        role_arn=api["role_arn"],
    )


def reconciler(plan: Plan, context: dict[str, Any]) -> ApiGateway:
    """Always one: with nothing declared it still removes what an earlier apply created for this pipeline."""
    return ApiGateway(declared(plan, context), context["pipeline_name"], str(plan.spec.file))


# -- what exists ----------------------------------------------------------------------------------------------
@dataclass
class Observed:
    apis: list[dict[str, Any]] = field(default_factory=list)  # this pipeline's REST APIs
    plans: list[dict[str, Any]] = field(default_factory=list)  # its usage plans
    keys: list[dict[str, Any]] = field(default_factory=list)  # its API keys
    method: dict[str, Any] | None = (
        None  # the declared API's POST /invocations, as declared.method() shapes it
    )
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)  # the declared API's stages by name
    linked: set[str] = field(default_factory=set)  # ids of the keys linked to the declared usage plan

    def named(self, kind: str, name: str) -> dict[str, Any] | None:
        return next((o for o in getattr(self, kind) if o.get("name") == name), None)


def _pages(call: Callable[..., dict[str, Any]], **kwargs: Any) -> Iterator[dict[str, Any]]:
    position = None
    while True:
        page = call(**kwargs, **({"position": position} if position else {}), limit=500)
        yield from page.get("items", [])
        position = page.get("position")
        if not position:
            return


def _ours(items: Iterator[dict[str, Any]], pipeline: str) -> list[dict[str, Any]]:
    return [i for i in items if (i.get("tags") or {}).get(TAG) == pipeline]


def _resource(gw: Any, api_id: str) -> dict[str, Any] | None:
    return next((r for r in _pages(gw.get_resources, restApiId=api_id) if r.get("path") == f"/{PATH}"), None)


def _method_shape(m: dict[str, Any]) -> dict[str, Any]:
    integration = m.get("methodIntegration") or {}
    return {
        "authorizationType": m.get("authorizationType"),
        "apiKeyRequired": bool(m.get("apiKeyRequired")),
        "requestParameters": m.get("requestParameters") or {},
        "integration": {
            "type": integration.get("type"),
            "httpMethod": integration.get("httpMethod"),
            "uri": integration.get("uri"),
            "credentials": integration.get("credentials"),
            "passthroughBehavior": integration.get("passthroughBehavior"),
            "requestParameters": integration.get("requestParameters") or {},
            "responses": {
                code: r.get("selectionPattern") or ""
                for code, r in (integration.get("integrationResponses") or {}).items()
            },
        },
    }


def observe(c: Clients, d: Declared | None, pipeline: str) -> Observed:
    import botocore.exceptions as bx

    gw = c.client("apigateway")
    o = Observed(apis=_ours(_pages(gw.get_rest_apis), pipeline))
    o.plans = _ours(_pages(gw.get_usage_plans), pipeline)
    o.keys = _ours(_pages(gw.get_api_keys, includeValues=False), pipeline)
    api = o.named("apis", d.name) if d else None
    if api is None:
        return o
    resource = _resource(gw, api["id"])
    if resource is not None:
        try:
            o.method = _method_shape(
                gw.get_method(restApiId=api["id"], resourceId=resource["id"], httpMethod="POST")
            )
        except bx.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NotFoundException":
                raise
    o.stages = {s["stageName"]: s for s in gw.get_stages(restApiId=api["id"]).get("item", [])}
    usage_plan = o.named("plans", d.name) if d else None
    if usage_plan is not None:
        o.linked = {k["id"] for k in _pages(gw.get_usage_plan_keys, usagePlanId=usage_plan["id"])}
    return o


# -- the reconciler -------------------------------------------------------------------------------------------
class ApiGateway:
    kind = "API Gateway REST API"

    def __init__(self, d: Declared | None, pipeline: str, file: str | None = None):
        self.d, self.pipeline, self.file = d, pipeline, file

    @property
    def tags(self) -> dict[str, str]:
        return {TAG: self.pipeline}

    def actions(self, c: Clients, r: Rendered) -> list[Action]:
        import botocore.exceptions as bx

        from fraudflow.sagemaker.apply import aws_errors, denied

        with aws_errors("API Gateway (deploy.api)", self.file):
            try:
                o = observe(c, self.d, self.pipeline)
            except bx.ClientError as exc:
                # A pipeline that declares no API, run by an operator never allowed API Gateway, cannot have
                # created one: nothing to remove. Declared, the denial is reported (FF740).
                if self.d is None and denied(exc):
                    return []
                raise
        return self._removals(o) + (self._creations(o) if self.d else [])

    # removals: what carries this pipeline's tag and is not declared
    def _removals(self, o: Observed) -> list[Action]:
        d = self.d
        out = []
        keep_plan = d.name if d and d.api_key else None
        for p in o.plans:
            if p.get("name") != keep_plan:
                out.append(
                    self._act("-", f"API Gateway usage plan {p['name']}: remove", _delete_plan(p["id"]), 0)
                )
        for k in o.keys:
            if k.get("name") != keep_plan:
                out.append(
                    self._act("-", f"API Gateway API key {k['name']}: remove", _delete_key(k["id"]), 1)
                )
        for a in o.apis:
            if d is None or a.get("name") != d.name:
                out.append(
                    self._act(
                        "-",
                        f"API Gateway REST API {a['name']}: remove (with its stages)",
                        _delete_api(a["id"]),
                        2,
                    )
                )
        return out

    def _creations(self, o: Observed) -> list[Action]:
        d = self.d
        assert d is not None
        out: list[Action] = []
        api = o.named("apis", d.name)
        if api is None:
            out.append(self._act("+", f"API Gateway REST API {d.name}: create", self._create_api, 10))
        target = (
            f"POST /{PATH} → SageMaker endpoint {d.endpoint} ({'API key' if d.api_key else 'AWS_IAM'} auth)"
        )
        wanted = d.method()
        if o.method is None:
            out.append(self._act("+", f"API Gateway method {target}: create", self._put_method, 11))
        elif o.method != wanted:
            out.append(
                self._act(
                    "~",
                    f"API Gateway method {target}: update {_differs(o.method, wanted)}",
                    self._put_method,
                    11,
                )
            )
        stage = o.stages.get(d.stage)
        limits = f"throttle {d.rate:g}/s burst {d.burst}"
        if stage is None:
            out.append(
                self._act("+", f"API Gateway stage {d.name}/{d.stage} ({limits}): create", self._stage, 12)
            )
        elif _stage_throttle(stage) != d.plan_throttle():
            out.append(
                self._act("~", f"API Gateway stage {d.name}/{d.stage}: update ({limits})", self._stage, 12)
            )
        for name in sorted(set(o.stages) - {d.stage}):  # last: once no usage plan refers to the stage
            out.append(
                self._act("-", f"API Gateway stage {d.name}/{name}: remove", self._delete_stage(name), 16)
            )
        if d.api_key:
            out += self._usage_plan(o)
        return out

    def _usage_plan(self, o: Observed) -> list[Action]:
        d = self.d
        assert d is not None
        plan, key = o.named("plans", d.name), o.named("keys", d.name)
        if plan is None:
            out = [
                self._act(
                    "+",
                    f"API Gateway usage plan {d.name} ({d.describe_limits()}): create",
                    self._create_plan,
                    14,
                )
            ]
        else:
            why = _plan_drift(plan, d, o.named("apis", d.name))
            out = (
                [
                    self._act(
                        "~",
                        f"API Gateway usage plan {d.name}: update {why} ({d.describe_limits()})",
                        self._recreate_plan,
                        14,
                    )
                ]
                if why
                else []
            )
        if key is None:
            out.append(
                self._act(
                    "+", f"API Gateway API key {d.name}: create (apply shows how to read it)", self._key, 15
                )
            )
        elif plan is None or out or key["id"] not in o.linked or not key.get("enabled", True):
            out.append(
                self._act(
                    "~",
                    f"API Gateway API key {d.name}: enable and link to usage plan {d.name}",
                    self._key,
                    15,
                )
            )
        return out

    def _act(self, symbol: str, line: str, run: Callable[[Any], None], step: int) -> Action:
        from fraudflow.sagemaker.apply import aws_errors

        def guarded(c: Clients) -> None:
            with aws_errors(line.split(":")[0], self.file):
                run(c)

        return Action(symbol, line, guarded, ORDER + step)

    # -- runs (each looks up what it needs: earlier actions of the same apply may have created it) ----------
    def _api_id(self, gw: Any) -> str:
        d = self.d
        assert d is not None
        api = next(a for a in _ours(_pages(gw.get_rest_apis), self.pipeline) if a.get("name") == d.name)
        return str(api["id"])

    def _create_api(self, c: Clients) -> None:
        d = self.d
        assert d is not None
        c.client("apigateway").create_rest_api(
            name=d.name,
            description=f"fraudflow: HTTPS access to SageMaker endpoint {d.endpoint} (pipeline {self.pipeline})",
            endpointConfiguration={"types": ["REGIONAL"]},
            tags=self.tags,
        )

    def _put_method(self, c: Clients) -> None:
        """Replace POST /invocations whole (PutMethod refuses an existing method), then redeploy the stage."""
        d = self.d
        assert d is not None
        gw = c.client("apigateway")
        api_id = self._api_id(gw)
        resource = _resource(gw, api_id)
        if resource is None:
            root = next(r for r in _pages(gw.get_resources, restApiId=api_id) if r.get("path") == "/")
            resource = gw.create_resource(restApiId=api_id, parentId=root["id"], pathPart=PATH)
        else:
            import botocore.exceptions as bx

            try:
                gw.delete_method(restApiId=api_id, resourceId=resource["id"], httpMethod="POST")
            except bx.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NotFoundException":
                    raise
        m = d.method()
        where = {"restApiId": api_id, "resourceId": resource["id"], "httpMethod": "POST"}
        gw.put_method(
            **where,
            authorizationType=m["authorizationType"],
            apiKeyRequired=m["apiKeyRequired"],
            requestParameters=m["requestParameters"],
        )
        i = m["integration"]
        gw.put_integration(
            **where,
            type=i["type"],
            integrationHttpMethod=i["httpMethod"],
            uri=i["uri"],
            credentials=i["credentials"],
            passthroughBehavior=i["passthroughBehavior"],
            requestParameters=i["requestParameters"],
        )
        for code, pattern in RESPONSES.items():
            gw.put_method_response(
                **where, statusCode=code, responseParameters={"method.response.header.Content-Type": False}
            )
            gw.put_integration_response(
                **where,
                statusCode=code,
                **({"selectionPattern": pattern} if pattern else {}),
                responseParameters={
                    "method.response.header.Content-Type": "integration.response.header.Content-Type"
                },
            )
        if any(s["stageName"] == d.stage for s in gw.get_stages(restApiId=api_id).get("item", [])):
            gw.create_deployment(
                restApiId=api_id, stageName=d.stage, description="fraudflow apply: method changed"
            )
            self._throttle(gw, api_id)  # a redeployed stage may come back with default settings

    def _stage(self, c: Clients) -> None:
        d = self.d
        assert d is not None
        gw = c.client("apigateway")
        api_id = self._api_id(gw)
        if not any(s["stageName"] == d.stage for s in gw.get_stages(restApiId=api_id).get("item", [])):
            gw.create_deployment(restApiId=api_id, stageName=d.stage, description="fraudflow apply")
        self._throttle(gw, api_id)
        print(f"  invoke URL: {invoke_url(api_id, d.region, d.stage)}", file=sys.stdout)

    def _throttle(self, gw: Any, api_id: str) -> None:
        """The stage's own limit, over all callers (the usage plan's applies per API key)."""
        d = self.d
        assert d is not None
        gw.update_stage(
            restApiId=api_id,
            stageName=d.stage,
            patchOperations=[
                {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": f"{d.rate:g}"},
                {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(d.burst)},
            ],
        )

    def _delete_stage(self, name: str) -> Callable[[Clients], None]:
        def run(c: Clients) -> None:
            gw = c.client("apigateway")
            gw.delete_stage(restApiId=self._api_id(gw), stageName=name)

        return run

    def _create_plan(self, c: Clients) -> None:
        d = self.d
        assert d is not None
        gw = c.client("apigateway")
        args: dict[str, Any] = {
            "name": d.name,
            "description": f"fraudflow: callers of SageMaker endpoint {d.endpoint}",
            "apiStages": [{"apiId": self._api_id(gw), "stage": d.stage}],
            "throttle": d.plan_throttle(),
            "tags": self.tags,
        }
        if d.quota:
            args["quota"] = d.plan_quota()
        gw.create_usage_plan(**args)

    def _recreate_plan(self, c: Clients) -> None:
        """A new plan rather than patches: removing a quota or a stage by patch is not portable (and the key is
        relinked by the key's action, which follows)."""
        d = self.d
        assert d is not None
        gw = c.client("apigateway")
        for p in _ours(_pages(gw.get_usage_plans), self.pipeline):
            if p.get("name") == d.name:
                _delete_plan(p["id"])(c)
        self._create_plan(c)

    def _key(self, c: Clients) -> None:
        d = self.d
        assert d is not None
        gw = c.client("apigateway")
        key = next(
            (k for k in _ours(_pages(gw.get_api_keys), self.pipeline) if k.get("name") == d.name), None
        )
        if key is None:
            key = gw.create_api_key(
                name=d.name,
                description=f"fraudflow: caller key for SageMaker endpoint {d.endpoint}",
                enabled=True,
                tags=self.tags,
            )
            _show_key(key, d.region)
        elif not key.get("enabled", True):
            gw.update_api_key(
                apiKey=key["id"], patchOperations=[{"op": "replace", "path": "/enabled", "value": "true"}]
            )
        plan = next(p for p in _ours(_pages(gw.get_usage_plans), self.pipeline) if p.get("name") == d.name)
        linked = {k["id"] for k in _pages(gw.get_usage_plan_keys, usagePlanId=plan["id"])}
        if key["id"] not in linked:
            gw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")


def invoke_url(api_id: str, region: str, stage: str) -> str:
    return f"https://{api_id}.execute-api.{region}.{partition.of(region).dns_suffix}/{stage}/{PATH}"


def _show_key(key: dict[str, Any], region: str) -> None:
    """The key's value goes to a terminal once; into a log (CI) only the command that reads it."""
    read = f"aws apigateway get-api-key --region {region} --api-key {key['id']} --include-value --query value --output text"
    if sys.stdout.isatty():
        print(f"  API key {key['name']} ({key['id']}): {key['value']}  (shown once; later: {read})")
    else:
        print(f"  API key {key['name']} ({key['id']}) created; its value is not written to logs: {read}")


def _stage_throttle(stage: dict[str, Any]) -> dict[str, Any]:
    s = (stage.get("methodSettings") or {}).get("*/*") or {}
    return {
        "rateLimit": float(s.get("throttlingRateLimit", -1)),
        "burstLimit": int(s.get("throttlingBurstLimit", -1)),
    }


def _plan_drift(plan: dict[str, Any], d: Declared, api: dict[str, Any] | None) -> str:
    why = []
    stages = [(s.get("apiId"), s.get("stage")) for s in plan.get("apiStages") or []]
    if api is None or stages != [(api["id"], d.stage)]:
        why.append("stage")
    throttle = plan.get("throttle") or {}
    if {
        "rateLimit": float(throttle.get("rateLimit", -1)),
        "burstLimit": int(throttle.get("burstLimit", -1)),
    } != d.plan_throttle():
        why.append("throttle")
    quota = plan.get("quota")
    have = {"limit": int(quota.get("limit", -1)), "period": quota.get("period")} if quota else None
    if have != d.plan_quota():
        why.append("quota")
    return "(" + ", ".join(why) + ")" if why else ""


def _differs(have: dict[str, Any], want: dict[str, Any], prefix: str = "") -> str:
    keys = []
    for k in sorted(set(have) | set(want)):
        if have.get(k) != want.get(k):
            if isinstance(have.get(k), dict) and isinstance(want.get(k), dict) and k == "integration":
                keys.append(_differs(have[k], want[k], f"{k}.").strip("()"))
            else:
                keys.append(prefix + k)
    return "(" + ", ".join(keys) + ")"


def _delete_plan(plan_id: str) -> Callable[[Clients], None]:
    def run(c: Clients) -> None:
        gw = c.client("apigateway")
        plan = gw.get_usage_plan(usagePlanId=plan_id)
        for k in list(_pages(gw.get_usage_plan_keys, usagePlanId=plan_id)):
            gw.delete_usage_plan_key(usagePlanId=plan_id, keyId=k["id"])
        stages = plan.get("apiStages") or []
        if stages:  # API Gateway deletes only a plan with no API stages left
            gw.update_usage_plan(
                usagePlanId=plan_id,
                patchOperations=[
                    {"op": "remove", "path": "/apiStages", "value": f"{s['apiId']}:{s['stage']}"}
                    for s in stages
                ],
            )
        gw.delete_usage_plan(usagePlanId=plan_id)

    return run


def _delete_key(key_id: str) -> Callable[[Clients], None]:
    return lambda c: c.client("apigateway").delete_api_key(apiKey=key_id)


def _delete_api(api_id: str) -> Callable[[Clients], None]:
    return lambda c: c.client("apigateway").delete_rest_api(restApiId=api_id)
