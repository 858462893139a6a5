"""Server-sent events, split as they arrive, bytes untouched.

The gateway forwards an upstream's stream event by event: each complete event (up to
and including the blank line that ends it) is passed on as soon as it is in, exactly
as the upstream wrote it, and read on the side for usage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The end of an event: two line ends in a row (CRLF, LF or a lone CR each).
_BOUNDARY = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")


@dataclass(frozen=True)
class Event:
    raw: bytes  # as received, terminating blank line included
    name: str | None  # the ``event:`` field
    data: bytes  # the ``data:`` lines, joined by newlines


class Splitter:
    """Complete events out of chunks of a stream."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[Event]:
        self._buffer += chunk
        events = []
        start = 0
        for match in _BOUNDARY.finditer(self._buffer):
            if match.end() == len(self._buffer) and self._buffer.endswith(b"\r"):
                break  # a CR last may be half of a CRLF still on its way
            events.append(parse(self._buffer[start : match.end()]))
            start = match.end()
        self._buffer = self._buffer[start:]
        return events

    def rest(self) -> Event | None:
        """What is left once the stream ended (an event without its blank line)."""
        rest, self._buffer = self._buffer, b""
        return parse(rest) if rest else None


def parse(raw: bytes) -> Event:
    name: str | None = None
    data: list[bytes] = []
    for line in raw.splitlines():
        field, _, value = line.partition(b":")
        value = value[1:] if value.startswith(b" ") else value
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value.decode("utf-8", "replace")
    return Event(raw, name, b"\n".join(data))
