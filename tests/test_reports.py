"""The User Usage report over the API: exact local days on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest

from tests.conftest import make_event
from tests.support.clock import FrozenClock


def _user(user_id: str, name: str | None = None, email: str | None = None) -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id}
    if name:
        user["name"] = name
    if email:
        user["email"] = email
    return user


def _requests(report: dict[str, Any]) -> dict[str, int]:
    return {row["user_id"]: row["requests"] for row in report["users"]}


def _post_at(post_events: Callable[..., Any], *instants: str, user: str = "u1") -> None:
    response = post_events(
        [make_event(user=_user(user), started_at=instant) for instant in instants]
    )
    assert response.status_code == 200, response.text


def test_new_york_spring_forward_day_has_23_hours(
    post_events: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    # 2024-03-10 00:00 EST = 05:00Z; 2024-03-11 00:00 EDT = 04:00Z (23 h later).
    _post_at(
        post_events,
        "2024-03-10T04:59:59Z",  # Mar 9 local
        "2024-03-10T05:00:00Z",  # first instant of Mar 10
        "2024-03-11T03:59:59Z",  # last instant of Mar 10
        "2024-03-11T04:00:00Z",  # Mar 11
    )
    report = get_report(start="2024-03-10", end="2024-03-10", tz="America/New_York").json()
    assert report["totals"]["requests"] == 2
    assert report["range"]["start_at"] == "2024-03-10T00:00:00-05:00"
    assert report["range"]["end_at"] == "2024-03-11T00:00:00-04:00"


def test_new_york_fall_back_day_has_25_hours_and_both_0130s(
    post_events: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    # 01:30 EDT = 05:30Z and 01:30 EST = 06:30Z both belong to 2024-11-03.
    _post_at(
        post_events,
        "2024-11-03T01:30:00-04:00",
        "2024-11-03T01:30:00-05:00",
        "2024-11-03T04:00:00Z",  # 00:00 EDT: first instant of Nov 3
        "2024-11-04T04:59:59Z",  # 23:59:59 EST: last instant of Nov 3
        "2024-11-04T05:00:00Z",  # Nov 4
    )
    report = get_report(start="2024-11-03", end="2024-11-03", tz="America/New_York").json()
    assert report["totals"]["requests"] == 4
    row = report["users"][0]
    assert row["first_request_at"] == "2024-11-03T00:00:00-04:00"
    assert row["last_request_at"] == "2024-11-03T23:59:59-05:00"


@pytest.mark.parametrize(
    ("tz", "before", "at"),
    [
        ("Asia/Kolkata", "2024-06-01T18:29:59Z", "2024-06-01T18:30:00Z"),
        ("Asia/Kathmandu", "2024-06-01T18:14:59Z", "2024-06-01T18:15:00Z"),
    ],
)
def test_half_and_quarter_hour_zones_split_days_to_the_second(
    post_events: Callable[..., Any],
    get_report: Callable[..., Any],
    tz: str,
    before: str,
    at: str,
) -> None:
    _post_at(post_events, before, at)
    june_1 = get_report(start="2024-06-01", end="2024-06-01", tz=tz).json()
    june_2 = get_report(start="2024-06-02", end="2024-06-02", tz=tz).json()
    assert (june_1["totals"]["requests"], june_2["totals"]["requests"]) == (1, 1)
    both = get_report(start="2024-06-01", end="2024-06-02", tz=tz).json()
    assert both["totals"]["requests"] == 2


@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "UTC"])
def test_days_of_a_range_sum_to_the_range(
    post_events: Callable[..., Any], get_report: Callable[..., Any], tz: str
) -> None:
    # One event every 7 h 13 min across the 2024 autumn DST change.
    instants = []
    moment = date(2024, 10, 28)
    hours = 0.0
    while hours < 24 * 12:
        total_minutes = int(hours * 60)
        instants.append(
            f"{moment + timedelta(minutes=0)}T00:00:00Z".replace(
                "T00:00:00Z",
                f"T{(total_minutes // 60) % 24:02d}:{total_minutes % 60:02d}:00Z",
            ).replace(str(moment), str(moment + timedelta(days=total_minutes // 1440)))
        )
        hours += 7 + 13 / 60
    _post_at(post_events, *instants)
    whole = get_report(start="2024-10-29", end="2024-11-06", tz=tz).json()
    days = [
        get_report(start=str(day), end=str(day), tz=tz).json()["totals"]
        for day in (date(2024, 10, 29) + timedelta(days=n) for n in range(9))
    ]
    for metric in ("requests", "total_tokens", "duration_ms"):
        assert sum(day[metric] for day in days) == whole["totals"][metric]
    assert whole["totals"]["requests"] > 20


def test_today_at_2330_west_of_utc_includes_the_evening(
    post_events: Callable[..., Any], get_report: Callable[..., Any], clock: FrozenClock
) -> None:
    # 23:30 in Los Angeles on Nov 24 is 07:30 UTC on Nov 25.
    clock.set("2026-11-25T07:30:00+00:00")
    _post_at(post_events, "2026-11-24T21:00:00-08:00", "2026-11-24T23:15:00-08:00")
    _post_at(post_events, "2026-11-24T07:59:59Z")  # 23:59:59 on Nov 23 local
    report = get_report(tz="America/Los_Angeles").json()
    assert report["range"]["start"] == "2026-11-24"
    assert report["totals"]["requests"] == 2
    utc_report = get_report(tz="UTC").json()
    assert utc_report["range"]["start"] == "2026-11-25"
    assert utc_report["totals"]["requests"] == 2  # 05:00Z and 07:15Z on Nov 25


def test_server_time_zone_changes_nothing(
    post_events: Callable[..., Any],
    get_report: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    _post_at(post_events, "2024-06-01T18:29:59Z", "2024-06-01T18:30:00Z")
    expected = get_report(start="2024-06-02", end="2024-06-02", tz="Asia/Kolkata").json()
    # The report itself is right: June 2 in Kolkata begins at 18:30Z on June 1.
    assert expected["totals"]["requests"] == 1
    (row,) = expected["users"]
    assert row["first_request_at"] == row["last_request_at"] == "2024-06-02T00:00:00+05:30"
    assert expected["range"]["start_at"] == "2024-06-02T00:00:00+05:30"
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    try:
        again = get_report(start="2024-06-02", end="2024-06-02", tz="Asia/Kolkata").json()
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert again == expected


def test_rows_totals_sort_and_paging(
    post_events: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    events = []
    for index in range(7):
        user = _user(f"u{index}", f"User {index}", f"user{index}@example.com")
        for n in range(index + 1):
            events.append(
                make_event(
                    user=user,
                    input_tokens=10 * (7 - index),
                    output_tokens=n,
                    started_at=f"2026-11-25T0{n}:00:00Z",
                    duration_ms=1000,
                )
            )
    assert post_events(events).status_code == 200
    report = get_report(sort="requests", limit=3, offset=0).json()
    assert report["total_users"] == 7
    assert [row["user_id"] for row in report["users"]] == ["u0", "u1", "u2"]
    page_two = get_report(sort="requests", limit=3, offset=3).json()
    assert [row["user_id"] for row in page_two["users"]] == ["u3", "u4", "u5"]
    everyone = get_report(limit=500).json()
    for metric in ("requests", "input_tokens", "output_tokens", "total_tokens", "duration_ms"):
        assert report["totals"][metric] == sum(row[metric] for row in everyone["users"])
    by_tokens = [row["total_tokens"] for row in everyone["users"]]
    assert by_tokens == sorted(by_tokens, reverse=True)
    row = everyone["users"][0]
    assert set(row) >= {
        "user_id",
        "name",
        "email",
        "requests",
        "error_requests",
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "duration_ms",
        "first_request_at",
        "last_request_at",
    }


def test_ties_are_broken_by_user_id(
    post_events: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    ids = ["m", "c", "x", "a", "k"]
    assert post_events([make_event(user=_user(user_id)) for user_id in ids]).status_code == 200
    for offset in range(5):
        page = get_report(limit=1, offset=offset).json()["users"]
        assert [row["user_id"] for row in page] == [sorted(ids)[offset]]
    reverse = get_report(sort="user_id", limit=5).json()["users"]
    assert [row["user_id"] for row in reverse] == sorted(ids)


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("nguyen", "Nguyễn Thị Thảo"),
        ("dang", "Đặng Văn Lâm"),
        ("zoe", "Zoë Dubois"),
        ("ZOË", "Zoë Dubois"),
        ("@corp.example", "Zoë Dubois"),
        ("emp-77", "Đặng Văn Lâm"),
    ],
)
def test_search_ignores_case_and_accents(
    post_events: Callable[..., Any], get_report: Callable[..., Any], query: str, found: str
) -> None:
    people = [
        _user("emp-1", "Nguyễn Thị Thảo", "thao@example.com"),
        _user("emp-77", "Đặng Văn Lâm", "lam@example.com"),
        _user("emp-3", "Zoë Dubois", "zoe@corp.example"),
    ]
    assert post_events([make_event(user=user) for user in people]).status_code == 200
    report = get_report(q=query).json()
    assert [row["name"] for row in report["users"]] == [found]
    assert report["total_users"] == 1


def test_search_treats_like_wildcards_literally(
    post_events: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    people = [_user("a_b", "Percent 100%"), _user("axb", "Plain")]
    assert post_events([make_event(user=user) for user in people]).status_code == 200
    assert [r["user_id"] for r in get_report(q="a_b").json()["users"]] == ["a_b"]
    assert [r["user_id"] for r in get_report(q="100%").json()["users"]] == ["a_b"]


def test_include_inactive_lists_matching_users_without_usage(
    post_events: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    _post_at(post_events, "2026-11-20T10:00:00Z", user="old-timer")
    _post_at(post_events, "2026-11-25T10:00:00Z", user="today-user")
    assert get_report().json()["total_users"] == 1
    report = get_report(include_inactive="true").json()
    assert report["total_users"] == 2
    inactive = next(row for row in report["users"] if row["user_id"] == "old-timer")
    assert inactive["requests"] == 0
    assert inactive["last_request_at"] is None


def test_latest_non_empty_name_and_email_are_shown(
    post_events: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    assert (
        post_events(
            [
                make_event(
                    user=_user("u1", "Old Name", "old@example.com"),
                    started_at="2026-11-25T08:00:00Z",
                ),
                make_event(user=_user("u1", "New Name"), started_at="2026-11-25T09:00:00Z"),
            ]
        ).status_code
        == 200
    )
    # A backfilled older event does not overwrite the newer name.
    assert (
        post_events(
            [
                make_event(
                    user=_user("u1", "Ancient Name", "ancient@example.com"),
                    started_at="2026-11-01T09:00:00Z",
                ),
                make_event(user=_user("u1", ""), started_at="2026-11-25T11:00:00Z"),
            ]
        ).status_code
        == 200
    )
    row = get_report().json()["users"][0]
    assert (row["name"], row["email"]) == ("New Name", "old@example.com")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2024-13-01"}, "start"),
        ({"start": "24-01-01"}, "start"),
        ({"end": "2024-02-30"}, "end"),
        ({"start": "2024-02-02", "end": "2024-02-01"}, "end"),
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"sort": "-bogus"}, "sort"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"limit": "ten"}, "limit"),
    ],
)
def test_bad_parameters_get_400_naming_the_parameter(
    get_report: Callable[..., Any], params: dict[str, str], field: str
) -> None:
    response = get_report(**params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == field
    assert field in error["message"]


def test_usage_series_is_zero_filled_and_sums_to_the_report(
    post_events: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    _post_at(post_events, "2024-11-02T12:00:00Z", "2024-11-03T05:30:00Z", "2024-11-03T06:30:00Z")
    params = {"start": "2024-11-01", "end": "2024-11-04", "tz": "America/New_York"}
    series = get_report("/api/v1/reports/usage-series", **params).json()
    assert [point["start"][:10] for point in series["points"]] == [
        "2024-11-01",
        "2024-11-02",
        "2024-11-03",
        "2024-11-04",
    ]
    assert [point["requests"] for point in series["points"]] == [0, 1, 2, 0]
    hourly = get_report(
        "/api/v1/reports/usage-series",
        start="2024-11-03",
        end="2024-11-03",
        tz="America/New_York",
        interval="hour",
    ).json()
    assert len(hourly["points"]) == 25
    assert [p["start"] for p in hourly["points"][1:3]] == [
        "2024-11-03T01:00:00-04:00",
        "2024-11-03T01:00:00-05:00",
    ]
    assert sum(p["requests"] for p in hourly["points"]) == 2
    report = get_report(**params).json()
    assert sum(p["total_tokens"] for p in series["points"]) == report["totals"]["total_tokens"]


def test_series_filters_by_search_and_user(
    post_events: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    assert (
        post_events(
            [
                make_event(user=_user("u1", "Zoë")),
                make_event(user=_user("u2", "Bob")),
                make_event(user=_user("u2", "Bob")),
            ]
        ).status_code
        == 200
    )
    path = "/api/v1/reports/usage-series"
    assert get_report(path, q="zoe").json()["points"][0]["requests"] == 1
    assert get_report(path, user_id="u2").json()["points"][0]["requests"] == 2
    assert get_report(path).json()["points"][0]["requests"] == 3


def test_a_missing_end_is_today(
    post_events: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    _post_at(post_events, "2026-11-20T10:00:00Z", "2026-11-25T10:00:00Z")
    report = get_report(start="2026-11-20").json()
    assert (report["range"]["start"], report["range"]["end"]) == ("2026-11-20", "2026-11-25")
    assert report["totals"]["requests"] == 2
    assert get_report(end="2026-11-24").status_code == 400  # start (today) after end


def test_series_are_bounded(get_report: Callable[..., Any]) -> None:
    path = "/api/v1/reports/usage-series"
    days = get_report(path, start="2016-01-01", end="2026-01-07", tz="Asia/Yangon")
    assert days.status_code == 200, days.text
    assert len(days.json()["points"]) == 3660
    too_long = get_report(path, start="2016-01-01", end="2026-01-08", tz="Asia/Yangon")
    assert too_long.status_code == 400
    assert too_long.json()["error"]["message"] == "interval: daily series cover at most 3660 days"
    hours = get_report(path, start="2026-01-01", end="2026-04-03", interval="hour")
    assert (hours.status_code, len(hours.json()["points"])) == (200, 93 * 24)
    assert (
        get_report(path, start="2026-01-01", end="2026-04-04", interval="hour").status_code == 400
    )


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/reports/user-usage", "q"),
        ("/api/v1/reports/usage-series", "q"),
        ("/api/v1/reports/usage-series", "user_id"),
    ],
)
def test_nul_in_a_search_is_a_400(get_report: Callable[..., Any], path: str, name: str) -> None:
    # PostgreSQL cannot hold NUL in text: this used to be a 500 there.
    response = get_report(path, **{name: "a\x00b"})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_parameter",
        "message": f"{name}: must not contain NUL",
        "field": name,
    }
