"""Issue 12, the fast half: the label mapping (data.positive/negative), the Parquet schema reader validate and
preprocess share, the contract's rules one by one, validate's new checks and Clarify's encoded label values."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudflow.stepcode import kit
from tests._steps_util import load_step
from tests.conftest import run_cli

pp = load_step("preprocess")
stepkit = kit()


def _frame(labels: list, extra: dict | None = None) -> pd.DataFrame:
    df = pd.DataFrame({"y": labels, **(extra or {})})
    df["__ff_file"], df["__ff_line"] = 0, np.arange(2, len(df) + 2)
    return df


# ---------------------------------------------------------------------------------------------- labels

ENCODINGS = st.sampled_from(
    [
        ({1: "yes", 0: "no"}, ["yes"], None),
        ({1: "Yes", 0: "No"}, ["Yes"], None),
        ({1: True, 0: False}, [True], None),
        ({1: "true", 0: "false"}, [True], None),  # pandas reads true/false as booleans
        ({1: 2, 0: 1}, [2], None),  # 1 is the NEGATIVE class here: the right way round is data.positive's
        ({1: "fraud", 0: "legit"}, ["fraud"], ["legit"]),
        ({1: 1.0, 0: 0.0}, [1], None),
        ({1: "F", 0: "L"}, ["F"], ["L"]),
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    bits=st.lists(st.integers(0, 1), min_size=2, max_size=40).filter(lambda b: 0 < sum(b) < len(b)),
    enc=ENCODINGS,
)
def test_any_binary_encoding_maps_to_the_original_0_1(tmp_path_factory, bits: list[int], enc: tuple) -> None:
    """Written to CSV and read back as preprocess reads it, any spelling of a binary label with data.positive
    gives back exactly the 0/1 it encodes, and the report names the original values."""
    mapping, positive, negative = enc
    path = tmp_path_factory.mktemp("label") / "claims.csv"
    pd.DataFrame({"y": [mapping[b] for b in bits]}).to_csv(path, index=False)
    df, shown = pp.read_source(path.parent, "claims.csv", str(path))
    classes = pp._map_label(df, "y", shown, positive, negative)
    assert df["y"].tolist() == bits
    assert [stepkit.value_key(v).lower() for v in classes["positive"]] == [
        stepkit.value_key(mapping[1]).lower()
    ]


def test_a_third_label_value_is_located_at_its_first_row() -> None:
    df = _frame([0, 1, 0, 0, 2, 1, 2])
    with pytest.raises(Exception) as info:
        pp._map_label(df, "y", ["c.csv"], [1], None)
    assert info.value.ff_code == "FF670" and info.value.line == 6 and "found 2" in info.value.message


def test_a_value_in_neither_list_is_refused() -> None:
    df = _frame(["fraud", "legit", "unknown", "fraud"])
    with pytest.raises(Exception) as info:
        pp._map_label(df, "y", ["c.csv"], ["fraud"], ["legit"])
    assert info.value.ff_code == "FF670" and info.value.line == 4 and "'unknown'" in info.value.message


def test_positive_matching_neither_of_two_values_names_the_fix() -> None:
    with pytest.raises(Exception) as info:
        pp._map_label(_frame(["no", "yes", "no"]), "y", ["c.csv"], [1], None)
    assert info.value.ff_code == "FF670" and "positive: ['yes']" in info.value.hint


@pytest.mark.parametrize(
    ("values", "positive", "negative", "encoded", "unknown"),
    [
        (["yes"], ["yes"], None, [1], []),
        (["no"], ["yes"], None, [0], []),  # AWS's tutorial convention (label_values_or_threshold=[0])
        ([True], [True], None, [1], []),
        (["1"], [1], None, [1], []),
        (["maybe"], ["yes"], ["no"], [], ["maybe"]),
    ],
)
def test_bias_label_values_are_encoded_as_clarify_reads_them(
    values, positive, negative, encoded, unknown
) -> None:
    assert stepkit.encode_label_values(values, positive, negative) == (encoded, unknown)


# ---------------------------------------------------------------------------------------------- sources

NAMES = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(NAMES, min_size=1, max_size=40, unique=True), nested=st.booleans(), index=st.booleans())
def test_the_stdlib_parquet_schema_reader_agrees_with_pandas(tmp_path_factory, names, nested, index) -> None:
    """stepkit.parquet_columns (validate's and preprocess's header check, no pyarrow) names the columns
    pandas.read_parquet gives, nested columns and stored indexes included."""
    path = tmp_path_factory.mktemp("pq") / "t.parquet"
    df = pd.DataFrame({n: [1, 2] for n in names})
    if nested:
        df[names[0]] = [{"a": 1, "b": [1, 2]}, {"a": 2, "b": []}]
    if index:
        df.index = pd.Index([7, 9], name="the_index")
    df.to_parquet(path)
    read = pd.read_parquet(path)
    expected = list(read.columns) + [n for n in read.index.names if n is not None]
    assert sorted(stepkit.parquet_columns(path)) == sorted(expected)


def test_a_parquet_file_with_many_columns_and_a_long_footer(tmp_path: Path) -> None:
    path = tmp_path / "wide.parquet"
    table = pa.table({f"c{i}": [i] for i in range(3000)})
    pq.write_table(table, path)
    assert stepkit.parquet_columns(path) == [f"c{i}" for i in range(3000)]


@pytest.mark.parametrize(
    "content", [b"", b"a,b\n1,2\n", b"PAR1" + b"\0" * 40, b"x" * 100 + b"\xff\xff\xff\x7fPAR1"]
)
def test_a_file_that_is_not_parquet_is_a_value_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.parquet"
    path.write_bytes(content)
    with pytest.raises(ValueError):
        stepkit.parquet_columns(path)


def test_gzip_csv_header_is_read_by_content_whatever_the_name(tmp_path: Path) -> None:
    path = tmp_path / "claims"  # the local runner links sources under their bare names
    path.write_bytes(gzip.compress(b"a,b,a\n1,2,3\n"))
    assert stepkit.read_header(path) == (["a", "b", "a"], 1)
    assert stepkit.file_format(path) == "csv" and stepkit.is_gzip(path)
    with pytest.raises(Exception) as info:
        pp.read_source(tmp_path, "claims", "claims.csv.gz")
    assert info.value.ff_code == "FF609"  # the repeated column, found in the gzip header


@pytest.mark.parametrize(
    "content",
    [gzip.compress(b"a,b\n1,2\n3,4\n")[:-10], b"\x1f\x8b" + b"x" * 30, gzip.compress(bytes(range(256)) * 4)],
)
def test_a_broken_gzip_source_is_a_located_malformed_csv(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "c.csv.gz").write_bytes(content)
    with pytest.raises(Exception) as info:
        pp.read_source(tmp_path, "c.csv.gz", "c.csv.gz")
    assert info.value.ff_code == "FF603" and info.value.file == "c.csv.gz"


def test_a_csv_declared_parquet_is_refused_with_its_code(tmp_path: Path) -> None:
    (tmp_path / "claims.parquet").write_text("a,b\n1,2\n")
    with pytest.raises(Exception) as info:
        pp.read_source(tmp_path, "claims.parquet", "claims.parquet")
    assert info.value.ff_code == "FF671"


# ---------------------------------------------------------------------------------------------- the contract

contract = stepkit.sibling("contract")


def _where(column: str, row: int) -> dict:
    return {"file": "d.csv", "line": row + 2}


BASE = pd.DataFrame(
    {
        "y": [0, 1, 0, 0, 0, 0, 0, 0, 0, 1],
        "id": list(range(10)),
        "kind": ["a", "b"] * 5,
        "amount": [1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
        "note": [None] * 10,
    }
)
CLEAN = {
    "rows": {"min": 5, "max": 20},
    "positive_share": {"min": 0.1, "max": 0.3},
    "columns": {
        "id": {"type": "integer", "unique": True, "max_null_share": 0},
        "kind": {"type": "string", "categories": ["a", "b"]},
        "amount": {"type": "number", "min": 0, "max": 10},
    },
}


def test_clean_data_has_no_violation() -> None:
    assert contract.check(BASE, CLEAN, "y", _where) == []


@pytest.mark.parametrize(
    ("edit", "rule", "code", "line", "value"),
    [
        (
            lambda d: d.assign(kind=["a", "b", "c"] + ["a"] * 7),
            {"kind": {"categories": ["a", "b"]}},
            "FF673",
            4,
            "c",
        ),
        (
            lambda d: d.assign(amount=d["amount"].where(d.index != 6, 99.0)),
            {"amount": {"max": 10}},
            "FF674",
            8,
            99.0,
        ),
        (lambda d: d, {"note": {"max_null_share": 0.5}}, "FF675", 2, None),
        (lambda d: d.assign(id=[0, 1, 2, 3, 4, 5, 6, 3, 8, 9]), {"id": {"unique": True}}, "FF676", 9, 3),
        (lambda d: d.assign(amount=["1", "x"] * 5), {"amount": {"type": "number"}}, "FF672", 3, "x"),
        (lambda d: d, {"amount": {"type": "integer"}}, "FF672", 2, 1.5),
        (lambda d: d, {"gone": {}}, "FF679", 1, None),
    ],
)
def test_each_rule_has_its_code_and_first_offending_row(edit, rule, code, line, value) -> None:
    found = contract.check(edit(BASE.copy()), {"columns": rule}, "y", _where)
    assert [(v.code, v.line, v.as_dict()["value"]) for v in found] == [(code, line, value)]


def test_table_rules_and_levels() -> None:
    found = contract.check(
        BASE, {"rows": {"min": 100}, "positive_share": {"max": 0.05, "level": "warn"}}, "y", _where
    )
    assert [(v.code, v.level) for v in found] == [("FF677", "fail"), ("FF678", "warn")]
    # warn: reported, not raised
    summary = contract.enforce(BASE, {"positive_share": {"max": 0.05, "level": "warn"}}, "y", _where)
    assert [v["code"] for v in summary["violations"]] == ["FF678"]
    # a per-rule level
    spec = {"columns": {"kind": {"categories": ["a"], "unique": True, "level": {"categories": "warn"}}}}
    with pytest.raises(Exception) as info:
        contract.enforce(BASE, spec, "y", _where)
    assert info.value.ff_code == "FF676"  # the fail, though categories (a warn) broke first


# ---------------------------------------------------------------------------------------------- validate

YAML = """\
version: 1
pipelines:
  p:
    data:
      sources: {{t: t.{ext}}}
      label: y
{data}
    features: {{missing: {{categorical: na, numeric: none}}}}
    split: {{train: 0.6, validation: 0.2, test: 0.2, seed: 1}}
    train: {{hyperparameters: {{objective: "binary:logistic", num_round: 5}}}}
    gate: {{metric: roc_auc, threshold: 0.5}}
    register: {{model_package_group: p}}
{bias}"""


def _validate(tmp_path: Path, data: str = "", bias: str = "", ext: str = "csv", labels=("no", "yes")) -> str:
    frame = pd.DataFrame({"y": [labels[i % 2] for i in range(20)], "x": range(20), "k": ["a", "b"] * 10})
    if ext == "parquet":
        frame.to_parquet(tmp_path / "t.parquet")
    else:
        frame.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "pipelines.yaml").write_text(YAML.format(ext=ext, data=data, bias=bias))
    proc = run_cli("validate", cwd=tmp_path)
    return f"rc={proc.returncode}\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize(
    ("data", "bias", "code"),
    [
        ("      positive: [yes]\n      negative: [yes, no]", "", "FF540"),
        ("", "", "FF541"),  # yes/no with the default positive [1]
        ("      positive: [yes]\n      negative: [nope]", "", "FF541"),
        ("      positive: [yes]\n      format: {other: csv}", "", "FF546"),
        ("      positive: [yes]\n      expect: {columns: {z: {}}}", "", "FF544"),
        ("      positive: [yes]\n      expect: {rows: {min: 10, max: 5}}", "", "FF545"),
        ("      positive: [yes]", "    bias: {facet: x, facet_values: [1], label_values: [maybe]}", "FF543"),
    ],
)
def test_validate_checks_labels_formats_and_the_contract(
    tmp_path: Path, data: str, bias: str, code: str
) -> None:
    out = _validate(tmp_path, data, bias)
    assert out.startswith("rc=1") and code in out, out


def test_validate_reads_a_parquet_schema_and_its_label(tmp_path: Path) -> None:
    assert _validate(tmp_path, "      positive: [yes]", ext="parquet").startswith("rc=0")
    assert "FF541" not in _validate(tmp_path, "", ext="parquet")  # values are not read: the run checks them
    assert "FF502" in _validate(tmp_path, "      positive: [yes]\n      drop: [nope]", ext="parquet")


def test_validate_refuses_a_csv_named_parquet(tmp_path: Path) -> None:
    (tmp_path / "t.parquet").write_text("y,x\n1,2\n")
    (tmp_path / "pipelines.yaml").write_text(YAML.format(ext="parquet", data="", bias=""))
    proc = run_cli("validate", cwd=tmp_path)
    assert proc.returncode == 1 and "FF542" in proc.stdout + proc.stderr


def test_validate_reads_parquet_without_pandas_or_pyarrow(tmp_path: Path) -> None:
    _validate(tmp_path, "      positive: [yes]", ext="parquet")
    code = (
        "import sys; from fraudflow.cli import main; rc = main(['validate', 'pipelines.yaml']);"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'numpy') if m in sys.modules))"
    )
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"  # the schema from the footer, by the standard library


# ---------------------------------------------------------------------------------------------- Clarify


def test_clarify_reads_the_encoded_label_values() -> None:
    from fraudflow.sagemaker.clarify import bias_job_config, encoded

    bias = {"label_values": ["no"], "facet": "f", "facet_values": [1], "post_training_metrics": ["DPPL"]}
    bias["probability_threshold"] = 0.5
    config = bias_job_config("y", encoded(bias, {"positive": ["yes"]}), {})
    assert config["label_values_or_threshold"] == [0]
    config = bias_job_config("y", encoded({**bias, "label_values": ["yes"]}, {"positive": ["yes"]}), {})
    assert config["label_values_or_threshold"] == [1]


def test_render_refuses_label_values_of_no_class() -> None:
    from fraudflow.errors import UserError
    from fraudflow.sagemaker.clarify import encoded

    with pytest.raises(UserError) as info:
        encoded({"label_values": ["maybe"]}, {"positive": ["yes"], "negative": ["no"]})
    assert info.value.diagnostics[0].code == "FF790"


# ---------------------------------------------------------------------------------------------- contract infer


def test_contract_infer_refuses_remote_and_missing_data(tmp_path: Path) -> None:
    _validate(tmp_path, "      positive: [yes]")
    proc = run_cli("contract", "infer", "--set", "data.sources.t=s3://b/t.csv", cwd=tmp_path)
    assert proc.returncode == 1 and "FF940" in proc.stderr
    (tmp_path / "t.csv").unlink()
    proc = run_cli("contract", "infer", cwd=tmp_path)
    assert proc.returncode == 1 and "FF941" in proc.stderr


def test_contract_infer_prints_a_contract_the_data_passes(tmp_path: Path) -> None:
    _validate(tmp_path, "      positive: [yes]")
    proc = run_cli("contract", "infer", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    import yaml

    expect = yaml.safe_load(proc.stdout)["expect"]
    assert expect["columns"]["k"] == {"type": "string", "categories": ["a", "b"], "max_null_share": 0.0}
    assert expect["columns"]["x"]["unique"] is True and expect["positive_share"] == {"min": 0.25, "max": 1.0}
    df, _ = pp.load_joined({"data": {"sources": {"t": "t.csv"}, "label": "y", "positive": ["yes"]}}, tmp_path)
    assert contract.check(df, expect, "y", _where) == []
    json.dumps(expect)  # plain values only
