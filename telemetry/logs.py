"""Logging of every process: JSON lines or text, with the order's ids, and no secrets.

Consumes `Settings.log_format` (json | text | auto: json unless stderr is a terminal) and
`log_level`, and the current `telemetry.context`; produces the root logger's one handler on
stderr. Every record gets `orderId`, `correlationId` and `seq` from the context when the task
works for an order (explicit `extra=` values win), and `traceId` when a trace is current.
Whatever looks like a secret (a DSN's password, `password=`, `api_key=`, `token=`,
`Authorization: …`) is masked in the final line, whichever logger wrote it.
"""

from __future__ import annotations

import logging
import logging.config
import re
import sys
from typing import Any, Final

from pythonjsonlogger.json import JsonFormatter

from telemetry.context import current

PROCESS_FIELD: Final = "service"  # `process` is taken: the LogRecord's pid
_MASK: Final = "***"
_SECRETS: Final = (
    re.compile(r"(?P<keep>[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+(?=@)", re.IGNORECASE),
    re.compile(r"(?P<keep>\b(?:password|passwd|secret|api[_-]?key|x-api-key|token|"
               r"access[_-]?token|authorization)\b[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?)"
               r"[^\s\"',;&}]+", re.IGNORECASE),
)


def redact(text: str) -> str:
    """`text` with every secret-looking value replaced by ***."""
    for pattern in _SECRETS:
        text = pattern.sub(lambda match: match["keep"] + _MASK, text)
    return text


class OrderContextFilter(logging.Filter):
    """Adds the current order's ids and trace to each record (unless `extra=` set them)."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self._process = process

    def filter(self, record: logging.LogRecord) -> bool:
        work = current()
        for name, value in (("orderId", work.order_id), ("correlationId", work.correlation_id),
                            ("seq", work.seq)):
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        if work.trace is not None and not hasattr(record, "traceId"):
            record.traceId = work.trace.trace_id
        setattr(record, PROCESS_FIELD, self._process)
        return True


class RedactingJsonFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class RedactingTextFormatter(logging.Formatter):
    _ORDER_FIELDS: Final = ("orderId", "correlationId", "seq")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{name}={getattr(record, name)}" for name in self._ORDER_FIELDS
                       if getattr(record, name, None) is not None)
        return redact(f"{line} [{ids}]" if ids else line)


def wants_json(log_format: str, stream: Any = None) -> bool:
    if log_format == "json":
        return True
    if log_format == "text":
        return False
    isatty = getattr(stream or sys.stderr, "isatty", None)
    return not (callable(isatty) and isatty())


def logging_config(level: str, log_format: str, process: str) -> dict[str, Any]:
    """The `logging.config.dictConfig` of a process (also handed to Faust's worker)."""
    if wants_json(log_format):
        formatter: dict[str, Any] = {
            "()": RedactingJsonFormatter,
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601 UTC
        }
    else:
        formatter = {"()": RedactingTextFormatter,
                     "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"order": {"()": OrderContextFilter, "process": process}},
        "formatters": {"oee": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                "formatter": "oee", "filters": ["order"]}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        # uvicorn's and Faust's own loggers propagate to ours instead of their handlers.
        "loggers": {name: {"handlers": [], "propagate": True}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }


def configure(level: str, log_format: str, process: str) -> None:
    """Install the process's logging (each entry point calls this once, first)."""
    logging.config.dictConfig(logging_config(level, log_format, process))
