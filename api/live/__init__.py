"""The live edge: WebSocket streams of orders and topics, fed by one fan-out per process,
and the dashboard. The app includes `live_router(settings)`; see `api.live.router`."""

from api.live.config import LiveConfig
from api.live.router import live_router

__all__ = ["LiveConfig", "live_router"]
