"""The `tune:` section, read once for both backends: the search space, the objective and their semantic checks.

A hyperparameter's valid range and type come from the schema's own `train.hyperparameters` entry (the single place
that says what XGBoost accepts), so `eta: {min: 0, ...}` fails exactly where `train.hyperparameters.eta: 0` would.
The local backend turns a `SearchSpace` into Optuna distributions (fraudflow/local/tune.py), the SageMaker compiler
into ParameterRanges (fraudflow/sagemaker/tuning.py).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["continuous", "integer", "categorical"]

# The metrics XGBoost maximises (as step_code/train.py's MAXIMIZE): every other metric is minimised.
MAXIMIZE = ("auc", "aucpr", "map", "ndcg", "pre")
# XGBoost's evaluation metric when eval_metric is not given, by objective.
DEFAULT_METRIC = {"binary:logistic": "logloss", "binary:logitraw": "logloss", "binary:hinge": "error"}
# Hyperparameters the search must not change: they define the task or the run, not the model's capacity.
NOT_TUNABLE = ("objective", "eval_metric", "seed")
# XGBoost parses its parameters as 32-bit floats: a non-zero value outside these magnitudes is refused
FLOAT32_TINY, FLOAT32_MAX = 1.1754943508222875e-38, 3.4028234663852886e38
MAX_GRID = 100_000  # combinations a grid may hold before it is refused (Optuna enumerates them)


@dataclass(frozen=True)
class Range:
    name: str
    kind: Kind
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    values: tuple[Any, ...] = ()

    def grid(self) -> list[Any]:
        """The values a grid search tries (categorical, integer, or a continuous range with a step)."""
        if self.kind == "categorical":
            return list(self.values)
        assert self.low is not None and self.high is not None
        if self.kind == "integer":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        assert self.step is not None
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]


@dataclass(frozen=True)
class Objective:
    split: str  # validation | train
    metric: str  # an XGBoost eval_metric
    direction: Literal["maximize", "minimize"]

    @property
    def name(self) -> str:  # how the tune section and SageMaker's objective spell it
        return f"{self.split}:{self.metric}"

    @property
    def logged(self) -> str:  # how XGBoost's evaluation log (and train.py's final lines) spell it
        return f"{self.split}-{self.metric}"


def default_direction(metric: str) -> Literal["maximize", "minimize"]:
    return "maximize" if metric.split("@")[0] in MAXIMIZE else "minimize"


def objective(tune: dict[str, Any]) -> Objective:
    split, _, metric = tune["objective"]["metric"].partition(":")
    return Objective(split, metric, tune["objective"].get("direction") or default_direction(metric))


def search_space(tune: dict[str, Any], hp_schema: dict[str, Any]) -> list[Range]:
    """The ranges of a checked tune section; `hp_schema` is the schema's train.hyperparameters properties."""
    return [_range(name, spec, hp_schema.get(name, {})) for name, spec in tune["hyperparameters"].items()]


def _range(name: str, spec: dict[str, Any], schema: dict[str, Any]) -> Range:
    if "values" in spec:
        return Range(name, "categorical", values=tuple(spec["values"]))
    kind: Kind = "integer" if schema.get("type") == "integer" else "continuous"
    step = spec.get("step")
    return Range(
        name,
        kind,
        low=int(spec["min"]) if kind == "integer" else float(spec["min"]),
        high=int(spec["max"]) if kind == "integer" else float(spec["max"]),
        log=spec.get("scale") == "log",
        step=None if step is None else (int(step) if kind == "integer" else float(step)),
    )


def train_hyperparameter_schema() -> dict[str, Any]:
    from fraudflow.spec.schema import load_schema

    train = load_schema()["$defs"]["pipeline"]["properties"]["train"]
    return dict(train["properties"]["hyperparameters"]["properties"])


def grid_size(space: list[Range]) -> int:
    return math.prod(len(r.grid()) for r in space)


# ---------------------------------------------------------------------------------------------- semantic checks

Problem = tuple[str, str, tuple[Any, ...], str | None]  # (code, message, path inside the pipeline, hint)
WARNINGS = frozenset({"FF539"})  # reported, but the file stays valid


