"""The hot-switch thread outlives a registry it cannot open: a failing poll (even the first) is logged and the
next poll retries, so a repaired registry is picked up without restarting the server."""

from __future__ import annotations

import io
import json
import sqlite3
import time
from pathlib import Path

import pytest

from fraudflow.local.registry import Registry, VariantSpec
from fraudflow.local.serving.app import EndpointApp
from tests.test_serve import train_and_register


def _events(log: io.StringIO) -> list[dict]:
    return [json.loads(ln) for ln in log.getvalue().splitlines() if ln.startswith("{")]


def _wait(pred, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def _set_schema_version(db: Path, value: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (value,))


@pytest.mark.slow
def test_first_poll_failure_does_not_kill_the_hot_switch(tmp_path):
    a = train_and_register(tmp_path, rounds=5, endpoint="fraud")
    b = train_and_register(tmp_path, rounds=6, seed=1, endpoint=None)
    state = tmp_path / ".fraudflow"
    log = io.StringIO()
    app = EndpointApp(state, endpoint="fraud", poll=0.05, log=log)
    assert app.state.describe().endswith(f":{a['version']} (weight 1)")
    # the very first poll cannot open the registry (a "newer fraudflow" wrote it: FF808, a UserError)
    _set_schema_version(state / "registry.db", "999")
    app.start_polling()
    try:
        assert _wait(lambda: any(e["event"] in ("switch_failed", "poll_error") for e in _events(log)))
        time.sleep(0.2)  # several more failing polls
        assert app._poller is not None and app._poller.is_alive()
        # repair the registry and move the endpoint: the same thread switches
        _set_schema_version(state / "registry.db", "1")
        reg = Registry(state)
        reg.deploy("fraud", [VariantSpec("AllTraffic", "fraud-detect-xgb", b["version"], 1)])
        reg.close()
        assert _wait(lambda: any(e["event"] == "switch" for e in _events(log))), log.getvalue()
        assert app.state.describe().endswith(f":{b['version']} (weight 1)")
    finally:
        app.stop_polling()
