"""What the tests ask a real broker's admin API: a topic's effective config, and to make the
event store refuse records (`max.message.bytes`) for a while."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from infra.topics import EVENT_STORE_CONFIG
from oee.settings import Settings

KAFKA_DEFAULT_MAX_MESSAGE_BYTES = "1048588"


async def events_topic_takes_at_most(settings: Settings, max_bytes: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        config = {**EVENT_STORE_CONFIG, "max.message.bytes": max_bytes}
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC,
                                                  settings.topics.events, configs=config)])
    finally:
        await admin.close()


async def topic_config(bootstrap_servers: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    [resource] = response.to_object()["resources"]
    return {entry["config_names"]: entry["config_value"] for entry in resource["config_entries"]}
