"""Acceptance tests of `fraudflow validate` on a corpus of broken configs (tests/validate_corpus/).

Every fixture is the small valid `valid_minimal.yaml` with one mistake (or several, in several_errors.yaml). Each
case asserts the exit code, the error code, the exact line and column, and the path in the document. Most run
in-process through `fraudflow.cli.main` (fast); a handful run `python -m fraudflow` in a subprocess, as a user
would, including the JSON format and the absence of any traceback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fraudflow import exits
from fraudflow.cli import main

CORPUS = Path(__file__).parent / "validate_corpus"
REPO = Path(__file__).resolve().parents[1]

# `FILE:LINE:COL: [warning ]CODE message`, then optional `    at PATH` and `    hint: HINT` lines.
_HEAD = re.compile(
    r"^(?P<file>.*?)(?::(?P<line>\d+)(?::(?P<col>\d+))?)?: (?P<warning>warning )?(?P<code>FF\d{3}) (?P<msg>.*)$"
)


@dataclass
class Diag:
    file: str
    line: int | None
    col: int | None
    code: str
    msg: str
    warning: bool = False
    path: str | None = None
    hint: str | None = None


def parse_text(stderr: str) -> list[Diag]:
    out: list[Diag] = []
    for raw in stderr.splitlines():
        if raw.startswith("    at ") and out:
            out[-1].path = raw[len("    at ") :]
        elif raw.startswith("    hint: ") and out:
            out[-1].hint = raw[len("    hint: ") :]
        elif m := _HEAD.match(raw):
            out.append(
                Diag(
                    file=m["file"],
                    line=int(m["line"]) if m["line"] else None,
                    col=int(m["col"]) if m["col"] else None,
                    code=m["code"],
                    msg=m["msg"],
                    warning=bool(m["warning"]),
                )
            )
    return out


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.fixture
def in_corpus(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the corpus folder so that locations read `file.yaml:LINE:COL`; no stray template env vars."""
    monkeypatch.chdir(CORPUS)
    for name in list(os.environ):
        if name.startswith(("FF_CORPUS_", "FRAUDFLOW_CORPUS_")):
            monkeypatch.delenv(name)
    return CORPUS


@dataclass
class Case:
    file: str
    code: str
    line: int | None
    col: int | None
    path: str | None
    exit: int = 1
    args: tuple[str, ...] = ()
    count: int | None = 1  # number of errors reported; None: not checked
    msg: str | None = None  # a fragment the message must contain
    hint: str | None = None  # a fragment the hint must contain
    command: str = "validate"
    path_prefix: bool = (
        False  # `path` is only the start of the reported path (expanded aliases, deep nesting)
    )


