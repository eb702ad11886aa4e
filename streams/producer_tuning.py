"""Makes the Faust worker's producer idempotent.

faust-streaming 0.15 turns aiokafka's idempotence on only inside transactions
(transport/drivers/aiokafka.py, `Producer._settings_extra`). Without it, a batch the broker
appended but never acknowledged (the broker SIGKILLed mid-request) is retried and lands twice:
the same events, one `seq` twice in `orders.events` (fault suite, scenario e). With it, the
broker drops the retried copy by the producer's id and sequence numbers. There is no setting,
so the one method is wrapped, once per process, before the app builds its producer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

_ORIGINAL = faust_aiokafka.Producer._settings_extra


def make_producer_idempotent() -> None:
    def settings_extra(self: Any) -> Mapping[str, Any]:
        return {**_ORIGINAL(self), "acks": "all", "enable_idempotence": True}

    faust_aiokafka.Producer._settings_extra = settings_extra  # type: ignore[method-assign]
