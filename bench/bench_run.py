"""Benchmarks of `fraudflow run` (issue: the local run).

(a) cold `fraudflow run --no-cache` on AWS's 5000-claim data vs a cold hand-written single-process script doing
    the same work (bench/handwritten_pipeline.py), alternating A/B in one run. Goal: ratio <= 1.5.
(b) `fraudflow run --no-cache` on 100k and on 1M generated rows: time ratio (goal <= 12x for 10x the rows) and
    peak RSS of the 1M run (goal <= 4 GiB).

    python bench/bench_run.py [--reps 5] [--skip-scale]

Figures are whole-process wall seconds (median, min, max) and peak RSS from wait4's rusage.
"""

from __future__ import annotations

import argparse
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


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode() if proc.stderr else ''}")
    return wall, usage.ru_maxrss / 1024


def fmt(xs: list[float]) -> str:
    return f"median {statistics.median(xs):7.3f}  min {min(xs):7.3f}  max {max(xs):7.3f}"


def bench_aws(reps: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        shutil.copy(ROOT / "pipelines.yaml", ws / "pipelines.yaml")
        ff = [
            sys.executable,
            "-m",
            "fraudflow",
            "run",
            "--no-cache",
            "--env",
            "aws-sample",
            "--set",
            f"data.sources.claims={AWS / 'claims.csv'}",
            "--set",
            f"data.sources.customers={AWS / 'customers.csv'}",
        ]
        hand = [
            sys.executable,
            str(ROOT / "bench" / "handwritten_pipeline.py"),
            str(AWS / "claims.csv"),
            str(AWS / "customers.csv"),
            str(ws / "hand"),
        ]
        timed(ff, ws), timed(hand, ws)  # warm-up: file cache, .pyc
        a, b, ratios = [], [], []
        for _ in range(reps):
            ta, _ = timed(ff, ws)
            tb, _ = timed(hand, ws)
            a.append(ta), b.append(tb), ratios.append(ta / tb)
        print(f"(a) AWS data, 5000 claims, {reps} alternating pairs, wall seconds")
        print(f"    fraudflow run --no-cache     {fmt(a)}")
        print(f"    hand-written script          {fmt(b)}")
        print(f"    ratio fraudflow/hand-written {fmt(ratios)}   (goal <= 1.5)")


def bench_scale(reps: int) -> None:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rows in (100_000, 1_000_000):
            ws = Path(tmp) / str(rows)
            ws.mkdir()
            shutil.copy(ROOT / "pipelines.yaml", ws / "pipelines.yaml")
            subprocess.run(
                [sys.executable, "-m", "fraudflow", "sample-data", "data", "--rows", str(rows)],
                cwd=ws,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            runs = [timed([sys.executable, "-m", "fraudflow", "run", "--no-cache"], ws) for _ in range(reps)]
            results[rows] = runs
            print(
                f"(b) {rows:>9,} rows: wall {fmt([r[0] for r in runs])}   peak RSS "
                f"{max(r[1] for r in runs):8.0f} MiB"
            )
    t100k = statistics.median(r[0] for r in results[100_000])
    t1m = statistics.median(r[0] for r in results[1_000_000])
    rss = max(r[1] for r in results[1_000_000])
    print(
        f"    time ratio 1M/100k: {t1m / t100k:.2f}x (goal <= 12x)   peak RSS at 1M: {rss / 1024:.2f} GiB "
        "(goal <= 4 GiB)"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--skip-scale", action="store_true")
    ns = ap.parse_args()
    bench_aws(ns.reps)
    if not ns.skip_scale:
        bench_scale(max(1, ns.reps // 2))
