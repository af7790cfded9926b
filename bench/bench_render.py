"""Cold `fraudflow render` vs a cold process building the same definition with the SageMaker SDK v2.

Each run is a fresh interpreter (imports included: that is what a user waits for). A and B alternate within
one run so drift in machine load hits both alike. Prints per-run times, medians and the ratio (goal ≤ 0.1).

    python bench/bench_render.py [--reps 7] [--env aws-sample]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr[-2000:]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--env", default="aws-sample", help="pipelines.yaml environment (needs its data files)")
    args = ap.parse_args(argv)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    env.pop("AWS_ENDPOINT_URL", None)
    render = [
        sys.executable,
        "-m",
        "fraudflow",
        "render",
        "pipelines.yaml",
        "--env",
        args.env,
        "-o",
        os.devnull,
    ]
    sdk = [
        sys.executable,
        "tests/sdk_reference_pipeline.py",
        "pipelines.yaml",
        "--env",
        args.env,
        "-o",
        os.devnull,
    ]
    timed(render, env), timed(sdk, env)  # warm the OS file cache for both, not the interpreters
    a, b = [], []
    for i in range(args.reps):
        a.append(timed(render, env))
        b.append(timed(sdk, env))
        print(f"rep {i + 1}: fraudflow render {a[-1]:.3f} s   SDK v2 build {b[-1]:.3f} s", flush=True)
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"median: fraudflow render {ma:.3f} s, SDK v2 {mb:.3f} s, ratio {ma / mb:.3f}x (goal <= 0.1x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
