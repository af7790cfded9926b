"""step_code/lambda_deployer.py against every endpoint state, with a real boto3 SageMaker client stubbed by
botocore's Stubber: each call and its answer is checked against SageMaker's API model (parameter names and
types, response shapes, the EndpointStatus enum), and every call the deployer makes must be one the test
expects, in order. Time is a fake clock: `sleep` advances it, `remaining` counts down from the Lambda budget.
"""

from __future__ import annotations

import datetime as dt

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.deployer_util import Clock, deployer

ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/fraudflow-sagemaker"
PACKAGE = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/fraud/1"
ENDPOINT = "fraud-ep"
OLD_CONFIG = "fraud-ep-v0-0123abcd"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


PRODUCTION = [
    {
        "VariantName": "AllTraffic",
        "ModelName": "fraud-ep-v1",
        "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1,
        "InitialVariantWeight": 1.0,
    }
]
CONFIG = deployer.config_name(ENDPOINT, PRODUCTION)
EVENT = {
    "model_package_arn": PACKAGE,
    "endpoint_name": ENDPOINT,
    "instance_type": "ml.m5.large",
    "instance_count": 1,
    "variant_name": "AllTraffic",
    "require_approval": False,
    "role_arn": ROLE,
}
STATUSES = botocore.session.get_session().get_service_model("sagemaker").shape_for("EndpointStatus").enum


