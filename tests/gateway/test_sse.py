"""Server-sent events split as they arrive, bytes untouched."""

from __future__ import annotations

import pytest

from tokenledger.gateway.sse import Splitter, parse

STREAM = (
    b'event: message_start\ndata: {"a": 1}\n\n'
    b"data: line one\r\ndata: line two\r\n\r\n"
    b": a comment\n\n"
    b"data: last\r\rdata: [DONE]\n\n"
)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(STREAM)])
def test_any_chunking_gives_the_same_events_and_the_same_bytes(size: int) -> None:
    splitter = Splitter()
    events = []
    for start in range(0, len(STREAM), size):
        events += splitter.feed(STREAM[start : start + size])
    assert splitter.rest() is None
    assert b"".join(event.raw for event in events) == STREAM
    assert [(event.name, event.data) for event in events] == [
        ("message_start", b'{"a": 1}'),
        (None, b"line one\nline two"),
        (None, b""),
        (None, b"last"),
        (None, b"[DONE]"),
    ]


def test_an_event_without_its_blank_line_is_the_rest() -> None:
    splitter = Splitter()
    assert splitter.feed(b"data: a\n\ndata: b") == [parse(b"data: a\n\n")]
    rest = splitter.rest()
    assert rest is not None
    assert (rest.raw, rest.data) == (b"data: b", b"b")


def test_a_cr_at_the_end_of_a_chunk_waits_for_its_lf() -> None:
    splitter = Splitter()
    assert splitter.feed(b"data: a\r\n\r") == []
    [event] = splitter.feed(b"\ndata: b\r\n\r\n")[:1]
    assert event.raw == b"data: a\r\n\r\n"
