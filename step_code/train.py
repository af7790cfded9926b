"""Train step: XGBoost in SageMaker script mode (the XGBoost 1.7-1 framework image) and in `fraudflow run`.

Hyperparameters arrive as `--name value` strings (every XGBoost parameter, plus num_round, early_stopping_rounds,
cv_folds and seed); data channels and the model folder come from SageMaker's SM_* variables or arguments.
With a schema channel, the model folder also gets code/: the endpoint's inference.py, preprocess.py and
feature_schema.json (script-mode serving, see docs/sagemaker.md).
Imports only the standard library, numpy, pandas and xgboost (>= 1.7). See docs/step-contract.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import stepkit
from stepkit import StepError

E_CONFIG = "FF620"  # a hyperparameter or argument is wrong
E_NO_DATA = "FF621"  # a channel is missing or empty
E_BAD_DATA = "FF622"  # a training CSV is not numeric, or its labels are not 0/1
E_XGBOOST = "FF623"  # XGBoost rejected the parameters
E_SERVING = "FF669"  # the serving code or the feature schema cannot be packed with the model
E_CLUSTER = "FF615"  # the hosts of a distributed training job cannot form XGBoost's collective
E_NO_SHARD = "FF616"  # a host's share of the ShardedByS3Key train channel is empty

# Parameters this script consumes itself rather than handing to XGBoost.
OWN = ("num_round", "early_stopping_rounds", "cv_folds")
MAXIMIZE = ("auc", "aucpr", "map", "ndcg", "pre")  # the metrics XGBoost maximises
MODEL_FILE = "xgboost-model"  # the one file in the model folder (SM_MODEL_DIR)
TRAINING_REPORT = (
    "training.json"  # rounds, best iteration, history: in the output data folder (SM_OUTPUT_DATA_DIR)
)

# pandas < 3 parses floats with a fast parser that can be off in the last digit (so pandas 1.x in the containers
# and pandas 3 here would disagree); pandas 3 is exact by default and deprecates the option.
EXACT_FLOATS = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


# ---------------------------------------------------------------------------------------------- arguments


def _typed(value: str) -> object:
    """SageMaker passes every hyperparameter as a string: give XGBoost ints, floats and bools back."""
    text = value.strip()
    if text.lower() in ("none", "null", ""):  # an unset optional value: treated as not given
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def parse_hyperparameters(tokens: list[str]) -> dict:
    """`--name value` / `--name=value` pairs -> typed dict. A flag without a value is an error."""
    params: dict = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or len(token) < 3:
            raise StepError(E_CONFIG, f"unexpected argument {token!r}: hyperparameters are `--name value`")
        name, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 >= len(tokens) or tokens[i + 1].startswith("--"):
                raise StepError(E_CONFIG, f"hyperparameter --{name} has no value")
            value, i = tokens[i + 1], i + 1
        params[name.replace("-", "_")] = _typed(value)
        i += 1
    params = {k: v for k, v in params.items() if v is not None}
    if isinstance(params.get("eval_metric"), str) and "," in params["eval_metric"]:
        params["eval_metric"] = [m.strip() for m in params["eval_metric"].split(",") if m.strip()]
    return params


def _positive_int(params: dict, name: str, default: int | None = None) -> int | None:
    value = params.pop(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StepError(E_CONFIG, f"hyperparameter {name} must be a positive integer, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------- data


def _channel_files(channel: str | None, name: str) -> list[Path]:
    if not channel:
        raise StepError(E_NO_DATA, f"no {name} channel given (--{name} or SM_CHANNEL_{name.upper()})")
    path = Path(channel)
    if path.is_file():
        return [path]
    files = (
        sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if path.is_dir()
        else []
    )
    if not files:
        raise StepError(E_NO_DATA, f"the {name} channel has no data files", file=str(path))
    return files


def read_channel(channel: str | None, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Header-less CSVs, label first (the layout SageMaker's XGBoost reads) -> (X, y)."""
    frames: list[pd.DataFrame] = []
    for path in _channel_files(channel, name):
        try:
            df = pd.read_csv(path, header=None, **EXACT_FLOATS)
        except pd.errors.EmptyDataError:
            raise StepError(E_NO_DATA, "the file is empty", file=str(path)) from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            m = re.search(r"line (\d+)", str(exc))
            raise StepError(
                E_BAD_DATA,
                f"malformed CSV: {str(exc).strip()}",
                file=str(path),
                line=int(m.group(1)) if m else None,
            ) from None
        for col in df.columns:
            if not pd.api.types.is_numeric_dtype(df[col]):
                numbers = pd.to_numeric(df[col], errors="coerce")
                row = int(np.flatnonzero((numbers.isna() & df[col].notna()).to_numpy())[0])
                raise StepError(
                    E_BAD_DATA,
                    f"column {col + 1} holds a non-number {str(df[col].iloc[row])!r}",
                    file=str(path),
                    line=row + 1,
                    hint="training CSVs are header-less and numeric, label first (preprocess writes them so)",
                )
        if frames and df.shape[1] != frames[0][1].shape[1]:
            raise StepError(
                E_BAD_DATA,
                f"{df.shape[1]} columns, but {frames[0][0]} has {frames[0][1].shape[1]}",
                file=str(path),
            )
        frames.append((str(path), df))
    data = pd.concat([df for _, df in frames], ignore_index=True)
    if data.shape[1] < 2:
        raise StepError(
            E_BAD_DATA, "a training CSV needs a label column and at least one feature", file=frames[0][0]
        )
    y = data.iloc[:, 0]
    if y.isna().any():
        raise StepError(
            E_BAD_DATA,
            "missing label (first column)",
            file=frames[0][0],
            line=int(np.flatnonzero(y.isna())[0]) + 1,
        )
    return data.iloc[:, 1:].to_numpy(dtype="float64"), y.to_numpy(dtype="float64")


