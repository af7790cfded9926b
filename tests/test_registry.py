"""The embedded model registry: numbering under concurrency, immutability, approval rules, endpoints, CLI."""

from __future__ import annotations

import json
import multiprocessing as mp
import re
import shutil
from pathlib import Path

import pytest

from fraudflow import exits
from fraudflow.cli import main
from fraudflow.errors import UserError
from fraudflow.local.registry import Registry, VariantSpec

METRICS = {
    "classification_metrics": {
        "roc_auc": {"value": 0.8123, "confidence_interval": {"lower": 0.7, "upper": 0.9, "level": 0.95}}
    },
    "decision_threshold": 0.4,
}


def make_run(root: Path, tag: str = "r") -> tuple[Path, Path]:
    run = root / f"run-{tag}"
    (run / "model").mkdir(parents=True)
    (run / "model" / "xgboost-model").write_bytes(b"model-" + tag.encode())
    (run / "model" / "model.json").write_text("{}")
    (run / "feature_schema.json").write_text(json.dumps({"features": ["a", "b"]}))
    return run / "model", run / "feature_schema.json"


def register(
    reg: Registry, root: Path, tag: str = "r", group: str = "fraud", status: str = "PendingManualApproval"
):
    model_dir, schema = make_run(root, tag)
    return reg.register(
        group,
        model_dir=model_dir,
        feature_schema=schema,
        metrics=METRICS,
        bias={"pre_training_bias_metrics": {}},
        explainability=None,
        baselines={"features": {"a": {"mean": 1.0}}},
        approval_status=status,
        pipeline="fraud-detect-xgb",
        run_id=tag,
    )


def test_register_copies_artifacts_and_numbers_versions(tmp_path):
    reg = Registry(tmp_path / ".fraudflow")
    v1 = register(reg, tmp_path, "a")
    v2 = register(reg, tmp_path, "b")
    assert (v1.version, v2.version) == (1, 2)
    shutil.rmtree(tmp_path / "run-a")  # the run is gone; the registered version is not
    got = reg.get("fraud", 1)
    assert (got.model_dir / "xgboost-model").read_bytes() == b"model-a"
    assert json.loads(got.feature_schema_path.read_text()) == {"features": ["a", "b"]}
    assert json.loads((got.artifact_dir / "evaluation.json").read_text()) == METRICS
    assert got.decision_threshold == 0.4 and got.roc_auc == 0.8123
    assert got.status == "PendingManualApproval" and got.history[0].status == "PendingManualApproval"
    assert [m.version for m in reg.list_versions("fraud")] == [1, 2]
    assert reg.list_groups()[0] == {"name": "fraud", "created": got.created, "versions": 2, "latest": 2}
    assert got.to_dict()["baselines"] == {"features": {"a": {"mean": 1.0}}}


def test_failed_registration_leaves_no_half_version(tmp_path):
    reg = Registry(tmp_path / ".fraudflow")
    register(reg, tmp_path, "a")
    model_dir, schema = make_run(tmp_path, "bad")
    with pytest.raises(ValueError):  # NaN is not JSON: fails inside the transaction, after the rename
        reg.register(
            "fraud",
            model_dir=model_dir,
            feature_schema=schema,
            metrics={"x": float("nan")},
            bias=None,
            explainability=None,
            baselines=None,
            approval_status="Approved",
            pipeline="p",
            run_id="bad",
        )
    assert [m.version for m in reg.list_versions("fraud")] == [1]
    assert sorted(p.name for p in (reg.root / "fraud").iterdir()) == ["1"]
    assert not any((reg.root / ".staging").iterdir())
    # a folder orphaned by a crash between rename and commit is replaced, not trusted
    (reg.root / "fraud" / "2").mkdir()
    (reg.root / "fraud" / "2" / "junk").write_text("x")
    v2 = register(reg, tmp_path, "c")
    assert v2.version == 2 and not (v2.artifact_dir / "junk").exists()


def _register_many(args: tuple[str, int, int]) -> list[int]:
    state, worker, n = args
    root = Path(state).parent / f"w{worker}"
    reg = Registry(Path(state))
    return [register(reg, root, f"{worker}-{i}").version for i in range(n)]


def test_concurrent_registrations_neither_lose_nor_duplicate(tmp_path):
    state = tmp_path / ".fraudflow"
    Registry(state).close()
    with mp.get_context("spawn").Pool(8) as pool:
        results = pool.map(_register_many, [(str(state), w, 5) for w in range(8)])
    got = sorted(v for r in results for v in r)
    assert got == list(range(1, 41))
    reg = Registry(state)
    versions = reg.list_versions("fraud")
    assert [m.version for m in versions] == list(range(1, 41))
    for mv in versions:  # each row points at its own artifacts
        meta = json.loads((mv.artifact_dir / "version.json").read_text())
        assert meta["run_id"] == mv.run_id and meta["version"] == mv.version
        assert (mv.model_dir / "xgboost-model").read_bytes() == f"model-{mv.run_id}".encode()


