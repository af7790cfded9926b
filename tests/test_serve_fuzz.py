"""Fuzz the endpoint: 10k requests over keep-alive connections, about 20% malformed in many ways (random
bytes, truncated JSON, wrong types, wrong counts, huge bodies, bad content types, bad Accept, bad paths).
Deterministic (seeded). Every answer must be the expected status: 200 with the right predictions for good
requests, the right 4xx for bad ones, never a 5xx; and the server must still be up at the end."""

from __future__ import annotations

import http.client
import json
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.test_serve import Server, train_and_register

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("aws_data"),
]
N_REQUESTS, BAD_SHARE, THREADS = 10_000, 0.2, 4


def make_cases(model: dict, seed: int) -> list[dict]:
    rng = random.Random(seed)
    x: np.ndarray = model["x"]
    n = x.shape[1]
    records = json.loads(model["df"].drop(columns=["fraud"]).head(50).to_json(orient="records"))

    def row(i: int) -> str:
        return ",".join(repr(float(v)) for v in x[i])

    def good() -> dict:
        kind = rng.random()
        idx = [rng.randrange(len(x)) for _ in range(rng.randint(1, 5))]
        if kind < 0.6:
            return dict(
                body=("\n".join(row(i) for i in idx) + "\n").encode(), ctype="text/csv", want=200, idx=idx
            )
        if kind < 0.97:
            doc = {"instances": [x[i].tolist() for i in idx]}
            return dict(body=json.dumps(doc).encode(), ctype="application/json", want=200, idx=idx)
        doc = {"records": rng.sample(records, rng.randint(1, 3))}
        return dict(
            body=json.dumps(doc).encode(), ctype="application/json; charset=utf-8", want=200, idx=None
        )

    def bad() -> dict:
        k = rng.randrange(16)
        i = rng.randrange(len(x))
        if k == 0:  # random bytes as CSV
            return dict(body=rng.randbytes(rng.randint(1, 300)), ctype="text/csv", want=400)
        if k == 1:  # random bytes as JSON
            return dict(body=rng.randbytes(rng.randint(1, 300)), ctype="application/json", want=400)
        if k == 2:  # truncated JSON
            full = json.dumps({"instances": [x[i].tolist()]})
            return dict(body=full[: rng.randrange(len(full))].encode(), ctype="application/json", want=400)
        if k == 3:  # wrong feature count (CSV)
            vals = row(i).split(",")
            vals = vals[: rng.randrange(1, n)] if rng.random() < 0.5 else vals + ["1.0"] * rng.randint(1, 5)
            return dict(body=",".join(vals).encode(), ctype="text/csv", want=400, code="WrongFeatureCount")
        if k == 4:  # non-numeric cell
            vals = row(i).split(",")
            vals[rng.randrange(n)] = rng.choice(["abc", "1..2", "0x1g", "--1", "[1]"])
            return dict(body=",".join(vals).encode(), ctype="text/csv", want=400, code="NonNumeric")
        if k == 5:  # wrong JSON types
            doc = rng.choice(
                [
                    {"instances": "x"},
                    {"instances": []},
                    {"instances": [["a"] * n]},
                    {"instances": [[True] * n]},
                    {"instances": [{"features": "x"}]},
                    {"features": {"a": 1}},
                    {"records": "x"},
                    {"records": [1, 2]},
                    {"records": [{"customer_age": [1]}]},
                    {"records": [{"customer_age": "old"}]},
                    [1, 2, 3],
                    "text",
                    None,
                    {"other": 1},
                ]
            )
            return dict(body=json.dumps(doc).encode(), ctype="application/json", want=400)
        if k == 6:  # wrong feature count (JSON)
            doc = {"instances": [x[i].tolist()[: rng.randrange(n)]]}
            return dict(
                body=json.dumps(doc).encode(), ctype="application/json", want=400, code="WrongFeatureCount"
            )
        if k == 7:  # bad content types
            ctype = rng.choice(["text/plain", "application/xml", "", "image/png", "application/x-npy", "csv"])
            return dict(body=row(i).encode(), ctype=ctype or None, want=415, code="UnsupportedMediaType")
        if k == 8:  # empty body
            return dict(
                body=b"", ctype=rng.choice(["text/csv", "application/json"]), want=400, code="EmptyBody"
            )
        if k == 9:  # too many records
            doc = {"records": [records[0]] * rng.randint(1001, 1100)}
            return dict(
                body=json.dumps(doc).encode(), ctype="application/json", want=413, code="TooManyRecords"
            )
        if k == 10 and rng.random() < 0.15:  # huge body (rarely: 6 MiB each)
            return dict(
                body=b"1," * (3 * 1024 * 1024 + 1), ctype="text/csv", want=413, code="PayloadTooLarge"
            )
        if k == 11:  # an Accept the server cannot produce
            return dict(body=row(i).encode(), ctype="text/csv", want=406, headers={"Accept": "image/png"})
        if k == 12:  # wrong method / path
            return rng.choice(
                [
                    dict(method="GET", path="/invocations", want=405),
                    dict(method="DELETE", path="/ping", want=405),
                    dict(method="POST", path="/nowhere", body=b"x", ctype="text/csv", want=404),
                    dict(
                        method="POST",
                        path="/endpoints/fraud-detect-xgb/x",
                        body=b"x",
                        ctype="text/csv",
                        want=404,
                    ),
                ]
            )
        if k == 13:  # runtime path, unknown endpoint
            return dict(path="/endpoints/nope/invocations", body=row(i).encode(), ctype="text/csv", want=400)
        if k == 14:  # runtime path, payload the model rejects: SageMaker's ModelError
            return dict(
                path="/endpoints/fraud-detect-xgb/invocations", body=b"1,2", ctype="text/csv", want=424
            )
        # NaN/inf/empty cells are valid input (missing values), not errors
        vals = row(i).split(",")
        vals[rng.randrange(n)] = rng.choice(["", "nan", "inf", " 1.5 "])
        return dict(body=",".join(vals).encode(), ctype="text/csv", want=200, idx=None)

    return [bad() if rng.random() < BAD_SHARE else good() for _ in range(N_REQUESTS)]


