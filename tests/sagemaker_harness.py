"""Executes a SageMaker pipeline definition step by step under the contracts of SageMaker's containers.

Offline and without Docker: the definition is the one `fraudflow apply` stored on moto's server, the S3 objects
are moto's, and every job runs this machine's Python under the container's path layout:

- Processing: each `S3Input` downloaded under its `LocalPath`, `ContainerEntrypoint + ContainerArguments` run,
  each `LocalPath` output uploaded to its `S3Uri` (`S3UploadMode: EndOfJob`); `PropertyFiles` read from there.
- Training (script mode, as sagemaker-containers 2.8 in the XGBoost 1.7-1 image launches it: `_env.py`,
  `_mapping.py`, `_modules.py`): hyperparameters JSON-decoded, the `sagemaker_*` ones removed, the rest passed
  as sorted `--key value` to `python -m <sagemaker_program without .py>` from the extracted
  `sagemaker_submit_directory` tarball, with `SM_CHANNEL_*`, `SM_MODEL_DIR`, `SM_OUTPUT_DATA_DIR`, `SM_HOSTS`,
  `SM_CURRENT_HOST` …; `/opt/ml/model` packed into `<S3OutputPath>/<job>/output/model.tar.gz` and
  `/opt/ml/output/data` into `…/output.tar.gz`.
- Serving (`ServedModel`): the XGBoost container's model loading on a model.tar.gz. Default mode is
  `serve_utils.get_loaded_booster` (1.7-1): with `SAGEMAKER_INFERENCE_ENSEMBLE` true (the default) EVERY non-dot
  file of the model folder is loaded as a booster (pickle, else `Booster.load_model`) and the predictions are
  averaged. Script mode (`SAGEMAKER_PROGRAM` in the model's environment): the user module is taken from
  `SAGEMAKER_SUBMIT_DIRECTORY` (default `/opt/ml/code`) and its model_fn/input_fn/predict_fn/output_fn called
  in the container's Flask view (request decoding, Accept default, error wrapping): the one emulation of the
  serving container that tests/test_serving_parity.py and the end-to-end test compare with `fraudflow serve`.
- Condition: `Std:JsonGet` on the PropertyFile or on an S3Uri (a ClarifyCheck's analysis.json, which the emulated
  check writes in Clarify's layout); Fail: the execution fails with the resolved message. Processing jobs get the
  AWS_* environment of the test's account (moto), as a SageMaker job gets its role's credentials.
- ClarifyCheck: the analysis config validated against the SDK's own `ANALYSIS_CONFIG_SCHEMA_V1_0`; the shadow
  endpoint is a `ServedModel` of the Model step's container; the bias job's post-training metrics computed with
  smclarify (Clarify's own library) on the endpoint's predictions; the explainability job's SHAP values are the
  served booster's exact contributions (Clarify's KernelSHAP estimates them; see docs/sagemaker.md).
- RegisterModel: a model package in moto; Lambda: the handler from the deployed zip, called against moto.

Paths under /opt/ml: each job runs in a private mount namespace (`unshare --mount`) where an overlay over /opt
(its upper layer in the job's temporary folder) holds /opt/ml, bind-mounted from that folder. Nothing is
written outside temporary folders.

Several training instances (`ResourceConfig.InstanceCount` N > 1): hosts algo-1 … algo-N run as N processes in
one private network namespace (`unshare --net`, loopback only, so XGBoost's tracker port is the job's own),
each in its own mount namespace with its own /opt/ml and an /etc/hosts that resolves every algo-i (as
SageMaker's cluster DNS does); each gets `SM_HOSTS`/`SM_CURRENT_HOST` and `resourceconfig.json` for itself, a
`FullyReplicated` channel whole, and a `ShardedByS3Key` channel's objects dealt out by sorted key (host i gets
keys i, i+N, …: SageMaker gives each instance about 1/N of the objects, whole). When one host fails the others
are stopped, as SageMaker stops the job; algo-1's /opt/ml/model and output/data are packed.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.util
import io
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tarfile
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

ML = PurePosixPath("/opt/ml")
HOST = "algo-1"


class HarnessError(AssertionError):
    """A step failed under the container contract (what SageMaker would report as a failed step)."""


# ------------------------------------------------------------------------------------------- namespaces


def _unshare_prefix() -> list[str]:
    prefix = ["unshare", "--mount", "--propagation", "private"]
    return prefix if os.geteuid() == 0 else [*prefix, "--map-root-user"]


def namespace_problem() -> str | None:
    """Why jobs cannot get a private /opt/ml here, or None when they can."""
    if not shutil.which("unshare") or not Path("/opt").is_dir():
        return "needs unshare(1) and an /opt folder"
    with _scratch() as tmp:
        try:
            run_in_container(["true"], {}, tmp / "ml", tmp, check=True)
        except (HarnessError, OSError) as exc:
            return f"cannot make a private mount namespace: {exc}"
    return None


@contextmanager
def _scratch() -> Iterator[Path]:
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="ff-harness-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


_MOUNT = """set -e
if [ -d /opt/ml ]; then :; else
  mount -t overlay overlay -o "lowerdir=/opt,upperdir=$FF_LAYER/upper,workdir=$FF_LAYER/work" /opt
  mkdir /opt/ml
fi
mount --bind "$FF_ML" /opt/ml
if [ -n "${FF_ETC_HOSTS:-}" ]; then mount --bind "$FF_ETC_HOSTS" /etc/hosts; fi
cd "$FF_CWD"
exec "$@"
"""


def run_in_container(
    cmd: list[str], env: dict[str, str], ml_root: Path, job: Path, *, cwd: str = "/", check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `cmd` with `ml_root` mounted at /opt/ml (private to the process), env replaced by `env`."""
    layer = job / ".overlay"
    for sub in ("upper", "work"):
        (layer / sub).mkdir(parents=True, exist_ok=True)
    ml_root.mkdir(parents=True, exist_ok=True)
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(job),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        **env,
        "FF_LAYER": str(layer),
        "FF_ML": str(ml_root),
        "FF_CWD": cwd,
    }
    proc = subprocess.run(
        [*_unshare_prefix(), "sh", "-c", _MOUNT, "sh", *cmd],
        env=full_env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=900,
    )
    shutil.rmtree(layer, ignore_errors=True)
    if check and proc.returncode != 0:
        raise HarnessError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@dataclass
class HostJob:
    """One instance of a multi-instance training job: its command, environment and /opt/ml."""

    host: str
    cmd: list[str]
    env: dict[str, str]
    ml_root: Path
    job: Path  # the host's scratch folder (its overlay layer, its log files)


# Runs inside the job's network namespace: loopback up (the namespace starts with it down), one mount
# namespace per host, and SageMaker's rule that one failing host fails (stops) the whole job.
_HOSTS_LAUNCHER = r"""
import fcntl, json, socket, struct, subprocess, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH", b"lo", 0))[:18])[1]  # SIOCGIFFLAGS
fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 1))  # SIOCSIFFLAGS: IFF_UP
spec = json.load(sys.stdin)
procs = []
for h in spec["hosts"]:
    with open(h["out"], "w") as out, open(h["err"], "w") as err:
        procs.append(subprocess.Popen(h["argv"], env=h["env"], stdout=out, stderr=err, stdin=subprocess.DEVNULL))
deadline = time.monotonic() + spec["timeout"]
while None in [p.poll() for p in procs]:  # a list: poll every host, each time
    failed = any(p.returncode not in (None, 0) for p in procs)
    if failed or time.monotonic() > deadline:
        time.sleep(2 if failed else 0)  # let the other hosts report their own error first
        for p in procs:
            if p.poll() is None:
                p.kill()
        break
    time.sleep(0.1)
print(json.dumps([p.wait() for p in procs]))
"""


