"""The live edge: WebSocket streams of orders and topics, fed by one fan-out per process,
and the dashboard. `api.live.router` holds the routes, `api.live.edge` their resources."""
