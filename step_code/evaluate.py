"""Evaluate step: score the test split with the trained model; ROC-AUC with a bootstrap confidence interval.

Runs in SageMaker's XGBoost 1.7-1 image as a processing job and in `fraudflow run`; imports only the standard
library, numpy, pandas, scikit-learn and xgboost. See docs/step-contract.md for evaluation.json's layout.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import stepkit
from stepkit import StepError

E_CONFIG = "FF630"  # config or argument is wrong
E_MODEL = "FF631"  # no model, or one XGBoost cannot read
E_TEST_DATA = "FF632"  # test CSV missing, malformed, or of the wrong width
E_ONE_CLASS = "FF633"  # the test split holds one class: ROC-AUC is undefined
E_CHAMPION = "FF624"  # the champion cannot be fetched, scored on this test split, or compared

MODEL_FILES = ("xgboost-model", "model.json", "model.ubj", "model.bin")
MAX_CELLS = 4_000_000  # bootstrap resamples are ranked in batches of at most this many cells

# pandas < 3 parses floats with a fast parser that can be off in the last digit (so pandas 1.x in the containers
# and pandas 3 here would disagree); pandas 3 is exact by default and deprecates the option.
EXACT_FLOATS = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


# ---------------------------------------------------------------------------------------------- metrics


def auc_by_ranks(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC-AUC of each row of (labels, scores), shape (B, n), via the Mann-Whitney rank sum (ties averaged).
    Rows holding one class give NaN."""
    b, n = scores.shape
    order = np.argsort(scores, axis=1, kind="mergesort")
    sorted_scores = np.take_along_axis(scores, order, axis=1)
    sorted_labels = np.take_along_axis(labels, order, axis=1).astype("float64")
    # tie groups numbered across all rows at once (each row starts a new group), then averaged 1-based ranks
    starts = np.ones((b, n), dtype=bool)
    starts[:, 1:] = sorted_scores[:, 1:] != sorted_scores[:, :-1]
    group = np.cumsum(starts.ravel()) - 1
    positions = np.tile(np.arange(1, n + 1, dtype="float64"), b)
    mean_rank = np.bincount(group, weights=positions) / np.bincount(group)
    ranks = mean_rank[group].reshape(b, n)
    n_pos = sorted_labels.sum(axis=1)
    n_neg = n - n_pos
    rank_sum = (ranks * sorted_labels).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    auc[(n_pos == 0) | (n_neg == 0)] = np.nan
    return auc


def tie_groups(scores: np.ndarray) -> tuple[np.ndarray, int]:
    """Each score's rank among the distinct scores (0 = lowest), and how many distinct scores there are."""
    distinct, group = np.unique(scores, return_inverse=True)
    return group.reshape(-1).astype(np.int64), len(distinct)


def auc_of_resamples(column: np.ndarray, n_groups: int) -> np.ndarray:
    """ROC-AUC of each resample (row) from its rows' (tie group * 2 + class), shape (B, n), without sorting:
    count each resample's negatives and positives per tie group, then U = sum over groups of positives x
    (negatives below + half the negatives tied). The counts are integers, so 2U and P*N are exact and the one
    division gives the same float as the rank sum (auc_by_ranks) does. Rows holding one class give NaN."""
    b = column.shape[0]
    offsets = (np.arange(b, dtype=np.int64) * 2 * n_groups)[:, None]
    counts = np.bincount((column + offsets).ravel(), minlength=b * 2 * n_groups).reshape(b, n_groups, 2)
    neg, pos = counts[:, :, 0], counts[:, :, 1]
    below = np.cumsum(neg, axis=1) - neg
    u2 = (pos * (2 * below + neg)).sum(axis=1)
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = u2.astype("float64") / (2.0 * n_pos * n_neg)
    auc[(n_pos == 0) | (n_neg == 0)] = np.nan
    return auc


