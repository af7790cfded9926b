"""validate predicts the one-hot column names the preprocess step will make: both must follow one rule."""

from __future__ import annotations

import pandas as pd
import pytest

from fraudflow.spec import semantic
from fraudflow.spec.semantic import csv_categories, dummy_name
from tests._steps_util import load_step

pp = load_step("preprocess")


@pytest.mark.parametrize(
    "column_text",
    [
        ["Female", "Male", "Other", "Unkown"],
        ["Police", "Fire", "Ambulance", "None", "na"],
        ["Below High School", "  High School ", "Advanced Degree"],
        ["3", "4", "10"],
        ["3.0", "4.5", "10"],
        ["007", "abc"],
        ["TRUE", "false"],
    ],
)
def test_validate_and_preprocess_name_one_hot_columns_alike(column_text: list[str], tmp_path) -> None:
    """The CSV text goes through pandas (as preprocess reads it) and through the csv module (as validate does)."""
    csv = tmp_path / "x.csv"
    csv.write_text("c,y\n" + "\n".join(f'"{v}",{i % 2}' for i, v in enumerate(column_text)) + "\n")
    frame = pd.read_csv(csv, na_values=pp.NA_VALUES, keep_default_na=False)
    from_pandas = {pp.dummy_name("c", v) for v in frame["c"].dropna()}
    texts, complete = semantic._column_values("c", {"x": str(csv)}, {"x": ["c", "y"]}, tmp_path)
    assert complete and texts is not None  # validate's own reading of the file, its own missing words
    from_csv = {dummy_name("c", v) for v in csv_categories(texts)}
    assert from_csv == from_pandas


# Every word either side has ever counted as missing, and near misses that are values.
CELLS = [*pp.NA_VALUES, "none", "NONE", "Null", "N/a", "na", "-", "?", "0", " NA", "NA "]


@pytest.mark.parametrize("cell", CELLS)
def test_validate_and_preprocess_count_the_same_words_as_missing(cell: str, tmp_path) -> None:
    csv = tmp_path / "x.csv"
    csv.write_text(f'c,y\n"{cell}",0\nvalue,1\n')
    frame = pd.read_csv(csv, na_values=pp.NA_VALUES, keep_default_na=False)
    texts, _ = semantic._column_values("c", {"x": str(csv)}, {"x": ["c", "y"]}, tmp_path)
    assert texts is not None
    assert (cell in texts) == bool(frame["c"].notna().iloc[0]), cell
