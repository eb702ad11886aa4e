"""Faust's table manager without the second it waits before a worker may join its group.

faust-streaming 0.15's `TableManager.on_start` sleeps a fixed 1.0 s before it finalises the
tables and starts table recovery, and the conductor subscribes the consumer (so the worker
joins the group) only once that is done (docs/pitfalls.md 16). The pause lets tables declared
in the first second after start still be registered; the engine declares no Faust tables (the
order writer's state is folded from `orders.events`, `streams.order_states`), so it only
delayed every (re)start's takeover. This manager does the same work without the pause; the
app is given it through Faust's `TableManager` setting (`streams.app.create_app`).
"""

from __future__ import annotations

from faust.tables.manager import TableManager


class ImmediateTableManager(TableManager):
    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()
