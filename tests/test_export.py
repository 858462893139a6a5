"""The CSV export module: cell escaping, CSV framing, file names, keyset paging, memory."""

from __future__ import annotations

import csv
import io
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import event

from tests.conftest import make_event
from tokenledger.export import (
    COLUMNS,
    DAILY_COLUMNS,
    EVENT_COLUMNS,
    SUMMARY_COLUMNS,
    CsvExport,
    ExportCancelled,
    ExportOutcome,
    ExportRequest,
    csv_chunks,
    escape_cell,
    export_filename,
    seconds,
)
from tokenledger.ingest import ingest
from tokenledger.localdays import LocalRange, zone
from tokenledger.metrics import Unit
from tokenledger.reports import UserFilter
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore

NOW_US = 2**62  # far future: nothing is refused as "in the future"


def _range(start: str, end: str, tz: str = "UTC") -> LocalRange:
    return LocalRange.of(date.fromisoformat(start), date.fromisoformat(end), zone(tz))


def _store(db: Database, events: list[dict[str, Any]]) -> None:
    for first in range(0, len(events), 1000):
        result = ingest(UsageStore(db), events[first : first + 1000], now_us=NOW_US)
        assert result.count("accepted") == len(events[first : first + 1000])


def _parse(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))


# -- cells ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ('=HYPERLINK("http://x/?"&A1)', '\'=HYPERLINK("http://x/?"&A1)'),
        ("@SUM(1+1)", "'@SUM(1+1)"),
        ("+1", "'+1"),
        ("-1+1", "'-1+1"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("＝1+1", "'＝1+1"),
        ("＋1", "'＋1"),
        ("－1", "'－1"),
        ("＠SUM(1)", "'＠SUM(1)"),
        # Issue 11 (7): after blank or invisible characters, and the other signs.
        (" =2+2", "' =2+2"),
        ("\u00a0=3+3", "'\u00a0=3+3"),
        ("\u3000=4+4", "'\u3000=4+4"),
        ("\u2003\u2003-5+5", "'\u2003\u2003-5+5"),
        ("\u200b=7+7", "'\u200b=7+7"),
        ("\ufeff=8+8", "'\ufeff=8+8"),
        ("\u202e\u200e@9", "'\u202e\u200e@9"),
        ("\n\n+1", "'\n\n+1"),
        ("|calc", "'|calc"),
        ("\ufe62 1", "'\ufe62 1"),
        ("\ufe63 1", "'\ufe63 1"),
        ("\ufe66 1", "'\ufe66 1"),
        ("\ufe6b SUM(1)", "'\ufe6b SUM(1)"),
        ("\uff5ccalc", "'\uff5ccalc"),
        (" Zoë", " Zoë"),
        ("\u200b", "\u200b"),
        ("(555) 123", "(555) 123"),
        # Not at the start: inert once the cell is quoted as one field.
        ("a,=1", "a,=1"),
        ('a";=1', 'a";=1'),
        ("a\n=1+1", "a\n=1+1"),
        ("Zoë = 1", "Zoë = 1"),
        ("", ""),
    ],
)
def test_escape_cell(value: str, written: str) -> None:
    assert escape_cell(value) == written


def test_csv_chunks_quote_minimally_end_lines_with_crlf_and_keep_numbers_plain() -> None:
    # Cells as the rows' builders make them: text escaped, durations as exact seconds.
    usage_time = Unit.MILLISECONDS.csv_value
    rows = [
        ["a,=1", 'a";=1', "a\n=1", escape_cell("=1+1"), None, 12, usage_time(1500)],
        [escape_cell("\t-1"), escape_cell("\r+1"), "Zoë", "", 0, -1, usage_time(0)],
    ]
    body = b"".join(csv_chunks(["x", "y", "z", "f", "n", "i", "d"], rows))
    assert body == (
        b"x,y,z,f,n,i,d\r\n"
        b'"a,=1","a"";=1","a\n=1",\'=1+1,,12,1.500\r\n'
        b"'\t-1,\"'\r+1\",Zo\xc3\xab,,0,-1,0.000\r\n"
    )
    parsed = _parse(body)
    assert parsed[1] == ["a,=1", 'a";=1', "a\n=1", "'=1+1", "", "12", "1.500"]
    assert parsed[2] == ["'\t-1", "'\r+1", "Zoë", "", "0", "-1", "0.000"]


def test_csv_chunks_send_the_header_alone_first_and_bound_chunk_size() -> None:
    rows = ([f"user-{n}", n] for n in range(1000))
    chunks = list(csv_chunks(["user_id", "requests"], rows, bom=True, chunk_chars=1024))
    assert chunks[0] == b"\xef\xbb\xbfuser_id,requests\r\n"
    assert all(len(chunk) < 1024 + 100 for chunk in chunks)
    assert len(chunks) > 10
    assert len(_parse(b"".join(chunks)[3:])) == 1001


