"""Structured logs: one JSON object per line, on standard error.

Every line has ``time`` (UTC, milliseconds), ``level``, ``logger`` and ``message``;
lines written while a request is served also carry its ``request_id``, and fields
passed as ``extra={...}`` become fields of the line. So a module logs an event with
the standard library (``log.warning("database unavailable", extra={"detail": ...})``)
and it comes out structured.

Nothing secret is logged: request lines give the route, the path (never the query
string), the status and the duration, never a header, a cookie or a body. As a last
guard, every text is masked where it has the shape of an API key, a ``Bearer``
credential or a ``password=...`` (``token:``, ``session=``...) pair.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

from tokenledger.auth.keys import KEY_PREFIX

# The request being served in this task or thread (copied into the thread pool).
REQUEST_ID: ContextVar[str | None] = ContextVar("tokenledger_request_id", default=None)

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,127}")
_SECRETS = re.compile(
    rf"(?P<key>{KEY_PREFIX}[A-Za-z0-9_-]{{8}})[A-Za-z0-9_-]{{12,}}"
    r"|(?P<scheme>\b[Bb]earer\s+)[^\s\"',;\\]+"
    r"|(?P<name>\b(?i:[a-z_]*(?:password|passwd|secret|token|cookie|session|csrf))\b"
    r"[\"']?\s*[:=]\s*[\"']?)"
    r"[^\s\"',;&}\\]+"
)
# Attributes every LogRecord has: the rest were passed with ``extra``.
_RECORD_FIELDS = {
    *vars(logging.LogRecord("", 0, "", 0, "", (), None)),
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
}


def request_id_from(header: str | None) -> str:
    """The client's ``X-Request-ID`` when it is sane (1-128 characters of a URL-safe
    set, and not shaped like an API key), else a new random id."""
    if header and _SANE_REQUEST_ID.fullmatch(header) and redact(header) == header:
        return header
    return uuid.uuid4().hex


def _mask(match: re.Match[str]) -> str:
    kept = match.group("key") or match.group("scheme") or match.group("name")
    return f"{kept}[redacted]"


def redact(text: str) -> str:
    """``text`` with anything shaped like a credential masked."""
    return _SECRETS.sub(_mask, text)


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        line.update(
            (name, value) for name, value in vars(record).items() if name not in _RECORD_FIELDS
        )
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        masked = {key: _masked(value) for key, value in line.items()}
        # Masked again as JSON: texts inside lists and objects too (a mask never
        # removes a quote or a backslash, so the line stays valid JSON).
        return redact(orjson.dumps(masked, default=str).decode())


def _masked(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


def logging_config(level: str) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` document: every logger (TokenLedger's,
    uvicorn's, the libraries') writes JSON lines to standard error at ``level``."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            # uvicorn's own handlers would write plain text: its records go to the root.
            **{name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error")},
            # Never SQL statements and their parameters, even at debug.
            "sqlalchemy": {"level": "WARNING"},
            # Not a line per upstream call ("HTTP Request: POST ..."): the gateway's
            # request line and metrics tell the same, and this one is written on the
            # way to forwarding the answer.
            "httpx2": {"level": "WARNING"},
        },
    }
