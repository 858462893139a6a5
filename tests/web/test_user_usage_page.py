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
    return re.findall(r'class="user-name[^"]*"[^>]*>([^<]*)<', html)


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
    assert html.count('formaction="/api/v1/reports/user-usage/export"') == 5  # models, teams
    state = html.split('id="usage-state"')[1].split("</div>")[0]
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', state))
    assert fields == {
        "start": "2026-11-01",
        "end": "2026-11-25",
        "sort": "requests",
        "page": "1",
        "per_page": "50",
        "group": "",
        "compare": "",
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


def _many_users(post_events: Callable[..., Any], count: int = 120) -> None:
    events = [
        make_event(user={"id": f"u{n:03d}", "name": f"User {n:03d}"}, input_tokens=n)
        for n in range(1, count + 1)
    ]
    assert post_events(events).status_code == 200


def test_a_page_past_the_end_shows_the_last_one(
    page: TestClient, post_events: Callable[..., Any]
) -> None:
    _many_users(post_events)
    html = page.get("/reporting/user-usage", params={"page": "99"}).text
    assert _rows(html) == [f"User {n:03d}" for n in range(20, 0, -1)]
    assert re.search(r'data-num="101">101</span>–<span data-num="120">120</span> of', html)
    assert 'id="page-jump" value="3" min="1" max="3"' in html
    assert 'data-adjusted="true"' in html  # the browser replaces the URL with page=3
    fragment = page.get(
        "/reporting/user-usage", params={"page": "99"}, headers={"HX-Request": "true"}
    )
    assert fragment.headers["hx-push-url"].endswith("&page=3")


def test_first_last_and_page_sizes(page: TestClient, post_events: Callable[..., Any]) -> None:
    _many_users(post_events)
    html = page.get("/reporting/user-usage", params={"page": "2"}).text
    links = {
        rel: url for url, rel in re.findall(r'href="([^"]+)" data-page="\d+" rel="(\w+)"', html)
    }
    first = "/reporting/user-usage?start=2026-11-25&amp;end=2026-11-25&amp;tz=UTC"
    assert links == {
        "first": first,
        "prev": first,
        "next": f"{first}&amp;page=3",
        "last": f"{first}&amp;page=3",
    }
    last = page.get("/reporting/user-usage", params={"page": "3"}).text
    assert re.findall(r'<span class="button button-small" aria-disabled="true">([^<]+)<', last) == [
        "Next ›",
        "Last »",
    ]
    hundred = page.get("/reporting/user-usage", params={"per_page": "100", "page": "2"}).text
    assert len(_rows(hundred)) == 20
    assert '<option value="100" selected>' in hundred
    assert len(_rows(page.get("/reporting/user-usage", params={"per_page": "500"}).text)) == 120
    bad = page.get("/reporting/user-usage", params={"per_page": "7"})
    assert bad.status_code == 400
    assert 'role="alert">per_page: must be one of 50, 100, 500' in bad.text


def test_dates_after_today_are_clamped_with_a_notice(
    page: TestClient, post_events: Callable[..., Any]
) -> None:
    assert post_events([make_event()]).status_code == 200
    html = page.get(
        "/reporting/user-usage", params={"start": "2026-11-20", "end": "2027-01-31"}
    ).text
    assert 'data-start="2026-11-20" data-end="2026-11-25"' in html
    assert "went past today (Nov 25); the range now ends today." in html
    assert 'data-adjusted="true"' in html
    future = page.get("/reporting/user-usage", params={"start": "2027-01-01", "end": "2027-01-02"})
    assert 'data-start="2026-11-25" data-end="2026-11-25"' in future.text
    assert _rows(future.text) == ["Alice Martin"]
    plain = page.get("/reporting/user-usage", params={"start": "2026-11-20"}).text
    assert "went past today" not in plain
    assert 'data-adjusted="false"' in plain


def test_one_user_is_one_user_and_the_caption_says_the_sort_in_words(
    page: TestClient, post_events: Callable[..., Any]
) -> None:
    assert post_events([make_event()]).status_code == 200
    html = page.get("/reporting/user-usage").text
    assert 'of <span data-num="1">1</span> user</span>' in html
    assert 'Total · all <span data-num="1">1</span> user</td>' in html
    assert "1 user on Nov 25." in html
    assert "sorted by total tokens, descending</caption>" in html
    by_time = page.get("/reporting/user-usage", params={"sort": "duration_ms"}).text
    assert "sorted by usage time, ascending</caption>" in by_time


def test_names_sort_as_search_matches_them(
    page: TestClient, post_events: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    names = ["Zoë Zhang", "Łukasz Wójcik", "Đức Phạm", "Çağla Şahin", "Bob Smith", "Åsa Åberg"]
    events = [make_event(user={"id": f"n{i}", "name": name}) for i, name in enumerate(names)]
    assert post_events(events).status_code == 200
    expected = ["Åsa Åberg", "Bob Smith", "Çağla Şahin", "Đức Phạm", "Łukasz Wójcik", "Zoë Zhang"]
    assert _rows(page.get("/reporting/user-usage", params={"sort": "name"}).text) == expected
    report = get_report(sort="-name").json()
    assert [user["name"] for user in report["users"]] == expected[::-1]


def test_the_zone_picker_lists_each_zone_once_by_region_with_its_offset(
    page: TestClient,
) -> None:
    html = page.get("/reporting/user-usage", params={"tz": "Asia/Calcutta"}).text
    picker = html.split('id="usage-tz"')[1].split("</select>")[0]
    regions = re.findall(r'<optgroup label="([^"]+)">', picker)
    assert regions[0] == "UTC"
    assert regions[1:] == sorted(regions[1:])
    assert {"Africa", "America", "Asia", "Europe", "Pacific"} <= set(regions)
    values = re.findall(r'<option value="([^"]+)"', picker)
    assert len(values) == len(set(values))
    assert "Asia/Kolkata" in values
    assert "America/Buenos_Aires" not in values  # an alias of America/Argentina/Buenos_Aires
    assert re.search(
        r'value="America/Argentina/Buenos_Aires"[^>]*>Buenos Aires \(Argentina\) \(UTC-03:00\)',
        picker,
    )
    assert re.search(r'value="Asia/Kathmandu"[^>]*>Kathmandu \(UTC\+05:45\)', picker)
    # A zone named in the URL is kept, even an alias.
    assert re.search(r'value="Asia/Calcutta"[^>]* selected>Calcutta \(UTC\+05:30\)', picker)


def test_requests_without_usage_are_counted_never_a_silent_zero(
    page: TestClient, post_events: Callable[..., Any]
) -> None:
    cut = {"gateway": "chat.completions", "usage_missing": True}
    events = [
        make_event(event_id="cut-1", status="error", input_tokens=0, output_tokens=0, metadata=cut),
        make_event(event_id="cut-2", metadata={"app": {"usage_missing": True}}),  # not top level
        make_event(event_id="whole"),
    ]
    assert post_events(events).status_code == 200
    html = page.get("/reporting/user-usage").text
    assert re.search(r'data-usage-missing[^>]*><span data-num="1">1</span> without usage', html)
    assert post_events([make_event(event_id="cut-3", metadata=cut)]).status_code == 200
    html = page.get("/reporting/user-usage").text
    assert re.search(r'data-usage-missing[^>]*><span data-num="2">2</span> without usage', html)
