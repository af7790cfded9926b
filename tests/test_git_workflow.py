"""fraudflow in a team's git workflow: the pre-commit hook (.pre-commit-hooks.yaml) and the example GitHub Actions
workflow (examples/github-actions/fraudflow.yml), run as their definitions say, not by hand-copied commands.

The hook: its `entry` with pre-commit's argument convention (entry, then the hook's `args`, then the staged
files matching `files`), on good and broken pipelines.yaml files. The workflow: every `run:` step of its jobs,
parsed from the YAML and run with the shell GitHub uses, with moto standing in for AWS (AWS_ENDPOINT_URL) and
the `aws-actions/configure-aws-credentials` step replaced by moto's test credentials. GitHub itself is not run.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.register_assert_rewrite("tests.conftest_aws")
from tests.conftest_aws import ROOT, Aws  # noqa: E402

pytest_plugins = ["tests.conftest_aws"]

HOOKS = ROOT / ".pre-commit-hooks.yaml"
WORKFLOW = ROOT / "examples" / "github-actions" / "fraudflow.yml"
AWS_DATA = ROOT.parent / "shared" / "data" / "aws-synthetic-claims"
BROKEN = "    split: {train: 0.8, validation: 0.1, test: 0.1, seed: 42, stratify: true}\n"


def _env() -> dict[str, str]:
    """The hook and the workflow call the `fraudflow` executable: make it run this checkout's code."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


def _pipelines(dir_: Path, broken: bool = False) -> Path:
    if not (AWS_DATA / "claims.csv").exists():
        pytest.skip(f"AWS sample data not found at {AWS_DATA}")
    text = (ROOT / "pipelines.yaml").read_text().replace("data_dir: data ", f"data_dir: {AWS_DATA} ", 1)
    assert BROKEN in text
    if broken:  # ratios that sum to 1.1: a semantic error (FF501), located at `split`
        text = text.replace(BROKEN, BROKEN.replace("test: 0.1", "test: 0.2"))
    dir_.mkdir(parents=True, exist_ok=True)
    path = dir_ / "pipelines.yaml"
    path.write_text(text)
    return path


# -- the pre-commit hook ----------------------------------------------------------------------------------------
def _hook() -> dict[str, Any]:
    hooks = yaml.safe_load(HOOKS.read_text())
    return next(h for h in hooks if h["id"] == "fraudflow-validate")