def _check_binary(y: np.ndarray, name: str, objective: str) -> None:
    if str(objective).startswith("binary:"):
        bad = ~np.isin(y, (0.0, 1.0))
        if bad.any():
            raise StepError(
                E_BAD_DATA,
                f"{objective} needs labels 0/1; the {name} channel has {float(y[bad][0])!r} (row {int(np.flatnonzero(bad)[0]) + 1})",
            )
        if len(np.unique(y)) < 2:
            raise StepError(E_BAD_DATA, f"the {name} channel holds only label {int(y[0])}")


# ---------------------------------------------------------------------------------------------- training


def _metric_columns(cv: pd.DataFrame) -> tuple[str, str]:
    """The metric XGBoost's own early stopping watches: the last one evaluated."""
    names = [
        c[len("test-") : -len("-mean")] for c in cv.columns if c.startswith("test-") and c.endswith("-mean")
    ]
    metric = names[-1]
    return metric, f"test-{metric}-mean"


def cross_validate(
    params: dict, dtrain: Any, num_round: int, folds: int, early_stopping: int | None, seed: int
) -> dict:
    import xgboost as xgb

    try:
        cv: pd.DataFrame = xgb.cv(  # as_pandas (the default): a DataFrame when pandas is installed
            params,
            dtrain,
            num_boost_round=num_round,
            nfold=folds,
            stratified=str(params.get("objective", "")).startswith("binary:"),
            seed=seed,
            early_stopping_rounds=early_stopping,
            verbose_eval=False,
        )
    except xgb.core.XGBoostError as exc:
        raise StepError(E_XGBOOST, f"XGBoost rejected the parameters: {_first_line(exc)}") from None
    except ValueError as exc:  # e.g. fewer positives than folds
        raise StepError(E_CONFIG, f"cv_folds={folds}: {exc}") from None
    metric, column = _metric_columns(cv)
    scores = cv[column].to_numpy()
    maximize = metric.split("@")[0] in MAXIMIZE
    # with early stopping xgb.cv already cut the table at the best round; otherwise pick the best round here
    best = len(scores) - 1 if early_stopping else int(np.argmax(scores) if maximize else np.argmin(scores))
    return {
        "folds": folds,
        "metric": metric,
        "rounds_chosen": best + 1,
        "best_score": float(scores[best]),
        "results": {c: [float(v) for v in cv[c]] for c in cv.columns},
    }


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    lines = [ln for ln in text.splitlines() if ln.strip() and "Stack trace" not in ln]
    return (lines[0] if lines else text)[:300]


