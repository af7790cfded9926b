"""Local stand-in for SageMaker Clarify's bias job: pre- and post-training bias metrics in Clarify's layout.

Definitions follow Clarify's open-source metric library (smclarify, src/smclarify/bias/metrics/): facet d is the
sensitive group (rows whose facet value is in `facet_values`), facet a is everyone else, and a "positive" outcome
is a label in `label_values`. Pre-training metrics use the labels of ALL rows (train + validation + test);
post-training metrics use the test rows and the evaluate step's scores (predicted positive when score > threshold).
Where Clarify divides by zero it yields 0 for 0/0 and +/-infinity otherwise: we keep its 0 (with a note) and write
null with a note instead of infinity, so analysis.json is strict JSON.

Self-contained (standard library, numpy, pandas; works on pandas 1.x / numpy 1.x) as docs/step-contract.md asks.

Error codes: FF640 config unreadable, FF641 bad `bias` settings, FF642 feature schema, FF643 split files,
FF644 predictions (missing, wrong rows), FF645 non-numeric facet/label values, FF646 facet column absent,
FF647 empty facet group, FF648 no row has a positive label.
"""

from __future__ import annotations

import argparse
import difflib
import glob
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import stepkit
from stepkit import StepError

SPLITS = ("train", "validation", "test")
INF = float("inf")

PRE_DESCRIPTIONS = {
    "CI": "Class Imbalance (CI)",
    "DPL": "Difference in Positive Proportions in Labels (DPL)",
    "KL": "Kullback-Liebler Divergence (KL)",  # sic, as Clarify spells it
    "JS": "Jensen-Shannon Divergence (JS)",
    "LP": "L-p Norm (LP)",
    "TVD": "Total Variation Distance (TVD)",
    "KS": "Kolmogorov-Smirnov Distance (KS)",
    "CDDL": "Conditional Demographic Disparity in Labels (CDDL)",
}
POST_DESCRIPTIONS = {
    "DPPL": "Difference in Positive Proportions in Predicted Labels (DPPL)",
    "DI": "Disparate Impact (DI)",
    "DCA": "Difference in Conditional Acceptance (DCA)",
    "DCR": "Difference in Conditional Rejection (DCR)",
    "RD": "Recall Difference (RD)",
    "SD": "Specificity Difference (SD)",
    "DAR": "Difference in Acceptance Rates (DAR)",
    "DRR": "Difference in Rejection Rates (DRR)",
    "AD": "Accuracy Difference (AD)",
    "CDDPL": "Conditional Demographic Disparity in Predicted Labels (CDDPL)",
    "TE": "Treatment Equality (TE)",
    "FT": "Flip Test (FT)",
    "GE": "Generalized Entropy (GE)",
}
REQUIRED = ("facet", "facet_values", "label_values", "pre_training_metrics", "post_training_metrics",
            "probability_threshold")  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# Metric arithmetic (Clarify's definitions)


class Calc:
    """Collects the notes of one metric's divisions by zero, with Clarify's `divide` semantics."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def div(self, a: float, b: float, what: str) -> float:
        if b == 0:
            if a == 0:
                self.notes.append(f"{what} is 0/0, taken as 0 as Clarify does")
                return 0.0
            self.notes.append(f"{what} divides by zero")
            return -INF if a < 0 else INF
        return a / b


class Groups:
    """Boolean masks of one evaluation: facet d, positive labels and (post-training) predicted positives."""

    def __init__(
        self, d: np.ndarray, y: np.ndarray, yhat: np.ndarray | None = None, group: np.ndarray | None = None
    ) -> None:
        self.d, self.y, self.yhat = d, y, yhat
        self.group = group  # Clarify's group_variable, for CDDL/CDDPL

    @property
    def pred(self) -> np.ndarray:
        """Predicted positives, which the post-training metrics read (they run only with predictions)."""
        if self.yhat is None:
            raise ValueError("a post-training metric needs predictions")
        return self.yhat

    def count(self, *masks: np.ndarray) -> int:
        out = np.ones(len(self.d), dtype=bool)
        for m in masks:
            out &= m
        return int(out.sum())


def _diff(x: float, y: float, calc: Calc) -> float:
    # Clarify: when both sides are +infinity the difference is taken as 0.
    if x == y and x == INF:
        calc.notes.append("both sides infinite, taken as 0 as Clarify does")
        return 0.0
    return x - y


def _label_pdfs(g: Groups) -> tuple[np.ndarray, np.ndarray]:
    """Clarify's pdfs_aligned_nonzero: label distributions of a and d over the values present (non-zero) in both."""
    a, d = ~g.d, g.d
    pa = [g.count(a, ~g.y) / a.sum(), g.count(a, g.y) / a.sum()]
    pd_ = [g.count(d, ~g.y) / d.sum(), g.count(d, g.y) / d.sum()]
    keep = [i for i in range(2) if pa[i] != 0 and pd_[i] != 0]
    return np.array([pa[i] for i in keep]), np.array([pd_[i] for i in keep])


