"""The worker's way out (`streams.faust_worker`): what is still pending once the services
stopped is cancelled and unwinds before the loop closes, without mode's fixed waits."""

from __future__ import annotations

import asyncio
from pathlib import Path

from oee.settings import Settings
from schemas.codec import Codec
from streams.app import Wire, create_app
from streams.faust_worker import Worker


def test_a_task_pending_at_shutdown_is_cancelled_and_runs_its_finally(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    try:
        settings = Settings(kafka_bootstrap_servers="127.0.0.1:9", data_dir=tmp_path)
        app = create_app(settings, "postgresql://127.0.0.1:9/none",
                         Wire(Codec.load(), lambda claimant, partition: b""))
        worker = Worker(app, loop=loop, quiet=True)
        unwound: list[str] = []

        async def forever() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                unwound.append("finally")

        task = loop.create_task(forever())
        loop.run_until_complete(asyncio.sleep(0))  # it starts waiting

        worker._gather_all()

        assert task.cancelled() and unwound == ["finally"]
        loop.run_until_complete(worker._sentinel_task())
    finally:
        loop.close()
