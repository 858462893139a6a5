"""What the API and the events export say about a range that starts before the raw
events kept by retention."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import make_event
from tests.support.clock import FrozenClock
from tokenledger import retention
from tokenledger.ingest import ingest
from tokenledger.localdays import to_us
from tokenledger.settings import Settings
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore
from tokenledger.web.app import create_app
from tokenledger.web.exports import EVENTS_RETAINED_FROM

EXPORT = "/api/v1/reports/user-usage/export"
# The clock says 2026-11-25T12:00Z: 10 days kept from 2026-11-15T00:00Z.
HORIZON_UTC = "2026-11-15T00:00:00+00:00"


def _apply(app: FastAPI) -> None:
    ctx = app.state.ctx
    retention.apply(ctx.store, days=10, now=to_us(ctx.clock()))


def test_reports_and_the_events_export_name_the_retained_start(
    app: FastAPI,
    client: TestClient,
    read_key: str,
    post_events: Callable[..., Any],
    get_report: Callable[..., Any],
) -> None:
    old = make_event(started_at="2026-11-01T09:00:00Z")
    new = make_event(started_at="2026-11-20T09:00:00Z")
    assert post_events([old, new]).status_code == 200
    whole = {"start": "2026-11-01", "end": "2026-11-25", "tz": "UTC"}
    before = get_report(**whole).json()
    assert before["range"]["events_retained_from"] is None
    _apply(app)

    after = get_report(**whole).json()
    assert after["range"].pop("events_retained_from") == HORIZON_UTC
    before["range"].pop("events_retained_from")
    assert after == before  # totals unchanged: the rollups keep the deleted usage
    in_paris = get_report(start="2026-11-01", end="2026-11-25", tz="Europe/Paris").json()
    assert in_paris["range"]["events_retained_from"] == "2026-11-15T01:00:00+01:00"
    series = get_report("/api/v1/reports/usage-series", **whole).json()
    assert series["range"]["events_retained_from"] == HORIZON_UTC
    recent = get_report(start="2026-11-16", end="2026-11-25", tz="UTC").json()
    assert recent["range"]["events_retained_from"] is None

    headers = {"Authorization": f"Bearer {read_key}"}
    events = client.get(EXPORT, params={**whole, "granularity": "events"}, headers=headers)
    assert events.status_code == 200
    assert events.headers[EVENTS_RETAINED_FROM] == HORIZON_UTC
    assert old["event_id"] not in events.text
    assert new["event_id"] in events.text
    summary = client.get(EXPORT, params=whole, headers=headers)
    assert EVENTS_RETAINED_FROM not in summary.headers
    assert "\r\nu-alice," in summary.text
    recent_events = client.get(
        EXPORT,
        params={"start": "2026-11-16", "end": "2026-11-25", "granularity": "events"},
        headers=headers,
    )
    assert EVENTS_RETAINED_FROM not in recent_events.headers


def test_a_range_needing_deleted_raw_events_is_refused_clearly(
    app: FastAPI, post_events: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    assert post_events([make_event(started_at="2026-11-20T09:00:00Z")]).status_code == 200
    # Monrovia was UTC-0:44:30 in 1950: its local midnights are not on a quarter hour.
    monrovia = {"start": "1950-01-01", "end": "1950-01-02", "tz": "Africa/Monrovia"}
    assert get_report(**monrovia).status_code == 200
    _apply(app)
    refused = get_report(**monrovia)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "events_removed"
    assert refused.json()["error"]["field"] == "start"
    for granularity in ("summary", "daily"):  # refused before the first byte
        export = get_report(EXPORT, **monrovia, granularity=granularity)
        assert export.status_code == 400
        assert export.json()["error"]["code"] == "events_removed"
    events = get_report(EXPORT, **monrovia, granularity="events")
    assert events.status_code == 200
    assert events.headers[EVENTS_RETAINED_FROM] == HORIZON_UTC  # Monrovia is UTC now


def test_serve_applies_retention_in_the_background(
    settings: Settings, db: Database, clock: FrozenClock
) -> None:
    store = UsageStore(db)
    old = make_event(started_at="2026-11-01T09:00:00Z")
    ingest(store, [old, make_event(started_at="2026-11-20T09:00:00Z")], now_us=to_us(clock()))
    with_retention = Settings(database_url=settings.database_url, retention_days=10)
    with TestClient(create_app(with_retention, db=db, clock=clock)):
        deadline = time.monotonic() + 30
        while store.retained_from() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.retained_from() == to_us(datetime(2026, 11, 15, tzinfo=UTC))
        while _count(db) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert _count(db) == 1


def _count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())


def test_the_person_view_says_its_range_starts_before_the_retained_events(
    app: FastAPI, post_events: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    from tests.web.signed_in import signed_in_client

    old = make_event(started_at="2026-11-01T09:00:00Z")
    new = make_event(started_at="2026-11-20T09:00:00Z")
    assert post_events([old, new]).status_code == 200
    user_id = old["user"]["id"]
    whole = {"start": "2026-11-01", "end": "2026-11-25", "tz": "UTC"}
    path = f"/api/v1/reports/people/{user_id}"
    before = get_report(path, **whole).json()
    assert before["range"]["events_retained_from"] is None
    _apply(app)
    after = get_report(path, **whole).json()
    assert after["range"]["events_retained_from"] == HORIZON_UTC
    assert after["usage"] == before["usage"]  # the cards come from the kept totals
    recent = get_report(path, start="2026-11-16", end="2026-11-25", tz="UTC").json()
    assert recent["range"]["events_retained_from"] is None
    with signed_in_client(app) as page:
        html = page.get(f"/reporting/people/{user_id}", params=whole).text
        assert 'id="retention-notice"' in html
        assert "Nov 15, 00:00" in html
        later = page.get(f"/reporting/people/{user_id}", params={**whole, "start": "2026-11-16"})
        assert 'id="retention-notice"' not in later.text
