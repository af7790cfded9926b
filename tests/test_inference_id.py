"""The caller's `X-Amzn-SageMaker-Inference-Id` is held to SageMaker's InferenceId constraints (length 1-64,
pattern `\\A\\S[\\p{Print}]*\\z`, botocore's sagemaker-runtime model): `fraudflow serve` refuses another one with
SageMaker's 400 ValidationError over real HTTP, before the model runs, and captures nothing for it; an id at the
limits is taken, captured and returned as sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudflow.local.serving import capture as C
from tests.test_capture import read_captures
from tests.test_serve import Server, call, csv_of, runtime_client, train_and_register

pytestmark = pytest.mark.usefixtures("aws_data")

JAVA_SPACE = " \t\n\x0b\f\r"  # Java's \s, which \S negates
PRINT = "".join(chr(c) for c in range(0x20, 0x7F))  # Java's \p{Print}: US-ASCII, space to tilde


def _sagemaker_takes(value: str) -> bool:
    """The documented constraint, read literally."""
    return 1 <= len(value) <= 64 and value[0] not in JAVA_SPACE and all(c in PRINT for c in value[1:])


ids = st.one_of(
    st.text(alphabet=PRINT, max_size=70),
    st.text(max_size=70),  # any character, control and non-ASCII ones included
    st.text(alphabet=PRINT + "\t\x7f\xe9", min_size=60, max_size=66),  # around the length limit
)


@given(value=ids)
def test_the_check_is_sagemakers_constraint(value: str) -> None:
    assert (C.inference_id_constraint(value) is None) == _sagemaker_takes(value)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path, bytes]]:
    """A served model capturing every request, and a valid request body."""
    ws = tmp_path_factory.mktemp("ws")
    model = train_and_register(ws)
    capture = ws / "capture"
    srv = Server(ws, "--capture-dir", str(capture))
    yield srv, capture, csv_of(model["x"][:2])
    srv.stop()


BAD = [
    ("x" * 65, "length less than or equal to 64"),
    ("", "length greater than or equal to 1"),
    ("claim\t42", "regular expression pattern"),
    ("claim-\xe9", "regular expression pattern"),  # sent as the latin-1 byte 0xE9
    ("claim\x7f", "regular expression pattern"),
]


@pytest.mark.parametrize("path", ["/invocations", "/endpoints/fraud-detect-xgb/invocations"])
def test_a_bad_inference_id_is_sagemakers_validation_error(
    server: tuple[Server, Path, bytes], path: str
) -> None:
    srv, capture, body = server
    before = len(read_captures(capture)) if capture.exists() else 0
    for value, words in BAD:
        status, headers, answer = call(
            srv.url + path, body, "text/csv", headers={"X-Amzn-SageMaker-Inference-Id": value}
        )
        assert status == 400, (value, answer)
        assert headers["x-amzn-ErrorType"] == "ValidationError"
        doc = json.loads(answer)
        assert doc["code"] == "ValidationError" and words in doc["message"], doc
        assert "at 'inferenceId' failed to satisfy constraint" in doc["message"]
        assert "X-Amzn-SageMaker-Inference-Id" in doc["message"]
        assert doc.get("__type") == ("ValidationError" if path.startswith("/endpoints/") else None)
    assert (len(read_captures(capture)) if capture.exists() else 0) == before  # nothing captured


def test_ids_at_the_limits_are_taken_captured_and_returned(server: tuple[Server, Path, bytes]) -> None:
    srv, capture, body = server
    for value in ("a", "z" * 64, "~" + " " * 10 + "x", "order 17/#3"):
        status, headers, answer = call(
            srv.url + "/invocations", body, "text/csv", headers={"X-Amzn-SageMaker-Inference-Id": value}
        )
        assert status == 200, (value, answer)
        assert headers["X-Amzn-SageMaker-Inference-Id"] == value
        assert value in {r["eventMetadata"]["inferenceId"] for _, r in read_captures(capture)}


def test_boto3_gets_the_validation_error(server: tuple[Server, Path, bytes]) -> None:
    from botocore.exceptions import ClientError

    srv, _, body = server
    rt = runtime_client(
        srv.url, parameter_validation=False
    )  # botocore would refuse the length before sending
    with pytest.raises(ClientError) as err:
        rt.invoke_endpoint(
            EndpointName="fraud-detect-xgb", ContentType="text/csv", Body=body, InferenceId="i" * 65
        )
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