def run_hook(files: list[Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    """As pre-commit runs a hook: shlex-split `entry`, then `args`, then the files matching `files`."""
    hook = _hook()
    matching = [str(f.relative_to(cwd)) for f in files if re.search(hook["files"], str(f.relative_to(cwd)))]
    cmd = [*shlex.split(hook["entry"]), *hook.get("args", []), *matching]
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120)


def test_the_hook_definition_is_what_pre_commit_expects() -> None:
    hook = _hook()
    assert hook["language"] == "python" and hook["entry"] == "fraudflow validate"
    for name in ("pipelines.yaml", "team/pipelines.yml", "a/b/pipelines.yaml"):
        assert re.search(hook["files"], name), name
    for name in ("pipelines.yaml.bak", "other.yaml", "pipelines.json"):
        assert not re.search(hook["files"], name), name


def test_pre_commit_accepts_the_hook_manifest() -> None:
    if shutil.which("pre-commit") is None:
        pytest.skip("pre-commit is not installed")
    out = subprocess.run(
        ["pre-commit", "validate-manifest", str(HOOKS)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_hook_passes_a_good_pipelines_yaml(tmp_path: Path) -> None:
    good = _pipelines(tmp_path)
    out = run_hook([good, tmp_path / "README.md"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "pipelines.yaml: valid (1 pipeline: fraud-detect-xgb)" in out.stdout


def test_the_hook_refuses_a_broken_pipelines_yaml_with_the_located_error(tmp_path: Path) -> None:
    good = _pipelines(tmp_path / "team-a")
    broken = _pipelines(tmp_path / "team-b", broken=True)
    out = run_hook([good, broken], tmp_path)  # pre-commit passes every staged match at once
    assert out.returncode == 1 and "Traceback" not in out.stderr
    line = broken.read_text().splitlines().index(BROKEN.replace("test: 0.1", "test: 0.2").rstrip("\n")) + 1
    assert re.search(
        rf"^team-b/pipelines\.yaml:{line}:12: FF501 split ratios sum to 1\.1", out.stderr, re.M
    ), out.stderr
    assert "team-a/pipelines.yaml: valid" in out.stdout  # the good file is still checked and reported


def test_validate_checks_every_file_and_exits_with_the_worst(tmp_path: Path) -> None:
    good = _pipelines(tmp_path / "a")
    unreadable = tmp_path / "b" / "pipelines.yaml"
    cmd = [*shlex.split(_hook()["entry"]), str(good), str(unreadable), str(good)]
    out = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and out.stdout.count(": valid (") == 2
    assert f"{unreadable}: FF100" in out.stderr


@pytest.mark.slow
def test_pre_commit_try_repo_runs_the_hook(tmp_path: Path) -> None:
    """pre-commit itself, from this repository: it builds the hook's environment (pip, from PyPI)."""
    if shutil.which("pre-commit") is None:
        pytest.skip("pre-commit is not installed")
    repo = tmp_path / "repo"
    broken = _pipelines(repo, broken=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", broken.name], check=True)
    out = subprocess.run(
        ["pre-commit", "try-repo", str(ROOT), "fraudflow-validate", "--files", broken.name],
        cwd=repo, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert out.returncode == 1 and "FF501" in out.stdout + out.stderr


# -- the GitHub Actions workflow ----------------------------------------------------------------------------
def _workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def _expand(value: str, variables: dict[str, str]) -> str:
    """`${{ vars.NAME }}`, as GitHub substitutes repository variables in `env` and `with`."""
    return re.sub(r"\$\{\{\s*vars\.(\w+)\s*\}\}", lambda m: variables[m.group(1)], value)


def run_job(name: str, cwd: Path, aws: Aws) -> tuple[int, str, dict[str, str], str]:
    """The job's `run:` steps in order, with GitHub's shells; returns (exit code of the failing step or 0, output,
    the step outputs written to $GITHUB_OUTPUT, the job summary)."""
    wf = _workflow()
    variables = {
        "AWS_REGION": aws.env["AWS_REGION"],
        "SAGEMAKER_ROLE_ARN": aws.env["SAGEMAKER_ROLE_ARN"],
        "DEPLOYER_ROLE_ARN": aws.env["DEPLOYER_ROLE_ARN"],
        "FRAUDFLOW_BUCKET": aws.env["FRAUDFLOW_BUCKET"],
        "FRAUDFLOW_PLAN_ROLE_ARN": "arn:aws:iam::123456789012:role/plan",
        "FRAUDFLOW_APPLY_ROLE_ARN": "arn:aws:iam::123456789012:role/apply",
    }
    env = {**_env(), **{k: _expand(str(v), variables) for k, v in wf["env"].items()}}
    env.pop("AWS_ENDPOINT_URL", None)
    summary, output = cwd / "summary.md", cwd / "output.txt"
    summary.write_text(""), output.write_text("")
    env.update(GITHUB_STEP_SUMMARY=str(summary), GITHUB_OUTPUT=str(output))
    log = []
    for step in wf["jobs"][name]["steps"]:
        if "uses" in step:
            if step["uses"].startswith("aws-actions/configure-aws-credentials@"):
                assert _expand(step["with"]["role-to-assume"], variables).startswith("arn:aws:iam::")
                # what the action exports, with moto's credentials; AWS_ENDPOINT_URL points boto3 at moto
                env.update(
                    {
                        k: aws.env[k]
                        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL")
                    }
                )
                env["AWS_REGION"] = _expand(step["with"]["aws-region"], variables)
            continue
        script = step["run"]
        assert "${{" not in script, "values reach run: through env, never by expression injection"
        if script.startswith("pip install"):
            assert script == 'pip install "fraudflow[sagemaker]"'  # this checkout stands in for the package
            continue
        shell = (
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]
            if step.get("shell") == "bash"
            else ["bash", "-e", "-c"]
        )
        done = subprocess.run([*shell, script], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        log.append(f"$ {step.get('name')}\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            return done.returncode, "\n".join(log), _outputs(output), summary.read_text()
    return 0, "\n".join(log), _outputs(output), summary.read_text()  # fmt: skip


def _outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_the_workflow_uses_oidc_and_runs_plan_on_pull_requests_and_apply_on_main() -> None:
    wf = _workflow()
    assert wf["permissions"]["id-token"] == "write"
    assert "pull_request" in wf[True] and wf[True]["push"]["branches"] == [
        "main"
    ]  # YAML 1.1 reads `on` as True
    assert wf["jobs"]["plan"]["if"] == "github.event_name == 'pull_request'"
    assert "refs/heads/main" in wf["jobs"]["apply"]["if"]
    for job in wf["jobs"].values():
        creds = [
            s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")
        ]
        assert (
            len(creds) == 1
            and "role-to-assume" in creds[0]["with"]
            and "aws-access-key-id" not in creds[0]["with"]
        )


@pytest.mark.aws
@pytest.mark.slow
def test_the_workflows_commands_against_moto(tmp_path: Path, aws: Aws) -> None:
    _pipelines(tmp_path)
    code, log, outputs, summary = run_job("plan", tmp_path, aws)  # a pull request, before anything exists
    assert code == 0, log
    assert outputs == {"changes": "true"} and "Changes for pipeline fraud-detect-xgb" in summary
    assert "Roles (" in summary and "+ Lambda fraud-detect-xgb-deployer: create" in summary

    code, log, _, summary = run_job("apply", tmp_path, aws)  # merged to main
    assert code == 0, log
    assert "Applied:" in summary and "pipeline create" in summary
    assert aws.client("sagemaker").describe_pipeline(PipelineName="fraud-detect-xgb")["PipelineArn"]

    code, log, outputs, summary = run_job("plan", tmp_path, aws)  # the next pull request changes nothing
    assert code == 0 and outputs == {"changes": "false"} and "No changes" in summary, log

    _pipelines(tmp_path, broken=True)  # a pull request that breaks pipelines.yaml: validate fails the job
    code, log, outputs, summary = run_job("plan", tmp_path, aws)
    assert (
        code == 1 and re.search(r"pipelines\.yaml:\d+:12: FF501 ", log) and outputs == {} and summary == ""
    ), log


@pytest.mark.aws
def test_the_plan_step_fails_the_job_only_on_errors(tmp_path: Path, aws: Aws) -> None:
    """plan's exit 1 (here: the bucket does not exist, FF713) fails the job; 0 and 2 do not."""
    _pipelines(tmp_path)
    aws.client("s3").delete_bucket(Bucket=aws.env["FRAUDFLOW_BUCKET"])
    code, log, outputs, summary = run_job("plan", tmp_path, aws)
    assert code == 1 and "FF713" in log and outputs == {} and "FF713" in summary, log
