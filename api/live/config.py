"""The knobs of the live edge, in one explicit object (defaults suit one API process).

Kept apart from `oee.settings.Settings`: these bound memory and waiting per process, and a
test or benchmark passes its own `LiveConfig` to the bootstrap
(`oee.api_bootstrap.Replacements.live`) without touching the engine-wide settings. Catch-up
queries use the process's one read-model pool.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveConfig:
    """Bounds and waits of the fan-out and of the WebSocket streams."""

    # Events one subscriber may have queued before it is dropped as too slow. A per-order
    # stream sees a few dozen events in its whole life; this only trips for a stalled
    # client of the all-orders stream (hundreds of events per second).
    subscriber_queue: int = 1024
    # The fan-out's recent-events cache: how many orders, and how many events per order.
    # Worst case ~ recent_orders * recent_per_order * 2 KB (a RouteSelected with its quotes).
    recent_orders: int = 4096
    recent_per_order: int = 16
    # How long a stream waits for the first event of an order it cannot find anywhere:
    # the edge answers 201 before the order agent has written OrderAccepted.
    unknown_order_wait_s: float = 10.0
    # How often a stream re-reads the read model while it may be missing events (the
    # projector lags behind Kafka), and how long it tolerates a gap before giving up.
    catch_up_poll_s: float = 0.5
    # Each re-read that brings nothing new doubles the wait before the next, up to this: a
    # stream of a quiet order begun before this process does not poll the database forever
    # at a fixed rate (a live event ends the polling altogether).
    catch_up_max_poll_s: float = 2.0
    gap_deadline_s: float = 30.0
    # Replays from an arbitrary position need a Kafka consumer each: at most this many.
    max_topic_streams: int = 8
    # How long the fan-out waits for the events topic and its start positions at start-up.
    start_timeout_s: float = 30.0
