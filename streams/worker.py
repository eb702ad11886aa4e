"""`oee worker`: runs the stream workers (order writer, routing and execution stages).

Start as many as you like with the same ENGINE_ID: they form one consumer group and share the
partitions; a killed one's partitions move to the others, which fold them from the event store.
Give each a WORKER_ID of its own (`oee run` does): a restarted worker then rejoins as itself and
takes its partitions back at once. Each phase of the start-up is logged at INFO by
`streams.timeline`, counted from the process's start.

Faust and the engine are imported only once the worker runs, while a thread registers the
schemas with the registry: a restart's imports and the registry's round trips overlap instead
of adding up.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from oee import startup
from streams.timeline import Timeline, process_started_at

if TYPE_CHECKING:
    from oee.settings import EventLoop, Settings


def run_worker(settings: Settings) -> None:
    """Runs until stopped. Called with the garbage collector paused (`oee worker`, or run as
    a module), it turns it back on once the Faust app is built (`oee.startup`)."""
    # (imported here, like everything else a start-up needs: while collection is paused)
    from infra.schema_registry import (  # noqa: PLC0415
        registered_checkpoint_writer,
        registered_claim_writer,
        registered_codec,
        registered_snapshot_codec,
    )
    from telemetry.logs import logging_config, wants_json  # noqa: PLC0415

    timeline = Timeline(process_started_at())
    use_event_loop(settings.stream_event_loop)
    timeline.mark("interpreter started, entry point imported")
    if not settings.kafka_bootstrap_servers or not settings.database_url:
        raise SystemExit("oee worker needs KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL "
                         "(`oee run` sets both)")
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="registry") as registry:
        codec = registry.submit(registered_codec, settings)
        claim = registry.submit(registered_claim_writer, settings)
        checkpoint = registry.submit(registered_checkpoint_writer, settings)
        snapshot = registry.submit(registered_snapshot_codec, settings)
        # Faust and the engine, imported while the registry answers (see above)
        from streams.app import Wire, create_app  # noqa: PLC0415
        from streams.faust_worker import Worker  # noqa: PLC0415
        timeline.mark("Faust and the engine imported")
        wire = Wire(codec.result(), claim.result(), checkpoint.result(), snapshot.result())
    timeline.mark("schemas registered")
    app = create_app(settings, settings.database_url, wire, timeline)
    startup.resume()  # (paused by `oee worker`: see oee.startup)
    timeline.mark("Faust app built")
    # Faust creates only the last level of its data directory (settings.data_dir/faust/<id>).
    app.conf.datadir.parent.mkdir(parents=True, exist_ok=True)
    worker = Worker(app, loglevel=settings.log_level, quiet=True,
                    logging_config=logging_config(settings.log_level, settings.log_format,
                                                  "worker"))
    if wants_json(settings.log_format):
        worker.spinner = None  # its cursor escapes would corrupt the JSON lines
    worker.execute_from_commandline()


def use_event_loop(kind: EventLoop) -> None:
    """Every loop made from now on (Faust's, and its consumer thread's) is of `kind`."""
    from oee.settings import EventLoop  # noqa: PLC0415 - see run_worker

    if kind is EventLoop.UVLOOP:
        import uvloop  # noqa: PLC0415 - only when chosen

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        asyncio.set_event_loop_policy(None)  # the standard library's


if __name__ == "__main__":
    startup.pause()
    from oee.settings import Settings  # noqa: PLC0415 - imported with collection paused

    run_worker(Settings())
