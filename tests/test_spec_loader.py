"""Unit tests of the loader's parts: YAML with positions, the quick schema check against jsonschema, the
template fast path against jinja2, --set typing, and what `validate` imports."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from fraudflow.errors import UserError
from fraudflow.spec import schema as sch
from fraudflow.spec.load import load
from fraudflow.spec.template import Renderer
from fraudflow.spec.yamlload import Positions, parse_text

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).parent / "validate_corpus"

# ------------------------------------------------------------------------------------------------ YAML


@pytest.mark.parametrize(
    "text, value",
    [
        ("a: yes", {"a": "yes"}),
        ("a: No", {"a": "No"}),
        ("a: on", {"a": "on"}),
        ("a: true", {"a": True}),
        ("a: 2024-01-01", {"a": "2024-01-01"}),
        ("a: 010", {"a": 10}),
        ("a: 0x1f", {"a": 31}),
        ("a: 1e3", {"a": 1000.0}),
        ("a: ~", {"a": None}),
        ("a: .inf", {"a": float("inf")}),
        ("a: '1'", {"a": "1"}),
        ("a: !!str 1", {"a": "1"}),
        ("a: 1_000", {"a": "1_000"}),  # YAML 1.1 only
        ("a: 15/30", {"a": "15/30"}),
    ],
)
def test_yaml_12_core_scalars(text: str, value: dict) -> None:
    assert parse_text(text, "t.yaml")[0] == value


def test_positions_of_keys_and_values() -> None:
    doc, pos = parse_text("a:\n  b: [x, {c: 1}]\n", "t.yaml")
    assert doc == {"a": {"b": ["x", {"c": 1}]}}
    assert (pos.keys[("a", "b")].line, pos.keys[("a", "b")].column) == (2, 3)
    assert (pos.values[("a", "b", 1, "c")].line, pos.values[("a", "b", 1, "c")].column) == (2, 14)
    assert pos.value(("a", "b", 5)) == pos.values[("a", "b")]  # falls back to the closest ancestor


def test_merge_key_explicit_wins() -> None:
    doc, _ = parse_text("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n", "t.yaml")
    assert doc["other"] == {"x": 1, "y": 3}


def test_alias_reuse_within_bounds_is_fine() -> None:
    doc, _ = parse_text("a: &a [1, 2]\nb: *a\nc: *a\n", "t.yaml")
    assert doc["c"] == [1, 2]


@pytest.mark.parametrize("tag", ["!!python/object:os.system", "!!python/object/new:os.system", "!custom"])
def test_unsafe_tags_refused(tag: str) -> None:
    with pytest.raises(UserError) as exc:
        parse_text(f"a: {tag} x\n", "t.yaml")
    assert [d.code for d in exc.value.diagnostics] == ["FF103"]


def test_every_duplicate_reported() -> None:
    with pytest.raises(UserError) as exc:
        parse_text("a: 1\nb: {c: 1, c: 2}\na: 3\n", "t.yaml")
    assert [(d.code, d.line) for d in exc.value.diagnostics] == [("FF102", 2), ("FF102", 3)]


# ------------------------------------------------------------------------ quick schema check vs jsonschema

_ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    0.5,
    1.5,
    7,
    "x",
    "",
    "ml.m5.large",
    [],
    ["a", "a"],
    {},
    {"q": 1},
    float("nan"),
    float("-inf"),
    10**400,
]


def _leaves(value: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _leaves(v, (*path, i))
    return out


def _mutations(doc: dict) -> list[Any]:
    out = []
    for path in _leaves(doc):
        if not path:
            continue
        for odd in _ODD_VALUES:
            m = copy.deepcopy(doc)
            node = m
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = odd
            out.append(m)
        if isinstance(path[-1], str):  # a misspelt key
            m = copy.deepcopy(doc)
            node = m
            for part in path[:-1]:
                node = node[part]
            node[path[-1] + "x"] = node.pop(path[-1])
            out.append(m)
    return out


def _resolved_reference() -> dict:
    result = load(REPO / "pipelines.yaml")
    assert not result.errors
    return result.specs[0].config


@pytest.mark.parametrize("ref", [None, "#/$defs/resolvedPipeline"], ids=["file", "resolved-pipeline"])
def test_quick_check_agrees_with_jsonschema(ref: str | None) -> None:
    # Every leaf of the reference replaced by odd values, and every key misspelt: thousands of documents.
    root = sch.load_schema()
    schema = root if ref is None else {**{k: root[k] for k in ("$schema", "$defs")}, "$ref": ref}
    reference = sch.validator_class()(schema)  # Draft 2020-12 + "a ranged number is finite"
    if ref is None:
        text = (REPO / "pipelines.yaml").read_text()
        base = json.loads(json.dumps(parse_text(text, "p.yaml")[0]))
        base["pipelines"]["fraud-detect-xgb"]["sagemaker"] = {"role_arn": "arn:aws:iam::111122223333:role/x"}
    else:
        base = _resolved_reference()
    docs = [base, *_mutations(base)]
    assert len(docs) > 500
    disagree = [d for d in docs if sch.is_valid(d, ref) != reference.is_valid(d)]
    assert disagree == []
    assert sch.is_valid(base, ref)


def test_quick_check_json_equality() -> None:
    assert not sch.is_valid({"version": True, "pipelines": {}})  # true is not 1
    assert not sch.is_valid({"version": 1.0, "pipelines": {}})  # minProperties 1
    doc = {"version": 1.0, "pipelines": {"p": {}}}
    assert sch.is_valid(doc) == Draft202012Validator(sch.load_schema()).is_valid(doc)


def test_quick_check_defers_on_unknown_keywords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sch, "load_schema", lambda: {"type": "object", "patternProperties": {}})
    assert sch.is_valid({}) is False  # cannot decide: jsonschema will


# --------------------------------------------------------------------------- template fast path vs jinja2


_TEMPLATES = [
    "{{ vars.project }}",
    "{{vars.project}}/x",
    "{{ vars.data_dir }}/claims.csv and {{ vars.n }}",
    "{{ vars.nested.inner }}",
    "{{ env.HOME_X | default('fallback') }}",
    '{{ env.HOME_X | default("fallback") }}',
    "{{ env.HOME_X | default(3) }}",
    "{{ env.SET_X | default('no') }}",
    "{{ env.SET_X }}-{{ vars.project }}",
    "{{ vars.items }}",  # dict.items: jinja2's business
    "{{ vars.flag }}",
    "{{ vars.ratio }}",
    "{{ vars.list }}",
    "{{- vars.project -}}",
    "{% if true %}{{ vars.project }}{% endif %}",
    "{{ vars.project | upper }}",
    "plain {{ text",
    "{{ vars.missing }}",
    "{{ env.NOPE }}",
    "{{ ''.__class__ }}",
]


@pytest.mark.parametrize("text", _TEMPLATES)
def test_template_fast_path_matches_jinja(text: str) -> None:
    variables = {
        "project": "fraud",
        "data_dir": "data",
        "n": 3,
        "nested": {"inner": "deep"},
        "flag": True,
        "ratio": 0.1,
        "list": [1, "a"],
    }
    fast = Renderer(variables, Positions("t.yaml"), environ={"SET_X": "set"})
    slow = Renderer(variables, Positions("t.yaml"), environ={"SET_X": "set"})
    slow._render_simple = lambda text: None  # type: ignore[method-assign]
    assert fast.render(text, ("a",)) == slow.render(text, ("a",))
    assert [(d.code, d.message) for d in fast.errors] == [(d.code, d.message) for d in slow.errors]


def test_template_output_typed_by_schema() -> None:
    result = load(CORPUS / "valid_features.yaml", environ={"FF_CORPUS_SEED": "12", "FF_CORPUS_STAGE": "x"})
    assert not result.errors
    assert result.specs[0].config["split"]["seed"] == 12


# ------------------------------------------------------------------------------------------------ --set


@pytest.mark.parametrize(
    "item, path, value",
    [
        ("gate.threshold=0.8", ("gate", "threshold"), 0.8),
        ("split.seed=7", ("split", "seed"), 7),
        ("split.stratify=false", ("split", "stratify"), False),
        ("description=yes", ("description",), "yes"),
        ("register.approval_status=Approved", ("register", "approval_status"), "Approved"),
        ("features.missing.categorical=", ("features", "missing", "categorical"), ""),
        (
            "train.hyperparameters.eval_metric=[auc, logloss]",
            ("train", "hyperparameters", "eval_metric"),
            ["auc", "logloss"],
        ),
    ],
)
def test_set_typed_by_schema(item: str, path: tuple, value: Any) -> None:
    result = load(CORPUS / "valid_minimal.yaml", overrides=[item])
    assert not result.errors, result.errors
    node: Any = result.specs[0].config
    for part in path:
        node = node[part]
    assert node == value and type(node) is type(value)


# ------------------------------------------------------------------------------------- import hygiene


def test_validate_imports_no_heavy_libraries() -> None:
    code = (
        "import sys; from fraudflow.cli import main; rc = main(['validate', 'pipelines.yaml']); "
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'pandas', 'numpy', 'xgboost', 'boto3', 'botocore', 'sagemaker', 'sklearn', 'jsonschema', 'jinja2'}); "
        "print(rc, heavy)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip().splitlines()[-1] == "0 []", proc.stdout + proc.stderr


def test_errors_still_explained_by_jsonschema() -> None:
    # The quick check only says "invalid"; the diagnostics come from jsonschema.
    result = load(CORPUS / "eta_too_big.yaml")
    assert [(d.code, d.line, d.column) for d in result.errors] == [("FF204", 15, 44)]
    assert "jsonschema" in sys.modules


# ------------------------------------------------------------------------------------------------- docs


def test_every_loader_code_is_documented() -> None:
    import re

    sources = [*sorted((REPO / "fraudflow" / "spec").glob("*.py")), REPO / "fraudflow" / "commands.py"]
    emitted = {code for f in sources for code in re.findall(r"\"(FF\d{3})\"", f.read_text())}
    assert len(emitted) >= 30
    documented = set(re.findall(r"^### (FF\d{3}) ", (REPO / "docs" / "error-codes.md").read_text(), re.M))
    assert sorted(emitted - documented) == []
    for section in ("## FF6xx", "## FF7xx", "## FF8xx", "## FF9xx"):
        assert section in (REPO / "docs" / "error-codes.md").read_text()


# ------------------------------------------------------------------------------- C parser vs pure parser


def _parse_both(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    import yaml

    from fraudflow.spec.yamlload import parse_file

    out = []
    for c_parser in (yaml.cyaml.CParser, None):
        monkeypatch.setattr(yaml.cyaml, "CParser", c_parser)
        try:
            doc, pos = parse_file(path)
            out.append((json.dumps(doc, sort_keys=True, default=str), pos.values, pos.keys))
        except UserError as exc:
            out.append([(d.code, d.line, d.column, d.path) for d in exc.diagnostics])
    return out


@pytest.mark.skipif(not hasattr(__import__("yaml"), "cyaml"), reason="PyYAML without libyaml")
@pytest.mark.parametrize(
    "path", [REPO / "pipelines.yaml", *sorted(CORPUS.glob("*.yaml"))], ids=lambda p: p.name
)
def test_c_and_pure_parsers_agree(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # libyaml is used when present (fast); results, marks and error locations must not depend on it.
    c_result, pure_result = _parse_both(path, monkeypatch)
    assert c_result == pure_result
