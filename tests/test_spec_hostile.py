"""Hostile pipelines.yaml: templates and YAML that try to exhaust memory or time, integers Python cannot read,
templates that try to read the whole environment. Each ends in a located FF error, exit 1: never a traceback,
a MemoryError, a kill or a hang.

The fuzz set runs `python -m fraudflow validate` as a user would, under a 2 GiB address-space limit and a time
limit, so that a missing bound shows up as a failure here rather than as a machine out of memory.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudflow.errors import UserError
from fraudflow.spec.load import load
from fraudflow.spec.template import Renderer
from fraudflow.spec.yamlload import Positions

CORPUS = Path(__file__).parent / "validate_corpus"
ROOT = Path(__file__).resolve().parents[1]
MEMORY_LIMIT = 2 << 30  # bytes of address space for each fuzz run
TIME_LIMIT = 120  # seconds; a bounded case takes about one (the machine is shared)
LOCATED = re.compile(r"^\S+?:\d+:\d+: FF\d{3} ", re.M)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _minimal(**fields: str) -> str:
    """valid_minimal.yaml with some pipeline fields replaced (values inserted as YAML text)."""
    lines = [
        "version: 1",
        "pipelines:",
        "  fraud:",
        "    data:",
        "      sources: {claims: data/claims.csv}",
        "      label: fraud",
        "    split: {train: 0.8, validation: 0.1, test: 0.1, seed: 42}",
        "    train:",
        "      hyperparameters: {max_depth: 3, eta: 0.2, subsample: 0.8, num_round: 10}",
        "    gate: {metric: roc_auc, threshold: 0.7}",
        "    register: {model_package_group: fraud-detect-xgb}",
    ]
    for key, text in fields.items():
        lines.append(f"    {key}: {text}")
    return "\n".join(lines) + "\n"


def _quoted(template: str) -> str:
    return "'" + template.replace("'", "''") + "'"


# Each: (name, YAML text). Templates go in `description`, a free string, so only the bound can stop them.
_TEMPLATES = {
    "str_times_huge": "{{ 'a' * 10**10 }}",
    "list_times_huge": "{{ [1] * 10**9 }}",
    "tuple_times_huge": "{{ (1, 2) * 10**9 }}",
    "center_width": "{{ 'x' | center(10**9) }}",
    "center_method": "{{ 'x'.center(10**9) }}",
    "ljust_method": "{{ 'x'.ljust(999999999) }}",
    "zfill_method": "{{ 'x'.zfill(999999999) }}",
    "expandtabs": "{{ ('\\t' * 100000).expandtabs(100000) }}",
    "format_filter_width": "{{ '%999999999d' | format(1) }}",
    "percent_width": "{{ '%999999999s' % 'x' }}",
    "percent_star": "{{ '%*d' % (999999999, 1) }}",
    "str_format_width": "{{ '{:>999999999}'.format(1) }}",
    "str_format_nested": "{{ '{:>{w}}'.format(1, w=999999999) }}",
    "format_map": "{{ '{a:>999999999}'.format_map({'a': 1}) }}",
    "indent_width": "{{ ('a\\n' * 100000) | indent(100000) }}",
    "wordwrap": "{{ ('a ' * 400000) | wordwrap(1, wrapstring='x' * 100000) }}",
    "replace_amplify": "{{ ('a' * 100000) | replace('a', 'b' * 100000) }}",
    "replace_empty": "{{ ('a' * 100000) | replace('', 'b' * 1000) }}",
    "join_shared": "{{ ['a' * 100000] * 10 | join('x') }}",
    "join_amplify": "{% set l = range(100000) | list %}{{ l | join('y' * 100000) }}",
    "sum_lists": "{% set l = [[1] * 100000] %}{{ (l * 10000) | sum(start=[]) | length }}",
    "batch_fill": "{{ [1] | batch(999999999, 0) | list }}",
    "slice_many": "{{ [1] | slice(999999999, 0) | list }}",
    "pow_huge": "{{ 10 ** 100000000 }}",
    "pow_4301_digits": "{{ 10 ** 4301 }}",
    "int_times_int": "{% set ns = namespace(x=10**3000) %}{% for i in range(20) %}"
    "{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x }}",
    "to_bytes": "{{ (1).to_bytes(999999999, 'big') }}",
    "concat_doubling": "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s | length }}",
    "plus_doubling": "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}"
    "{% endfor %}{{ ns.s | length }}",
    "nested_loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "nested_loops_output": "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    "literal_in_loop": "{% for i in range(100000) %}" + "y" * 2000 + "{% endfor %}",
    "macro_doubling": "{% macro d(s) %}{{ s }}{{ s }}{% endmacro %}"
    + "{{ "
    + "d(" * 40
    + "'ab'"
    + ")" * 40
    + " }}",
    "macro_exponential": "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    "macro_recursion": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "recursive_loop": "{% for x in [1, 2, 3] recursive %}{{ loop([1, 2, 3]) }}{% endfor %}",
    "lipsum": "{{ lipsum(n=10**9) }}",
    "string_of_shared_list": "{% set l = ['a' * 100000] * 10 %}{{ l | string }}",
    "tojson_shared_list": "{% set l = ['a' * 100000] * 10 %}{{ l | tojson }}",
    "map_string_shared": "{% set l = [['a'] * 100000] * 100000 %}{{ l | map('string') | join }}",
    "range_list": "{{ range(100000) | list | string * 100 }}",
    "method_scan_in_loop": "{% set big = 'ab' * 400000 %}{% for i in range(100000) %}{{ big.count('ab') }}"
    "{% endfor %}",
    "measure_in_loop": "{% set l = range(100000) | list %}{% for i in range(100000) %}{{ l | length }}{% endfor %}",
    "sort_in_loop": "{% set l = range(100000) | list %}{% for i in range(1000) %}{{ l | sort | length }}{% endfor %}",
    "int_filter_huge": "{{ ('9' * 5000) | int }}{{ 10 ** 3000 * 10 ** 3000 }}",
}

_DOCUMENTS = {
    **{f"template_{k}": _minimal(description=_quoted(v)) for k, v in _TEMPLATES.items()},
    # A template aliased 20,000 times: each use renders (and outputs) again.
    "template_aliased_20000_times": "\n".join(
        [
            "version: 1",
            "vars:",
            "  t: &t \"{{ 'z' * 1000 }}\"",
            "  many: [" + ", ".join(["*t"] * 20000) + "]",
            _minimal().split("\n", 1)[1],
        ]
    ),
    # A 2 MB anchored string aliased 5,000 times: 10 GB once expanded.
    "big_string_aliased": "version: 1\nvars:\n  big: &b "
    + "a" * 2_000_000
    + "\n  many: ["
    + ", ".join(["*b"] * 5000)
    + "]\n"
    + _minimal().split("\n", 1)[1],
    "alias_bomb": "version: 1\nvars:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"  {c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + _minimal().split("\n", 1)[1],
    "template_output_is_a_yaml_bomb": _minimal().replace(
        "eta: 0.2",
        "eta: 0.2, eval_metric: \"{{ '[&a [a, a, a, a, a, a, a, a, a, a], &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, "
        "*a], &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b], &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c], "
        "*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]' }}\"",
    ),
    "int_5000_digits": _minimal().replace("seed: 42", "seed: " + "9" * 5000),
    "int_5000_digits_tagged": _minimal().replace("seed: 42", "seed: !!int " + "9" * 5000),
    "int_5000_digits_from_template": _minimal().replace("seed: 42", "seed: \"{{ '9' * 5000 }}\""),
    "int_huge_where_float": _minimal().replace("eta: 0.2", "eta: 1" + "0" * 400),
    "float_overflow": _minimal().replace("eta: 0.2", "eta: 1e999"),
    "deep_template_expression": _minimal(description=_quoted("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}")),
    "long_attribute_name": _minimal(description=_quoted("{{ vars." + "a" * 100000 + " }}")),
}


@pytest.mark.parametrize("name", sorted(_DOCUMENTS))
def test_fuzz_set_ends_in_a_located_error(name: str, tmp_path: Path) -> None:
    path = tmp_path / "pipelines.yaml"
    path.write_text(_DOCUMENTS[name])
    proc = subprocess.run(
        [sys.executable, "-m", "fraudflow", "validate", str(path)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT,
        preexec_fn=_limit_memory,
    )
    err = proc.stderr
    assert proc.returncode == 1, (proc.returncode, err[-2000:])
    assert "Traceback" not in err and "MemoryError" not in err, err[-2000:]
    assert LOCATED.search(err), err[-2000:]
    assert max(len(line) for line in err.splitlines()) < 1000  # values are quoted short


# ------------------------------------------------------------------------------ property: template fragments

_PIECES = st.sampled_from(
    [
        "'a' * {n}",
        "[1, 2] * {n}",
        "'x' | center({n})",
        "'%{n}d' | format(1)",
        "'{{:>{n}}}'.format(1)",
        "range({n}) | list | length",
        "'ab' | replace('a', 'c' * {n})",
        "('a' * 1000) | indent({n})",
        "{n} ** {n}",
        "'y'.ljust({n})",
        "[('z' * 1000)] * {n} | join(',')",
    ]
)


@pytest.fixture
def memory_limit() -> Iterator[None]:
    """The test process may grow by 2 GiB at most while the property runs: a missing bound fails, not kills."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        current = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (current + MEMORY_LIMIT, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pieces=st.lists(
        st.tuples(_PIECES, st.sampled_from([0, 1, 10, 1000, 10**5, 10**6, 10**7, 10**9, 10**12])),
        min_size=1,
        max_size=4,
    ),
    loops=st.integers(min_value=0, max_value=3),
)
def test_any_template_renders_or_fails_with_ff3xx(memory_limit: None, pieces: list, loops: int) -> None:
    body = "".join("{{ " + p.format(n=n) + " }}" for p, n in pieces)
    for _ in range(loops):
        body = "{% for i in range(100000) %}" + body + "{% endfor %}"
    renderer = Renderer({}, Positions("t.yaml"), environ={})
    try:
        out = renderer.render(body, ("description",))
    except UserError as exc:  # the document's budget ran out: fatal, reported alone
        out, errors = None, exc.diagnostics
    else:
        errors = renderer.errors
    if out is None:
        assert [d.code for d in errors][-1:] and all(d.code.startswith("FF3") for d in errors)
        assert all(len(d.message) < 700 for d in errors)
    else:
        assert len(out) <= 5 << 20


