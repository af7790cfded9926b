"""Every FF code the code emits has a `### FFnnn` section in docs/error-codes.md, and each code means one thing.

Fast (reads source files only). A code is "emitted" when it appears as a string literal of its own ("FF601") in
fraudflow/**/*.py or step_code/*.py: that is how UserError, Diagnostic and the step scripts' StepError get
them. The literals are found with the tokenizer, so a code named in a comment or a docstring is not counted
as emitted (but must still be documented, see test_codes_mentioned_anywhere_are_documented).
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "error-codes.md"
HEADING = re.compile(r"^### (FF\d{3}) — \S", re.M)
LITERAL = re.compile(r"""[rbuRBU]?(["'])(FF\d{3})\1""")

# Who may emit the codes of each range. A code emitted outside its range's owners is either a collision (two
# modules giving one number two meanings) or a module borrowing another's range: renumber it into your own.
OWNERS: list[tuple[int, int, tuple[str, ...]]] = [
    (
        100,
        599,
        ("fraudflow/spec/", "fraudflow/commands.py"),
    ),  # loader: YAML, schema, templates, CLI, semantic
    (612, 614, ("fraudflow/spec/scaleout.py",)),  # validate: distributed training's constraints
    (615, 619, ("step_code/train.py",)),  # distributed training at run time: the cluster, the shards
    (600, 619, ("step_code/preprocess.py",)),
    (624, 629, ("step_code/evaluate.py", "fraudflow/local/gate_check.py")),  # the gate: champion, reading
    (620, 629, ("step_code/train.py",)),
    (630, 639, ("step_code/evaluate.py",)),
    (640, 649, ("step_code/bias.py",)),
    (650, 659, ("step_code/explain.py",)),
    (660, 669, ("step_code/inference.py", "step_code/train.py")),  # serving: the script, and train's packing
    (670, 679, ("step_code/preprocess.py", "step_code/contract.py")),  # label values, formats, the contract
    (680, 684, ("fraudflow/local/tune.py",)),  # the local tune step's study and trials
    (685, 689, ("step_code/monitor.py",)),
    (690, 699, ("fraudflow/local/runner.py",)),
    (776, 777, ("fraudflow/spec/batch_checks.py",)),  # deploy.batch.schedule's semantic checks
    (700, 799, ("fraudflow/sagemaker/",)),
    (800, 849, ("fraudflow/local/registry.py", "fraudflow/local/registry_cli.py")),
    # the request-protocol answers of `fraudflow serve`: emitted by the one implementation both backends run
    (857, 859, ("step_code/inference.py",)),
    (850, 899, ("fraudflow/local/serve.py", "fraudflow/local/serving/")),
    (900, 999, ("fraudflow/",)),
]

# Codes emitted by more than one module, with the one meaning they share (checked by hand: every raise site
# of the code fits the documented section). A new module emitting an existing code must be added here, after
# checking that it means the same thing; otherwise give it a new number.
SHARED: dict[str, tuple[set[str], str]] = {
    "FF205": (
        {"fraudflow/spec/schema.py", "fraudflow/spec/semantic.py", "fraudflow/spec/gate_checks.py"},
        "missing required key (semantic: several sources without `join`; a gate with no condition)",
    ),
    "FF715": (
        {"fraudflow/sagemaker/apply.py", "fraudflow/sagemaker/commands.py"},
        "bad --param, or --param/--wait without --start",
    ),
    "FF802": (
        {"fraudflow/local/registry.py", "fraudflow/local/registry_cli.py"},
        "no such model package group (or no registry at all yet)",
    ),
    "FF851": (
        {"fraudflow/local/serve.py", "fraudflow/local/serving/app.py"},
        "nothing to serve: no registry, no endpoint, or several and none chosen",
    ),
}


def _sources() -> list[Path]:
    return sorted((REPO / "fraudflow").rglob("*.py")) + sorted((REPO / "step_code").glob("*.py"))


def _emitted() -> dict[str, set[str]]:
    """code -> the files (relative to the repository) that hold it as a string literal."""
    found: dict[str, set[str]] = {}
    for path in _sources():
        rel = path.relative_to(REPO).as_posix()
        for tok in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
            m = LITERAL.fullmatch(tok.string) if tok.type == tokenize.STRING else None
            if m:
                found.setdefault(m.group(2), set()).add(rel)
    return found


def _documented() -> list[str]:
    return HEADING.findall(DOC.read_text(encoding="utf-8"))


def _owners(code: str) -> tuple[str, ...]:
    n = int(code[2:])
    return next((owners for lo, hi, owners in OWNERS if lo <= n <= hi), ())


def test_the_scan_finds_every_subsystem() -> None:
    emitted = _emitted()
    assert len(emitted) >= 90, sorted(emitted)
    for hundred in range(1, 10):
        assert any(c.startswith(f"FF{hundred}") for c in emitted), (
            f"no FF{hundred}xx code found: is the scan broken?"
        )


def test_every_emitted_code_is_documented() -> None:
    emitted, documented = _emitted(), set(_documented())
    missing = {code: sorted(files) for code, files in sorted(emitted.items()) if code not in documented}
    assert missing == {}, f"add a `### FFnnn — title` section to docs/error-codes.md for: {missing}"


def test_every_documented_code_is_emitted() -> None:
    stale = sorted(set(_documented()) - set(_emitted()))
    assert stale == [], f"docs/error-codes.md documents codes nothing emits any more: {stale}"


def test_each_code_is_documented_once_in_its_section() -> None:
    text = DOC.read_text(encoding="utf-8")
    headings = _documented()
    assert sorted(c for c in set(headings) if headings.count(c) > 1) == []
    section = None
    for line in text.splitlines():
        m = re.match(r"^## (FF\d)xx", line)
        if m:
            section = m.group(1)
        m = re.match(r"^### (FF\d{3}) ", line)
        if m:
            assert section and m.group(1).startswith(section), f"{m.group(1)} is under ## {section}xx"


def test_codes_mentioned_anywhere_are_documented() -> None:
    """A code named in a docstring, a comment or another doc must exist too (stale references mislead)."""
    documented = set(_documented())
    texts = [*_sources(), *sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]
    unknown = {}
    for path in texts:
        if path == DOC:
            continue
        codes = set(re.findall(r"\bFF\d{3}\b", path.read_text(encoding="utf-8"))) - documented
        if codes:
            unknown[path.relative_to(REPO).as_posix()] = sorted(codes)
    assert unknown == {}


def test_each_code_is_emitted_only_within_its_range_owner() -> None:
    strays = {}
    for code, files in sorted(_emitted().items()):
        owners = _owners(code)
        outside = sorted(
            f for f in files if not any(f == o or (o.endswith("/") and f.startswith(o)) for o in owners)
        )
        if outside:
            strays[code] = outside
    assert strays == {}, f"codes emitted outside their range's owner (see OWNERS): {strays}"


def test_no_code_has_two_meanings_across_modules() -> None:
    """A code emitted by several modules must be a known, reviewed sharing of one meaning (SHARED)."""
    multi = {code: files for code, files in _emitted().items() if len(files) > 1}
    unreviewed = {c: sorted(f) for c, f in sorted(multi.items()) if c not in SHARED or SHARED[c][0] != f}
    assert unreviewed == {}, (
        "these codes are emitted by several modules: if they mean the same thing add them to SHARED, "
        f"else renumber one: {unreviewed}"
    )
    gone = sorted(c for c in SHARED if c not in multi)
    assert gone == [], f"SHARED lists codes no longer emitted by several modules: {gone}"


def test_step_scripts_share_no_code() -> None:
    """Each error code belongs to one step script (stepkit.py, which they share, emits none of its own)."""
    by_script: dict[str, set[str]] = {}
    for code, files in _emitted().items():
        for f in files:
            if f.startswith("step_code/"):
                by_script.setdefault(f, set()).add(code)
    scripts = sorted(by_script)
    assert {"step_code/preprocess.py", "step_code/train.py", "step_code/evaluate.py"} <= set(scripts)
    for i, a in enumerate(scripts):
        for b in scripts[i + 1 :]:
            assert not by_script[a] & by_script[b], (
                f"{a} and {b} both use {sorted(by_script[a] & by_script[b])}"
            )
