"""`run_api(settings)`: serve the HTTP edge with uvicorn on `api_host:api_port` (`oee api`)."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from oee.settings import Settings


def run_api(settings: Settings) -> None:
    """Serve until interrupted.

    `loop`/`http` "auto" pick uvloop and httptools whenever they are installed (they are,
    with uvicorn[standard]). `lifespan="on"`: if the command bus cannot open (Kafka
    unreachable) the server must stop, not serve POSTs that could never be acknowledged;
    "auto" would log the failure and carry on.
    """
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        loop="auto",
        http="auto",
        lifespan="on",
        log_level=settings.log_level.lower(),
    )


if __name__ == "__main__":
    run_api(Settings())
