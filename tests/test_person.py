"""One person in depth, with exact numbers in a zone that changes its clocks in the
range (New York leaves summer time on 2026-11-01: that day has 25 hours)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import make_event
from tokenledger.ingest import ingest
from tokenledger.localdays import LocalRange, zone
from tokenledger.person import events_page, percentile, person_report
from tokenledger.reports import previous_range, user_usage
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore
from tokenledger.usage import UserFilter
from tokenledger.web.formatting import exact_money, money

NEW_YORK = zone("America/New_York")
RANGE = LocalRange.of(date(2026, 10, 31), date(2026, 11, 2), NEW_YORK)
ANA = {"id": "ana", "name": "Ana", "team": "Platform"}


def _ana(at: str, model: str | None, **fields: Any) -> dict[str, Any]:
    return make_event(user=ANA, started_at=at, model=model, **fields)


ANA_EVENTS = [
    # Sunday 2026-11-01, 01:30 twice: EDT (05:30Z) then EST (06:30Z).
    _ana("2026-11-01T05:30:00Z", "gpt-4o", input_tokens=100, output_tokens=10, duration_ms=1000),
    _ana("2026-11-01T06:30:00Z", "gpt-4o", input_tokens=200, output_tokens=20, duration_ms=3000),
    # Saturday 2026-10-31 23:59 EDT.
    _ana(
        "2026-11-01T03:59:00Z",
        "claude",
        input_tokens=50,
        output_tokens=5,
        duration_ms=500,
        status="error",
        metadata={"app": "chat"},
        cost_usd="0.0125",  # reported by its gateway
    ),
    # Monday 2026-11-02 09:00 EST.
    _ana("2026-11-02T14:00:00Z", None, input_tokens=7, output_tokens=3, duration_ms=2000),
    # Outside the range (Tuesday 00:00 EST is the end), and in the previous range.
    _ana("2026-11-03T05:00:00Z", "gpt-4o", input_tokens=1, output_tokens=1),
    _ana("2026-10-30T12:00:00Z", "gpt-4o", input_tokens=40, output_tokens=4, duration_ms=100),
    _ana("2026-10-28T04:00:00Z", "claude", input_tokens=60, output_tokens=6, duration_ms=100),
]
TEAM_EVENTS = [
    make_event(
        user={"id": "bo", "team": "Platform"},
        started_at="2026-11-01T12:00:00Z",
        input_tokens=1000,
        output_tokens=0,
    ),
    make_event(
        user={"id": "cy", "team": "Platform"},
        started_at="2026-11-02T12:00:00Z",
        input_tokens=30,
        output_tokens=0,
    ),
    make_event(
        user={"id": "di", "team": "Data"},
        started_at="2026-11-01T12:00:00Z",
        input_tokens=5,
        output_tokens=0,
    ),
]


@pytest.fixture
def store(db: Database) -> UsageStore:
    store = UsageStore(db)
    result = ingest(store, [*ANA_EVENTS, *TEAM_EVENTS], now_us=2**62)
    assert result.count("accepted") == len(ANA_EVENTS) + len(TEAM_EVENTS)
    return store


def test_the_person_report_in_exact_numbers(store: UsageStore) -> None:
    report = person_report(store, user_id="ana", local_range=RANGE)
    usage = report.usage
    # Cards: the person's row of the User Usage report of the range.
    row = next(r for r in user_usage(store, local_range=RANGE).rows if r.user_id == "ana")
    assert usage.metrics() == row.usage.metrics()
    assert (usage.requests, usage.error_requests, usage.total_tokens) == (4, 1, 395)
    assert usage.duration_ms == 6500
    # The previous range of as many days, and its figures are that range's report.
    before = previous_range(RANGE)
    assert (before.start, before.end) == (date(2026, 10, 28), date(2026, 10, 30))
    previous_row = user_usage(store, local_range=before, users=UserFilter(user_id="ana")).rows[0]
    assert report.previous_usage.metrics() == previous_row.usage.metrics()
    assert report.previous_usage.total_tokens == 110
    # Models sum to the cards.
    models = {(line.model, line.provider): line for line in report.models}
    assert sum(line.requests for line in models.values()) == usage.requests
    assert sum(line.total_tokens for line in models.values()) == usage.total_tokens
    assert sum(line.errors for line in models.values()) == usage.error_requests
    assert sum(line.duration_ms for line in models.values()) == usage.duration_ms
    assert sum(line.cost_nanos for line in models.values()) == usage.cost_usd  # nano-dollars
    assert sum(line.unpriced_requests for line in models.values()) == usage.unpriced_requests
    assert models[("claude", "openai")].cost_nanos == 12_500_000  # $0.0125, exactly
    gpt = models[("gpt-4o", "openai")]
    assert (gpt.requests, gpt.total_tokens, gpt.median_ms, gpt.p95_ms) == (2, 330, 1000, 3000)
    assert [line.model for line in report.models] == ["gpt-4o", "claude", None]
    # The heat map sums to the requests; 01:30 twice on the Sunday of the change.
    assert sum(map(sum, report.heat)) == usage.requests
    assert report.heat[6][1] == 2  # Sunday, 01:00-02:00 (both of them)
    assert report.heat[5][23] == 1  # Saturday 23:59
    assert report.heat[0][9] == 1  # Monday 09:00 EST
    # Tokens per local day, the 25-hour day included; the team's median beside it.
    assert report.interval == "day"
    assert [item.point.usage.total_tokens for item in report.series] == [55, 330, 10]
    # Platform: ana, bo, cy with requests in the range -> per day [55, 0, 0], [330, 1000,
    # 0], [10, 0, 30]: medians 0, 330, 10.
    assert [item.team_median for item in report.series] == [0, 330, 10]


def test_one_day_is_per_hour_with_25_hours(store: UsageStore) -> None:
    day = LocalRange.of(date(2026, 11, 1), date(2026, 11, 1), NEW_YORK)
    report = person_report(store, user_id="ana", local_range=day)
    assert report.interval == "hour"
    assert len(report.series) == 25
    tokens = [item.point.usage.total_tokens for item in report.series]
    assert tokens[1:3] == [110, 220]  # 01:00 EDT, then 01:00 EST
    assert sum(tokens) == report.usage.total_tokens == 330


def test_events_page_newest_first_by_keyset(store: UsageStore) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        page = events_page(store, user_id="ana", local_range=RANGE, cursor=cursor, page_size=3)
        seen += [row["event_id"] for row in page.rows]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    in_range = ANA_EVENTS[:4]
    newest_first = sorted(in_range, key=lambda event: event["started_at"], reverse=True)
    assert seen == [event["event_id"] for event in newest_first]
    errors = events_page(store, user_id="ana", local_range=RANGE, status="error")
    assert [row["metadata"] for row in errors.rows] == ['{"app":"chat"}']
    no_model = events_page(store, user_id="ana", local_range=RANGE, model="")
    assert [row["event_id"] for row in no_model.rows] == [ANA_EVENTS[3]["event_id"]]
    with pytest.raises(ValueError, match="cursor"):
        events_page(store, user_id="ana", local_range=RANGE, cursor="nope")


def test_percentile_is_nearest_rank() -> None:
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([5], 95) == 5
    assert percentile([], 95) is None


def test_the_api_answers_and_refuses(store: UsageStore, get_report: Callable[..., Any]) -> None:
    params = {"start": "2026-10-31", "end": "2026-11-02", "tz": "America/New_York"}
    body = get_report("/api/v1/reports/people/ana", **params).json()
    assert body["person"]["team"] == "Platform"
    assert body["usage"]["total_tokens"] == 395
    assert body["previous"]["total_tokens"] == 110
    assert body["change"]["total_tokens"] == pytest.approx((395 - 110) / 110)
    assert sum(map(sum, body["heat_map"]["requests"])) == 4
    assert [p["team_median_total_tokens"] for p in body["series"]["points"]] == [0, 330, 10]
    assert sum(m["requests"] for m in body["models"]) == body["usage"]["requests"]
    first = get_report("/api/v1/reports/people/ana/events", **params, limit=2).json()
    second = get_report(
        "/api/v1/reports/people/ana/events", **params, limit=2, cursor=first["next_cursor"]
    ).json()
    ids = [e["event_id"] for e in first["events"] + second["events"]]
    assert len(set(ids)) == 4
    assert second["next_cursor"] is None or len(second["events"]) == 2
    missing = get_report("/api/v1/reports/people/nobody", **params)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    bad = get_report("/api/v1/reports/people/ana/events", **params, cursor="x")
    assert bad.status_code == 400
    assert bad.json()["error"]["message"].startswith("cursor:")


def test_the_page_links_back_to_the_same_view(store: UsageStore, app: Any) -> None:
    import re

    from tests.web.signed_in import signed_in_client

    view = "start=2026-10-31&end=2026-11-02&tz=America%2FNew_York&q=an&team=Platform"
    with signed_in_client(app) as page:
        usage = page.get(f"/reporting/user-usage?{view}").text
        link = re.search(r'class="user-name person-link" href="([^"]+)">Ana<', usage)
        assert link is not None
        href = link.group(1).replace("&amp;", "&")
        assert href.startswith("/reporting/people/ana?")
        person = page.get(href)
        assert person.status_code == 200
        html = person.text
        back = re.search(r'id="back-link" href="([^"]+)"', html)
        assert back is not None
        back_url = back.group(1).replace("&amp;", "&")
        for part in ("start=2026-10-31", "end=2026-11-02", "tz=America%2FNew_York", "q=an"):
            assert part in back_url
        assert "team=Platform" in back_url
        assert re.search(r'id="card-requests">4<', html)
        cost = re.search(r'id="card-cost" title="([^"]+)" data-cost="([^"]+)">([^<]+)<', html)
        assert cost is not None  # shown as money, the exact value in its title
        nanos = int(Decimal(cost.group(2)) * 10**9)
        assert nanos > 0
        assert (cost.group(1), cost.group(3)) == (exact_money(nanos), money(nanos))
        assert html.count('class="heat-cell') == 7 * 24
        assert "user_id=ana" in html  # the export of this person's events
        older = page.get(href + "&status=error")
        assert older.text.count("<details>") == 1  # its metadata, on demand
        assert page.get("/reporting/people/nobody").status_code == 404
        assert page.get(href + "&cursor=bad").status_code == 400


def test_the_usage_table_sorts_by_the_change_of_tokens(store: UsageStore, app: Any) -> None:
    import re

    from tests.web.signed_in import signed_in_client
    from tokenledger.reports import usage_by_change

    grown = usage_by_change(store, local_range=RANGE, users=UserFilter())
    # bo +1000, ana 395 - 110 = +285, cy +30, di +5.
    assert [row.user_id for row in grown.rows] == ["bo", "ana", "cy", "di"]
    assert grown.totals.total_tokens == 1430
    shrunk = usage_by_change(store, local_range=RANGE, users=UserFilter(), descending=False)
    assert [row.user_id for row in shrunk.rows] == ["di", "cy", "ana", "bo"]
    view = "start=2026-10-31&end=2026-11-02&tz=America%2FNew_York&compare=1"
    with signed_in_client(app) as page:
        html = page.get(f"/reporting/user-usage?{view}&sort=-token_change").text
        names = re.findall(r'class="user-name person-link" href="[^"]+">([^<]+)<', html)
        assert names == ["bo", "Ana", "cy", "di"]
        assert re.search(r'aria-sort="descending"><a class="sort-link" [^>]*token_change', html)
        changes = re.findall(
            r'class="cell-main">([^<]+)</span><span class="cell-sub muted" data-cost-change>'
            r"cost ([^<]+)</span></td>",
            html,
        )
        assert [tokens for tokens, _cost in changes][:2] == ["new", "+259%"]
        # bo spent nothing before: his cost (the catalogue's price) is new too.
        assert [cost for _tokens, cost in changes][:1] == ["new"]
        assert 'id="totals-cost-change">cost ' in html
        # Without the toggle, the change is no sort key.
        assert page.get(f"/reporting/user-usage?{view[:-10]}&sort=-token_change").status_code == 400
