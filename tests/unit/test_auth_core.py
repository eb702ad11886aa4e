"""The pure parts of auth: key text and its HMAC, scopes and visibility, the token bucket,
the WebSocket slots, log redaction, and the refusal of AUTH_MODE=off off the loopback."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError
from uvicorn.logging import AccessFormatter

from api.auth.keys import (
    ANONYMOUS_ADMIN,
    Principal,
    Scope,
    key_text,
    matches,
    parse_key,
    redact,
    secret_hash,
)
from api.auth.limits import RateLimiter, SocketsFull, SocketSlots
from api.auth.redact import RedactKeys
from api.idempotency import order_id_for
from oee.settings import AuthMode, Settings

SERVER = b"s" * 32
KEY_ID, SECRET = "0123456789abcdef", "A" * 43


def test_a_key_parses_and_only_its_own_hash_matches() -> None:
    presented = parse_key(key_text(KEY_ID, SECRET))
    assert presented is not None and presented.key_id == KEY_ID
    stored = secret_hash(SERVER, KEY_ID, SECRET)
    assert matches(SERVER, presented, stored)
    assert not matches(b"t" * 32, presented, stored)  # another server secret
    assert not matches(SERVER, presented, secret_hash(SERVER, KEY_ID, "B" * 43))


@pytest.mark.parametrize("text", ["", "Bearer x", "oee_0123_" + "A" * 43, "oee_" + KEY_ID + "_short"])
def test_text_not_shaped_like_a_key_is_refused(text: str) -> None:
    assert parse_key(text) is None


def test_scopes_include_the_smaller_ones_and_admins_see_every_order() -> None:
    trader = Principal("a" * 16, Scope.TRADE)
    assert trader.may(Scope.READ) and trader.may(Scope.TRADE) and not trader.may(Scope.ADMIN)
    assert trader.sees("a" * 16) and not trader.sees("b" * 16) and not trader.sees(None)
    assert Principal("c" * 16, Scope.ADMIN).sees(None) and ANONYMOUS_ADMIN.sees("a" * 16)


def test_two_owners_idempotency_keys_name_different_orders() -> None:
    assert order_id_for("k", "a" * 16) != order_id_for("k", "b" * 16)
    assert order_id_for("k", "a" * 16) == order_id_for("k", "a" * 16)
    assert order_id_for("k") != order_id_for("k", "a" * 16)  # auth off keeps its old ids


def test_the_bucket_refills_at_its_rate_and_says_when_to_retry() -> None:
    now = [0.0]
    limiter = RateLimiter(per_s=2.0, burst=2, clock=lambda: now[0])
    assert [limiter.take("k").allowed for _ in range(3)] == [True, True, False]
    refused = limiter.take("k")
    assert refused.headers()["Retry-After"] == "1" and refused.remaining == 0
    assert limiter.take("other").allowed  # one bucket per key
    now[0] = 0.5
    assert limiter.take("k").allowed and not limiter.take("k").allowed


def test_socket_slots_cap_per_key_and_per_process_and_come_back() -> None:
    slots = SocketSlots(per_key=1, per_process=2)
    give_back = slots.take("a")
    with pytest.raises(SocketsFull, match="this key"):
        slots.take("a")
    other = slots.take("b")
    with pytest.raises(SocketsFull, match="this server"):
        slots.take("c")
    give_back()
    other()
    assert slots.open == 0 and slots.take("a")


def test_the_access_log_never_shows_a_keys_secret() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("1.2.3.4:5", "GET", f"/api/orders/stream/all?token={key_text(KEY_ID, SECRET)}",
                                "1.1", 101), None)
    assert RedactKeys().filter(record)
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s').format(record)
    assert SECRET not in line and KEY_ID in line
    assert redact(f"x {key_text(KEY_ID, SECRET)} y") == f"x oee_{KEY_ID}_[redacted] y"


def test_auth_off_is_refused_unless_the_api_listens_on_the_loopback() -> None:
    with pytest.raises(ValidationError, match="loopback"):
        Settings(auth_mode=AuthMode.OFF, api_host="0.0.0.0")
    for host in ("127.0.0.1", "::1", "localhost"):
        assert Settings(auth_mode=AuthMode.OFF, api_host=host).auth_mode is AuthMode.OFF
    assert Settings(auth_mode=AuthMode.ON, api_host="0.0.0.0").auth_mode is AuthMode.ON


def test_the_openapi_document_shows_both_ways_to_send_a_key() -> None:
    from oee.api_bootstrap import bootstrap

    document = bootstrap(Settings(auth_mode=AuthMode.OFF)).openapi()  # nothing is opened

    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer",
                                 "description": schemes["bearer"]["description"]}
    assert schemes["apiKey"]["in"] == "header" and schemes["apiKey"]["name"] == "X-API-Key"
    for path, method in (("/api/orders/execute", "post"), ("/api/orders", "get"),
                         ("/api/projections/rebuild", "post"), ("/api/metrics", "get")):
        assert {"bearer": []} in document["paths"][path][method]["security"], path
    assert "security" not in document["paths"]["/health"]["get"]
