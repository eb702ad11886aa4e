"""A minimal Faust worker for the walking-skeleton test: copies one topic to another.

Run as a separate process, like a real stream worker:
    python -m tests.integration.skeleton_app APP_ID BOOTSTRAP SOURCE_TOPIC SINK_TOPIC
Each record's value comes out prefixed with b"faust:", its key unchanged, so the test can
tell the record went through the agent.
"""

from __future__ import annotations

import sys

import faust
from faust.types import StreamT

PREFIX = b"faust:"


def build_app(app_id: str, bootstrap_servers: str, source: str, sink: str) -> faust.App:
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap_servers}",
        web_enabled=False,  # nothing to serve, and Faust's web server would bind 0.0.0.0
        topic_partitions=4,
        consumer_auto_offset_reset="earliest",  # the test may produce before the group joins
    )
    source_topic = app.topic(source, key_type=bytes, value_type=bytes, value_serializer="raw")
    sink_topic = app.topic(sink, key_type=bytes, value_type=bytes, value_serializer="raw")

    @app.agent(source_topic)
    async def copy(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            await sink_topic.send(key=event.key, value=PREFIX + event.value)

    return app


def main(argv: list[str]) -> None:
    app_id, bootstrap_servers, source, sink = argv
    app = build_app(app_id, bootstrap_servers, source, sink)
    faust.Worker(app, loglevel="WARNING").execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])