def train(
    params: dict,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    callbacks: list | None = None,
) -> tuple[Any, dict]:  # (xgboost.Booster, summary)
    """Train as the hyperparameters say -> (booster holding exactly the kept rounds, training summary).
    `callbacks` (xgboost.callback.TrainingCallback) see every round: the local tuner prunes trials with one."""
    import xgboost as xgb

    params = dict(params)
    num_round = _positive_int(params, "num_round", 100)
    if num_round is None:  # an explicit null
        raise StepError(E_CONFIG, "hyperparameter num_round must be a positive integer, got None")
    early_stopping = _positive_int(params, "early_stopping_rounds")
    folds = _positive_int(params, "cv_folds")
    if folds is not None and folds < 2:
        raise StepError(E_CONFIG, "hyperparameter cv_folds must be at least 2")
    seed = params.setdefault("seed", 0)
    objective = params.setdefault("objective", "binary:logistic")
    _check_binary(y_train, "train", objective)
    dtrain = xgb.DMatrix(x_train, label=y_train)
    # With a validation set only it is evaluated each round (early stopping watches it): the training set's
    # metric was only logged, and at 800k rows computing it every round cost half the training time.
    evals = [(dtrain, "train")] if x_val is None or y_val is None else []
    if x_val is not None and y_val is not None:  # read_channel gives both
        if x_val.shape[1] != x_train.shape[1]:
            raise StepError(
                E_BAD_DATA,
                f"validation rows have {x_val.shape[1]} features, training rows {x_train.shape[1]}",
            )
        _check_binary(y_val, "validation", objective)
        evals.append((xgb.DMatrix(x_val, label=y_val), "validation"))
    elif early_stopping and not folds:
        raise StepError(E_NO_DATA, "early_stopping_rounds needs a validation channel (--validation)")

    cv = cross_validate(params, dtrain, num_round, folds, early_stopping, int(seed)) if folds else None
    history: dict = {}
    try:
        booster = xgb.train(
            params,
            dtrain,
            num_boost_round=cv["rounds_chosen"] if cv else num_round,
            evals=evals,
            evals_result=history,
            early_stopping_rounds=None if cv else early_stopping,
            verbose_eval=False,
            callbacks=list(callbacks or []),
        )
    except xgb.core.XGBoostError as exc:
        raise StepError(E_XGBOOST, f"XGBoost rejected the parameters: {_first_line(exc)}") from None
    best_iteration = getattr(booster, "best_iteration", None) if early_stopping and not cv else None
    best_score = getattr(booster, "best_score", None) if best_iteration is not None else None
    if best_iteration is not None:
        booster = booster[: best_iteration + 1]  # keep the best model, so every consumer serves it
    summary = {
        "xgboost_version": xgb.__version__,
        "params": params,
        "num_round": num_round,
        "early_stopping_rounds": early_stopping,
        "cv_folds": folds,
        "rounds_trained": int(booster.num_boosted_rounds()),
        "best_iteration": best_iteration,
        "best_score": None if best_score is None else float(best_score),
        "evaluation_history": {
            k: {m: [float(v) for v in vs] for m, vs in d.items()} for k, d in history.items()
        },
        "cv": cv,
        "train_rows": int(len(y_train)),
        "validation_rows": None if y_val is None else int(len(y_val)),
        "features": int(x_train.shape[1]),
    }
    return booster, summary


def final_metrics(summary: dict) -> dict:
    """The kept model's metrics as XGBoost logs them (`validation-auc` → value at the last kept round): the
    objective of a tuning trial, locally and on SageMaker (which reads the printed `final NAME: VALUE` lines)."""
    last = summary["rounds_trained"] - 1
    return {
        f"{split}-{metric}": float(values[last])
        for split, metrics in summary["evaluation_history"].items()
        for metric, values in metrics.items()
        if len(values) > last >= 0
    }


