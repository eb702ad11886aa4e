"""Kafka failing under load beyond the single broker's crash (issue 10): a node of a
three-node cluster SIGKILLed (i), and the event store refusing what the writer appends (j).

(i) runs on a KRaft cluster of the scenario's own (`KAFKA_BROKERS=3`: replication factor 3,
`min.insync.replicas=2`), so acks=all writes go on with one node dead; the node that goes is
the first of the bootstrap list, which every client asked first. (j) lowers the events topic's
`max.message.bytes` below any event's size for a few seconds: every append in that window is
refused for good (not retried), so the writer must rewind and decide again, never committing
past what was not stored, and its idempotent producer must not stay wedged afterwards.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from oee.settings import Settings
from tests.chaos.conftest import CHAOS_TIMING, Scoreboard
from tests.chaos.services import OwnCluster
from tests.chaos.system import System, hold_fault, provisioned_on
from tests.integration.kafka_admin import KAFKA_DEFAULT_MAX_MESSAGE_BYTES, events_topic_takes_at_most

pytestmark = pytest.mark.timeout(900)

ORDERS, RATE = 300, 50


async def test_i_a_node_of_a_three_node_cluster_sigkilled_under_load(
    settings: Settings, own_cluster: OwnCluster, scoreboard: Scoreboard,
) -> None:
    ours = await provisioned_on(settings, own_cluster.bootstrap_servers, **CHAOS_TIMING,
                                kafka_brokers=OwnCluster.SIZE, replication_factor=OwnCluster.SIZE)
    async with System(ours, workers=1) as system:
        load = system.load(count=ORDERS, rate=RATE, give_up_after_s=240.0)
        firing = asyncio.create_task(load.run())
        await system.until_swaps_in_flight(load)
        killed_at = time.time()
        await asyncio.to_thread(own_cluster.kill_node, 0)
        system.phase("node 1 of 3 killed")
        await firing
        verdict = await system.verdict(
            "i: 1 of 3 brokers SIGKILL", "SIGKILL of one node of a 3-node cluster (RF 3, "
            "min ISR 2), never restarted", load, system.recovery_s(killed_at, killed_at, load))
    scoreboard.record(verdict)
    verdict.assert_clean()


async def test_j_the_event_store_refuses_appends_for_a_while_under_load(
    chaos_settings: Settings, scoreboard: Scoreboard,
) -> None:
    async with System(chaos_settings, workers=1) as system:
        load = system.load(count=ORDERS, rate=RATE)
        firing = asyncio.create_task(load.run())
        await system.until_swaps_in_flight(load)
        refused_at = time.time()
        await events_topic_takes_at_most(chaos_settings, "64")
        await hold_fault(3.0)
        await events_topic_takes_at_most(chaos_settings, KAFKA_DEFAULT_MAX_MESSAGE_BYTES)
        restored_at = time.time()
        system.phase("the events topic takes records again")
        await firing
        verdict = await system.verdict(
            "j: event store refuses appends", "orders.events max.message.bytes=64 for 3 s",
            load, system.recovery_s(refused_at, restored_at, load))
    scoreboard.record(verdict)
    verdict.assert_clean()
