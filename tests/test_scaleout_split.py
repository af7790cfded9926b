"""split.train_files: preprocess writes the train split as that many part files (SageMaker's ShardedByS3Key hands
them out whole), and everything that reads the split reads the same rows: the local backend trains the same model
from the parts as from the one file, the baselines are byte-equal, bias reads every part."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests._steps_util import (
    STEP_CODE,
    aws_inputs,
    hyperparameter_args,
    load_step,
    reference_config,
    write_config,
)

pp = load_step("preprocess")


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 300), files=st.integers(1, 40), data=st.data())
def test_the_parts_are_the_split_in_name_order_and_near_equal(
    tmp_path_factory: pytest.TempPathFactory, rows: int, files: int, data: st.DataObject
) -> None:
    files = min(files, rows)
    values = data.draw(st.lists(st.integers(-1000, 1000), min_size=rows, max_size=rows))
    frame = pd.DataFrame({"label": [v % 2 for v in values], "x": [v / 7 for v in values]})
    out = tmp_path_factory.mktemp("parts")
    written = pp.write_split(out, "train", frame, files)
    one = pp.write_split(out / "one", "train", frame, 1)
    assert [p.name for p in written] == (
        ["train.csv"] if files == 1 else [f"part-{k:05d}.csv" for k in range(files)]
    )
    assert sorted(written) == written  # name order is row order
    assert b"".join(p.read_bytes() for p in written) == one[0].read_bytes()
    sizes = [len(p.read_bytes().splitlines()) for p in written]
    assert sum(sizes) == rows and max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory, aws_data: Path) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("splits")
    inputs = aws_inputs(root / "in")
    out = {}
    for files in (1, 3):
        config = reference_config()
        config["split"]["train_files"] = files
        write_config(root / f"config-{files}.json", config)
        out[files] = root / f"out-{files}"
        args = ["--config", str(root / f"config-{files}.json"), "--input-dir", str(inputs)]
        assert pp.main([*args, "--output-dir", str(out[files])]) == 0
    return out


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_preprocess_output_differs_only_in_the_train_files(splits: dict[int, Path]) -> None:
    one, three = tree(splits[1]), tree(splits[3])
    parts = [f"train/part-0000{k}.csv" for k in range(3)]
    assert sorted(k for k in three if k.startswith("train/")) == parts
    assert b"".join(three[p] for p in parts) == one["train/train.csv"]
    report_one, report_three = (
        pd.read_json(splits[n] / "report/preprocess.json", typ="series") for n in (1, 3)
    )
    assert report_three["splits"]["train"].pop("files") == 3 and "files" not in report_one["splits"]["train"]
    assert report_one.to_dict() == report_three.to_dict()
    rest = {k for k in one if not k.startswith("train/") and k != "report/preprocess.json"}
    assert rest == {k for k in three if not k.startswith("train/") and k != "report/preprocess.json"}
    assert all(
        one[k] == three[k] for k in rest
    )  # baselines (train_with_header.csv too), schema, other splits


def test_one_host_trains_the_same_model_from_the_parts(splits: dict[int, Path], tmp_path: Path) -> None:
    train = load_step("train")
    models = []
    for files, split in splits.items():
        out = tmp_path / str(files)
        args = ["--train", str(split / "train"), "--validation", str(split / "validation")]
        args += ["--model-dir", str(out / "model"), "--output-data-dir", str(out / "data")]
        assert train.main([*args, *hyperparameter_args()]) == 0
        models.append((out / "model" / "xgboost-model").read_bytes())
    assert models[0] == models[1]


def test_bias_reads_every_part(splits: dict[int, Path]) -> None:
    bias = load_step("bias")
    n = len(pd.read_csv(splits[1] / "train/train.csv", header=None).columns) - 1
    whole = bias.read_split(str(splits[1]), "train", n)
    parts = bias.read_split(str(splits[3]), "train", n)
    assert np.array_equal(whole, parts)


def test_too_few_rows_for_the_files_is_a_split_error(tmp_path: Path, aws_data: Path) -> None:
    config = reference_config()
    config["split"]["train_files"] = 4001  # the train split has 4000 rows
    write_config(tmp_path / "config.json", config)
    args = ["--config", str(tmp_path / "config.json"), "--input-dir", str(aws_inputs(tmp_path / "in"))]
    proc = subprocess.run(  # as SageMaker runs the script
        [sys.executable, str(STEP_CODE / "preprocess.py"), *args, "--output-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "FF605" in proc.stderr and "split.train_files=4001" in proc.stderr and "hint:" in proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # nothing written