def _need_common(pa: np.ndarray, calc: Calc) -> bool:
    if len(pa) == 0:
        calc.notes.append("no label value occurs in both facets")
        return False
    return True


def m_ci(g: Groups, c: Calc) -> float:
    na, nd = int((~g.d).sum()), int(g.d.sum())
    return (na - nd) / (na + nd)


def _dpl(g: Groups, pos: np.ndarray, c: Calc) -> float:
    a, d = ~g.d, g.d
    return g.count(a, pos) / a.sum() - g.count(d, pos) / d.sum()


def m_dpl(g: Groups, c: Calc) -> float:
    return _dpl(g, g.y, c)


def m_kl(g: Groups, c: Calc) -> float | None:
    pa, pd_ = _label_pdfs(g)
    return float(np.sum(pa * np.log(pa / pd_))) if _need_common(pa, c) else None


def m_js(g: Groups, c: Calc) -> float | None:
    pa, pd_ = _label_pdfs(g)
    if not _need_common(pa, c):
        return None
    p = 0.5 * (pa + pd_)
    return float(0.5 * (np.sum(pa * np.log(pa / p)) + np.sum(pd_ * np.log(pd_ / p))))


def _lp(g: Groups, c: Calc, order: float) -> float | None:
    pa, pd_ = _label_pdfs(g)
    return float(np.linalg.norm(pa - pd_, order)) if _need_common(pa, c) else None


def m_lp(g: Groups, c: Calc) -> float | None:
    return _lp(g, c, 2)


def m_tvd(g: Groups, c: Calc) -> float | None:
    v = _lp(g, c, 1)
    return None if v is None else 0.5 * v


def m_ks(g: Groups, c: Calc) -> float | None:
    return _lp(g, c, np.inf)


def _cdd(g: Groups, pos: np.ndarray, c: Calc) -> float | None:
    """Clarify's CDD: per group, share of d among negatives minus share of d among positives, count-weighted."""
    if g.group is None:
        c.notes.append("needs bias.group_variable")
        return None
    if not pos.any() or pos.all():
        c.notes.append("needs both positive and negative outcomes")
        return None
    total, weighted = 0, 0.0
    for value in np.unique(g.group):
        in_g = g.group == value
        n1, n0 = g.count(pos, in_g), g.count(~pos, in_g)
        share_pos = g.count(pos, g.d, in_g) / n1 if n1 else 0.0
        share_neg = g.count(~pos, g.d, in_g) / n0 if n0 else 0.0
        weighted += int(in_g.sum()) * (share_neg - share_pos)
        total += int(in_g.sum())
    return c.div(weighted, total, "CDD")


def m_cddl(g: Groups, c: Calc) -> float | None:
    return _cdd(g, g.y, c)


def m_dppl(g: Groups, c: Calc) -> float:
    return _dpl(g, g.pred, c)


def m_di(g: Groups, c: Calc) -> float:
    a, d = ~g.d, g.d
    qa = g.count(a, g.pred) / a.sum()
    qd = g.count(d, g.pred) / d.sum()
    return c.div(qd, qa, "DI: predicted positive rate of facet a")


def _rate(g: Groups, num: tuple, den: tuple, c: Calc, what: str) -> float:
    return c.div(g.count(*num), g.count(*den), what)


