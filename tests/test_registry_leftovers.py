"""Issue 9 item 14's registry leftovers: staging folders of registrations killed mid-copy are cleaned once
their process is gone (never while it runs), and `fraudflow run` never points an endpoint at a version that
cannot load (its deploy step and an Approved registration are checked as `registry approve` is, FF811)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fraudflow.errors import UserError
from fraudflow.local import store
from fraudflow.local.registry import STAGING, Registry, VariantSpec
from fraudflow.local.registry_cli import servable
from tests.conftest import ROOT, run_cli
from tests.test_registry import register

KILLED_MID_COPY = """
import shutil, sys, time
from pathlib import Path
from fraudflow.local.registry import Registry
root = Path(sys.argv[1])
model = root / "model"
model.mkdir()
(model / "xgboost-model").write_text("m")
(root / "schema.json").write_text("{}")
copy = shutil.copy2
def slow_copy(src, dst, **kw):  # a copy that takes as long as a large model's: the kill lands mid-copy
    copy(src, dst, **kw)
    time.sleep(600)
shutil.copy2 = slow_copy
Registry(root / ".fraudflow").register(
    "fraud", model_dir=model, feature_schema=root / "schema.json", metrics={}, bias=None,
    explainability=None, baselines=None, approval_status="PendingManualApproval", pipeline="p", run_id="r",
)
"""


def _staging(reg: Registry) -> set[str]:
    folder = reg.root / STAGING
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def test_staging_of_a_killed_registration_is_cleaned_by_the_next_one(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_MID_COPY), str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    reg = Registry(tmp_path / ".fraudflow")
    try:
        deadline = time.monotonic() + 120
        while not _staging(reg) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        left = _staging(reg)
        assert len(left) == 1 and proc.poll() is None
        register(reg, tmp_path, "live")  # the owner still runs: its folder is kept
        assert _staging(reg) == left
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert _staging(reg) == left  # the kill left it behind
    register(reg, tmp_path, "next")
    assert _staging(reg) == set()
    assert [v.version for v in reg.list_versions("fraud")] == [1, 2]


def test_only_folders_of_gone_processes_on_this_host_are_removed(tmp_path: Path) -> None:
    reg = Registry(tmp_path / ".fraudflow")
    folder = reg.root / STAGING
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    names = {
        "mine": f"{store.owner_tag()}-{'a' * 32}",
        "gone": f"{store._host_tag()}-{gone.pid}.1-{'b' * 32}",
        "other_host": f"00000000-{gone.pid}.1-{'c' * 32}",
        "legacy_new": "d" * 32,
        "legacy_old": "e" * 32,
        "not_ours": "notes-kept",
    }
    for name in names.values():
        (folder / name / "model").mkdir(parents=True)
    week_ago = time.time() - 8 * 24 * 3600
    os.utime(folder / names["legacy_old"], (week_ago, week_ago))
    removed = {p.name for p in reg.clean_stale_staging()}
    assert removed == {names["gone"], names["legacy_old"]}
    assert _staging(reg) == {names[k] for k in ("mine", "other_host", "legacy_new", "not_ours")}


# ------------------------------------------------------------------------------ the servability check


@pytest.fixture()
def sound_and_damaged(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A real, servable model folder and schema, and a copy whose feature schema is damaged."""
    from tests.test_serve import train_and_register

    train_and_register(tmp_path / "src", rounds=5, endpoint=None)
    mv = Registry(tmp_path / "src" / ".fraudflow").get("fraud-detect-xgb", 1)
    bad = tmp_path / "bad_schema.json"
    bad.write_text('{"features": [')
    return mv.model_dir, mv.feature_schema_path, bad


def _register(reg: Registry, model: Path, schema: Path, status: str, check=None):
    return reg.register(
        "fraud-detect-xgb",
        model_dir=model,
        feature_schema=schema,
        metrics={"decision_threshold": 0.5},
        bias=None,
        explainability=None,
        baselines=None,
        approval_status=status,
        pipeline="p",
        run_id=f"r{time.time_ns()}",
        check=check,
    )


def test_an_approved_registration_never_repoints_an_endpoint_to_an_unservable_version(
    tmp_path: Path, sound_and_damaged
) -> None:
    model, schema, bad = sound_and_damaged
    reg = Registry(tmp_path / ".fraudflow")
    _register(reg, model, schema, "Approved")
    reg.deploy("ep", [VariantSpec("AllTraffic", "fraud-detect-xgb", 1, 1.0)], follow_approved=True)
    with pytest.raises(UserError) as err:
        _register(reg, model, bad, "Approved", check=servable)
    assert err.value.diagnostics[0].code == "FF811"
    assert [v.version for v in reg.list_versions("fraud-detect-xgb")] == [1]  # nothing registered
    assert reg.get_endpoint("ep").variants[0].version == 1
    assert _register(reg, model, schema, "Approved", check=servable).version == 2  # a sound one switches
    assert reg.get_endpoint("ep").variants[0].version == 2


def test_deploy_with_a_check_leaves_the_endpoint_when_a_version_cannot_load(
    tmp_path: Path, sound_and_damaged
) -> None:
    model, schema, bad = sound_and_damaged
    reg = Registry(tmp_path / ".fraudflow")
    _register(reg, model, schema, "PendingManualApproval")
    _register(reg, model, bad, "PendingManualApproval")
    reg.deploy("ep", [VariantSpec("AllTraffic", "fraud-detect-xgb", 1, 1.0)], check=servable)
    generation = reg.endpoint_generation("ep")
    with pytest.raises(UserError) as err:
        reg.deploy("ep", [VariantSpec("AllTraffic", "fraud-detect-xgb", 2, 1.0)], check=servable)
    assert err.value.diagnostics[0].code == "FF811"
    assert reg.get_endpoint("ep").variants[0].version == 1 and reg.endpoint_generation("ep") == generation


@pytest.mark.slow
def test_run_deploy_step_refuses_a_version_that_cannot_load(tmp_path: Path) -> None:
    """Through the CLI: v1 and v2 deployed by two runs; v1's snapshot damaged; a run whose deploy step would
    point the endpoint back at v1 fails with FF811 and the endpoint keeps serving v2."""
    shutil.copy(ROOT / "pipelines.yaml", tmp_path / "pipelines.yaml")
    assert run_cli("sample-data", "data", "--rows", "600", cwd=tmp_path).returncode == 0
    base = ["run", "--set", "gate.threshold=0.05"]
    assert run_cli(*base, cwd=tmp_path).returncode == 0
    v2 = [*base, "--set", "train.hyperparameters.max_depth=2"]
    assert run_cli(*v2, cwd=tmp_path).returncode == 0
    reg = Registry(tmp_path / ".fraudflow")
    assert reg.get_endpoint("fraud-detect-xgb").variants[0].version == 2
    reg.get("fraud-detect-xgb", 1).feature_schema_path.write_text('{"features": [')
    previous = '[{"name": "AllTraffic", "weight": 1, "model_version": "previous"}]'
    done = run_cli(*v2, "--from", "deploy", "--set", f"deploy.variants={previous}", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FF811" in done.stderr and "the deploy step would point endpoint 'fraud-detect-xgb'" in done.stderr
    assert "Traceback" not in done.stderr
    assert reg.get_endpoint("fraud-detect-xgb").variants[0].version == 2
    summary = json.loads((tmp_path / ".fraudflow" / "runs" / "latest" / "run.json").read_text())
    assert {s["name"]: s["status"] for s in summary["steps"]}["deploy"] == "failed"
