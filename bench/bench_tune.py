"""Benchmarks of the local tune step (issue 11).

(a) 20 trials: `fraudflow run --only tune` (preprocessing reused from the cache, a fresh study each time) vs a cold
    hand-written Optuna loop doing the same work: the same preprocessed CSVs, the same search space, sampler (TPE,
    seed 0, the same start-up trials and the baseline trial first), the same median pruner fed every round's
    validation AUC, the same early stopping, and the best model saved. Alternating A/B. Goal: ratio <= 1.2.
(b) the tune step's own seconds with `parallel_trials: 2` vs 1 (run.json), on this machine's cores.

    python bench/bench_tune.py [--reps 3] [--trials 20]

Figures (median, min, max): (a) whole-process wall and CPU seconds (wait4's rusage), and the trials alone (the
tune step's seconds in run.json; the hand-written loop's `study.optimize`); (b) the tune step's seconds.
Both sides run with the caller's OMP_NUM_THREADS (1 gives each trial one core, so (b) measures the processes);
unset, XGBoost takes every core and fraudflow's parallel workers get cores // parallel_trials threads each.
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
import time
t0 = time.perf_counter()
study.optimize(objective, n_trials=trials)
open(out, "wb").write(best["model"])
seconds = time.perf_counter() - t0
print(json.dumps({"best": study.best_value, "params": study.best_params, "seconds": seconds}))
"""


def fmt(xs: list[float]) -> str:
    return f"median {statistics.median(xs):7.2f}  min {min(xs):7.2f}  max {max(xs):7.2f}"


def workspace(tmp: Path, tune: dict) -> Path:
    text = (ROOT / "pipelines.yaml").read_text().replace("data_dir: data ", f"data_dir: {AWS} ", 1)
    text = "\n".join(ln for ln in text.splitlines() if "MaxDepth:" not in ln)
    path = tmp / "pipelines.yaml"
    path.write_text(text + f"\n    tune: {json.dumps(tune)}\n")
    return path


def timed(cmd: list[str], out_file: Path) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system of the process and the children it waited for, from wait4's rusage)
    of one child process, and its stdout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with out_file.open("w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    text = out_file.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(text)
    return wall, usage.ru_utime + usage.ru_stime, text


def ff(path: Path, *args: str) -> tuple[float, float, str]:
    return timed([sys.executable, "-m", "fraudflow", "run", str(path), *args], path.parent / "ff.out")


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
        ours: dict[str, list[float]] = {"wall": [], "cpu": [], "loop": []}
        theirs: dict[str, list[float]] = {"wall": [], "cpu": [], "loop": []}
        hand = [sys.executable, str(script), str(data), str(ws / "best.json"), str(args.trials)]
        for _ in range(args.reps):
            fresh_study(ws)
            wall, cpu, _ = ff(path, "--only", "tune")
            for key, value in (("wall", wall), ("cpu", cpu), ("loop", tune_seconds(ws))):
                ours[key].append(value)
            wall, cpu, out = timed(hand, ws / "hand.out")
            loop = json.loads(out.strip().splitlines()[-1])["seconds"]
            for key, value in (("wall", wall), ("cpu", cpu), ("loop", loop)):
                theirs[key].append(value)
        print(
            f"(a) {args.trials} trials, {args.reps} reps (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')})"
        )
        for key, what in (
            ("wall", "whole process, wall"),
            ("cpu", "whole process, CPU"),
            ("loop", "the trials (tune step / optimize)"),
        ):
            ratio = statistics.median(ours[key]) / statistics.median(theirs[key])
            print(f"    {what:<34} fraudflow {fmt(ours[key])}")
            print(f"    {'':<34} by hand   {fmt(theirs[key])}   ratio {ratio:.2f}x")
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
