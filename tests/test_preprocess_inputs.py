"""What preprocess (and validate's header check) accept as input: missing join keys never match, a repeated
header column is refused where it is, and only regular files are read, with a bounded header.

Small synthetic CSVs, so these run without the AWS data."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fraudflow.spec import semantic
from tests._steps_util import STEP_CODE, load_step
from tests.conftest import ROOT, run_cli

pp = load_step("preprocess")

CONFIG = {
    "data": {
        "sources": {"claims": "claims.csv", "customers": "customers.csv"},
        "join": {"on": "policy_id", "how": "left"},
        "label": "fraud",
        "drop": ["policy_id"],
    },
    "features": {"missing": {"categorical": "na", "numeric": "none"}, "one_hot": ["gender"]},
    "split": {"train": 0.6, "validation": 0.2, "test": 0.2, "seed": 0, "stratify": False},
}
HOLD = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _config(how: str = "left") -> dict:
    config = json.loads(json.dumps(CONFIG))
    config["data"]["join"]["how"] = how
    return config


def _inputs(root: Path, claims: str, customers: str) -> Path:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / "claims.csv").write_text(claims)
    (root / "customers.csv").write_text(customers)
    return root


# ----------------------------------------------------------------------------------- missing join keys

CLAIMS = "policy_id,amount,fraud\n1,10,0\n,20,1\n2,30,0\nNone,40,0\n3,50,1\n"
CUSTOMERS = "policy_id,gender\n1,Male\n,Female\n2,Female\n"


def test_a_missing_key_never_matches_a_missing_key(tmp_path: Path) -> None:
    joined, report = pp.load_joined(_config("left"), _inputs(tmp_path / "in", CLAIMS, CUSTOMERS))
    assert joined["amount"].tolist() == [10, 20, 30, 40, 50]
    # pandas alone gives the rows with amount 20 and 40 the gender of the customer whose key is missing
    assert joined["gender"].isna().tolist() == [False, True, False, True, True]
    assert joined["gender"].dropna().tolist() == ["Male", "Female"]
    assert report["sources"]["claims"]["rows_with_missing_key"] == 2
    assert report["sources"]["customers"]["rows_with_missing_key"] == 1

    inner, report = pp.load_joined(_config("inner"), _inputs(tmp_path / "in", CLAIMS, CUSTOMERS))
    assert inner["amount"].tolist() == [10, 30]
    assert report["sources"]["claims"]["rows_with_missing_key"] == 2


def test_several_customers_with_a_missing_key_are_not_duplicate_keys(tmp_path: Path) -> None:
    customers = CUSTOMERS + ",Male\nNaN,Female\n"
    joined, report = pp.load_joined(_config(), _inputs(tmp_path / "in", CLAIMS, customers))
    assert len(joined) == 5 and report["sources"]["customers"]["rows_with_missing_key"] == 3


KEYS = st.one_of(st.none(), st.integers(1, 6))


@HOLD
@given(
    base=st.lists(KEYS, min_size=1, max_size=12),
    other=st.lists(KEYS, min_size=1, max_size=8),
    how=st.sampled_from(["left", "inner"]),
)
def test_the_join_matches_a_reference_join_where_missing_never_matches(
    tmp_path_factory: pytest.TempPathFactory, base: list, other: list, how: str
) -> None:
    """A join computed by hand: a base row matches the joined row with the same non-missing key."""
    other = [k for i, k in enumerate(other) if k is None or k not in other[:i]]  # unique non-missing keys
    claims = "policy_id,amount,fraud\n" + "".join(
        f"{'' if k is None else k},{i},{i % 2}\n" for i, k in enumerate(base)
    )
    customers = "policy_id,gender\n" + "".join(
        f"{'' if k is None else k},g{i}\n" for i, k in enumerate(other)
    )
    expected = []
    for i, k in enumerate(base):
        match = [f"g{j}" for j, o in enumerate(other) if k is not None and o == k]
        if match or how == "left":
            expected.append((i, match[0] if match else None))
    root = tmp_path_factory.mktemp("join")
    inputs = _inputs(root / "in", claims, customers)
    if not expected:
        with pytest.raises(pp.StepError) as info:
            pp.load_joined(_config(how), inputs)
        assert info.value.ff_code == "FF602"
        return
    joined, report = pp.load_joined(_config(how), inputs)
    got = [(int(a), None if (isinstance(g, float) and math.isnan(g)) or g is None else g)
           for a, g in zip(joined["amount"], joined["gender"], strict=True)]  # fmt: skip
    assert got == expected
    assert report["sources"]["claims"]["rows_with_missing_key"] == sum(k is None for k in base)
    assert report["sources"]["customers"]["rows_with_missing_key"] == sum(k is None for k in other)


# --------------------------------------------------------------------------------------- CSV headers

NAME = st.one_of(
    st.sampled_from(
        ["num_injuries", "num_injuries.1", " a", "a", "a ", '"a"', "a,b", "a\nb", "", "Unnamed: 0"]
    ),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=0,
        max_size=6,
    ),
)


def _header_file(root: Path, names: list[str], blank_lines: int = 0) -> Path:
    buf = io.StringIO()
    buf.write("\n" * blank_lines)
    # csv quotes a field holding the line terminator ("\n") but not a bare "\r", which every CSV reader takes
    # for a line break: such a header is then written quoted, as a tool writing a valid CSV would.
    quoting = csv.QUOTE_ALL if any("\r" in n for n in names) else csv.QUOTE_MINIMAL
    writer = csv.writer(buf, lineterminator="\n", quoting=quoting)
    writer.writerow(names)
    writer.writerow(["1"] * len(names))
    path = root / "data.csv"
    path.write_text(buf.getvalue(), encoding="utf-8", newline="")
    return path


@HOLD
@given(names=st.lists(NAME, min_size=1, max_size=8), blank_lines=st.integers(0, 2))
def test_header_fuzz_duplicates_are_refused_at_the_second_and_the_rest_read_as_pandas_does(
    tmp_path_factory: pytest.TempPathFactory, names: list[str], blank_lines: int
) -> None:
    assume(any(n.strip() for n in names) and not (len(names) == 1 and names[0] == ""))
    path = _header_file(tmp_path_factory.mktemp("hdr"), names, blank_lines)
    row, line = pp.read_header(path)
    assert (row, line) == semantic.read_header(path)  # validate reads the header as preprocess does
    assert line == blank_lines + 1
    dup = pp.duplicate_column(row)
    assert dup == semantic.duplicate_column(row)
    try:
        pandas_columns = list(pd.read_csv(path, dtype=str, keep_default_na=False).columns)
    except pd.errors.ParserError:
        return
    if dup is None:
        unnamed = [i for i, n in enumerate(row) if n == ""]
        assert [c for i, c in enumerate(pandas_columns) if i not in unnamed] == [
            n for i, n in enumerate(row) if i not in unnamed
        ]
        return
    first, second = dup
    assert row[first] == row[second] != "" and row[second] not in row[:first]
    assert pandas_columns[second] != row[second]  # what pandas would do: rename it silently
    with pytest.raises(pp.StepError) as info:
        pp._read_csv(path, "claims.csv")
    assert (info.value.ff_code, info.value.file, info.value.line, info.value.column) == (
        "FF609",
        "claims.csv",
        line,
        second + 1,
    )


@pytest.mark.parametrize("quoted", [False, True])
def test_a_wide_header_read_in_several_chunks_is_read_whole(tmp_path: Path, quoted: bool) -> None:
    names = [f"column_{i:06d}" for i in range(20_000)]  # ~280 KB: several reads
    if quoted:
        names[10_000] = "a name\nover two lines"
    names[-1] = names[-3]
    path = _header_file(tmp_path, names)
    row, line = pp.read_header(path)
    assert (row, line) == semantic.read_header(path) and line == 1
    assert row == names and pp.duplicate_column(row) == (len(names) - 3, len(names) - 1)


def test_a_duplicate_header_is_refused_by_preprocess_and_by_validate(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pipelines.yaml", tmp_path / "pipelines.yaml")
    assert run_cli("sample-data", "data", "--rows", "200", cwd=tmp_path).returncode == 0
    claims = tmp_path / "data" / "claims.csv"
    header, rest = claims.read_text().split("\n", 1)
    columns = header.split(",")
    second = columns.index("num_witnesses")
    columns[second] = "num_injuries"
    claims.write_text(",".join(columns) + "\n" + rest)

    proc = run_cli("validate", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{claims}:1:{second + 1}: FF513 column 'num_injuries' appears twice" in proc.stdout + proc.stderr

    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "claims").symlink_to(claims)
    (inputs / "customers").symlink_to(tmp_path / "data" / "customers.csv")
    config = _config()
    config["data"]["sources"] = {"claims": "data/claims.csv", "customers": "data/customers.csv"}
    with pytest.raises(pp.StepError) as info:
        pp.load_joined(config, inputs)
    assert (info.value.ff_code, info.value.file, info.value.line, info.value.column) == (
        "FF609",
        "data/claims.csv",
        1,
        second + 1,
    )


# ------------------------------------------------------------------------------------ special files


def _run_script(inputs: Path, out: Path, config: dict) -> subprocess.CompletedProcess:
    cfg = out.parent / "config.json"
    cfg.write_text(json.dumps(config))
    return subprocess.run(
        [sys.executable, str(STEP_CODE / "preprocess.py"), "--config", str(cfg), "--input-dir", str(inputs),
         "--output-dir", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "fifo_in_folder", "long_header"])
def test_preprocess_reads_only_regular_files_and_bounds_the_header(tmp_path: Path, kind: str) -> None:
    inputs = _inputs(tmp_path / "in", CLAIMS, CUSTOMERS)
    (inputs / "claims.csv").unlink()
    if kind == "fifo":
        os.mkfifo(inputs / "claims")
    elif kind == "dev_zero":
        (inputs / "claims").symlink_to("/dev/zero")
    elif kind == "fifo_in_folder":
        (inputs / "claims").mkdir()
        (inputs / "claims" / "part-1.csv").write_text(CLAIMS)
        os.mkfifo(inputs / "claims" / "part-2.csv")
    else:
        (inputs / "claims.csv").write_text("a" * (3 << 20))  # 3 MiB, no line end
    proc = _run_script(inputs, tmp_path / "out", _config())
    code = "FF611" if kind == "long_header" else "FF610"
    assert proc.returncode == 2 and proc.stderr.startswith(f"error[{code}]"), proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_validate_refuses_a_header_that_does_not_end(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pipelines.yaml", tmp_path / "pipelines.yaml")
    assert run_cli("sample-data", "data", "--rows", "50", cwd=tmp_path).returncode == 0
    (tmp_path / "data" / "claims.csv").write_text("a," * (2 << 20))
    proc = run_cli("validate", cwd=tmp_path, timeout=120)
    assert proc.returncode == 1 and "FF512" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------- the container's pandas

JOIN_SCRIPT = """
import importlib.util, json, os, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))  # its sibling stepkit.py, as in the container's code folder
spec = importlib.util.spec_from_file_location("pp", sys.argv[1])
pp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pp)
out = {}
for how in ("left", "inner"):
    config = json.loads(sys.argv[3])
    config["data"]["join"]["how"] = how
    joined, report = pp.load_joined(config, sys.argv[2])
    out[how] = {"amount": joined["amount"].tolist(), "missing_gender": joined["gender"].isna().tolist(),
                "report": report["sources"]}
