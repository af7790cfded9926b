"""`fraudflow run` on other data: a differently shaped dataset with no Python change, and bad data that must
give a located error with no step marked done."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow

TRANSACTIONS_YAML = """\
# yaml-language-server: $schema=schemas/pipelines.schema.json
version: 1
pipelines:
  card-fraud:
    data:
      sources: {transactions: transactions.csv}
      label: is_fraud
      drop: [txn_id]
    features:
      missing: {categorical: unknown, numeric: median}
      one_hot: [merchant_category, channel]
      ordinal: {customer_tier: [bronze, silver, gold]}
    split: {train: 0.7, validation: 0.15, test: 0.15, seed: 7}
    train:
      hyperparameters: {objective: "binary:logistic", max_depth: 4, eta: 0.3, num_round: 40}
    gate: {metric: roc_auc, threshold: 0.75}
    bias: {facet: channel_online, facet_values: [1], label_values: [1]}
    explain: {method: shap}
    register: {model_package_group: card-fraud}
    deploy: {endpoint_name: card-fraud}
"""


def _transactions(n: int = 3000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "txn_id": np.arange(n),
            "amount": rng.gamma(2.0, 80.0, n).round(2),
            "merchant_category": rng.choice(["grocery", "travel", "electronics", "fuel"], n),
            "channel": rng.choice(["online", "pos"], n, p=[0.4, 0.6]),
            "customer_tier": rng.choice(["bronze", "silver", "gold", None], n, p=[0.5, 0.3, 0.15, 0.05]),
            "account_age_days": rng.integers(1, 3000, n).astype(float),
        }
    )
    df.loc[rng.random(n) < 0.03, "account_age_days"] = np.nan
    logit = (
        -4.0
        + 0.006 * df["amount"]
        + 1.2 * (df["merchant_category"] == "electronics")
        + 0.8 * (df["channel"] == "online")
        - 0.0006 * df["account_age_days"].fillna(1500)
    )
    df["is_fraud"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


def test_a_differently_shaped_dataset_runs_with_no_python_change(tmp_path: Path) -> None:
    (tmp_path / "pipelines.yaml").write_text(TRANSACTIONS_YAML)
    _transactions().to_csv(tmp_path / "transactions.csv", index=False)
    assert run_cli("validate", "pipelines.yaml", cwd=tmp_path).returncode == 0
    proc = run_cli("run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((tmp_path / ".fraudflow/runs/latest/run.json").read_text())
    assert summary["status"] == "succeeded" and summary["gate"]["value"] >= 0.75
    schema = json.loads(
        (tmp_path / ".fraudflow/runs/latest/preprocess/output/schema/feature_schema.json").read_text()
    )
    assert {"channel_online", "merchant_category_travel", "customer_tier"} <= set(schema["features"])
    assert summary["model_package"] == {
        "group": "card-fraud",
        "version": 1,
        "status": "PendingManualApproval",
    }


@pytest.fixture()
def small_aws(tmp_path: Path, aws_data: Path) -> Path:
    """The first 1500 policies of the AWS data in a workspace of their own, with the reference pipelines.yaml."""
    claims = pd.read_csv(aws_data / "claims.csv", keep_default_na=False)
    customers = pd.read_csv(aws_data / "customers.csv", keep_default_na=False)
    claims.head(1500).to_csv(tmp_path / "claims.csv", index=False)
    customers.head(1500).to_csv(tmp_path / "customers.csv", index=False)
    text = (ROOT / "pipelines.yaml").read_text().replace("data_dir: data", "data_dir: .")
    (tmp_path / "pipelines.yaml").write_text(text)
    return tmp_path


def _no_step_done(ws: Path) -> bool:
    steps = ws / ".fraudflow" / "steps"
    return not steps.exists() or not any((p / "step.json").exists() for p in steps.iterdir())


def _edit_claims(ws: Path, edit) -> None:  # noqa: ANN001
    df = pd.read_csv(ws / "claims.csv", keep_default_na=False)
    edit(df).to_csv(ws / "claims.csv", index=False)


@pytest.mark.parametrize(
    ("case", "code", "words"),
    [
        ("missing column", "FF502", "collision_type"),
        (
            "non-binary label",
            "FF541",
            "fraud",
        ),  # validate reads the label's first values: caught before any step
        ("missing label", "FF6", "fraud"),
        ("one class in a split", "FF6", "class"),
    ],
)
def test_bad_data_gets_a_located_error_and_no_step_is_done(
    small_aws: Path, case: str, code: str, words: str
) -> None:
    if case == "missing column":
        _edit_claims(small_aws, lambda df: df.drop(columns=["collision_type"]))
    elif case == "non-binary label":
        _edit_claims(small_aws, lambda df: df.assign(fraud=df["fraud"].where(df.index != 17, 2)))
    elif case == "missing label":
        _edit_claims(small_aws, lambda df: df.assign(fraud=df["fraud"].astype(str).where(df.index != 17, "")))
    elif case == "one class in a split":
        _edit_claims(
            small_aws, lambda df: df.assign(fraud=0).assign(fraud=lambda d: (d.index == 3).astype(int))
        )
    proc = run_cli("run", cwd=small_aws)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert code in proc.stderr and words in proc.stderr
    assert _no_step_done(small_aws)


@pytest.mark.parametrize("case", ["empty file", "unreadable file", "missing file"])
def test_unusable_files(small_aws: Path, case: str) -> None:
    target = small_aws / "customers.csv"
    if case == "empty file":
        target.write_text("")
    elif case == "unreadable file":
        target.write_bytes(bytes(range(256)) * 40)
    else:
        target.unlink()
    proc = run_cli("run", cwd=small_aws)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "customers.csv" in proc.stderr
    assert _no_step_done(small_aws)


def test_sample_data_then_run_is_the_readme_main_job(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pipelines.yaml", tmp_path / "pipelines.yaml")
    made = run_cli("sample-data", "data", "--rows", "5000", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    proc = run_cli("run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((tmp_path / ".fraudflow/runs/latest/run.json").read_text())
    assert summary["gate"]["value"] > 0.75


def test_a_crashing_step_keeps_its_log_where_the_error_points(
    small_aws: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fraudflow.cli import main
    from fraudflow.local import runner

    real = runner.load_script

    def broken(path: Path):  # noqa: ANN202 - a module whose main crashes like a bug in step code would
        module = real(path)
        if path.name != "train.py":
            return module

        class Crashing:
            @staticmethod
            def main(argv: list[str]) -> int:
                print("training starts")
                raise RuntimeError("boom")

        return Crashing

    monkeypatch.setattr(runner, "load_script", broken)
    assert main(["run", str(small_aws / "pipelines.yaml")]) == 1
    err = capsys.readouterr().err
    assert "FF690" in err and "RuntimeError: boom" in err
    log = Path(err.split(": FF690")[0].strip())
    assert log.exists() and "Traceback" in log.read_text() and "training starts" in log.read_text()