def m_dca(g: Groups, c: Calc) -> float:
    a, d, y, yh = ~g.d, g.d, g.y, g.pred
    ca = _rate(g, (y, a), (yh, a), c, "conditional acceptance of a (labelled/predicted positives)")
    cd = _rate(g, (y, d), (yh, d), c, "conditional acceptance of d (labelled/predicted positives)")
    return _diff(ca, cd, c)


def m_dcr(g: Groups, c: Calc) -> float:
    a, d, y, yh = ~g.d, g.d, g.y, g.pred
    ra = _rate(g, (~y, a), (~yh, a), c, "conditional rejection of a (labelled/predicted negatives)")
    rd = _rate(g, (~y, d), (~yh, d), c, "conditional rejection of d (labelled/predicted negatives)")
    return _diff(rd, ra, c)


def m_rd(g: Groups, c: Calc) -> float:
    a, d, y, yh = ~g.d, g.d, g.y, g.pred
    rec_a = _rate(g, (y, yh, a), (y, a), c, "recall of a")
    rec_d = _rate(g, (y, yh, d), (y, d), c, "recall of d")
    return _diff(rec_a, rec_d, c)


def m_sd(g: Groups, c: Calc) -> float:
    a, d, y, yh = ~g.d, g.d, g.y, g.pred
    sp_a = _rate(g, (~y, ~yh, a), (~y, a), c, "specificity of a")
    sp_d = _rate(g, (~y, ~yh, d), (~y, d), c, "specificity of d")
    return _diff(sp_d, sp_a, c)


def m_dar(g: Groups, c: Calc) -> float:
    a, d, y, yh = ~g.d, g.d, g.y, g.pred
    ar_a = _rate(g, (y, yh, a), (yh, a), c, "precision of a")
    ar_d = _rate(g, (y, yh, d), (yh, d), c, "precision of d")
    return _diff(ar_a, ar_d, c)


def m_drr(g: Groups, c: Calc) -> float:
    a, d, y, yh = ~g.d, g.d, g.y, g.pred
    rr_a = _rate(g, (~y, ~yh, a), (~yh, a), c, "rejection rate of a")
    rr_d = _rate(g, (~y, ~yh, d), (~yh, d), c, "rejection rate of d")
    return _diff(rr_d, rr_a, c)


def m_ad(g: Groups, c: Calc) -> float:
    a, d, y, yh = ~g.d, g.d, g.y, g.pred
    correct = y == yh
    acc_a = _rate(g, (correct, a), (a,), c, "accuracy of a")
    acc_d = _rate(g, (correct, d), (d,), c, "accuracy of d")
    return _diff(acc_a, acc_d, c)


def m_te(g: Groups, c: Calc) -> float:
    a, d, y, yh = ~g.d, g.d, g.y, g.pred
    tau_a = _rate(g, (y, ~yh, a), (~y, yh, a), c, "false negatives/false positives of a")
    tau_d = _rate(g, (y, ~yh, d), (~y, yh, d), c, "false negatives/false positives of d")
    return _diff(tau_d, tau_a, c)


def m_cddpl(g: Groups, c: Calc) -> float | None:
    return _cdd(g, g.pred, c)


def m_ge(g: Groups, c: Calc) -> float | None:
    """Generalized entropy index with alpha = 2 over benefits yhat - y + 1 (Clarify's choice of alpha)."""
    benefit = g.pred.astype(float) - g.y.astype(float) + 1.0
    mean = benefit.mean()
    if mean == 0:
        c.notes.append("every prediction is a false negative")
        return None
    alpha = 2.0
    return float(((benefit / mean) ** alpha - 1).sum() / (len(benefit) * alpha * (alpha - 1)))


def m_ft(g: Groups, c: Calc) -> None:
    # Clarify's flip test fits a k-NN on facet a's feature rows: a SageMaker-only metric here.
    c.notes.append("the flip test is computed only by SageMaker Clarify, not locally")
    return None


