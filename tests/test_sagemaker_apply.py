"""`fraudflow apply` and `plan` against moto's real server, driven through the CLI as a user would."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.conftest_aws")
from fraudflow import exits  # noqa: E402
from tests.conftest_aws import BUCKET, ROOT, Aws, MotoServer, aws_env, cli  # noqa: E402

pytest_plugins = ["tests.conftest_aws"]
pytestmark = pytest.mark.aws

PIPELINE = "fraud-detect-xgb"


def apply(yaml_file: Path, aws: Aws, *extra: str) -> subprocess.CompletedProcess[str]:
    return cli("apply", str(yaml_file), "--yes", *extra, env=aws.env)


def test_apply_creates_everything_and_second_apply_is_a_noop(yaml_file: Path, aws: Aws) -> None:
    rendered = cli("render", str(yaml_file), env=aws.env)
    assert rendered.returncode == 0, rendered.stderr

    first = apply(yaml_file, aws)
    assert first.returncode == 0, first.stderr
    assert "pipeline fraud-detect-xgb: created" in first.stdout

    sm = aws.client("sagemaker")
    deployed = sm.describe_pipeline(PipelineName=PIPELINE)
    assert deployed["PipelineDefinition"] + "\n" == rendered.stdout  # byte for byte
    assert deployed["RoleArn"] == aws.env["SAGEMAKER_ROLE_ARN"]

    keys = {o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]}
    for kind in ("code", "config", "clarify", "data", "lambda"):
        assert any(f"/{kind}/" in k for k in keys), kind
    for (
        key
    ) in keys:  # every object the definition names is uploaded: by its key, or by its code folder's prefix
        if "/lambda/" not in key and "/data/" not in key:
            folder = key.rsplit("/", 1)[0] + '/"'
            assert key in rendered.stdout or folder in rendered.stdout, key
    fn = aws.client("lambda").get_function(FunctionName=f"{PIPELINE}-deployer")["Configuration"]
    assert fn["Handler"] == "lambda_deployer.handler"
    assert fn["Runtime"].startswith("python3")

    second = apply(yaml_file, aws)
    assert second.returncode == 0, second.stderr
    assert "No changes" in second.stdout
    assert "uploaded" not in second.stdout

    plan = cli("plan", str(yaml_file), env=aws.env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "No changes" in plan.stdout


def test_plan_after_yaml_edit_exits_2_with_step_diff(yaml_file: Path, aws: Aws) -> None:
    assert apply(yaml_file, aws).returncode == 0
    text = yaml_file.read_text()
    yaml_file.write_text(text.replace("max_depth: 3", "max_depth: 4").replace("eta: 0.2", "eta: 0.25"))
    plan = cli("plan", str(yaml_file), env=aws.env)
    assert plan.returncode == exits.CHANGES, plan.stdout + plan.stderr
    assert "~ parameter MaxDepth: DefaultValue: 3 → 4" in plan.stdout
    assert "~ step Train (Training)" in plan.stdout
    assert 'HyperParameters.eta: "0.2" → "0.25"' in plan.stdout
    # apply converges and plan is clean again
    assert apply(yaml_file, aws).returncode == 0
    assert cli("plan", str(yaml_file), env=aws.env).returncode == 0


def test_plan_before_first_apply_shows_creation(yaml_file: Path, aws: Aws) -> None:
    plan = cli("plan", str(yaml_file), env=aws.env)
    assert plan.returncode == exits.CHANGES
    assert "+ pipeline fraud-detect-xgb: create" in plan.stdout
    assert "+ Lambda fraud-detect-xgb-deployer: create" in plan.stdout


def test_apply_without_tty_or_yes_refuses_and_changes_nothing(yaml_file: Path, aws: Aws) -> None:
    out = cli("apply", str(yaml_file), env=aws.env)
    assert out.returncode == exits.USAGE  # a usage mistake, never plan's "changes" (2)
    assert "FF714" in out.stderr and "--yes" in out.stderr
    assert "Traceback" not in out.stderr
    assert aws.client("sagemaker").list_pipelines()["PipelineSummaries"] == []
    assert "Contents" not in aws.client("s3").list_objects_v2(Bucket=BUCKET)


def test_start_with_typed_params_and_wait(yaml_file: Path, aws: Aws) -> None:
    out = apply(yaml_file, aws, "--start", "--param", "MaxDepth=5", "--param", "AucThreshold=0.65", "--wait")
    assert out.returncode == 0, out.stderr
    assert "started execution" in out.stdout and "execution Succeeded" in out.stdout
    sm = aws.client("sagemaker")
    arn = sm.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"][0][
        "PipelineExecutionArn"
    ]
    params = {
        p["Name"]: p["Value"]
        for p in sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    }
    assert params == {"MaxDepth": "5", "AucThreshold": "0.65"}


@pytest.mark.parametrize(
    ("param", "message"),
    [
        (
            "MaxDepth=deep",
            "MaxDepth sets train.hyperparameters.max_depth: expected an integer, got string 'deep'",
        ),
        (
            "AucThreshold=-inf",
            "AucThreshold sets gate.threshold: expected a number",
        ),  # would disable the gate
        ("AucThreshold=.nan", "nan is not a finite number: must be >= 0 and <= 1"),
        ("Nope=1", "unknown parameter 'Nope'"),
        ("MaxDepth", "NAME=VALUE"),
    ],
)
def test_bad_param_is_a_clear_error(yaml_file: Path, aws: Aws, param: str, message: str) -> None:
    out = apply(yaml_file, aws, "--start", "--param", param)
    assert out.returncode == 1
    assert "FF715" in out.stderr and message in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_bucket_is_a_clear_error(yaml_file: Path, aws: Aws) -> None:
    env = {**aws.env, "FRAUDFLOW_BUCKET": "no-such-bucket-here"}
    out = cli("apply", str(yaml_file), "--yes", env=env)
    assert out.returncode == 1
    assert "FF713" in out.stderr and "no-such-bucket-here" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_stopped_server_is_a_clear_error_and_a_later_apply_converges(yaml_file: Path, tmp_path: Path) -> None:
    from tests.conftest_aws import Aws as AwsT

    server = MotoServer().start()
    try:
        env = {**os.environ, **aws_env(server.url)}
        aws = AwsT(server, env)
        aws.seed()
        server.stop()  # AWS "goes away" between the check and the apply
        down = cli("apply", str(yaml_file), "--yes", env=env)
        assert down.returncode == 1
        assert "FF710" in down.stderr and "cannot reach" in down.stderr
        assert "Traceback" not in down.stderr
        plan = cli("plan", str(yaml_file), env=env)
        assert plan.returncode == 1 and "FF710" in plan.stderr

        server = MotoServer(server.port).start()  # back, but empty: apply converges from nothing
        AwsT(server, env).seed()
        up = cli("apply", str(yaml_file), "--yes", env=env)
        assert up.returncode == 0, up.stderr
        assert cli("apply", str(yaml_file), "--yes", env=env).stdout.startswith("No changes")
    finally:
        server.stop()


def test_interrupted_apply_converges(yaml_file: Path, aws: Aws) -> None:
    """Objects uploaded by an apply that failed later are not uploaded again; the rest is completed."""
    from fraudflow.plan import build_plan
    from fraudflow.sagemaker.compile import compile_plan
    from fraudflow.spec.load import load_one

    rendered = compile_plan(build_plan(load_one(yaml_file, env=None, overrides=[], pipeline=None)))
    s3 = aws.client("s3")
    half = rendered.uploads[: len(rendered.uploads) // 2]
    for u in half:
        s3.put_object(Bucket=BUCKET, Key=u.key, Body=u.read())
    out = apply(yaml_file, aws)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("uploaded ") == len(rendered.uploads) - len(half)


def test_param_without_start_and_missing_credentials(yaml_file: Path, aws: Aws) -> None:
    out = apply(yaml_file, aws, "--param", "MaxDepth=4")
    assert out.returncode == exits.USAGE and "FF715" in out.stderr and "--start" in out.stderr
    env = {
        k: v for k, v in aws.env.items() if not k.startswith("AWS_ACCESS") and k != "AWS_SECRET_ACCESS_KEY"
    }
    env.update(
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_EC2_METADATA_DISABLED="true",
    )
    out = cli("plan", str(yaml_file), env=env)
    assert out.returncode == 1
    assert "FF711" in out.stderr and "Traceback" not in out.stderr


def test_lambda_code_and_configuration_updates(
    yaml_file: Path,
    aws: Aws,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A changed deployer (code) and timeout (configuration) update the function in place; then no changes."""
    from fraudflow import cli as ff
    from fraudflow.sagemaker import compile as comp

    assert ff.main(["apply", str(yaml_file), "--yes"]) == 0
    code_dir = tmp_path / "step_code"
    code_dir.mkdir()
    source = (ROOT / "step_code" / "lambda_deployer.py").read_text()
    (code_dir / "lambda_deployer.py").write_text(source + "\n# changed\n")
    monkeypatch.setattr(comp, "STEP_CODE", code_dir)
    capsys.readouterr()
    args = ["apply", str(yaml_file), "--yes", "--set", "sagemaker.lambda.timeout_s=300"]
    assert ff.main(args) == 0
    out = capsys.readouterr().out
    assert "Lambda fraud-detect-xgb-deployer: update code and configuration" in out
    assert "pipeline" not in out.split("Applied:")[1]  # the definition did not change
    conf = aws.client("lambda").get_function(FunctionName="fraud-detect-xgb-deployer")["Configuration"]
    assert conf["Timeout"] == 300
    assert ff.main(args) == 0
    assert "No changes" in capsys.readouterr().out
