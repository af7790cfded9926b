"""Cost of hostile requests on `fraudflow serve` (issue 9, item 11): wall time and server RSS per body, and the
/ping latency while such bodies are being answered. Prints figures; asserts nothing about speed.

    python bench/bench_serve_hostile.py [--repeat 5] [--json out.json]

Bodies: 1,000 records x 150 distinct unknown keys (2.3 MB), x 420 keys (5.5 MB), 1,000 empty records,
1,000 real records, deep JSON (100,000 levels), a 5 MB string value, 6 MB of CSV rows.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def rss_mb(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def post(port: int, body: bytes, ctype: str = "application/json") -> tuple[int, float]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    t = time.perf_counter()
    c.request("POST", "/invocations", body, {"Content-Type": ctype})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status, time.perf_counter() - t


def ping_ms(port: int) -> float:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    t = time.perf_counter()
    c.request("GET", "/ping")
    c.getresponse().read()
    c.close()
    return (time.perf_counter() - t) * 1000


def bodies(model: dict) -> dict[str, tuple[bytes, str]]:
    real = json.loads(model["df"].drop(columns=["fraud"]).head(1000).to_json(orient="records"))
    n = model["x"].shape[1]
    row = ",".join(repr(float(v)) for v in model["x"][0])
    csv_rows = (row + "\n") * (6 * 1024 * 1024 // (len(row) + 1) - 1)
    return {
        "150 unknown keys x 1000": (
            json.dumps({"records": [{f"k{i}_{j}": j for j in range(150)} for i in range(1000)]}).encode(),
            "application/json",
        ),
        "420 unknown keys x 1000": (
            json.dumps({"records": [{f"{i}.{j}": 1 for j in range(420)} for i in range(1000)]}).encode(),
            "application/json",
        ),
        "1000 empty records": (json.dumps({"records": [{}] * 1000}).encode(), "application/json"),
        "1000 real records": (json.dumps({"records": real}).encode(), "application/json"),
        "deep JSON 100k levels": (b"[" * 100_000 + b"]" * 100_000, "application/json"),
        "5 MB string value": (
            json.dumps({"records": [{"incident_type": "x" * 5_000_000}]}).encode(),
            "application/json",
        ),
        f"6 MB CSV ({n} features)": (csv_rows.encode(), "text/csv"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="requests per body")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)

    from tests.test_serve import Server, train_and_register

    tmp = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    print("training the model on the AWS claims data ...", file=sys.stderr)
    model = train_and_register(tmp)
    server = Server(tmp)
    port, pid = int(server.url.rsplit(":", 1)[1]), server.proc.pid
    results = {}
    try:
        base = rss_mb(pid)["VmRSS"]
        print(f"server RSS after loading: {base:.0f} MB")
        print(f"{'body':<26} {'size':>8} {'status':>6} {'median s':>9} {'RSS after':>10} {'peak RSS':>9}")
        for name, (body, ctype) in bodies(model).items():
            runs = [post(port, body, ctype) for _ in range(args.repeat)]
            mem = rss_mb(pid)
            results[name] = {
                "bytes": len(body),
                "status": runs[-1][0],
                "median_s": statistics.median(t for _, t in runs),
                "rss_mb": mem["VmRSS"],
                "peak_mb": mem["VmHWM"],
            }
            r = results[name]
            print(
                f"{name:<26} {len(body) / 1e6:>6.1f}MB {r['status']:>6} {r['median_s']:>9.3f} "
                f"{r['rss_mb']:>8.0f}MB {r['peak_mb']:>7.0f}MB"
            )

        # /ping while three clients send the 420-key body back to back
        heavy = bodies(model)["420 unknown keys x 1000"][0]
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():
                post(port, heavy)

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        pings = []
        for _ in range(50):
            pings.append(ping_ms(port))
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join()
        pings.sort()
        results["ping_under_load_ms"] = {"p50": pings[len(pings) // 2], "max": pings[-1]}
        print(
            f"/ping during 3 concurrent 420-key requests: p50 {pings[len(pings) // 2]:.1f} ms, max {pings[-1]:.1f} ms"
        )
        end = rss_mb(pid)
        results["rss_end_mb"] = end
        print(f"server RSS at the end: {end['VmRSS']:.0f} MB (peak {end['VmHWM']:.0f} MB)")
    finally:
        server.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
