"""Benchmark `fraudflow.sampledata.generate`: wall time and peak RSS for 100k and 1M rows.

    python bench/bench_sampledata.py [--rows 100000 1000000] [--reps 3]

Each measurement runs in a fresh interpreter so peak RSS (ru_maxrss) belongs to that generation alone; the
interpreter-plus-numpy/pandas baseline is printed for reference. Goal: 1M rows in a few seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
import numpy, pandas  # noqa: F401  (the baseline includes them: generate imports both)
from fraudflow.sampledata import generate
rows = int(sys.argv[1])
if rows:
    t = time.perf_counter()
    summary = generate(Path(sys.argv[2]), rows=rows, seed=0)
    seconds = time.perf_counter() - t
else:
    summary, seconds = {{"frauds": 0}}, 0.0
size = sum(p.stat().st_size for p in Path(sys.argv[2]).glob("*.csv"))
print(json.dumps({{"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "frauds": summary["frauds"], "bytes": size}}))
"""


def measure(rows: int, out: Path) -> dict:
    code = CHILD.format(repo=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code, str(rows), str(out)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base = measure(0, Path(tmp))
        print(f"baseline (python + numpy + pandas): peak RSS {base['peak_rss_mb']:.0f} MB")
        for rows in args.rows:
            runs = [measure(rows, Path(tmp) / f"{rows}") for _ in range(args.reps)]
            seconds = statistics.median(r["seconds"] for r in runs)
            rss = max(r["peak_rss_mb"] for r in runs)
            result = {
                "rows": rows,
                "median_s": seconds,
                "min_s": min(r["seconds"] for r in runs),
                "peak_rss_mb": rss,
                "rss_over_baseline_mb": rss - base["peak_rss_mb"],
                "rows_per_s": rows / seconds,
                "csv_mb": runs[0]["bytes"] / 1e6,
                "fraud_rate": runs[0]["frauds"] / rows,
            }
            results.append(result)
            print(
                f"{rows:>9} rows: median {seconds:6.2f} s ({result['rows_per_s'] / 1e6:.2f} M rows/s), "
                f"peak RSS {rss:5.0f} MB (+{result['rss_over_baseline_mb']:.0f} MB over baseline), "
                f"{result['csv_mb']:.0f} MB of CSV, fraud rate {result['fraud_rate']:.2%}"
            )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
