"""Issue 16's figures, in one run:

(a) `fraudflow run --no-cache` on 1M generated rows against the hand-written script (bench/handwritten_pipeline.py)
    on the same data, alternating A/B: wall ratio (goal <= 0.6x) and fraudflow's peak RSS (goal <= 1.5 GiB);
(b) with --ten-million: T(10M)/T(1M) of `fraudflow run --no-cache` (goal <= 11) and the 10M run's peak RSS
    (goal <= 12 GiB); long (one 10M run);
(c) one raw record over a keep-alive HTTP connection to `fraudflow serve` against the minimal `inplace_predict`
    app scoring an encoded CSV row of the same model, alternating blocks in the same run: p50 ratio (goal <= 1.5x).

    python bench/bench_scale.py [--reps 2] [--ten-million] [--skip-run] [--skip-serve]

Wall seconds are whole-process, peak RSS from wait4's rusage. The machine may be shared: the ratios compare runs
made alternately under the same conditions, and each line also gives CPU seconds (user + system), which waiting
for a busy machine does not inflate.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode() if proc.stderr else ''}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def fmt(xs: list[float]) -> str:
    return f"median {statistics.median(xs):8.2f}  min {min(xs):8.2f}  max {max(xs):8.2f}"


def workspace(root: Path, rows: int) -> Path:
    ws = root / f"rows-{rows}"
    ws.mkdir(parents=True)
    shutil.copy(ROOT / "pipelines.yaml", ws / "pipelines.yaml")
    subprocess.run(
        [sys.executable, "-m", "fraudflow", "sample-data", "data", "--rows", str(rows)],
        cwd=ws,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return ws


def run_cmd() -> list[str]:
    return [sys.executable, "-m", "fraudflow", "run", "--no-cache"]


def bench_run(root: Path, reps: int, ten_million: bool) -> None:
    ws = workspace(root, 1_000_000)
    hand = [
        sys.executable,
        str(ROOT / "bench" / "handwritten_pipeline.py"),
        str(ws / "data" / "claims.csv"),
        str(ws / "data" / "customers.csv"),
        str(ws / "hand"),
    ]
    ff_runs, hand_runs, ratios = [], [], []
    for i in range(reps):
        pair = [("ff", run_cmd()), ("hand", hand)]
        for name, cmd in pair if i % 2 == 0 else pair[::-1]:
            result = timed(cmd, ws)
            (ff_runs if name == "ff" else hand_runs).append(result)
        ratios.append(ff_runs[-1][0] / hand_runs[-1][0])
    rss = max(r[2] for r in ff_runs)
    print(f"(a) 1,000,000 rows, {reps} alternating pairs (wall s; CPU s)")
    print(
        f"    fraudflow run --no-cache   wall {fmt([r[0] for r in ff_runs])}  CPU {fmt([r[1] for r in ff_runs])}"
    )
    print(
        f"    hand-written script        wall {fmt([r[0] for r in hand_runs])}  CPU {fmt([r[1] for r in hand_runs])}"
    )
    cpu_ratio = statistics.median(r[1] for r in ff_runs) / statistics.median(r[1] for r in hand_runs)
    print(f"    ratio fraudflow/hand       wall {fmt(ratios)}  CPU {cpu_ratio:.2f}   (goal <= 0.6)")
    print(
        f"    peak RSS fraudflow {rss / 1024:.2f} GiB (goal <= 1.5 GiB), hand-written "
        f"{max(r[2] for r in hand_runs) / 1024:.2f} GiB"
    )
    if ten_million:
        big = workspace(root, 10_000_000)
        wall, cpu, peak = timed(run_cmd(), big)
        one = timed(run_cmd(), ws)  # the 1M run again, right after, under the same conditions
        print("(b) 10,000,000 rows, one run, then one 1M run")
        print(f"    10M: wall {wall:.1f} s, CPU {cpu:.1f} s, peak RSS {peak / 1024:.2f} GiB (goal <= 12 GiB)")
        print(
            f"    T(10M)/T(1M): wall {wall / one[0]:.2f}, CPU {cpu / one[1]:.2f}   (goal <= 11; 1M run: wall "
            f"{one[0]:.1f} s, CPU {one[1]:.1f} s)"
        )
        shutil.rmtree(big)


def connect(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=30)


def post(conn: http.client.HTTPConnection, body: bytes, media: str) -> float:
    t = time.perf_counter()
    conn.request("POST", "/invocations", body, {"Content-Type": media})
    resp = conn.getresponse()
    resp.read()
    if resp.status != 200:
        raise SystemExit(f"HTTP {resp.status}")
    return (time.perf_counter() - t) * 1000


def bench_serve(root: Path, requests: int, rounds: int) -> None:
    from bench_serve import start_fraudflow, start_minimal, wait_ready

    from tests.test_serve import train_and_register  # the model the serving tests serve (AWS data)

    m = train_and_register(root / "serve", rounds=100)
    model_file = next(
        (root / "serve" / ".fraudflow" / "registry" / "fraud-detect-xgb").glob("*/model/model.json")
    )
    rows = [",".join(repr(float(v)) for v in r).encode() for r in m["x"]]
    recs = json.loads(m["df"].drop(columns=["fraud"]).to_json(orient="records"))
    rng = np.random.default_rng(0)
    picks = rng.integers(0, min(len(rows), len(recs)), requests)
    raw = [json.dumps({"records": [recs[i]]}).encode() for i in picks]
    encoded = [rows[i] for i in picks]
    ff, ff_port = start_fraudflow(root / "serve", root / "access.log")
    mini, mini_port = start_minimal(root, model_file)
    try:
        wait_ready(ff_port, rows[0])
        wait_ready(mini_port, rows[0])
        ff_conn, mini_conn = connect(ff_port), connect(mini_port)
        for i in range(200):  # warm up both
            post(ff_conn, raw[i % len(raw)], "application/json")
            post(mini_conn, encoded[i % len(encoded)], "text/csv")
        lat: dict[str, list[float]] = {"raw": [], "minimal": []}
        block = max(1, requests // rounds)
        for r in range(rounds):
            part = slice(r * block, (r + 1) * block)
            order = [("raw", ff_port, raw, "application/json"), ("minimal", mini_port, encoded, "text/csv")]
            for name, port, bodies, media in order if r % 2 == 0 else order[::-1]:
                # a fresh keep-alive connection per block (an idle one may have been closed meanwhile), its
                # first request untimed
                conn = connect(port)
                post(conn, bodies[0], media)
                lat[name].extend(post(conn, b, media) for b in bodies[part])
                conn.close()
    finally:
        for p in (ff, mini):
            p.terminate()
            p.wait(10)
    p50 = {k: float(np.percentile(v, 50)) for k, v in lat.items()}
    p99 = {k: float(np.percentile(v, 99)) for k, v in lat.items()}
    print(
        f"(c) one request at a time over keep-alive HTTP, {len(lat['raw'])} each, {rounds} alternating blocks"
    )
    print(f"    fraudflow serve, one raw JSON record   p50 {p50['raw']:.3f} ms  p99 {p99['raw']:.3f} ms")
    print(
        f"    minimal inplace_predict, encoded CSV   p50 {p50['minimal']:.3f} ms  p99 {p99['minimal']:.3f} ms"
    )
    print(f"    p50 ratio raw/minimal {p50['raw'] / p50['minimal']:.2f}x   (goal <= 1.5x)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=2, help="alternating pairs at 1M rows")
    ap.add_argument("--ten-million", action="store_true", help="also one 10M-row run (long)")
    ap.add_argument("--skip-run", action="store_true")
    ap.add_argument("--skip-serve", action="store_true")
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=6)
    ns = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        if not ns.skip_serve:
            bench_serve(root, ns.requests, ns.rounds)
        if not ns.skip_run:
            bench_run(root, ns.reps, ns.ten_million)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
