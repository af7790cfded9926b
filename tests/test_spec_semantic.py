"""validate predicts the one-hot column names the preprocess step will make: both must follow one rule."""

from __future__ import annotations

import pandas as pd
import pytest

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
    texts = {v for v in column_text if v not in pp.NA_VALUES}
    from_csv = {dummy_name("c", v) for v in csv_categories(texts)}
    assert from_csv == from_pandas
