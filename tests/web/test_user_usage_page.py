"""Reporting > User Usage, server side: URL state, fragments, words, escaping."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import make_event
from tests.web.signed_in import signed_in_client


@pytest.fixture
def page(app: FastAPI) -> Iterator[TestClient]:
    with signed_in_client(app, role="viewer") as client:
        yield client


def _rows(html: str) -> list[str]:
    return re.findall(r'<span class="user-name">([^<]*)</span>', html)


def test_default_view_is_today_in_the_default_zone(
    page: TestClient, post_events: Callable[..., Any]
) -> None:
    assert (
        post_events(
            [
                make_event(user={"id": "u1", "name": "Today Person"}),
                make_event(
                    user={"id": "u2", "name": "Yesterday Person"}, started_at="2026-11-24T10:00:00Z"
                ),
            ]
        ).status_code
        == 200
    )
    response = page.get("/reporting/user-usage")
    assert response.status_code == 200
    html = response.text
    assert '<h1 class="page-title">User Usage</h1>' in html
    assert "AI usage per user" in html
    assert "<strong>UTC</strong> time zone" in html
    assert _rows(html) == ["Today Person"]
    assert 'value="2026-11-25/2026-11-25"' in html
    assert 'id="range-button-label">Today<' in html


def test_the_url_carries_range_zone_search_and_sort(
    page: TestClient, post_events: Callable[..., Any]
) -> None:
    assert (
        post_events(
            [
                make_event(
                    user={"id": "u1", "name": "Nguyễn Thảo"}, started_at="2026-11-02T10:00:00Z"
                ),
                make_event(user={"id": "u2", "name": "Bob"}, started_at="2026-11-02T10:00:00Z"),
            ]
        ).status_code
        == 200
    )
    html = page.get(
        "/reporting/user-usage",
        params={
            "start": "2026-11-01",
            "end": "2026-11-25",
            "tz": "Asia/Kolkata",
            "q": "nguyen",
            "sort": "requests",
        },
    ).text
    assert _rows(html) == ["Nguyễn Thảo"]
    assert 'value="2026-11-01/2026-11-25"' in html
    assert re.search(r'<option value="Asia/Kolkata"[^>]* selected>Kolkata \(UTC\+05:30\)', html)
    assert 'value="nguyen"' in html
    # Export submits the same form to the export API: the view's fields at click time.
    assert html.count('formaction="/api/v1/reports/user-usage/export"') == 3
    state = html.split('id="usage-state"')[1].split("</div>")[0]
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', state))
    assert fields == {
        "start": "2026-11-01",
        "end": "2026-11-25",
        "sort": "requests",
        "page": "1",
        "per_page": "50",
    }


def test_htmx_requests_get_only_the_results_fragment(
    page: TestClient, post_events: Callable[..., Any]
) -> None:
    assert post_events([make_event()]).status_code == 200
    response = page.get("/reporting/user-usage", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.text
    assert 'id="usage-state" class="visually-hidden" hx-swap-oob="true"' in response.text
    assert response.headers["hx-push-url"] == (
        "/reporting/user-usage?start=2026-11-25&end=2026-11-25&tz=UTC"
    )
    restore = page.get(
        "/reporting/user-usage",
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in restore.text


def test_no_match_says_so_in_words(page: TestClient, post_events: Callable[..., Any]) -> None:
    assert post_events([make_event()]).status_code == 200
    html = page.get(
        "/reporting/user-usage", params={"start": "2026-11-01", "end": "2026-11-25", "q": "xyz"}
    ).text
    assert "No users match 'xyz' between Nov 1 and Nov 25" in html
    single = page.get("/reporting/user-usage", params={"q": "xyz"}).text
    assert "No users match 'xyz' on Nov 25" in single


def test_sorting_paging_and_totals(page: TestClient, post_events: Callable[..., Any]) -> None:
    events = [
        make_event(user={"id": f"u{n:03d}", "name": f"User {n:03d}"}, input_tokens=n)
        for n in range(1, 121)
    ]
    assert post_events(events).status_code == 200
    first = page.get("/reporting/user-usage").text
    assert _rows(first)[:2] == ["User 120", "User 119"]
    assert len(_rows(first)) == 50
    assert re.search(
        r'data-num="1">1</span>–<span data-num="50">50</span> of <span '
        r'data-num="120">120</span> users',
        first,
    )
    third = page.get("/reporting/user-usage", params={"page": "3"}).text
    assert _rows(third) == [f"User {n:03d}" for n in range(20, 0, -1)]
    ascending = page.get("/reporting/user-usage", params={"sort": "total_tokens"}).text
    assert _rows(ascending)[0] == "User 001"
    by_name = page.get("/reporting/user-usage", params={"sort": "name"}).text
    assert _rows(by_name)[:2] == ["User 001", "User 002"]
    total_tokens = sum(n + 40 for n in range(1, 121))
    assert 'Total · all <span data-num="120">120</span> users' in first
    assert f'data-num="{total_tokens}"' in first
    assert 'aria-sort="descending"' in first


def test_headers_sort_and_reverse(page: TestClient, post_events: Callable[..., Any]) -> None:
    assert post_events([make_event()]).status_code == 200
    html = page.get("/reporting/user-usage", params={"sort": "-requests"}).text
    links = dict(re.findall(r'aria-sort="(\w+)">\s*<a class="sort-link" href="([^"]+)"', html))
    assert "sort=requests" in links["descending"]  # clicking the sorted column reverses
    assert "sort=-total_tokens" not in links["none"]  # another column starts descending


def test_user_supplied_strings_are_escaped(
    page: TestClient, post_events: Callable[..., Any]
) -> None:
    evil = "<img src=x onerror=alert(1)>"
    assert (
        post_events(
            [
                make_event(
                    user={"id": "evil", "name": evil, "email": "e@example.com"},
                    model="<script>alert(2)</script>",
                )
            ]
        ).status_code
        == 200
    )
    html = page.get("/reporting/user-usage", params={"q": "<img"}).text
    assert evil not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2026-13-01"}, "start"),
        ({"tz": "Mars/Base"}, "tz"),
        ({"sort": "bogus"}, "sort"),
        ({"page": "0"}, "page"),
        ({"start": "2026-11-10", "end": "2026-11-01"}, "end"),
    ],
)
def test_bad_parameters_show_an_error_and_the_default_view(
    page: TestClient, params: dict[str, str], field: str
) -> None:
    response = page.get("/reporting/user-usage", params=params)
    assert response.status_code == 400
    assert f'role="alert">{field}:' in response.text


def test_signed_out_visitors_are_sent_to_sign_in(client: TestClient) -> None:
    response = client.get("/reporting/user-usage?q=a", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=%2Freporting%2Fuser-usage%3Fq%3Da"


def test_reports_are_paused_while_usage_cannot_be_recorded(
    page: TestClient, db: Any, monkeypatch: pytest.MonkeyPatch, read_key: str
) -> None:
    from tokenledger.store.database import DatabaseUnavailable

    def read_only() -> None:
        raise DatabaseUnavailable("the SQLite file /x/tokenledger.db is not writable")

    monkeypatch.setattr(db, "check_writable", read_only)
    response = page.get("/reporting/user-usage")
    assert response.status_code == 503
    assert "text/html" in response.headers["content-type"]
    assert "is not writable" in response.text
    api = page.get("/api/v1/reports/user-usage", headers={"Authorization": f"Bearer {read_key}"})
    assert api.status_code == 503
    assert api.json()["error"]["code"] == "database_unavailable"
