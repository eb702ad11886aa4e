"""A logging filter that keeps API keys out of log lines: the secret part is replaced.

Consumes log records (uvicorn's access lines carry the request line, query string included,
where a WebSocket may carry `?token=<key>`); produces the same records with every key
rewritten to `oee_<id>_[redacted]`, arguments included, so formatters still get their
fields. Installed on uvicorn's handlers by `api.server.serve`.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from api.auth.keys import redact


class RedactKeys(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration, with `RedactKeys` on each of its handlers."""
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_keys": {"()": f"{__name__}.RedactKeys"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact_keys"]
    return config
