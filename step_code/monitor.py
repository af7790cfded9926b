"""Monitor step: compare a window of scored claims with the training baseline (drift, quality, bias drift).

Runs unchanged in SageMaker's scikit-learn processing image (the monitoring pipeline) and in `fraudflow monitor`,
so it imports only the standard library, numpy, pandas, scikit-learn and scipy (a dependency of scikit-learn,
always in that image), on pandas 1.x / scipy 1.8. See docs/step-contract.md ("monitor") for inputs and outputs.

The window is a folder of SageMaker data-capture files (`<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl`, as the
endpoint or `fraudflow serve` writes them), or CSV / Parquet / JSON Lines files of raw or scored claims. The
baseline is what the training run wrote: the raw training split (baseline/train_raw.csv), the test split's scores
(evaluation/predictions.csv), the registered evaluation (evaluation.json) and the feature schema.

Checks (each a violation in Model Monitor's constraint_violations.json shape):
- feature drift: PSI (bins at the baseline's quantiles) and two-sample Kolmogorov-Smirnov for numeric columns;
  PSI and a chi-square test of the 2 x k contingency table for categorical ones; missing-rate change; the share of
  values never seen in training;
- prediction drift: PSI and KS of the scores against the test split's, and the positive rate at the threshold;
- model quality, when labels are given: ROC-AUC, precision and recall against the registered evaluation;
- bias drift: DPPL and DI on the facet against the test split's.

Error codes: FF685 config or arguments, FF686 no records in the window, FF687 a malformed window file or capture
record, FF688 labels, FF689 baseline.
"""

from __future__ import annotations

import base64
import csv
import importlib.util
import io
import json
import math
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import stepkit
from stepkit import StepError

E_CONFIG = "FF685"
E_NO_DATA = "FF686"
E_MALFORMED = "FF687"
E_LABELS = "FF688"
E_BASELINE = "FF689"

EPS = 1e-4  # a bin's share is at least this in PSI (an empty bin would make it infinite)
MAX_SHOWN = 5  # unseen category values named in a description
META = ("inference_id", "__record", "__time", "probability", "decision")
TABLES = (".csv", ".parquet", ".pq")
CAPTURE = (".jsonl",)


def _sibling(name: str) -> Any:
    """step_code's preprocess.py, shipped beside this script: its NA words, category keys and `transform`."""
    path = Path(__file__).resolve().parent / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_ff_monitor_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


preprocess = _sibling("preprocess")


# ---------------------------------------------------------------------------------------------- statistics


def shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    p = counts / total if total else np.zeros(len(counts))
    return np.maximum(p, EPS)