PRE_METRICS: dict[str, Callable[[Groups, Calc], float | None]] = {
    "CI": m_ci,
    "DPL": m_dpl,
    "KL": m_kl,
    "JS": m_js,
    "LP": m_lp,
    "TVD": m_tvd,
    "KS": m_ks,
    "CDDL": m_cddl,
}
POST_METRICS: dict[str, Callable[[Groups, Calc], float | None]] = {
    "DPPL": m_dppl,
    "DI": m_di,
    "DCA": m_dca,
    "DCR": m_dcr,
    "RD": m_rd,
    "SD": m_sd,
    "DAR": m_dar,
    "DRR": m_drr,
    "AD": m_ad,
    "CDDPL": m_cddpl,
    "TE": m_te,
    "FT": m_ft,
    "GE": m_ge,
}


def compute(names: Sequence[str], table: dict, descriptions: dict, g: Groups) -> list[dict]:
    """Clarify's metric list: name, description, value (null when undefined) and our note when there is one."""
    out = []
    for name in names:
        calc = Calc()
        value = table[name](g, calc)
        entry: dict = {"name": name, "description": descriptions[name], "value": value}
        if value is not None:
            value = float(value)
            if math.isinf(value):
                calc.notes.append(f"value is {'+' if value > 0 else '-'}infinity, written as null")
                value = None
            entry["value"] = value
        if value is None and not calc.notes:
            calc.notes.append("undefined for this data")
        if calc.notes:
            entry["note"] = "; ".join(dict.fromkeys(calc.notes))
        out.append(entry)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Inputs


class Settings:
    """The `bias` config, checked. (Plain classes, not dataclasses: the runner may load this file without
    registering it in sys.modules, which dataclasses need under postponed annotations.)"""

    def __init__(self, **values: Any) -> None:
        self.label: str = values["label"]
        self.facet: str = values["facet"]
        self.facet_values: list = values["facet_values"]
        self.label_values: list = values["label_values"]
        self.encoded_labels: list = values["label_values"]  # as the split CSVs hold them (analyse sets them)
        self.pre: list[str] = values["pre"]
        self.post: list[str] = values["post"]
        self.threshold: float = values["threshold"]
        self.group_variable: str | None = values["group_variable"]


def load_settings(path: str) -> Settings:
    config = stepkit.read_config(path, "FF640")
    bias = config.get("bias")
    if not isinstance(bias, dict):
        raise StepError("FF641", "config has no `bias` section", file=path)
    label = (config.get("data") or {}).get("label")
    # The plan passes every key (the schema's defaults filled in): a missing one is a config error, not a default.
    for key in REQUIRED:
        if key not in bias:
            raise StepError("FF641", f"bias.{key} is required", file=path)
    pre = list(bias["pre_training_metrics"])
    post = list(bias["post_training_metrics"])
    for names, known, key in ((pre, PRE_METRICS, "pre"), (post, POST_METRICS, "post")):
        unknown = [n for n in names if n not in known]
        if unknown:
            raise StepError(
                "FF641",
                f"bias.{key}_training_metrics: unknown metric {', '.join(unknown)}",
                file=path,
                hint=f"known {key}-training metrics: {', '.join(known)}",
            )
    threshold = float(bias["probability_threshold"])
    return Settings(
        label=str(label) if label else "label",
        facet=str(bias["facet"]),
        facet_values=_as_list(bias["facet_values"]),
        label_values=_as_list(bias["label_values"]),
        pre=pre,
        post=post,
        threshold=threshold,
        group_variable=bias.get("group_variable"),
    )


def _as_list(value: object) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]  # noqa: UP038 (runs on Python 3.8 too)


def load_schema(data_dir: str) -> tuple[str | None, list[str]]:
    path = os.path.join(data_dir, "schema", "feature_schema.json")
    try:
        with open(path, encoding="utf-8") as fh:
            schema = json.load(fh)
    except FileNotFoundError:
        raise StepError(
            "FF642", "feature schema not found (is --data-dir the preprocess output?)", file=path
        ) from None
    except json.JSONDecodeError as exc:
        raise StepError(
            "FF642", f"feature schema is not valid JSON: {exc.msg}", file=path, line=exc.lineno
        ) from None
    # preprocess.py writes `features`; `feature_names` is accepted too.
    names = schema.get("features", schema.get("feature_names"))
    if not isinstance(names, list) or not names:
        raise StepError("FF642", "feature schema has no `features` list", file=path)
    return schema.get("label"), [str(n) for n in names]


