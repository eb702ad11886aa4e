"""API keys, scopes, ownership and per-key limits of the HTTP/WebSocket edge (issue #11)."""