def bootstrap_auc(labels: np.ndarray, scores: np.ndarray, samples: int, confidence: float, seed: int) -> dict:
    """Percentile bootstrap CI of ROC-AUC; resamples holding one class are skipped (and not counted)."""
    rng = np.random.RandomState(seed)  # RandomState: same stream on numpy 1.x and 2.x
    n = len(labels)
    batch = max(1, MAX_CELLS // max(n, 1))
    aucs = []
    group, n_groups = tie_groups(scores)
    column = group * 2 + (np.asarray(labels) == 1)  # (score's tie group, class) of each row
    for start in range(0, samples, batch):
        idx = rng.randint(0, n, size=(min(batch, samples - start), n))
        aucs.append(auc_of_resamples(column[idx], n_groups))
    values = np.concatenate(aucs) if aucs else np.array([])
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return {"lower": None, "upper": None, "level": confidence, "samples": 0}
    alpha = (1.0 - confidence) / 2.0
    lower, upper = np.quantile(values, [alpha, 1.0 - alpha])
    return {"lower": float(lower), "upper": float(upper), "level": confidence, "samples": int(len(values))}


def metrics(labels: np.ndarray, scores: np.ndarray, threshold: float, bootstrap: dict) -> dict:
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        confusion_matrix,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    predicted = (scores >= threshold).astype("int64")  # a score at the threshold counts as fraud
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(labels, predicted, labels=[0, 1]).ravel())
    ci = bootstrap_auc(
        labels,
        scores,
        int(bootstrap["samples"]),
        float(bootstrap["confidence"]),
        int(bootstrap["seed"]),
    )
    return {
        "roc_auc": {"value": float(roc_auc_score(labels, scores)), "confidence_interval": ci},
        "pr_auc": {"value": float(average_precision_score(labels, scores))},
        "precision": {"value": float(precision_score(labels, predicted, zero_division=0))},
        "recall": {"value": float(recall_score(labels, predicted, zero_division=0))},
        "f1": {"value": float(f1_score(labels, predicted, zero_division=0))},
        "accuracy": {"value": float(accuracy_score(labels, predicted))},
        "confusion_matrix": {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}},
    }


def metric_by_rows(metric: str, labels: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """One evaluation metric per row of (labels, scores), shape (B, n), all rows at once: the paired bootstrap
    scores both models on the same resamples with it. Undefined values (one class) are NaN for the AUCs and 0 for
    precision/recall/F1, as `metrics` reports them."""
    if metric == "roc_auc":
        return auc_by_ranks(labels, scores)
    if metric == "pr_auc":
        return average_precision_by_rows(labels, scores)
    y = labels.astype(bool)
    p = scores >= threshold
    tp, fp = (p & y).sum(axis=1), (p & ~y).sum(axis=1)
    fn, tn = (~p & y).sum(axis=1), (~p & ~y).sum(axis=1)
    num, den = {
        "precision": (tp, tp + fp),
        "recall": (tp, tp + fn),
        "f1": (2 * tp, 2 * tp + fp + fn),
        "accuracy": (tp + tn, tp + tn + fp + fn),
    }[metric]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), 0.0).astype("float64")


