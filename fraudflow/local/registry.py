"""The embedded model registry: SageMaker Model Registry's model package groups, numbered versions with an
approval status, and the local endpoints that serve them, in one SQLite file under `<workspace>/.fraudflow/`.

Why SQLite with `BEGIN IMMEDIATE`: several `fraudflow run` processes may register into the same group at once;
taking the write lock before reading `max(version)` makes numbering gap-free and duplicate-free without any
other coordination. Artifacts are copied to a staging folder first (slow, outside the lock) and renamed into
place under the lock just before the row is inserted, so a version is visible only once it is complete.

Approval rules (as SageMaker's UpdateModelPackage): a version starts PendingManualApproval or Approved or
Rejected; it may move to Approved or Rejected from any status (rejecting an approved version is allowed) but
never back to PendingManualApproval. Setting the status it already has is a no-op.

Deploy and approval: `deploy` pins an endpoint to explicit versions; approval does not undeploy anything. An
endpoint deployed with `follow_approved=True` (one variant) is repointed, in the same transaction, to the
newest Approved version of its group whenever an approval or rejection changes which version that is.
Servers notice any change through the endpoint's `generation` counter.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fraudflow.errors import UserError
from fraudflow.local import approval
from fraudflow.local.store import LEGACY_SCRATCH_AGE, owner_gone, owner_tag
from fraudflow.plan import STEP_CODE, STEP_KIT
from fraudflow.variants import Resolution, deploy_error, resolve_variants, variant_problems

STATUSES = ("PendingManualApproval", "Approved", "Rejected")
# SageMaker's name rule for model package groups and endpoints; it also keeps names safe as folder names.
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_MODEL_FILES = ("xgboost-model", "model.json")
MAX_VERSION = 2**63 - 1  # SQLite's largest integer: no version number can be larger
# Characters that move the cursor, recolour or reorder a terminal's text (C0/C1 controls, DEL, bidi
# overrides, line separators): refused in free text a user gives, escaped wherever the registry prints.
UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]")
MAX_REASON = 1000
_SCHEMA_VERSION = 1
# Columns of `versions` that name a registration rather than what it records: a rerun that reproduces the newest
# version differs only in these, and reuses it (register(reuse_identical=True)). Every other column is compared.
NOT_COMPARED = ("grp", "version", "status", "created", "run_id", "artifact_dir")

_DDL = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (
    name TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    grp TEXT NOT NULL REFERENCES groups(name), version INTEGER NOT NULL, status TEXT NOT NULL,
    created TEXT NOT NULL, pipeline TEXT NOT NULL, run_id TEXT NOT NULL, description TEXT NOT NULL,
    metrics TEXT NOT NULL, bias TEXT, explainability TEXT, baselines TEXT,
    decision_threshold REAL NOT NULL, artifact_dir TEXT NOT NULL,
    PRIMARY KEY (grp, version));
CREATE TABLE IF NOT EXISTS approvals (
    id INTEGER PRIMARY KEY AUTOINCREMENT, grp TEXT NOT NULL, version INTEGER NOT NULL,
    status TEXT NOT NULL, actor TEXT NOT NULL, at TEXT NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS endpoints (
    name TEXT PRIMARY KEY, variants TEXT NOT NULL, follow_approved INTEGER NOT NULL,
    generation INTEGER NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL);
"""
    + approval.DDL
    + ";"
)


STAGING = (
    ".staging"  # registry/.staging/<host>-<pid>.<start>-<uuid>: artifacts being copied, owned by a process
)


def _age(path: Path) -> float:
    try:
        return datetime.now(timezone.utc).timestamp() - path.stat().st_mtime
    except OSError:
        return 0.0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers): still record something
        return os.environ.get("USER", "unknown")


def check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise UserError.single(
            "FF801",
            f"invalid {kind} name {name!r}",
            hint="1-63 letters, digits and hyphens, starting and ending with a letter or digit (SageMaker's rule)",
        )
    return name


@dataclass(frozen=True)
class Approval:
    status: str
    actor: str
    at: str
    reason: str