def etc_hosts(hosts: list[str], folder: Path) -> Path:
    """An /etc/hosts resolving algo-i to 127.0.0.i (all loopback, inside the job's network namespace)."""
    path = folder / "etc-hosts"
    lines = ["127.0.0.1 localhost", *(f"127.0.0.{i} {h}" for i, h in enumerate(hosts, 1))]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_hosts(jobs: list[HostJob], hosts_file: Path) -> list[subprocess.CompletedProcess[str]]:
    """Run the hosts of one job at once, in a private network namespace shared by them only."""
    spec: dict[str, Any] = {"timeout": 900, "hosts": []}
    for j in jobs:
        layer = j.job / ".overlay"
        for sub in ("upper", "work"):
            (layer / sub).mkdir(parents=True, exist_ok=True)
        j.ml_root.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(j.job),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            **j.env,
            "FF_LAYER": str(layer),
            "FF_ML": str(j.ml_root),
            "FF_CWD": "/",
            "FF_ETC_HOSTS": str(hosts_file),
        }
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", _MOUNT, "sh", *j.cmd]
        spec["hosts"].append(
            {"argv": argv, "env": env, "out": str(j.job / "stdout"), "err": str(j.job / "stderr")}
        )
    # --pid with --kill-child: the launcher is the namespace's init, so if it dies (a timeout) every host dies too
    outer = ["unshare", "--net", "--pid", "--kill-child"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    proc = subprocess.run(
        [*outer, sys.executable, "-c", _HOSTS_LAUNCHER],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=960,
    )
    if proc.returncode != 0:
        raise HarnessError(f"the hosts' network namespace failed: {proc.stderr[-3000:]}")
    codes = json.loads(proc.stdout.strip().splitlines()[-1])
    out = []
    for j, code in zip(jobs, codes, strict=True):
        shutil.rmtree(j.job / ".overlay", ignore_errors=True)
        stdout, stderr = (j.job / "stdout").read_text(), (j.job / "stderr").read_text()
        out.append(subprocess.CompletedProcess(j.cmd, code, stdout, stderr))
    return out


def shard_keys(keys: list[str], host_index: int, hosts: int) -> list[str]:
    """ShardedByS3Key: whole objects, about 1/N each; here dealt out by sorted key."""
    return sorted(keys)[host_index::hosts]


# ------------------------------------------------------------------------------------------------- S3


def split_s3(uri: str) -> tuple[str, str]:
    m = re.fullmatch(r"s3://([^/]+)/?(.*)", uri)
    if not m:
        raise HarnessError(f"not an S3 URI: {uri!r}")
    return m.group(1), m.group(2)


def s3_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def download_prefix(s3: Any, uri: str, dest: Path, shard: tuple[int, int] | None = None) -> list[Path]:
    """S3Prefix input: every object under the prefix, at its path below the prefix (an exact key: its name);
    with `shard` (host index, hosts), ShardedByS3Key: that host's share of the objects."""
    bucket, prefix = split_s3(uri)
    keys = s3_keys(s3, bucket, prefix)
    if not keys:
        raise HarnessError(f"no S3 object under {uri} (ClientError: the input does not exist)")
    if shard is not None:
        keys = shard_keys(keys, *shard)
    files = []
    for key in keys:
        rel = key[len(prefix) :].lstrip("/") or PurePosixPath(key).name
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        files.append(target)
    return files


def upload_dir(s3: Any, local: Path, uri: str) -> list[str]:
    bucket, prefix = split_s3(uri)
    keys = []
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        key = "/".join(x for x in (prefix.rstrip("/"), path.relative_to(local).as_posix()) if x)
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        keys.append(key)
    return keys


def get_object(s3: Any, uri: str) -> bytes:
    bucket, key = split_s3(uri)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def tar_gz(folder: Path) -> bytes:
    """How SageMaker packs /opt/ml/model: the folder's entries at the archive's top level."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    return out.getvalue()


def extract(data: bytes, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        tar.extractall(dest, filter="data")


# ------------------------------------------------------------------------------------------ references


_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_:-]*)|\[(\d+)\]|\['([^']*)'\]")


def walk(node: Any, path: str, what: str) -> Any:
    """Follow a property path (`A.B['name'].C[0]`); a list indexed by a name matches its *Name entry."""
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m:
            raise HarnessError(f"{what}: cannot parse {path!r} at {pos}")
        name, index, key = m.groups()
        pos = m.end()
        if index is not None:
            node = node[int(index)]
        elif key is not None and isinstance(node, list):
            hits = [x for x in node if key in (x.get("OutputName"), x.get("ChannelName"), x.get("Name"))]
            if not hits:
                raise HarnessError(f"{what}: no entry {key!r}")
            node = hits[0]
        else:
            k = name if name is not None else key
            if not isinstance(node, dict) or k not in node:
                raise HarnessError(f"{what}: no property {k!r} (at {path!r})")
            node = node[k]
    return node


@dataclass
class Context:
    parameters: dict[str, Any]
    execution_id: str
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    fetch: Callable[[str], bytes] | None = None  # an S3 object's bytes, for Std:JsonGet on an S3Uri

    def get(self, ref: str) -> Any:
        head, _, rest = ref.partition(".")
        if head == "Parameters":
            if rest not in self.parameters:
                raise HarnessError(f"unknown parameter {rest!r}")
            return self.parameters[rest]
        if ref == "Execution.PipelineExecutionId":
            return self.execution_id
        if head == "Steps":
            step, _, path = rest.partition(".")
            if step not in self.properties:
                raise HarnessError(f"{ref}: step {step!r} has not run (or is not before this step)")
            return walk(self.properties[step], path, ref)
        raise HarnessError(f"unsupported reference {ref!r}")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Get"}:
            return self.get(value["Get"])
        if set(value) == {"Std:Join"}:
            join = value["Std:Join"]
            return join["On"].join(_text(self.resolve(v)) for v in join["Values"])
        if set(value) == {"Std:JsonGet"}:
            jg = value["Std:JsonGet"]
            if "S3Uri" in jg:  # JsonGet(s3_uri=Join(...)): a JSON file in S3 (a ClarifyCheck's report)
                if self.fetch is None:
                    raise HarnessError("JsonGet on an S3Uri needs S3")
                doc = json.loads(self.fetch(self.resolve(jg["S3Uri"])))
            else:
                doc = self.resolve(jg["PropertyFile"])
            return walk(doc, jg["Path"], f"JsonGet {jg['Path']}")
        return {k: self.resolve(v) for k, v in value.items()}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def typed_parameter(kind: str, value: Any) -> Any:
    return {"Integer": int, "Float": float, "Boolean": lambda v: str(v).lower() == "true"}.get(kind, str)(
        value
    )


# ---------------------------------------------------------------------------------------- training toolkit


def decode_hyperparameters(raw: dict[str, str]) -> dict[str, Any]:
    """sagemaker-containers `read_hyperparameters`: each value JSON-decoded, kept as is if it is not JSON."""
    out = {}
    for k, v in raw.items():
        try:
            out[k] = json.loads(v)
        except (ValueError, TypeError):
            out[k] = v
    return out


def sample_ranges(ranges: dict[str, list[dict[str, Any]]], rng: Any) -> dict[str, str]:
    """One set of values from a tuning job's ParameterRanges, as the tuner puts them among the hyperparameters:
    text, a log-scaled range sampled on the log scale, a categorical value as listed."""
    out: dict[str, str] = {}
    for r in ranges.get("ContinuousParameterRanges", []):
        lo, hi = float(r["MinValue"]), float(r["MaxValue"])
        if r.get("ScalingType") == "Logarithmic":
            out[r["Name"]] = repr(float(np.exp(rng.uniform(np.log(lo), np.log(hi)))))
        else:
            out[r["Name"]] = repr(float(rng.uniform(lo, hi)))
    for r in ranges.get("IntegerParameterRanges", []):
        out[r["Name"]] = str(int(rng.randint(int(r["MinValue"]), int(r["MaxValue"]) + 1)))
    for r in ranges.get("CategoricalParameterRanges", []):
        out[r["Name"]] = r["Values"][int(rng.randint(len(r["Values"])))]
    return out


def _decode(value: Any) -> str:
    if isinstance(value, dict):  # `_mapping.to_cmd_args`: a map becomes k=v,k=v (sorted)
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    return "" if value is None else str(value)


def to_cmd_args(hps: dict[str, Any]) -> list[str]:
    """sagemaker-containers `_mapping.to_cmd_args`: sorted keys, `--key value` (`-k` for one letter)."""
    args: list[str] = []
    for key in sorted(hps):
        args += [f"--{key}" if len(key) > 1 else f"-{key}", _decode(hps[key])]
    return args


def training_env(
    channels: list[str],
    user_hps: dict[str, Any],
    module: str,
    submit: str,
    hosts: list[str] | None = None,
    current: str = HOST,
) -> dict[str, str]:
    """The SM_* variables sagemaker-containers' `TrainingEnv.to_env_vars` gives the user script (one host's)."""
    env = {
        "SM_HOSTS": json.dumps(hosts or [HOST]),
        "SM_CURRENT_HOST": current,
        "SM_NETWORK_INTERFACE_NAME": "eth0",
        "SM_HPS": json.dumps(user_hps),
        "SM_USER_ENTRY_POINT": module + ".py",
        "SM_FRAMEWORK_PARAMS": "{}",
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_MODULE_NAME": module,
        "SM_MODULE_DIR": submit,
        "SM_LOG_LEVEL": "20",
        "SM_INPUT_DIR": f"{ML}/input",
        "SM_INPUT_CONFIG_DIR": f"{ML}/input/config",
        "SM_OUTPUT_DIR": f"{ML}/output",
        "SM_OUTPUT_DATA_DIR": f"{ML}/output/data",
        "SM_OUTPUT_INTERMEDIATE_DIR": f"{ML}/output/intermediate",
        "SM_MODEL_DIR": f"{ML}/model",
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": "0",
        "SM_USER_ARGS": json.dumps(to_cmd_args(user_hps)),
    }
    for name in channels:
        env[f"SM_CHANNEL_{name.upper()}"] = f"{ML}/input/data/{name}"
    for key, value in user_hps.items():
        env[f"SM_HP_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


# ------------------------------------------------------------------------------------------------ serving


PKL_FORMAT, XGB_FORMAT = "pkl_format", "xgb_format"


def get_loaded_booster(model_dir: Path, ensemble: bool) -> tuple[Any, Any]:
    """sagemaker-xgboost-container 1.7-1 `serve_utils.get_loaded_booster`, line for line in behaviour."""
    import xgboost as xgb

    paths = [p for p in (model_dir / n for n in os.listdir(model_dir)) if p.is_file()]
    paths = [p for p in paths if not p.name.startswith(".")]
    if not paths:
        raise HarnessError(f"no model file in {model_dir} (IndexError in get_loaded_booster)")
    paths = paths if ensemble else paths[:1]
    models, formats = [], []
    for path in paths:
        try:
            with open(path, "rb") as f:
                booster, fmt = pickle.load(f), PKL_FORMAT
        except Exception as exc_pkl:
            try:
                booster = xgb.Booster()
                with warnings.catch_warnings():  # XGBoost >= 2 warns on a name without an extension
                    warnings.simplefilter("ignore", UserWarning)
                    booster.load_model(str(path))
                fmt = XGB_FORMAT
            except Exception as exc_xgb:
                first = str(exc_xgb).strip().splitlines()[0] if str(exc_xgb).strip() else ""
                raise HarnessError(
                    f"Model {path.name} cannot be loaded:\nPickle load error={exc_pkl}\n"
                    f"XGB load model error={first}"
                ) from None
        booster.set_param("nthread", 1)
        models.append(booster)
        formats.append(fmt)
    return (models, formats) if ensemble and len(models) > 1 else (models[0], formats[0])


def csv_to_dmatrix(payload: bytes) -> Any:
    """The container's CSV decoding (`encoder.csv_to_dmatrix`, dtype float; empty fields are NaN)."""
    import xgboost as xgb

    text = payload.strip().decode("utf-8")
    rows = [["nan" if x == "" else x for x in line.split(",")] for line in text.split("\n")]
    return xgb.DMatrix(np.array(rows).astype(float))


