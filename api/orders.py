"""The orders resource: commands in. POST validates, produces one command to Kafka, answers.

Consumes HTTP requests; produces `ExecuteOrder` / `CancelOrder` on `orders.commands` through
the command bus, and answers only once Kafka has acknowledged the command (acks=all), so a
201/202 means "durably accepted", never "probably". Nothing is produced for a bad request.

- `POST /api/orders/execute` -> 201 {"orderId", "status": "pending", "websocketUrl"}.
  With an idempotency key (`clientOrderId` or the `Idempotency-Key` header) the order id is
  derived from the caller's key id and the idempotency key, so a retry always names the same
  order and two owners never share one. A replay answers as the first POST did (201, the same
  body) and produces nothing; the same key with other terms answers 422 (see
  `api.idempotency` for how far that check reaches). The order records its owner.
- `POST /api/orders/{id}/cancel` -> 202 {"orderId", "status": "cancel_requested"}; the order
  agent decides whether the cancel still applies (an OrderCancelled or CancelRejected event).
  Another owner's order is a 404, as an unknown one.

Both commands carry an accept-by deadline (now + COMMAND_ACCEPT_BUDGET_MS); the writer refuses
a command the broker appended after it, so the answer tells the truth (`api.acceptance`):
- 201 / 202: appended by the deadline, acknowledged by every in-sync replica;
- 503 `kafka_unavailable` (Kafka known down: nothing sent) or `accept_deadline_passed`
  (appended too late: the writer refuses it): NOT executed, and it never will be;
- 504 `outcome_unknown`: no acknowledgement in time; the command counts if and only if Kafka
  appended it by `acceptBy` (in the body). Every answer, errors included, names the `orderId`.
A client retry can never create a second order: with an idempotency key every attempt names
the same order (at most one is accepted, the writer ignores the rest); without one, each POST
is a new order id, and a 503 one is never executed, while after a 504 the client asks
`GET /api/orders/{orderId}` (after `acceptBy`) before placing it again.

Both need a key with the trade scope (`api.auth.guard`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal
from uuid import uuid4

from fastapi import APIRouter, Header, Request, Response
from pydantic import BaseModel

from api.auth.guard import Trader
from api.auth.keys import Principal
from api.bodies import read_body
from api.acceptance import Verdict, accept_by, verdict
from api.command_bus import CommandNotDelivered, CommandNotSent
from api.deps import Edge, EdgeDep
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody, FieldError, invalid
from api.fields import check_idempotency_key
from api.idempotency import Replay, execute_command_id, order_id_for
from api.order_ids import not_found, order_id_or_404
from api.requests import (
    EXECUTE_BODY_OPENAPI,
    OrderRequest,
    parse_cancel_request,
    parse_order_request,
)
from domain.orders.commands import CancelOrder, EdgeCommand, ExecuteOrder
from domain.orders.status import CANCELLABLE, TERMINAL, OrderStatus

router = APIRouter(prefix="/api/orders", tags=["orders"])

# Where a cancel can still win (`domain.orders.status.CANCELLABLE`): before the transaction
# exists, so before it can be submitted. Anything later is answered 409 once the read model
# tells the edge the status (see `cancel_order`).


class ExecuteOrderResponse(BaseModel):
    orderId: str
    status: Literal["pending"] = "pending"
    websocketUrl: str
    success: Literal[True] = True  # redundant with 201, but older engines' clients test it


class CancelOrderResponse(BaseModel):
    orderId: str
    status: Literal["cancel_requested"] = "cancel_requested"


@router.post(
    "/execute",
    status_code=201,
    response_model=ExecuteOrderResponse,
    summary="Execute a swap",
    openapi_extra=EXECUTE_BODY_OPENAPI,
    responses={
        422: {"model": ErrorBody, "description": "The idempotency key was used for another order."},
        413: {"model": ErrorBody, "description": "The body is too large."},
        **ERROR_RESPONSES,
    },
)
async def execute_order(
    request: Request,
    response: Response,
    edge: EdgeDep,
    who: Trader,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> ExecuteOrderResponse:
    # The body is read raw, not declared as a model parameter: FastAPI would parse JSON
    # numbers through float before we could see them (money, see `api.requests`).
    order = parse_order_request(await read_body(request), edge.registry, now=edge.clock(),
                                min_interval_s=edge.min_interval_s)
    key = _idempotency_key(order.client_order_id, idempotency_key)
    order_id = order_id_for(key, who.owner) if key is not None else str(uuid4())
    answer = ExecuteOrderResponse(orderId=order_id, websocketUrl=_stream_url(request, order_id))
    if key is not None:
        replay = await _replay(edge, order_id, order.fingerprint())
        if replay is Replay.SAME:
            return answer  # already durably in Kafka: answered as the first time, 201
        if replay is Replay.CONFLICT:
            raise _key_reused(key, order_id, from_header=idempotency_key is not None)
    await _produce(edge, _execute_command(edge, order, order_id, key, who), "execute")
    if key is not None:
        edge.recent_keys.remember(order_id, order.fingerprint())
    return answer


async def _replay(edge: Edge, order_id: str, fingerprint: tuple[object, ...]) -> Replay:
    """This process's memory first; what it does not know, the read model may."""
    replay = edge.recent_keys.check(order_id, fingerprint)
    if replay is not Replay.NEW:
        return replay
    first = await edge.orders.accepted_fingerprint(order_id)
    if first is None:
        return Replay.NEW
    edge.recent_keys.remember(order_id, first)
    return Replay.SAME if first == fingerprint else Replay.CONFLICT


