"""Deploy on approval (`deploy.when: approved`) in the local registry.

A run does not deploy: its deploy step *binds* the endpoint to the model package group (table
`approval_deploys`: endpoint, group, the `deploy.variants` to resolve). From then on each decision drives the
endpoint, inside the transaction that records it (so the endpoint and the approval history never disagree):

- approving version V deploys V: `deploy.variants` resolved with V as `latest`, every served version Approved
  (the rule the SageMaker deployer applies to the same EventBridge event, step_code/lambda_deployer.py);
- rejecting a version the endpoint serves rolls back to the newest Approved version; with none left the endpoint
  serves nothing and `fraudflow serve` answers 503 with the reason (a rejected model never serves traffic).

Servers follow through the endpoint's `generation`, as for any redeployment (fraudflow/local/serving/app.py).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fraudflow.variants import resolve_variants

if TYPE_CHECKING:
    from fraudflow.local.registry import Endpoint, ModelVersion, Registry

DDL = (
    "CREATE TABLE IF NOT EXISTS approval_deploys (endpoint TEXT PRIMARY KEY, grp TEXT NOT NULL, "
    "variants TEXT NOT NULL, note TEXT NOT NULL DEFAULT '')"
)
Check = Callable[["ModelVersion"], None] | None


def bind(reg: Registry, endpoint: str, group: str, variants: list[dict[str, Any]], check: Check) -> str:
    """The deploy step under `when: approved`: bind `endpoint` to `group`'s approvals; returns the step's note.
    A new binding serves the newest Approved version (or nothing yet); an existing one changes nothing."""
    from fraudflow.local.registry import check_name

    check_name("endpoint", endpoint)
    with reg._tx(reg._conn) as c:
        row = c.execute("SELECT grp, variants FROM approval_deploys WHERE endpoint=?", (endpoint,)).fetchone()
        c.execute(
            "INSERT INTO approval_deploys (endpoint, grp, variants) VALUES (?, ?, ?) ON CONFLICT(endpoint) "
            "DO UPDATE SET grp=excluded.grp, variants=excluded.variants",
            (endpoint, group, json.dumps(variants, sort_keys=True)),
        )
        if row is not None and row["grp"] == group and _exists(c, endpoint):
            served = _served_text(reg, endpoint)
            return f"endpoint {endpoint} deploys on approval; it serves {served}"
        best = _newest_approved(c, group)
        if best is None:
            _serve_nothing(reg, c, endpoint, _awaiting(group))
        else:
            _deploy(reg, c, endpoint, group, variants, best, check)
    return f"endpoint {endpoint} deploys on approval; it serves {_served_text(reg, endpoint)}"


def on_decision(
    reg: Registry, c: sqlite3.Connection, group: str, version: int, status: str, who: str, check: Check
) -> list[str]:
    """Called in the transaction that records `status` for `group` `version`; returns what changed."""
    said: list[str] = []
    bound = c.execute("SELECT endpoint, variants FROM approval_deploys WHERE grp=?", (group,)).fetchall()
    for row in bound:
        endpoint, variants = row["endpoint"], json.loads(row["variants"])
        if status == "Approved":
            said.append(_deploy(reg, c, endpoint, group, variants, version, check))
            continue
        if status != "Rejected" or version not in _served_versions(reg, c, endpoint, group):
            continue
        best = _newest_approved(c, group)
        if best is None:
            why = (
                f"{group} v{version} was rejected by {who} and no version of {group} is Approved: the endpoint "
                f"serves nothing; `fraudflow registry approve {group} N` deploys version N"
            )
            _serve_nothing(reg, c, endpoint, why)
            said.append(f"endpoint {endpoint} stopped serving {group}:{version}: no Approved version is left")
        else:
            said.append(_deploy(reg, c, endpoint, group, variants, best, check, rolled_back_from=version))
    return said


def idle_reason(reg: Registry, endpoint: str) -> str:
    """Why a bound endpoint serves nothing (for `fraudflow serve`'s 503)."""
    row = reg._conn.execute("SELECT note FROM approval_deploys WHERE endpoint=?", (endpoint,)).fetchone()
    return str(row[0]) if row and row[0] else f"endpoint {endpoint} serves no model"


def unbind(c: sqlite3.Connection, endpoint: str) -> None:
    """An explicit deploy (when: registered) takes the endpoint back from approvals."""
    c.execute("DELETE FROM approval_deploys WHERE endpoint=?", (endpoint,))


# -- internals ------------------------------------------------------------------------------------------
def _deploy(
    reg: Registry,
    c: sqlite3.Connection,
    endpoint: str,
    group: str,
    variants: list[dict[str, Any]],
    version: int,
    check: Check,
    rolled_back_from: int | None = None,
) -> str:
    from fraudflow.local.registry import VariantSpec

    def status_of(v: int) -> str | None:
        row = c.execute("SELECT status FROM versions WHERE grp=? AND version=?", (group, int(v))).fetchone()
        return None if row is None else str(row[0])

    res = resolve_variants(variants, version, status_of, require_approval=True)
    if res.refused:  # e.g. a `previous` variant whose version is not Approved: leave the endpoint alone
        if rolled_back_from is not None:  # ... unless it serves the rejected version: then it must stop
            why = f"{group} v{rolled_back_from} was rejected and v{version} cannot be deployed: {res.refused}"
            _serve_nothing(reg, c, endpoint, why)
            return f"endpoint {endpoint} stopped serving {group}:{rolled_back_from}: {res.refused}"
        return f"endpoint {endpoint} unchanged: {res.refused}"
    specs = [VariantSpec(ch.name, group, ch.version, ch.weight) for ch in res.served]
    if check is not None:
        for s in specs:
            check(reg.get(group, s.version))
    reg._upsert_endpoint(c, endpoint, specs, False)
    c.execute("UPDATE approval_deploys SET note='' WHERE endpoint=?", (endpoint,))
    served = ", ".join(f"{s.name}={group}:{s.version}" for s in specs)
    if rolled_back_from is not None:
        return f"endpoint {endpoint} rolled back from {group}:{rolled_back_from} to {served}"
    return f"endpoint {endpoint} now serves {served}"


def _serve_nothing(reg: Registry, c: sqlite3.Connection, endpoint: str, why: str) -> None:
    reg._upsert_endpoint(c, endpoint, [], False)
    c.execute("UPDATE approval_deploys SET note=? WHERE endpoint=?", (why, endpoint))


def _awaiting(group: str) -> str:
    return (
        f"no version of {group} is Approved yet (deploy.when: approved): "
        f"`fraudflow registry approve {group} N` deploys version N"
    )


def _newest_approved(c: sqlite3.Connection, group: str) -> int | None:
    row = c.execute(
        "SELECT MAX(version) FROM versions WHERE grp=? AND status='Approved'", (group,)
    ).fetchone()
    return None if row[0] is None else int(row[0])


def _exists(c: sqlite3.Connection, endpoint: str) -> bool:
    return c.execute("SELECT 1 FROM endpoints WHERE name=?", (endpoint,)).fetchone() is not None


def _served_versions(reg: Registry, c: sqlite3.Connection, endpoint: str, group: str) -> set[int]:
    row = c.execute("SELECT * FROM endpoints WHERE name=?", (endpoint,)).fetchone()
    if row is None:
        return set()
    ep: Endpoint = reg._endpoint(row)
    return {v.version for v in ep.variants if v.group == group}


def _served_text(reg: Registry, endpoint: str) -> str:
    ep = reg.get_endpoint(endpoint)
    if not ep.variants:
        return "nothing yet: " + idle_reason(reg, endpoint)
    return ", ".join(f"{v.name}={v.group}:{v.version}" for v in ep.variants)


def deploy_on_approval(
    reg: Registry, cfg: dict[str, Any], group: str, servable: Callable[..., None], result: Any
) -> tuple[str, None, dict[str, str]]:
    """The local runner's deploy step under `when: approved` (closes `reg`)."""
    import functools

    endpoint = cfg["endpoint_name"]
    why = f"binding endpoint {endpoint!r} to the approvals of {group} would point it at it"
    try:
        note = bind(reg, endpoint, group, cfg["variants"], functools.partial(servable, why=why))
        result.endpoint = reg.get_endpoint(endpoint).to_dict()
    finally:
        reg.close()
    return "ran", None, {"note": note}