def psi_counts(baseline: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two histograms over the same bins: sum (c - b) * ln(c / b)."""
    b, c = shares(np.asarray(baseline, float)), shares(np.asarray(current, float))
    return float(np.sum((c - b) * np.log(c / b)))


def quantile_edges(baseline: np.ndarray, bins: int) -> np.ndarray:
    """Interior bin edges at the baseline's quantiles (ties merged): each bin holds ~1/bins of the baseline."""
    if len(baseline) == 0:
        return np.array([])
    qs = np.quantile(baseline, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(qs)


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin [e_i, e_i+1), the first from -inf and the last to +inf."""
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)


def psi_numeric(baseline: np.ndarray, current: np.ndarray, bins: int) -> tuple[float, np.ndarray]:
    edges = quantile_edges(baseline, bins)
    return psi_counts(bin_counts(baseline, edges), bin_counts(current, edges)), edges


def ks_test(baseline: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value (scipy's, two-sided)."""
    from scipy.stats import ks_2samp

    result = ks_2samp(baseline, current)
    return float(result[0]), float(result[1])


def chi_square(baseline: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Chi-square test of homogeneity of two category histograms (a 2 x k contingency table, scipy's).
    Categories absent from both are dropped; with fewer than two categories nothing can differ: (0, 1)."""
    from scipy.stats import chi2_contingency

    table = np.vstack([np.asarray(baseline, float), np.asarray(current, float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    stat, p, _, _ = chi2_contingency(table, correction=False)
    return float(stat), float(p)


def positive_rate(scores: np.ndarray, threshold: float) -> float:
    return float(np.mean(scores >= threshold)) if len(scores) else float("nan")


def dppl_di(predicted: np.ndarray, facet: np.ndarray) -> tuple[float | None, float | None]:
    """Clarify's DPPL = q'_a - q'_d and DI = q'_d / q'_a (facet d: rows in facet_values; a: the others)."""
    if not facet.any() or facet.all():
        return None, None
    qa, qd = float(predicted[~facet].mean()), float(predicted[facet].mean())
    return qa - qd, (qd / qa if qa > 0 else None)


# ---------------------------------------------------------------------------------------------- config


def _section(cfg: dict, *path: str) -> dict:
    node: Any = cfg
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise StepError(E_CONFIG, f"config key '{'.'.join(path)}' is missing", file="config.json")
    return node


def thresholds(monitor: dict, section: str, column: str | None = None) -> dict:
    """A section's thresholds with a column's overrides (monitor.columns.<name>) on top."""
    base = dict(_section(monitor, section))
    if column is not None:
        base.update((monitor.get("columns") or {}).get(column) or {})
    return base


# ---------------------------------------------------------------------------------------------- the window


def _located(
    code: str, message: str, file: Path, line: int | None = None, hint: str | None = None
) -> StepError:
    return StepError(code, message, file=str(file), line=line, hint=hint)


# A capture file of hour folder H may hold records from around H's end (the endpoint buffers before it writes):
# a folder is passed over only when it ended this long before the window began.
HOUR_SLACK = timedelta(hours=1)


def hour_span(parts: list[str] | tuple[str, ...]) -> tuple[datetime, datetime] | None:
    """When the folder whose path ends in `parts` can hold captures, if its last parts are data capture's UTC
    `yyyy[/mm[/dd[/hh]]]` (the longest such tail), else None."""
    for size in (4, 3, 2, 1):
        tail = list(parts[-size:]) if len(parts) >= size else []
        if not tail or len(tail[0]) != 4 or any(len(p) != 2 for p in tail[1:]):
            continue
        if not all(p.isdigit() for p in tail):
            continue
        numbers = [int(p) for p in tail] + [1, 1, 0][size - 1 :]  # a year's first month, day and hour
        try:
            start = datetime(numbers[0], numbers[1], numbers[2], numbers[3], tzinfo=timezone.utc)
        except ValueError:  # month 13, hour 24, ...: not capture's layout
            continue
        if size == 4:
            return start, start + timedelta(hours=1)
        if size == 3:
            return start, start + timedelta(days=1)
        if size == 2:
            return start, start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
        return start, start.replace(year=start.year + 1)
    return None


def before_window(parts: list[str] | tuple[str, ...], since: datetime | None) -> bool:
    """True when the folder `parts` is an hour, day, month or year of data capture that ended before the window
    (with HOUR_SLACK): nothing in it can be in the window, so it is neither listed nor read."""
    span = hour_span(parts) if since is not None else None
    return span is not None and since is not None and span[1] + HOUR_SLACK <= since


def _walk(root: Path, since: datetime | None) -> list[Path]:
    """The files below root, not descending into capture folders that ended before the window (a folder's whole
    path is read: --current may name a year or day folder itself)."""
    found = []
    for folder, subdirs, names in os.walk(root):
        parts = Path(folder).parts
        subdirs[:] = sorted(d for d in subdirs if not before_window((*parts, d), since))
        found += [Path(folder) / n for n in names]
    return found


def _files(path: Path, since: datetime | None = None) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        found = sorted(
            p
            for p in _walk(path, since)
            if p.is_file() and p.suffix.lower() in TABLES + CAPTURE and not p.name.startswith(".")
        )
        if found:
            return found
        raise _located(E_NO_DATA, "the folder holds no .jsonl capture files and no .csv/.parquet files", path)
    raise _located(E_NO_DATA, "the window was not found", path)


def _decode_body(part: dict, file: Path, line: int) -> tuple[str, str]:
    """(media type, text) of a captured endpointInput/endpointOutput."""
    if not isinstance(part, dict) or "data" not in part:
        raise _located(E_MALFORMED, "capture record has no data", file, line)
    data, encoding = part.get("data") or "", str(part.get("encoding") or "").upper()
    media = str(part.get("observedContentType") or "").split(";")[0].strip().lower()
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise _located(E_MALFORMED, "capture data is not base64 of UTF-8 text", file, line) from None
    return media, str(data)


def _csv_rows(text: str) -> list[list[float]]:
    rows = []
    for row in csv.reader(io.StringIO(text)):
        if row:
            rows.append([float(v) if v.strip() else math.nan for v in row])
    return rows


def decode_rows(rows: list[list[float]], schema: dict) -> list[dict]:
    """Encoded model rows (CSV bodies, `instances`) back to raw columns: numeric as they are, an ordinal's index
    to its value, a one-hot group to the category whose dummy is 1 (none: missing)."""
    index = {f: i for i, f in enumerate(schema["features"])}
    fill = schema["missing"]["categorical"]
    records = []
    for row in rows:
        rec: dict = {}
        for c in schema["numeric"]:
            if c in index:
                rec[c] = row[index[c]]
        for c, spec in schema["ordinal"].items():
            if c in index:
                v = row[index[c]]
                ok = not math.isnan(v) and 0 <= int(v) < len(spec["values"])
                rec[c] = spec["values"][int(v)] if ok else None
        for c, spec in schema["one_hot"].items():
            found = next(
                (k for k, n in zip(spec["categories"], spec["columns"]) if n in index and row[index[n]] == 1),  # noqa: B905
                None,
            )
            rec[c] = None if found == fill else found  # the fill word stood for a missing value
        records.append(rec)
    return records


def _request_records(media: str, text: str, schema: dict, file: Path, line: int) -> list[dict]:
    try:
        if media.endswith("json"):
            doc = json.loads(text)
            if isinstance(doc, dict) and isinstance(doc.get("records"), list):
                return [r if isinstance(r, dict) else {} for r in doc["records"]]
            if isinstance(doc, dict) and "instances" in doc:
                rows = [r["features"] if isinstance(r, dict) else r for r in doc["instances"]]
            elif isinstance(doc, dict) and "features" in doc:
                rows = [doc["features"]]
            else:
                raise ValueError("not a request body inference.py accepts")
            return decode_rows([[math.nan if v is None else float(v) for v in r] for r in rows], schema)
        return decode_rows(_csv_rows(text), schema)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise _located(E_MALFORMED, f"captured request cannot be read: {exc}", file, line) from None


def _response_scores(media: str, text: str) -> list[float] | None:
    """Probabilities of a captured answer; None for an error answer (no predictions)."""
    if media.endswith("json"):
        doc = json.loads(text)
        preds = doc.get("predictions") if isinstance(doc, dict) else None
        if not isinstance(preds, list):
            return None
        return [float(p.get("probability", p.get("score"))) for p in preds]
    return [float(line.split(",")[0]) for line in text.splitlines() if line.strip()]


def read_capture(file: Path, schema: dict, since: datetime | None) -> tuple[list[dict], int]:
    """Records of one capture file (one per claim of each request), and the number of error answers skipped."""
    out: list[dict] = []
    skipped = 0
    with open(file, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
                data = event["captureData"]
                meta = event.get("eventMetadata") or {}
            except (ValueError, KeyError, TypeError):
                raise _located(
                    E_MALFORMED, "not a data-capture record (captureData)", file, line_no
                ) from None
            when = _time(meta.get("inferenceTime"))
            if since is not None and when is not None and when < since:
                continue
            media, text = _decode_body(data.get("endpointInput"), file, line_no)
            records = _request_records(media, text, schema, file, line_no)
            scores: list[float] | None = None
            if data.get("endpointOutput"):
                try:
                    scores = _response_scores(*_decode_body(data["endpointOutput"], file, line_no))
                except (ValueError, TypeError, AttributeError):
                    raise _located(E_MALFORMED, "captured response cannot be read", file, line_no) from None
                if scores is None:
                    skipped += 1
                    continue
                if len(scores) != len(records):
                    raise _located(
                        E_MALFORMED, f"{len(records)} records but {len(scores)} predictions", file, line_no
                    )
            ident = meta.get("inferenceId") or meta.get("eventId")
            for i, rec in enumerate(records):
                row = dict(rec)
                row.update({"inference_id": ident, "__record": i, "__time": meta.get("inferenceTime")})
                if scores is not None:
                    row["probability"] = scores[i]
                out.append(row)
    return out, skipped


def _time(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def read_table(file: Path) -> pd.DataFrame:
    try:
        if file.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(file)
        return pd.read_csv(
            file, na_values=preprocess.NA_VALUES, keep_default_na=False, **preprocess.EXACT_FLOATS
        )
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise _located(
            E_MALFORMED, f"cannot read the window: {str(exc).strip().splitlines()[-1]}", file
        ) from None


def read_window(path: Path, schema: dict, window_hours: float | None = None) -> tuple[pd.DataFrame, dict]:
    since = datetime.now(timezone.utc) - timedelta(hours=window_hours) if window_hours else None
    frames, records, skipped = [], [], 0
    files = _files(path, since)
    for file in files:
        if file.suffix.lower() in CAPTURE:
            got, n = read_capture(file, schema, since)
            records += got
            skipped += n
        else:
            frames.append(read_table(file))
    if records:
        frames.append(pd.DataFrame.from_records(records))
    frame = pd.concat(frames, ignore_index=True, sort=False) if frames else pd.DataFrame()
    if frame.empty:
        raise _located(
            E_NO_DATA,
            "the window holds no records" + (f" in the last {window_hours} hours" if since else ""),
            path,
        )
    return frame, {"files": len(files), "records": int(len(frame)), "error_answers_skipped": skipped}


# ---------------------------------------------------------------------------------------------- the baseline


def load_baseline(baseline_dir: Path, schema_dir: Path, evaluation_dir: Path) -> dict:
    def need(path: Path) -> Path:
        if not path.is_file():
            raise _located(
                E_BASELINE,
                "baseline file not found",
                path,
                hint="run the training pipeline again: preprocess "
                "writes baseline/train_raw.csv, evaluate writes evaluation.json and predictions.csv",
            )
        return path

    schema = json.loads(need(schema_dir / "feature_schema.json").read_text())
    return {
        "schema": schema,
        "train": read_table(need(baseline_dir / "train_raw.csv")),
        "test": read_table(need(baseline_dir / "test_with_header.csv")),
        "scores": read_table(need(evaluation_dir / "predictions.csv")),
        "evaluation": json.loads(need(evaluation_dir / "evaluation.json").read_text()),
    }


# ---------------------------------------------------------------------------------------------- checks


def _violation(name: str, check: str, description: str, **extra: Any) -> dict:
    return {"feature_name": name, "constraint_check_type": check, "description": description, **extra}


def _missing(series: pd.Series) -> np.ndarray:
    if series.dtype == object:
        words = set(preprocess.NA_VALUES)
        return (series.isna() | series.map(lambda v: isinstance(v, str) and v in words)).to_numpy()
    return series.isna().to_numpy()


def missing_rate(series: pd.Series) -> float:
    return float(_missing(series).mean()) if len(series) else 0.0


def _numbers(series: pd.Series) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
    return values[np.isfinite(values)]


def numeric_drift(column: str, base: pd.Series, cur: pd.Series, th: dict) -> dict:
    b, c = _numbers(base[~_missing(base)]), _numbers(cur[~_missing(cur)])
    result: dict = {"column": column, "kind": "numeric", "violations": []}
    if len(b) == 0 or len(c) == 0:
        result["note"] = "no values to compare"
        return result
    psi, edges = psi_numeric(b, c, int(th["psi_bins"]))
    stat, p = ks_test(b, c)
    result.update(
        psi=psi,
        ks_statistic=stat,
        ks_p_value=p,
        baseline_mean=float(b.mean()),
        current_mean=float(c.mean()),
        histogram={
            "edges": edges.tolist(),
            "baseline": (bin_counts(b, edges) / len(b)).tolist(),
            "current": (bin_counts(c, edges) / len(c)).tolist(),
        },
    )
    if psi > th["psi"]:
        result["violations"].append(
            _violation(
                column, "baseline_drift_check", f"PSI {psi:.4f} exceeds {th['psi']}", metric="psi", value=psi
            )
        )
    if p < th["ks_p_value"] and stat > th["ks_statistic"]:
        result["violations"].append(
            _violation(
                column,
                "baseline_drift_check",
                f"Kolmogorov-Smirnov statistic {stat:.4f} (p = {p:.3g}) exceeds {th['ks_statistic']} "
                f"at p < {th['ks_p_value']}",
                metric="ks",
                value=stat,
            )
        )
    return result


def _keys(series: pd.Series) -> pd.Series:
    return series[~_missing(series)].map(preprocess._key)


def categorical_drift(column: str, base: pd.Series, cur: pd.Series, known: list[str], th: dict) -> dict:
    b, c = _keys(base), _keys(cur)
    cats = sorted(set(b) | set(c) | set(known))
    bc = b.value_counts().reindex(cats, fill_value=0).to_numpy()
    cc = c.value_counts().reindex(cats, fill_value=0).to_numpy()
    result: dict = {"column": column, "kind": "categorical", "violations": []}
    seen = set(known) | set(b)
    unseen = c[~c.isin(seen)]
    unseen_rate = float(len(unseen) / len(c)) if len(c) else 0.0
    result["unseen_rate"] = unseen_rate
    result["unseen"] = unseen.value_counts().index[:MAX_SHOWN].tolist()
    if len(b) == 0 or len(c) == 0:
        result["note"] = "no values to compare"
        return result
    psi = psi_counts(bc, cc)
    stat, p = chi_square(bc, cc)
    result.update(
        psi=psi,
        chi_square=stat,
        chi_square_p_value=p,
        histogram={
            "categories": cats,
            "baseline": (bc / bc.sum()).tolist(),
            "current": (cc / cc.sum()).tolist(),
        },
    )
    if psi > th["psi"]:
        result["violations"].append(
            _violation(
                column, "baseline_drift_check", f"PSI {psi:.4f} exceeds {th['psi']}", metric="psi", value=psi
            )
        )
    if p < th["chi_square_p_value"]:
        result["violations"].append(
            _violation(
                column,
                "baseline_drift_check",
                f"chi-square {stat:.2f} (p = {p:.3g}) below p = {th['chi_square_p_value']}",
                metric="chi_square",
                value=p,
            )
        )
    if unseen_rate > th["unseen_categories"]:
        shown = ", ".join(repr(v) for v in result["unseen"])
        result["violations"].append(
            _violation(
                column,
                "categorical_values_check",
                f"{unseen_rate:.1%} of values were never seen in training ({shown}); at most "
                f"{th['unseen_categories']:.1%} allowed",
                metric="unseen_categories",
                value=unseen_rate,
            )
        )
    return result


def feature_drift(train: pd.DataFrame, window: pd.DataFrame, schema: dict, monitor: dict) -> list[dict]:
    numeric = list(schema["numeric"])
    categorical = {c: s["categories"] for c, s in schema["one_hot"].items()}
    categorical.update({c: [preprocess._key(v) for v in s["values"]] for c, s in schema["ordinal"].items()})
    out = []
    for column in numeric + list(categorical):
        th = thresholds(monitor, "features", column)
        if th.get("ignore") or column not in train.columns:
            continue
        if column not in window.columns:
            continue  # a scored file of keys and scores: no feature to compare
        base, cur = train[column], window[column]
        if column in categorical:
            result = categorical_drift(column, base, cur, categorical[column], th)
        else:
            result = numeric_drift(column, base, cur, th)
        b_missing, c_missing = missing_rate(base), missing_rate(cur)
        result.update(baseline_missing_rate=b_missing, current_missing_rate=c_missing)
        change = c_missing - b_missing
        if abs(change) > th["missing_rate_change"]:
            result["violations"].append(
                _violation(
                    column,
                    "completeness_check",
                    f"missing rate {c_missing:.1%} (training {b_missing:.1%}) changed by more than "
                    f"{th['missing_rate_change']:.1%}",
                    metric="missing_rate_change",
                    value=change,
                )
            )
        out.append(result)
    return out


def prediction_drift(base_scores: np.ndarray, scores: np.ndarray, threshold: float, th: dict) -> dict:
    psi, edges = psi_numeric(base_scores, scores, int(th["psi_bins"]))
    stat, p = ks_test(base_scores, scores)
    b_rate, c_rate = positive_rate(base_scores, threshold), positive_rate(scores, threshold)
    v: list[dict] = []
    result = {
        "psi": psi,
        "ks_statistic": stat,
        "ks_p_value": p,
        "baseline_positive_rate": b_rate,
        "current_positive_rate": c_rate,
        "decision_threshold": threshold,
        "histogram": {
            "edges": edges.tolist(),
            "baseline": (bin_counts(base_scores, edges) / len(base_scores)).tolist(),
            "current": (bin_counts(scores, edges) / len(scores)).tolist(),
        },
        "violations": v,
    }
    if psi > th["psi"]:
        v.append(_violation("prediction", "baseline_drift_check", f"score PSI {psi:.4f} exceeds {th['psi']}"))
    if p < th["ks_p_value"] and stat > th["ks_statistic"]:
        v.append(
            _violation(
                "prediction",
                "baseline_drift_check",
                f"score Kolmogorov-Smirnov statistic {stat:.4f} (p = {p:.3g}) exceeds {th['ks_statistic']}",
            )
        )
    if abs(c_rate - b_rate) > th["positive_rate_change"]:
        v.append(
            _violation(
                "prediction",
                "positive_rate_check",
                f"positive rate at {threshold} is {c_rate:.1%} (test split {b_rate:.1%}), a change of more than "
                f"{th['positive_rate_change']:.1%}",
            )
        )
    return result


def read_labels(path: Path, label: str, key: str) -> pd.DataFrame:
    frames = [read_table(f) for f in _files(path) if f.suffix.lower() in TABLES]
    if not frames:
        raise _located(E_LABELS, "no .csv or .parquet labels file", path)
    labels = pd.concat(frames, ignore_index=True)
    for column in (key, label):
        if column not in labels.columns:
            raise _located(
                E_LABELS,
                f"the labels have no column '{column}' (columns: {', '.join(map(str, labels.columns))})",
                path,
                1,
                hint=f"give the key column '{key}' (monitor.labels.key) and the label column '{label}'",
            )
    values = pd.to_numeric(labels[label], errors="coerce")
    if not values.isin([0, 1]).all():
        raise _located(E_LABELS, f"label '{label}' must be 0 or 1 in every row", path)
    labels[label] = values.astype("int64")
    return labels


def join_labels(window: pd.DataFrame, labels: pd.DataFrame, label: str, key: str, path: Path) -> pd.DataFrame:
    if key not in window.columns:
        raise _located(E_LABELS, f"the window has no column '{key}' to join the labels on", path)
    on = [key, "__record"] if key == "inference_id" and "record" in labels.columns else [key]
    labels = labels.rename(columns={"record": "__record"})
    if labels.duplicated(on).any():
        raise _located(E_LABELS, f"the labels repeat a key ({', '.join(on)})", path)
    window = window[window[on].notna().all(axis=1)]  # records without the key (encoded rows) cannot be joined
    if window.duplicated(on).any():
        raise _located(
            E_LABELS,
            f"several window records share one {key}: the labels cannot say which is which",
            path,
            hint="add a `record` column (the record's index in its request) to the labels",
        )
    keep = window[[*on, "probability"]].copy()
    for c in on:  # keys read from JSON and CSV differ in type (7 and "7"): compare as text
        keep[c], labels[c] = keep[c].map(preprocess._key), labels[c].map(preprocess._key)
    joined = keep.merge(labels[[*on, label]], on=on, how="inner")
    if joined.empty:
        raise _located(E_LABELS, f"no label matches a record of the window by {', '.join(on)}", path)
    return joined


def model_quality(joined: pd.DataFrame, label: str, threshold: float, evaluation: dict, th: dict) -> dict:
    from sklearn.metrics import precision_score, recall_score, roc_auc_score

    y, s = joined[label].to_numpy(), joined["probability"].to_numpy(dtype="float64")
    predicted = (s >= threshold).astype("int64")
    current: dict[str, float | None] = {
        "roc_auc": float(roc_auc_score(y, s)) if len(np.unique(y)) == 2 else None,
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
    }
    registered = evaluation.get("classification_metrics", {})
    result: dict = {
        "labelled_records": int(len(y)),
        "positives": int(y.sum()),
        "metrics": {},
        "violations": [],
    }
    for metric, value in current.items():
        base = (registered.get(metric) or {}).get("value")
        result["metrics"][metric] = {"current": value, "registered": base}
        if value is None:
            continue
        floor, drop = (th.get("min") or {}).get(metric), (th.get("max_drop") or {}).get(metric)
        if floor is not None and value < floor:
            result["violations"].append(
                _violation(
                    metric, "model_quality_check", f"{metric} {value:.4f} is below the minimum {floor}"
                )
            )
        if drop is not None and base is not None and base - value > drop:
            result["violations"].append(
                _violation(
                    metric,
                    "model_quality_check",
                    f"{metric} {value:.4f} dropped by {base - value:.4f} from the registered {base:.4f} "
                    f"(at most {drop})",
                )
            )
    return result


def _facet_mask(values: pd.Series, facet_values: list) -> np.ndarray:
    wanted = {preprocess._key(v) for v in facet_values}
    return values.map(lambda v: not pd.isna(v) and preprocess._key(v) in wanted).to_numpy(dtype=bool)


def facet_column(frame: pd.DataFrame, facet: str, schema: dict) -> pd.Series | None:
    """The facet's values for each record: a raw column, or an encoded one computed by preprocess.transform."""
    if facet in frame.columns:
        return frame[facet]
    if facet in schema["features"]:
        raw = frame[[c for c in frame.columns if c not in META]]
        return preprocess.transform(raw, schema)[facet]
    return None


def bias_drift(baseline: dict, window: pd.DataFrame, bias: dict, th: dict) -> dict | None:
    facet, t = bias["facet"], float(bias.get("probability_threshold", 0.5))
    test, scores = baseline["test"], baseline["scores"]["score"].to_numpy(dtype="float64")
    if facet not in test.columns or len(test) != len(scores):
        return None
    values = facet_column(window, facet, baseline["schema"])
    if values is None:
        return None
    base = dppl_di((scores > t).astype(float), _facet_mask(test[facet], bias["facet_values"]))
    cur = dppl_di(
        (window["probability"].to_numpy(dtype="float64") > t).astype(float),
        _facet_mask(values, bias["facet_values"]),
    )
    result: dict = {"facet": facet, "metrics": {}, "violations": []}
    for name, b, c, limit in (
        ("DPPL", base[0], cur[0], th["dppl_change"]),
        ("DI", base[1], cur[1], th["di_change"]),
    ):
        result["metrics"][name] = {"baseline": b, "current": c}
        if limit is not None and b is not None and c is not None and abs(c - b) > limit:
            result["violations"].append(
                _violation(
                    facet,
                    "bias_drift_check",
                    f"{name} on {facet} is {c:.4f} (test split {b:.4f}), a change of more than {limit}",
                    metric=name,
                )
            )
    return result


# ---------------------------------------------------------------------------------------------- the step


def monitor(
    config: dict, baseline: dict, window: pd.DataFrame, labels: pd.DataFrame | None, labels_path: Path | None
) -> dict:
    mon = _section(config, "monitor")
    threshold = float(config.get("decision_threshold", baseline["evaluation"].get("decision_threshold", 0.5)))
    label = str(_section(config, "data").get("label") or "label")
    report: dict = {"records": int(len(window)), "decision_threshold": threshold}
    report["features"] = feature_drift(baseline["train"], window, baseline["schema"], mon)
    scored = "probability" in window.columns and window["probability"].notna().any()
    if scored:
        scores = pd.to_numeric(window["probability"], errors="coerce").dropna().to_numpy(dtype="float64")
        base_scores = baseline["scores"]["score"].to_numpy(dtype="float64")
        report["prediction"] = prediction_drift(base_scores, scores, threshold, thresholds(mon, "prediction"))
    if labels is not None and labels_path is not None:
        if not scored:
            raise _located(
                E_LABELS, "the window has no scores (probability) to judge against labels", labels_path
            )
        key = str((mon.get("labels") or {}).get("key") or "inference_id")
        joined = join_labels(window, labels, label, key, labels_path)
        report["quality"] = model_quality(
            joined, label, threshold, baseline["evaluation"], thresholds(mon, "quality")
        )
    if scored and config.get("bias"):
        result = bias_drift(baseline, window, config["bias"], thresholds(mon, "bias"))
        if result is not None:
            report["bias"] = result
    violations = [v for f in report["features"] for v in f["violations"]]
    for section in ("prediction", "quality", "bias"):
        violations += (report.get(section) or {}).get("violations", [])
    report["drifted_features"] = sorted(
        {v["feature_name"] for f in report["features"] for v in f["violations"]}
    )
    report["violations"] = violations
    return report


def _clean(value: Any) -> Any:
    """Strict JSON: NaN and infinities become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return _clean(value.item())
    return value


def run(config: dict, args: Any) -> dict:
    mon = _section(config, "monitor")
    baseline = load_baseline(Path(args.baseline_dir), Path(args.schema_dir), Path(args.evaluation_dir))
    window, meta = read_window(Path(args.current), baseline["schema"], mon.get("window_hours"))
    labels = None
    labels_path = Path(args.labels) if args.labels else None
    if labels_path is not None and labels_path.exists():
        label = str(_section(config, "data").get("label") or "label")
        labels = read_labels(labels_path, label, str((mon.get("labels") or {}).get("key") or "inference_id"))
    elif labels_path is not None and args.labels_required:
        raise _located(E_LABELS, "labels not found", labels_path)
    report = _clean({"window": meta, **monitor(config, baseline, window, labels, labels_path)})

    def write(out: Path) -> None:
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "constraint_violations.json").write_text(
            json.dumps({"violations": report["violations"]}, indent=2) + "\n"
        )
        (out / "result.json").write_text(json.dumps({"violations": len(report["violations"])}) + "\n")

    stepkit.publish(Path(args.output_dir), write)
    return report


def main(argv: list[str] | None = None) -> int:
    """Entry point (see stepkit.entry: a StepError propagates in-process, is printed as a script)."""
    parser = stepkit.Parser(E_CONFIG, __doc__.splitlines()[0])
    parser.add_argument("--config", default="/opt/ml/processing/input/config/config.json")
    parser.add_argument("--baseline-dir", default="/opt/ml/processing/baseline")
    parser.add_argument("--schema-dir", default="/opt/ml/processing/schema")
    parser.add_argument("--evaluation-dir", default="/opt/ml/processing/evaluation")
    parser.add_argument("--current", default="/opt/ml/processing/current")
    parser.add_argument("--labels", default="/opt/ml/processing/labels")
    parser.add_argument("--labels-required", action="store_true")
    parser.add_argument("--output-dir", default="/opt/ml/processing/output/monitor")

    def work() -> int:
        args = parser.parse_args(argv)
        report = run(stepkit.read_config(args.config, E_CONFIG), args)
        print(
            json.dumps({"monitor": {"records": report["records"], "violations": len(report["violations"])}})
        )
        return 0

    return stepkit.entry(argv, work)


if __name__ == "__main__":
    sys.exit(main())
