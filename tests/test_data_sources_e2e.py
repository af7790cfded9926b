"""Issue 12's done-when, end to end through `fraudflow run` on AWS's data: string and boolean labels with only
`data.positive` set give the model of the 0/1 original; Parquet, gzip CSV and CSV of the same data give
byte-identical models; four corrupted copies are refused before training by the contract `fraudflow contract
infer` writes, each with its own code and location, and the clean data passes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from tests._steps_util import load_step
from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow

NA_VALUES = load_step("preprocess").NA_VALUES


def _workspace(ws: Path, aws_data: Path, positive: str | None = None, ext: str = "csv") -> Path:
    """The reference pipelines.yaml over a copy of the AWS data, bias.label_values left to its default (the
    positive class), and `positive:` the only other line added."""
    ws.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "pipelines.yaml").read_text().replace("data_dir: data", "data_dir: .")
    text = re.sub(r"\n\s+label_values: \[1\][^\n]*", "", text)
    text = text.replace("claims.csv", f"claims.{ext}").replace("customers.csv", f"customers.{ext}")
    if positive is not None:
        text = text.replace("      label: fraud\n", f"      label: fraud\n      positive: {positive}\n")
    (ws / "pipelines.yaml").write_text(text)
    return ws


def _frames(aws_data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The data as preprocess reads it (its missing-value words as missing)."""
    read = lambda name: pd.read_csv(aws_data / name, na_values=NA_VALUES, keep_default_na=False)  # noqa: E731
    return read("claims.csv"), read("customers.csv")


def _run(ws: Path) -> dict:
    proc = run_cli("run", cwd=ws)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((ws / ".fraudflow/runs/latest/run.json").read_text())
    step = {s["name"]: Path(s["path"]) for s in summary["steps"] if s["path"]}
    return {
        "model": (step["train"] / "output/model/xgboost-model").read_bytes(),
        "auc": summary["gate"]["value"],
        "predictions": (step["evaluate"] / "output/evaluation/predictions.csv").read_text(),
        "bias": json.loads((step["bias"] / "output/analysis/report.json").read_text()),
        "schema": json.loads((step["preprocess"] / "output/schema/feature_schema.json").read_text()),
        "report": (ws / ".fraudflow/runs/latest/report.html").read_text(),
    }


def test_string_and_boolean_labels_with_positive_only_give_the_0_1_model(
    tmp_path: Path, aws_data: Path
) -> None:
    claims, customers = _frames(aws_data)
    original = _workspace(tmp_path / "01", aws_data)
    claims.to_csv(original / "claims.csv", index=False)
    customers.to_csv(original / "customers.csv", index=False)
    base = _run(original)
    for name, positive, mapping in (
        ("yes-no", '["yes"]', {1: "yes", 0: "no"}),
        ("booleans", "[true]", {1: True, 0: False}),
        ("fraud-legit", '["fraud"]', {1: "fraud", 0: "legit"}),
        ("inverted-0-1", "[0]", {1: 0, 0: 1}),  # 0 means fraud: the positive class is data.positive's, not 1
    ):
        ws = _workspace(tmp_path / name, aws_data, positive)
        claims.assign(fraud=claims["fraud"].map(mapping)).to_csv(ws / "claims.csv", index=False)
        customers.to_csv(ws / "customers.csv", index=False)
        assert run_cli("validate", cwd=ws).returncode == 0
        got = _run(ws)
        assert got["model"] == base["model"], name  # the positive class the right way round, bit for bit
        assert got["auc"] == base["auc"] and got["predictions"] == base["predictions"]
        # the bias step counts the same positives and shows the original label values
        assert got["bias"]["pre_training"] == base["bias"]["pre_training"]
        assert got["bias"]["label_values"] == [mapping[1]] and got["bias"]["label_values_encoded"] == [1]
        assert got["schema"]["label_values"] == {"positive": [mapping[1]], "negative": [mapping[0]]}
        assert f"positive (1) = {json.dumps([mapping[1]])}" in got["report"]  # report.html names them too


def test_yes_no_labels_without_positive_are_refused_by_validate_with_the_fix(
    tmp_path: Path, aws_data: Path
) -> None:
    claims, customers = _frames(aws_data)
    ws = _workspace(tmp_path, aws_data)
    claims.assign(fraud=claims["fraud"].map({1: "yes", 0: "no"})).to_csv(ws / "claims.csv", index=False)
    customers.to_csv(ws / "customers.csv", index=False)
    proc = run_cli("validate", cwd=ws)
    assert proc.returncode == 1 and "FF541" in proc.stdout + proc.stderr
    assert "positive: ['yes']" in proc.stdout + proc.stderr


def test_parquet_gzip_and_csv_of_the_same_data_give_identical_models(tmp_path: Path, aws_data: Path) -> None:
    claims, customers = _frames(aws_data)
    models = {}
    for ext in ("csv", "parquet", "csv.gz"):
        ws = _workspace(tmp_path / ext.replace(".", "-"), aws_data, ext=ext)
        for frame, name in ((claims, "claims"), (customers, "customers")):
            if ext == "parquet":
                frame.to_parquet(ws / f"{name}.parquet", index=False)
            else:
                frame.to_csv(ws / f"{name}.{ext}", index=False)
        assert run_cli("validate", cwd=ws).returncode == 0
        models[ext] = _run(ws)
    assert models["parquet"]["model"] == models["csv"]["model"] == models["csv.gz"]["model"]
    assert models["parquet"]["predictions"] == models["csv"]["predictions"]


# ---------------------------------------------------------------------------------------------- the contract


