"""A logging filter that keeps API keys out of log lines: the secret part is replaced.

Consumes log records (uvicorn's access lines carry the request line, query string included,
where a WebSocket may carry `?token=<key>`); produces the same records with every key
rewritten to `oee_<id>_[redacted]`, arguments included, so formatters still get their
fields. Installed on the API process's log handlers by `api.server.serve`.
"""

from __future__ import annotations

import logging

from api.auth.keys import redact


class RedactKeys(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True
