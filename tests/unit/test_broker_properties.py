"""The local broker's server.properties (infra.kafka.server_properties): what a node of a
multi-node cluster is told beyond a lone broker."""

from __future__ import annotations

from pathlib import Path

from infra.kafka import KafkaBroker, Quorum, server_properties


def properties(broker: KafkaBroker) -> dict[str, str]:
    lines = server_properties(broker).splitlines()
    return dict(line.split("=", 1) for line in lines if line)


def test_a_node_of_a_cluster_is_fenced_3_s_after_its_last_heartbeat() -> None:
    """A SIGKILLed node led its partitions for the default 9 s: writes to them waited that
    long (chaos i). In a quorum the controller hears from each node every 0.5 s."""
    quorum = Quorum(((1, 9101), (2, 9102), (3, 9103)), "cluster")
    node = properties(KafkaBroker("4.0.0", 9092, 9101, Path("/d"), Path("/c"), node_id=1,
                                  quorum=quorum))
    alone = properties(KafkaBroker("4.0.0", 9092, 9101, Path("/d"), Path("/c")))

    assert (node["broker.session.timeout.ms"], node["broker.heartbeat.interval.ms"]) == (
        "3000", "500")
    assert node["min.insync.replicas"] == "2" and alone["min.insync.replicas"] == "1"
    assert "broker.session.timeout.ms" not in alone  # nothing to fail over to