def problems(cfg: dict[str, Any], parameters: dict[str, str] | None = None) -> Iterator[Problem]:
    """Every semantic problem of a schema-valid `tune:` section (FF530-FF539)."""
    tune = cfg.get("tune")
    if not tune:
        return
    hp_schema = train_hyperparameter_schema()
    space_ok = True
    for name, spec in tune["hyperparameters"].items():
        found = list(_range_problems(name, spec, hp_schema))
        space_ok = space_ok and not found
        yield from found
    yield from _objective_problems(tune, cfg.get("train") or {})
    if tune.get("parallel_trials", 1) > tune.get("max_trials", 20):
        yield (
            "FF536",
            f"parallel_trials ({tune['parallel_trials']}) is more than max_trials ({tune.get('max_trials', 20)})",
            ("tune", "parallel_trials"),
            "parallel_trials runs that many trials at once: at most max_trials",
        )
    for pname, target in (parameters or {}).items():
        hp = target.removeprefix("train.hyperparameters.")
        if hp != target and hp in tune["hyperparameters"]:
            yield (
                "FF538",
                f"parameter {pname} sets train.hyperparameters.{hp}, which tune searches: the tuner's value wins",
                ("parameters", pname),
                f"remove the parameter, or take {hp} out of tune.hyperparameters",
            )
    if space_ok and tune.get("strategy") == "grid":
        yield from _grid_problems(tune, hp_schema)


def _range_problems(name: str, spec: dict[str, Any], hp_schema: dict[str, Any]) -> Iterator[Problem]:
    path = ("tune", "hyperparameters", name)
    schema = hp_schema.get(name)
    if schema is None or name in NOT_TUNABLE:
        close = difflib.get_close_matches(name, [n for n in hp_schema if n not in NOT_TUNABLE], n=1)
        yield (
            "FF530",
            f"{name!r} is not a hyperparameter the tuner can search"
            + (" (it defines the task, not the model)" if name in NOT_TUNABLE else ""),
            path,
            (f"did you mean {close[0]!r}? " if close else "")
            + "tune searches train.hyperparameters' XGBoost parameters (see docs/pipelines-yaml.md)",
        )
        return
    kind = schema.get("type")
    allowed = schema.get("enum")
    if "values" in spec:
        for i, value in enumerate(spec["values"]):
            why = _invalid(value, schema)
            if why:
                yield ("FF532", f"{name} value {value!r} {why}", (*path, "values", i), _valid_text(schema))
        if len(set(map(repr, spec["values"]))) != len(spec["values"]):
            yield ("FF533", f"{name} lists a value twice", (*path, "values"), "list each value once")
        return
    if allowed is not None or kind not in ("integer", "number"):
        yield (
            "FF532",
            f"{name} is categorical: give its values, not a range",
            path,
            f"e.g. {name}: {{values: [{', '.join(map(str, (allowed or [])[:2]))}]}}",
        )
        return
    for key in ("min", "max", "step"):
        if key in spec and kind == "integer" and not _is_int(spec[key]):
            yield (
                "FF532",
                f"{name} is an integer hyperparameter: {key} {spec[key]!r} is not an integer",
                (*path, key),
                "integer hyperparameters stay integers: use whole numbers",
            )
            return
    for key in ("min", "max"):
        why = _invalid(spec[key], schema)
        if why:
            yield ("FF531", f"{name} {key} {spec[key]!r} {why}", (*path, key), _valid_text(schema))
            return
    low, high = spec["min"], spec["max"]
    if low >= high:
        yield (
            "FF533",
            f"{name}: min ({low}) must be below max ({high})",
            path,
            "to fix a value, set it in train.hyperparameters instead",
        )
        return
    if spec.get("scale") == "log":
        if low <= 0:
            yield (
                "FF534",
                f"{name}: a log scale needs min > 0, got {low}",
                (*path, "min"),
                "use scale: linear, or a positive min",
            )
        if "step" in spec:
            yield (
                "FF534",
                f"{name}: a log scale has no step",
                (*path, "step"),
                "drop step, or use scale: linear",
            )
    elif "step" in spec and spec["step"] > high - low:
        yield ("FF533", f"{name}: step {spec['step']} is wider than the range", (*path, "step"), None)


