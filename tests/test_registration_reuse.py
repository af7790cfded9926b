"""A rerun reuses the newest registered version only when everything that version records is identical; any
difference (model, schema, preprocess code, metrics, bias or explainability report, baselines, requested status,
pipeline, description) registers a new version. A registered version never shows what another run produced."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudflow.local.registry import NOT_COMPARED, Registry
from tests.conftest import ROOT, run_cli

BASE_DOCS = {
    "metrics": {"classification_metrics": {"roc_auc": {"value": 0.81}}, "decision_threshold": 0.1},
    "bias": {"post_training_bias_metrics": {"facets": {"customer_gender_female": [{"DPPL": 0.02}]}}},
    "explainability": {"explanations": {"kernel_shap": {"label0": {"global_shap_values": {"age": 0.3}}}}},
    "baselines": {"rows": 800, "features": {"age": {"mean": 41.5}}},
}

# How each recorded field of a version is changed by a run. Every column of the `versions` table that is not
# NOT_COMPARED must be here (test_every_recorded_column_has_a_mutation), so a new column cannot escape.
COLUMN_FIELDS = {
    "pipeline",
    "description",
    "metrics",
    "bias",
    "explainability",
    "baselines",
    "decision_threshold",
}
FILE_FIELDS = ("model", "model_new_file", "feature_schema", "preprocess_code")
FIELDS = sorted(COLUMN_FIELDS | set(FILE_FIELDS) | {"status"})
JSON_VALUES = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
)


def _artifacts(root: Path) -> dict:
    (root / "model").mkdir(parents=True)
    (root / "model" / "model.json").write_text('{"learner": {"trees": [1, 2, 3]}}')
    (root / "model" / "xgboost-model").write_text('{"learner": {"trees": [1, 2, 3]}}')
    (root / "feature_schema.json").write_text('{"features": ["age", "customer_gender_female"]}')
    (root / "preprocess.py").write_text("def transform(df, schema):\n    return df\n")
    return {
        "model_dir": root / "model",
        "feature_schema": root / "feature_schema.json",
        "preprocess_code": root / "preprocess.py",
        "approval_status": "PendingManualApproval",
        "pipeline": "fraud-detect-xgb",
        "run_id": "run-1",
        "description": "fraud model",
        **json.loads(json.dumps(BASE_DOCS)),
    }


def _change(args: dict, field: str, value: object) -> dict:
    args = {**args, "run_id": "run-2"}
    if field in ("metrics", "bias", "explainability", "baselines"):
        doc = json.loads(json.dumps(args[field]))
        doc["changed"] = value
        args[field] = doc
    elif field == "decision_threshold":
        args["metrics"] = {**args["metrics"], "decision_threshold": 0.35}
    elif field in ("pipeline", "description"):
        args[field] = f"{args[field]}-{value!r}"
    elif field == "status":
        args["approval_status"] = "Approved" if value else "Rejected"
    elif field == "model":
        path = args["model_dir"] / "model.json"
        path.write_text(path.read_text().replace("3]", f"3, {json.dumps(value)}]"))
    elif field == "model_new_file":
        (args["model_dir"] / "training.json").write_text(json.dumps({"rounds": value}))
    elif field == "feature_schema":
        args["feature_schema"].write_text(json.dumps({"features": ["age", str(value)]}))
    elif field == "preprocess_code":
        args["preprocess_code"].write_text(f"# {value!r}\ndef transform(df, schema):\n    return df\n")
    return args


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), value=JSON_VALUES)
def test_any_changed_recorded_field_registers_a_new_version(
    tmp_path_factory: pytest.TempPathFactory, field: str, value: object
) -> None:
    root = tmp_path_factory.mktemp("reg")
    registry = Registry(root / ".fraudflow")
    try:
        args = _artifacts(root / "run")
        first = registry.register("fraud", **args, reuse_identical=True)
        assert first.version == 1
        same = registry.register("fraud", **{**args, "run_id": "run-again"}, reuse_identical=True)
        assert (same.version, same.run_id) == (1, "run-1")  # nothing changed: reused
        changed = _change(args, field, value)
        new = registry.register("fraud", **changed, reuse_identical=True)
        assert new.version == 2 and new.run_id == "run-2", field
        assert new.status == changed["approval_status"]
        assert (new.metrics, new.bias, new.explainability, new.baselines) == (
            changed["metrics"],
            changed["bias"],
            changed["explainability"],
            changed["baselines"],
        )
        again = registry.register("fraud", **{**changed, "run_id": "run-3"}, reuse_identical=True)
        assert again.version == 2  # the newest now records exactly this
    finally:
        registry.close()


def test_every_recorded_column_has_a_mutation(tmp_path: Path) -> None:
    """The property test above changes every column a version records; a new column must join it."""
    Registry(tmp_path).close()
    with sqlite3.connect(tmp_path / "registry.db") as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(versions)")}
    assert columns - set(NOT_COMPARED) == COLUMN_FIELDS


def test_a_later_approval_does_not_prevent_reuse_but_another_requested_status_does(tmp_path: Path) -> None:
    registry = Registry(tmp_path / ".fraudflow")
    try:
        args = _artifacts(tmp_path / "run")
        registry.register("fraud", **args)
        registry.set_status("fraud", 1, "Approved", reason="looked at it")
        again = registry.register("fraud", **{**args, "run_id": "run-2"}, reuse_identical=True)
        assert (again.version, again.status) == (1, "Approved")  # the same model, the human decision stands
        approved = registry.register(
            "fraud", **{**args, "run_id": "run-3", "approval_status": "Approved"}, reuse_identical=True
        )
        assert (approved.version, approved.status) == (2, "Approved")  # the run asked for another status
        fresh = registry.register("fraud", **{**args, "run_id": "run-4", "approval_status": "Approved"})
        assert fresh.version == 3  # without reuse_identical (--no-cache), always a new version
    finally:
        registry.close()


@pytest.mark.slow
def test_a_changed_facet_or_requested_status_registers_a_new_version(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pipelines.yaml", tmp_path / "pipelines.yaml")
    assert run_cli("sample-data", "data", "--rows", "1000", cwd=tmp_path).returncode == 0

    def run(*sets: str) -> dict:
        args = [a for s in sets for a in ("--set", s)]
        proc = run_cli("run", *args, "--set", "gate.threshold=0.5", cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return json.loads((tmp_path / ".fraudflow" / "runs" / "latest" / "run.json").read_text())

    def show(version: int) -> dict:
        proc = run_cli("registry", "show", "fraud-detect-xgb", str(version), "--format", "json", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def facets(version: int) -> set[str]:
        bias = show(version)["bias"]
        return set(bias["post_training_bias_metrics"]["facets"])

    assert run()["model_package"]["version"] == 1
    assert facets(1) == {"customer_gender_female"}
    assert run()["model_package"]["version"] == 1  # nothing changed: reused

    male = run("bias.facet=customer_gender_male")
    assert male["model_package"]["version"] == 2
    assert {s["name"]: s["status"] for s in male["steps"]}["register"] == "ran"
    assert facets(2) == {"customer_gender_male"} and facets(1) == {"customer_gender_female"}

    approved = run("bias.facet=customer_gender_male", "register.approval_status=Approved")
    assert approved["model_package"] == {"group": "fraud-detect-xgb", "version": 3, "status": "Approved"}
    assert show(3)["status"] == "Approved" and show(2)["status"] == "PendingManualApproval"