try:
    pp.read_source(pp.Path(sys.argv[4]), "dup", "dup.csv")
except pp.StepError as exc:
    out["dup"] = [exc.ff_code, exc.line, exc.column]
import pandas
out["pandas"] = pandas.__version__
print(json.dumps(out))
"""


@pytest.mark.slow
def test_missing_keys_and_duplicate_headers_on_the_containers_pandas_1_5(tmp_path: Path) -> None:
    from tests.test_step_code_container_versions import SKLEARN_IMAGE, container_python

    python = container_python(SKLEARN_IMAGE)
    inputs = _inputs(tmp_path / "in", CLAIMS, CUSTOMERS)
    other = tmp_path / "other"
    other.mkdir()
    (other / "dup.csv").write_text("a,b,a\n1,2,3\n")
    proc = subprocess.run(
        [str(python), "-c", JOIN_SCRIPT, str(STEP_CODE / "preprocess.py"), str(inputs), json.dumps(CONFIG),
         str(other)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["pandas"] == "1.5.0"
    assert got["left"]["amount"] == [10, 20, 30, 40, 50]
    assert got["left"]["missing_gender"] == [False, True, False, True, True]
    assert got["inner"]["amount"] == [10, 30]
    assert got["left"]["report"]["claims"]["rows_with_missing_key"] == 2
    assert got["left"]["report"]["customers"]["rows_with_missing_key"] == 1
    assert got["dup"] == ["FF609", 1, 3]
