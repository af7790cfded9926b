"""step_code/monitor.py on the scikit-learn image's library versions (pandas 1.5, scikit-learn 1.2, scipy 1.9 in
a cached venv, as tests/test_step_code_container_versions.py builds them) gives the report it gives here."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests._steps_util import AWS_DATA, load_step, write_config
from tests.test_step_code_container_versions import SKLEARN_IMAGE, container_python, run_step, versions
from tests.test_step_code_container_versions import modern as modern  # noqa: F401 - the fixture

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("aws_data")]

SHIFTED = ["customer_age", "vehicle_claim", "months_as_customer"]


def test_monitor_runs_on_the_container_library_versions(modern: dict, tmp_path: Path) -> None:  # noqa: F811
    from fraudflow.plan import monitor_config

    raw = pd.read_csv(AWS_DATA / "claims.csv").merge(pd.read_csv(AWS_DATA / "customers.csv"), on="policy_id")
    window = raw.sample(800, random_state=2)
    for column in SHIFTED:
        window[column] = window[column] + 2 * raw[column].std()
    scored = window.assign(probability=0.2, decision=1)
    scored.to_csv(tmp_path / "window.csv", index=False)
    config = write_config(
        tmp_path / "config.json",
        {"data": {"label": "fraud"}, "decision_threshold": 0.1, "bias": None, "monitor": monitor_config({})},
    )
    args = [
        "--config", str(config),
        "--baseline-dir", str(modern["data"] / "baseline"),
        "--schema-dir", str(modern["data"] / "schema"),
        "--evaluation-dir", str(modern["ev"]),
        "--current", str(tmp_path / "window.csv"),
    ]  # fmt: skip
    assert load_step("monitor").main([*args, "--output-dir", str(tmp_path / "here")]) == 0
    python = container_python(SKLEARN_IMAGE)
    assert versions(python, "pandas", "sklearn", "scipy") == {
        "pandas": "1.5.0",
        "sklearn": "1.2.1",
        "scipy": "1.9.2",
    }
    run_step(python, "monitor.py", *args, "--output-dir", str(tmp_path / "there"))
    here = json.loads((tmp_path / "here" / "report.json").read_text())
    there = json.loads((tmp_path / "there" / "report.json").read_text())
    assert here["drifted_features"] == there["drifted_features"] == sorted(SHIFTED)
    assert [v["feature_name"] for v in here["violations"]] == [v["feature_name"] for v in there["violations"]]
    for a, b in zip(here["features"], there["features"], strict=True):
        assert a["column"] == b["column"]
        for key in ("psi", "ks_statistic", "chi_square", "baseline_missing_rate", "current_missing_rate"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-12), (a["column"], key)