def test_approval_rules_and_history(tmp_path):
    reg = Registry(tmp_path / ".fraudflow")
    register(reg, tmp_path)
    mv = reg.set_status("fraud", 1, "Approved", "looks good")
    assert mv.status == "Approved" and mv.history[-1].reason == "looks good"
    assert reg.set_status("fraud", 1, "Approved").history == mv.history  # no-op
    mv = reg.set_status("fraud", 1, "Rejected", "bias too high")  # rejecting an approved version is allowed
    assert [h.status for h in mv.history] == ["PendingManualApproval", "Approved", "Rejected"]
    with pytest.raises(UserError, match="FF804"):
        reg.set_status("fraud", 1, "PendingManualApproval")
    with pytest.raises(UserError, match="FF804"):
        reg.set_status("fraud", 1, "approved")
    with pytest.raises(UserError, match="FF802") as err:
        reg.get("fraudd", 1)
    assert "groups: fraud" in str(err.value)
    with pytest.raises(UserError, match="FF803"):
        reg.get("fraud", 7)
    with pytest.raises(UserError, match="FF801"):
        register(reg, tmp_path, "x", group="../evil")


def test_endpoints_deploy_and_follow_approved(tmp_path):
    reg = Registry(tmp_path / ".fraudflow")
    for tag in "abc":
        register(reg, tmp_path, tag)
    ep = reg.deploy("fraud-ep", [VariantSpec("AllTraffic", "fraud", 1, 1.0)])
    assert ep.generation == 1 and ep.variants[0].version == 1
    ep = reg.deploy("fraud-ep", [VariantSpec("A", "fraud", 1, 0.7), VariantSpec("B", "fraud", 2, 0.3)])
    assert ep.generation == 2 and [v.name for v in ep.variants] == ["A", "B"]
    assert reg.endpoint_generation("fraud-ep") == 2
    for bad in (
        [],
        [VariantSpec("A", "fraud", 1, -1)],
        [VariantSpec("A", "fraud", 1), VariantSpec("A", "fraud", 2)],
    ):
        with pytest.raises(UserError, match="FF807"):
            reg.deploy("fraud-ep", bad)
    with pytest.raises(UserError, match="FF803"):
        reg.deploy("fraud-ep", [VariantSpec("A", "fraud", 9, 1)])
    with pytest.raises(UserError, match="FF805"):
        reg.get_endpoint("other")

    reg.deploy("live", [VariantSpec("AllTraffic", "fraud", 1, 1)], follow_approved=True)
    reg.set_status("fraud", 3, "Approved")
    assert reg.get_endpoint("live").variants[0].version == 3
    reg.set_status("fraud", 2, "Approved")  # older than 3: the newest approved still wins
    assert reg.get_endpoint("live").variants[0].version == 3
    reg.set_status("fraud", 3, "Rejected")
    live = reg.get_endpoint("live")
    assert live.variants[0].version == 2 and live.generation == 3
    assert reg.get_endpoint("fraud-ep").variants[0].version == 1  # pinned endpoints never move


