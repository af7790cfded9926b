"""Where `fraudflow run --no-cache` spends its time, per step: runs it in-process under cProfile with a CPU-time
clock (the machine is shared, so wall time mostly measures the neighbours) and prints, per step, its CPU seconds
and its most expensive functions.

    python bench/profile_run.py WORKSPACE [--top 8]      # WORKSPACE holds pipelines.yaml and its data

Give PYTHONPATH to profile another checkout's code.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import sys
import time

STEPS = ("preprocess", "train", "evaluate", "bias", "explain")


def step_cpu(stats: pstats.Stats, step: str) -> float:
    """CPU seconds inside step_code/<step>.py's main (XGBoost's and numpy's threads included)."""
    return max(
        (
            ct
            for (file, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items()  # type: ignore[attr-defined]
            if file.endswith(f"step_code/{step}.py") and name == "main"
        ),
        default=0.0,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workspace")
    ap.add_argument("--top", type=int, default=6)
    ap.add_argument("--out", default=None, help="also save the raw profile here")
    ns = ap.parse_args()
    os.chdir(ns.workspace)
    from fraudflow.cli import main as cli

    profile = cProfile.Profile(time.process_time)
    t0, c0 = time.perf_counter(), time.process_time()
    profile.enable()
    with contextlib.suppress(SystemExit):
        cli(["run", "--no-cache"])
    profile.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if ns.out:
        profile.dump_stats(ns.out)
    stats = pstats.Stats(profile)
    for step in STEPS:
        print(f"{step:<11} CPU {step_cpu(stats, step):7.2f}s")
    print(f"whole run   CPU {cpu:7.2f}s  wall {wall:7.2f}s (wall includes waiting for the shared machine)")
    stats.sort_stats("tottime").print_stats(ns.top * 3)


if __name__ == "__main__":
    sys.exit(main())
