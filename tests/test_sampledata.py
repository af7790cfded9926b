"""fraudflow.sampledata: files shaped exactly like AWS's claims data, deterministic, with a learnable fraud signal."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudflow import cli
from fraudflow.errors import UserError
from fraudflow.sampledata import generate
from tests.test_step_bias import encode

FILES = ("claims.csv", "customers.csv")


@pytest.fixture(scope="module")
def real(aws_data: Path):
    return {f: pd.read_csv(aws_data / f) for f in FILES}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    summary = generate(out, rows=5000, seed=0)
    return {"dir": out, "summary": summary, **{f: pd.read_csv(out / f) for f in FILES}}


def is_text(series: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(series)


@pytest.mark.parametrize("name", FILES)
def test_same_columns_and_dtypes_as_aws(real, sample, name):
    assert list(sample[name].columns) == list(real[name].columns)
    assert sample[name].dtypes.astype(str).to_dict() == real[name].dtypes.astype(str).to_dict()


@pytest.mark.parametrize("name", FILES)
def test_same_value_sets_and_ranges(real, sample, name):
    ours, theirs = sample[name], real[name]
    for col in theirs.columns:
        if is_text(theirs[col]):
            # Every category, the "None" that pandas reads as missing, and "Unkown" (sic) included.
            assert set(ours[col].fillna("<NA>")) == set(theirs[col].fillna("<NA>")), col
        elif col == "total_claim_amount":
            np.testing.assert_allclose(ours[col], ours["injury_claim"] + ours["vehicle_claim"], atol=2e-6)
        elif col != "policy_id":
            assert theirs[col].min() <= ours[col].min() and ours[col].max() <= theirs[col].max(), col
            if theirs[col].nunique() <= 31:  # discrete columns: only values the AWS data has
                assert set(ours[col]) <= set(theirs[col]), col


def test_policy_ids_and_missing_pattern(sample):
    claims, customers = sample["claims.csv"], sample["customers.csv"]
    for frame in (claims, customers):
        assert frame["policy_id"].tolist() == list(range(1, 5001))
    no_collision = claims["incident_type"] != "Collision"
    assert claims["collision_type"].isna().equals(no_collision)
    assert claims["driver_relationship"].isna().equals(no_collision)
    assert claims["authorities_contacted"].isna().mean() == pytest.approx(0.24, abs=0.05)
    assert (claims["police_report_available"] == "Yes").le(claims["authorities_contacted"] == "Police").all()


def test_fraud_rate_and_gender_effect(sample):
    df = sample["claims.csv"].merge(sample["customers.csv"], on="policy_id")
    assert sample["summary"]["frauds"] == int(df["fraud"].sum())
    assert 0.02 < df["fraud"].mean() < 0.045
    female = df["customer_gender"] == "Female"
    dpl = df.loc[~female, "fraud"].mean() - df.loc[female, "fraud"].mean()
    assert 0.002 < dpl < 0.03  # mild, as in the AWS data's DPL of 0.027


def test_deterministic_for_a_seed(tmp_path):
    digest = {}
    for run, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate(tmp_path / run, rows=300, seed=seed)
        digest[run] = [hashlib.sha256((tmp_path / run / f).read_bytes()).hexdigest() for f in FILES]
    assert digest["a"] == digest["b"]
    assert digest["a"] != digest["c"]


def test_xgboost_learns_the_fraud_signal(tmp_path):
    import xgboost as xgb
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    generate(tmp_path, rows=20_000, seed=1)
    df = encode(pd.read_csv(tmp_path / "claims.csv"), pd.read_csv(tmp_path / "customers.csv"))
    train, test = train_test_split(df, test_size=0.2, random_state=0, stratify=df["fraud"])
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.2, "subsample": 0.8, "seed": 0}
    booster = xgb.train(params, xgb.DMatrix(train.drop(columns="fraud"), label=train["fraud"]), 100)
    auc = roc_auc_score(test["fraud"], booster.predict(xgb.DMatrix(test.drop(columns="fraud"))))
    assert auc > 0.8


def test_cli_writes_and_summarises(tmp_path, capsys):
    assert cli.main(["sample-data", str(tmp_path / "data"), "--rows", "200", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("wrote 200 claims (") and out.count("\n") == 1
    assert len(pd.read_csv(tmp_path / "data/customers.csv")) == 200


def test_too_few_rows_is_a_user_error(tmp_path, capsys):
    with pytest.raises(UserError) as info:
        generate(tmp_path, rows=5)
    assert info.value.diagnostics[0].code == "FF901"
    assert cli.main(["sample-data", str(tmp_path / "x"), "--rows", "3"]) == 1
    err = capsys.readouterr().err
    assert "FF901" in err and "at least 10" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_chunked_generation_keeps_ids_and_shape(tmp_path, monkeypatch, real):
    """Big row counts are written chunk by chunk: ids run on across chunks, files stay well formed."""
    from fraudflow import sampledata

    monkeypatch.setattr(sampledata, "CHUNK_ROWS", 64)
    summary = generate(tmp_path, rows=300, seed=2)
    claims, customers = (pd.read_csv(tmp_path / f) for f in FILES)
    assert claims["policy_id"].tolist() == customers["policy_id"].tolist() == list(range(1, 301))
    assert summary["frauds"] == int(claims["fraud"].sum())
    assert claims.dtypes.astype(str).to_dict() == real["claims.csv"].dtypes.astype(str).to_dict()