@pytest.mark.parametrize(
    ("duration_ms", "text"),
    [(0, "0.000"), (1, "0.001"), (1500, "1.500"), (12345, "12.345"), (2**53, "9007199254740.992")],
)
def test_usage_seconds_are_plain_decimals(duration_ms: int, text: str) -> None:
    assert format(seconds(duration_ms), "f") == text


# -- file names and requests ----------------------------------------------------------


@pytest.mark.parametrize(
    ("granularity", "q", "name"),
    [
        ("summary", None, "user-usage_2026-11-01_2026-11-25.csv"),
        ("summary", "  ", "user-usage_2026-11-01_2026-11-25.csv"),
        ("daily", None, "user-usage-daily_2026-11-01_2026-11-25.csv"),
        ("events", "Nguyễn Thị", "user-usage-events_2026-11-01_2026-11-25_nguyen-thi.csv"),
        ("summary", '../../etc/passwd";x=', "user-usage_2026-11-01_2026-11-25_etc-passwd-x.csv"),
        ("summary", "日本", "user-usage_2026-11-01_2026-11-25_search.csv"),
        ("summary", "a" * 100, f"user-usage_2026-11-01_2026-11-25_{'a' * 40}.csv"),
    ],
)
def test_file_names_use_safe_characters_only(granularity: Any, q: str | None, name: str) -> None:
    request = ExportRequest(
        local_range=_range("2026-11-01", "2026-11-25"),
        users=UserFilter(q=q),
        granularity=granularity,
    )
    assert export_filename(request) == name


def test_bad_sort_or_granularity_is_refused_before_any_byte() -> None:
    with pytest.raises(ValueError, match="sort"):
        ExportRequest(local_range=_range("2026-11-01", "2026-11-01"), sort="-bogus")
    with pytest.raises(ValueError, match="granularity"):
        ExportRequest(local_range=_range("2026-11-01", "2026-11-01"), granularity="hourly")


def test_columns_are_in_the_documented_order() -> None:
    # The first format's columns keep their order; then the person's department and
    # team; then the metrics declared later.
    people = ("department", "team")
    added = ("usage_missing_requests", "cost_usd", "unpriced_requests")
    assert SUMMARY_COLUMNS[14:17] == ("range_start", "range_end", "timezone")
    assert SUMMARY_COLUMNS[17:] == (*people, *added)
    assert DAILY_COLUMNS[1:15] == SUMMARY_COLUMNS[:14]
    assert DAILY_COLUMNS[0] == "date"
    assert DAILY_COLUMNS[15:] == ("timezone", *people, *added)
    assert EVENT_COLUMNS[:5] == ("event_id", "user_id", "name", "email", "started_at")
    assert EVENT_COLUMNS[15:] == (*people, "usage_missing", "cost_usd", "cost_source")


# -- events: keyset paging --------------------------------------------------------------


def _events_at(instants: list[str], users: int = 3) -> list[dict[str, Any]]:
    return [
        make_event(
            event_id=f"e{index:05d}",
            user={"id": f"u{index % users}", "name": f"User {index % users}"},
            started_at=instant,
            input_tokens=index,
            output_tokens=1,
        )
        for index, instant in enumerate(instants)
    ]


def _export(db: Database, request: ExportRequest, **options: Any) -> bytes:
    return b"".join(CsvExport(UsageStore(db), request, **options))


def test_events_page_through_equal_instants_without_repeats_or_gaps(db: Database) -> None:
    # 3 instants x 7 events: every page boundary (page size 4) falls inside a tie.
    instants = [f"2026-11-2{day}T10:00:00Z" for day in (3, 4, 4, 5) for _ in range(7)][:21]
    _store(db, _events_at(instants))
    request = ExportRequest(local_range=_range("2026-11-23", "2026-11-25"), granularity="events")
    rows = _parse(_export(db, request, page_size=4))[1:]
    assert [row[0] for row in rows] == [f"e{index:05d}" for index in range(21)]
    assert rows == _parse(_export(db, request, page_size=1000))[1:]


def test_events_respect_the_range_and_the_search(db: Database) -> None:
    _store(
        db,
        _events_at(
            [
                "2026-11-23T23:59:59.999999Z",  # before
                "2026-11-24T00:00:00Z",
                "2026-11-24T12:00:00Z",
                "2026-11-24T23:59:59.999999Z",
                "2026-11-25T00:00:00Z",  # after
            ]
        ),
    )
    request = ExportRequest(local_range=_range("2026-11-24", "2026-11-24"), granularity="events")
    assert [row[0] for row in _parse(_export(db, request, page_size=2))[1:]] == [
        "e00001",
        "e00002",
        "e00003",
    ]
    only_u2 = ExportRequest(
        local_range=_range("2026-11-24", "2026-11-24"),
        users=UserFilter(q="user 2"),
        granularity="events",
    )
    assert [row[0] for row in _parse(_export(db, only_u2, page_size=1))[1:]] == ["e00002"]