class SageMaker:
    """A stubbed client and the script of calls it expects."""

    def __init__(self) -> None:
        self.client = boto3.client(
            "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        self.stub = Stubber(self.client)
        self.stub.activate()
        # the variant resolver reads the served version's approval status first (a Rejected one never serves)
        self.answer(
            "describe_model_package",
            {"ModelPackageName": "fraud", "ModelPackageArn": PACKAGE, "CreationTime": NOW,
             "ModelPackageStatus": "Completed", "ModelApprovalStatus": "PendingManualApproval",
             "ModelPackageStatusDetails": {"ValidationStatuses": []}},
            {"ModelPackageName": PACKAGE},
        )  # fmt: skip

    def error(self, method: str, message: str, params: dict | None = None) -> SageMaker:
        self.stub.add_client_error(
            method, "ValidationException", message, http_status_code=400, expected_params=params
        )
        return self

    def answer(self, method: str, response: dict, params: dict | None = None) -> SageMaker:
        self.stub.add_response(method, response, params)
        return self

    def models_and_config_exist(self) -> SageMaker:
        self.answer(
            "describe_model",
            {"ModelName": "fraud-ep-v1", "ModelArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/fraud-ep-v1",
             "CreationTime": NOW},
            {"ModelName": "fraud-ep-v1"},
        )  # fmt: skip
        return self.answer(
            "describe_endpoint_config",
            {"EndpointConfigName": CONFIG, "EndpointConfigArn": self.arn("endpoint-config", CONFIG),
             "ProductionVariants": PRODUCTION, "CreationTime": NOW},
            {"EndpointConfigName": CONFIG},
        )  # fmt: skip

    @staticmethod
    def arn(kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:{kind}/{name}"

    def endpoint(self, status: str | None, config: str = CONFIG, reason: str | None = None) -> SageMaker:
        if status is None:
            return self.error(
                "describe_endpoint",
                f'Could not find endpoint "{self.arn("endpoint", ENDPOINT)}".',
                {"EndpointName": ENDPOINT},
            )
        answer = {
            "EndpointName": ENDPOINT,
            "EndpointArn": self.arn("endpoint", ENDPOINT),
            "EndpointConfigName": config,
            "EndpointStatus": status,
            "CreationTime": NOW,
            "LastModifiedTime": NOW,
        }
        if reason:
            answer["FailureReason"] = reason
        return self.answer("describe_endpoint", answer, {"EndpointName": ENDPOINT})

    def create(self) -> SageMaker:
        return self.answer(
            "create_endpoint",
            {"EndpointArn": self.arn("endpoint", ENDPOINT)},
            {"EndpointName": ENDPOINT, "EndpointConfigName": CONFIG},
        )

    def update(self) -> SageMaker:
        return self.answer(
            "update_endpoint",
            {"EndpointArn": self.arn("endpoint", ENDPOINT)},
            {"EndpointName": ENDPOINT, "EndpointConfigName": CONFIG},
        )

    def delete(self) -> SageMaker:
        return self.answer("delete_endpoint", {}, {"EndpointName": ENDPOINT})

    def run(self, clock: Clock | None = None) -> dict[str, str]:
        clock = clock or Clock()
        out = deployer.deploy(EVENT, self.client, sleep=clock.sleep, remaining=clock.remaining)
        self.stub.assert_no_pending_responses()
        return out


def test_the_deployer_knows_every_endpoint_status_of_the_api() -> None:
    """A status SageMaker adds later must be a conscious decision here, not a silent fall-through."""
    handled = {"InService", "Failed", "UpdateRollbackFailed", "OutOfService", *deployer.TRANSITIONAL}
    assert set(STATUSES) == handled


def test_first_deployment_creates_everything_and_waits_for_in_service() -> None:
    sm = SageMaker()
    sm.error("describe_model", 'Could not find model "fraud-ep-v1".', {"ModelName": "fraud-ep-v1"})
    sm.answer(
        "create_model",
        {"ModelArn": sm.arn("model", "fraud-ep-v1")},
        {
            "ModelName": "fraud-ep-v1",
            "ExecutionRoleArn": ROLE,
            "PrimaryContainer": {"ModelPackageName": PACKAGE},
        },
    )
    sm.error("describe_endpoint_config", f'Could not find endpoint configuration "{CONFIG}".')
    sm.answer(
        "create_endpoint_config",
        {"EndpointConfigArn": sm.arn("endpoint-config", CONFIG)},
        {"EndpointConfigName": CONFIG, "ProductionVariants": PRODUCTION},
    )
    sm.endpoint(None).create().endpoint(None).endpoint("Creating").endpoint("Creating").endpoint("InService")
    clock = Clock()
    out = sm.run(clock)
    assert (out["action"], out["endpoint_config_name"]) == ("created", CONFIG) and "note" not in out
    assert clock.sleeps == [deployer.POLL_S] * 4  # it returned only once DescribeEndpoint said InService


def test_create_endpoint_is_retried_while_the_new_config_is_not_visible_yet() -> None:
    """SageMaker's eventual consistency: `ValidationException: Could not find endpoint configuration "…"`."""
    sm = SageMaker().models_and_config_exist().endpoint(None)
    message = f'Could not find endpoint configuration "{SageMaker.arn("endpoint-config", CONFIG)}".'
    sm.error("create_endpoint", message).error("create_endpoint", message).create().endpoint("InService")
    clock = Clock()
    assert sm.run(clock)["action"] == "created"
    assert clock.sleeps == [*deployer.CONSISTENCY_DELAYS[:2], deployer.POLL_S]


def test_the_consistency_retry_gives_up_and_other_validation_errors_are_not_retried() -> None:
    message = f'Could not find endpoint configuration "{CONFIG}".'
    sm = SageMaker().models_and_config_exist().endpoint(None)
    for _ in range(len(deployer.CONSISTENCY_DELAYS) + 1):
        sm.error("create_endpoint", message)
    with pytest.raises(Exception, match="Could not find endpoint configuration"):
        sm.run()
    sm = SageMaker().models_and_config_exist().endpoint(None)
    sm.error("create_endpoint", "The account-level service limit 'ml.m5.large for endpoint usage' is 0")
    with pytest.raises(Exception, match="service limit"):
        sm.run()
    sm.stub.assert_no_pending_responses()  # one call: no retry


def test_in_service_with_another_config_is_updated_and_waited_for() -> None:
    sm = SageMaker().models_and_config_exist().endpoint("InService", OLD_CONFIG).update()
    sm.endpoint("InService", OLD_CONFIG)  # DescribeEndpoint lagging behind UpdateEndpoint
    sm.endpoint("Updating", OLD_CONFIG).endpoint("Updating", OLD_CONFIG).endpoint("InService")
    assert sm.run()["action"] == "updated"


def test_in_service_with_the_config_is_unchanged_and_writes_nothing() -> None:
    out = SageMaker().models_and_config_exist().endpoint("InService").run()
    assert out["action"] == "unchanged" and "note" not in out


def test_a_failed_endpoint_with_the_same_config_is_deleted_and_created_again() -> None:
    """The retry after a failed deployment: `unchanged` would read as success while nothing serves."""
    reason = "The primary container for production variant AllTraffic did not pass the ping health check."
    sm = SageMaker().models_and_config_exist().endpoint("Failed", CONFIG, reason).delete()
    sm.endpoint("Deleting").endpoint(None).create().endpoint("Creating").endpoint("InService")
    out = sm.run()
    assert out["action"] == "recreated"
    assert "deleted the Failed endpoint" in out["note"] and reason in out["note"]


def test_a_failed_endpoint_with_another_config_is_deleted_and_created_with_the_new_one() -> None:
    sm = SageMaker().models_and_config_exist().endpoint("Failed", OLD_CONFIG, "bad model").delete()
    sm.endpoint(None).create().endpoint("InService")
    assert sm.run()["action"] == "recreated"


def test_a_deleting_endpoint_is_waited_out_then_created() -> None:
    sm = (
        SageMaker()
        .models_and_config_exist()
        .endpoint("Deleting", OLD_CONFIG)
        .endpoint("Deleting", OLD_CONFIG)
    )
    sm.endpoint(None).create().endpoint("Creating").endpoint("InService")
    out = sm.run()
    assert out["action"] == "created" and "found Deleting" in out["note"]


@pytest.mark.parametrize("status", ["Creating", "Updating", "SystemUpdating", "RollingBack"])
def test_a_transition_with_the_config_is_waited_out(status: str) -> None:
    """A first attempt that timed out left the endpoint in transition: the retry waits, writes nothing."""
    sm = SageMaker().models_and_config_exist().endpoint(status).endpoint(status).endpoint("InService")
    clock = Clock()
    out = sm.run(clock)
    assert out["action"] == "unchanged" and f"found {status}" in out["note"]
    assert len(clock.sleeps) == 2


@pytest.mark.parametrize("status", ["Creating", "Updating", "SystemUpdating", "RollingBack"])
def test_a_transition_to_another_config_is_waited_out_then_updated(status: str) -> None:
    sm = SageMaker().models_and_config_exist().endpoint(status, OLD_CONFIG).endpoint("InService", OLD_CONFIG)
    sm.update().endpoint("Updating", OLD_CONFIG).endpoint("InService")
    assert sm.run()["action"] == "updated"


def test_an_update_refused_mid_transition_waits_and_tries_again() -> None:
    sm = SageMaker().models_and_config_exist().endpoint("InService", OLD_CONFIG)
    sm.error(
        "update_endpoint", f'Cannot update in-progress endpoint "{SageMaker.arn("endpoint", ENDPOINT)}".'
    )
    sm.endpoint("InService", OLD_CONFIG).update().endpoint("Updating", OLD_CONFIG).endpoint("InService")
    assert sm.run()["action"] == "updated"


def test_a_concurrent_create_is_not_an_error() -> None:
    sm = SageMaker().models_and_config_exist().endpoint(None)
    sm.error(
        "create_endpoint", f'Cannot create already existing endpoint "{SageMaker.arn("endpoint", ENDPOINT)}".'
    )
    sm.endpoint("Creating").endpoint("InService")
    assert sm.run()["action"] == "unchanged"


def test_our_update_rolled_back_fails_the_step_with_the_reason() -> None:
    reason = "Model failed to load: xgboost-model"
    sm = SageMaker().models_and_config_exist().endpoint("InService", OLD_CONFIG).update()
    sm.endpoint("Updating", OLD_CONFIG).endpoint("RollingBack", OLD_CONFIG)
    sm.endpoint("InService", OLD_CONFIG, reason)
    with pytest.raises(deployer.EndpointError) as info:
        sm.run()
    text = str(info.value)
    assert "rolled back" in text and reason in text and OLD_CONFIG in text and "retry" in text


def test_our_create_that_fails_fails_the_step_without_deleting() -> None:
    reason = "Image does not exist"
    sm = SageMaker().models_and_config_exist().endpoint(None).create().endpoint("Creating")
    sm.endpoint("Failed", CONFIG, reason)
    with pytest.raises(deployer.EndpointError) as info:
        sm.run()
    assert reason in str(info.value) and "/aws/sagemaker/Endpoints/fraud-ep" in str(info.value)


def test_a_recreated_endpoint_that_fails_again_is_not_deleted_twice() -> None:
    sm = SageMaker().models_and_config_exist().endpoint("Failed", CONFIG, "first").delete().endpoint(None)
    sm.create().endpoint("Failed", CONFIG, "second")
    with pytest.raises(deployer.EndpointError, match="second"):
        sm.run()


def test_update_rollback_failed_is_left_alone_with_instructions() -> None:
    sm = SageMaker().models_and_config_exist().endpoint("UpdateRollbackFailed", OLD_CONFIG, "rollback failed")
    with pytest.raises(deployer.EndpointError) as info:
        sm.run()
    text = str(info.value)
    assert "UpdateRollbackFailed" in text and "update-endpoint" in text and "delete-endpoint" in text


def test_out_of_service_fails_with_what_to_do() -> None:
    sm = SageMaker().models_and_config_exist().endpoint("OutOfService", CONFIG)
    with pytest.raises(deployer.EndpointError, match="OutOfService"):
        sm.run()


def test_the_wait_ends_before_the_lambda_timeout_with_a_clear_message() -> None:
    sm = SageMaker().models_and_config_exist().endpoint(None).create()
    clock = Clock(budget=40.0)
    for _ in range(4):  # 15 + 15 + 10 s, then the budget is spent
        sm.endpoint("Creating")
    with pytest.raises(deployer.EndpointError) as info:
        sm.run(clock)
    assert "still Creating" in str(info.value) and "retry-pipeline-execution" in str(info.value)
    assert sum(clock.sleeps) == 40.0


@pytest.mark.parametrize("status", STATUSES)
def test_no_status_is_reported_as_success_unless_in_service_with_the_config(status: str) -> None:
    """Whatever state the endpoint is found in, the deployer either ends InService with the config, or raises
    EndpointError; it never returns after the endpoint only *was* asked to change."""
    sm = SageMaker().models_and_config_exist().endpoint(status, OLD_CONFIG, "r")
    if status == "InService":
        sm.update().endpoint("Updating", OLD_CONFIG).endpoint("InService")
    elif status == "Failed":
        sm.delete().endpoint(None).create().endpoint("InService")
    elif status in deployer.TRANSITIONAL:
        sm.endpoint("InService", OLD_CONFIG).update().endpoint("Updating", OLD_CONFIG).endpoint("InService")
    try:
        out = sm.run()
    except deployer.EndpointError:
        assert status in ("UpdateRollbackFailed", "OutOfService")
        return
    assert out["action"] in ("updated", "recreated")


def test_the_handler_waits_within_the_lambda_context() -> None:
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 900_000

    left = deployer._budget(Context())()
    assert left == 900 - deployer.MARGIN_S


@settings(max_examples=40, deadline=None)
@given(
    walk=st.lists(st.sampled_from(["Creating", "Updating", "SystemUpdating", "RollingBack"]), max_size=30),
    budget_polls=st.integers(min_value=0, max_value=40),
)
def test_any_wait_ends_in_service_or_in_a_clear_timeout(walk: list[str], budget_polls: int) -> None:
    """Whatever transitions SageMaker goes through, the deployer returns only after DescribeEndpoint said
    InService with the config, and gives up, saying so, exactly when the Lambda's budget is spent."""
    sm = SageMaker().models_and_config_exist()
    clock = Clock(budget=budget_polls * deployer.POLL_S)
    polls = min(len(walk), budget_polls)  # DescribeEndpoint calls answered with a transition before the end
    for status in walk[: polls + 1]:
        sm.endpoint(status)
    if budget_polls >= len(walk):
        sm.endpoint("InService")
        assert sm.run(clock)["action"] == "unchanged"
        assert len(clock.sleeps) == len(walk)
    else:
        with pytest.raises(deployer.EndpointError, match="still"):
            sm.run(clock)
        assert sum(clock.sleeps) == clock.budget
