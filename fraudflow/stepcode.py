"""Importing step_code/ files by path: the scripts are files, not a package (SageMaker gets them as files), and
they import their shared helpers as a sibling module (`import stepkit`, step_code/stepkit.py).

fraudflow puts no folder on sys.path (step_code/'s `train` or `preprocess` would shadow other modules): while a
file executes, `stepkit` names the stepkit.py beside it (a registered model's code/ carries its own copy), and the
previous binding is restored after.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType

KIT = "stepkit"
_kits: dict[str, ModuleType] = {}
_lock = threading.RLock()


def _exec(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _kit(path: Path) -> ModuleType:
    """stepkit.py at path, imported once per content."""
    key = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    if key not in _kits:
        _kits[key] = _exec(path, f"_fraudflow_stepkit_{key}")
    return _kits[key]


def load_file(path: Path, name: str) -> ModuleType:
    """Import the file at path as module `name` (registered in sys.modules), its sibling stepkit.py as `stepkit`."""
    kit = path.parent / f"{KIT}.py"
    with _lock:
        if not kit.is_file():
            return _exec(path, name)
        saved = sys.modules.get(KIT)
        sys.modules[KIT] = _kit(kit)
        try:
            return _exec(path, name)
        finally:
            if saved is None:
                del sys.modules[KIT]
            else:
                sys.modules[KIT] = saved


def kit() -> ModuleType:
    """step_code/stepkit.py for fraudflow's own use (validate's header reader, the label-value rules): the one
    copy of those rules, imported once, without pandas."""
    from fraudflow.plan import STEP_CODE

    with _lock:
        name = "fraudflow_step_stepkit"
        return sys.modules.get(name) or load_file(STEP_CODE / f"{KIT}.py", name)
