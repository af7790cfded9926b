"""Semantic checks of `deploy.api` (the HTTPS API in front of the endpoint): what the schema cannot say."""

from __future__ import annotations

from typing import Any

from fraudflow.errors import Diagnostic
from fraudflow.spec.config_types import PipelineConfig
from fraudflow.spec.yamlload import Positions


def check_api(cfg: PipelineConfig, pos: Positions) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    deploy: dict[str, Any] = dict(cfg.get("deploy") or {})
    api: dict[str, Any] = dict(deploy.get("api") or {})
    if not api:
        return out
    where = ("deploy", "api")
    throttle = api.get("throttle") or {}
    rate, burst = throttle.get("rate"), throttle.get("burst")
    if isinstance(rate, (int, float)) and isinstance(burst, int) and burst < rate:
        out.append(
            pos.diagnostic(
                "FF586",
                f"deploy.api.throttle.burst ({burst}) is below its rate ({rate:g}/s): API Gateway's bucket "
                "holds `burst` requests, so it could never pass `rate` of them in a second",
                (*where, "throttle", "burst"),
                hint=f"set burst to at least {-(-rate // 1):g} (commonly 2x the rate)",
            )
        )
    if api.get("quota") and api.get("auth", "api_key") != "api_key":
        out.append(
            pos.diagnostic(
                "FF587",
                "deploy.api.quota needs auth: api_key: API Gateway counts quotas per API key (a usage plan), "
                "and IAM-signed callers have none",
                (*where, "quota"),
                key=True,
                hint="use auth: api_key, or remove the quota (the throttle applies to the stage either way)",
            )
        )
    sm = cfg.get("sagemaker")
    role = api.get("role_arn")
    if sm and not role:
        out.append(
            pos.diagnostic(
                "FF585",
                "deploy.api on SageMaker needs deploy.api.role_arn: the role API Gateway assumes to call "
                "InvokeEndpoint",
                where,
                key=True,
                hint="create a role with the policies `fraudflow iam --for api` prints (docs/iam.md) and set "
                "deploy.api.role_arn to its ARN; local runs do not need it",
            )
        )
    elif sm and role in (sm.get("role_arn"), (sm.get("lambda") or {}).get("role_arn")):
        out.append(
            pos.diagnostic(
                "FF588",
                "deploy.api.role_arn is the jobs' or the deployer's role: anyone calling the API would act "
                "with a role that can do far more than invoke the endpoint",
                (*where, "role_arn"),
                hint="give the API a role of its own: `fraudflow iam --for api` prints its policies",
                severity="warning",
            )
        )
    return out