@dataclass(frozen=True)
class ModelVersion:
    group: str
    version: int
    status: str
    created: str
    pipeline: str
    run_id: str
    description: str
    metrics: dict
    bias: dict | None
    explainability: dict | None
    baselines: dict | None
    decision_threshold: float
    artifact_dir: Path
    history: tuple[Approval, ...] = ()

    @property
    def arn_like(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def model_dir(self) -> Path:
        return self.artifact_dir / "model"

    @property
    def feature_schema_path(self) -> Path:
        return self.artifact_dir / "feature_schema.json"

    @property
    def roc_auc(self) -> float | None:
        try:
            return float(self.metrics["classification_metrics"]["roc_auc"]["value"])
        except (KeyError, TypeError, ValueError):
            return None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["artifact_dir"] = str(self.artifact_dir)
        d["history"] = [asdict(a) for a in self.history]
        return d


@dataclass(frozen=True)
class VariantSpec:
    name: str
    group: str
    version: int
    weight: float = 1.0


@dataclass(frozen=True)
class Endpoint:
    name: str
    variants: tuple[VariantSpec, ...]
    follow_approved: bool
    generation: int  # bumped on every change: servers poll it to hot-switch
    created: str
    updated: str
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["variants"] = [asdict(v) for v in self.variants]
        d.pop("extra")
        return d


def _dump(obj: object) -> str | None:
    return None if obj is None else json.dumps(obj, sort_keys=True, allow_nan=False, default=str)


def _load(text: str | None) -> dict | None:
    return None if text is None else json.loads(text)


class Registry:
    def __init__(self, state_dir: Path):
        self.state_dir = Path(state_dir).resolve()  # absolute: artifact paths stay valid after a chdir
        self.root = self.state_dir / "registry"
        self.db_path = self.state_dir / "registry.db"
        self.root.mkdir(parents=True, exist_ok=True)
        self._conn = self._connect()
        self.changes: list[str] = []  # what the last decision did to endpoints deploying on approval

    # -- connection ------------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, timeout=60, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA busy_timeout = 60000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            with self._tx(conn):
                for stmt in _DDL.strip().split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                if row is None:
                    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(_SCHEMA_VERSION),))
                elif int(row[0]) > _SCHEMA_VERSION:
                    raise UserError.single(
                        "FF808",
                        f"{self.db_path} was written by a newer fraudflow (schema {row[0]})",
                        hint="upgrade fraudflow",
                    )
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise UserError.single(
                "FF808", f"cannot open the registry database: {exc}", file=str(self.db_path)
            ) from None
        return conn

    @staticmethod
    @contextmanager
    def _tx(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front: read-then-write sequences cannot interleave.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()

    # -- groups and versions ----------------------------------------------------------------------------
    def register(
        self,
        group: str,
        *,
        model_dir: Path,
        feature_schema: Path,
        metrics: dict,
        bias: dict | None,
        explainability: dict | None,
        baselines: dict | None,
        approval_status: str,
        pipeline: str,
        run_id: str,
        description: str = "",
        preprocess_code: Path | None = None,
        reuse_identical: bool = False,
        check: Callable[[ModelVersion], None] | None = None,
        tuning: dict | None = None,
    ) -> ModelVersion:
        """Copy the artifacts, then number and insert the version atomically. `preprocess_code` (default: the
        project's step_code/preprocess.py) is snapshotted so serving encodes exactly as this run did.

        With `reuse_identical`, the group's newest version is returned instead of a new one when everything
        it records is identical (see `_identical`); `ModelVersion.run_id` then names the run that registered
        it, not this one. `check` is called, as by `set_status`, on the version a follow-approved endpoint is
        about to be repointed to (an Approved registration); if it raises, nothing is registered."""
        check_name("model package group", group)
        self._check_status(approval_status)
        model_dir, feature_schema = Path(model_dir), Path(feature_schema)
        if not model_dir.is_dir() or not any((model_dir / f).is_file() for f in _MODEL_FILES):
            raise UserError.single(
                "FF806", f"{model_dir} holds no model ({' or '.join(_MODEL_FILES)})", file=str(model_dir)
            )
        if not feature_schema.is_file():
            raise UserError.single("FF806", "feature schema not found", file=str(feature_schema))
        threshold = float(metrics.get("decision_threshold", 0.5)) if isinstance(metrics, dict) else 0.5
        if preprocess_code is None:
            preprocess_code = STEP_CODE / "preprocess.py"

        self.clean_stale_staging()  # left by registrations killed mid-copy
        staging = self.root / STAGING / f"{owner_tag()}-{uuid.uuid4().hex}"
        try:
            shutil.copytree(model_dir, staging / "model")
            shutil.copy2(feature_schema, staging / "feature_schema.json")
            if preprocess_code.is_file():
                shutil.copy2(preprocess_code, staging / "preprocess.py")
                kit = preprocess_code.parent / STEP_KIT  # the helpers preprocess.py imports as a sibling
                if kit.is_file():
                    shutil.copy2(kit, staging / STEP_KIT)
            for name, doc in (
                ("evaluation.json", metrics),
                ("bias.json", bias),
                ("explainability.json", explainability),
                ("baselines.json", baselines),
                ("tuning.json", tuning),  # the tuning study that chose the model: trials, best parameters
            ):
                if doc is not None:
                    (staging / name).write_text(json.dumps(doc, indent=2, sort_keys=True, default=str))
            created = _now()
            record = {
                "status": approval_status,
                "pipeline": pipeline,
                "description": description,
                "metrics": _dump(metrics),
                "bias": _dump(bias),
                "explainability": _dump(explainability),
                "baselines": _dump(baselines),
                "decision_threshold": threshold,
            }
            with self._tx(self._conn) as c:
                if c.execute("SELECT 1 FROM groups WHERE name=?", (group,)).fetchone() is None:
                    c.execute("INSERT INTO groups (name, created) VALUES (?, ?)", (group, created))
                next_version = c.execute(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE grp=?", (group,)
                )
                version = int(next_version.fetchone()[0])
                if (
                    reuse_identical
                    and version > 1
                    and self._identical(c, group, version - 1, record, staging)
                ):
                    version -= 1
                    return self.get(group, version)
                rel = f"{group}/{version}"
                final = self.root / rel
                if final.exists():  # left by a crash between rename and commit: no row points at it
                    shutil.rmtree(final)
                final.parent.mkdir(parents=True, exist_ok=True)
                meta = {
                    "group": group,
                    "version": version,
                    "pipeline": pipeline,
                    "run_id": run_id,
                    "created": created,
                    "decision_threshold": threshold,
                }
                if tuning:
                    meta["tuning"] = {"best": tuning.get("best"), "trials": len(tuning.get("trials") or [])}
                (staging / "version.json").write_text(json.dumps(meta, indent=2))
                os.rename(staging, final)
                try:
                    c.execute(
                        "INSERT INTO versions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (
                            group,
                            version,
                            record["status"],
                            created,
                            record["pipeline"],
                            run_id,
                            record["description"],
                            record["metrics"],
                            record["bias"],
                            record["explainability"],
                            record["baselines"],
                            record["decision_threshold"],
                            rel,
                        ),
                    )
                    c.execute(
                        "INSERT INTO approvals (grp, version, status, actor, at, reason) VALUES (?,?,?,?,?,?)",
                        (group, version, approval_status, f"pipeline:{pipeline}", created, f"run {run_id}"),
                    )
                    if approval_status == "Approved":
                        self._follow(c, group, check)
                        who = f"pipeline:{pipeline}"
                        self.changes = approval.on_decision(self, c, group, version, "Approved", who, check)
                except BaseException:
                    shutil.rmtree(final, ignore_errors=True)
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.get(group, version)

    def clean_stale_staging(self) -> list[Path]:
        """Remove staging folders of registrations whose process is gone (killed while copying artifacts), as
        Store.clean_stale_scratch does for step scratch folders: a folder is removed only when its name says
        it belongs to this host and its owner no longer runs; an unowned one (older fraudflow) after a week."""
        removed: list[Path] = []
        folder = self.root / STAGING
        if not folder.is_dir():
            return removed
        for path in folder.iterdir():
            parts = path.name.split("-")
            if len(parts) == 3:
                stale = owner_gone(parts[0], parts[1])
            else:
                stale = len(parts) == 1 and _age(path) > LEGACY_SCRATCH_AGE  # cannot be judged sooner
            if stale:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

    def _identical(
        self, c: sqlite3.Connection, group: str, version: int, record: dict, staging: Path
    ) -> bool:
        """Whether `version` records exactly what is about to be registered: every column of its row but the
        ones that name the registration itself (NOT_COMPARED; the status is compared with the status it was
        registered with, since approving it later is a decision about the same model), and every artifact
        file (model, feature schema, preprocess code, metrics, reports, baselines) byte for byte."""
        row = c.execute("SELECT * FROM versions WHERE grp=? AND version=?", (group, version)).fetchone()
        first = c.execute(
            "SELECT status FROM approvals WHERE grp=? AND version=? ORDER BY id LIMIT 1", (group, version)
        ).fetchone()
        stored = {k: v for k, v in dict(row).items() if k not in NOT_COMPARED}
        stored["status"] = first["status"] if first else row["status"]
        if stored != record:
            return False
        return _artifact_digests(staging) == _artifact_digests(self.root / row["artifact_dir"])

    def list_groups(self) -> list[dict]:
        rows = self._conn.execute(
            "SELECT g.name, g.created, COUNT(v.version) AS versions, MAX(v.version) AS latest "
            "FROM groups g LEFT JOIN versions v ON v.grp = g.name GROUP BY g.name ORDER BY g.name"
        ).fetchall()
        return [dict(r) for r in rows]

    def list_versions(self, group: str) -> list[ModelVersion]:
        self._require_group(group)
        rows = self._conn.execute("SELECT * FROM versions WHERE grp=? ORDER BY version", (group,)).fetchall()
        return [self._version(r, with_history=False) for r in rows]

    def get(self, group: str, version: int) -> ModelVersion:
        self._require_group(group)
        if not 1 <= int(version) <= MAX_VERSION:  # beyond SQLite's integers: cannot exist, cannot be bound
            raise UserError.single(
                "FF803", f"model package group {group!r} has no version {str(version)[:30]}"
            )
        row = self._conn.execute("SELECT * FROM versions WHERE grp=? AND version=?", (group, int(version)))
        row = row.fetchone()
        if row is None:
            have = [r[0] for r in self._conn.execute("SELECT version FROM versions WHERE grp=?", (group,))]
            raise UserError.single(
                "FF803",
                f"model package group {group!r} has no version {version}",
                hint=f"versions: {_ranges(have)}" if have else "the group has no versions yet",
            )
        return self._version(row)

    def latest(self, group: str, status: str | None = None) -> ModelVersion | None:
        self._require_group(group)
        sql, params = "SELECT * FROM versions WHERE grp=?", [group]
        if status:
            sql, params = sql + " AND status=?", [*params, status]
        row = self._conn.execute(sql + " ORDER BY version DESC LIMIT 1", params).fetchone()
        return None if row is None else self._version(row)

    def set_status(
        self,
        group: str,
        version: int,
        status: str,
        reason: str = "",
        *,
        check: Callable[[ModelVersion], None] | None = None,
    ) -> ModelVersion:
        """`check` is called on any version a follow-approved endpoint is about to be repointed to; if it
        raises, the transaction rolls back: neither the status nor any endpoint changes."""
        self._check_status(status)
        _check_reason(reason)
        self.changes = []
        with self._tx(self._conn) as c:
            current = self.get(group, version)
            if status == current.status:
                return current
            if status == "PendingManualApproval":
                raise UserError.single(
                    "FF804",
                    f"{group} version {version} is {current.status}: a decided version cannot go back to "
                    "PendingManualApproval",
                    hint="approve or reject it",
                )
            c.execute("UPDATE versions SET status=? WHERE grp=? AND version=?", (status, group, int(version)))
            c.execute(
                "INSERT INTO approvals (grp, version, status, actor, at, reason) VALUES (?,?,?,?,?,?)",
                (group, int(version), status, _actor(), _now(), reason),
            )
            self._follow(c, group, check)
            self.changes = approval.on_decision(self, c, group, int(version), status, _actor(), check)
        return self.get(group, version)

    # -- endpoints --------------------------------------------------------------------------------------
    def choose(
        self, group: str, newest: int, variants: list[dict[str, Any]], *, require_approval: bool = False
    ) -> Resolution:
        """Which version each of `deploy.variants` serves, by the rule the SageMaker deployer Lambda applies
        (fraudflow/variants.py): latest, previous, N, require_approval, and Rejected never served."""
        problems = variant_problems(variants)
        if problems:
            raise UserError.single("FF807", "; ".join(message for _, _, message in problems))

        def status_of(version: int) -> str | None:
            row = self._conn.execute(
                "SELECT status FROM versions WHERE grp=? AND version=?", (group, int(version))
            ).fetchone()
            return None if row is None else str(row[0])

        self._require_group(group)
        try:
            return resolve_variants(variants, newest, status_of, require_approval=require_approval)
        except deploy_error() as exc:  # only a version that is not registered is left
            have = [r[0] for r in self._conn.execute("SELECT version FROM versions WHERE grp=?", (group,))]
            raise UserError.single(
                "FF803", f"{exc} in model package group {group!r}", hint=f"versions: {_ranges(have)}"
            ) from None

    def deploy(
        self,
        endpoint: str,
        variants: list[VariantSpec],
        *,
        follow_approved: bool = False,
        check: Callable[[ModelVersion], None] | None = None,
    ) -> Endpoint:
        """Point an endpoint at registered versions (creating it if needed); servers switch on their own.
        `check` is called on each version first (registered versions never change); if it raises, the
        endpoint is left as it was."""
        check_name("endpoint", endpoint)
        variants = [v if isinstance(v, VariantSpec) else VariantSpec(**v) for v in variants]
        self._check_variants(variants, follow_approved)
        if check is not None:
            for v in variants:
                check(self.get(v.group, v.version))
        with self._tx(self._conn) as c:
            for v in variants:
                self.get(v.group, v.version)
            self._upsert_endpoint(c, endpoint, variants, follow_approved)
            approval.unbind(c, endpoint)  # an explicit deploy (when: registered) ends deploying on approval
        return self.get_endpoint(endpoint)

    def get_endpoint(self, name: str) -> Endpoint:
        row = self._conn.execute("SELECT * FROM endpoints WHERE name=?", (name,)).fetchone()
        if row is None:
            have = [r[0] for r in self._conn.execute("SELECT name FROM endpoints ORDER BY name")]
            raise UserError.single(
                "FF805",
                f"no local endpoint named {name!r}",
                hint=f"endpoints: {', '.join(have)}"
                if have
                else "no endpoint is deployed yet: run the pipeline",
            )
        return self._endpoint(row)

    def list_endpoints(self) -> list[Endpoint]:
        return [self._endpoint(r) for r in self._conn.execute("SELECT * FROM endpoints ORDER BY name")]

    def endpoint_generation(self, name: str) -> int | None:
        """Cheap change probe for servers."""
        row = self._conn.execute("SELECT generation FROM endpoints WHERE name=?", (name,)).fetchone()
        return None if row is None else int(row[0])

    # -- internals --------------------------------------------------------------------------------------
    def _upsert_endpoint(
        self, c: sqlite3.Connection, name: str, variants: list[VariantSpec], follow: bool
    ) -> None:
        now = _now()
        payload = json.dumps([asdict(v) for v in variants])
        c.execute(
            "INSERT INTO endpoints VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT(name) DO UPDATE SET "
            "variants=excluded.variants, follow_approved=excluded.follow_approved, "
            "generation=endpoints.generation + 1, updated=excluded.updated",
            (name, payload, int(follow), now, now),
        )

    def _follow(
        self, c: sqlite3.Connection, group: str, check: Callable[[ModelVersion], None] | None = None
    ) -> None:
        """Repoint follow-approved endpoints of `group` to its newest Approved version (after `check`)."""
        best = c.execute(
            "SELECT MAX(version) FROM versions WHERE grp=? AND status='Approved'", (group,)
        ).fetchone()[0]
        if best is None:
            return  # nothing approved left: keep serving what is deployed rather than go dark
        for row in c.execute("SELECT * FROM endpoints WHERE follow_approved=1").fetchall():
            ep = self._endpoint(row)
            v = ep.variants[0]
            if v.group == group and v.version != best:
                if check is not None:
                    check(self.get(group, int(best)))
                self._upsert_endpoint(c, ep.name, [VariantSpec(v.name, group, int(best), v.weight)], True)

    @staticmethod
    def _check_status(status: str) -> None:
        if status not in STATUSES:
            raise UserError.single(
                "FF804", f"unknown approval status {status!r}", hint=f"one of: {', '.join(STATUSES)}"
            )

    @staticmethod
    def _check_variants(variants: list[VariantSpec], follow: bool) -> None:
        """The rule pipelines.yaml and the Lambda use (fraudflow/variants.py), plus the registry's own."""
        listed = [{"name": v.name, "weight": v.weight, "model_version": v.version} for v in variants]
        problems = [message for _, _, message in variant_problems(listed)]
        problems += [f"invalid variant name {v.name!r}" for v in variants if not _NAME.match(str(v.name))]
        if follow and len(variants) != 1:
            problems.append("follow_approved needs exactly one variant")
        if problems:
            raise UserError.single("FF807", "; ".join(problems))

    def _require_group(self, group: str) -> None:
        if self._conn.execute("SELECT 1 FROM groups WHERE name=?", (group,)).fetchone() is None:
            have = [r[0] for r in self._conn.execute("SELECT name FROM groups ORDER BY name")]
            raise UserError.single(
                "FF802",
                f"no model package group named {group!r}",
                hint=f"groups: {', '.join(have)}" if have else "nothing is registered yet: run the pipeline",
            )

    def _version(self, row: sqlite3.Row, *, with_history: bool = True) -> ModelVersion:
        history: tuple[Approval, ...] = ()
        if with_history:
            hist = self._conn.execute(
                "SELECT status, actor, at, reason FROM approvals WHERE grp=? AND version=? ORDER BY id",
                (row["grp"], row["version"]),
            )
            history = tuple(Approval(**dict(h)) for h in hist)
        return ModelVersion(
            group=row["grp"],
            version=int(row["version"]),
            status=row["status"],
            created=row["created"],
            pipeline=row["pipeline"],
            run_id=row["run_id"],
            description=row["description"],
            metrics=_load(row["metrics"]) or {},
            bias=_load(row["bias"]),
            explainability=_load(row["explainability"]),
            baselines=_load(row["baselines"]),
            decision_threshold=float(row["decision_threshold"]),
            artifact_dir=self.root / row["artifact_dir"],
            history=history,
        )

    @staticmethod
    def _endpoint(row: sqlite3.Row) -> Endpoint:
        return Endpoint(
            name=row["name"],
            variants=tuple(VariantSpec(**v) for v in json.loads(row["variants"])),
            follow_approved=bool(row["follow_approved"]),
            generation=int(row["generation"]),
            created=row["created"],
            updated=row["updated"],
        )


def _artifact_digests(folder: Path) -> dict[str, str]:
    """Relative path → sha256 of every file of a version's artifact folder but version.json (which names
    the version and the run that registered it)."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel != "version.json":
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _check_reason(reason: str) -> None:
    bad = UNPRINTABLE.search(reason)
    if bad or len(reason) > MAX_REASON:
        problem = (
            f"holds the control character {bad.group()!r}" if bad else f"is {len(reason)} characters long"
        )
        raise UserError.single(
            "FF810",
            f"--reason {problem}",
            hint=f"give plain text of at most {MAX_REASON} characters on one line",
        )


def _ranges(nums: list[int]) -> str:
    nums = sorted(nums)
    if len(nums) > 2 and nums == list(range(nums[0], nums[-1] + 1)):
        return f"{nums[0]}..{nums[-1]}"
    return ", ".join(map(str, nums))