def read_split(data_dir: str, split: str, n_features: int, keep: list[int] | None = None) -> np.ndarray:
    """A header-less split CSV (label first) as a float matrix: only the columns `keep` (0-based, ascending) when
    given. The metrics read the label and facet columns only; parsing the other ~50 cost seconds and, at 10M rows,
    gigabytes (a value there that is not a number goes unnoticed here; train and evaluate refuse it)."""
    path = os.path.join(data_dir, split, f"{split}.csv")
    parts = sorted(glob.glob(os.path.join(data_dir, split, "part-*.csv")))  # split.train_files > 1
    if not os.path.exists(path) and parts:  # the shards in name order are the split's rows
        return np.vstack([read_split_file(p, split, n_features, keep) for p in parts])
    if not os.path.exists(path):
        raise StepError("FF643", f"{split} split not found", file=path)
    return read_split_file(path, split, n_features, keep)


def read_split_file(path: str, split: str, n_features: int, keep: list[int] | None = None) -> np.ndarray:
    try:
        width = pd.read_csv(path, header=None, nrows=1).shape[1]
        frame = pd.read_csv(
            path, header=None, dtype=np.float64, usecols=keep if width == n_features + 1 else None
        )
    except pd.errors.EmptyDataError:
        return np.empty((0, n_features + 1 if keep is None else len(keep)))
    except ValueError as exc:
        raise StepError("FF643", f"{split} split is not numeric: {exc}", file=path) from None
    if width != n_features + 1:
        raise StepError(
            "FF643",
            f"{split} split has {width} columns, the feature schema needs {n_features + 1} "
            "(label then features)",
            file=path,
            line=1,
        )
    return frame.to_numpy()


def kept_columns(settings: Settings, names: list[str], file: str) -> list[int]:
    """The split columns the metrics read: the label (0), the facet and the group variable (1 + feature index)."""
    facets = [settings.facet, *([settings.group_variable] if settings.group_variable else [])]
    return [0, *sorted({facet_index(_replace_facet(settings, f), names, file) + 1 for f in facets})]


def read_predictions(pred_dir: str, test: np.ndarray) -> np.ndarray:
    """Scores for the test rows, checked against test.csv: same row count and labels in the same order."""
    path = os.path.join(pred_dir, "predictions.csv")
    if not os.path.exists(path):
        raise StepError(
            "FF644", "predictions not found (is --predictions-dir the evaluate output?)", file=path
        )
    frame = pd.read_csv(path)
    missing = [c for c in ("label", "score") if c not in frame.columns]
    if missing:
        raise StepError("FF644", f"predictions lack column(s) {', '.join(missing)}", file=path, line=1)
    if len(frame) != len(test):
        raise StepError("FF644", f"{len(frame)} predictions for {len(test)} test rows", file=path)
    labels = pd.to_numeric(frame["label"], errors="coerce").to_numpy(dtype=float)
    mismatch = np.flatnonzero(labels != test[:, 0])
    if len(mismatch):
        raise StepError(
            "FF644",
            "predictions are not for test.csv's rows in order (labels differ)",
            file=path,
            line=int(mismatch[0]) + 2,
        )
    scores = pd.to_numeric(frame["score"], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(scores))
    if len(bad):
        raise StepError("FF644", "score is not a number", file=path, line=int(bad[0]) + 2)
    return scores


def value_mask(column: np.ndarray, values: list, what: str, file: str) -> np.ndarray:
    """Rows whose numeric value is one of `values` (given as numbers or numeric strings, e.g. 1 or "1")."""
    try:
        wanted = [float(v) for v in values]
    except (TypeError, ValueError):
        raise StepError(
            "FF645", f"{what} {values} are not numbers, but the encoded data is numeric", file=file
        ) from None
    return np.isin(column, wanted)


def facet_index(settings: Settings, names: list[str], file: str) -> int:
    if settings.facet in names:
        return names.index(settings.facet)
    close = difflib.get_close_matches(settings.facet, names, n=5, cutoff=0.5)
    stem = settings.facet.split("_")[0]
    close += [n for n in names if stem and n.startswith(stem) and n not in close][:5]
    hint = f"columns with a close name: {', '.join(close)}" if close else f"columns: {', '.join(names)}"
    raise StepError(
        "FF646", f"facet column {settings.facet!r} is not in the encoded data", file=file, hint=hint
    )


