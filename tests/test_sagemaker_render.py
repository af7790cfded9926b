"""`fraudflow render`: offline, deterministic, parameters wired where the YAML says, clear errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fraudflow", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def data(aws_data: Path) -> Path:
    return aws_data


def yaml_copy(tmp_path: Path, data: Path, edit: Any = None) -> Path:
    text = (ROOT / "pipelines.yaml").read_text().replace("data_dir: data ", f"data_dir: {data} ", 1)
    if edit:
        text = edit(text)
    path = tmp_path / "pipelines.yaml"
    path.write_text(text)
    return path


def render(*args: str) -> dict[str, Any]:
    out = cli("render", *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for s in definition["Steps"]:
        out[s["Name"]] = s
        if s["Type"] == "Condition":
            out.update({x["Name"]: x for x in s["Arguments"]["IfSteps"] + s["Arguments"]["ElseSteps"]})
    return out


def test_byte_identical_across_processes_and_folders(data: Path, tmp_path: Path) -> None:
    first = cli("render", "--env", "aws-sample")
    second = cli("render", "--env", "aws-sample")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    # The same pipeline declared from another folder (absolute data path) renders the same bytes:
    # no local path, timestamp or random name reaches the definition or the uploaded configs.
    other = cli("render", str(yaml_copy(tmp_path, data)))
    assert other.stdout == first.stdout
    out = tmp_path / "def.json"
    assert cli("render", "--env", "aws-sample", "-o", str(out)).returncode == 0
    assert out.read_text() == first.stdout
    assert "/work/" not in first.stdout and str(ROOT) not in first.stdout


def test_render_imports_neither_boto3_nor_sagemaker(data: Path) -> None:
    code = (
        "import sys, io, contextlib\n"
        "from fraudflow.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['render', '--env', 'aws-sample']) == 0\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'sagemaker', 'pandas'))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_parameters_are_wired(data: Path) -> None:
    d = render("--env", "aws-sample")
    params = {p["Name"]: p for p in d["Parameters"]}
    assert params["AucThreshold"] == {"Name": "AucThreshold", "Type": "Float", "DefaultValue": 0.7}
    assert params["MaxDepth"]["Type"] == "Integer" and params["MaxDepth"]["DefaultValue"] == 3
    assert params["ClaimsDataUrl"]["DefaultValue"].startswith(
        "s3://fraudflow-artifacts-111122223333/fraud-detect/data/"
    )
    assert params["ClaimsDataUrl"]["DefaultValue"].endswith("/claims.csv")
    s = steps(d)
    assert s["Train"]["Arguments"]["HyperParameters"]["max_depth"] == {
        "Std:Join": {"On": "", "Values": [{"Get": "Parameters.MaxDepth"}]}
    }
    assert s["Train"]["Arguments"]["ResourceConfig"]["InstanceType"] == {
        "Get": "Parameters.TrainingInstanceType"
    }
    inputs = {i["InputName"]: i["S3Input"] for i in s["Preprocess"]["Arguments"]["ProcessingInputs"]}
    assert inputs["claims"]["S3Uri"] == {"Get": "Parameters.ClaimsDataUrl"}
    assert inputs["config"]["LocalPath"] == "/opt/ml/processing/input/config"
    assert s["RegisterModel-RegisterModel"]["Arguments"]["ModelApprovalStatus"] == {
        "Get": "Parameters.ModelApprovalStatus"
    }
    cond = s["CheckMetric"]["Arguments"]["Conditions"][0]
    assert cond["RightValue"] == {"Get": "Parameters.AucThreshold"}
    assert cond["LeftValue"]["Std:JsonGet"]["Path"] == "classification_metrics.roc_auc.value"
    # script mode: JSON-encoded values, train.py as the program
    hps = s["Train"]["Arguments"]["HyperParameters"]
    assert (
        hps["objective"] == '"binary:logistic"'
        and hps["eta"] == "0.2"
        and hps["early_stopping_rounds"] == "10"
    )
    assert hps["sagemaker_program"] == '"train.py"'


def test_without_parameters_values_are_fixed(data: Path, tmp_path: Path) -> None:
    path = yaml_copy(tmp_path, data, lambda t: t[: t.index("    parameters:")])
    d = render(str(path))
    assert d["Parameters"] == []
    s = steps(d)
    assert s["CheckMetric"]["Arguments"]["Conditions"][0]["RightValue"] == 0.7
    assert s["Train"]["Arguments"]["HyperParameters"]["max_depth"] == "3"
    assert s["RegisterModel-RegisterModel"]["Arguments"]["ModelApprovalStatus"] == "PendingManualApproval"
    assert "Parameters." not in json.dumps(d)


def test_environment_and_set_change_the_definition(data: Path) -> None:
    prod = steps(
        render(
            "--env",
            "prod",
            "--set",
            f"data.sources.claims={data}/claims.csv",
            "--set",
            f"data.sources.customers={data}/customers.csv",
        )
    )
    assert (
        prod["Preprocess"]["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceType"]
        == "ml.m5.2xlarge"
    )
    eu = render("--env", "aws-sample", "--set", "sagemaker.region=eu-west-1")
    image = steps(eu)["Train"]["Arguments"]["AlgorithmSpecification"]["TrainingImage"]
    assert image == "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def test_s3_sources_pass_through(data: Path) -> None:
    d = render("--env", "aws-sample", "--set", "data.sources.claims=s3://raw-bucket/claims/")
    params = {p["Name"]: p["DefaultValue"] for p in d["Parameters"]}
    assert params["ClaimsDataUrl"] == "s3://raw-bucket/claims/"


def test_uploads_and_definition_agree(data: Path) -> None:
    from fraudflow.plan import build_plan
    from fraudflow.sagemaker.compile import compile_plan, json_bytes, sha256
    from fraudflow.spec.load import load_one

    r = compile_plan(
        build_plan(load_one(ROOT / "pipelines.yaml", env="aws-sample", overrides=[], pipeline=None))
    )
    text = r.text
    folders: dict[str, list[list[str]]] = {}
    for u in r.uploads:
        assert sha256(u.read()) == u.sha256
        parent, name = u.key.rsplit("/", 1)
        if f'"s3://{r.bucket}/{parent}/"' in text:  # a processing job's code folder: one prefix for its files
            folders.setdefault(parent, []).append([name, u.sha256])
            continue
        assert u.sha256 in u.key  # content-hashed
        if "/lambda/" not in u.key:
            assert f"s3://{r.bucket}/{u.key}" in text, u.key
    assert len(folders) == 2  # preprocess, evaluate (bias and explain run as Clarify checks on SageMaker)
    for parent, files in folders.items():  # each named by its files' names and contents
        assert parent.rsplit("/", 1)[1] == sha256(json_bytes(sorted(files))), parent
        assert "stepkit.py" in {f[0] for f in files}
    z = zipfile.ZipFile(io.BytesIO(r.lambda_function.code.read()))  # type: ignore[union-attr]
    assert z.namelist() == ["lambda_deployer.py"]
    assert z.read("lambda_deployer.py") == (ROOT / "step_code" / "lambda_deployer.py").read_bytes()
    assert r.lambda_function.arn == "arn:aws:lambda:us-east-1:111122223333:function:fraud-detect-xgb-deployer"  # type: ignore[union-attr]
    config = json.loads(next(u for u in r.uploads if u.what == "preprocess config").read())
    assert all(v.startswith("s3://") for v in config["data"]["sources"].values())


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        ((), "FF707", "data source 'claims'"),  # default env: data/ not created yet
        (
            ("--env", "aws-sample", "--set", "sagemaker.region=ap-southeast-7"),
            "FF703",
            "image in region 'ap-southeast-7'",
        ),
    ],
)
def test_clear_errors(data: Path, args: tuple[str, ...], code: str, text: str) -> None:
    out = cli("render", *args)
    if code == "FF707" and (ROOT / "data" / "claims.csv").exists():
        pytest.skip("data/ exists in this checkout")
    assert out.returncode == 1, out.stdout[:200]
    assert code in out.stderr and text in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout == ""


def test_decision_threshold_parameter_reaches_evaluate_as_an_argument(data: Path, tmp_path: Path) -> None:
    path = yaml_copy(tmp_path, data, lambda t: t + "      DecisionThreshold: evaluate.decision_threshold\n")
    out = cli("render", str(path))
    assert out.returncode == 0, out.stderr
    definition = json.loads(out.stdout)
    param = next(p for p in definition["Parameters"] if p["Name"] == "DecisionThreshold")
    assert param["Type"] == "Float"
    evaluate = next(s for s in definition["Steps"] if s["Name"] == "Evaluate")
    join = {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.DecisionThreshold"}]}}
    assert evaluate["Arguments"]["AppSpecification"]["ContainerArguments"] == ["--decision-threshold", join]


def test_deploy_variants_reach_the_lambda_step(data: Path, tmp_path: Path) -> None:
    def split(text: str) -> str:
        variants = (
            "      variants:\n"
            "        - {name: Blue, weight: 0.9}\n"
            "        - {name: Green, weight: 0.1, model_version: previous}\n"
            "        - {name: Pinned, weight: 0, model_version: 3}\n"
        )
        return text.replace(
            "      endpoint_name: fraud-detect-xgb\n", "      endpoint_name: fraud-detect-xgb\n" + variants, 1
        )

    deploy = steps(render(str(yaml_copy(tmp_path, data, split))))["Deploy"]
    assert json.loads(deploy["Arguments"]["variants"]) == [
        {"model_version": "latest", "name": "Blue", "weight": 0.9},
        {"model_version": "previous", "name": "Green", "weight": 0.1},
        {"model_version": 3, "name": "Pinned", "weight": 0},
    ]
    assert deploy["Arguments"]["model_package_arn"] == {
        "Get": "Steps.RegisterModel-RegisterModel.ModelPackageArn"
    }
    outputs = [o["OutputName"] for o in deploy["OutputParameters"]]
    assert outputs == ["action", "endpoint_name", "model_name", "endpoint_config_name", "variants"]
    # The default (one variant serving the newest version) renders as before: no `variants` input.
    default = steps(render(str(yaml_copy(tmp_path, data))))["Deploy"]
    assert "variants" not in default["Arguments"] and default["Arguments"]["variant_name"] == "AllTraffic"
    assert [o["OutputName"] for o in default["OutputParameters"]] == ["action", "endpoint_name", "model_name"]
