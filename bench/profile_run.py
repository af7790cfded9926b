"""Where `fraudflow run --no-cache` spends its time, per step: runs it in-process under cProfile with a CPU-time
clock (the machine is shared, so wall time mostly measures the neighbours) and prints, per step, its CPU seconds
and its most expensive functions.

    python bench/profile_run.py WORKSPACE [--top 8]      # WORKSPACE holds pipelines.yaml and its data
    python bench/profile_run.py WORKSPACE --cpu-only     # no profiler: CPU and wall seconds per step

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
from collections.abc import Callable
from typing import Any

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


def cpu_only(cli: Callable[[list[str]], object]) -> None:
    """Each script step's CPU seconds (all its threads) and wall seconds, timed around the runner's call."""
    from fraudflow.local import runner

    seen: list[tuple[str, float, float]] = []
    real = runner.run_script

    def timed(step: Any, *args: Any, **kwargs: Any) -> None:
        c0, t0 = time.process_time(), time.perf_counter()
        try:
            real(step, *args, **kwargs)
        finally:
            seen.append((step.name, time.process_time() - c0, time.perf_counter() - t0))

    runner.run_script = timed  # type: ignore[assignment]
    c0, t0 = time.process_time(), time.perf_counter()
    with contextlib.suppress(SystemExit):
        cli(["run", "--no-cache"])
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    for name, step_cpu_s, step_wall in seen:
        print(f"{name:<11} CPU {step_cpu_s:7.2f}s  wall {step_wall:7.2f}s")
    print(f"whole run   CPU {cpu:7.2f}s  wall {wall:7.2f}s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workspace")
    ap.add_argument("--top", type=int, default=6)
    ap.add_argument("--out", default=None, help="also save the raw profile here")
    ap.add_argument(
        "--cpu-only",
        action="store_true",
        help="no profiler (which inflates Python-heavy code): only each step's CPU and wall seconds",
    )
    ns = ap.parse_args()
    os.chdir(ns.workspace)
    from fraudflow.cli import main as cli

    if ns.cpu_only:
        cpu_only(cli)
        return

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
