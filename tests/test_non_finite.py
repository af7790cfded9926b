"""NaN, infinities and numbers beyond a float are refused by every numeric setting with a range, whichever way
the value comes in: the file, an environment overlay, a template's output, `--set`, `apply --param`.

The ranged settings are read from the schema itself, so a setting added tomorrow is covered without editing
this file. (NaN compares False to every bound: a plain range check lets it through.)
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fraudflow.errors import UserError
from fraudflow.spec import schema as sch
from fraudflow.spec.load import load
from fraudflow.spec.yamlload import format_path, parse_text

CORPUS = Path(__file__).parent / "validate_corpus"
ROOT = Path(__file__).resolve().parents[1]
BAD = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}
RANGE_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
BAD_TEXT = {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}


def _ranged_fields() -> list[tuple]:
    """Every path below a pipeline whose schema sets minimum/maximum/exclusive*: [0] for list items."""
    root = sch.load_schema()
    out: list[tuple] = []

    def walk(node: dict, path: tuple, seen: frozenset) -> None:
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref in seen:
                return
            walk(root["$defs"][ref.split("/")[-1]], path, seen | {ref})
        if any(k in node for k in RANGE_KEYWORDS) and path not in out:
            out.append(path)
        for key, sub in node.get("properties", {}).items():
            walk(sub, (*path, key), seen)
        if isinstance(node.get("items"), dict):
            walk(node["items"], (*path, 0), seen)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], (*path, "x"), seen)
        for branch in node.get("oneOf", []) + node.get("anyOf", []) + node.get("allOf", []):
            walk(branch, path, seen)

    walk({"$ref": "#/$defs/pipeline"}, (), frozenset())
    return out


RANGED = _ranged_fields()
IDS = [format_path(p) for p in RANGED]


def test_the_schema_has_ranged_fields() -> None:
    names = set(IDS)
    assert {"gate.threshold", "train.hyperparameters.eta", "bias.probability_threshold"} <= names
    assert len(RANGED) >= 30


def _base() -> dict:
    return parse_text((CORPUS / "valid_minimal.yaml").read_text(), "valid_minimal.yaml")[0]


def _valid_value(field: tuple) -> Any:
    node = sch.subschema(field) or {}
    lo = node.get("minimum", node.get("exclusiveMinimum"))
    hi = node.get("maximum", node.get("exclusiveMaximum"))
    if (
        "default" in node
        and sch.is_valid(node["default"], None) is not None
        and not sch.check_value(node["default"], node)
    ):
        return node["default"]
    integer = "integer" in sch.value_types(node)
    if lo is not None and hi is not None:
        mid = (lo + hi) / 2
        return int(mid) if integer else mid
    if lo is not None:
        return int(lo) + 1 if integer else lo + 1
    return 1


def _put(doc: Any, path: tuple, value: Any) -> None:
    node = doc
    for part, nxt in zip(path[:-1], path[1:], strict=True):
        if isinstance(part, int):
            while len(node) <= part:
                node.append({} if not isinstance(nxt, int) else [])
            if not isinstance(node[part], (dict, list)):
                node[part] = {} if not isinstance(nxt, int) else []
            node = node[part]
        else:
            if not isinstance(node.get(part), (dict, list)):
                node[part] = [] if isinstance(nxt, int) else {}
            node = node[part]
    if isinstance(path[-1], int):
        while len(node) <= path[-1]:
            node.append(None)
    node[path[-1]] = value


def _errors_at(tmp_path: Path, doc: dict, field: tuple, **kwargs: Any) -> list[str]:
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        result = load(f, **kwargs)
    except UserError as exc:
        diags = exc.diagnostics
    else:
        diags = result.errors
        assert diags, "accepted"
        assert not result.specs or all(_finite_everywhere(s.config) for s in result.specs)
    where = format_path(field)
    return [f"{d.code} {d.message}" for d in diags if d.path and d.path.endswith(where)]


def _finite_everywhere(value: Any) -> bool:
    return json.dumps(value, allow_nan=True) == json.dumps(
        json.loads(json.dumps(value)), allow_nan=True
    ) and ("NaN" not in json.dumps(value) and "Infinity" not in json.dumps(value))


@pytest.mark.parametrize("field", RANGED, ids=IDS)
@pytest.mark.parametrize("bad", list(BAD))
def test_file_refuses(field: tuple, bad: str, tmp_path: Path) -> None:
    doc = _base()
    _put(doc["pipelines"]["fraud"], field, BAD[bad])
    assert _errors_at(tmp_path, doc, field), "no error at the field"


@pytest.mark.parametrize("field", RANGED, ids=IDS)
def test_file_refuses_numbers_beyond_a_float(field: tuple, tmp_path: Path) -> None:
    for value in (10**400, -(10**400), 1e999):
        doc = _base()
        _put(doc["pipelines"]["fraud"], field, value)
        assert _errors_at(tmp_path, doc, field), value


@pytest.mark.parametrize("field", RANGED, ids=IDS)
@pytest.mark.parametrize("bad", list(BAD))
def test_environment_overlay_refuses(field: tuple, bad: str, tmp_path: Path) -> None:
    doc = _base()
    overlay: dict = {}
    _put(overlay, field, BAD[bad])
    doc["environments"] = {"stage": {"pipelines": {"fraud": overlay}}}
    assert _errors_at(tmp_path, doc, field, env="stage")
    assert _errors_at(tmp_path, doc, field)  # every environment is checked, chosen or not


@pytest.mark.parametrize("field", RANGED, ids=IDS)
@pytest.mark.parametrize("bad", list(BAD))
def test_template_output_refuses(field: tuple, bad: str, tmp_path: Path) -> None:
    doc = _base()
    doc["vars"] = {"bad": BAD_TEXT[bad]}
    _put(doc["pipelines"]["fraud"], field, "{{ vars.bad }}")
    assert _errors_at(tmp_path, doc, field)
    doc = _base()
    _put(doc["pipelines"]["fraud"], field, "{{ env.FF_TEST_NUMBER }}")
    assert _errors_at(tmp_path, doc, field, environ={"FF_TEST_NUMBER": BAD_TEXT[bad]})


SETTABLE = [p for p in RANGED if not any(isinstance(x, int) or x == "x" for x in p)]


@pytest.mark.parametrize("field", SETTABLE, ids=[format_path(p) for p in SETTABLE])
@pytest.mark.parametrize("bad", [*BAD_TEXT.values(), "1e999"])
def test_set_refuses(field: tuple, bad: str, tmp_path: Path) -> None:
    item = ".".join(map(str, field)) + "=" + bad
    assert _errors_at(tmp_path, _base(), field, overrides=[item])


def test_set_nan_on_the_command_line_exits_1() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fraudflow", "validate", "valid_minimal.yaml", "--set", "gate.threshold=.nan"],
        cwd=CORPUS,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert (
        "<--set gate.threshold=.nan>: FF204 nan is not a finite number: must be >= 0 and <= 1" in proc.stderr
    )


# ---------------------------------------------------------------------------------------------- apply --param

PARAM_PATTERN = sch.load_schema()["$defs"]["pipeline"]["properties"]["parameters"]["additionalProperties"][
    "pattern"
]
PARAMETERISABLE = [p for p in SETTABLE if sch._regex(PARAM_PATTERN).search(".".join(p)) and "{" not in p]


def test_parameterisable_ranged_fields_exist() -> None:
    assert ("gate", "threshold") in PARAMETERISABLE and len(PARAMETERISABLE) >= 10


@pytest.mark.parametrize("field", PARAMETERISABLE, ids=[format_path(p) for p in PARAMETERISABLE])
def test_param_refuses(field: tuple, tmp_path: Path) -> None:
    from fraudflow.sagemaker.commands import check_params

    doc = _base()
    pipeline = doc["pipelines"]["fraud"]
    pipeline["parameters"] = {"P": ".".join(field)}
    pipeline["sagemaker"] = {
        "role_arn": "arn:aws:iam::111122223333:role/x",
        "bucket": "my-bucket",
        "lambda": {"role_arn": "arn:aws:iam::111122223333:role/deployer"},
    }
    good = _valid_value(field)
    _put(pipeline, field, copy.deepcopy(good))
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = load(f)
    # an instance count is never a parameter (validate refuses it with FF516): nothing for --param to check
    if [d.code for d in result.errors] == ["FF516"]:
        return
    assert result.specs, result.errors  # the base pipeline is valid: every other field is really exercised
    spec = result.specs[0]
    for bad in [*BAD_TEXT.values(), "1e999", "nan", "-inf", "Infinity", str(10**400)]:
        with pytest.raises(UserError) as exc:
            check_params(spec, [f"P={bad}"])
        assert [d.code for d in exc.value.diagnostics] == ["FF715"], bad
        assert exc.value.exit_code == 1
    check_params(spec, [f"P={good}"])  # a value the file could hold is accepted


def test_render_never_writes_nan() -> None:
    from fraudflow.sagemaker.commands import _strict_json

    with pytest.raises(ValueError, match="NaN"):
        _strict_json('{"a": NaN}')
    _strict_json('{"a": 1.5}')
    assert not math.isnan(json.loads('{"a": 1}')["a"])


@pytest.mark.parametrize(
    "param, refused",
    [
        ("AucThreshold=-inf", True),
        ("AucThreshold=.nan", True),
        ("AucThreshold=1.5", True),
        ("MaxDepth=-1", True),
        ("ModelApprovalStatus=Maybe", True),
        ("TrainingInstanceType=m5.large", True),
        ("AucThreshold=0.65", False),
    ],
)
def test_apply_param_checked_against_the_schema_before_aws(
    param: str, refused: bool, tmp_path: Path, aws_data: Path
) -> None:
    text = (ROOT / "pipelines.yaml").read_text().replace("data_dir: data ", f"data_dir: {aws_data} ", 1)
    f = tmp_path / "pipelines.yaml"
    f.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_EC2_METADATA_DISABLED="true"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "fraudflow", "apply", str(f), "--yes", "--start", "--param", param],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    if refused:
        assert f"<--param {param}>: FF715 {param.split('=')[0]} sets " in proc.stderr, proc.stderr
    else:  # a value the file could hold goes on, here to the missing credentials
        assert "FF715" not in proc.stderr and "FF711" in proc.stderr, proc.stderr