P = "pipelines.fraud."
CASES: dict[str, Case] = {
    # --- YAML itself (FF1xx): fatal, reported alone
    "yaml-syntax-error": Case("syntax_error.yaml", "FF101", 8, 11, None, msg="YAML syntax error"),
    "tab-indentation": Case("tab_indent.yaml", "FF101", 7, 1, None, hint="spaces, not tabs"),
    "duplicate-key-top": Case("duplicate_key_top.yaml", "FF102", 20, 1, "version", msg="line 1"),
    "duplicate-key-nested": Case(
        "duplicate_key_nested.yaml", "FF102", 8, 7, P + "data.label", msg="first defined at line 7"
    ),
    "python-object-tag": Case(
        "python_tag.yaml", "FF103", 7, 14, P + "data.label", msg="never executed", hint="plain data only"
    ),
    "python-name-tag": Case("python_name_tag.yaml", "FF103", 7, 14, P + "data.label"),
    "custom-tag": Case("custom_tag.yaml", "FF103", 7, 14, P + "data.label", msg="!secret"),
    "int-tag-not-int": Case("int_tag_bad.yaml", "FF101", 13, 59, P + "split.seed", msg="not an integer"),
    "mapping-as-key": Case("key_is_mapping.yaml", "FF101", 7, 9, P + "data", msg="mapping key"),
    "merge-non-mapping": Case("merge_key_bad.yaml", "FF101", 1, 11, "pipelines.fraud", count=2, msg="<<"),
    "alias-bomb": Case(
        "alias_bomb.yaml", "FF104", 6, 5, "a4[", msg="aliases are expanded", hint="refused", path_prefix=True
    ),
    "deep-nesting": Case(
        "deep_nesting.yaml",
        "FF104",
        4,
        80,
        "pipelines.fraud.description[0]",
        msg="deeper than 64",
        path_prefix=True,
    ),
    "empty-file": Case("empty.yaml", "FF105", 1, 1, None, msg="empty"),
    "comment-only-file": Case("comment_only.yaml", "FF105", 1, 1, None),
    "top-level-list": Case("top_level_list.yaml", "FF106", 1, 1, "(top level)", msg="not a list"),
    "top-level-scalar": Case("top_level_scalar.yaml", "FF106", 1, 1, "(top level)", msg="single value"),
    "not-utf8": Case("not_utf8.yaml", "FF101", 16, None, None, msg="not UTF-8"),
    "missing-file": Case("no_such_file.yaml", "FF100", None, None, None, msg="not found"),
    # --- schema (FF2xx)
    "unknown-key-typo": Case(
        "unknown_key_typo.yaml", "FF201", 7, 7, P + "data.lable", count=2, hint="did you mean 'label'?"
    ),
    "unknown-hyperparameter": Case(
        "unknown_key_hyperparam.yaml",
        "FF201",
        15,
        39,
        P + "train.hyperparameters.etaa",
        hint="did you mean 'eta'?",
    ),
    "wrong-type-int": Case(
        "wrong_type_seed.yaml", "FF202", 13, 59, P + "split.seed", msg="expected an integer"
    ),
    "wrong-type-list": Case("wrong_type_drop.yaml", "FF202", 8, 13, P + "data.drop", msg="expected a list"),
    "wrong-type-mapping": Case(
        "early_stopping_no_block.yaml", "FF202", 16, 23, P + "train.early_stopping", msg="expected a mapping"
    ),
    "version-2": Case("version_2.yaml", "FF203", 1, 10, "version", hint="1"),
    "enum-typo": Case("enum_typo.yaml", "FF203", 16, 20, P + "gate.metric", hint="did you mean 'roc_auc'?"),
    "eta-0": Case("eta_zero.yaml", "FF204", 15, 44, P + "train.hyperparameters.eta", msg="> 0"),
    "eta-1.5": Case("eta_too_big.yaml", "FF204", 15, 44, P + "train.hyperparameters.eta", msg="<= 1"),
    "subsample-0": Case("subsample_zero.yaml", "FF204", 15, 60, P + "train.hyperparameters.subsample"),
    "max-depth-negative": Case(
        "max_depth_negative.yaml", "FF204", 15, 36, P + "train.hyperparameters.max_depth"
    ),
    "num-round-0": Case("num_round_zero.yaml", "FF204", 15, 76, P + "train.hyperparameters.num_round"),
    "threshold-1.2": Case("threshold_too_big.yaml", "FF204", 16, 40, P + "gate.threshold"),
    "missing-required-key": Case("missing_required.yaml", "FF205", 16, 5, P + "gate", msg="'threshold'"),
    "missing-required-section": Case(
        "missing_register.yaml", "FF205", 3, 3, "pipelines.fraud", msg="'register'"
    ),
    "bad-pipeline-name": Case(
        "bad_pipeline_name.yaml", "FF206", 20, 3, "pipelines.fraud_detect", hint="letters, digits and hyphens"
    ),
    "bad-model-package-group": Case(
        "bad_model_package_group.yaml", "FF206", 18, 37, P + "register.model_package_group"
    ),
    "bad-endpoint-name": Case("bad_endpoint_name.yaml", "FF206", 19, 29, P + "deploy.endpoint_name"),
    "bad-sagemaker-pipeline-name": Case(
        "bad_sagemaker_pipeline_name.yaml", "FF206", 24, 22, P + "sagemaker.pipeline_name"
    ),
    "bad-instance-type": Case(
        "bad_instance_type.yaml", "FF206", 19, 62, P + "deploy.instance_type", hint="ml.m5.xlarge"
    ),
    "bad-environment-name": Case("bad_env_name.yaml", "FF206", 22, 3, "environments.1dev"),
    "bad-parameter-name": Case(
        "param_bad_name.yaml", "FF206", 21, 7, P + "parameters.auc-threshold", hint="AucThreshold"
    ),
    "parameter-bad-path": Case(
        "param_bad_path.yaml", "FF206", 21, 18, P + "parameters.Threshold", count=2, hint="gate.threshold"
    ),
    # --- templates (FF3xx)
    "template-syntax-error": Case(
        "template_syntax_error.yaml", "FF301", 18, 37, P + "register.model_package_group"
    ),
    "undefined-template-var": Case(
        "undefined_template_var.yaml", "FF302", 18, 37, P + "register.model_package_group", msg="'group'"
    ),
    "undefined-env-var": Case(
        "undefined_env_var.yaml", "FF302", 18, 37, P + "register.model_package_group", hint="default("
    ),
    "sandbox-mro": Case("sandbox_escape.yaml", "FF303", 18, 37, P + "register.model_package_group"),
    "sandbox-subclasses": Case("sandbox_subclasses.yaml", "FF303", 7, 14, P + "data.label"),
    "sandbox-globals": Case("sandbox_globals.yaml", "FF303", 7, 14, P + "data.label"),
    # --- command line (FF4xx)
    "unknown-env": Case(
        "valid_minimal.yaml",
        "FF401",
        1,
        1,
        "environments",
        exit=exits.USAGE,
        args=("--env", "nope"),
        hint="none declared",
    ),
    "unknown-env-lists-known": Case(
        "valid_features.yaml",
        "FF401",
        8,
        1,
        "environments",
        exit=exits.USAGE,
        args=("--env", "staging"),
        hint="prod",
    ),
    "set-without-equals": Case(
        "valid_minimal.yaml", "FF402", None, None, None, exit=exits.USAGE, args=("--set", "split.seed")
    ),
    "set-top-level-key": Case(
        "valid_minimal.yaml", "FF402", None, None, None, exit=exits.USAGE, args=("--set", "version=2")
    ),
    "set-unknown-path": Case(
        "valid_minimal.yaml",
        "FF404",
        None,
        None,
        None,
        exit=exits.USAGE,
        args=("--set", "split.sed=1"),
        hint="did you mean 'seed'?",
    ),
    "set-typed-by-schema": Case(
        "valid_minimal.yaml", "FF202", None, None, P + "split.seed", args=("--set", "split.seed=abc")
    ),
    "set-out-of-range": Case(
        "valid_minimal.yaml", "FF204", None, None, P + "gate.threshold", args=("--set", "gate.threshold=1.5")
    ),
    "env-overlays-unknown-pipeline": Case(
        "unknown_env_overlay_pipeline.yaml",
        "FF403",
        23,
        7,
        "environments.dev.pipelines.fruad",
        hint="did you mean 'fraud'?",
    ),
    "env-overlays-unknown-pipeline-chosen": Case(
        "unknown_env_overlay_pipeline.yaml",
        "FF403",
        23,
        7,
        "environments.dev.pipelines.fruad",
        args=("--env", "dev"),
    ),
    "resolve-unknown-pipeline": Case(
        "valid_minimal.yaml",
        "FF405",
        None,
        None,
        "pipelines",
        exit=exits.USAGE,
        args=("--pipeline", "nope"),
        command="resolve",
        hint="fraud",
    ),
    # --- semantic (FF5xx)
    "split-not-summing-to-1": Case("split_sum.yaml", "FF501", 13, 12, P + "split", msg="sum to 0.9"),
    "missing-label-column": Case(
        "missing_label_column.yaml",
        "FF502",
        7,
        14,
        P + "data.label",
        msg="'is_fraud'",
        hint="did you mean 'fraud'?",
    ),
    "missing-join-key": Case("missing_join_key.yaml", "FF502", 6, 18, P + "data.join.on", msg="join key"),
    "unknown-one-hot-column": Case(
        "unknown_one_hot_column.yaml", "FF502", 10, 49, P + "features.one_hot[2]", msg="'incident_colour'"
    ),
    "facet-not-produced": Case(
        "facet_not_produced.yaml",
        "FF503",
        17,
        19,
        P + "bias.facet",
        msg="customer_gender_female",
        hint="did you mean 'customer_gender_female'?",
    ),
    "facet-without-encoder": Case("facet_no_encoder.yaml", "FF503", 17, 19, P + "bias.facet"),
    "drop-encoded-not-produced": Case(
        "drop_encoded_unknown.yaml", "FF504", 13, 22, P + "features.drop_encoded[0]"
    ),
    "label-in-drop": Case("label_in_drop.yaml", "FF505", 7, 14, P + "data.label", msg="cannot be in drop"),
    "one-hot-and-ordinal": Case(
        "one_hot_and_ordinal.yaml", "FF505", 12, 9, P + "features.ordinal.police_report_available"
    ),
    "parameter-unset": Case("param_unset.yaml", "FF506", 23, 17, P + "parameters.Instance"),
    "duplicate-variant-name": Case(
        "duplicate_variants.yaml", "FF507", 20, 47, P + "deploy.variants[1].name", msg="variants[0]"
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_corpus(case: Case, in_corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if case.file != "no_such_file.yaml":
        assert (in_corpus / case.file).exists(), case.file
    rc, out, err = run_cli([case.command, case.file, *case.args], capsys)
    assert rc == case.exit, err
    diags = parse_text(err)
    errors = [d for d in diags if not d.warning]
    assert errors, err
    if case.count is not None:
        assert len(errors) == case.count, err
    found = [d for d in errors if d.code == case.code]
    assert found, f"no {case.code} in:\n{err}"
    d = found[0]
    if case.path_prefix:
        assert d.path and d.path.startswith(case.path or ""), err
        assert (d.line, d.col) == (case.line, case.col), err
    else:
        assert (d.line, d.col, d.path) == (case.line, case.col, case.path), err
    if case.line is not None:
        assert d.file == case.file
    if case.msg:
        assert case.msg in d.msg, err
    if case.hint:
        assert d.hint and case.hint in d.hint, err
    assert "Traceback" not in err


def test_set_value_located_on_command_line(in_corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run_cli(["validate", "valid_minimal.yaml", "--set", "split.seed=abc"], capsys)
    assert rc == 1
    (d,) = [d for d in parse_text(err) if d.code == "FF202"]
    assert d.file == "<--set split.seed=abc>"
    assert "string 'abc'" in d.msg


def test_several_errors_all_reported_sorted_by_line(
    in_corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, err = run_cli(["validate", "several_errors.yaml"], capsys)
    assert rc == 1
    got = [(d.line, d.col, d.code, d.path) for d in parse_text(err)]
    assert got == [
        (3, 3, "FF206", "pipelines.fraud_x"),
        (4, 5, "FF205", "pipelines.fraud_x.data"),  # `label` is missing because it is misspelt...
        (7, 7, "FF201", "pipelines.fraud_x.data.lable"),  # ...here
        (15, 44, "FF204", "pipelines.fraud_x.train.hyperparameters.eta"),
        (16, 40, "FF204", "pipelines.fraud_x.gate.threshold"),
    ]
    assert err.rstrip().endswith("several_errors.yaml: 5 errors")


def test_python_tag_never_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    # The tag would run `touch PWNED` in the working directory if anything constructed it.
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(["validate", str(CORPUS / "python_tag.yaml")], capsys)
    assert rc == 1 and "FF103" in err
    assert not (tmp_path / "PWNED").exists()
    assert list(tmp_path.iterdir()) == []


def test_alias_bomb_refused_not_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bomb would expand to 10^10 values; the loader builds at most MAX_NODES of them, then stops."""
    from fraudflow.errors import UserError
    from fraudflow.spec import yamlload

    calls = 0
    build = yamlload._Builder.build

    def counting(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        nonlocal calls
        calls += 1
        return build(self, *args, **kwargs)

    monkeypatch.setattr(yamlload._Builder, "build", counting)
    with pytest.raises(UserError) as exc:
        yamlload.parse_file(CORPUS / "alias_bomb.yaml")
    assert [d.code for d in exc.value.diagnostics] == ["FF104"]
    assert calls <= yamlload.MAX_NODES + 100  # the values past the limit return at once


def test_undefined_env_var_defined(in_corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("FRAUDFLOW_CORPUS_UNSET", "grp-from-env")
    rc, out, err = run_cli(["resolve", "undefined_env_var.yaml", "--format", "json"], capsys)
    assert rc == 0, err
    assert json.loads(out)["fraud"]["register"]["model_package_group"] == "grp-from-env"


# ------------------------------------------------------------------------------------------ positive cases


def test_repo_pipelines_yaml_is_valid(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(REPO)
    rc, out, err = run_cli(["validate", "pipelines.yaml"], capsys)
    assert rc == 0, err
    assert out.strip() == "pipelines.yaml: valid (1 pipeline: fraud-detect-xgb)"
    assert not [d for d in parse_text(err) if not d.warning]


@pytest.mark.usefixtures("aws_data")
def test_repo_pipelines_yaml_with_aws_data(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    # With the data present every column check runs: no FF510 "not found" warning may remain.
    monkeypatch.chdir(REPO)
    rc, out, err = run_cli(["validate", "pipelines.yaml", "--env", "aws-sample", "--format", "json"], capsys)
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["valid"] is True and doc["errors"] == [] and doc["warnings"] == []


def test_minimal_fixture_is_valid_with_no_warnings(in_corpus: Path, capsys) -> None:
    rc, out, err = run_cli(["validate", "valid_minimal.yaml"], capsys)
    assert (rc, err) == (0, "")
    assert "valid (1 pipeline: fraud)" in out


def test_bom_is_accepted(in_corpus: Path, capsys) -> None:
    rc, _, err = run_cli(["validate", "bom.yaml"], capsys)
    assert rc == 0, err


def _json_shape(doc: dict) -> None:
    assert set(doc) == {"file", "valid", "pipelines", "errors", "warnings"}
    assert isinstance(doc["valid"], bool) and isinstance(doc["pipelines"], list)
    for d in doc["errors"] + doc["warnings"]:
        assert {"code", "message", "file", "severity"} <= set(d)
        assert re.fullmatch(r"FF\d{3}", d["code"])
        assert set(d) <= {"code", "message", "file", "line", "column", "path", "hint", "severity"}


def test_json_format_valid(in_corpus: Path, capsys) -> None:
    rc, out, _ = run_cli(["validate", "valid_minimal.yaml", "--format", "json"], capsys)
    doc = json.loads(out)
    _json_shape(doc)
    assert rc == 0 and doc["valid"] and doc["pipelines"] == ["fraud"]


def test_resolve_applies_env_set_and_defaults(
    in_corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    rc, out, err = run_cli(
        ["resolve", "valid_features.yaml", "--env", "prod", "--set", "split.seed=11", "--format", "json"],
        capsys,
    )
    assert rc == 0, err
    cfg = json.loads(out)["fraud"]
    assert cfg["gate"]["threshold"] == 0.8  # environment overlay of the pipeline
    assert cfg["register"]["model_package_group"] == "fraud-prod"  # environment's vars
    assert cfg["split"]["seed"] == 11  # --set, typed as an integer
    assert cfg["train"]["hyperparameters"]["objective"] == "binary:logistic"  # schema default
    assert cfg["features"]["missing"] == {"categorical": "na", "numeric": "none"}
    assert cfg["data"]["sources"]["claims"] == str(CORPUS / "data" / "claims.csv")  # relative to the file


def test_yaml_12_scalars_and_merge_keys(in_corpus: Path, capsys) -> None:
    rc, out, err = run_cli(["resolve", "valid_features.yaml", "--format", "json"], capsys)
    assert rc == 0, err
    cfg = json.loads(out)["fraud"]
    assert cfg["description"] == "yes"  # YAML 1.2: not a boolean
    assert cfg["features"]["ordinal"]["police_report_available"] == ["No", "Yes", "off", "on"]
    # `<<: *hp` merged the defaults' anchor; the explicit key wins.
    hp = cfg["train"]["hyperparameters"]
    assert (hp["max_depth"], hp["eta"], hp["subsample"], hp["num_round"]) == (3, 0.1, 0.8, 10)


def test_env_templating(in_corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("FF_CORPUS_STAGE", "qa")
    monkeypatch.setenv("FF_CORPUS_SEED", "9")
    rc, out, err = run_cli(["resolve", "valid_features.yaml", "--format", "json"], capsys)
    assert rc == 0, err
    cfg = json.loads(out)["fraud"]
    assert cfg["register"]["model_package_group"] == "fraud-qa"
    assert cfg["split"]["seed"] == 9  # a rendered template is typed by the schema: an integer
    monkeypatch.delenv("FF_CORPUS_SEED")
    rc, out, _ = run_cli(["resolve", "valid_features.yaml", "--format", "json"], capsys)
    assert json.loads(out)["fraud"]["split"]["seed"] == 7  # the template's default


# ------------------------------------------------------------------------------ as a user runs it: subprocess


def _python_m(*args: str, cwd: Path = CORPUS, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fraudflow", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)} if env is None else env,
    )


def test_subprocess_json_errors() -> None:
    proc = _python_m("validate", "several_errors.yaml", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    _json_shape(doc)
    assert doc["valid"] is False and doc["pipelines"] == []
    lines = [(e["line"], e["column"], e["code"], e["path"]) for e in doc["errors"]]
    assert lines == sorted(lines)
    assert lines[0] == (3, 3, "FF206", "pipelines.fraud_x")
    assert {e["code"] for e in doc["errors"]} == {"FF201", "FF204", "FF205", "FF206"}
    assert all(e["file"] == "several_errors.yaml" for e in doc["errors"])


@pytest.mark.parametrize(
    "args, rc, code, line",
    [
        (("duplicate_key_nested.yaml",), 1, "FF102", 8),
        (("empty.yaml",), 1, "FF105", 1),
        (("valid_minimal.yaml", "--env", "nope"), exits.USAGE, "FF401", 1),
        (("valid_minimal.yaml", "--set", "oops"), exits.USAGE, "FF402", None),
    ],
    ids=["duplicate-key", "empty", "unknown-env", "bad-set"],
)
def test_subprocess_json_fatal_errors(args: tuple[str, ...], rc: int, code: str, line: int | None) -> None:
    # Errors that stop loading early are JSON too, with the same exit codes as the text format.
    proc = _python_m("validate", *args, "--format", "json")
    assert proc.returncode == rc, proc.stderr
    doc = json.loads(proc.stdout)
    _json_shape(doc)
    assert doc["valid"] is False
    assert [(e["code"], e.get("line")) for e in doc["errors"]] == [(code, line)]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args, rc, code",
    [
        (("validate", "python_tag.yaml"), 1, "FF103"),
        (("validate", "not_utf8.yaml"), 1, "FF101"),
        (("validate", "alias_bomb.yaml"), 1, "FF104"),
        (("validate", "top_level_list.yaml"), 1, "FF106"),
        (("validate", "no_such_file.yaml"), 1, "FF100"),
        (("validate", "valid_minimal.yaml", "--env", "nope"), exits.USAGE, "FF401"),
        (("validate", "valid_minimal.yaml", "--set", "oops"), exits.USAGE, "FF402"),
        (("resolve", "valid_minimal.yaml", "--pipeline", "nope"), exits.USAGE, "FF405"),
    ],
    ids=["python-tag", "not-utf8", "alias-bomb", "top-level-list", "missing-file", "env", "set", "pipeline"],
)
def test_subprocess_no_traceback(args: tuple[str, ...], rc: int, code: str) -> None:
    proc = _python_m(*args)
    assert proc.returncode == rc, proc.stderr
    assert code in proc.stderr
    assert "Traceback" not in proc.stderr


def test_subprocess_repo_file_valid() -> None:
    proc = _python_m("validate", "pipelines.yaml", cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout
