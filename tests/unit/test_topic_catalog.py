"""How the raw-topic stream renders records: events, commands, claims, and what will not decode."""

from __future__ import annotations

import orjson
from aiokafka import ConsumerRecord

from api.live.topic_catalog import TopicCatalog
from oee.settings import Settings
from schemas.claims import claim_value, load_claim_schema
from schemas.codec import Codec
from schemas.writer_fence import claim_headers

CODEC = Codec.load()
SETTINGS = Settings(topic_prefix="t1.")


def record(value: bytes, headers: list[tuple[str, bytes]] | None = None,
           topic: str = "t1.orders.events") -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic, 2, 41, 1_700_000_000_000, 0, None, value, None, 0,
                          len(value), headers or [])


def test_a_claim_record_is_shown_as_the_claim_it_is() -> None:
    value = claim_value("host-a:123", 2, 7, load_claim_schema())
    shown = orjson.loads(TopicCatalog(SETTINGS, CODEC).render(
        record(value, claim_headers("host-a:123"))))

    assert shown["value"] == {"type": "WriterClaim", "claimant": "host-a:123", "partition": 2}
    assert shown["key"] is None and shown["offset"] == 41


def test_a_record_that_decodes_as_nothing_is_shown_with_its_error_and_bytes() -> None:
    shown = orjson.loads(TopicCatalog(SETTINGS, CODEC).render(record(b"\x00\x00garbage")))
    assert "error" in shown["value"] and shown["value"]["base64"]
