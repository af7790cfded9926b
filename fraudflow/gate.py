"""The gate's conditions: what must hold of evaluation.json and of the bias report before a model is registered.

One representation for both backends: the local runner reads the numbers at each condition's `json_path` and
calls `Condition.holds`; the SageMaker compiler turns the same bounds into the Condition step's
`Std:JsonGet` comparisons. The one-metric form (`gate: {metric, threshold}`) is one condition among them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

EVALUATION_METRICS = ("roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy")
BIAS_STAGES = {
    "pre_training_metrics": "pre_training_bias_metrics",
    "post_training_metrics": "post_training_bias_metrics",
}
# evaluate.py writes the champion comparison's judged quantity minus the required improvement here: >= 0 passes
# (0 when there is no champion to beat). The bounds the user chose are applied by evaluate, so the number the
# gate compares is the same on both backends.
CHAMPION_MARGIN = "champion.margin"
EVALUATION, BIAS = (
    "evaluation",
    "bias",
)  # where a condition's number is: evaluation.json or the bias analysis.json


def metric_json_path(metric: str) -> str:
    """Where each evaluation metric sits in evaluation.json (evaluate.py writes it; the gate and JsonGet read it)."""
    return f"classification_metrics.{metric}.value"


@dataclass(frozen=True)
class Condition:
    metric: str
    source: str  # EVALUATION | BIAS
    json_path: str
    min: float | None = None
    max: float | None = None
    max_abs: float | None = None
    where: str = "gate"  # the spec path that declared it (errors, reports)
    parameter: str | None = None  # a pipeline parameter may set `min` (the spec path it maps: gate.threshold)
    champion: bool = False

    @property
    def label(self) -> str:
        return f"champion {self.metric}" if self.champion else self.metric

    def bounds(self) -> list[tuple[str, float]]:
        """(operator, bound) pairs, all of which must hold: `>=` min, `<=` max, `|x| <=` max_abs."""
        out = [(">=", self.min)] if self.min is not None else []
        out += [("<=", self.max)] if self.max is not None else []
        out += [("|x| <=", self.max_abs)] if self.max_abs is not None else []
        return [(op, float(v)) for op, v in out if v is not None]

    @property
    def requirement(self) -> str:
        if self.champion:
            return "beats the champion (margin >= 0)"
        return " and ".join(f"{op} {_num(v)}" for op, v in self.bounds())

    def holds(self, value: Any, bounds: list[tuple[str, float]] | None = None) -> bool:
        """A missing, non-numeric or non-finite value (a bias metric Clarify could not compute) never passes."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        for op, bound in bounds if bounds is not None else self.bounds():
            if (op == ">=" and value < bound) or (op == "<=" and value > bound):
                return False
            if op == "|x| <=" and abs(value) > bound:
                return False
        return True


def conditions(cfg: dict[str, Any]) -> tuple[Condition, ...]:
    """Every condition of the pipeline's `gate`, in the order declared: `threshold` first, then `conditions`,
    then `champion`."""
    gate = cfg["gate"]
    out: list[Condition] = []
    if gate.get("threshold") is not None:
        metric = gate.get("metric", "roc_auc")
        out.append(
            Condition(
                metric,
                EVALUATION,
                metric_json_path(metric),
                min=float(gate["threshold"]),
                where="gate.threshold",
                parameter="gate.threshold",
            )
        )
    for i, c in enumerate(gate.get("conditions") or []):
        metric = c["metric"]
        source, path = (
            (EVALUATION, metric_json_path(metric))
            if metric in EVALUATION_METRICS
            else bias_location(cfg, metric)
        )
        out.append(
            Condition(
                metric,
                source,
                path,
                min=_bound(c.get("min")),
                max=_bound(c.get("max")),
                max_abs=_bound(c.get("max_abs")),
                where=f"gate.conditions[{i}]",
            )
        )
    champ = gate.get("champion")
    if champ is not None:
        metric = champ.get("metric", "roc_auc")
        out.append(
            Condition(metric, EVALUATION, CHAMPION_MARGIN, min=0.0, where="gate.champion", champion=True)
        )
    return tuple(out)


def bias_location(cfg: dict[str, Any], metric: str) -> tuple[str, str]:
    """Where the bias step's analysis.json (Clarify's layout) holds the metric: its stage, the facet, and the metric's
    position among those the config asks for, sorted by name (Clarify's smclarify sorts them; bias.py does too)."""
    bias = cfg.get("bias") or {}
    for key, stage in BIAS_STAGES.items():
        names = sorted(bias.get(key) or [])
        if metric in names:
            return BIAS, f"{stage}.facets.{_key(str(bias['facet']))}[0].metrics[{names.index(metric)}].value"
    raise KeyError(f"bias metric {metric!r} is not computed by the bias step")  # validate reports it (FF551)


def champion_config(cfg: dict[str, Any]) -> dict[str, Any] | None:
    """What evaluate.py needs to compare with the champion: the settings (defaults filled) and the group."""
    champ = cfg["gate"].get("champion")
    if champ is None:
        return None
    return {
        "metric": champ.get("metric", "roc_auc"),
        "min_improvement": float(champ.get("min_improvement", 0.0)),
        "relative": bool(champ.get("relative", False)),
        "use_interval": bool(champ.get("use_interval", False)),
        "model_package_group": cfg["register"]["model_package_group"],
    }


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]")


def _key(name: str) -> str:
    return name if _IDENT.match(name) else "['" + name.replace("\\", "\\\\").replace("'", "\\'") + "']"


def json_get(doc: Any, path: str) -> Any:
    """The value at a JsonGet path (`a.b[0].c`, `a['odd name']`), or None where the document has none."""
    pos, node = 0, doc
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m:
            return None
        name, index, key = m.groups()
        pos = m.end()
        if index is not None:
            node = node[int(index)] if isinstance(node, list) and int(index) < len(node) else None
        else:
            k = name if name is not None else re.sub(r"\\(.)", r"\1", key)
            node = node.get(k) if isinstance(node, dict) else None
        if node is None:
            return None
    return node


def _bound(v: Any) -> float | None:
    return None if v is None else float(v)


def _num(v: float) -> str:
    return f"{v:g}"
