"""Benchmarks of the local tune step (issue 11).

(a) 20 trials: `fraudflow run --only tune` (preprocessing reused from the cache, a fresh study each time) vs a cold
    hand-written Optuna loop doing the same work: the same preprocessed CSVs, the same search space, sampler (TPE,
    seed 0, the same start-up trials and the baseline trial first), the same median pruner fed every round's
    validation AUC, the same early stopping, and the best model saved. Alternating A/B. Goal: ratio <= 1.2.
(b) the tune step's own seconds with `parallel_trials: 2` vs 1 (run.json), on this machine's cores.

    python bench/bench_tune.py [--reps 3] [--trials 20]

Figures are whole-process wall seconds (a) and the tune step's seconds from run.json (b): median, min, max.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AWS = ROOT.parent / "shared" / "data" / "aws-synthetic-claims"
TUNE = {
    "objective": {"metric": "validation:auc", "direction": "maximize"},
    "strategy": "bayesian",
    "max_trials": 20,
    "parallel_trials": 1,
    "seed": 0,
    "hyperparameters": {
        "eta": {"min": 0.01, "max": 0.3, "scale": "log"},
        "max_depth": {"min": 2, "max": 8},
        "tree_method": {"values": ["hist", "approx"]},
    },
}

HANDWRITTEN = r"""
import sys, json
import numpy as np, optuna, xgboost as xgb
optuna.logging.set_verbosity(optuna.logging.WARNING)
data, out, trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
def load(split):
    m = np.loadtxt(f"{data}/{split}/{split}.csv", delimiter=",", ndmin=2)
    return xgb.DMatrix(m[:, 1:], label=m[:, 0])
dtrain, dval = load("train"), load("validation")
static = {"objective": "binary:logistic", "eval_metric": "auc", "subsample": 0.8, "colsample_bytree": 0.8,
          "min_child_weight": 1, "seed": 0}
class Prune(xgb.callback.TrainingCallback):
    def __init__(self, trial): self.trial, self.pruned = trial, False
    def after_iteration(self, model, epoch, log):
        self.trial.report(log["validation"]["auc"][-1], epoch)
        if epoch >= 10 and self.trial.should_prune():
            self.pruned = True
            return True
        return False
best = {}
def objective(trial):
    params = {**static, "eta": trial.suggest_float("eta", 0.01, 0.3, log=True),
              "max_depth": trial.suggest_int("max_depth", 2, 8),
              "tree_method": trial.suggest_categorical("tree_method", ["hist", "approx"])}
    cb = Prune(trial)
    booster = xgb.train(params, dtrain, 100, evals=[(dtrain, "train"), (dval, "validation")],
                        early_stopping_rounds=10, verbose_eval=False, callbacks=[cb])
    if cb.pruned:
        raise optuna.TrialPruned()
    value = booster.best_score
    booster = booster[: booster.best_iteration + 1]
    if not best or value > best["value"]:
        best.update(value=value, model=bytes(booster.save_raw("json")))
    return value
study = optuna.create_study(direction="maximize",
    sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=10),
    pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=10))
study.enqueue_trial({"eta": 0.2, "max_depth": 3, "tree_method": "hist"})
study.optimize(objective, n_trials=trials)
open(out, "wb").write(best["model"])
print(json.dumps({"best": study.best_value, "params": study.best_params}))
"""


def fmt(xs: list[float]) -> str:
    return f"median {statistics.median(xs):7.2f}  min {min(xs):7.2f}  max {max(xs):7.2f}"


def workspace(tmp: Path, tune: dict) -> Path:
    text = (ROOT / "pipelines.yaml").read_text().replace("data_dir: data ", f"data_dir: {AWS} ", 1)
    text = "\n".join(ln for ln in text.splitlines() if "MaxDepth:" not in ln)
    path = tmp / "pipelines.yaml"
    path.write_text(text + f"\n    tune: {json.dumps(tune)}\n")
    return path


def ff(path: Path, *args: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "fraudflow", "run", str(path), *args], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(res.stdout + res.stderr)
    return wall


def tune_seconds(ws: Path) -> float:
    run = json.loads((ws / ".fraudflow" / "runs" / "latest" / "run.json").read_text())
    return next(s["seconds"] for s in run["steps"] if s["name"] == "tune")


def fresh_study(ws: Path) -> None:
    shutil.rmtree(ws / ".fraudflow" / "tune", ignore_errors=True)  # else the study resumes, finished


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--trials", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        path = workspace(ws, {**TUNE, "max_trials": args.trials})
        ff(path, "--only", "preprocess")
        run = json.loads((ws / ".fraudflow" / "runs" / "latest" / "run.json").read_text())
        data = Path(next(s["path"] for s in run["steps"] if s["name"] == "preprocess")) / "output"
        script = ws / "handwritten_tune.py"
        script.write_text(HANDWRITTEN)
        ours, theirs = [], []
        for _ in range(args.reps):
            fresh_study(ws)
            ours.append(ff(path, "--only", "tune"))
            t0 = time.perf_counter()
            subprocess.run([sys.executable, str(script), str(data), str(ws / "best.json"), str(args.trials)], check=True, capture_output=True)  # fmt: skip
            theirs.append(time.perf_counter() - t0)
        print(f"(a) {args.trials} trials, whole process, {args.reps} reps")
        print(f"    fraudflow run --only tune   {fmt(ours)}")
        print(f"    hand-written Optuna loop    {fmt(theirs)}")
        print(f"    ratio (medians)             {statistics.median(ours) / statistics.median(theirs):.2f}x")
        one, two = [], []
        for _ in range(args.reps):
            for parallel, into in ((1, one), (2, two)):
                fresh_study(ws)
                ff(path, "--only", "tune", "--set", f"tune.parallel_trials={parallel}")
                into.append(tune_seconds(ws))
        print(f"(b) the tune step's seconds, {os.cpu_count()} cores")
        print(f"    parallel_trials: 1          {fmt(one)}")
        print(f"    parallel_trials: 2          {fmt(two)}")
        print(f"    speed-up (medians)          {statistics.median(one) / statistics.median(two):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
