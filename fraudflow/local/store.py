"""Where a local run keeps its state: `.fraudflow/` beside pipelines.yaml.

    .fraudflow/steps/<hash>/           a step's finished outputs, content-addressed (the step cache)
    .fraudflow/runs/<run-id>/<step>    a link to the step folder that run used (fresh or reused)
    .fraudflow/runs/<run-id>/run.json  the run summary;  report.html  the run report
    .fraudflow/registry.db, registry/  the model registry (fraudflow.local.registry)

A step folder appears under steps/ only when the step succeeded (written under a temporary name, then renamed),
so a failed or interrupted step is never mistaken for a finished one.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

STATE_DIR = ".fraudflow"


class Store:
    def __init__(self, workspace: Path):
        self.root = workspace / STATE_DIR
        self.steps = self.root / "steps"
        self.runs = self.root / "runs"

    def new_run(self) -> tuple[str, Path]:
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        path = self.runs / run_id
        path.mkdir(parents=True)
        return run_id, path

    def cached(self, digest: str) -> Path | None:
        path = self.steps / digest
        return path if (path / "step.json").exists() else None

    def scratch(self, digest: str) -> Path:
        path = self.steps / f".tmp-{digest[:16]}-{secrets.token_hex(4)}"
        path.mkdir(parents=True)
        return path

    def commit(self, scratch: Path, digest: str, meta: dict[str, Any]) -> Path:
        (scratch / "step.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        final = self.steps / digest
        try:
            scratch.rename(final)
        except OSError:  # another run finished the same step first: theirs is identical, keep it
            shutil.rmtree(scratch, ignore_errors=True)
        return final

    def discard(self, scratch: Path) -> None:
        shutil.rmtree(scratch, ignore_errors=True)

    @staticmethod
    def link(run_dir: Path, name: str, target: Path) -> Path:
        link = run_dir / name
        os.symlink(os.path.relpath(target, run_dir), link, target_is_directory=True)
        return link

    def mark_latest(self, run_id: str) -> None:
        latest = self.runs / "latest"
        tmp = self.runs / f".latest-{secrets.token_hex(3)}"
        os.symlink(run_id, tmp)
        os.replace(tmp, latest)


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_digest(path: Path) -> str:
    """A digest of a file, or of every file below a folder (names and contents)."""
    if path.is_file():
        return file_digest(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(file_digest(f).encode())
    return h.hexdigest()


def step_digest(parts: Iterable[Any]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()
