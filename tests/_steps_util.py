"""Helpers for the step_code tests: load a step script as a module, the reference config from pipelines.yaml,
and step inputs laid out as the local runner and SageMaker lay them out (input-dir/<source>/<file>.csv)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from types import ModuleType

from fraudflow.spec.yamlload import parse_file
from fraudflow.stepcode import load_file
from tests.conftest import AWS_DATA

REPO = Path(__file__).resolve().parents[1]
STEP_CODE = REPO / "step_code"
PIPELINE = "fraud-detect-xgb"


def load_step(name: str) -> ModuleType:
    """Import step_code/<name>.py by path (the scripts are not a package, as in SageMaker's containers), with its
    sibling stepkit.py, as the local runner does."""
    return load_file(STEP_CODE / f"{name}.py", f"_ff_test_step_{name}")


def reference_pipeline() -> dict:
    """The reference pipeline's sections straight from pipelines.yaml (templates in source paths left as is:
    a step reads its sources from input-dir/<name>, never from these paths)."""
    doc, _ = parse_file(REPO / "pipelines.yaml")  # fraudflow's own YAML 1.2 reader: `on` stays a key
    return copy.deepcopy(doc["pipelines"][PIPELINE])


def reference_config() -> dict:
    """The resolved config the plan hands to preprocess and evaluate: the sections they read."""
    p = reference_pipeline()
    p["data"]["sources"] = {
        "claims": "../shared/data/aws-synthetic-claims/claims.csv",
        "customers": "../shared/data/aws-synthetic-claims/customers.csv",
    }
    return {k: p[k] for k in ("data", "features", "split", "evaluate", "gate")}


def hyperparameter_args(extra: dict | None = None, early_stopping: bool = True) -> list[str]:
    """train.hyperparameters (+ early_stopping.rounds) as SageMaker script mode passes them: `--name value`."""
    p = reference_pipeline()["train"]
    params = dict(p["hyperparameters"])
    if early_stopping and p.get("early_stopping"):
        params["early_stopping_rounds"] = p["early_stopping"]["rounds"]
    params.update(extra or {})
    return [tok for k, v in params.items() for tok in (f"--{k}", str(v))]


def write_config(path: Path, config: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    return path


def aws_inputs(root: Path, claims: Path | None = None, customers: Path | None = None) -> Path:
    """input-dir/claims/claims.csv and input-dir/customers/customers.csv (symlinks to the shared copy unless
    replacement files are given): the shared data is never copied into the repo."""
    root.mkdir(parents=True, exist_ok=True)
    for name, given in (("claims", claims), ("customers", customers)):
        folder = root / name
        folder.mkdir(exist_ok=True)
        target = folder / f"{name}.csv"
        if target.exists() or target.is_symlink():
            target.unlink()
        if given is None:
            target.symlink_to(AWS_DATA / f"{name}.csv")
        else:
            shutil.copyfile(given, target)
    return root
