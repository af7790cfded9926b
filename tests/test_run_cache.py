"""The step cache and the run's state files: a step's key covers the content of every file it reads, `--no-cache`
replaces an entry, scratch folders of killed runs are cleaned, and state files are never left truncated.

The fast tests drive fraudflow.local.store and the runner's key directly; the slow ones drive `fraudflow run`."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudflow.local.store import QUIET_NS, Digests, NotRegular, Store, atomic_write_text
from tests.conftest import ROOT, run_cli

# --------------------------------------------------------------------------------------- folder contents

NAMES = st.text("abcdefgh._-", min_size=1, max_size=8).filter(lambda n: n not in (".", ".."))
TREES = st.dictionaries(
    st.lists(NAMES, min_size=1, max_size=3).map(lambda parts: "/".join(parts)),
    st.binary(max_size=64),
    min_size=1,
    max_size=6,
)
EDITS = ("flip", "append", "truncate", "rename", "add", "add_hidden", "delete", "move_down", "touch_empty")


def _write_tree(root: Path, files: dict[str, bytes]) -> dict[str, bytes]:
    """Write what can be written (a name used as both a file and a folder keeps the first); return it."""
    written = {}
    for rel, data in files.items():
        path = root / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                continue
            path.write_bytes(data)
            written[rel] = data
        except (NotADirectoryError, FileExistsError, IsADirectoryError):
            continue
    return written


def _edit(root: Path, files: dict[str, bytes], edit: str, pick: int, byte: int) -> None:
    rel = sorted(files)[pick % len(files)]
    path, data = root / rel, files[rel]
    if edit == "flip" and data:
        i = byte % len(data)
        path.write_bytes(data[:i] + bytes([data[i] ^ (1 + byte % 255)]) + data[i + 1 :])
    elif edit == "flip" or edit == "append":
        path.write_bytes(data + bytes([byte % 256]))
    elif edit == "truncate":
        path.write_bytes(data[:-1] if data else b"x")
    elif edit == "rename":
        path.rename(path.with_name(path.name + "z"))
    elif edit == "add":
        (root / f"new-{byte}.csv").write_bytes(b"")
    elif edit == "add_hidden":
        (root / f".hidden-{byte}").write_bytes(b"x")
    elif edit == "delete":
        path.unlink()
    elif edit == "move_down":
        (root / "sub-new").mkdir(exist_ok=True)
        path.rename(root / "sub-new" / path.name)
    elif edit == "touch_empty":
        path.write_bytes(b"" if data else b"\n")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=TREES,
    edit=st.sampled_from(EDITS),
    pick=st.integers(0, 100),
    byte=st.integers(0, 10_000),
    large=st.sampled_from([0, 1 << 30]),
)
def test_any_change_to_a_folder_changes_its_digest(
    tmp_path_factory: pytest.TempPathFactory, files: dict, edit: str, pick: int, byte: int, large: int
) -> None:
    """Whatever byte or file changes below a source folder, its digest changes (with or without the memo of
    large files: `large=0` sends every file through it)."""
    root = tmp_path_factory.mktemp("src")
    files = _write_tree(root, files)
    memo = root.parent / f"{root.name}-memo.json"
    before = Digests(memo, large=large)
    first = before.tree(root)
    before.save()
    _edit(root, files, edit, pick, byte)
    assert Digests(memo, large=large).tree(root) != first, edit
    assert Digests(memo, large=large).tree(root) == Digests(None).tree(root)


def test_the_large_file_memo_is_used_once_the_file_is_quiet_and_never_after_a_change(tmp_path: Path) -> None:
    big = tmp_path / "data" / "claims.csv"
    big.parent.mkdir()
    big.write_bytes(b"a,b\n" + b"1,2\n" * 1000)
    memo = tmp_path / "memo.json"
    fresh = Digests(memo, large=1)
    digest = fresh.tree(big.parent)
    fresh.save()
    assert not memo.exists()  # changed less than QUIET_NS ago: its stat cannot vouch for its content yet
    time.sleep(QUIET_NS / 1e9 + 0.2)
    quiet = Digests(memo, large=1)
    assert quiet.tree(big.parent) == digest
    quiet.save()
    assert str(big.resolve()) in json.loads(memo.read_text())
    with big.open("r+b") as fh:  # same size, same content length: only ctime/mtime can tell
        fh.write(b"x")
    assert Digests(memo, large=1).tree(big.parent) != digest


def test_a_fifo_or_a_device_is_refused_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "folder" / "claims.csv"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    with pytest.raises(NotRegular, match="FIFO"):
        Digests().tree(fifo)
    with pytest.raises(NotRegular, match="FIFO"):
        Digests().tree(fifo.parent)
    with pytest.raises(NotRegular, match="character device"):
        Digests().tree(Path("/dev/zero"))
    fifo.rename(fifo.with_name(".lock"))  # a hidden special file is never read by preprocess: skipped
    Digests().tree(fifo.parent)


# ------------------------------------------------------------------------------------- the runner's keys


def _plan(ws: Path, source: str) -> object:
    from fraudflow.local.runner import build_plan
    from fraudflow.spec.load import load_one

    shutil.copy(ROOT / "pipelines.yaml", ws / "pipelines.yaml")
    spec = load_one(
        ws / "pipelines.yaml", env=None, overrides=[f"data.sources.claims={source}"], pipeline=None
    )
    return build_plan(spec)


def _lay_inputs(ws: Path, fake: Path) -> None:
    """The claims source as a folder of two files, and fake outputs of preprocess (all that train reads)."""
    for folder in (ws / "data" / "claims", fake):
        shutil.rmtree(folder, ignore_errors=True)
    (ws / "data" / "claims" / "sub").mkdir(parents=True)
    (ws / "data" / "claims" / "part-1.csv").write_text("policy_id,fraud\n1,0\n")
    (ws / "data" / "claims" / "sub" / "part-2.csv").write_text("policy_id,fraud\n2,1\n")
    for name in ("train", "validation"):
        (fake / "output" / name).mkdir(parents=True)
        (fake / "output" / name / f"{name}.csv").write_text("0,1\n1,2\n")
    (fake / "output" / "schema").mkdir(parents=True)  # train packs the feature schema for serving
    (fake / "output" / "schema" / "feature_schema.json").write_text('{"label": "fraud", "features": ["x"]}\n')


@pytest.fixture()
def keyed(tmp_path: Path) -> tuple:
    from fraudflow.local.runner import _Runner
    from fraudflow.sampledata import generate

    ws, fake = tmp_path / "ws", tmp_path / "pre"
    generate(ws / "data", rows=100)  # valid data for loading the pipeline; the key tests then lay their own
    (ws / "data" / "claims").mkdir()
    (ws / "data" / "claims.csv").rename(ws / "data" / "claims" / "claims.csv")
    plan = _plan(ws, "data/claims")
    _lay_inputs(ws, fake)
    store = Store(ws)
    run_id, run_dir = store.new_run()
    runner = _Runner(plan, store, run_id, run_dir, True, None)
    runner.dirs["preprocess"] = fake
    return runner, plan, ws, fake


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edit=st.sampled_from(EDITS), pick=st.integers(0, 100), byte=st.integers(0, 10_000))
def test_any_change_to_what_a_step_reads_changes_its_cache_key(
    keyed: tuple, edit: str, pick: int, byte: int
) -> None:
    """The runner's own key function: a source folder for preprocess, earlier steps' outputs for train."""
    runner, plan, ws, fake = keyed
    preprocess, train = plan.step("preprocess"), plan.step("train")
    read_by_train = fake / "output" / ("train", "validation", "schema")[byte % 3]
    for step, root in ((preprocess, ws / "data" / "claims"), (train, read_by_train)):
        _lay_inputs(ws, fake)
        files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        before = runner._digest(step)
        assert runner._digest(step) == before  # stable while nothing changes
        _edit(root, files, edit, pick, byte)
        assert runner._digest(step) != before, (step.name, edit)


# ------------------------------------------------------------------------------------------ state files


def _write_under_fsize_limit(path: Path, text: str, limit: int) -> subprocess.CompletedProcess:
    code = (
        "import sys; from pathlib import Path; from fraudflow.local.store import atomic_write_text;\n"
        "atomic_write_text(Path(sys.argv[1]), sys.argv[2])"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(path), text],
        capture_output=True,
        text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
    )


def test_a_failed_write_keeps_the_old_file_whole_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    atomic_write_text(target, '{"status": "succeeded"}\n')
    proc = _write_under_fsize_limit(target, "x" * 5000, 1024)  # a real EFBIG from the kernel
    assert proc.returncode != 0 and "File too large" in proc.stderr
    assert target.read_text() == '{"status": "succeeded"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


# ------------------------------------------------------------------------------------- scratch folders


def test_only_scratch_folders_of_dead_processes_are_cleaned(tmp_path: Path) -> None:
    store = Store(tmp_path)
    mine = store.scratch("a" * 64)  # this process: alive
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        live_other = store.steps / mine.name.replace(f"-{os.getpid()}.", f"-{sleeper.pid}.", 1)
        live_other = live_other.with_name(live_other.name.rsplit(".", 1)[0] + ".0-abcd1234")
        gone = store.steps / mine.name.replace(f"-{os.getpid()}.", f"-{dead.pid}.", 1)
        other_host = store.steps / ".tmp-aaaa-00000000-1.0-abcd1234"
        legacy_old, legacy_new = store.steps / ".tmp-aaaa-0001", store.steps / ".tmp-bbbb-0002"
        for p in (live_other, gone, other_host, legacy_old, legacy_new):
            p.mkdir()
        week = time.time() - 8 * 24 * 3600
        os.utime(legacy_old, (week, week))
        removed = store.clean_stale_scratch()
        assert sorted(removed) == sorted([gone, legacy_old])
        assert mine.is_dir() and live_other.is_dir() and other_host.is_dir() and legacy_new.is_dir()
    finally:
        sleeper.kill()
        sleeper.wait()


# -------------------------------------------------------------------------------------- end to end (slow)


def _workspace(tmp_path: Path, rows: int) -> Path:
    """Sample data with the claims source as a folder (data/claims/claims.csv)."""
    shutil.copy(ROOT / "pipelines.yaml", tmp_path / "pipelines.yaml")
    made = run_cli("sample-data", "data", "--rows", str(rows), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    (tmp_path / "data" / "claims").mkdir()
    (tmp_path / "data" / "claims.csv").rename(tmp_path / "data" / "claims" / "claims.csv")
    return tmp_path


SETS = ("--set", "data.sources.claims=data/claims", "--set", "gate.threshold=0.5")


def _summary(ws: Path) -> dict:
    return json.loads((ws / ".fraudflow" / "runs" / "latest" / "run.json").read_text())


def _steps(ws: Path) -> dict[str, str]:
    return {s["name"]: s["status"] for s in _summary(ws)["steps"]}


def _joined_rows(ws: Path) -> int:
    report = ws / ".fraudflow" / "runs" / "latest" / "preprocess" / "output" / "report" / "preprocess.json"
    return json.loads(report.read_text())["joined_rows"]


@pytest.mark.slow
def test_a_changed_file_in_a_source_folder_runs_preprocess_again(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, 2000)
    first = run_cli("run", *SETS, cwd=ws)
    assert first.returncode == 0, first.stdout + first.stderr
    assert _joined_rows(ws) == 2000 and "2000 rows" in first.stdout

    part = ws / "data" / "claims" / "claims.csv"
    claims = pd.read_csv(part, keep_default_na=False)
    claims.head(1000).to_csv(part, index=False)  # the same path, new content
    second = run_cli("run", *SETS, cwd=ws)
    assert second.returncode == 0, second.stdout + second.stderr
    assert _steps(ws)["preprocess"] == "ran" and _joined_rows(ws) == 1000 and "1000 rows" in second.stdout
    registered = _summary(ws)["model_package"]
    assert registered["version"] == 2  # the new model, not the 2000-row one
    shown = run_cli("registry", "show", "fraud-detect-xgb", "2", "--format", "json", cwd=ws)
    metrics = json.loads(shown.stdout)["metrics"]
    assert sum(map(sum, _matrix(metrics))) == 100  # the test split of 1000 rows

    claims.iloc[1000:1500].to_csv(ws / "data" / "claims" / "part-2.csv", index=False)  # a new file
    third = run_cli("run", *SETS, cwd=ws)
    assert third.returncode == 0, third.stdout + third.stderr
    assert _steps(ws)["preprocess"] == "ran" and _joined_rows(ws) == 1500


def _matrix(metrics: dict) -> list[list[int]]:
    cm = metrics["classification_metrics"]["confusion_matrix"]
    return [[int(cm[a][b]) for b in ("0", "1")] for a in ("0", "1")]


@pytest.mark.slow
def test_no_cache_replaces_a_damaged_cache_entry(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, 1000)
    assert run_cli("run", *SETS, cwd=ws).returncode == 0
    model = ws / ".fraudflow" / "runs" / "latest" / "train" / "output" / "model"
    for f in model.iterdir():
        shutil.rmtree(f) if f.is_dir() else f.unlink()  # a damaged cache entry: the model files are gone
    damaged = run_cli("run", *SETS, cwd=ws)  # evaluate reads the model: its key changed, it runs and fails
    assert damaged.returncode == 1 and "no model" in damaged.stderr and "Traceback" not in damaged.stderr
    fresh = run_cli("run", *SETS, "--no-cache", cwd=ws)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    again = run_cli("run", *SETS, cwd=ws)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _steps(ws)["train"] == "cached"  # the entry --no-cache wrote, not the damaged one
    assert (ws / ".fraudflow" / "runs" / "latest" / "train" / "output" / "model" / "xgboost-model").is_file()


@pytest.mark.slow
def test_a_killed_run_leaves_scratch_that_the_next_run_cleans(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, 1000)
    steps = ws / ".fraudflow" / "steps"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fraudflow", "run", *SETS],
        cwd=ws,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(6000):  # wait (at most ~5 min) for a step to be under way
            if steps.is_dir() and any(steps.glob(".tmp-*")) or proc.poll() is not None:
                break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    left = list(steps.glob(".tmp-*"))
    assert left, "the run was killed mid-step: its scratch folder is left"
    again = run_cli("run", *SETS, cwd=ws)
    assert again.returncode == 0, again.stdout + again.stderr
    assert not any(p.exists() for p in left)
    assert list(steps.glob(".tmp-*")) == []


@pytest.mark.slow
def test_a_failed_run_summary_write_is_an_error_and_leaves_no_truncated_file(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, 1000)
    stop = ("--set", "gate.threshold=0.99")  # evaluate's config holds the gate: the same in both runs
    assert run_cli("run", *SETS, *stop, cwd=ws).returncode == 3
    before = os.readlink(ws / ".fraudflow" / "runs" / "latest")
    limit = 1024  # every step is cached: the first file this run writes is run.json (~2 KB)
    proc = subprocess.run(
        [sys.executable, "-m", "fraudflow", "run", *SETS, *stop],
        cwd=ws,
        capture_output=True,
        text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FF695" in proc.stderr and "run.json" in proc.stderr and "Traceback" not in proc.stderr
    runs = [p for p in (ws / ".fraudflow" / "runs").iterdir() if p.name not in ("latest", before)]
    assert len(runs) == 1
    assert sorted(p.name for p in runs[0].iterdir() if p.is_file() and not p.is_symlink()) == []
    assert os.readlink(ws / ".fraudflow" / "runs" / "latest") == before


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "fifo_in_folder"])
def test_a_fifo_or_dev_zero_as_a_source_is_a_located_error(tmp_path: Path, kind: str) -> None:
    ws = _workspace(tmp_path, 200)
    if kind == "fifo":
        os.mkfifo(ws / "data" / "pipe.csv")
        source = "data/pipe.csv"
    elif kind == "dev_zero":
        source = "/dev/zero"
    else:
        os.mkfifo(ws / "data" / "claims" / "more.csv")
        source = "data/claims"
    for command in ("validate", "run"):
        proc = run_cli(command, "--set", f"data.sources.claims={source}", cwd=ws, timeout=120)
        assert proc.returncode == 1, (command, proc.stdout + proc.stderr)
        assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr
        assert "FF511" in proc.stderr + proc.stdout  # run validates first


@pytest.mark.slow
def test_a_fifo_the_validation_does_not_read_stops_the_run_before_it_blocks(tmp_path: Path) -> None:
    """validate reads the files preprocess reads (the top of a source folder); the run's cache key covers the
    whole folder, so a FIFO further down is refused there (FF694) instead of blocking the digest."""
    ws = _workspace(tmp_path, 200)
    (ws / "data" / "claims" / "old").mkdir()
    os.mkfifo(ws / "data" / "claims" / "old" / "stream.csv")
    proc = run_cli("run", *SETS, cwd=ws, timeout=120)
    assert proc.returncode == 1 and "FF694" in proc.stderr and "FIFO" in proc.stderr, proc.stderr
    assert "stream.csv" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_changing_the_gate_threshold_runs_no_step_again(tmp_path: Path) -> None:
    """The gate reads evaluation.json; no step reads gate.threshold, so no step's key covers it."""
    ws = _workspace(tmp_path, 1000)
    first = run_cli("run", *SETS, cwd=ws)
    assert first.returncode == 0, first.stdout + first.stderr
    second = run_cli("run", *SETS, "--set", "gate.threshold=0.51", cwd=ws)
    assert second.returncode == 0, second.stdout + second.stderr
    steps = _steps(ws)
    for name in ("preprocess", "train", "evaluate", "bias", "explain"):
        assert steps[name] == "cached", (name, second.stdout)
    assert _summary(ws)["gate"]["threshold"] == 0.51