# ------------------------------------------------------------------------- item 7: 4300-digit integers

_HUGE = "9" * 5000


@pytest.mark.parametrize(
    "args",
    [
        ["--set", f"split.seed={_HUGE}"],
        ["--set", f"train.hyperparameters.eta={_HUGE}"],
        ["--set", f"train.hyperparameters.eval_metric=[{_HUGE}]"],
        ["--set", f"data.drop.{_HUGE}=x"],
    ],
    ids=["int", "float", "in-list", "in-path"],
)
def test_set_with_a_5000_digit_integer_is_located(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fraudflow", "validate", "valid_minimal.yaml", *args],
        cwd=CORPUS,
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT,
    )
    assert proc.returncode in (1, 64), proc.stderr[-1000:]
    assert "Traceback" not in proc.stderr
    assert re.search(r"^<(--set [^>]*|command line)>: FF\d{3} ", proc.stderr, re.M), proc.stderr[-1000:]
    assert max(len(line) for line in proc.stderr.splitlines()) < 1000


def test_file_with_a_5000_digit_integer_is_ff107(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(_DOCUMENTS["int_5000_digits"])
    with pytest.raises(UserError) as exc:
        load(f)
    [d] = exc.value.diagnostics
    assert (d.code, d.line, d.path) == ("FF107", 7, "pipelines.fraud.split.seed")
    assert "5000 digits" in d.message
