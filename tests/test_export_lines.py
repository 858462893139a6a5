"""The events export written by the database (most lines) is byte for byte the file
that Python writes cell by cell: quoting, the formula guard, local times across
offset changes (in the middle of a UTC hour too), costs, missing counts (both
backends)."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, event

from tests.conftest import make_event
from tokenledger.export import (
    COLUMNS,
    CsvExport,
    ExportRequest,
    Granularity,
    csv_chunks,
    escape_cell,
    event_rows,
)
from tokenledger.ingest import ingest
from tokenledger.localdays import LocalRange, zone
from tokenledger.reports import UserFilter
from tokenledger.store.database import SCAN_CACHE_KIB, Database
from tokenledger.store.usage_store import UsageStore

NOW_US = 2**62
TEXTS = (
    "Ana",
    "Zoë Nguyễn",
    "=1+2",
    "+33 6",
    "-x",
    "@sum",
    " =lead",
    "\u200b=hidden",
    "\u3000|x",
    "a,b",
    'say "hi"',
    "ａ",
    "9lives",
    "Łukasz",
    "\uff1dfull",
    "'quoted",
    "",
)


def _events(count: int) -> list[dict[str, Any]]:
    rng = random.Random(18)
    events = []
    for index in range(count):
        # Around America/St_Johns' change on 2026-11-01 (at 04:30 UTC: mid-hour).
        second = rng.randrange(0, 3 * 86_400)
        micro = rng.choice((0, 0, rng.randrange(1, 1_000_000)))
        user = rng.randrange(25)
        name = rng.choice(TEXTS)
        event: dict[str, Any] = make_event(
            event_id=rng.choice(("e", "=e", "-e", "e,", '"e')) + f"-{index}",
            user={
                "id": rng.choice(("u", "+u", "@u")) + f"{user}",
                "name": name or None,
                "email": f"{user}@example.com" if user % 3 else None,
                "team": rng.choice(("Ops", "=Ops", None)),
                "department": rng.choice(("IT", "R,D", None)),
            },
            model=rng.choice(("gpt-4o", "=model", "claude, big", "m\u00e9")),
            provider=rng.choice(("openai", "-p")),
            status=rng.choice(("ok", "error")),
            input_tokens=rng.randrange(200, 5000),
            output_tokens=rng.randrange(0, 5000),
            cache_read_tokens=rng.choice((None, 0, 120)),
            cost_usd=rng.choice((None, "0", "0.000225", "12.5", "1000000")),
        )
        hours, rest = divmod(second, 3600)
        event["started_at"] = (
            (
                f"2026-10-{31 + hours // 24:02d}T{hours % 24:02d}:{rest // 60:02d}:{rest % 60:02d}"
                + (f".{micro:06d}" if micro else "")
                + "Z"
            )
            .replace("2026-10-32", "2026-11-01")
            .replace("2026-10-33", "2026-11-02")
        )
        events.append(event)
    return events


def _python_file(store: UsageStore, request: ExportRequest, page_size: int) -> bytes:
    rows = event_rows(store, request=request, page_size=page_size)
    return b"".join(csv_chunks(COLUMNS["events"], rows, bom=request.bom))


def test_database_written_lines_are_the_python_file(db: Database) -> None:
    store = UsageStore(db)
    events = _events(1500)
    result = ingest(store, events, now_us=NOW_US)
    assert result.count("accepted") == len(events), result.outcomes
    compared = 0
    for tz in ("America/St_Johns", "Asia/Kolkata", "UTC", "America/New_York"):
        local_range = LocalRange.of(date(2026, 10, 30), date(2026, 11, 2), zone(tz))
        for users, bom in ((UserFilter(), False), (UserFilter(q="nguyen"), True)):
            request = ExportRequest(
                local_range=local_range, users=users, granularity="events", bom=bom
            )
            for page_size in (7, 2000):
                fast = b"".join(CsvExport(store, request, page_size=page_size))
                assert fast == _python_file(store, request, page_size), (tz, users, page_size)
                compared += fast.count(b"\r\n")
    assert compared > 8000


def test_letters_the_database_leaves_unguarded_need_no_guard() -> None:
    for code in range(0xC0, 0x530):
        assert escape_cell(chr(code) + "=x") == chr(code) + "=x"


def _exported_with_cache_sizes(
    db: Database, granularity: Granularity, **options: Any
) -> tuple[bytes, list[tuple[str, int]]]:
    """An export of 300 events over four UTC days, and each statement it ran with the
    SQLite page cache size of its connection."""
    store = UsageStore(db)
    ingest(store, _events(300), now_us=NOW_US)
    seen: list[tuple[str, int]] = []

    def cache_size(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        found = conn.connection.dbapi_connection.execute("PRAGMA cache_size").fetchone()
        seen.append((statement, found[0]))

    local_range = LocalRange.of(date(2026, 10, 30), date(2026, 11, 2), zone("UTC"))
    request = ExportRequest(local_range=local_range, users=UserFilter(), granularity=granularity)
    event.listen(Engine, "before_cursor_execute", cache_size)
    try:
        return b"".join(CsvExport(store, request, **options)), seen
    finally:
        event.remove(Engine, "before_cursor_execute", cache_size)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_events_export_reads_events_with_the_small_page_cache(db: Database) -> None:
    # Every statement of an events export that reads events runs on a connection whose
    # SQLite page cache is the scans' small one: at 10M events, pages read on the
    # reports' connections (64 MiB of cache each) grew the server by 258 MiB (4 of them).
    # A page size that leaves some lines to Python: their records are read too.
    written, seen = _exported_with_cache_sizes(db, "events", page_size=50)
    assert written.count(b"\r\n") == 301
    scans = [size for statement, size in seen if "FROM events e" in statement]
    assert len(scans) >= 7
    assert set(scans) == {-SCAN_CACHE_KIB}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_daily_export_reads_its_days_with_the_small_page_cache(db: Database) -> None:
    # Each local day of a daily export is read once: on the reports' connections its
    # rollup rows filled their 64 MiB caches (at 10M events, +113 MiB for 31 days).
    written, seen = _exported_with_cache_sizes(db, "daily")
    assert written.count(b"\r\n") > 4
    days = [size for statement, size in seen if "rollup_user_" in statement]
    assert len(days) >= 4  # one statement per local day at least
    assert set(days) == {-SCAN_CACHE_KIB}
