"""step_code/preprocess.py on the AWS synthetic claims data with the reference config, and on broken copies of it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests._steps_util import AWS_DATA, STEP_CODE, aws_inputs, load_step, reference_config, write_config

pp = load_step("preprocess")

pytestmark = pytest.mark.usefixtures("aws_data")


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("preprocess")
    config = write_config(root / "config.json", reference_config())
    inputs = aws_inputs(root / "input")
    assert (
        pp.main(["--config", str(config), "--input-dir", str(inputs), "--output-dir", str(root / "out")]) == 0
    )
    return root / "out"


def read_split(out: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out / name / f"{name}.csv", header=None)


def test_outputs_are_complete(out):
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == [
        "baseline/statistics.json",
        "baseline/test_with_header.csv",
        "baseline/train_raw.csv",
        "baseline/train_with_header.csv",
        "report/preprocess.json",
        "schema/feature_schema.json",
        "test/test.csv",
        "train/train.csv",
        "validation/validation.csv",
    ]


def test_train_raw_is_the_training_split_before_encoding(out):
    """The monitor's baseline: the model's raw input columns of the training rows, missing values kept."""
    schema = json.loads((out / "schema/feature_schema.json").read_text())
    raw = pd.read_csv(out / "baseline/train_raw.csv")
    encoded = pd.read_csv(out / "baseline/train_with_header.csv")
    assert sorted(raw.columns) == sorted([*schema["numeric"], *schema["ordinal"], *schema["one_hot"]])
    assert len(raw) == len(encoded)
    for column in schema["numeric"]:  # numeric fill "none" in the reference: the same values, row by row
        assert raw[column].equals(encoded[column].astype(raw[column].dtype)), column
    assert raw["authorities_contacted"].isna().any()  # "None" in the data: missing before the fill


def test_report_counts_rows_and_positives(out):
    report = json.loads((out / "report/preprocess.json").read_text())
    assert report["sources"]["claims"]["rows"] == 5000
    assert report["sources"]["customers"]["rows"] == 5000
    assert report["joined_rows"] == 5000
    assert {k: v["rows"] for k, v in report["splits"].items()} == {
        "train": 4000,
        "validation": 500,
        "test": 500,
    }
    assert sum(v["positives"] for v in report["splits"].values()) == 164
    # stratified: every split holds the data's 3.28% fraud rate, to the row
    assert [report["splits"][k]["positives"] for k in ("train", "validation", "test")] == [132, 16, 16]


def test_split_csvs_are_headerless_numeric_label_first(out):
    schema = json.loads((out / "schema/feature_schema.json").read_text())
    for name, rows in (("train", 4000), ("validation", 500), ("test", 500)):
        first_line = (out / name / f"{name}.csv").read_text().splitlines()[0]
        assert not any(c.isalpha() for c in first_line), f"{name}.csv has a header: {first_line[:60]}"
        df = read_split(out, name)
        assert df.shape == (rows, 1 + len(schema["features"]))
        assert set(df[0].unique()) == {0, 1}
        assert all(pd.api.types.is_numeric_dtype(df[c]) for c in df.columns)
        assert "True" not in first_line and "False" not in first_line  # pandas>=2 dummies would be bools


def test_dummies_are_integers_and_named_as_declared(out):
    train = pd.read_csv(out / "baseline/train_with_header.csv")
    assert train.columns[0] == "fraud"
    assert "customer_gender_female" in train.columns
    assert "customer_gender_unkown" not in train.columns  # features.drop_encoded
    assert {"policy_id", "customer_zip"}.isdisjoint(train.columns)  # data.drop
    dummies = [
        c for c in train.columns if c.startswith(("customer_gender_", "collision_type_", "policy_state_"))
    ]
    for c in dummies:
        assert train[c].dtype == np.int64 and set(train[c].unique()) <= {0, 1}, c
    # "None" in claims.csv is missing -> filled with "na" -> its own dummy (pandas 1.x would read it as a string)
    assert "collision_type_na" in train.columns and "collision_type_none" not in train.columns
    assert sorted(train["customer_education"].unique()) == [0, 1, 2, 3, 4]
    assert sorted(train["policy_liability"].unique()) == [0, 1, 2, 3]


def test_transform_rebuilds_the_saved_test_rows_from_raw_records(out, tmp_path):
    config = reference_config()
    schema = json.loads((out / "schema/feature_schema.json").read_text())
    joined, _ = pp.load_joined(config, aws_inputs(tmp_path / "input"))
    _, _, raw_test = pp.split_frame(joined, config)
    rebuilt = pp.transform(raw_test.drop(columns=["fraud"]), schema)
    saved = pd.read_csv(out / "baseline/test_with_header.csv")
    assert list(rebuilt.columns) == schema["features"] == list(saved.columns[1:])
    np.testing.assert_array_equal(rebuilt.to_numpy(float), saved.iloc[:, 1:].to_numpy(float))
    np.testing.assert_array_equal(
        read_split(out, "test").iloc[:, 1:].to_numpy(float), saved.iloc[:, 1:].to_numpy(float)
    )


def test_a_record_encodes_alone_as_it_does_in_a_batch(out, tmp_path):
    """Serving encodes one JSON record at a time: each row must not depend on its neighbours or on the dtypes
    pandas infers for a batch (JSON gives Python ints, floats, strings and None, often mixed in one column)."""
    schema = json.loads((out / "schema/feature_schema.json").read_text())
    joined, _ = pp.load_joined(reference_config(), aws_inputs(tmp_path / "input"))
    records = joined.drop(columns=["fraud"]).head(200).astype(object).to_dict("records")
    rng = np.random.default_rng(7)
    for r in records:  # JSON-like perturbations: nulls, absent keys, numbers sent as strings or floats
        for k in list(r):
            u = rng.random()
            if u < 0.05:
                r[k] = None
            elif u < 0.08:
                del r[k]
            elif u < 0.1 and isinstance(r[k], (int, float)):
                r[k] = str(r[k])
    batch = pp.transform(pd.DataFrame(records), schema).to_numpy(float)
    alone = np.vstack([pp.transform(pd.DataFrame([r]), schema).to_numpy(float) for r in records])
    np.testing.assert_array_equal(alone, batch)


def test_transform_of_a_partial_record_with_unknown_values(out):
    schema = json.loads((out / "schema/feature_schema.json").read_text())
    row = pp.transform(
        pd.DataFrame([{"customer_gender": "Alien", "customer_education": "PhD", "customer_age": "41"}]),
        schema,
    )
    assert row.shape == (1, len(schema["features"]))
    r = row.iloc[0]
    assert r["customer_gender_female"] == 0 and r["customer_gender_male"] == 0  # unknown -> all-zero dummies
    assert r["customer_education"] == -1  # unknown ordinal
    assert r["police_report_available"] == -1  # missing column -> missing -> "na" -> not an ordinal value
    assert r["customer_age"] == 41
    assert np.isnan(r["vehicle_claim"])  # numeric.missing: none
    assert r["collision_type_na"] == 1  # missing categorical -> "na"


def test_fit_uses_the_training_split_only():
    config = reference_config()
    train = pd.DataFrame(
        {"fraud": [0, 1, 0, 1], "policy_state": ["CA", "WA", "CA", "WA"], "x": [1.0, None, 3.0, 5.0]}
    )
    config["features"] = {"missing": {"categorical": "na", "numeric": "mean"}, "one_hot": ["policy_state"]}
    config["data"]["drop"] = []
    schema = pp.fit(train, config)
    assert schema["numeric"]["x"]["fill"] == 3.0
    rows = pp.transform(pd.DataFrame({"policy_state": ["NV"], "x": [None]}), schema)
    assert rows.to_dict("records") == [{"x": 3.0, "policy_state_ca": 0, "policy_state_wa": 0}]


# ---------------------------------------------------------------------------------------------- bad data


def claims_frame() -> pd.DataFrame:
    return pd.read_csv(AWS_DATA / "claims.csv", keep_default_na=False, dtype=str)


def run_bad(tmp_path: Path, *, claims=None, customers=None, config=None, code: str) -> pp.StepError:
    """Run preprocess on modified inputs; it must raise `code` and leave no output folder."""
    paths = {}
    for name, frame in (("claims", claims), ("customers", customers)):
        if isinstance(frame, pd.DataFrame):
            paths[name] = tmp_path / f"bad_{name}.csv"
            frame.to_csv(paths[name], index=False)
        elif isinstance(frame, str):
            paths[name] = tmp_path / f"bad_{name}.csv"
            paths[name].write_text(frame)
    inputs = aws_inputs(tmp_path / "input", paths.get("claims"), paths.get("customers"))
    cfg = write_config(tmp_path / "config.json", config or reference_config())
    with pytest.raises(pp.StepError) as info:
        pp.main(["--config", str(cfg), "--input-dir", str(inputs), "--output-dir", str(tmp_path / "out")])
    assert info.value.ff_code == code, info.value.render()
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left
    return info.value


def test_missing_column_names_the_closest(tmp_path):
    config = reference_config()
    config["features"]["one_hot"][-1] = "customer_gendr"
    err = run_bad(tmp_path, config=config, code="FF601")
    assert "customer_gendr" in err.message and err.hint == "did you mean 'customer_gender'?"


def test_missing_join_key_names_the_file(tmp_path):
    customers = pd.read_csv(AWS_DATA / "customers.csv").rename(columns={"policy_id": "policyid"})
    err = run_bad(tmp_path, customers=customers, code="FF601")
    assert err.file.endswith("customers.csv") and err.line == 1 and "policy_id" in err.message
    assert err.hint == "did you mean 'policyid'?"


def test_empty_file(tmp_path):
    err = run_bad(tmp_path, claims="", code="FF602")
    assert err.file.endswith("claims.csv")


def test_header_only_file(tmp_path):
    err = run_bad(tmp_path, claims=",".join(claims_frame().columns) + "\n", code="FF602")
    assert "no rows" in err.message


def test_malformed_csv_gives_the_line(tmp_path):
    lines = (AWS_DATA / "claims.csv").read_text().splitlines()
    lines[6] += ",extra,fields"
    err = run_bad(tmp_path, claims="\n".join(lines) + "\n", code="FF603")
    assert err.line == 7


def test_label_not_binary_gives_file_and_line(tmp_path):
    claims = claims_frame()
    claims.loc[9, "fraud"] = "2"
    err = run_bad(tmp_path, claims=claims, code="FF670")
    assert err.file.endswith("claims.csv") and err.line == 11 and "'fraud'" in err.message


def test_missing_label_gives_file_and_line(tmp_path):
    claims = claims_frame()
    claims.loc[[20, 30], "fraud"] = ""
    err = run_bad(tmp_path, claims=claims, code="FF604")
    assert err.line == 22 and "2 row(s)" in err.message


def test_split_with_one_class(tmp_path):
    claims = claims_frame()
    claims["fraud"] = "0"
    claims.loc[3, "fraud"] = "1"
    config = reference_config()
    config["split"]["stratify"] = False
    err = run_bad(tmp_path, claims=claims, config=config, code="FF605")
    assert "only label 0" in err.message


def test_stratified_split_with_too_few_positives(tmp_path):
    claims = claims_frame()
    claims["fraud"] = "0"
    claims.loc[3, "fraud"] = "1"
    run_bad(tmp_path, claims=claims, code="FF605")


def test_duplicate_join_keys_would_multiply_rows(tmp_path):
    customers = pd.read_csv(AWS_DATA / "customers.csv")
    customers.loc[99, "policy_id"] = 5
    err = run_bad(tmp_path, customers=customers, code="FF606")
    assert "policy_id=5" in err.message and "multiply" in err.message and err.line == 101


def test_undeclared_text_column(tmp_path):
    config = reference_config()
    config["features"]["one_hot"].remove("policy_state")
    err = run_bad(tmp_path, config=config, code="FF607")
    assert "policy_state" in err.message and "features.one_hot" in err.hint


def test_script_prints_a_located_error_without_traceback(tmp_path):
    claims = claims_frame()
    claims.loc[9, "fraud"] = "yes"
    bad = tmp_path / "claims.csv"
    claims.to_csv(bad, index=False)
    inputs = aws_inputs(tmp_path / "input", claims=bad)
    cfg = write_config(tmp_path / "config.json", reference_config())
    proc = subprocess.run(
        [sys.executable, str(STEP_CODE / "preprocess.py"), "--config", str(cfg), "--input-dir", str(inputs),
         "--output-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(
        "error[FF670]: ../shared/data/aws-synthetic-claims/claims.csv:11: label 'fraud'"
    )
    assert not (tmp_path / "out").exists()


def test_runner_layout_source_as_a_link_to_the_declared_file(tmp_path):
    """fraudflow run links input-dir/<name> to the declared file itself: errors name the declared path."""
    claims = claims_frame()
    claims.loc[4, "fraud"] = "x"
    bad = tmp_path / "claims.csv"
    claims.to_csv(bad, index=False)
    inputs = tmp_path / "input"
    inputs.mkdir()
    (inputs / "claims").symlink_to(bad)
    (inputs / "customers").symlink_to(AWS_DATA / "customers.csv")
    config = reference_config()
    config["data"]["sources"]["claims"] = "data/claims.csv"
    with pytest.raises(pp.StepError) as info:
        pp.run(config, inputs, tmp_path / "out")
    assert (info.value.file, info.value.line) == ("data/claims.csv", 6)


def test_source_folder_of_several_csvs_locates_errors_per_file(tmp_path):
    claims = claims_frame()
    claims.loc[3000 + 7, "fraud"] = "3"
    folder = tmp_path / "input" / "claims"
    folder.mkdir(parents=True)
    claims.iloc[:3000].to_csv(folder / "part-0.csv", index=False)
    claims.iloc[3000:].to_csv(folder / "part-1.csv", index=False)
    inputs = aws_inputs(tmp_path / "input", claims=None)
    (inputs / "claims" / "claims.csv").unlink()  # aws_inputs linked the full file beside the parts
    with pytest.raises(pp.StepError) as info:
        pp.run(reference_config(), inputs, tmp_path / "out")
    assert info.value.file.endswith("part-1.csv") and info.value.line == 9
    claims.loc[3000 + 7, "fraud"] = "0"
    claims.iloc[3000:].to_csv(folder / "part-1.csv", index=False)
    report = pp.run(reference_config(), inputs, tmp_path / "out")
    assert report["sources"]["claims"]["rows"] == 5000 and len(report["sources"]["claims"]["files"]) == 2