def test_on_finish_reports_rows_written(db: Database) -> None:
    _store(db, _events_at([f"2026-11-24T0{n}:00:00Z" for n in range(5)]))
    outcomes: list[ExportOutcome] = []
    request = ExportRequest(local_range=_range("2026-11-24", "2026-11-24"), granularity="events")
    export = CsvExport(UsageStore(db), request, page_size=2, on_finish=outcomes.append)
    assert export.filename == "user-usage-events_2026-11-24_2026-11-24.csv"
    chunks = iter(export)
    next(chunks)
    assert (export.rows_written, outcomes) == (0, [])
    list(chunks)
    assert outcomes == [ExportOutcome(rows=5, complete=True)]
    abandoned = iter(CsvExport(UsageStore(db), request, page_size=2, on_finish=outcomes.append))
    next(abandoned)
    abandoned.close()  # what happens when a client goes away
    assert outcomes[-1] == ExportOutcome(rows=0, complete=False)


# -- streaming in constant memory ------------------------------------------------------


@pytest.fixture
def page_queries(db: Database) -> Iterator[list[str]]:
    """The statements that read a page of events, in order."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        statement = args[2]
        if "ORDER BY e.started_us, e.id LIMIT" in statement:
            seen.append(statement)

    for engine in db.engines:  # on SQLite, pages are read through the scan engine
        event.listen(engine, "before_cursor_execute", record)
    yield seen
    for engine in db.engines:
        event.remove(engine, "before_cursor_execute", record)


def _spread(days: int, per_day: int) -> list[dict[str, Any]]:
    instants = []
    for day in range(days):
        for n in range(per_day):
            second = n * 86_400 // per_day
            instants.append(
                f"2026-11-{day + 1:02d}T{second // 3600:02d}:{second // 60 % 60:02d}:"
                f"{second % 60:02d}Z"
            )
    return _events_at(instants, users=40)


def _peak_bytes(run: Callable[[], None]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_events_stream_a_page_at_a_time_in_constant_memory(
    db: Database, page_queries: list[str]
) -> None:
    page_size = 250
    _store(db, _spread(days=10, per_day=1000))
    small = ExportRequest(local_range=_range("2026-11-01", "2026-11-02"), granularity="events")
    large = ExportRequest(local_range=_range("2026-11-01", "2026-11-10"), granularity="events")

    # The header leaves before the first page is read; pages are read as rows go out.
    chunks = iter(CsvExport(UsageStore(db), large, page_size=page_size))
    assert next(chunks).startswith(b"event_id,")
    assert page_queries == []
    first_rows = next(chunks)
    pages_so_far = len(page_queries)
    assert pages_so_far <= first_rows.count(b"\r\n") // page_size + 1  # not 41 pages
    rows = sum(chunk.count(b"\r\n") for chunk in chunks)
    assert len(page_queries) == 10_000 // page_size + 1  # the last page comes back empty
    assert rows > 9_000

    sizes: dict[str, int] = {}

    def consume(request: ExportRequest, name: str) -> Callable[[], None]:
        def run() -> None:
            sizes[name] = sum(
                len(chunk) for chunk in CsvExport(UsageStore(db), request, page_size=page_size)
            )

        return run

    consume(small, "warm-up")()  # compiled statement caches, imports
    small_peak = _peak_bytes(consume(small, "small"))
    large_peak = _peak_bytes(consume(large, "large"))
    assert sizes["large"] > 4.5 * sizes["small"]  # 10,000 rows against 2,000
    # Holding the whole result would need several times the small export's peak.
    assert large_peak < small_peak * 1.3 + 64 * 1024, (small_peak, large_peak, sizes)
    # ... as the same test shows when the rows are kept:
    held = _peak_bytes(
        lambda: sizes.update(held=len(list(CsvExport(UsageStore(db), large).rows())))
    )
    assert held > 3 * large_peak, (held, large_peak)


# -- stopping --------------------------------------------------------------------------


@pytest.mark.parametrize("granularity", ["summary", "daily", "events"])
def test_a_cancelled_export_stops_before_its_next_piece_of_work(
    db: Database, granularity: Any
) -> None:
    _store(db, _events_at([f"2026-11-2{day}T10:00:00Z" for day in (3, 4, 5) for _ in range(3)]))
    request = ExportRequest(local_range=_range("2026-11-23", "2026-11-25"), granularity=granularity)
    outcomes: list[ExportOutcome] = []
    export = CsvExport(UsageStore(db), request, page_size=2, on_finish=outcomes.append)
    chunks = export.chunks()
    assert next(chunks).startswith(COLUMNS[granularity][0].encode())
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    for engine in db.engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        export.cancel()  # e.g. from the thread that saw the client go away
        with pytest.raises(ExportCancelled):
            next(chunks)
    finally:
        for engine in db.engines:
            event.remove(engine, "before_cursor_execute", record)
    assert statements == []  # not one more query once cancelled
    assert outcomes == [ExportOutcome(rows=0, complete=False)]
    # Not cancelled, the same export has every row.
    assert len(_parse(_export(db, request, page_size=2))) > 3
