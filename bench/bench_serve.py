"""Benchmark `fraudflow serve` against a minimal uvicorn app that only parses the CSV row and calls
`booster.inplace_predict` on the same model. Loopback only (127.0.0.1), bounded load, alternating blocks so
that both servers see the same machine conditions.

    python bench/bench_serve.py [--requests 3000] [--concurrency 4] [--json out.json]

Goals (issue 5): single-record p50 <= 2 ms, p99 <= 10 ms, throughput >= 0.8x the minimal app.
Both servers run one process with XGBoost's nthread=1 (the fairest comparison for single-record requests).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MINIMAL_APP = """
import numpy as np, xgboost as xgb, os
booster = xgb.Booster(model_file=os.environ["BENCH_MODEL"])
booster.set_param({"nthread": 1})

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    x = np.array(body.decode().split(","), dtype=np.float64).reshape(1, -1)
    out = repr(float(booster.inplace_predict(x)[0])).encode() + b"\\n"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/csv"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})
"""


def start_fraudflow(ws: Path, log: Path) -> tuple[subprocess.Popen, int]:
    logf = log.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fraudflow", "serve", "--workspace", str(ws), "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
    )
    while True:
        line = proc.stderr.readline()
        if not line:
            raise SystemExit(f"fraudflow serve exited: {proc.wait()}")
        if "listening on http://" in line:
            port = int(line.split("listening on http://", 1)[1].split()[0].rsplit(":", 1)[1])
            break

    def drain() -> None:  # the access log: one JSON line per request
        for ln in proc.stderr:
            logf.write(ln)

    threading.Thread(target=drain, daemon=True).start()
    return proc, port


def start_minimal(tmp: Path, model: Path) -> tuple[subprocess.Popen, int]:
    import socket

    (tmp / "minimal_app.py").write_text(MINIMAL_APP)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "minimal_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--lifespan",
            "off",
        ],
        cwd=tmp,
        env={**__import__("os").environ, "BENCH_MODEL": str(model)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, port


def wait_ready(port: int, body: bytes) -> None:
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("POST", "/invocations", body, {"Content-Type": "text/csv"})
            if c.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server on {port} not ready")


def sequential(port: int, bodies: list[bytes]) -> list[float]:
    """One keep-alive connection, one request at a time: per-request latency in ms."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    hdr = {"Content-Type": "text/csv"}
    out = []
    for b in bodies:
        t = time.perf_counter()
        c.request("POST", "/invocations", b, hdr)
        r = c.getresponse()
        r.read()
        out.append((time.perf_counter() - t) * 1000)
        assert r.status == 200
    c.close()
    return out