def fmt_values(values: list) -> str:
    """Clarify's value_or_threshold string: values joined by commas, integral floats without '.0'."""
    out = []
    for v in values:
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        out.append(str(v))
    return ",".join(out)


# ---------------------------------------------------------------------------------------------------------------
# The step


def build_groups(
    settings: Settings, names: list[str], rows: np.ndarray, yhat: np.ndarray | None, where: str, file: str
) -> Groups:
    col = facet_index(settings, names, file)
    d = value_mask(rows[:, col + 1], settings.facet_values, "bias.facet_values", file)
    y = value_mask(rows[:, 0], settings.encoded_labels, "bias.label_values", file)
    if not d.any() or d.all():
        side = "facet d (bias.facet_values)" if not d.any() else "facet a (the other rows)"
        present = ", ".join(fmt_values([v]) for v in np.unique(rows[:, col + 1]).tolist()[:10])
        raise StepError(
            "FF647",
            f"{side} is empty among the {len(rows)} {where}: "
            f"{settings.facet} in {settings.facet_values} selects {int(d.sum())} of them",
            file=file,
            hint=f"values present in {settings.facet}: {present}",
        )
    group = None
    if settings.group_variable:
        group = rows[:, facet_index(_replace_facet(settings, settings.group_variable), names, file) + 1]
    return Groups(d=d, y=y, yhat=yhat, group=group)


def _replace_facet(settings: Settings, name: str) -> Settings:
    return Settings(**{**settings.__dict__, "facet": name})


def group_stats(g: Groups) -> dict:
    def side(mask: np.ndarray) -> dict:
        n = int(mask.sum())
        out: dict[str, Any] = {"rows": n, "positive_labels": g.count(mask, g.y)}
        out["positive_label_rate"] = out["positive_labels"] / n if n else None
        if g.yhat is not None:
            out["predicted_positives"] = g.count(mask, g.yhat)
            out["predicted_positive_rate"] = out["predicted_positives"] / n if n else None
        return out

    return {"facet_d": side(g.d), "facet_a": side(~g.d)}


def analyse(settings: Settings, data_dir: str, pred_dir: str | None, config_path: str) -> tuple[dict, dict]:
    schema_label, names = load_schema(data_dir)
    label = schema_label or settings.label
    schema_file = os.path.join(data_dir, "schema", "feature_schema.json")
    keep = kept_columns(settings, names, schema_file)
    splits = {s: read_split(data_dir, s, len(names), keep) for s in SPLITS}
    names = [names[k - 1] for k in keep[1:]]  # the columns read, in order (after the label)
    all_rows = np.vstack(list(splits.values()))
    encoded = encoded_label_values(settings, label, schema_file, config_path)
    settings.encoded_labels = encoded
    labels_ok = value_mask(all_rows[:, 0], encoded, "bias.label_values", config_path)
    if not labels_ok.any():
        present = ", ".join(fmt_values([v]) for v in np.unique(all_rows[:, 0]).tolist())
        raise StepError(
            "FF648",
            f"no row has a label in bias.label_values {settings.label_values}",
            file=config_path,
            hint=f"label values present in {label!r}: {present}",
        )
    pre_g = build_groups(settings, names, all_rows, None, "all rows", schema_file)
    label_str = fmt_values(encoded)  # Clarify's value: the encoded labels it reads in the split CSVs
    facet_str = fmt_values(settings.facet_values)
    analysis: dict = {"version": "1.0", "label_convention": label_convention(settings, label)}
    report: dict = {
        "label": label,
        "facet": settings.facet,
        "facet_values": settings.facet_values,
        "label_values": settings.label_values,
        "label_values_encoded": encoded,
    }

    def section(metrics: list[dict]) -> dict:
        return {
            "label": label,
            "label_value_or_threshold": label_str,
            "facets": {settings.facet: [{"value_or_threshold": facet_str, "metrics": metrics}]},
        }

    # sorted by name, as Clarify's analysis.json lists them (smclarify sorts them): the gate's JsonGet path indexes them
    pre = compute(sorted(settings.pre), PRE_METRICS, PRE_DESCRIPTIONS, pre_g)
    post: list[dict] = []
    analysis["pre_training_bias_metrics"] = section(pre)
    report["pre_training"] = {"rows": len(all_rows), **group_stats(pre_g), "metrics": _flat(pre)}
    if settings.post:
        if pred_dir is None:
            raise StepError("FF644", "post-training metrics need --predictions-dir (the evaluate output)")
        test = splits["test"]
        scores = read_predictions(pred_dir, test)
        yhat = scores > settings.threshold
        post_g = build_groups(settings, names, test, yhat, "test rows", schema_file)
        post = compute(sorted(settings.post), POST_METRICS, POST_DESCRIPTIONS, post_g)
        analysis["post_training_bias_metrics"] = section(post)
        report["post_training"] = {
            "rows": len(test),
            "predicted_positive": f"score > {settings.threshold}",
            **group_stats(post_g),
            "metrics": _flat(post),
        }
    report["notes"] = [f"{m['name']}: {m['note']}" for m in pre + post if "note" in m]
    return analysis, report


