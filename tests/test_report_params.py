"""One parser of report parameters: the same rule and message for the JSON report, the
series, the export, the page (and its htmx fragment) and the command line."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.web.signed_in import signed_in_client
from tokenledger import report_params
from tokenledger.cli import app as cli_app
from tokenledger.report_params import InvalidParameter

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)

# (parameters, field, message): each refused the same way everywhere.
REFUSED = [
    ({"q": "a\x00"}, "q", "q: must not contain NUL"),
    ({"q": "x" * 201}, "q", "q: must have at most 200 characters"),
    ({"tz": "Mars/Olympus"}, "tz", "tz: unknown time zone 'Mars/Olympus'"),
    ({"start": "2024-13-01"}, "start", "start: must be a date YYYY-MM-DD, got '2024-13-01'"),
    ({"start": "20241101"}, "start", "start: must be a date YYYY-MM-DD, got '20241101'"),
    ({"start": "2024-11-02", "end": "2024-11-01"}, "end", "end: end is before start"),
    ({"sort": "-bogus"}, "sort", "sort: unknown sort column 'bogus'"),
]
FAR = {"start": "1900-01-01", "end": "9998-12-31"}


def test_the_parser_names_the_field_and_says_why() -> None:
    for params, field, message in REFUSED:
        with pytest.raises(InvalidParameter) as caught:
            _parse(params, report_params.REPORT)
        assert (caught.value.field, caught.value.message[: len(message)]) == (field, message)


def _parse(params: dict[str, str], span: report_params.Span) -> report_params.ReportParams:
    return report_params.report_params(
        start=params.get("start"),
        end=params.get("end"),
        tz=params.get("tz"),
        q=params.get("q"),
        sort_by=params.get("sort"),
        default_tz="UTC",
        now=NOW,
        span=span,
    )


def test_defaults_and_bounds() -> None:
    today = _parse({}, report_params.REPORT)
    assert (today.local_range.start.isoformat(), today.sort) == ("2026-11-25", "-total_tokens")
    assert _parse({"tz": "Pacific/Kiritimati"}, report_params.REPORT).local_range.end.day == 26
    longest = {"start": "2016-11-25", "end": "2026-11-29"}  # 3,657 days
    assert _parse(longest, report_params.REPORT).local_range.start.year == 2016
    for span in report_params.SPANS:
        with pytest.raises(InvalidParameter, match=f"cover at most {span.max_days} days"):
            _parse(FAR, span)
    hours = {"start": "2026-01-01", "end": "2026-04-03"}  # 93 days
    assert _parse(hours, report_params.HOURLY_SERIES).local_range.end.month == 4
    with pytest.raises(InvalidParameter, match=r"^interval: hourly series cover at most 93"):
        _parse({**hours, "end": "2026-04-04"}, report_params.HOURLY_SERIES)


# -- every way to ask -------------------------------------------------------------------


@pytest.fixture
def page(app: FastAPI) -> Iterator[TestClient]:
    with signed_in_client(app, role="viewer") as client:
        yield client


def _api(get_report: Callable[..., Any], path: str) -> Callable[[dict[str, str]], str]:
    def ask(params: dict[str, str]) -> str:
        response = get_report(path, **params)
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/json"
        error = response.json()["error"]
        assert error["code"] == "invalid_parameter"
        assert error["message"].startswith(f"{error['field']}: ")
        return str(error["message"])

    return ask


def _page(page: TestClient, *, fragment: bool) -> Callable[[dict[str, str]], str]:
    def ask(params: dict[str, str]) -> str:
        headers = {"HX-Request": "true"} if fragment else {}
        response = page.get("/reporting/user-usage", params=params, headers=headers)
        # A fragment swaps in its error (htmx swaps only 2xx); the full page is a 400.
        assert response.status_code == (200 if fragment else 400), response.text
        found = response.text.split('role="alert">', 1)[1].split("</div>", 1)[0]
        return html.unescape(found)

    return ask


def _cli(database_url: str) -> Callable[[dict[str, str]], str]:
    def ask(params: dict[str, str]) -> str:
        args = [f"--{name}={value}" for name, value in params.items()]
        result = CliRunner().invoke(
            cli_app, ["--database-url", database_url, "export", *args, "-o", "-"]
        )
        assert result.exit_code == 2, result.output
        return " ".join(result.stderr.replace("│", " ").split())

    return ask


@pytest.fixture
def ways(
    get_report: Callable[..., Any], page: TestClient, database_url: str
) -> dict[str, Callable[[dict[str, str]], str]]:
    return {
        "report": _api(get_report, "/api/v1/reports/user-usage"),
        "series": _api(get_report, "/api/v1/reports/usage-series"),
        "export": _api(get_report, "/api/v1/reports/user-usage/export"),
        "page": _page(page, fragment=False),
        "fragment": _page(page, fragment=True),
        "cli": _cli(database_url),
    }


def test_every_way_to_ask_refuses_a_bad_parameter_with_the_same_message(
    ways: dict[str, Callable[[dict[str, str]], str]],
) -> None:
    for params, _field, message in REFUSED:
        for name, ask in ways.items():
            if name == "series" and "sort" in params:
                continue  # a series has no order
            if name == "cli" and "\x00" in params.get("q", ""):
                continue  # an argument vector cannot hold NUL
            assert message in ask(params), (name, params)


def test_every_range_is_bounded_with_a_400_naming_the_limit(
    ways: dict[str, Callable[[dict[str, str]], str]], get_report: Callable[..., Any]
) -> None:
    for name in ("report", "page", "fragment"):
        assert ways[name](FAR) == "end: reports cover at most 3660 days"
    assert ways["series"](FAR) == "interval: daily series cover at most 3660 days"
    export = "/api/v1/reports/user-usage/export"
    for granularity in ("summary", "daily", "events"):
        expected = f"end: {granularity} exports cover at most 3660 days"
        assert _api(get_report, export)({**FAR, "granularity": granularity}) == expected
        assert expected in ways["cli"]({**FAR, "granularity": granularity})