def concurrent(port: int, bodies: list[bytes], threads: int) -> tuple[float, list[float]]:
    """`threads` keep-alive connections sending back to back: requests per second and latencies."""
    lat: list[float] = []
    chunks = [bodies[i::threads] for i in range(threads)]
    t0 = time.perf_counter()
    ts = [threading.Thread(target=lambda ch=ch: lat.extend(sequential(port, ch))) for ch in chunks]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return len(bodies) / (time.perf_counter() - t0), lat


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(xs, p))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--requests", type=int, default=3000, help="single-record requests per server (sequential)"
    )
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3, help="alternating blocks per server")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)

    from tests.test_serve import train_and_register  # the same model the tests serve

    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    print("training the model on the AWS claims data ...", file=sys.stderr)
    m = train_and_register(tmp / "ws", rounds=100)
    model_file = next(
        (tmp / "ws" / ".fraudflow" / "registry" / "fraud-detect-xgb").glob("*/model/model.json")
    )
    x = m["x"]
    rows = [",".join(repr(float(v)) for v in r).encode() for r in x]
    rng = np.random.default_rng(0)
    bodies = [rows[i] for i in rng.integers(0, len(rows), args.requests)]

    ff, ff_port = start_fraudflow(tmp / "ws", tmp / "access.log")
    mini, mini_port = start_minimal(tmp, model_file)
    try:
        wait_ready(ff_port, rows[0])
        wait_ready(mini_port, rows[0])
        for port in (ff_port, mini_port):  # warm up
            sequential(port, bodies[:300])
        res = {
            "fraudflow": {"seq": [], "conc_rps": [], "conc_lat": []},
            "minimal": {"seq": [], "conc_rps": [], "conc_lat": []},
        }
        block = max(1, args.requests // args.rounds)
        for r in range(args.rounds):
            part = bodies[r * block : (r + 1) * block]
            order = [("fraudflow", ff_port), ("minimal", mini_port)]
            for name, port in order if r % 2 == 0 else order[::-1]:
                res[name]["seq"].extend(sequential(port, part))
                rps, lat = concurrent(port, part, args.concurrency)
                res[name]["conc_rps"].append(rps)
                res[name]["conc_lat"].extend(lat)

        # raw claim records: 1000 per request, encoded server-side with preprocess.transform
        recs = json.loads(m["df"].drop(columns=["fraud"]).head(1000).to_json(orient="records"))
        body = json.dumps({"records": recs}).encode()
        c = http.client.HTTPConnection("127.0.0.1", ff_port, timeout=60)
        batch = []
        for _ in range(12):
            t = time.perf_counter()
            c.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            resp = c.getresponse()
            resp.read()
            assert resp.status == 200
            batch.append((time.perf_counter() - t) * 1000)
        batch = batch[2:]
        one = json.dumps({"records": recs[:1]}).encode()
        single_raw = []
        for _ in range(300):
            t = time.perf_counter()
            c.request("POST", "/invocations", one, {"Content-Type": "application/json"})
            c.getresponse().read()
            single_raw.append((time.perf_counter() - t) * 1000)
    finally:
        for p in (ff, mini):
            p.terminate()
            p.wait(10)

    fig = {}
    for name, d in res.items():
        fig[name] = {
            "seq_p50_ms": pct(d["seq"], 50),
            "seq_p99_ms": pct(d["seq"], 99),
            "seq_rps": 1000 / statistics.mean(d["seq"]),
            "conc_rps": statistics.median(d["conc_rps"]),
            "conc_p50_ms": pct(d["conc_lat"], 50),
            "conc_p99_ms": pct(d["conc_lat"], 99),
        }
    fig["ratio_seq_rps"] = fig["fraudflow"]["seq_rps"] / fig["minimal"]["seq_rps"]
    fig["ratio_conc_rps"] = fig["fraudflow"]["conc_rps"] / fig["minimal"]["conc_rps"]
    fig["raw_batch_1000_ms"] = {"p50": pct(batch, 50), "max": max(batch)}
    fig["raw_single_record_ms"] = {"p50": pct(single_raw, 50), "p99": pct(single_raw, 99)}
    fig["requests_per_server"] = len(res["fraudflow"]["seq"])

    print(
        f"single-record CSV, {fig['requests_per_server']} sequential + as many with {args.concurrency} "
        "concurrent keep-alive connections per server, alternating:"
    )
    print(
        f"  {'server':<10} {'p50 ms':>8} {'p99 ms':>8} {'seq req/s':>10} {'conc req/s':>11} {'conc p99':>9}"
    )
    for name in ("fraudflow", "minimal"):
        f = fig[name]
        print(
            f"  {name:<10} {f['seq_p50_ms']:8.3f} {f['seq_p99_ms']:8.3f} {f['seq_rps']:10.0f} "
            f"{f['conc_rps']:11.0f} {f['conc_p99_ms']:9.3f}"
        )
    print(
        f"  throughput ratio fraudflow/minimal: sequential {fig['ratio_seq_rps']:.2f}x, "
        f"concurrent {fig['ratio_conc_rps']:.2f}x (goal >= 0.8x)"
    )
    ok = fig["fraudflow"]["seq_p50_ms"] <= 2 and fig["fraudflow"]["seq_p99_ms"] <= 10
    print(f"  goal p50 <= 2 ms and p99 <= 10 ms: {'met' if ok else 'NOT met'}")
    print(
        f"raw records, 1000 per request: p50 {fig['raw_batch_1000_ms']['p50']:.1f} ms "
        f"(max {fig['raw_batch_1000_ms']['max']:.1f} ms); one raw record: "
        f"p50 {fig['raw_single_record_ms']['p50']:.2f} ms, p99 {fig['raw_single_record_ms']['p99']:.2f} ms"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