def send(url_port: int, cases: list[dict]) -> list[tuple[dict, int, bytes]]:
    conn = http.client.HTTPConnection("127.0.0.1", url_port, timeout=60)
    out = []
    for c in cases:
        headers = dict(c.get("headers", {}))
        if c.get("ctype") is not None:
            headers["Content-Type"] = c["ctype"]
        body = c.get("body")
        try:
            conn.request(c.get("method", "POST"), c.get("path", "/invocations"), body, headers)
            r = conn.getresponse()
            out.append((c, r.status, r.read()))
            if r.will_close:
                conn.close()
        except (http.client.HTTPException, OSError) as exc:
            out.append((c, -1, repr(exc).encode()))
            conn.close()
    conn.close()
    return out


def test_fuzz_10k_requests_no_5xx_right_4xx(tmp_path):
    model = train_and_register(tmp_path)
    expected = np.asarray(model["booster"].inplace_predict(model["x"]))
    cases = make_cases(model, seed=20261128)
    server = Server(tmp_path)
    try:
        port = int(server.url.rsplit(":", 1)[1])
        with ThreadPoolExecutor(THREADS) as pool:
            results = [
                r for part in pool.map(lambda k: send(port, cases[k::THREADS]), range(THREADS)) for r in part
            ]
        statuses = Counter(status for _, status, _ in results)
        wrong = [
            (c.get("path", "/invocations"), c.get("ctype"), c["want"], s, b[:200])
            for c, s, b in results
            if s != c["want"]
        ]
        assert not wrong, f"{len(wrong)} unexpected answers, first: {wrong[:5]}"
        assert not any(s >= 500 for s in statuses), statuses
        assert sum(1 for c, _, _ in results if c["want"] != 200) >= 0.15 * N_REQUESTS
        for c, status, body in results:
            if status != 200:
                doc = json.loads(body)
                assert doc["message"], doc
                if "code" in c and not c.get("path", "").startswith("/endpoints/"):
                    assert doc["code"] == c["code"], (c["code"], doc)
            elif c.get("idx") is not None:
                if c["ctype"] == "text/csv":
                    got = [float(v) for v in body.split()]
                else:
                    got = [p["score"] for p in json.loads(body)["predictions"]]
                np.testing.assert_allclose(got, expected[c["idx"]], atol=1e-6)
        assert server.proc.poll() is None  # still serving
        assert len(server.access_log()) >= N_REQUESTS
    finally:
        server.stop()