@router.post(
    "/{order_id}/cancel",
    status_code=202,
    response_model=CancelOrderResponse,
    summary="Ask to cancel an order",
    responses={409: {"model": ErrorBody, "description": "Too late to cancel."}, **ERROR_RESPONSES},
)
async def cancel_order(
    order_id: str, request: Request, edge: EdgeDep, who: Trader
) -> CancelOrderResponse:
    canonical_id = order_id_or_404(order_id)
    body = parse_cancel_request(await read_body(request))
    await _check_owner(edge, who, canonical_id)
    # The read model (`edge.statuses`) refuses a cancel that can no longer win with 409; the
    # order agent stays the judge of the rest (OrderCancelled or CancelRejected). An order the
    # read model does not know (yet) is accepted: it may simply not have caught up.
    status = await edge.statuses.status_of(canonical_id)
    if status is not None and status not in CANCELLABLE:
        raise _too_late(status)
    now = edge.clock()
    command = CancelOrder(command_id=str(uuid4()), order_id=canonical_id, issued_at=now,
                          accept_by=accept_by(now, edge.accept_budget), reason=body.reason)
    await _produce(edge, command, "cancel")
    return CancelOrderResponse(orderId=canonical_id)


async def _check_owner(edge: Edge, who: Principal, order_id: str) -> None:
    """Another owner's order is answered as a missing one (404): its existence is not ours
    to tell. An order the read model does not know yet goes to the agent, as any cancel."""
    if who.sees(None):  # an admin (or auth off) may cancel anything
        return
    owner = await edge.orders.owner_of(order_id)
    if owner is not None and not who.sees(owner.key_id):
        raise not_found(order_id)


def _too_late(status: OrderStatus) -> ApiError:
    if status in TERMINAL:
        why = "it has ended"
    else:
        why = ("its transaction exists and may land; an order can only be cancelled while it "
               "is pending, waiting or routing")
    return ApiError(409, "too_late_to_cancel", f"the order is already {status.value}: {why}",
                    (FieldError("orderId", f"order is {status.value}"),))


def _idempotency_key(client_order_id: str | None, header: str | None) -> str | None:
    """The order's key: the body's clientOrderId and the header name one key space."""
    if header is not None:
        check_idempotency_key("Idempotency-Key", header)
        if client_order_id is not None and client_order_id != header:
            raise invalid("Idempotency-Key", "differs from clientOrderId; send one key, or the "
                          "same key in both")
        return header
    return client_order_id


def _execute_command(
    edge: Edge, order: OrderRequest, order_id: str, key: str | None, who: Principal
) -> ExecuteOrder:
    now = edge.clock()
    return ExecuteOrder(
        command_id=execute_command_id(order_id),
        order_id=order_id,
        issued_at=now,
        accept_by=accept_by(now, edge.accept_budget),
        terms=replace(order.terms, client_order_id=key),
        owner=who.owner,
    )


async def _produce(edge: Edge, command: EdgeCommand, what: str) -> None:
    """Send `command`; return if the writer will decide it, else raise the honest answer."""
    assert command.accept_by is not None
    deadline = command.accept_by.isoformat().replace("+00:00", "Z")
    order = {"orderId": command.order_id}
    try:
        metadata = await edge.commands.send(command)
    except CommandNotSent as exc:
        raise ApiError(503, "kafka_unavailable", f"{exc}: the {what} is not executed; retry "
                       "later", headers={"Retry-After": str(exc.retry_after_s)},
                       extra=order) from exc
    except CommandNotDelivered as exc:
        raise _unknown(what, f"{exc}", deadline, order) from exc
    found = verdict(command.accept_by, metadata)
    if found is Verdict.LATE:
        message = (f"Kafka appended the {what} after its accept-by deadline {deadline}: it is "
                   "not executed and never will be; retry")
        raise ApiError(503, "accept_deadline_passed", message, headers={"Retry-After": "1"},
                       extra=order)
    if found is Verdict.UNKNOWN:
        raise _unknown(what, "Kafka acknowledged it without telling when it appended it",
                       deadline, order)


def _unknown(what: str, why: str, deadline: str, order: dict[str, str]) -> ApiError:
    message = (f"{why}: whether the {what} is executed is unknown. It counts if and only if "
               f"Kafka appended it by {deadline}: after then, GET /api/orders/{order['orderId']} "
               "tells; a retry with the same idempotency key is always safe")
    return ApiError(504, "outcome_unknown", message, extra=order | {"acceptBy": deadline})


def _key_reused(key: str, order_id: str, *, from_header: bool) -> ApiError:
    field = "Idempotency-Key" if from_header else "clientOrderId"
    message = (f"{field} {key!r} was already used for order {order_id} with different terms; "
               "use a new key for a new order")
    return ApiError(422, "idempotency_conflict", message, (FieldError(field, message),))


def _stream_url(request: Request, order_id: str) -> str:
    """The absolute WebSocket URL of the order's stream, on the host the client reached.

    Built by hand because the WebSocket route is not part of this module (url_for needs it).
    """
    base = request.base_url  # includes the root path, ends with "/"
    scheme = "wss" if base.scheme == "https" else "ws"
    return f"{base.replace(scheme=scheme)}api/orders/{order_id}/stream"