def test_registry_cli(tmp_path, capsys):
    reg = Registry(tmp_path / ".fraudflow")
    register(reg, tmp_path, "a")
    register(reg, tmp_path, "b")
    reg.deploy("fraud-ep", [VariantSpec("AllTraffic", "fraud", 2, 1.0)])
    ws = ["--workspace", str(tmp_path)]

    assert main(["registry", "list", *ws]) == 0
    out = capsys.readouterr().out
    assert "fraud (2 versions)" in out and "PendingManualApproval" in out and "0.8123" in out
    assert "fraud-ep" in out.splitlines()[-1]

    assert main(["registry", "approve", "fraud", "2", "--reason", "ok", *ws]) == 0
    assert "fraud version 2: Approved (was PendingManualApproval)" in capsys.readouterr().out
    assert main(["registry", "list", "--format", "json", *ws]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc[0]["versions"][1] | {"created": None} == {
        "version": 2,
        "status": "Approved",
        "roc_auc": 0.8123,
        "created": None,
        "pipeline": "fraud-detect-xgb",
        "run_id": "b",
        "endpoints": ["fraud-ep"],
    }
    assert main(["registry", "show", "fraud", "2", *ws]) == 0
    out = capsys.readouterr().out
    assert "status              Approved" in out and "roc_auc" in out and "0.95 CI 0.7000 .. 0.9000" in out
    assert main(["registry", "show", "fraud", "2", "--format", "json", *ws]) == 0
    assert json.loads(capsys.readouterr().out)["history"][-1]["reason"] == "ok"
    assert main(["registry", "reject", "fraud", "2", *ws]) == 0
    capsys.readouterr()

    assert main(["registry", "show", "fraud", "9", *ws]) == 1
    err = capsys.readouterr().err
    assert "FF803" in err and "versions: 1, 2" in err
    assert main(["registry", "approve", "nope", "1", *ws]) == 1
    assert "FF802" in capsys.readouterr().err
    assert main(["registry", "list", "--workspace", str(tmp_path / "empty")]) == 0
    assert "no model package groups yet" in capsys.readouterr().out


@pytest.mark.parametrize("version", ["1" * 5000, "9" * 20, "abc", "-1", "0", "١", "1.0", ""])
@pytest.mark.parametrize("action", ["show", "approve", "reject"])
def test_a_version_that_is_not_a_version_number_is_a_short_ff809(tmp_path, capsys, action, version):
    reg = Registry(tmp_path / ".fraudflow")
    register(reg, tmp_path)
    reg.close()
    assert main(["registry", action, "fraud", version, "--workspace", str(tmp_path)]) == exits.USAGE
    err = capsys.readouterr().err
    assert "FF809" in err and len(err) < 300, err


def test_registry_api_versions_beyond_sqlite_integers_do_not_exist(tmp_path):
    reg = Registry(tmp_path / ".fraudflow")
    register(reg, tmp_path)
    for version in (2**63, 10**30, 0, -5):
        with pytest.raises(UserError, match="FF803"):
            reg.get("fraud", version)


CONTROL = "\x1b[31mRED\x1b[0m\x07\rover\x85\u202eevil\u2028"


def test_a_reason_with_control_characters_is_refused(tmp_path, capsys):
    reg = Registry(tmp_path / ".fraudflow")
    register(reg, tmp_path)
    ws = ["--workspace", str(tmp_path)]
    assert main(["registry", "approve", "fraud", "1", "--reason", CONTROL, *ws]) == 1
    assert "FF810" in capsys.readouterr().err
    assert main(["registry", "approve", "fraud", "1", "--reason", "x" * 1001, *ws]) == 1
    assert "FF810" in capsys.readouterr().err
    assert reg.get("fraud", 1).status == "PendingManualApproval"


def test_registry_show_and_list_escape_control_characters_already_stored(tmp_path, capsys):
    """Text written before the check (or by another tool) is printed escaped, never acted on."""
    import sqlite3

    reg = Registry(tmp_path / ".fraudflow")
    register(reg, tmp_path)
    reg.close()
    with sqlite3.connect(tmp_path / ".fraudflow" / "registry.db") as conn:
        conn.execute("UPDATE approvals SET reason=?, actor=?", (CONTROL, "ev\x1bil"))
        conn.execute("UPDATE versions SET description=?, run_id=?", (CONTROL, "r\x1b[2J"))
    ws = ["--workspace", str(tmp_path)]
    for args in (["show", "fraud", "1"], ["list"]):
        assert main(["registry", *args, *ws]) == 0
        out = capsys.readouterr().out
        assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028-\u202e]", out), repr(out)
    assert main(["registry", "show", "fraud", "1", *ws]) == 0
    assert "\\x1b[31mRED\\x1b[0m\\x07\\rover\\x85\\u202eevil\\u2028" in capsys.readouterr().out


def test_any_reason_is_refused_or_printed_as_given_without_control_characters(tmp_path, capsys):
    """Property over arbitrary text: approve/reject --reason either fails with FF810 or succeeds, and then
    `registry show` prints the reason verbatim and nothing that drives a terminal."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    reg = Registry(tmp_path / ".fraudflow")
    register(reg, tmp_path)
    reg.close()
    ws = ["--workspace", str(tmp_path)]
    state = {"action": "approve"}

    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(st.text(max_size=40))
    def check(reason: str) -> None:
        code = main(["registry", state["action"], "fraud", "1", f"--reason={reason}", *ws])
        err = capsys.readouterr().err
        if code == 1:
            assert "FF810" in err
            return
        assert code == 0, err
        state["action"] = "reject" if state["action"] == "approve" else "approve"
        assert main(["registry", "show", "fraud", "1", *ws]) == 0
        out = capsys.readouterr().out
        assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]", out)
        if reason:
            assert out.rstrip("\n").endswith(f": {reason}")

    check()