@pytest.fixture(scope="module")
def contracted(tmp_path_factory: pytest.TempPathFactory, aws_data: Path) -> Path:
    """A workspace whose pipelines.yaml holds the contract `fraudflow contract infer` printed for the clean data."""
    ws = _workspace(tmp_path_factory.mktemp("contract"), aws_data)
    for name in ("claims.csv", "customers.csv"):
        (ws / name).write_bytes((aws_data / name).read_bytes())
    proc = run_cli("contract", "infer", cwd=ws)
    assert proc.returncode == 0, proc.stderr
    text = (ws / "pipelines.yaml").read_text()
    (ws / "pipelines.yaml").write_text(
        text.replace("      label: fraud\n", "      label: fraud\n" + proc.stdout)
    )
    assert run_cli("validate", cwd=ws).returncode == 0
    return ws


def _corrupt(ws: Path, name: str, edit) -> None:  # noqa: ANN001
    df = pd.read_csv(ws / name, keep_default_na=False)
    edit(df).to_csv(ws / name, index=False)


def _with_copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for name in ("pipelines.yaml", "claims.csv", "customers.csv"):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def test_clean_data_passes_its_inferred_contract(contracted: Path, tmp_path: Path) -> None:
    ws = _with_copy(contracted, tmp_path / "clean")
    proc = run_cli("run", cwd=ws)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((ws / ".fraudflow/runs/latest/run.json").read_text())
    report = Path(summary["steps"][0]["path"]) / "output/report/preprocess.json"
    assert json.loads(report.read_text())["contract"] == {"violations": []}


def _first_policy_line(ws: Path) -> int:
    claims = pd.read_csv(ws / "claims.csv")
    customers = pd.read_csv(ws / "customers.csv")
    return int(customers.index[customers["policy_id"] == claims["policy_id"][0]][0]) + 2


@pytest.mark.parametrize(
    ("case", "code", "where", "words"),
    [
        ("unseen category", "FF673", "claims.csv:42:", "'Flood'"),
        ("column of nulls", "FF675", "customers.csv:{first_policy}:", "customer_education"),
        ("fraud share x10", "FF678", "claims.csv:", "positive_share"),
        ("duplicated key", "FF676", "claims.csv:10:", "policy_id"),
    ],
)
def test_a_corrupted_copy_is_refused_before_training_with_its_code_and_location(
    contracted: Path, tmp_path: Path, case: str, code: str, where: str, words: str
) -> None:
    ws = _with_copy(contracted, tmp_path / "ws")
    if case == "unseen category":
        _corrupt(
            ws,
            "claims.csv",
            lambda df: df.assign(incident_type=df["incident_type"].where(df.index != 40, "Flood")),
        )
    elif case == "column of nulls":
        _corrupt(ws, "customers.csv", lambda df: df.assign(customer_education=""))
    elif case == "fraud share x10":
        share = pd.read_csv(ws / "claims.csv")["fraud"].mean()
        _corrupt(
            ws,
            "claims.csv",
            lambda df: df.assign(fraud=(df.index % round(1 / (10 * share)) == 0).astype(int)),
        )
    else:
        _corrupt(
            ws,
            "claims.csv",
            lambda df: df.assign(policy_id=df["policy_id"].where(df.index != 8, df["policy_id"][3])),
        )
    where = where.format(first_policy=_first_policy_line(ws))
    proc = run_cli("run", cwd=ws)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    error = next(line for line in proc.stderr.splitlines() if f" {code} " in line)
    assert where in error and words in error, error
    assert "[2/8] train" not in proc.stdout  # refused before training
    steps = ws / ".fraudflow" / "steps"
    assert not steps.exists() or not any((p / "step.json").exists() for p in steps.iterdir())


# ---------------------------------------------------------------------------------------------- container versions


@pytest.mark.parametrize("version", ["1.2-1", "1.4-2"])
def test_labels_and_contract_run_alike_on_the_container_library_versions(
    version: str, tmp_path: Path, aws_data: Path
) -> None:
    """preprocess with yes/no labels and a contract, run as SageMaker runs it (a script beside stepkit.py and
    contract.py) on each scikit-learn image's pandas/numpy: the same rows, the same located violations."""
    import subprocess
    import sys

    from tests._steps_util import aws_inputs, reference_config, write_config
    from tests.test_step_code_container_versions import SKLEARN_IMAGES, container_python

    claims, _ = _frames(aws_data)
    claims = claims.assign(fraud=claims["fraud"].map({1: "yes", 0: "no"}))
    claims.loc[5, "incident_type"] = "Flood"
    claims.to_csv(tmp_path / "claims.csv", index=False)
    config = reference_config()
    config["data"]["positive"] = ["yes"]
    config["data"]["expect"] = {
        "positive_share": {"min": 0.01, "max": 0.1},
        "columns": {
            "incident_type": {
                "type": "string",
                "categories": ["Break-in", "Collision", "Theft"],
                "level": "warn",
            },
            "policy_id": {"type": "integer", "unique": True, "min": 1},
        },
    }
    inputs = aws_inputs(tmp_path / "in", claims=tmp_path / "claims.csv")
    outputs = {}
    for name, python in (
        ("here", Path(sys.executable)),
        ("image", container_python(SKLEARN_IMAGES[version])),
    ):
        cfg = write_config(tmp_path / f"{name}.json", config)
        out = tmp_path / f"out-{name}"
        proc = subprocess.run(
            [str(python), str(ROOT / "step_code/preprocess.py"), "--config", str(cfg), "--input-dir", str(inputs),
             "--output-dir", str(out)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "warning[FF673]" in proc.stderr and ":7: column 'incident_type'" in proc.stderr
        outputs[name] = out
    for rel in ("train/train.csv", "test/test.csv", "report/preprocess.json", "schema/feature_schema.json"):
        assert (outputs["here"] / rel).read_bytes() == (outputs["image"] / rel).read_bytes(), rel
