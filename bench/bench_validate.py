"""Cold `fraudflow validate pipelines.yaml` against cold `check-jsonschema` on the same file.

Each repetition starts fresh processes (cold: a new interpreter, nothing imported), alternating the commands in
a rotating order so that drift in machine load hits all of them alike. fraudflow checks more than
check-jsonschema: duplicate keys, safe tags, templates, environments, defaults, semantic checks and (with
--env aws-sample) the columns of the data.

    python bench/bench_validate.py [--reps 15] [--env aws-sample]

Goal (issue 2): fraudflow at most 0.5x check-jsonschema's time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _script(name: str) -> str:
    """The console script beside this interpreter: a pyenv/asdf shim in front would add its own start-up."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        sys.exit(f"{name} not found: pip install -e '.[test]'")
    return found


_ENV = dict(os.environ)


def _run(cmd: list[str]) -> tuple[float, int, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=_ENV)
    return time.perf_counter() - started, proc.returncode, proc.stdout + proc.stderr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--env", help="also pass --env to fraudflow (e.g. aws-sample: column checks on the data)")
    ap.add_argument("--file", default="pipelines.yaml")
    ap.add_argument(
        "--write-bytecode",
        action="store_true",
        help="unset PYTHONDONTWRITEBYTECODE for the runs: an editable install then caches fraudflow's .pyc as an "
        "installed package (and check-jsonschema) already has",
    )
    args = ap.parse_args()
    if args.write_bytecode:
        _ENV.pop("PYTHONDONTWRITEBYTECODE", None)

    extra = ["--env", args.env] if args.env else []
    commands = {
        "fraudflow (console script)": [_script("fraudflow"), "validate", args.file, *extra],
        "python -m fraudflow": [sys.executable, "-m", "fraudflow", "validate", args.file, *extra],
        "check-jsonschema": [
            _script("check-jsonschema"),
            "--schemafile",
            "schemas/pipelines.schema.json",
            args.file,
        ],
        "python -c pass (start-up floor)": [sys.executable, "-c", "pass"],
    }
    script = Path(commands["fraudflow (console script)"][0]).read_text(errors="replace")
    overhead = [m for m in ("pkg_resources", "importlib.metadata", "importlib_metadata") if m in script]
    print(
        "console script entry point: "
        + (
            f"uses {', '.join(overhead)} (start-up overhead)"
            if overhead
            else "plain `from fraudflow.cli import main`"
        )
    )
    if _ENV.get("PYTHONDONTWRITEBYTECODE"):
        print(
            "PYTHONDONTWRITEBYTECODE is set: an editable fraudflow recompiles its modules on every run "
            "(pass --write-bytecode to measure as installed)"
        )
    env_note = f" --env {args.env}" if args.env else ""
    print(f"cold runs, {args.reps} repetitions each, alternating; file {args.file}{env_note}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    for name, cmd in commands.items():  # warm the OS file cache and .pyc files, and fail early
        _, rc, out = _run(cmd)
        if rc != 0:
            print(f"{name} failed (exit {rc}):\n{out}", file=sys.stderr)
            return 1

    times: dict[str, list[float]] = {name: [] for name in commands}
    names = list(commands)
    for rep in range(args.reps):
        k = rep % len(names)
        for name in names[k:] + names[:k]:  # rotate who goes first
            elapsed, rc, out = _run(commands[name])
            if rc != 0:
                print(f"{name} failed (exit {rc}):\n{out}", file=sys.stderr)
                return 1
            times[name].append(elapsed)

    base = statistics.median(times["check-jsonschema"])
    print(f"\n{'command':32} {'median':>9} {'min':>9} {'max':>9} {'ratio':>7}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(
            f"{name:32} {med * 1000:7.1f}ms {min(ts) * 1000:7.1f}ms {max(ts) * 1000:7.1f}ms {med / base:6.2f}x"
        )
    ratio = statistics.median(times["fraudflow (console script)"]) / base
    verdict = "meets" if ratio <= 0.5 else "misses"
    print(f"\nratio fraudflow / check-jsonschema (medians): {ratio:.2f}x ({verdict} the 0.5x goal)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
