"""`serve(app, settings)`: serve the HTTP edge with uvicorn on `api_host:api_port` (`oee api`).

The app comes built: `oee.api_bootstrap.bootstrap(settings)` is the process's composition root.
"""

from __future__ import annotations

import logging

import uvicorn
from fastapi import FastAPI

from api.auth.redact import RedactKeys
from oee.settings import Settings


def serve(app: FastAPI, settings: Settings) -> None:
    """Serve until interrupted.

    `loop`/`http` "auto" pick uvloop and httptools whenever they are installed (they are,
    with uvicorn[standard]). `lifespan="on"`: if the command bus cannot open (Kafka
    unreachable) the server must stop, not serve POSTs that could never be acknowledged;
    "auto" would log the failure and carry on. Every log line passes `api.auth.redact` on
    top of telemetry.logs' masking (a WebSocket's `?token=` would otherwise show in the
    access log, and a key anywhere else in a line is rewritten to its id).
    """
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactKeys())
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        loop="auto",
        http="auto",
        lifespan="on",
        log_level=settings.log_level.lower(),
        log_config=None,  # the process's logging is telemetry.logs' (JSON or text, redacted)
    )


if __name__ == "__main__":  # `python -m api.server`, the module `oee run` and the benches spawn
    from oee.api_bootstrap import main

    main()