def portable_model(model_json: bytes) -> bytes:
    """XGBoost >= 2 writes base_score as "[5E-1]", which XGBoost 1.7 (SageMaker's container) silently reads
    as 0.5: write the scalar form, which every version reads the same."""
    model = json.loads(model_json)
    param = model.get("learner", {}).get("learner_model_param", {})
    score = param.get("base_score")
    if isinstance(score, str) and score.startswith("[") and score.endswith("]") and "," not in score:
        param["base_score"] = score[1:-1]
    return json.dumps(model, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------------- distributed

# sagemaker-xgboost-container's launcher (distributed.py) runs the tracker on the first host, port 9099:
# training instances are single-tenant, so the port is free.
TRACKER_PORT = 9099
CLUSTER_TIMEOUT_S = 900  # how long a host waits for the others' names to resolve and for the tracker


def cluster_hosts() -> tuple[list[str], str] | None:
    """(the hosts sorted, this host) when SageMaker's SM_HOSTS lists several, else None: one host trains alone."""
    raw = os.environ.get("SM_HOSTS")
    if not raw:
        return None
    try:
        hosts = json.loads(raw)
    except ValueError:
        hosts = None
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
        raise StepError(E_CLUSTER, f"SM_HOSTS is not a JSON list of host names: {raw[:200]!r}")
    if len(set(hosts)) < 2:
        return None
    current = os.environ.get("SM_CURRENT_HOST", "")
    if current not in hosts:
        raise StepError(E_CLUSTER, f"SM_CURRENT_HOST {current!r} is not one of SM_HOSTS {sorted(hosts)}")
    return sorted(set(hosts)), current


def _resolve(host: str, deadline: float) -> str:
    """The host's address, waiting (as AWS's launcher does) until the cluster's names resolve."""
    delay = 0.1
    while True:
        try:
            return socket.gethostbyname(host)
        except OSError as exc:
            if time.monotonic() > deadline:
                raise StepError(E_CLUSTER, f"host {host} does not resolve: {exc}") from None
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _tracker(ip: str, workers: int, port: int) -> Any:
    """XGBoost's own RabitTracker, started: 1.7 (the container) and >= 2 differ in signature and start()."""
    import xgboost as xgb
    from xgboost.tracker import RabitTracker

    try:
        if int(xgb.__version__.split(".")[0]) >= 2:
            tracker = RabitTracker(n_workers=workers, host_ip=ip, port=port, sortby="task")
            tracker.start()
        else:  # 1.7: RabitTracker(host_ip, n_workers, port, use_logger, sortby), start(n_workers)
            tracker = RabitTracker(host_ip=ip, n_workers=workers, port=port, sortby="task")
            tracker.start(workers)  # type: ignore[call-arg]
    except OSError as exc:
        raise StepError(E_CLUSTER, f"cannot start XGBoost's tracker on {ip}:{port}: {exc}") from None
    return tracker


def _worker_args(ip: str, port: int, rank: int, workers: int) -> dict:
    """collective.init's arguments: lower-case dmlc_* since xgboost 2, the DMLC_* environment names in 1.7.
    The task id is the host's place in the sorted hosts, so the first host is rank 0 (sortby="task")."""
    import xgboost as xgb

    if int(xgb.__version__.split(".")[0]) >= 2:
        return {"dmlc_tracker_uri": ip, "dmlc_tracker_port": port, "dmlc_task_id": str(rank)}
    return {
        "DMLC_TRACKER_URI": ip,
        "DMLC_TRACKER_PORT": port,
        "DMLC_TASK_ID": str(rank),
        "DMLC_NUM_WORKER": workers,
    }


def _join(args: dict, deadline: float) -> None:
    """collective.init, retried until the deadline: a worker may start before the first host's tracker."""
    import xgboost as xgb
    from xgboost import collective

    while True:
        try:
            collective.init(**args)
            return
        except xgb.core.XGBoostError as exc:
            if time.monotonic() > deadline:
                raise StepError(
                    E_CLUSTER, f"cannot join the distributed training: {_first_line(exc)}"
                ) from None
            time.sleep(2.0)


@contextlib.contextmanager
def distributed(port: int = TRACKER_PORT) -> Iterator[dict | None]:
    """Distributed training when SM_HOSTS lists several hosts (sagemaker.training.instance_count > 1): the first
    host (sorted) runs XGBoost's tracker, every host joins XGBoost's collective, and xgb.train inside the block
    builds one model from every host's shard (histograms are summed across hosts, evaluation metrics agree).
    Yields None on a single host, else {"hosts", "host", "rank"}; rank 0 is the host that writes the model."""
    found = cluster_hosts()
    if found is None:
        yield None
        return
    from xgboost import collective

    hosts, current = found
    deadline = time.monotonic() + CLUSTER_TIMEOUT_S
    ip = _resolve(hosts[0], deadline)
    for host in hosts[1:]:
        _resolve(host, deadline)
    rank = hosts.index(current)
    tracker = _tracker(ip, len(hosts), port) if rank == 0 else None
    _join(_worker_args(ip, port, rank, len(hosts)), deadline)
    try:
        yield {"hosts": hosts, "host": current, "rank": rank}
    finally:
        collective.finalize()
    if tracker is not None:
        _stop(tracker)


def _stop(tracker: Any) -> None:
    """Wait (briefly) for the tracker to see every worker shut down; its thread is a daemon either way."""
    import xgboost as xgb

    try:
        if hasattr(tracker, "wait_for"):  # xgboost >= 2
            tracker.wait_for(60)
        elif tracker.thread is not None:  # 1.7: join() would wait without a bound
            tracker.thread.join(60)
    except (xgb.core.XGBoostError, ValueError):
        pass  # the model is trained and every host has left: nothing is lost


def check_shard(channel: str | None, cluster: tuple[list[str], str] | None) -> None:
    """On a distributed job each host reads its ShardedByS3Key share of the train files: none is a config error."""
    path = Path(channel) if channel else None
    if cluster is None or path is None or not path.is_dir():
        return
    if not any(p.is_file() and not p.name.startswith(".") for p in path.iterdir()):
        hosts, host = cluster
        raise StepError(
            E_NO_SHARD,
            f"host {host} got no train file: ShardedByS3Key gives each of the "
            f"{len(hosts)} instances whole files, and the train split has fewer",
            file=str(path),
            hint="set split.train_files to at least sagemaker.training.instance_count (fraudflow validate: FF612)",
        )


def total_rows(rows: int, cluster: dict | None) -> int:
    """The training rows of every host (the collective's sum); this host's on a single host."""
    if cluster is None:
        return rows
    from xgboost import collective

    return int(collective.allreduce(np.array([rows], dtype=np.float64), collective.Op.SUM)[0])


# ---------------------------------------------------------------------------------------------- serving bundle

SERVING_CODE = (
    "inference.py",
    "preprocess.py",
    "stepkit.py",
)  # fraudflow/plan.py's: shipped beside this script
SCHEMA_FILE = "feature_schema.json"


def _serving_code_dir() -> Path:
    """Where the files shipped with this script are: beside it (fraudflow run, or the sourcedir as extracted),
    else SageMaker's code folder (the training toolkit may run a pip-installed copy of this script)."""
    for folder in (Path(__file__).resolve().parent, Path("/opt/ml/code")):
        if all((folder / f).is_file() for f in SERVING_CODE):
            return folder
    raise StepError(
        E_SERVING,
        f"{' and '.join(SERVING_CODE)} are not beside train.py: the model cannot be served",
        file=str(Path(__file__).resolve()),
        hint="the training sourcedir must hold train.py, inference.py, preprocess.py and stepkit.py (fraudflow render packs them)",
    )


def serving_bundle(schema_channel: str | None) -> dict:
    """What SageMaker's script-mode serving needs in the model folder's code/ (SAGEMAKER_SUBMIT_DIRECTORY=
    /opt/ml/model/code): inference.py, the preprocess.py that encoded the training data, and its feature schema
    from the schema channel. Read before training, so a missing piece fails fast. No channel, no bundle."""
    if not schema_channel:
        return {}
    files = [f for f in _channel_files(schema_channel, "schema") if f.name == SCHEMA_FILE]
    if not files:
        raise StepError(E_NO_DATA, f"the schema channel has no {SCHEMA_FILE}", file=str(schema_channel))
    try:
        json.loads(files[0].read_text())
    except (OSError, ValueError) as exc:
        raise StepError(E_SERVING, f"{SCHEMA_FILE} is not readable JSON: {exc}", file=str(files[0])) from None
    code = _serving_code_dir()
    bundle = {name: (code / name).read_bytes() for name in SERVING_CODE}
    bundle[SCHEMA_FILE] = files[0].read_bytes()
    return bundle


def write_serving_bundle(model_dir: Path, bundle: dict) -> None:
    if bundle:
        (model_dir / "code").mkdir()
        for name, data in sorted(bundle.items()):
            (model_dir / "code" / name).write_bytes(data)


def run(
    params: dict,
    train_dir: str | None,
    validation_dir: str | None,
    model_dir: str | Path,
    output_data_dir: str | Path,
    schema_dir: str | None = None,
    callbacks: list | None = None,
) -> dict:
    bundle = serving_bundle(schema_dir)
    check_shard(train_dir, cluster_hosts())
    x_train, y_train = read_channel(train_dir, "train")
    x_val = y_val = None
    if validation_dir and Path(validation_dir).exists():
        x_val, y_val = read_channel(validation_dir, "validation")
    with distributed() as cluster:  # SM_HOSTS with several hosts: XGBoost's collective (else no-op)
        booster, summary = train(params, x_train, y_train, x_val, y_val, callbacks)
        if cluster is not None:
            summary["distributed"] = {**cluster, "train_rows": total_rows(len(y_train), cluster)}
    if cluster is not None and cluster["rank"] != 0:
        return summary  # only the first host writes the model and the report (as AWS's launcher does)

    def write_model(out: Path) -> None:
        # The model folder becomes model.tar.gz. SageMaker's endpoint runs code/inference.py in script mode; in
        # algorithm mode the XGBoost serving container loads EVERY non-dot file as a booster
        # (SAGEMAKER_INFERENCE_ENSEMBLE defaults to true), so no other file goes beside the model.
        # `xgboost-model` is XGBoost JSON, which 1.7 and later read.
        raw = bytes(booster.save_raw("json"))
        (out / MODEL_FILE).write_bytes(portable_model(raw))
        write_serving_bundle(out, bundle)

    def write_report(out: Path) -> None:  # SM_OUTPUT_DATA_DIR: SageMaker uploads it as output.tar.gz
        (out / TRAINING_REPORT).write_text(json.dumps(summary, indent=2) + "\n")

    stepkit.publish(Path(model_dir), write_model)
    stepkit.publish(Path(output_data_dir), write_report)
    return summary


def main(argv: list[str] | None = None) -> int:
    """Entry point (see stepkit.entry: a StepError propagates in-process, is printed as a script)."""
    parser = stepkit.Parser(E_CONFIG, __doc__.splitlines()[0])
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    parser.add_argument("--validation", default=os.environ.get("SM_CHANNEL_VALIDATION"))
    parser.add_argument("--model-dir", "--model_dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--schema", default=os.environ.get("SM_CHANNEL_SCHEMA"))
    parser.add_argument(
        "--output-data-dir",
        "--output_data_dir",
        default=os.environ.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"),
    )

    def work() -> int:
        args, rest = parser.parse_known_args(argv)
        summary = run(
            parse_hyperparameters(rest),
            args.train,
            args.validation,
            args.model_dir,
            args.output_data_dir,
            args.schema,
        )
        print(json.dumps({k: summary[k] for k in ("rounds_trained", "best_iteration", "best_score")}))
        for name, value in final_metrics(summary).items():  # what a tuning job's MetricDefinitions match
            print(f"final {name}: {value!r}")
        return 0

    return stepkit.entry(argv, work)


if __name__ == "__main__":
    sys.exit(main())
