"""The edge's answer to a command is the truth (issue 10): 201/202 only if the writer will
decide it, 503 only if it provably will not, 504 when nobody can know yet; every answer names
the order. The broker's acknowledgement is scripted: its LogAppendTime against acceptBy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from aiokafka.structs import RecordMetadata, TopicPartition

from api.acceptance import Verdict, accept_by, verdict
from api.command_bus import CommandNotSent
from api.idempotency import order_id_for
from domain.orders.commands import EdgeCommand, to_millis
from infra.topics import LOG_APPEND_TIME
from tests.unit.test_api_http import NOW, ORDER, serving

BUDGET = timedelta(seconds=3)  # the default COMMAND_ACCEPT_BUDGET_MS
DEADLINE_MS = to_millis(NOW + BUDGET)


def acked(appended_ms: int, *, offset: int = 7, timestamp_type: int = LOG_APPEND_TIME
          ) -> RecordMetadata:
    return RecordMetadata("t", 0, TopicPartition("t", 0), offset, appended_ms, timestamp_type, 0)


class ScriptedSender:
    """Answers each send with the next scripted acknowledgement or failure."""

    def __init__(self) -> None:
        self.sent: list[EdgeCommand] = []
        self.answers: list[RecordMetadata | Exception] = []

    async def send(self, command: EdgeCommand) -> RecordMetadata:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        self.sent.append(command)
        return answer


@pytest.fixture
def sender() -> ScriptedSender:
    return ScriptedSender()


@pytest.fixture
async def client(sender: ScriptedSender) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(sender) as client:  # type: ignore[arg-type]
        yield client


async def post(client: httpx.AsyncClient, key: str | None = None) -> httpx.Response:
    body = ORDER if key is None else {**ORDER, "clientOrderId": key}
    return await client.post("/api/orders/execute", json=body)


@pytest.mark.parametrize("appended_ms", [to_millis(NOW), DEADLINE_MS])
async def test_appended_by_the_deadline_is_201(
    client: httpx.AsyncClient, sender: ScriptedSender, appended_ms: int
) -> None:
    sender.answers.append(acked(appended_ms))
    response = await post(client)

    assert response.status_code == 201
    (command,) = sender.sent
    assert command.accept_by == NOW + BUDGET
    assert response.json()["orderId"] == command.order_id


async def test_appended_after_the_deadline_is_503_not_executed_with_the_order_id(
    client: httpx.AsyncClient, sender: ScriptedSender
) -> None:
    sender.answers += [acked(DEADLINE_MS + 1), acked(to_millis(NOW))]
    late = await post(client, "k-late")
    retried = await post(client, "k-late")

    assert late.status_code == 503 and late.headers["retry-after"] == "1"
    body = late.json()
    assert body["error"] == "accept_deadline_passed"
    assert body["orderId"] == order_id_for("k-late")
    assert "not executed" in body["message"]
    # The late send was not remembered as accepted: the retry is produced again, and the
    # writer (which refused the late one) accepts it: still one order id.
    assert retried.status_code == 201 and retried.json()["orderId"] == order_id_for("k-late")
    assert len(sender.sent) == 2


async def test_a_keyless_503_still_names_the_order_it_assigned(
    client: httpx.AsyncClient, sender: ScriptedSender
) -> None:
    sender.answers.append(acked(DEADLINE_MS + 5000))
    response = await post(client)

    assert response.status_code == 503
    (command,) = sender.sent
    assert response.json()["orderId"] == command.order_id


async def test_kafka_known_down_is_503_with_the_breakers_retry_after(
    client: httpx.AsyncClient, sender: ScriptedSender
) -> None:
    sender.answers.append(CommandNotSent("Kafka is unreachable; nothing was sent", 2))
    response = await post(client, "k-down")

    assert response.status_code == 503 and response.headers["retry-after"] == "2"
    assert response.json()["error"] == "kafka_unavailable"
    assert response.json()["orderId"] == order_id_for("k-down")
    assert sender.sent == []


async def test_an_ack_without_coordinates_is_504_unknown(
    client: httpx.AsyncClient, sender: ScriptedSender
) -> None:
    sender.answers.append(acked(-1, offset=-1, timestamp_type=0))  # DuplicateSequenceNumber
    response = await post(client, "k-dup")

    assert response.status_code == 504
    assert response.json()["error"] == "outcome_unknown"
    assert response.json()["acceptBy"] == "2025-06-01T12:00:03Z"


async def test_a_late_cancel_is_503_and_an_in_time_one_202(
    client: httpx.AsyncClient, sender: ScriptedSender
) -> None:
    order_id = order_id_for("k-cancel")
    sender.answers += [acked(DEADLINE_MS + 1), acked(DEADLINE_MS)]
    late = await client.post(f"/api/orders/{order_id}/cancel", json={})
    in_time = await client.post(f"/api/orders/{order_id}/cancel", json={})

    assert (late.status_code, in_time.status_code) == (503, 202)
    assert late.json()["orderId"] == order_id
    assert all(command.accept_by == NOW + BUDGET for command in sender.sent)


def test_a_topic_without_append_times_has_no_arbiter_so_an_ack_is_accepted() -> None:
    create_time = acked(DEADLINE_MS + 10_000, timestamp_type=0)
    assert verdict(NOW + BUDGET, create_time) is Verdict.ACCEPTED


def test_the_deadline_is_whole_milliseconds() -> None:
    assert accept_by(NOW + timedelta(microseconds=999), BUDGET) == NOW + BUDGET
