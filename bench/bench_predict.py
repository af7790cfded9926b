"""Benchmark `fraudflow predict` on generated claims against hand-written pandas scoring: rows/s and peak RSS.

    python bench/bench_predict.py [--rows 1000000] [--chunk-rows 100000]

A pipeline is run once on 5,000 generated claims (the registered version scores everything), then `--rows`
claims are generated and scored three ways, each in a fresh interpreter so its peak RSS (ru_maxrss) is its own:
- `fraudflow predict --source claims=... --source customers=... -o out.csv` (in-process `fraudflow.cli.main`);
- a hand-written pandas loop: claims read in chunks of the same size, each merged with the whole customers
  table, encoded by the version's preprocess.transform, scored by its booster, appended to a CSV;
- hand-written pandas all at once: read both files, merge, encode, score, write.
The hand-written versions skip everything fraudflow adds (located errors, key checks, progress, the atomic
rename), and call the same transform, so the difference is fraudflow's overhead and its memory bound.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PREDICT = """
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from fraudflow.cli import main
ws, data, chunk = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter()
code = main(["predict", ws + "/pipelines.yaml", "--source", "claims=" + data + "/claims.csv",
             "--source", "customers=" + data + "/customers.csv", "--chunk-rows", chunk, "-o", ws + "/predict.csv"])
assert code == 0, code
print(json.dumps({{"seconds": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

PANDAS = """
import json, resource, sys, time
sys.path.insert(0, {repo!r})
import numpy as np, pandas as pd, xgboost as xgb
from fraudflow.local.serving.model import load_preprocess
ws, data, chunk, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
art = ws + "/.fraudflow/registry/fraud-detect-xgb/1"
t = time.perf_counter()
pre = load_preprocess(__import__("pathlib").Path(art + "/preprocess.py"))
schema = json.load(open(art + "/feature_schema.json"))
booster = xgb.Booster(model_file=art + "/model/xgboost-model")
threshold = 0.1
customers = pd.read_csv(data + "/customers.csv")
def score(df):
    p = booster.inplace_predict(pre.transform(df, schema).to_numpy(dtype=np.float64))
    return pd.DataFrame({{"policy_id": df["policy_id"], "probability": p, "decision": (p >= threshold).astype(int)}})
out = ws + "/pandas.csv"
if mode == "loop":
    first = True
    for claims in pd.read_csv(data + "/claims.csv", chunksize=chunk):
        score(claims.merge(customers, on="policy_id", how="left")).to_csv(out, mode="w" if first else "a",
                                                                          header=first, index=False)
        first = False
else:
    score(pd.read_csv(data + "/claims.csv").merge(customers, on="policy_id", how="left")).to_csv(out, index=False)
print(json.dumps({{"seconds": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

BASELINE = """
import json, resource, sys
sys.path.insert(0, {repo!r})
import numpy, pandas, xgboost  # noqa: F401
print(json.dumps({{"seconds": 0.0, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def child(code: str, *argv: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", code.format(repo=str(REPO)), *argv], capture_output=True, text=True, cwd=REPO
    )
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    args = parser.parse_args()
    from fraudflow.sampledata import generate

    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        shutil.copy(REPO / "pipelines.yaml", ws / "pipelines.yaml")
        generate(ws / "data", rows=5000, seed=0)
        run = subprocess.run(
            [sys.executable, "-m", "fraudflow", "run"], cwd=ws, capture_output=True, text=True
        )
        if run.returncode:
            raise SystemExit(run.stderr + run.stdout)
        generate(ws / "big", rows=args.rows, seed=1)
        base = child(BASELINE)
        print(f"baseline (python + numpy + pandas + xgboost): peak RSS {base['peak_rss_mb']:.0f} MB")
        results = {
            "fraudflow predict": child(PREDICT, str(ws), str(ws / "big"), str(args.chunk_rows)),
            "pandas loop": child(PANDAS, str(ws), str(ws / "big"), str(args.chunk_rows), "loop"),
            "pandas all at once": child(PANDAS, str(ws), str(ws / "big"), str(args.chunk_rows), "all"),
        }
        import pandas as pd

        a, b = pd.read_csv(ws / "predict.csv"), pd.read_csv(ws / "pandas.csv")
        assert len(a) == len(b) == args.rows and (a["probability"] - b["probability"]).abs().max() < 1e-7
        for name, r in results.items():
            r["rows_per_s"] = args.rows / r["seconds"]
            print(
                f"{name:>20}: {args.rows:,} rows in {r['seconds']:6.2f} s ({r['rows_per_s']:>9,.0f} rows/s), "
                f"peak RSS {r['peak_rss_mb']:5.0f} MB (+{r['peak_rss_mb'] - base['peak_rss_mb']:.0f} MB)"
            )
        print(json.dumps({"rows": args.rows, "chunk_rows": args.chunk_rows, **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