def average_precision_by_rows(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """scikit-learn's average precision per row: sum over distinct thresholds of (recall step) x precision, i.e.
    each positive weighted by the precision at the end of its tie group. Rows without positives give NaN."""
    b, n = scores.shape
    order = np.argsort(-scores, axis=1, kind="mergesort")
    s = np.take_along_axis(scores, order, axis=1)
    y = np.take_along_axis(labels, order, axis=1).astype("float64")
    tp = np.cumsum(y, axis=1)
    is_end = np.ones((b, n), dtype=bool)
    is_end[:, :-1] = s[:, 1:] != s[:, :-1]
    ends = np.where(is_end, np.arange(n), n)
    end = np.minimum.accumulate(ends[:, ::-1], axis=1)[:, ::-1]  # each position's tie group's last index
    precision = np.take_along_axis(tp, end, axis=1) / (end + 1)
    n_pos = y.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ap = (y * precision).sum(axis=1) / n_pos
    ap[n_pos == 0] = np.nan
    return ap


def paired_bootstrap(
    metric: str,
    labels: np.ndarray,
    new: np.ndarray,
    old: np.ndarray,
    threshold: float,
    bootstrap: dict,
    relative: bool,
) -> dict:
    """Percentile interval of metric(new) - metric(old) (or of that over metric(old)), both models scored on the
    same resamples; resamples where either value is undefined are skipped."""
    samples, confidence = int(bootstrap["samples"]), float(bootstrap["confidence"])
    rng = np.random.RandomState(int(bootstrap["seed"]))
    n = len(labels)
    batch = max(1, MAX_CELLS // max(n, 1))
    diffs = []
    for start in range(0, samples, batch):
        idx = rng.randint(0, n, size=(min(batch, samples - start), n))
        a = metric_by_rows(metric, labels[idx], new[idx], threshold)
        b = metric_by_rows(metric, labels[idx], old[idx], threshold)
        with np.errstate(divide="ignore", invalid="ignore"):
            diffs.append((a - b) / b if relative else a - b)
    values = np.concatenate(diffs) if diffs else np.array([])
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return {"lower": None, "upper": None, "level": confidence, "samples": 0}
    alpha = (1.0 - confidence) / 2.0
    lower, upper = np.quantile(values, [alpha, 1.0 - alpha])
    return {"lower": float(lower), "upper": float(upper), "level": confidence, "samples": int(len(values))}


def compare_with_champion(
    settings: dict,
    labels: np.ndarray,
    new: np.ndarray,
    old: np.ndarray,
    threshold: float,
    bootstrap: dict,
    name: str,
) -> dict:
    """The champion section of evaluation.json: both models' metric on the test split, their paired difference
    with its bootstrap interval, and `margin` = the judged quantity (the point estimate, or the interval's lower
    bound with `use_interval`) minus the required improvement. The gate passes the champion condition when
    margin >= 0, on both backends."""
    metric = str(settings["metric"])
    relative = bool(settings.get("relative", False))
    required = float(settings.get("min_improvement", 0.0))
    mine = float(metric_by_rows(metric, labels[None, :], new[None, :], threshold)[0])
    theirs = float(metric_by_rows(metric, labels[None, :], old[None, :], threshold)[0])
    diff: dict[str, Any] = {
        "value": mine - theirs,
        "confidence_interval": paired_bootstrap(metric, labels, new, old, threshold, bootstrap, False),
    }
    out = {
        "found": True,
        "model_package": name,
        "metric": metric,
        "challenger": mine,
        "champion": theirs,
        "difference": diff,
    }
    judged_doc: dict[str, Any] = diff
    if relative:
        if theirs == 0:
            raise StepError(
                E_CHAMPION,
                f"the champion's {metric} is 0: an improvement relative to it is undefined",
                hint="use an absolute gate.champion.min_improvement (relative: false)",
            )
        judged_doc = {
            "value": (mine - theirs) / theirs,
            "confidence_interval": paired_bootstrap(metric, labels, new, old, threshold, bootstrap, True),
        }
        out["relative_difference"] = judged_doc
    if settings.get("use_interval"):
        judged = judged_doc["confidence_interval"]["lower"]
        if judged is None:
            raise StepError(
                E_CHAMPION,
                "the paired bootstrap gave no interval (evaluate.bootstrap.samples is 0, or every resample held "
                "one class), so the champion condition cannot be judged on it",
                hint="raise evaluate.bootstrap.samples, or set gate.champion.use_interval: false",
            )
        out["judged_on"] = "interval lower bound"
    else:
        judged = judged_doc["value"]
        out["judged_on"] = "point estimate"
    out.update(relative=relative, judged=float(judged), required=required, margin=float(judged) - required)
    return out


def no_champion(reason: str) -> dict:
    """No Approved version to beat: the condition passes (margin 0) and the report says why."""
    return {"found": False, "reason": reason, "margin": 0.0}


def lookup_champion(group: str, dest: Path) -> tuple[Path | None, str]:
    """On SageMaker, at execution time: the newest Approved version of the group (ListModelPackages), its
    model.tar.gz (DescribeModelPackage's ModelDataUrl) downloaded to dest. (None, why) when there is none."""
    import boto3  # in the XGBoost image (sagemaker-xgboost-container's requirements.txt)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        sm = boto3.client("sagemaker")
        found = sm.list_model_packages(
            ModelPackageGroupName=group,
            ModelApprovalStatus="Approved",
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=1,
        )["ModelPackageSummaryList"]
        if not found:
            return None, f"no Approved version in model package group {group!r}"
        arn = found[0]["ModelPackageArn"]
        package = sm.describe_model_package(ModelPackageName=arn)
        url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
        bucket, _, key = url[len("s3://") :].partition("/")
        dest.mkdir(parents=True, exist_ok=True)
        boto3.client("s3").download_file(bucket, key, str(dest / "model.tar.gz"))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if "does not exist" in str(error.get("Message", "")) or error.get("Code") == "ResourceNotFound":
            return None, f"no model package group {group!r} yet"
        raise StepError(E_CHAMPION, f"cannot look up the champion of {group!r}: {exc}") from None
    except (BotoCoreError, KeyError, IndexError, OSError) as exc:
        raise StepError(E_CHAMPION, f"cannot fetch the champion of {group!r}: {exc}") from None
    return dest, arn


# ---------------------------------------------------------------------------------------------- inputs


def _safe_extract(archive: Path, dest: Path) -> None:
    """Extract regular files only, refusing absolute or escaping paths (no `filter=` on the container's Python)."""
    try:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                target = (dest / member.name).resolve()
                if member.name.startswith("/") or not str(target).startswith(str(dest.resolve())):
                    raise StepError(E_MODEL, f"unsafe path {member.name!r} in the archive", file=str(archive))
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isfile() and (src := tar.extractfile(member)) is not None:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise StepError(E_MODEL, f"cannot extract the model archive: {exc}", file=str(archive)) from None


def load_model(model_dir: str | Path) -> Any:  # xgboost.Booster (xgboost is imported lazily)
    """The booster in model_dir (extracting model.tar.gz first, as SageMaker hands the training output over)."""
    import xgboost as xgb

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise StepError(E_MODEL, "the model folder does not exist", file=str(model_dir))
    with tempfile.TemporaryDirectory(prefix="ff-model-") as tmp:
        search = [model_dir]
        archive = model_dir / "model.tar.gz"
        if archive.is_file():
            _safe_extract(archive, Path(tmp))
            search.insert(0, Path(tmp))
        for folder in search:
            for name in MODEL_FILES:
                path = folder / name
                if path.is_file():
                    booster = xgb.Booster()
                    try:  # from bytes: XGBoost detects the format itself, whatever the file is called
                        booster.load_model(bytearray(path.read_bytes()))
                    except xgb.core.XGBoostError as exc:
                        raise StepError(
                            E_MODEL,
                            f"XGBoost cannot read the model: {str(exc).splitlines()[0]}",
                            file=str(path),
                        ) from None
                    return booster
    raise StepError(
        E_MODEL,
        f"no model in {model_dir} (looked for model.tar.gz and {', '.join(MODEL_FILES)})",
        file=str(model_dir),
    )


def read_test(test_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Header-less CSVs, label first -> (X, y)."""
    path = Path(test_dir)
    files = (
        [path]
        if path.is_file()
        else sorted(p for p in path.glob("*") if p.is_file() and not p.name.startswith("."))
    )
    if not files:
        raise StepError(E_TEST_DATA, "no test data files", file=str(path))
    frames = []
    for f in files:
        try:
            df = pd.read_csv(f, header=None, **EXACT_FLOATS)
        except pd.errors.EmptyDataError:
            raise StepError(E_TEST_DATA, "the file is empty", file=str(f)) from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            m = re.search(r"line (\d+)", str(exc))
            raise StepError(
                E_TEST_DATA,
                f"malformed CSV: {str(exc).strip()}",
                file=str(f),
                line=int(m.group(1)) if m else None,
            ) from None
        for col in df.columns:
            if not pd.api.types.is_numeric_dtype(df[col]):
                bad = (pd.to_numeric(df[col], errors="coerce").isna() & df[col].notna()).to_numpy()
                row = int(np.flatnonzero(bad)[0])
                raise StepError(
                    E_TEST_DATA,
                    f"column {col + 1} holds a non-number {str(df[col].iloc[row])!r}",
                    file=str(f),
                    line=row + 1,
                    hint="test CSVs are header-less and numeric, label first",
                )
        frames.append(df)
    data = pd.concat(frames, ignore_index=True)
    y = data.iloc[:, 0]
    if y.isna().any() or not y.isin([0, 1]).all():
        row = int(np.flatnonzero((y.isna() | ~y.isin([0, 1])).to_numpy())[0])
        raise StepError(
            E_TEST_DATA,
            f"labels (first column) must be 0 or 1, found {str(y.iloc[row])!r}",
            file=str(files[0]),
            line=row + 1,
        )
    return data.iloc[:, 1:].to_numpy(dtype="float64"), y.to_numpy(dtype="int64")


# ---------------------------------------------------------------------------------------------- step


BOOTSTRAP = ("samples", "confidence", "seed")


def _section(config: dict, name: str, keys: tuple[str, ...]) -> dict:
    """The plan passes every key (the schema's defaults filled in): a missing one is a config error."""
    section: object = config
    for part in name.split("."):
        section = section.get(part) if isinstance(section, dict) else None
    if not isinstance(section, dict):
        raise StepError(E_CONFIG, f"config key '{name}' is missing", file="config.json")
    for key in keys:
        if key not in section:
            raise StepError(E_CONFIG, f"config key '{name}.{key}' is missing", file="config.json")
    return section


def evaluate(
    config: dict, model_dir: str | Path, test_dir: str | Path, champion: tuple[Path | None, str] | None = None
) -> tuple[dict, pd.DataFrame]:
    """champion: (its model folder, its name) or (None, why there is none), for a config with `champion`."""
    import xgboost as xgb

    settings = _section(config, "evaluate", ("decision_threshold", "bootstrap"))
    threshold = float(settings["decision_threshold"])
    bootstrap = _section(config, "evaluate.bootstrap", BOOTSTRAP)
    if not 0.0 <= threshold <= 1.0:
        raise StepError(
            E_CONFIG,
            f"evaluate.decision_threshold must be within [0, 1], got {threshold}",
            file="config.json",
        )
    booster = load_model(model_dir)
    x, y = read_test(test_dir)
    expected = booster.num_features()
    if x.shape[1] != expected:
        raise StepError(
            E_TEST_DATA,
            f"test rows have {x.shape[1]} features but the model was trained on {expected}",
            file=str(test_dir),
            hint="train and evaluate on outputs of the same preprocess run",
        )
    if len(np.unique(y)) < 2:
        raise StepError(
            E_ONE_CLASS,
            f"the test split ({len(y)} rows) holds only label {int(y[0])}: ROC-AUC is undefined",
            file=str(test_dir),
            hint="enlarge split.test or add positives",
        )
    scores = booster.predict(xgb.DMatrix(x)).astype("float64")
    result = {
        "classification_metrics": metrics(y, scores, threshold, bootstrap),
        "decision_threshold": threshold,
        "rows": int(len(y)),
        "positives": int(y.sum()),
    }
    champion_settings = config.get("champion")
    if champion_settings:
        if champion is None or champion[0] is None:
            result["champion"] = no_champion(champion[1] if champion else "no champion was given to the step")
        else:
            old = _champion_scores(champion, x, xgb)
            result["champion"] = compare_with_champion(
                champion_settings, y, scores, old, threshold, bootstrap, champion[1]
            )
    return result, pd.DataFrame({"label": y, "score": scores})


def _champion_scores(champion: tuple[Path | None, str], x: np.ndarray, xgb: Any) -> np.ndarray:
    folder, name = champion
    assert folder is not None
    booster = load_model(folder)
    if booster.num_features() != x.shape[1]:
        raise StepError(
            E_CHAMPION,
            f"the champion {name} was trained on {booster.num_features()} features, this test split has "
            f"{x.shape[1]}: they cannot be compared on the same rows",
            file=str(folder),
            hint="the features changed since the champion was approved: reject it (or drop gate.champion) for this "
            "release",
        )
    return booster.predict(xgb.DMatrix(x)).astype("float64")


def run(
    config: dict,
    model_dir: str | Path,
    test_dir: str | Path,
    output_dir: str | Path,
    champion: tuple[Path | None, str] | None = None,
) -> dict:
    result, predictions = evaluate(config, model_dir, test_dir, champion)

    def write(out: Path) -> None:
        (out / "evaluation.json").write_text(json.dumps(result, indent=2) + "\n")
        predictions.to_csv(out / "predictions.csv", index=False)

    stepkit.publish(Path(output_dir), write)
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point (see stepkit.entry: a StepError propagates in-process, is printed as a script)."""
    parser = stepkit.Parser(E_CONFIG, __doc__.splitlines()[0])
    parser.add_argument("--config", default="/opt/ml/processing/input/config/config.json")
    parser.add_argument("--model-dir", default="/opt/ml/processing/model")
    parser.add_argument("--test-dir", default="/opt/ml/processing/test")
    parser.add_argument("--output-dir", default="/opt/ml/processing/evaluation")
    # Overrides the config's evaluate.decision_threshold: how a SageMaker pipeline parameter reaches the step.
    parser.add_argument("--decision-threshold", type=float, default=None)
    # The champion of a `champion` gate: the local backend passes its model folder (or why there is none); without
    # either, on SageMaker, the step looks it up in the model registry when it runs.
    parser.add_argument("--champion-model-dir", default=None)
    parser.add_argument("--champion-name", default=None)
    parser.add_argument("--no-champion", default=None)

    def work() -> int:
        args = parser.parse_args(argv)
        config = stepkit.read_config(args.config, E_CONFIG)
        if args.decision_threshold is not None:
            config = {
                **config,
                "evaluate": {**(config.get("evaluate") or {}), "decision_threshold": args.decision_threshold},
            }
        with tempfile.TemporaryDirectory(prefix="ff-champion-") as tmp:
            champion = _champion_source(args, config, Path(tmp))
            result = run(config, args.model_dir, args.test_dir, args.output_dir, champion)
        auc = result["classification_metrics"]["roc_auc"]
        print(json.dumps({"roc_auc": auc["value"], "confidence_interval": auc["confidence_interval"]}))
        return 0

    return stepkit.entry(argv, work)


def _champion_source(args: Any, config: dict, tmp: Path) -> tuple[Path | None, str] | None:
    if not config.get("champion"):
        return None
    if args.no_champion is not None:
        return None, args.no_champion
    if args.champion_model_dir is not None:
        return Path(args.champion_model_dir), args.champion_name or args.champion_model_dir
    return lookup_champion(str(config["champion"]["model_package_group"]), tmp / "champion")


if __name__ == "__main__":
    sys.exit(main())