def encoded_label_values(settings: Settings, label: str, schema_file: str, config_path: str) -> list:
    """bias.label_values are original label values (data.positive's terms, e.g. ["yes"]): translated to the
    encoded 0/1 labels by the classes preprocess recorded in feature_schema.json (older outputs: as they are)."""
    try:
        with open(schema_file, encoding="utf-8") as fh:
            classes = json.load(fh).get("label_values")
    except (OSError, ValueError):
        classes = None
    if not isinstance(classes, dict):
        return settings.label_values
    encoded, unknown = stepkit.encode_label_values(
        settings.label_values, classes.get("positive", []), classes.get("negative", [])
    )
    if unknown and not encoded:  # as with numeric labels: no row has such a label
        raise StepError(
            "FF648",
            f"no row has a label in bias.label_values {settings.label_values}",
            file=config_path,
            hint=f"label values present in {label!r}: "
            + ", ".join(str(v) for v in classes.get("negative", []) + classes.get("positive", []))
            + " (bias.label_values lists original label values, as data.positive does)",
        )
    return encoded


def label_convention(settings: Settings, label: str) -> str:
    return (
        f"Positive outcome: {label} in {settings.label_values}; facet d (sensitive): {settings.facet} in "
        f"{settings.facet_values}; facet a: every other row. A positive DPL/DPPL means facet a has the higher "
        f"rate of {label} in {settings.label_values}. (AWS's fraud tutorial used label_values_or_threshold=[0], "
        "which flips the sign of every difference metric.)"
    )


def _flat(metrics: list[dict]) -> dict:
    return {m["name"]: m["value"] for m in metrics}


def write_outputs(out_dir: str, analysis: dict, report: dict) -> None:
    os.makedirs(out_dir, exist_ok=True)
    for name, doc in (("analysis.json", analysis), ("report.json", report)):
        tmp = os.path.join(out_dir, f".{name}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2, allow_nan=False)
            fh.write("\n")
        os.replace(tmp, os.path.join(out_dir, name))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = stepkit.Parser("FF640", "Clarify-style bias metrics (local stand-in).")
    p.add_argument("--config", default="/opt/ml/processing/input/config/config.json")
    p.add_argument("--data-dir", default="/opt/ml/processing/input/data")
    p.add_argument("--predictions-dir", default="/opt/ml/processing/input/predictions")
    p.add_argument("--output-dir", default="/opt/ml/processing/output")
    return p.parse_args(argv)


def run(argv: Sequence[str] | None) -> dict:
    args = parse_args(argv)
    settings = load_settings(args.config)
    analysis, report = analyse(settings, args.data_dir, args.predictions_dir, args.config)
    write_outputs(args.output_dir, analysis, report)
    return report


def main(argv: list[str] | None = None) -> int:
    """Entry point (see stepkit.entry: a StepError propagates in-process, is printed as a script)."""

    def work() -> int:
        report = run(argv)
        pre = report["pre_training"]["metrics"]
        print(f"bias: {report['facet']} DPL={pre.get('DPL')} CI={pre.get('CI')}")
        return 0

    return stepkit.entry(argv, work)


if __name__ == "__main__":
    sys.exit(main())
