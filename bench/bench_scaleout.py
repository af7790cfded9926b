"""Issue 16 (2): the 2-host emulated training against 1 host, in one run: test ROC-AUC difference and wall time.

Generated claims (`fraudflow sample-data`) are preprocessed once with split.train_files: 2; then, alternating:
- 1 host: train.py on the whole train folder (the local backend's way; what one SageMaker instance does);
- 2 hosts: train.py as algo-1 and algo-2 in the container harness's network namespace (tests/sagemaker_harness.py
  `run_hosts`: the multi-instance Training emulation), each reading one part file, joined by XGBoost's collective.
Both with pipelines.yaml's hyperparameters, tree_method hist and early stopping. On this one machine the two hosts
share its cores: each host gets OMP_NUM_THREADS = cores / 2, the single host all of them, so both use the same CPU.

    python bench/bench_scaleout.py [--rows 200000] [--reps 2]

Needs root or user namespaces (unshare --net --mount), as the harness does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import sagemaker_harness as h  # noqa: E402
from tests._steps_util import hyperparameter_args, load_step, reference_config, write_config  # noqa: E402

HOSTS = ["algo-1", "algo-2"]
HPS = hyperparameter_args({"tree_method": "hist"})


def preprocess(root: Path, rows: int) -> Path:
    data = root / "data"
    subprocess.run(
        [sys.executable, "-m", "fraudflow", "sample-data", str(data), "--rows", str(rows)],
        check=True,
        capture_output=True,
    )
    inputs = root / "in"
    for name in ("claims", "customers"):
        (inputs / name).mkdir(parents=True)
        (inputs / name / f"{name}.csv").symlink_to(data / f"{name}.csv")
    config = reference_config()
    config["split"]["train_files"] = len(HOSTS)
    write_config(root / "config.json", config)
    out = root / "split"
    rc = load_step("preprocess").main(
        ["--config", str(root / "config.json"), "--input-dir", str(inputs), "--output-dir", str(out)]
    )
    assert rc == 0
    return out


def one_host(split: Path, out: Path, threads: int) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "step_code/train.py"), "--train", str(split / "train"),
         "--validation", str(split / "validation"), "--model-dir", str(out / "model"),
         "--output-data-dir", str(out / "data"), *HPS],
        check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)},
    )  # fmt: skip
    return time.perf_counter() - t0


def two_hosts(split: Path, out: Path, threads: int) -> float:
    jobs = []
    for i, host in enumerate(HOSTS):
        ml = out / host / "ml"
        for channel, files in (
            ("train", [split / "train" / f"part-{i:05d}.csv"]),
            ("validation", [split / "validation" / "validation.csv"]),
        ):
            (ml / "input/data" / channel).mkdir(parents=True)
            for f in files:
                (ml / "input/data" / channel / f.name).symlink_to(f)
        for sub in ("model", "output/data"):
            (ml / sub).mkdir(parents=True)
        env = h.training_env(["train", "validation"], {}, "train", "", HOSTS, host)
        env.update(OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT / "step_code"))
        cmd = [sys.executable, str(ROOT / "step_code/train.py"), *HPS]
        jobs.append(h.HostJob(host, cmd, env, ml, out / host))
    t0 = time.perf_counter()
    procs = h.run_hosts(jobs, h.etc_hosts(HOSTS, out))
    wall = time.perf_counter() - t0
    for p in procs:
        assert p.returncode == 0, p.stderr[-2000:]
    return wall


def test_auc(model_dir: Path, split: Path) -> tuple[float, int]:
    import xgboost as xgb
    from sklearn.metrics import roc_auc_score

    booster = xgb.Booster()
    with (
        warnings.catch_warnings()
    ):  # "Unknown file format": xgboost-model is XGBoost JSON without the extension
        warnings.simplefilter("ignore")
        booster.load_model(str(model_dir / "xgboost-model"))
    test = pd.read_csv(split / "test/test.csv", header=None)
    scores = booster.predict(xgb.DMatrix(test.iloc[:, 1:].to_numpy()))
    return float(roc_auc_score(test.iloc[:, 0], scores)), int(booster.num_boosted_rounds())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    problem = h.namespace_problem()
    if problem:
        raise SystemExit(f"the harness {problem}")
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="ff-bench-scaleout-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        split = preprocess(root, args.rows)
        train_rows = json.loads((split / "report/preprocess.json").read_text())["splits"]["train"]["rows"]
        print(
            f"{args.rows} generated rows, {train_rows} training rows in 2 files ({time.perf_counter() - t0:.1f} s)"
        )
        walls: dict[str, list[float]] = {"1 host": [], "2 hosts": []}
        aucs: dict[str, tuple[float, int]] = {}
        for rep in range(args.reps):
            for name in ("1 host", "2 hosts") if rep % 2 == 0 else ("2 hosts", "1 host"):
                out = root / f"{name.replace(' ', '-')}-{rep}"
                if name == "1 host":
                    walls[name].append(one_host(split, out, cores))
                    aucs[name] = test_auc(out / "model", split)
                else:
                    walls[name].append(two_hosts(split, out, max(1, cores // 2)))
                    aucs[name] = test_auc(out / HOSTS[0] / "ml" / "model", split)
        for name, xs in walls.items():
            auc, trees = aucs[name]
            print(
                f"{name:8s} wall median {statistics.median(xs):7.2f} s (min {min(xs):.2f}, max {max(xs):.2f})"
                f"  test ROC-AUC {auc:.5f}  {trees} trees"
            )
        diff = aucs["2 hosts"][0] - aucs["1 host"][0]
        ratio = statistics.median(walls["2 hosts"]) / statistics.median(walls["1 host"])
        print(f"AUC difference (2 hosts - 1 host) {diff:+.5f} (|diff| <= 0.005: {abs(diff) <= 0.005}); "
              f"wall 2 hosts / 1 host {ratio:.2f}x on {cores} shared cores")  # fmt: skip
        assert np.isfinite(diff)


if __name__ == "__main__":
    main()
