"""`fraudflow monitor --window-hours N` reads only the capture hours of its window: a local capture folder is walked
without descending into the yyyy/mm/dd/hh folders that ended before the window, and an s3:// one is listed a
level at a time and only the window's objects are downloaded (moto's server; every S3 call recorded). The report
is the one of a folder that holds only the window's hours."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.register_assert_rewrite("tests.conftest_aws")
from tests._steps_util import load_step  # noqa: E402
from tests.conftest_aws import BUCKET, Aws, cli  # noqa: E402
from tests.test_iam_moto import Recorder  # noqa: E402
from tests.test_iam_moto import recorder as recorder  # noqa: E402, F401 - the fixture
from tests.test_monitor_command import _monitor, write_capture  # noqa: E402
from tests.test_monitor_command import trained as trained  # noqa: E402, F401 - the fixture

pytest_plugins = ["tests.conftest_aws"]

monitor = load_step("monitor")
WINDOW = ["--window-hours", "24"]
OLD_DAYS = (3, 40, 400)  # hours this long ago hold a file that is not JSON: reading one fails the run (FF687)


def _parts(t: datetime, level: int) -> tuple[str, ...]:
    """The capture folder of `t` down to `level` (1 year ... 4 hour), below an endpoint and variant folder."""
    return ("fraud-detect-xgb", "AllTraffic", *t.strftime("%Y/%m/%d/%H").split("/")[:level])


moments = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2098, 12, 31), timezones=st.just(timezone.utc)
)


@given(t=moments, since=moments, level=st.integers(1, 4))
def test_a_folder_is_passed_over_only_when_all_it_can_hold_is_before_the_window(
    t: datetime, since: datetime, level: int
) -> None:
    passed_over = monitor.before_window(_parts(t, level), since)
    if passed_over:  # nothing the folder can hold (with the slack for buffered writes) is in the window
        assert t + monitor.HOUR_SLACK < since
    hour_end = t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if level == 4 and hour_end + monitor.HOUR_SLACK <= since:  # and an hour that ended before it is not read
        assert passed_over
    assert not monitor.before_window(_parts(t, level), None)  # no window: every folder is read


@pytest.mark.parametrize(
    "parts",
    [("AllTraffic",), ("2020", "13"), ("2020", "02", "30"), ("2020", "01", "01", "24"), ("20", "01"), ("x",)],
)
def test_folders_outside_the_layout_are_always_read(parts: tuple[str, ...]) -> None:
    assert monitor.hour_span(parts) is None
    assert not monitor.before_window((*parts, "extra"), datetime(2100, 1, 1, tzinfo=timezone.utc))


# ------------------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def capture(trained: tuple, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`window`: two hours of real captures (this hour and the last); `all`: the same plus old hours, each
    holding a file that is not JSON."""
    ws, _, raw = trained
    scratch = tmp_path_factory.mktemp("scratch")
    write_capture(ws, raw.sample(400, random_state=3), scratch, degrade=False)
    lines = next(scratch.rglob("*.jsonl")).read_text().splitlines()
    now = datetime.now(timezone.utc)
    out = {name: tmp_path_factory.mktemp(name) for name in ("window", "all")}
    for i, t in enumerate((now, now - timedelta(hours=1))):
        stamped = [
            line.replace("2026-11-30T10:00:00Z", t.strftime("%Y-%m-%dT%H:%M:%SZ")) for line in lines[i::2]
        ]
        for root in out.values():
            hour = root.joinpath(*_parts(t, 4))
            hour.mkdir(parents=True)
            (hour / f"capture-{i}.jsonl").write_text("\n".join(stamped) + "\n")
    for days in OLD_DAYS:
        hour = out["all"].joinpath(*_parts(now - timedelta(days=days), 4))
        hour.mkdir(parents=True)
        (hour / "old.jsonl").write_text("not a capture record\n")
    return out


def _same(report: dict[str, Any], reference: dict[str, Any]) -> None:
    for key in ("records", "window", "features", "prediction", "violations", "drifted_features"):
        assert report.get(key) == reference.get(key), key