def _objective_problems(tune: dict[str, Any], train: dict[str, Any]) -> Iterator[Problem]:
    obj = objective(tune)
    hps = train.get("hyperparameters") or {}
    metrics = hps.get("eval_metric")
    logged = (
        [metrics]
        if isinstance(metrics, str)
        else list(metrics)
        if metrics
        else [DEFAULT_METRIC.get(hps.get("objective", "binary:logistic"), "logloss")]
    )
    if obj.metric not in logged:
        yield (
            "FF535",
            f"objective {obj.name}: XGBoost does not log {obj.metric!r} for this pipeline (it logs "
            f"{', '.join(logged)})",
            ("tune", "objective", "metric"),
            f"add {obj.metric!r} to train.hyperparameters.eval_metric, or tune {obj.split}:{logged[-1]}",
        )
    given = tune["objective"].get("direction")
    if given and given != default_direction(obj.metric):
        yield (
            "FF535",
            f"objective {obj.name} with direction {given}: a better {obj.metric} is "
            f"{'higher' if default_direction(obj.metric) == 'maximize' else 'lower'}",
            ("tune", "objective", "direction"),
            f"use direction: {default_direction(obj.metric)} (or leave it out)",
        )


def _grid_problems(tune: dict[str, Any], hp_schema: dict[str, Any]) -> Iterator[Problem]:
    space = search_space(tune, hp_schema)
    for r in space:
        if r.kind == "continuous" and r.step is None:
            yield (
                "FF537",
                f"grid cannot enumerate the continuous range of {r.name}",
                ("tune", "hyperparameters", r.name),
                "give it a step (e.g. step: 0.05) or values, or use strategy: bayesian or random",
            )
            return
    size = grid_size(space)
    if size > MAX_GRID:
        yield (
            "FF537",
            f"the grid holds {size} combinations (at most {MAX_GRID})",
            ("tune", "strategy"),
            None,
        )
    elif size != tune.get("max_trials", 20):
        more = size > tune.get("max_trials", 20)
        yield (
            "FF539",
            f"the grid holds {size} combinations; max_trials is {tune.get('max_trials', 20)}, so "
            + ("a random subset of the grid is tried" if more else f"only {size} trials run"),
            ("tune", "max_trials"),
            f"set max_trials: {size} to try each combination once",
        )


def _is_int(value: Any) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        or (isinstance(value, float) and value.is_integer())
    )


def _invalid(value: Any, schema: dict[str, Any]) -> str | None:
    """Why XGBoost (as the schema's train.hyperparameters entry says) would refuse the value, or None."""
    kind = schema.get("type")
    if "enum" in schema:
        return None if value in schema["enum"] else "is not one of its values"
    if kind in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "is not a number"
        if kind == "integer" and not _is_int(value):
            return "is not an integer (integer hyperparameters stay integers)"
        if value and not FLOAT32_TINY <= abs(value) <= FLOAT32_MAX:
            return "is not a 32-bit float, as XGBoost reads its parameters"
        if "minimum" in schema and value < schema["minimum"]:
            return f"is below XGBoost's minimum {schema['minimum']}"
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            return f"must be above {schema['exclusiveMinimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"is above XGBoost's maximum {schema['maximum']}"
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            return f"must be below {schema['exclusiveMaximum']}"
        return None
    if kind == "boolean":
        return None if isinstance(value, bool) else "is not true or false"
    return None if isinstance(value, str) else "is not a string"


def _valid_text(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "its values: " + ", ".join(map(str, schema["enum"]))
    low = (
        f"> {schema['exclusiveMinimum']}"
        if "exclusiveMinimum" in schema
        else f">= {schema['minimum']}"
        if "minimum" in schema
        else ""
    )
    high = (
        f"< {schema['exclusiveMaximum']}"
        if "exclusiveMaximum" in schema
        else f"<= {schema['maximum']}"
        if "maximum" in schema
        else ""
    )
    kind = "an integer" if schema.get("type") == "integer" else "a number"
    return f"XGBoost accepts {kind} " + " and ".join(p for p in (low, high) if p)
