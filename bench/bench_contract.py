"""Benchmark the data contract (`data.expect`): what checking it adds to the preprocess step at 1M rows.

    python bench/bench_contract.py [--rows 1000000] [--reps 1]

Generates `--rows` claims with `fraudflow sample-data`'s generator, infers a contract for them with `fraudflow
contract infer`'s code (every column gets a rule: type, range or categories, null share; the key uniqueness;
the row count and positive share), then times

  1. the whole preprocess step (read, join, contract, split, encode, write) without and with the contract, and
  2. the contract check alone on the joined frame (its median of 3),

in wall and CPU time (CPU time is the steadier on a shared machine), and prints the ratio check / step. The goal (issue 12): at most 5% of the run. Preprocess is the step the
contract runs in and the cheapest part of a run (training, evaluation, bias and explain come after), so the share
of the step is an upper bound of the share of the run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fraudflow.contract import infer  # noqa: E402
from fraudflow.sampledata import generate  # noqa: E402
from fraudflow.spec.yamlload import parse_file  # noqa: E402
from fraudflow.stepcode import load_file  # noqa: E402

STEP_CODE = REPO / "step_code"


def _config(data_dir: Path) -> dict:
    doc, _ = parse_file(REPO / "pipelines.yaml")
    p = doc["pipelines"]["fraud-detect-xgb"]
    p["data"]["sources"] = {
        "claims": str(data_dir / "claims.csv"),
        "customers": str(data_dir / "customers.csv"),
    }
    return {k: p[k] for k in ("data", "features", "split")}


def _inputs(root: Path, data_dir: Path) -> Path:
    for name in ("claims", "customers"):
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / f"{name}.csv").symlink_to(data_dir / f"{name}.csv")
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=1)
    args = parser.parse_args()
    pp = load_file(STEP_CODE / "preprocess.py", "bench_preprocess")
    with tempfile.TemporaryDirectory(prefix="bench-contract-") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        generate(root / "data", rows=args.rows, seed=0)
        print(f"generated {args.rows} rows in {time.perf_counter() - t:.1f}s", file=sys.stderr)
        inputs = _inputs(root / "input", root / "data")
        config = _config(root / "data")
        joined, _ = pp.load_joined(config, inputs)
        keys = config["data"]["join"]["on"]
        expect = infer(joined, config["data"]["label"], [keys] if isinstance(keys, str) else list(keys))
        rules = sum(len(r) for r in expect["columns"].values()) + 2
        contract = pp.stepkit.sibling("contract")

        def where(column: str, row: int) -> dict:
            return {"file": "x", "line": row}

        check, check_cpu = [], []
        for _ in range(3):
            t, c = time.perf_counter(), time.process_time()
            found = contract.check(joined, expect, config["data"]["label"], where)
            check.append(time.perf_counter() - t)
            check_cpu.append(time.process_time() - c)
        assert found == [], [v.as_dict() for v in found]
        del joined
        steps: dict[str, list[float]] = {"without": [], "with": []}
        cpu: dict[str, list[float]] = {"without": [], "with": []}
        import sklearn.model_selection  # noqa: F401  (imported by the step's split: not timed in the first run)

        for rep in range(args.reps):
            for name, cfg in (
                ("without", config),
                ("with", {**config, "data": {**config["data"], "expect": expect}}),
            ):
                t, c = time.perf_counter(), time.process_time()
                pp.run(cfg, inputs, root / f"out-{name}-{rep}")
                steps[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)
    step = statistics.median(steps["without"])
    step_with = statistics.median(steps["with"])
    alone = statistics.median(check)
    alone_cpu, step_cpu = statistics.median(check_cpu), statistics.median(cpu["without"])
    result = {
        "cpu_preprocess_s": round(step_cpu, 2),
        "cpu_preprocess_with_contract_s": round(statistics.median(cpu["with"]), 2),
        "cpu_contract_check_s": round(alone_cpu, 3),
        "cpu_check_share_of_step": round(alone_cpu / step_cpu, 4),
        "rows": args.rows,
        "rules": rules,
        "preprocess_s": round(step, 2),
        "preprocess_with_contract_s": round(step_with, 2),
        "contract_check_s": round(alone, 3),
        "check_share_of_step": round(alone / step, 4),
        "step_ratio_with_over_without": round(step_with / step, 4),
    }
    print(json.dumps(result, indent=2))
    print(
        f"contract check at {args.rows} rows: {alone:.2f}s = {alone / step:.1%} of the preprocess step "
        f"({step:.1f}s; with the contract {step_with:.1f}s, ratio {step_with / step:.3f}); CPU time: "
        f"{alone_cpu:.2f}s of {step_cpu:.1f}s = {alone_cpu / step_cpu:.1%}; goal <= 5%"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
