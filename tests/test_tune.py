"""The tune section: its semantic checks (FF530-FF539) hold for any search space, and `fraudflow run` with a
`tune:` section runs an Optuna study whose best trial's model is evaluated and registered."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudflow.spec.tuning import problems, search_space, train_hyperparameter_schema
from tests.conftest import ROOT, run_cli

HP_SCHEMA = train_hyperparameter_schema()
NUMERIC = sorted(n for n, s in HP_SCHEMA.items() if s.get("type") in ("integer", "number") and n != "seed")
SPACE = {
    "eta": {"min": 0.01, "max": 0.3, "scale": "log"},
    "max_depth": {"min": 2, "max": 8},
    "tree_method": {"values": ["hist", "approx"]},
}


def _cfg(tune: dict[str, Any], **train: Any) -> dict[str, Any]:
    hps = {"objective": "binary:logistic", "eval_metric": "auc", "max_depth": 3, "eta": 0.2, **train}
    return {"train": {"hyperparameters": hps}, "tune": tune}


def _tune(**kw: Any) -> dict[str, Any]:
    return {"objective": {"metric": "validation:auc"}, "hyperparameters": dict(SPACE), **kw}


def _codes(cfg: dict[str, Any], parameters: dict[str, str] | None = None) -> list[str]:
    return [p[0] for p in problems(cfg, parameters)]


# ---------------------------------------------------------------------------------------------- semantic checks


def test_the_issue_s_example_is_valid():
    assert _codes(_cfg(_tune(strategy="bayesian", max_trials=20, parallel_trials=2, seed=0))) == []


@pytest.mark.parametrize(
    ("change", "code", "path"),
    [
        (
            {"hyperparameters": {"etaa": {"min": 0.1, "max": 0.2}}},
            "FF530",
            ("tune", "hyperparameters", "etaa"),
        ),
        ({"hyperparameters": {"objective": {"values": ["binary:hinge"]}}}, "FF530", None),
        (
            {"hyperparameters": {"eta": {"min": 0.1, "max": 1.5}}},
            "FF531",
            ("tune", "hyperparameters", "eta", "max"),
        ),
        ({"hyperparameters": {"subsample": {"min": 0, "max": 1}}}, "FF531", None),
        ({"hyperparameters": {"max_depth": {"min": 2.5, "max": 8}}}, "FF532", None),
        ({"hyperparameters": {"tree_method": {"min": 1, "max": 2}}}, "FF532", None),
        ({"hyperparameters": {"tree_method": {"values": ["hist", "gpu"]}}}, "FF532", None),
        ({"hyperparameters": {"max_depth": {"values": [3, 4.5]}}}, "FF532", None),
        ({"hyperparameters": {"eta": {"min": 0.3, "max": 0.1}}}, "FF533", None),
        ({"hyperparameters": {"eta": {"min": 0.1, "max": 0.1}}}, "FF533", None),
        ({"hyperparameters": {"gamma": {"min": 0, "max": 5, "scale": "log"}}}, "FF534", None),
        (
            {"hyperparameters": {"eta": {"min": 0.01, "max": 0.3, "scale": "log", "step": 0.01}}},
            "FF534",
            None,
        ),
        ({"objective": {"metric": "validation:logloss"}}, "FF535", ("tune", "objective", "metric")),
        ({"objective": {"metric": "validation:auc", "direction": "minimize"}}, "FF535", None),
        ({"max_trials": 4, "parallel_trials": 5}, "FF536", ("tune", "parallel_trials")),
        ({"strategy": "grid"}, "FF537", ("tune", "hyperparameters", "eta")),
    ],
)
def test_each_mistake_has_its_code_and_place(change: dict[str, Any], code: str, path: tuple | None):
    found = list(problems(_cfg(_tune(**change))))
    assert code in [p[0] for p in found], found
    if path:
        assert path in [p[2] for p in found if p[0] == code]
    assert all(p[3] for p in found if p[0] == code), "every error comes with a hint"


def test_a_pipeline_parameter_on_a_searched_value_is_refused():
    assert _codes(_cfg(_tune()), {"MaxDepth": "train.hyperparameters.max_depth"}) == ["FF538"]
    assert _codes(_cfg(_tune()), {"Gamma": "train.hyperparameters.gamma"}) == []


def test_a_grid_says_how_many_combinations_it_holds():
    grid = {"max_depth": {"min": 2, "max": 5}, "eta": {"min": 0.1, "max": 0.3, "step": 0.1}}
    assert _codes(_cfg({**_tune(strategy="grid", max_trials=12), "hyperparameters": grid})) == []
    found = list(problems(_cfg({**_tune(strategy="grid", max_trials=20), "hyperparameters": grid})))
    assert [p[0] for p in found] == ["FF539"] and "12 combinations" in found[0][1]


def test_the_objective_s_default_metric_counts_as_logged():
    cfg = _cfg({"objective": {"metric": "validation:logloss"}, "hyperparameters": SPACE})
    del cfg["train"]["hyperparameters"]["eval_metric"]
    assert _codes(cfg) == []  # binary:logistic logs logloss by default


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(NUMERIC),
    low=st.one_of(st.floats(-2, 70, allow_nan=False), st.sampled_from([1e-200, 1e-39, 1e-30])),
    width=st.floats(0.001, 40, allow_nan=False),
    integers=st.booleans(),
)
def test_an_accepted_range_is_one_xgboost_trains_with_at_both_ends(name, low, width, integers):
    """The class of bug: a bound validate accepts but XGBoost refuses (or an integer that becomes a float)."""
    import xgboost as xgb

    high = low + width
    spec = {"min": round(low), "max": round(high)} if integers else {"min": low, "max": high}
    cfg = _cfg({"objective": {"metric": "validation:auc"}, "hyperparameters": {name: spec}})
    if _codes(cfg):
        return
    (r,) = search_space(cfg["tune"], HP_SCHEMA)
    if HP_SCHEMA[name]["type"] == "integer":
        assert isinstance(r.low, int) and isinstance(r.high, int)
    rng = np.random.RandomState(0)
    x, y = rng.rand(40, 3), np.arange(40) % 2
    params = {"objective": "binary:logistic", "tree_method": "hist", "verbosity": 0}
    if name == "max_depth" and 0 in (r.low, r.high):
        params["grow_policy"] = "lossguide"  # as the schema's description says
    for value in (r.low, r.high):
        rounds = int(value) if name == "num_round" else 1
        xgb.train(
            {**params, **({} if name == "num_round" else {name: value})}, xgb.DMatrix(x, y), min(rounds, 3)
        )


def test_validate_locates_a_tune_mistake_in_the_file(tmp_path: Path):
    tune = {"objective": {"metric": "validation:auc"}, "hyperparameters": {"eta": {"min": 0, "max": 0.3}}}
    res = run_cli("validate", str(_workspace(tmp_path, None, tune)))
    assert res.returncode == 1
    out = res.stdout + res.stderr
    assert re.search(r"pipelines\.yaml:\d+:\d+: FF531 eta min 0 must be above 0", out), out
    assert "FF2" not in out  # nothing else is wrong with the file


# ---------------------------------------------------------------------------------------------- local runs


def _workspace(tmp_path: Path, aws_data: Path | None, tune: dict[str, Any] | None) -> Path:
    """The project's pipelines.yaml on AWS's data (text edits: a YAML round trip would turn `on:` into True),
    without the MaxDepth parameter, plus a tune section."""
    text = (ROOT / "pipelines.yaml").read_text()
    if aws_data is not None:
        text = text.replace("data_dir: data ", f"data_dir: {aws_data} ", 1)
    text = "\n".join(ln for ln in text.splitlines() if "MaxDepth:" not in ln) + "\n"
    if tune:
        text += f"    tune: {json.dumps(tune)}\n"  # JSON is YAML; the pipeline's keys are indented 4
    path = tmp_path / "pipelines.yaml"
    path.write_text(text)
    return path


def _run(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    res = run_cli("run", str(path), *args, env={"OMP_NUM_THREADS": "1"}, timeout=1800)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def _latest(ws: Path) -> dict[str, Any]:
    return json.loads((ws / ".fraudflow" / "runs" / "latest" / "run.json").read_text())


def _validation_auc(run: dict[str, Any]) -> float:
    return run["metrics"]["validation:auc"]


@pytest.mark.slow
def test_a_small_study_in_two_processes_registers_its_best_trial(tmp_path: Path, aws_data: Path):
    tune = {**_tune(max_trials=4, parallel_trials=2, seed=1), "objective": {"metric": "validation:auc"}}
    path = _workspace(tmp_path, aws_data, tune)
    res = _run(path, "--set", "train.hyperparameters.num_round=30")
    assert len(re.findall(r"^  trial \d/4  validation:auc ", res.stdout, re.M)) == 4
    run = _latest(tmp_path)
    assert [s["name"] for s in run["steps"]][:3] == ["preprocess", "tune", "evaluate"]
    study = run["tuning"]
    assert len(study["trials"]) == 4 and study["best"] is not None
    tune_dir = Path(next(s["path"] for s in run["steps"] if s["name"] == "tune"))
    model = tune_dir / "output" / "model"
    assert sorted(p.name for p in model.iterdir()) == ["code", "xgboost-model"]  # the train step's layout
    version = json.loads(
        (tmp_path / ".fraudflow" / "registry" / "fraud-detect-xgb" / "1" / "version.json").read_text()
    )
    assert version["tuning"]["best"] == study["best"]
    registered = tmp_path / ".fraudflow" / "registry" / "fraud-detect-xgb" / "1"
    assert (registered / "model" / "xgboost-model").read_bytes() == (model / "xgboost-model").read_bytes()
    assert json.loads((registered / "tuning.json").read_text())["best"] == study["best"]
    html = (tmp_path / ".fraudflow" / "runs" / "latest" / "report.html").read_text()
    assert "Tuning: bayesian, 4 trials" in html and 'aria-label="objective per trial"' in html
    for name in SPACE:
        assert f'aria-label="{name} against the objective"' in html


@given(
    values=st.lists(st.floats(0.5, 1.0, allow_nan=False), min_size=1, max_size=30),
    direction=st.sampled_from(["maximize", "minimize"]),
)
def test_the_report_s_best_so_far_line_never_gets_worse(values: list[float], direction: str):
    from fraudflow.local.report import tuning_section

    trials = [
        {
            "number": i,
            "state": "complete",
            "value": v,
            "params": {"eta": 0.01 + i / 100, "tree_method": "hist"},
        }
        for i, v in enumerate(values)
    ]
    study = {
        "objective": {"metric": "validation:auc", "direction": direction},
        "space": {
            "eta": {"min": 0.01, "max": 0.5, "scale": "log"},
            "tree_method": {"values": ["hist", "approx"]},
        },
        "trials": trials,
    }
    sec = tuning_section(study)
    ys = [float(p.split(",")[1]) for p in sec["best_line"].split()]
    better = (lambda a, b: a <= b + 1e-9) if direction == "maximize" else (lambda a, b: a >= b - 1e-9)
    assert all(
        better(b, a) for a, b in zip(ys, ys[1:], strict=False)
    )  # SVG y grows downwards: a better max is a smaller y
    for prm in sec["params"]:
        assert all(0 <= d["x"] <= sec["pw"] and 0 <= d["y"] <= sec["h"] // 2 for d in prm["dots"])


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [1, 2])
def test_ctrl_c_keeps_finished_trials_and_a_rerun_resumes(tmp_path: Path, aws_data: Path, parallel: int):
    tune = _tune(max_trials=6, parallel_trials=parallel, seed=3, early_stopping=False)
    path = _workspace(tmp_path, aws_data, tune)
    rounds = ("--set", "train.hyperparameters.num_round=40")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fraudflow", "run", str(path), *rounds],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("  trial 2/6"):
            proc.send_signal(signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, "".join(seen) + rest
    assert "Traceback" not in rest  # neither the parent nor a worker prints one
    res = _run(path, *rounds)
    m = re.search(r"resuming the study: (\d+) of 6 trials finished", res.stdout)
    assert m and int(m.group(1)) >= 2, res.stdout
    done = int(m.group(1))
    assert len(re.findall(r"^  trial \d/6 ", res.stdout, re.M)) == 6 - done
    assert len(_latest(tmp_path)["tuning"]["trials"]) == 6


@pytest.mark.slow
def test_twenty_trials_on_aws_data_beat_the_defaults_and_the_best_is_registered(
    tmp_path: Path, aws_data: Path
):
    """The issue's "done when": preprocessing runs once, the best trial's validation AUC >= the default
    hyperparameters', and the best trial's model is the registered one."""
    path = _workspace(tmp_path, aws_data, None)
    _run(path)
    default_auc = _validation_auc(_latest(tmp_path))
    path = _workspace(tmp_path, aws_data, _tune(max_trials=20, parallel_trials=2, seed=0))
    res = _run(path)
    run = _latest(tmp_path)
    steps = {s["name"]: s for s in run["steps"]}
    assert steps["preprocess"]["status"] == "cached" and steps["tune"]["status"] == "ran"
    assert len(re.findall(r"^  trial \d+/20 ", res.stdout, re.M)) == 20
    best = run["tuning"]["best"]
    assert best["value"] >= default_auc
    assert _validation_auc(run) == pytest.approx(best["value"])
    group = tmp_path / ".fraudflow" / "registry" / "fraud-detect-xgb"
    newest = max((p for p in group.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    tuned_model = Path(steps["tune"]["path"]) / "output" / "model" / "xgboost-model"
    assert (newest / "model" / "xgboost-model").read_bytes() == tuned_model.read_bytes()
    assert json.loads((newest / "version.json").read_text())["tuning"]["best"] == best


@pytest.mark.slow
def test_runs_diff_of_two_runs_differing_in_max_depth_lists_exactly_that(tmp_path: Path, aws_data: Path):
    path = _workspace(tmp_path, aws_data, None)
    _run(path)
    a = _latest(tmp_path)["run_id"]
    _run(path, "--set", "train.hyperparameters.max_depth=5")
    b = _latest(tmp_path)["run_id"]
    res = run_cli("runs", "diff", a, b, "--format", "json", "--workspace", str(tmp_path))
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)
    assert d["params"] == {"train.hyperparameters.max_depth": [3, 5]}
    assert d["data"] == {}
    assert d["metrics"], "a deeper tree scores differently"
    for m in d["metrics"].values():
        if isinstance(m["a"], (int, float)) and isinstance(m["b"], (int, float)):
            assert m["delta"] == pytest.approx(m["b"] - m["a"])
    assert isinstance(d["roc_auc_significance"]["exceeds"], bool)
    text = run_cli("runs", "diff", a, b, "--workspace", str(tmp_path)).stdout
    assert "train.hyperparameters.max_depth" in text and "3 → 5" in text and "roc_auc" in text
    listing = run_cli("runs", "--format", "json", "--workspace", str(tmp_path))
    rows = json.loads(listing.stdout)
    assert [r["run"] for r in rows] == [b, a]
    assert rows[0]["changed"] == {"train.hyperparameters.max_depth": [3, 5]}


def test_runs_refuses_an_unknown_run(tmp_path: Path):
    (tmp_path / ".fraudflow" / "runs").mkdir(parents=True)
    res = run_cli("runs", "show", "nope", "--workspace", str(tmp_path))
    assert res.returncode == 1 and "FF910" in res.stderr


@pytest.mark.slow
def test_a_grid_tries_each_combination_once(tmp_path: Path, aws_data: Path):
    grid = {"max_depth": {"min": 2, "max": 3}, "eta": {"values": [0.1, 0.3]}}
    tune = {
        "objective": {"metric": "validation:auc"},
        "strategy": "grid",
        "max_trials": 4,
        "hyperparameters": grid,
    }
    res = _run(_workspace(tmp_path, aws_data, tune), "--set", "train.hyperparameters.num_round=20")
    assert len(re.findall(r"^  trial \d/4 ", res.stdout, re.M)) == 4
    tried = sorted(
        (t["params"]["max_depth"], t["params"]["eta"]) for t in _latest(tmp_path)["tuning"]["trials"]
    )
    assert tried == [(2, 0.1), (2, 0.3), (3, 0.1), (3, 0.3)]


@pytest.mark.parametrize("parallel", [1, 2, 3, 8])
def test_parallel_workers_share_the_cores_unless_the_user_says(
    monkeypatch: pytest.MonkeyPatch, parallel: int
):
    """Each spawned worker's XGBoost gets cores // workers OpenMP threads (at least 1): N workers each taking every
    core made parallel trials slower than one at a time. The user's OMP_NUM_THREADS is left as it is."""
    import concurrent.futures as cf
    import multiprocessing
    import os

    from fraudflow.local import tune

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    threads = tune._threads_per_worker(parallel)
    assert threads == str(max(1, len(os.sched_getaffinity(0)) // parallel))
    with cf.ProcessPoolExecutor(
        1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=tune._start_worker,
        initargs=(threads,),
    ) as pool:
        assert pool.submit(os.getenv, "OMP_NUM_THREADS").result() == threads
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert tune._threads_per_worker(parallel) is None


def test_the_recorded_library_versions_are_the_libraries_own():
    """The steps' cache keys carry the versions; read from package metadata, they are what the modules say."""
    import numpy
    import pandas
    import sklearn
    import xgboost

    from fraudflow.local.runner import _library_versions

    assert _library_versions() == {
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "sklearn": sklearn.__version__,
        "xgboost": xgboost.__version__,
    }


def test_a_tune_only_run_does_not_import_scikit_learn(tmp_path: Path):
    """train.py never uses scikit-learn: `fraudflow run` must not pay its import up front."""
    code = (
        "import sys\n"
        "from fraudflow.local import runner\n"
        "runner._library_versions()\n"
        "print('sklearn' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_an_exclusive_maximum_is_enforced():
    """base_score lies in (0, 1) for the logistic loss: a range reaching 1 is refused at validate, not by XGBoost."""
    cfg = _cfg(
        {
            "objective": {"metric": "validation:auc"},
            "hyperparameters": {"base_score": {"min": 0.2, "max": 1.0}},
        }
    )
    assert "FF531" in _codes(cfg)
    cfg = _cfg(
        {
            "objective": {"metric": "validation:auc"},
            "hyperparameters": {"base_score": {"min": 0.2, "max": 0.9}},
        }
    )
    assert _codes(cfg) == []