@pytest.mark.slow
def test_a_local_window_reads_only_its_hours(trained: tuple, capture: dict[str, Path]) -> None:
    ws, sets, _ = trained
    _, reference = _monitor(ws, sets, "--current", str(capture["window"]), *WINDOW)
    assert reference["records"] == 400 and reference["window"]["files"] == 2
    _, report = _monitor(ws, sets, "--current", str(capture["all"]), *WINDOW)
    _same(report, reference)
    year = capture["all"] / "fraud-detect-xgb" / "AllTraffic" / str(datetime.now(timezone.utc).year)
    _, in_year = _monitor(ws, sets, "--current", str(year), *WINDOW)  # --current names a year folder itself
    assert in_year["records"] == reference["records"] and in_year["features"] == reference["features"]
    # the old hours are there to be read: without the window the run reads them and fails on the first one
    from tests.conftest import run_cli

    whole = run_cli("monitor", str(ws / "pipelines.yaml"), *sets, "--current", str(capture["all"]), cwd=ws)
    assert whole.returncode == 1 and "FF687" in whole.stderr and "old.jsonl" in whole.stderr


def _upload(aws: Aws, root: Path, prefix: str) -> list[str]:
    s3 = aws.client("s3")
    keys = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        keys.append(f"{prefix}/{path.relative_to(root).as_posix()}")
        s3.put_object(Bucket=BUCKET, Key=keys[-1], Body=path.read_bytes())
    return keys


@pytest.mark.slow
@pytest.mark.aws
def test_an_s3_window_downloads_only_its_hours(
    trained: tuple,
    capture: dict[str, Path],
    aws: Aws,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fraudflow.cli import main

    ws, sets, _ = trained
    _, reference = _monitor(ws, sets, "--current", str(capture["window"]), *WINDOW)
    keys = _upload(aws, capture["all"], "data-capture")
    wanted = sorted(k for k in keys if not k.endswith("/old.jsonl"))
    monkeypatch.chdir(ws)
    capsys.readouterr()
    recorder.role = "operator"
    uri = f"s3://{BUCKET}/data-capture"
    code = main(["monitor", str(ws / "pipelines.yaml"), *sets, "--current", uri, *WINDOW, "--format", "json"])
    recorder.role = None
    assert code in (0, 4)
    _same(json.loads(capsys.readouterr().out), reference)

    s3 = [(op, params) for _, service, op, params in recorder.calls if service == "s3"]
    read = sorted(p["Key"] for op, p in s3 if op in ("GetObject", "HeadObject"))
    assert sorted(set(read)) == wanted  # every object of the window, and nothing else
    listed = [p["Prefix"] for op, p in s3 if op == "ListObjectsV2"]
    assert f"data-capture/{'/'.join(_parts(datetime.now(timezone.utc), 4))}/" in listed
    for days in OLD_DAYS:  # an old day is not listed, let alone its hours
        day = "/".join(_parts(datetime.now(timezone.utc) - timedelta(days=days), 3))
        assert not [p for p in listed if p.startswith(f"data-capture/{day}/")], day


@pytest.mark.slow
@pytest.mark.aws
def test_an_s3_window_that_cannot_be_read_is_a_located_error(trained: tuple, aws: Aws) -> None:
    ws, sets, _ = trained
    for uri, words in [
        ("s3://no-such-bucket/capture", "NoSuchBucket"),
        (f"s3://{BUCKET}/nothing-here", "no objects in the last 24 hours"),
    ]:
        out = cli(
            "monitor", str(ws / "pipelines.yaml"), *sets, "--current", uri, *WINDOW, env=aws.env, cwd=ws
        )
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        assert "FF775" in out.stderr and uri in out.stderr and words in out.stderr, out.stderr


@pytest.mark.slow
@pytest.mark.aws
def test_an_s3_uri_may_name_one_file(trained: tuple, aws: Aws) -> None:
    ws, sets, raw = trained
    body = raw.sample(300, random_state=4).to_csv(index=False).encode()
    aws.client("s3").put_object(Bucket=BUCKET, Key="windows/claims.csv", Body=body)
    uri = f"s3://{BUCKET}/windows/claims.csv"
    out = cli(
        "monitor",
        str(ws / "pipelines.yaml"),
        *sets,
        "--current",
        uri,
        "--format",
        "json",
        env=aws.env,
        cwd=ws,
    )
    assert out.returncode in (0, 4), out.stderr
    assert json.loads(out.stdout)["records"] == 300
