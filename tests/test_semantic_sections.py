"""A section the schema rejects never hides another section's semantic finding, and no shape of any value makes
the semantic checks crash (they run after schema errors too, over the sections the schema accepted)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudflow.errors import UserError
from fraudflow.spec.load import load

CSV = "policy_id,incident_type,customer_gender,amount,fraud\n1,Theft,Male,10,0\n2,Collision,Female,20,1\n"

BASE: dict[str, Any] = {
    "data": {"sources": {"claims": "claims.csv"}, "label": "fraud", "drop": ["policy_id"]},
    "features": {"one_hot": ["incident_type", "customer_gendr"]},  # FF502: a typo, the finding that must stay
    "split": {"train": 0.8, "validation": 0.1, "test": 0.1},
    "train": {"hyperparameters": {"max_depth": 3, "num_round": 10}},
    "gate": {"threshold": 0.7},
    "bias": {"facet": "customer_gender_female"},
    "register": {"model_package_group": "fraud-detect-xgb"},
    "deploy": {"endpoint_name": "fraud-detect-xgb"},
    "parameters": {"Threshold": "gate.threshold"},
}
SECTIONS = [*BASE, "evaluate", "explain", "sagemaker"]


def _codes(folder: Path, pipeline: dict[str, Any]) -> list[str]:
    (folder / "claims.csv").write_text(CSV)
    file = folder / "pipelines.yaml"
    file.write_text(json.dumps({"version": 1, "pipelines": {"fraud": pipeline}}))  # JSON is YAML
    try:
        return [d.code for d in load(file).diagnostics]
    except UserError as exc:  # a located user error is a fine answer too; any other exception is a bug
        return [d.code for d in exc.diagnostics]


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    out = [path] if path else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*path, i))
    return out


def _put(doc: Any, path: tuple, value: Any) -> None:
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(-2, 2)
    | st.sampled_from(["", "x", "fraud", "0.5"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "on", "facet"]), inner),
    max_leaves=6,
)


def test_a_rejected_bias_section_keeps_the_column_check(tmp_path):
    pipeline = copy.deepcopy(BASE)
    pipeline["bias"] = "customer_gender_female"  # a string, not a mapping: a schema error
    codes = _codes(tmp_path, pipeline)
    assert "FF502" in codes and any(c.startswith("FF2") for c in codes), codes


def test_a_rejected_train_section_keeps_the_split_check(tmp_path):
    pipeline = copy.deepcopy(BASE)
    pipeline["split"] = {"train": 0.7, "validation": 0.1, "test": 0.1}  # FF501: sums to 0.9
    pipeline["train"] = "xgboost"
    codes = _codes(tmp_path, pipeline)
    assert "FF501" in codes and "FF502" in codes, codes


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(_paths(BASE) + [(s,) for s in SECTIONS]), value=json_values)
def test_any_value_anywhere_never_crashes_the_checks(tmp_path, where, value):
    pipeline = copy.deepcopy(BASE)
    _put(pipeline, where, value)
    codes = _codes(tmp_path, pipeline)
    if where[0] not in ("data", "features"):  # the typo's own sections untouched: its finding stays
        assert "FF502" in codes, (where, value, codes)
