"""`fraudflow predict` end to end: a pipeline run on generated claims, then batch scoring through the CLI,
compared with a hand-written pandas join + the version's own preprocess.transform + its booster."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudflow.local.registry import Registry
from fraudflow.sampledata import generate
from tests.conftest import run_cli

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("predict")
    shutil.copy(REPO / "pipelines.yaml", ws / "pipelines.yaml")
    generate(ws / "data", rows=3000, seed=7)
    done = run_cli("run", cwd=ws)
    assert done.returncode == 0, done.stderr + done.stdout
    return ws


def expected(ws: Path, claims: Path | None = None, how: str = "left") -> pd.DataFrame:
    """What predict must write, computed by hand: the pipeline's join, the registered snapshot's transform."""
    import xgboost as xgb

    from fraudflow.local.serving.model import load_preprocess

    art = ws / ".fraudflow" / "registry" / "fraud-detect-xgb" / "1"
    module = load_preprocess(art / "preprocess.py")
    schema = json.loads((art / "feature_schema.json").read_text())
    df = pd.read_csv(claims or ws / "data" / "claims.csv").merge(
        pd.read_csv(ws / "data" / "customers.csv"), on="policy_id", how=how
    )
    booster = xgb.Booster(model_file=str(art / "model" / "xgboost-model"))
    p = booster.inplace_predict(module.transform(df, schema).to_numpy(dtype=np.float64))
    threshold = Registry(ws / ".fraudflow").get("fraud-detect-xgb", 1).decision_threshold
    return pd.DataFrame(
        {"policy_id": df["policy_id"], "probability": p, "decision": (p >= threshold).astype(int)}
    )


def test_scores_the_pipelines_sources_like_the_hand_written_join(workspace):
    out = workspace / "scored.csv"
    done = run_cli("predict", "-o", str(out), cwd=workspace)
    assert done.returncode == 0, done.stderr
    got = pd.read_csv(out)
    assert list(got.columns) == ["policy_id", "probability", "decision"]
    want = expected(workspace)
    assert len(got) == len(want) == 3000
    np.testing.assert_array_equal(got["policy_id"], want["policy_id"])
    np.testing.assert_allclose(got["probability"], want["probability"], rtol=0, atol=1e-7)
    np.testing.assert_array_equal(got["decision"], want["decision"])
    assert "scored 3,000 rows with fraud-detect-xgb:1" in done.stderr


@pytest.mark.slow
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunk=st.integers(min_value=1, max_value=4000), parquet=st.booleans())
def test_the_chunk_size_and_format_never_change_the_answer(workspace, chunk, parquet):
    out = workspace / f"chunked-{chunk}.{'parquet' if parquet else 'csv'}"
    done = run_cli(
        "predict", "-o", str(out), "--chunk-rows", str(chunk), "--keep", "incident_type", cwd=workspace
    )
    assert done.returncode == 0, done.stderr
    got = pd.read_parquet(out) if parquet else pd.read_csv(out)
    assert list(got.columns) == ["policy_id", "incident_type", "probability", "decision"]
    want = expected(workspace)
    np.testing.assert_allclose(got["probability"], want["probability"], rtol=0, atol=1e-7)
    assert got["policy_id"].astype(str).tolist() == want["policy_id"].astype(str).tolist()


def test_source_replaces_one_input_and_keeps_unmatched_rows_of_a_left_join(workspace, tmp_path):
    claims = pd.read_csv(workspace / "data" / "claims.csv").head(50).drop(columns=["fraud"])
    claims.loc[3, "policy_id"] = 10**9  # no customer: a left join scores it with the customer columns missing
    path = tmp_path / "new.csv"
    claims.to_csv(path, index=False)
    out = tmp_path / "out.csv"
    done = run_cli("predict", "--source", f"claims={path}", "-o", str(out), cwd=workspace)
    assert done.returncode == 0, done.stderr
    got = pd.read_csv(out)
    want = expected(workspace, claims=path)
    assert len(got) == 50 and got["policy_id"][3] == 10**9
    np.testing.assert_allclose(got["probability"], want["probability"], rtol=0, atol=1e-7)


def test_a_bad_value_is_located_at_its_file_line_and_column(workspace, tmp_path):
    claims = pd.read_csv(workspace / "data" / "claims.csv").head(300)
    claims["vehicle_claim"] = claims["vehicle_claim"].astype(object)
    claims.loc[211, "vehicle_claim"] = "lots"
    path = tmp_path / "bad.csv"
    claims.to_csv(path, index=False)
    done = run_cli(
        "predict",
        "--source",
        f"claims={path}",
        "--chunk-rows",
        "64",
        "-o",
        str(tmp_path / "o.csv"),
        cwd=workspace,
    )
    column = list(claims.columns).index("vehicle_claim") + 1
    assert done.returncode == 1
    assert f"{path}:213:{column}: FF922" in done.stderr, done.stderr
    assert "lots" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "o.csv").exists()  # no half-written output
    assert not list(tmp_path.glob(".o.csv.partial*"))


def test_a_repeated_key_in_a_joined_source_is_located(workspace, tmp_path):
    customers = pd.read_csv(workspace / "data" / "customers.csv").head(100)
    customers.loc[40, "policy_id"] = customers.loc[10, "policy_id"]
    path = tmp_path / "cust.csv"
    customers.to_csv(path, index=False)
    done = run_cli("predict", "--source", f"customers={path}", "-o", str(tmp_path / "o.csv"), cwd=workspace)
    assert done.returncode == 1
    assert f"{path}:12: FF925" in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("argv", "code", "status"),
    [
        (["--source", "nope=x.csv"], "FF920", 64),
        (["--source", "claims"], "FF920", 64),
        (["--keep", "no_such_column"], "FF924", 1),
        (["--source", "claims=/does/not/exist.csv"], "FF921", 1),
        (["--version", "fraud-detect-xgb:9"], "FF803", 1),
        (["--endpoint", "nope"], "FF805", 1),
    ],
)
def test_mistakes_are_one_line_errors_with_the_right_exit_code(workspace, tmp_path, argv, code, status):
    done = run_cli("predict", *argv, "-o", str(tmp_path / "o.csv"), cwd=workspace)
    assert done.returncode == status, done.stderr
    assert code in done.stderr and "Traceback" not in done.stderr


def test_the_output_extension_must_name_a_format(workspace, tmp_path):
    done = run_cli("predict", "-o", str(tmp_path / "o.xlsx"), cwd=workspace)
    assert done.returncode == 64 and "FF920" in done.stderr


def test_an_inner_join_scores_only_the_claims_with_a_match(workspace, tmp_path):
    claims = pd.read_csv(workspace / "data" / "claims.csv").head(40)
    claims.loc[[5, 17], "policy_id"] = [10**9, 10**9 + 1]  # no customer: an inner join drops them
    path = tmp_path / "c.csv"
    claims.to_csv(path, index=False)
    out = tmp_path / "o.parquet"
    done = run_cli(
        "predict", "--set", "data.join.how=inner", "--source", f"claims={path}", "-o", str(out), cwd=workspace
    )
    assert done.returncode == 0, done.stderr
    got = pd.read_parquet(out)
    want = expected(workspace, claims=path, how="inner")
    assert len(got) == 38 and got["policy_id"].astype(int).tolist() == want["policy_id"].tolist()
    np.testing.assert_allclose(got["probability"], want["probability"], rtol=0, atol=1e-7)


def test_a_batch_transform_of_the_same_model_gives_what_predict_writes(workspace, tmp_path):
    """The packed model (model.tar.gz's folder) in the XGBoost container's script mode, fed as a batch transform
    with SplitType Line: JSON lines of one claim record each (SingleRecord: a JSON body holds one document), and
    encoded CSV rows in MultiRecord mini-batches. Both equal `fraudflow predict`'s probabilities."""
    from tests.sagemaker_harness import HarnessError, ServedModel, batch_transform, tar_gz

    art = workspace / ".fraudflow" / "registry" / "fraud-detect-xgb" / "1"
    env = {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        "FRAUDFLOW_DECISION_THRESHOLD": "0.1",
    }
    served = ServedModel.from_archive(tar_gz(art / "model"), env, tmp_path)
    out = tmp_path / "scored.csv"
    assert run_cli("predict", "-o", str(out), cwd=workspace).returncode == 0
    want = pd.read_csv(out).head(300)

    joined = pd.read_csv(workspace / "data" / "claims.csv").merge(
        pd.read_csv(workspace / "data" / "customers.csv"), on="policy_id", how="left"
    )
    lines = [json.dumps({"records": [r]}) for r in json.loads(joined.head(300).to_json(orient="records"))]
    body = ("\n".join(lines) + "\n").encode()
    answer = batch_transform(
        served,
        body,
        content_type="application/json",
        accept="application/json",
        batch_strategy="SingleRecord",
    )
    preds = [json.loads(ln)["predictions"][0] for ln in answer.decode().splitlines()]
    np.testing.assert_allclose([p["probability"] for p in preds], want["probability"], rtol=0, atol=1e-6)
    assert [p["decision"] for p in preds] == want["decision"].tolist()

    with pytest.raises(HarnessError, match="400"):  # MultiRecord joins JSON documents: not one JSON body
        batch_transform(served, body, content_type="application/json", batch_strategy="MultiRecord")

    from fraudflow.local.serving.model import load_preprocess

    schema = json.loads((art / "feature_schema.json").read_text())
    rows = load_preprocess(art / "preprocess.py").transform(joined.head(300), schema).to_numpy(dtype=float)
    csv = "".join(",".join(repr(float(v)) for v in r) + "\n" for r in rows).encode()
    scores = batch_transform(served, csv, content_type="text/csv", accept="text/csv", max_payload_mb=0.01)
    np.testing.assert_allclose(np.array(scores.split(), dtype=float), want["probability"], rtol=0, atol=1e-6)
