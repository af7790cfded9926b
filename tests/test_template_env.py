"""Templates read environment variables by name only, and a value that came from the environment is never
quoted in an error message (issue 9, item 12)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fraudflow.errors import UserError
from fraudflow.spec.load import load
from fraudflow.spec.template import Renderer
from fraudflow.spec.yamlload import Positions

CORPUS = Path(__file__).parent / "validate_corpus"
ROOT = Path(__file__).resolve().parents[1]
SECRET_NAME = "FF_TEST_CANARY_TOKEN"
SECRET = "canary-4f1d2c8e-secret"
ENVIRON = {SECRET_NAME: SECRET, "FF_TEST_REGION": "eu-west-1"}

# Every way we know to list or dump a mapping in jinja2: none may reveal the variable's name or value.
_LISTINGS = [
    "{% for k in env %}{{ k }}={{ env[k] }};{% endfor %}",
    "{{ env | list }}",
    "{{ env | tojson }}",
    "{{ env | string }}",
    "{{ env | pprint }}",
    "{{ env }}",
    "{{ env | join(',') }}",
    "{{ env | map('upper') | list }}",
    "{{ env | dictsort }}",
    "{{ env | items | list }}",
    "{{ env | sort }}",
    "{{ env | unique | list }}",
    "{{ env | first }}",
    "{{ env | last }}",
    "{{ env | random }}",
    "{{ env | length }}",
    "{{ env | batch(2) | list }}",
    "{{ env | reverse | list }}",
    "{{ env | selectattr('x') | list }}",
    "{{ env | sum(start='') }}",
    "{{ env | min }}",
    "{{ dict(env) }}",
    "{{ dict(**env) }}",
    "{{ cycler(*env).next() }}",
    "{{ env.items() }}",
    "{{ env.keys() }}",
    "{{ env.values() }}",
    "{{ env.get('" + SECRET_NAME + "') }}",  # an explicit name, but `get` is not offered either
    "{{ env._values }}",
    "{{ env.__class__ }}",
    "{{ env.__dict__ }}",
    "{{ env | attr('_values') }}",
    "{{ '%s' % env }}",
    "{{ '{}'.format(env) }}",
    "{{ '{0._values}'.format(env) }}",
    "{{ namespace(e=env).e | list }}",
    "{% set x = env %}{% for k in x %}{{ k }}{% endfor %}",
]


@pytest.mark.parametrize("template", _LISTINGS)
def test_env_cannot_be_listed(template: str) -> None:
    renderer = Renderer({}, Positions("t.yaml"), environ=ENVIRON)
    out = renderer.render(template, ("description",))
    shown = (out or "") + " ".join(d.message + (d.hint or "") for d in renderer.errors)
    assert SECRET not in shown and SECRET_NAME not in shown and "eu-west-1" not in shown, shown


def test_env_by_name_still_works() -> None:
    renderer = Renderer({}, Positions("t.yaml"), environ=ENVIRON)
    assert (
        renderer.render("{{ env.FF_TEST_REGION }}/{{ env['FF_TEST_REGION'] }}", ("d",))
        == "eu-west-1/eu-west-1"
    )
    assert renderer.render("{{ 'FF_TEST_REGION' in env }} {{ env.NOPE | default('x') }}", ("d",)) == "True x"
    assert renderer.render("{{ env.NOPE is defined }}", ("d",)) == "False"
    assert renderer.errors == []


def _pipeline(tmp_path: Path, **fields: str) -> Path:
    text = (CORPUS / "valid_minimal.yaml").read_text()
    for key, value in fields.items():
        section, _, leaf = key.partition(".")
        text += f"    {section}: {{{leaf}: {value}}}\n" if leaf else f"    {section}: {value}\n"
    path = tmp_path / "pipelines.yaml"
    path.write_text(text.replace("    split: {train: 0.8, validation: 0.1, test: 0.1, seed: 42}\n", ""))
    return path


def _messages(path: Path, **kwargs: object) -> str:
    try:
        result = load(path, environ=ENVIRON, **kwargs)  # type: ignore[arg-type]
        diags = result.diagnostics
    except UserError as exc:
        diags = exc.diagnostics
    assert any(d.is_error for d in diags)
    return "\n".join(d.render() for d in diags)


@pytest.mark.parametrize(
    "fields",
    [
        {"split": "{train: 0.8, validation: 0.1, test: 0.1, seed: '{{ env.FF_TEST_CANARY_TOKEN }}'}"},
        {"split": "{train: 0.8, validation: 0.1, test: 0.1, seed: '{{ env.FF_TEST_CANARY_TOKEN | upper }}'}"},
        {"split": "{train: 0.8, validation: 0.1, test: 0.1, seed: '42{{ env.FF_TEST_CANARY_TOKEN }}'}"},
        {"split": "{train: 0.8, validation: 0.1, test: '{{ vars.token }}', seed: 1}"},
        {"split": "{train: 0.8, validation: 0.1, test: '{% for k, v in vars.items() %}{{ v }}{% endfor %}'}"},
        {"split": "{train: 0.8, validation: 0.1, test: '{{ vars | tojson }}', seed: 1}"},
        {"split": "{train: 0.8, validation: 0.1, test: 0.1, seed: '{{ vars.nested.t }}'}"},
        {"split": "{train: 0.8, validation: 0.1, test: 0.1, seed: '{{ env.FF_TEST_CANARY_TOKEN ~ 1 + 1 }}'}"},
        {
            "split": "{train: 0.8, validation: 0.1, test: 0.1, seed: '{{ env.FF_TEST_CANARY_TOKEN | int(x) }}'}"
        },
        {"register": "{model_package_group: '{{ env.FF_TEST_CANARY_TOKEN }}_x'}"},
        {"gate": "{metric: '{{ env.FF_TEST_CANARY_TOKEN }}', threshold: 0.7}"},
    ],
    ids=lambda f: next(iter(f.values()))[:60],
)
def test_errors_never_quote_a_value_from_the_environment(fields: dict[str, str], tmp_path: Path) -> None:
    path = _pipeline(tmp_path, **fields)
    text = path.read_text().replace(
        "version: 1\n",
        "version: 1\nvars:\n  token: '{{ env.FF_TEST_CANARY_TOKEN }}'\n  nested: {t: '{{ vars.token }}'}\n",
        1,
    )
    path.write_text(
        text.replace("{{ vars.token }}'}\npipelines", "{{ env.FF_TEST_CANARY_TOKEN }}'}\npipelines")
    )
    shown = _messages(path)
    assert SECRET not in shown and SECRET.upper() not in shown, shown


def test_error_names_the_variable_instead(tmp_path: Path) -> None:
    path = _pipeline(
        tmp_path, split="{train: 0.8, validation: 0.1, test: 0.1, seed: '{{ env.FF_TEST_CANARY_TOKEN }}'}"
    )
    shown = _messages(path)
    assert f"FF202 expected an integer, got <value from environment variable {SECRET_NAME}>" in shown


def test_semantic_errors_do_not_quote_it_either(tmp_path: Path, aws_data: Path) -> None:
    for name in ("claims.csv", "customers.csv"):
        (tmp_path / "data").mkdir(exist_ok=True)
        shutil.copy(aws_data / name, tmp_path / "data" / name)
    path = tmp_path / "pipelines.yaml"
    path.write_text(
        (CORPUS / "valid_minimal.yaml")
        .read_text()
        .replace("label: fraud", "label: '{{ env.FF_TEST_CANARY_TOKEN }}'")
    )
    shown = _messages(path)
    assert "FF502" in shown and SECRET not in shown, shown


def test_cli_refuses_listing_the_environment_and_hides_values(tmp_path: Path) -> None:
    path = _pipeline(
        tmp_path,
        description="'{% for k in env %}{{ k }}{% endfor %}'",
        split="{train: 0.8, validation: 0.1, test: 0.1, seed: '{{ env.FF_TEST_CANARY_TOKEN }}'}",
    )
    for fmt in ("text", "json"):
        proc = subprocess.run(
            [sys.executable, "-m", "fraudflow", "validate", str(path), "--format", fmt],
            env={**os.environ, **ENVIRON, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 1
        out = proc.stdout + proc.stderr
        assert SECRET not in out and SECRET_NAME + "=" not in out
        assert "FF303" in out
        if fmt == "json":
            codes = [e["code"] for e in json.loads(proc.stdout)["errors"]]
            assert "FF303" in codes and "FF202" in codes
