"""What a run cost the pipeline in messages, per order, whatever the machine's speed.

- records appended per topic: the sum of each topic's end offsets, before and after;
- broker requests by API (Produce, Fetch, OffsetCommit, ...): the broker's own JMX counters
  (`kafka.network:type=RequestMetrics,name=RequestsPerSec`). The JVM's management agent is
  started on a free loopback port with `jcmd`, and read with Kafka's JmxTool;
- PostgreSQL transactions committed in the database (`pg_stat_database.xact_commit`): the
  chain's, the projector's and the API's reads alike.

Every snapshot runs a JVM tool (≈1 s of CPU): take them outside a window that measures CPU.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition

_REQUEST = re.compile(r"request=(\w+),version=\d+:Count=(\d+)")
_OBJECT = "kafka.network:type=RequestMetrics,name=RequestsPerSec,request=*,version=*"


@dataclass(frozen=True, slots=True)
class Counts:
    records: dict[str, int]  # topic -> sum of its partitions' end offsets
    requests: dict[str, int]  # request type -> how many the broker served so far
    transactions: int


def request_counts(jmx_tool_output: str) -> dict[str, int]:
    """JmxTool's `properties` report -> requests served per type (every version summed)."""
    counts: dict[str, int] = {}
    for name, count in _REQUEST.findall(jmx_tool_output):
        counts[name] = counts.get(name, 0) + int(count)
    return counts


def per_order(before: Mapping[str, int], after: Mapping[str, int],
              orders: int) -> dict[str, float]:
    """What grew between two snapshots, per order (what did not grow is left out)."""
    grown = {key: value - before.get(key, 0) for key, value in after.items()}
    return {key: round(delta / orders, 2) for key, delta in sorted(grown.items()) if delta}


class PipelineCounter:
    """Snapshots of one local stack: its broker (by pid and jars), its database, its topics."""

    def __init__(self, bootstrap: str, dsn: str, broker_pid: int, libs: Path,
                 jmx_port: int) -> None:
        self._bootstrap, self._dsn, self._libs, self._port = bootstrap, dsn, libs, jmx_port
        # Loopback only, no auth: the agent lives as long as the throwaway broker.
        subprocess.run(["jcmd", str(broker_pid), "ManagementAgent.start",
                        f"jmxremote.port={jmx_port}", "jmxremote.host=127.0.0.1",
                        "jmxremote.authenticate=false", "jmxremote.ssl=false"],
                       check=True, capture_output=True, timeout=60)

    def snapshot(self) -> Counts:
        return Counts(asyncio.run(self._records()), self._requests(), self._transactions())

    def _requests(self) -> dict[str, int]:
        url = f"service:jmx:rmi:///jndi/rmi://127.0.0.1:{self._port}/jmxrmi"
        result = subprocess.run(
            ["java", "-Xmx128m", "-cp", f"{self._libs}/*", "org.apache.kafka.tools.JmxTool",
             "--jmx-url", url, "--object-name", _OBJECT, "--attributes", "Count",
             "--one-time", "true", "--report-format", "properties"],
            capture_output=True, text=True, timeout=120, check=False)
        counts = request_counts(result.stdout)
        if not counts:
            raise RuntimeError(f"JmxTool read no request counts: {result.stderr[-500:]}")
        return counts

    def _transactions(self) -> int:
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            row = conn.execute("select xact_commit from pg_stat_database "
                               "where datname = current_database()").fetchone()
        assert row is not None
        return int(row[0])

    async def _records(self) -> dict[str, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None,
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            topics = [t for t in await consumer.topics() if not t.startswith("__")]
            await consumer._client.force_metadata_update()  # topics() left the cache as it was
            partitions = [TopicPartition(t, p) for t in topics
                          for p in consumer.partitions_for_topic(t) or ()]
            ends = await consumer.end_offsets(partitions)
        finally:
            await consumer.stop()
        records: dict[str, int] = {}
        for tp, end in ends.items():
            records[tp.topic] = records.get(tp.topic, 0) + end
        return records