def csv_encode(values: list[Any]) -> bytes:
    """sagemaker-containers `array_to_csv`: a 1-D list becomes one value per line."""
    array = np.array(values)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(array.tolist())
    return out.getvalue().encode()


UTF8_TYPES = ("application/json", "text/csv")  # sagemaker_containers._content_types.UTF8_TYPES


class ClientError(Exception):
    """sagemaker_containers._errors.ClientError: what `error_wrapper` turns any handler exception into."""


def _error_wrapped(fn: Callable[..., Any]) -> Callable[..., Any]:
    """sagemaker_containers._functions.error_wrapper: nothing catches the ClientError, so Flask answers 500."""

    def wrapper(*args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            raise ClientError(exc) from exc

    return wrapper


class Answer(NamedTuple):
    """What POST /invocations returned: status, media type (Flask's `; charset=` dropped), body."""

    status: int
    content_type: str
    body: bytes


@dataclass
class ServedModel:
    """A model container as SageMaker hosts it: the image's serving stack on the extracted model.tar.gz.

    Script mode follows sagemaker-containers 2.8.6.post2 (`_server`, `_modules`, `_transformer`, `_worker`,
    `_functions`), which the XGBoost 1.7-1 image pins: each request runs in a Flask view where the content is
    str for exactly text/csv and application/json (bytes otherwise), an Accept that is missing or `*/*` becomes
    SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT (default application/json), every handler is wrapped by
    `error_wrapper` (any exception: ClientError, answered 500), a `(body, type)` result becomes a 200 response
    and a response object passes through untouched."""

    mode: str  # "default" | "script"
    model: Any
    environment: dict[str, str]
    handlers: Any = None  # the user module (script mode)
    _client: Any = field(default=None, repr=False)

    @classmethod
    def load(cls, s3: Any, container: dict[str, Any], workdir: Path) -> ServedModel:
        """The container of a Model / model package (`ModelDataUrl`, `Environment`) on moto's S3."""
        env = {k: str(v) for k, v in (container.get("Environment") or {}).items()}
        return cls.from_archive(get_object(s3, container["ModelDataUrl"]), env, workdir, s3)

    @classmethod
    def from_archive(
        cls, model_tar: bytes, env: dict[str, str], workdir: Path, s3: Any = None
    ) -> ServedModel:
        """SageMaker extracts model.tar.gz to /opt/ml/model (here `workdir/model`) and starts the server."""
        model_dir = workdir / "model"  # /opt/ml/model
        extract(model_tar, model_dir)
        program = env.get("SAGEMAKER_PROGRAM")
        if not program:
            ensemble = env.get("SAGEMAKER_INFERENCE_ENSEMBLE", "true") == "true"
            model, _ = get_loaded_booster(model_dir, ensemble)
            return cls("default", model, env)
        module = _load_user_module(s3, env, program, model_dir, workdir / "code")
        with _environ(env):
            model_fn = getattr(module, "model_fn", None)
            if model_fn is None:  # transformer.default_model_fn: the XGBoost framework provides none
                raise HarnessError(f"{program} has no model_fn (the XGBoost container provides no default)")
            model = model_fn(str(model_dir))
        return cls("script", model, env, module)

    def request(
        self, body: bytes, content_type: str | None = "text/csv", accept: str | None = None
    ) -> Answer:
        """One POST /invocations with these headers, answered as the container answers it."""
        if self.mode == "default":
            return self._default_request(body, content_type or "application/json")
        if self._client is None:
            import flask

            app = flask.Flask("emulated-sagemaker-xgboost")
            app.add_url_rule("/invocations", view_func=self._script_view, methods=["POST"])
            self._client = app.test_client()
        headers = {"Accept": accept} if accept else {}
        if content_type:
            headers["Content-Type"] = content_type
        r = self._client.post("/invocations", data=body, headers=headers)
        return Answer(r.status_code, r.headers.get("Content-Type", "").split(";")[0], r.get_data())

    def invoke(self, body: bytes, content_type: str = "text/csv", accept: str = "text/csv") -> bytes:
        """The body of a 200 answer (InvokeEndpoint raises ModelError on any other status)."""
        answer = self.request(body, content_type, accept)
        if answer.status != 200:
            raise HarnessError(f"the endpoint answered {answer.status}: {answer.body[:500]!r}")
        return answer.body

    def _default_request(self, body: bytes, content_type: str) -> Answer:
        if content_type.split(";")[0].strip() != "text/csv":
            raise HarnessError(
                f"the harness emulates only text/csv for the default handler, not {content_type}"
            )
        dtest = csv_to_dmatrix(body)
        if isinstance(self.model, list):
            preds = np.mean([b.predict(dtest, validate_features=False) for b in self.model], axis=0)
        else:
            preds = self.model.predict(dtest, validate_features=False)
        return Answer(200, "text/csv", csv_encode(preds.tolist()))

    def _script_view(self) -> Any:
        """sagemaker_containers `Transformer.transform` with `_default_transform_fn` (or the user's transform_fn)."""
        import flask

        req = flask.request
        content_type = req.headers.get("ContentType") or req.headers.get("Content-Type") or "application/json"
        accept = req.headers.get("Accept")
        if not accept or accept == "*/*":
            accept = self.environment.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/json")
        content = req.get_data(as_text=content_type in UTF8_TYPES)
        m = self.handlers
        with _environ(self.environment):
            if getattr(m, "transform_fn", None):
                result = _error_wrapped(m.transform_fn)(self.model, content, content_type, accept)
            else:
                data = _error_wrapped(getattr(m, "input_fn", None) or _no_default("input_fn"))(
                    content, content_type
                )
                predict = getattr(m, "predict_fn", None) or _default_predict
                prediction = _error_wrapped(predict)(data, self.model)
                output = getattr(m, "output_fn", None) or _no_default("output_fn")
                result = _error_wrapped(output)(prediction, accept)
        if isinstance(result, tuple):
            return flask.Response(result[0], mimetype=result[1])
        return result

    def boosters(self) -> list[Any]:
        """The XGBoost boosters behind the endpoint (to read their exact SHAP contributions)."""
        import xgboost as xgb

        found: list[Any] = []

        def visit(x: Any, depth: int = 0) -> None:
            if isinstance(x, xgb.Booster):
                found.append(x)
            elif depth < 3 and isinstance(x, (list, tuple)):
                for y in x:
                    visit(y, depth + 1)
            elif depth < 3 and isinstance(x, dict):
                for y in x.values():
                    visit(y, depth + 1)
            elif depth < 3 and hasattr(x, "__dict__"):
                for y in vars(x).values():
                    visit(y, depth + 1)

        visit(self.model)
        return found


def batch_transform(
    served: ServedModel,
    data: bytes,
    *,
    content_type: str,
    accept: str | None = None,
    batch_strategy: str = "MultiRecord",
    max_payload_mb: float = 6.0,
    assemble_with: str = "Line",
) -> bytes:
    """A batch transform job's data plane over one input object with `SplitType: Line`, as SageMaker runs it
    against the same container: the object is split into records at line ends (empty lines dropped), the
    records are grouped into mini-batches (MultiRecord: as many lines as fit MaxPayloadInMB, joined by a
    newline; SingleRecord: one line each), each mini-batch is one POST /invocations, and the answers are
    concatenated in order (`AssembleWith: Line`: each followed by a newline, unless it ends with one). Any
    non-200 answer fails the job, as it does on SageMaker."""
    if batch_strategy not in ("MultiRecord", "SingleRecord"):
        raise HarnessError(f"BatchStrategy {batch_strategy!r}")
    limit = int(max_payload_mb * 1024 * 1024)
    records = [ln for ln in data.splitlines() if ln.strip()]
    batches: list[list[bytes]] = []
    size = 0
    for rec in records:
        if rec and len(rec) > limit:
            raise HarnessError(f"a record of {len(rec)} bytes exceeds MaxPayloadInMB {max_payload_mb}")
        if batch_strategy == "SingleRecord" or not batches or size + len(rec) + 1 > limit:
            batches.append([])
            size = 0
        batches[-1].append(rec)
        size += len(rec) + 1
    out = bytearray()
    for i, batch in enumerate(batches):
        answer = served.request(b"\n".join(batch) + b"\n", content_type, accept)
        if answer.status != 200:
            raise HarnessError(
                f"mini-batch {i} (records from {sum(map(len, batches[:i]))}): "
                f"{answer.status} {answer.body[:300]!r}"
            )
        out += answer.body
        if assemble_with == "Line" and not answer.body.endswith(b"\n"):
            out += b"\n"
    return bytes(out)


def _joined(line: bytes, answer: bytes, content_type: str) -> bytes:
    """SageMaker's JoinSource Input for one record: a JSON object gains `SageMakerOutput`, a CSV row the answer."""
    if content_type == "application/json":
        doc = json.loads(line)
        if not isinstance(doc, dict):
            raise HarnessError("JoinSource Input: a JSON input record must be an object")
        return json.dumps({**doc, "SageMakerOutput": json.loads(answer)}).encode()
    return line + b"," + answer


def _no_default(name: str) -> Callable[..., Any]:
    def fail(*_: Any) -> Any:
        raise HarnessError(f"script mode without {name}: the harness emulates only the user's handlers")

    return fail


def _default_predict(data: Any, model: Any) -> Any:
    return model.predict(data, validate_features=False)


@contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _load_user_module(s3: Any, env: dict[str, str], program: str, model_dir: Path, code_dir: Path) -> Any:
    """sagemaker-containers `_modules.import_module(SAGEMAKER_SUBMIT_DIRECTORY, module)`: the code is copied
    (a folder) or extracted (an S3 tarball) into /opt/ml/code, then imported by module name."""
    submit = env.get("SAGEMAKER_SUBMIT_DIRECTORY", f"{ML}/code")
    if submit.startswith("s3://"):
        extract(get_object(s3, submit), code_dir)
    elif PurePosixPath(submit).is_relative_to(ML / "model"):
        source = model_dir / PurePosixPath(submit).relative_to(ML / "model")
        if not source.is_dir():
            raise HarnessError(f"SAGEMAKER_SUBMIT_DIRECTORY {submit}: no such folder in model.tar.gz")
        shutil.copytree(source, code_dir)
    elif PurePosixPath(submit) != ML / "code":
        raise HarnessError(f"SAGEMAKER_SUBMIT_DIRECTORY {submit}: not an S3 tarball or a folder of the model")
    name = program[:-3] if program.endswith(".py") else program
    path = code_dir / f"{name}.py"
    if not path.is_file():
        raise HarnessError(f"SAGEMAKER_PROGRAM {program}: no {name}.py in {submit} (ImportModuleError)")
    spec = importlib.util.spec_from_file_location(f"ff_served_{uuid.uuid4().hex}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(code_dir))  # its sibling modules import as in the container
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(code_dir))
    return module


# ---------------------------------------------------------------------------------------------- Clarify


def validate_analysis_config(config: dict[str, Any]) -> None:
    """The SDK's own schema (sagemaker.clarify.ANALYSIS_CONFIG_SCHEMA_V1_0), as SageMakerClarifyProcessor uses."""
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    from sagemaker.clarify import ANALYSIS_CONFIG_SCHEMA_V1_0
    from schema import SchemaError

    try:
        ANALYSIS_CONFIG_SCHEMA_V1_0.validate(config)
    except SchemaError as exc:
        raise HarnessError(f"the Clarify analysis config does not match the SDK's schema: {exc}") from None


def predict_probabilities(
    served: ServedModel,
    features: pd.DataFrame,
    batch: int = 1000,
    content_type: str = "text/csv",
    accept: str = "text/csv",
) -> np.ndarray:
    """What Clarify's shadow endpoint answers for the dataset's rows (CSV in, CSV out: the only pair emulated)."""
    if (content_type, accept) != ("text/csv", "text/csv"):
        raise HarnessError(f"predictor {content_type} -> {accept}: the harness emulates text/csv -> text/csv")
    out: list[float] = []
    for start in range(0, len(features), batch):
        chunk = features.iloc[start : start + batch]
        body = chunk.to_csv(header=False, index=False, lineterminator="\n").encode()
        answer = served.invoke(body, content_type, accept).decode()
        for line in answer.strip().splitlines():
            if (
                "," in line
            ):  # no `probability` key in the analysis config: Clarify reads the line as the score
                raise HarnessError(f"the endpoint answered {line!r}: not one score per line")
            out.append(float(line))
    if len(out) != len(features):
        raise HarnessError(f"the endpoint answered {len(out)} predictions for {len(features)} rows")
    return np.asarray(out)


def post_training_bias(config: dict[str, Any], data: pd.DataFrame, scores: np.ndarray) -> dict[str, float]:
    """Clarify's bias job: predicted label = score > probability_threshold, metrics by smclarify."""
    from smclarify.bias import report

    label = config["label"]
    positive = list(config["label_values_or_threshold"])
    facet_cfg = config["facet"][0]
    predicted = pd.Series((scores > float(config["probability_threshold"])).astype(int), name="ff_predicted")
    df = data.reset_index(drop=True).assign(ff_predicted=predicted)
    group = df[config["group_variable"]] if config.get("group_variable") else None
    results = report.bias_report(
        df,
        report.FacetColumn(facet_cfg["name_or_index"], list(facet_cfg["value_or_threshold"])),
        report.LabelColumn(label, df[label], positive),
        report.StageType.POST_TRAINING,
        predicted_label_column=report.LabelColumn("ff_predicted", predicted, positive),
        metrics=list(config["methods"]["post_training_bias"]["methods"]),
        group_variable=group,
    )
    values: dict[str, float] = {}
    for m in results[0]["metrics"]:
        v = m.get("value")
        values[m["name"]] = float("inf") if v == "Infinity" else float("-inf") if v == "-Infinity" else v
    return values


def shap_contributions(served: ServedModel, features: pd.DataFrame) -> np.ndarray:
    """The served booster's exact SHAP values (log-odds; last column the bias), rows as the endpoint parses them."""
    import xgboost as xgb

    boosters = served.boosters()
    if len(boosters) != 1:
        raise HarnessError(f"expected one booster behind the endpoint, found {len(boosters)}")
    dm = xgb.DMatrix(features.to_numpy(dtype=float))
    return np.asarray(boosters[0].predict(dm, pred_contribs=True), dtype=np.float64)


# ------------------------------------------------------------------------------------------- the runner


@dataclass
class StepRun:
    name: str
    type: str
    status: str  # Succeeded | Failed | Skipped
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Execution:
    id: str
    status: str = "Executing"
    steps: list[StepRun] = field(default_factory=list)
    failure: str | None = None

    def step(self, name: str) -> StepRun:
        return next(s for s in self.steps if s.name == name)


class PipelineEmulator:
    """Runs a stored pipeline definition as SageMaker would, one step after another, in `workdir`."""

    def __init__(self, aws: Any, pipeline: str, workdir: Path, parameters: dict[str, Any] | None = None):
        self.s3 = aws.client("s3")
        self.sm = aws.client("sagemaker")
        self.lam = aws.client("lambda")
        self.pipeline = pipeline
        self.workdir = workdir
        described = self.sm.describe_pipeline(PipelineName=pipeline)
        self.definition = json.loads(described["PipelineDefinition"])
        self.role = described["RoleArn"]
        m = re.search(r"s3://([^/\"]+)/", described["PipelineDefinition"])
        if not m:
            raise HarnessError("the definition names no bucket")
        self.bucket = m.group(1)
        params = {p["Name"]: p.get("DefaultValue") for p in self.definition.get("Parameters", [])}
        kinds = {p["Name"]: p["Type"] for p in self.definition.get("Parameters", [])}
        for k, v in (parameters or {}).items():
            if k not in params:
                raise HarnessError(f"unknown parameter {k!r}")
            params[k] = v
        typed = {k: typed_parameter(kinds[k], v) for k, v in params.items()}
        self.execution = Execution(uuid.uuid4().hex[:12])
        self.ctx = Context(typed, self.execution.id, fetch=lambda uri: get_object(self.s3, uri))
        # What a job's container gets from its role and region (the credentials SageMaker hands it), here moto's.
        self.job_env = {k: v for k, v in (getattr(aws, "env", None) or {}).items() if k.startswith("AWS_")}
        self.models: dict[str, dict[str, Any]] = {}  # Model step's ModelName -> its resolved container
        self.clarify: dict[str, dict[str, Any]] = {}  # ClarifyCheck step -> what it computed

    # -- driving ---------------------------------------------------------------------------------------
    def run(self) -> Execution:
        try:
            self._run_steps(self.definition["Steps"])
            if self.execution.status == "Executing":
                self.execution.status = "Succeeded"
        except HarnessError as exc:
            self.execution.status = "Failed"
            self.execution.failure = str(exc)
        return self.execution

    def _run_steps(self, steps: list[dict[str, Any]]) -> None:
        for step in steps:
            if self.execution.status != "Executing":
                return
            handler = getattr(self, "_" + step["Type"].lower(), None)
            if handler is None:
                raise HarnessError(f"step {step['Name']}: the harness does not emulate {step['Type']} steps")
            record = StepRun(step["Name"], step["Type"], "Executing")
            self.execution.steps.append(record)
            try:
                handler(step, record)
            except HarnessError as exc:
                record.status = "Failed"
                if record.type == "Condition":  # a step of its branch failed: that step is the news
                    raise
                raise HarnessError(f"step {step['Name']} ({step['Type']}) failed: {exc}") from None
            if record.status == "Executing":
                record.status = "Succeeded"

    def _job(self, step: dict[str, Any]) -> Path:
        job = self.workdir / "jobs" / step["Name"]
        job.mkdir(parents=True)
        return job

    @staticmethod
    def _local(ml_root: Path, path: str) -> Path:
        p = PurePosixPath(path)
        if not p.is_relative_to(ML):
            raise HarnessError(f"LocalPath {path} is not under /opt/ml (the container cannot map it)")
        return ml_root / p.relative_to(ML)

    # -- Processing ------------------------------------------------------------------------------------
    def _processing(self, step: dict[str, Any], record: StepRun) -> None:
        args = self.ctx.resolve(step["Arguments"])
        job = self._job(step)
        ml = job / "ml"
        for inp in args.get("ProcessingInputs", []):
            s3in = inp["S3Input"]
            if s3in.get("S3DataType", "S3Prefix") != "S3Prefix" or s3in.get("S3InputMode") != "File":
                raise HarnessError(f"input {inp['InputName']}: only S3Prefix/File inputs are emulated")
            download_prefix(self.s3, s3in["S3Uri"], self._local(ml, s3in["LocalPath"]))
        outputs = args.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for out in outputs:
            self._local(ml, out["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
        app = args["AppSpecification"]
        cmd = [*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", [])]
        if not cmd:
            raise HarnessError("no ContainerEntrypoint: the image's own entry point is not emulated")
        if cmd[0] in ("python3", "python"):
            cmd[0] = sys.executable  # the image's Python, here this machine's
        proc = run_in_container(
            cmd, {**self.job_env, **dict(args.get("Environment") or {})}, ml, job, check=False
        )
        record.detail["log"] = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise HarnessError(f"AlgorithmError: exit code {proc.returncode}\n{proc.stderr[-3000:]}")
        for out in outputs:  # EndOfJob upload
            upload_dir(self.s3, self._local(ml, out["S3Output"]["LocalPath"]), out["S3Output"]["S3Uri"])
        files = {}
        for pf in step.get("PropertyFiles", []):
            out = next(o for o in outputs if o["OutputName"] == pf["OutputName"])
            path = self._local(ml, out["S3Output"]["LocalPath"]) / pf["FilePath"]
            files[pf["PropertyFileName"]] = json.loads(path.read_text())
        self.ctx.properties[step["Name"]] = {
            "ProcessingJobName": f"pipelines-{self.execution.id}-{step['Name']}",
            "ProcessingOutputConfig": args.get("ProcessingOutputConfig", {}),
            "PropertyFiles": files,
        }
        record.detail["ml_root"] = ml

    # -- Training --------------------------------------------------------------------------------------
    def _training(self, step: dict[str, Any], record: StepRun) -> None:
        args = self.ctx.resolve(step["Arguments"])
        job = self._job(step)
        raw = {k: str(v) for k, v in args.get("HyperParameters", {}).items()}
        hps = decode_hyperparameters(raw)
        user = {k: v for k, v in hps.items() if not k.startswith("sagemaker_")}
        program, submit = hps.get("sagemaker_program"), hps.get("sagemaker_submit_directory")
        if not program or not submit:
            raise HarnessError("not script mode (no sagemaker_program / sagemaker_submit_directory)")
        count = int(args.get("ResourceConfig", {}).get("InstanceCount", 1))
        hosts = [f"algo-{i}" for i in range(1, count + 1)]
        module = program[:-3] if program.endswith(".py") else program
        runs = [
            self._training_host(args, raw, user, module, submit, hosts, i, job if count == 1 else job / h)
            for i, h in enumerate(hosts)
        ]
        record.detail["argv"] = runs[0].cmd[1:]
        record.detail["env"] = runs[0].env
        if count == 1:
            procs = [run_in_container(runs[0].cmd, runs[0].env, runs[0].ml_root, job, check=False)]
        else:
            procs = run_hosts(runs, etc_hosts(hosts, job))
            record.detail["host_logs"] = {
                r.host: p.stdout + p.stderr for r, p in zip(runs, procs, strict=True)
            }
        record.detail["log"] = procs[0].stdout + procs[0].stderr
        for run, proc in zip(runs, procs, strict=True):
            if proc.returncode != 0:
                where = f" on {run.host}" if count > 1 else ""
                raise HarnessError(
                    f"AlgorithmError{where}: exit code {proc.returncode}\n{proc.stderr[-3000:]}"
                )
        ml = runs[0].ml_root  # algo-1's model and output data are the job's
        name = f"pipelines-{self.execution.id}-{step['Name']}"[:63]
        base = args["OutputDataConfig"]["S3OutputPath"].rstrip("/") + f"/{name}/output"
        model_uri = f"{base}/model.tar.gz"
        for uri, folder in ((model_uri, ml / "model"), (f"{base}/output.tar.gz", ml / "output" / "data")):
            bucket, key = split_s3(uri)
            self.s3.put_object(Bucket=bucket, Key=key, Body=tar_gz(folder))
        self.ctx.properties[step["Name"]] = {
            "TrainingJobName": name,
            "ModelArtifacts": {"S3ModelArtifacts": model_uri},
            "OutputDataConfig": args["OutputDataConfig"],
        }
        record.detail.update(ml_root=ml, model_uri=model_uri, output_uri=f"{base}/output.tar.gz")
        record.detail["ml_roots"] = [r.ml_root for r in runs]

    def _training_host(
        self,
        args: dict[str, Any],
        raw: dict[str, str],
        user: dict[str, Any],
        module: str,
        submit: str,
        hosts: list[str],
        index: int,
        folder: Path,
    ) -> HostJob:
        """One instance's /opt/ml (its channels, config and code) and command."""
        ml, host = folder / "ml", hosts[index]
        channels = []
        for ch in args.get("InputDataConfig", []):
            src = ch["DataSource"]["S3DataSource"]
            kind = src.get("S3DataDistributionType", "FullyReplicated")
            if kind not in ("FullyReplicated", "ShardedByS3Key"):
                raise HarnessError(f"channel {ch['ChannelName']}: S3DataDistributionType {kind!r}")
            shard = (index, len(hosts)) if kind == "ShardedByS3Key" else None
            dest = ml / "input" / "data" / ch["ChannelName"]
            dest.mkdir(parents=True, exist_ok=True)  # a host may get no object of a sharded channel
            download_prefix(self.s3, src["S3Uri"], dest, shard)
            channels.append(ch["ChannelName"])
        config = ml / "input" / "config"
        config.mkdir(parents=True)
        (config / "hyperparameters.json").write_text(json.dumps(raw))
        (config / "inputdataconfig.json").write_text(
            json.dumps(
                {c["ChannelName"]: {"ContentType": c.get("ContentType", "")} for c in args["InputDataConfig"]}
            )
        )
        (config / "resourceconfig.json").write_text(json.dumps({"current_host": host, "hosts": hosts}))
        extract(get_object(self.s3, submit), ml / "code")
        for sub in ("model", "output/data", "output/intermediate"):
            (ml / sub).mkdir(parents=True, exist_ok=True)
        env = training_env(channels, user, module, submit, hosts, host)
        env["PYTHONPATH"] = f"{ML}/code"  # the toolkit pip-installs the submit directory: importable by name
        env.update({k: str(v) for k, v in (args.get("Environment") or {}).items()})
        return HostJob(host, [sys.executable, "-m", module, *to_cmd_args(user)], env, ml, folder)

    # -- Tuning ----------------------------------------------------------------------------------------
    max_tuning_jobs = 2  # training jobs a Tuning step runs here (SageMaker runs MaxNumberOfTrainingJobs)

    def _tuning(self, step: dict[str, Any], record: StepRun) -> None:
        """A HyperParameterTuningJob reduced to its contract: each training job is the definition's training job
        with the tuner's values among its hyperparameters (a range's value as text, a categorical value as
        listed), run as `_training` runs one; its objective is the last match of the MetricDefinitions regex in
        its log (SageMaker's final objective metric); the summaries are sorted best first, so
        `TrainingJobSummaries[0].TrainingJobName` names the best job, whose model is under
        `<S3OutputPath>/<job name>/output/model.tar.gz`. Values are drawn at random (seeded), for any strategy."""
        args = self.ctx.resolve(step["Arguments"])
        config, definition = args["HyperParameterTuningJobConfig"], args["TrainingJobDefinition"]
        objective = config["HyperParameterTuningJobObjective"]
        (metric,) = [m for m in definition["AlgorithmSpecification"]["MetricDefinitions"]
                     if m["Name"] == objective["MetricName"]]  # fmt: skip
        rng = np.random.RandomState(int(config.get("RandomSeed", 0)))
        jobs = min(int(config["ResourceLimits"]["MaxNumberOfTrainingJobs"]), self.max_tuning_jobs)
        summaries = []
        for i in range(jobs):
            tuned = sample_ranges(config["ParameterRanges"], rng)
            job = {
                "Name": f"{step['Name']}-{i + 1:03d}",
                "Arguments": {
                    "AlgorithmSpecification": {
                        k: v
                        for k, v in definition["AlgorithmSpecification"].items()
                        if k != "MetricDefinitions"
                    },
                    "HyperParameters": {**definition["StaticHyperParameters"], **tuned},
                    "ResourceConfig": definition["HyperParameterTuningResourceConfig"],
                    **{k: definition[k] for k in ("RoleArn", "OutputDataConfig", "StoppingCondition")},
                    "InputDataConfig": definition["InputDataConfig"],
                },
            }
            sub = StepRun(job["Name"], "Training", "Executing")
            self._training(job, sub)
            found = re.findall(metric["Regex"], sub.detail["log"])
            if not found:
                raise HarnessError(
                    f"training job {job['Name']}: no {metric['Name']!r} in its log ({metric['Regex']})"
                )
            value = float(found[-1])
            summaries.append(
                {
                    "TrainingJobName": self.ctx.properties[job["Name"]]["TrainingJobName"],
                    "TunedHyperParameters": tuned,
                    "FinalHyperParameterTuningJobObjectiveMetric": {
                        "MetricName": metric["Name"],
                        "Value": value,
                    },
                    "detail": sub.detail,
                }
            )
        summaries.sort(
            key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
            reverse=objective["Type"] == "Maximize",
        )
        self.ctx.properties[step["Name"]] = {
            "TrainingJobSummaries": summaries,
            "BestTrainingJob": summaries[0],
        }
        record.detail["jobs"] = summaries

    # -- Condition / Fail ------------------------------------------------------------------------------
    _OPS: dict[str, Callable[[Any, Any], bool]] = {
        "GreaterThanOrEqualTo": lambda a, b: a >= b,
        "GreaterThan": lambda a, b: a > b,
        "LessThanOrEqualTo": lambda a, b: a <= b,
        "LessThan": lambda a, b: a < b,
        "Equals": lambda a, b: a == b,
    }

    def _condition(self, step: dict[str, Any], record: StepRun) -> None:
        args = step["Arguments"]
        outcome = True
        for cond in args["Conditions"]:
            op = self._OPS.get(cond["Type"])
            if op is None:
                raise HarnessError(f"condition type {cond['Type']} is not emulated")
            left, right = self.ctx.resolve(cond["LeftValue"]), self.ctx.resolve(cond["RightValue"])
            outcome = outcome and bool(op(left, right))
            record.detail.setdefault("compared", []).append((left, cond["Type"], right))
        record.detail["outcome"] = outcome
        self.ctx.properties[step["Name"]] = {"Outcome": outcome}
        record.status = "Succeeded"
        self._run_steps(args["IfSteps"] if outcome else args["ElseSteps"])

    def _fail(self, step: dict[str, Any], record: StepRun) -> None:
        message = self.ctx.resolve(step["Arguments"].get("ErrorMessage", ""))
        record.status = "Failed"
        record.detail["message"] = message
        self.execution.status = "Failed"
        self.execution.failure = f"{step['Name']}: {message}"

    # -- Model / Clarify / Register / Lambda ----------------------------------------------------------
    def _model(self, step: dict[str, Any], record: StepRun) -> None:
        args = self.ctx.resolve(step["Arguments"])
        name = f"pipelines-{self.execution.id}-{step['Name']}"[:63]
        self.models[name] = args["PrimaryContainer"]
        self.ctx.properties[step["Name"]] = {"ModelName": name}
        record.detail["container"] = args["PrimaryContainer"]

    def _transform(self, step: dict[str, Any], record: StepRun) -> None:
        """A batch transform job: each object under the input prefix through `batch_transform` against the Model
        step's container, written to S3OutputPath as `<object>.out`; `JoinSource: Input` puts each JSON input
        line's answer under its `SageMakerOutput` key (CSV: the answer's fields appended to the input's)."""
        args = self.ctx.resolve(step["Arguments"])
        source, inp, out = (
            args["TransformInput"]["DataSource"]["S3DataSource"],
            args["TransformInput"],
            args["TransformOutput"],
        )
        if source.get("S3DataType", "S3Prefix") != "S3Prefix" or inp.get("SplitType") != "Line":
            raise HarnessError("only S3Prefix inputs split at lines are emulated")
        job = self._job(step)
        served = ServedModel.load(self.s3, self.models[args["ModelName"]], job / "model")
        join = (args.get("DataProcessing") or {}).get("JoinSource", "None") == "Input"
        bucket, prefix = split_s3(out["S3OutputPath"])
        written = []
        for path in download_prefix(self.s3, source["S3Uri"], job / "input"):
            data = path.read_bytes()
            answer = batch_transform(
                served, data, content_type=inp["ContentType"], accept=out.get("Accept"),
                batch_strategy=args.get("BatchStrategy", "MultiRecord"), max_payload_mb=args.get("MaxPayloadInMB", 6),
                assemble_with=out.get("AssembleWith", "None"),
            )  # fmt: skip
            if join:
                lines = [ln for ln in data.splitlines() if ln.strip()]
                answers = answer.splitlines()
                if len(answers) != len(lines):
                    raise HarnessError(f"JoinSource Input: {len(lines)} input lines, {len(answers)} answers")
                answer = b"".join(
                    _joined(i, a, inp["ContentType"]) + b"\n" for i, a in zip(lines, answers, strict=True)
                )
            key = "/".join(
                x for x in (prefix.rstrip("/"), path.relative_to(job / "input").as_posix() + ".out") if x
            )
            self.s3.put_object(Bucket=bucket, Key=key, Body=answer)
            written.append(f"s3://{bucket}/{key}")
        record.detail["outputs"] = written

    def _clarifycheck(self, step: dict[str, Any], record: StepRun) -> None:
        args = self.ctx.resolve(step["Arguments"])
        model_name = self.ctx.resolve(step["ModelName"])
        inputs = {i["InputName"]: i["S3Input"] for i in args["ProcessingInputs"]}
        config = json.loads(get_object(self.s3, _single_object(self.s3, inputs["analysis_config"]["S3Uri"])))
        validate_analysis_config(config)
        dataset_uri = inputs["dataset"]["S3Uri"]
        data = pd.read_csv(io.BytesIO(get_object(self.s3, _single_object(self.s3, dataset_uri))))
        label = config["label"]
        if label not in data.columns:
            raise HarnessError(f"label {label!r} is not a column of {dataset_uri}")
        features = data.drop(columns=[label])
        job = self._job(step)
        served = ServedModel.load(self.s3, self.models[model_name], job / "shadow-endpoint")
        predictor = config["predictor"]
        scores = predict_probabilities(
            served, features, content_type=predictor["content_type"], accept=predictor["accept_type"]
        )
        result: dict[str, Any] = {
            "mode": served.mode,
            "dataset": dataset_uri,
            "config": config,
            "scores": scores,
            "rows": len(data),
        }
        if step["CheckType"] == "MODEL_BIAS":
            result["post_training_bias"] = post_training_bias(config, data, scores)
        elif step["CheckType"] == "MODEL_EXPLAINABILITY":
            result["shap"] = shap_contributions(served, features)
            result["features"] = list(features.columns)
        else:
            raise HarnessError(f"CheckType {step['CheckType']} is not emulated")
        self.clarify[step["Name"]] = result
        out_uri = args["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
        summary = {k: v for k, v in result.items() if k in ("post_training_bias", "rows", "dataset")}
        if (
            "post_training_bias" in result
        ):  # Clarify's analysis.json layout: metrics in smclarify's (sorted) order
            facet = config["facet"][0]
            metrics = [{"name": k, "value": v} for k, v in result["post_training_bias"].items()]
            group = {
                "value_or_threshold": ",".join(map(str, facet["value_or_threshold"])),
                "metrics": metrics,
            }
            summary["post_training_bias_metrics"] = {
                "label": config["label"],
                "facets": {facet["name_or_index"]: [group]},
            }
        bucket, key = split_s3(out_uri.rstrip("/") + "/analysis.json")
        self.s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(summary, default=str).encode())
        self.ctx.properties[step["Name"]] = {
            "CalculatedBaselineConstraints": f"s3://{bucket}/{key}",
            "BaselineUsedForDriftCheckConstraints": f"s3://{bucket}/{key}",
        }

    def _registermodel(self, step: dict[str, Any], record: StepRun) -> None:
        args = self.ctx.resolve(step["Arguments"])
        group = args["ModelPackageGroupName"]
        groups = self.sm.list_model_package_groups()["ModelPackageGroupSummaryList"]
        if group not in {g["ModelPackageGroupName"] for g in groups}:
            self.sm.create_model_package_group(ModelPackageGroupName=group)
        for container in args["InferenceSpecification"]["Containers"]:
            get_object(self.s3, container["ModelDataUrl"])  # SageMaker checks the model data exists
        arn = self.sm.create_model_package(
            ModelPackageGroupName=group,
            InferenceSpecification=args["InferenceSpecification"],
            ModelApprovalStatus=args["ModelApprovalStatus"],
            **({"ModelMetrics": args["ModelMetrics"]} if args.get("ModelMetrics") else {}),
        )["ModelPackageArn"]
        self.ctx.properties[step["Name"]] = {"ModelPackageArn": arn}
        record.detail["arn"] = arn

    def _lambda(self, step: dict[str, Any], record: StepRun) -> None:
        event = self.ctx.resolve(step["Arguments"])
        arn = step["FunctionArn"]
        fn = self.lam.get_function(FunctionName=arn.split(":")[-1])["Configuration"]
        module_name, handler_name = fn["Handler"].rsplit(".", 1)
        code = self._lambda_zip(fn["CodeSha256"])
        folder = self._job(step) / "task"
        with zipfile.ZipFile(io.BytesIO(code)) as zf:
            zf.extractall(folder)
        spec = importlib.util.spec_from_file_location(
            f"ff_lambda_{uuid.uuid4().hex}", folder / f"{module_name}.py"
        )
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        context = LambdaContext(fn["FunctionName"], int(fn.get("Timeout", 3)))
        try:
            result = getattr(module, handler_name)(event, context)
        except Exception as exc:  # the Lambda step fails with the function's error
            raise HarnessError(f"the Lambda function raised {type(exc).__name__}: {exc}") from None
        outputs = {o["OutputName"]: result.get(o["OutputName"]) for o in step.get("OutputParameters", [])}
        self.ctx.properties[step["Name"]] = {"OutputParameters": outputs}
        record.detail.update(event=event, result=result)

    def _lambda_zip(self, sha: str) -> bytes:
        """The deployment package the function runs: the uploaded zip whose SHA-256 is the function's."""
        for obj_key in s3_keys(self.s3, self.bucket, ""):
            if "/lambda/" in obj_key:
                body = self.s3.get_object(Bucket=self.bucket, Key=obj_key)["Body"].read()
                if base64.b64encode(hashlib.sha256(body).digest()).decode() == sha:
                    return body
        raise HarnessError("the Lambda's deployment package is not in the bucket")

    # -- after the run: what an endpoint created by the Lambda would load ----------------------------------
    def served_endpoint(self, endpoint_name: str, workdir: Path) -> dict[str, ServedModel]:
        """Each production variant of the endpoint, loaded as its container would (model packages resolved)."""
        ep = self.sm.describe_endpoint(EndpointName=endpoint_name)
        config = self.sm.describe_endpoint_config(EndpointConfigName=ep["EndpointConfigName"])
        served = {}
        for variant in config["ProductionVariants"]:
            model = self.sm.describe_model(ModelName=variant["ModelName"])
            container = model.get("PrimaryContainer") or model["Containers"][0]
            if container.get("ModelPackageName"):
                pkg = self.sm.describe_model_package(ModelPackageName=container["ModelPackageName"])
                container = pkg["InferenceSpecification"]["Containers"][0]
            served[variant["VariantName"]] = ServedModel.load(
                self.s3, container, workdir / variant["VariantName"]
            )
        return served


class LambdaContext:
    """The context object Lambda passes to a Python handler (the attributes a handler may read)."""

    def __init__(self, function_name: str, timeout_s: int):
        import time

        self.function_name = function_name
        self.function_version = "$LATEST"
        self.aws_request_id = str(uuid.uuid4())
        self.memory_limit_in_mb = "128"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        import time

        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _single_object(s3: Any, uri: str) -> str:
    """A ProcessingInput naming one object (S3Prefix that matches exactly that key)."""
    bucket, key = split_s3(uri)
    keys = s3_keys(s3, bucket, key)
    if key not in keys:
        raise HarnessError(f"{uri} does not exist")
    return uri
