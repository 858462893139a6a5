"""Reporting > User Usage: from the page's URL to what its template shows.

The URL carries the whole view (``start``, ``end``, ``tz``, ``q``, ``sort``, ``page``),
so a link reproduces it and Back works. The route returns the full page, or only the
results fragment when htmx asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time
from functools import cache
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, available_timezones

from starlette.requests import Request

from tokenledger import report_params
from tokenledger.localdays import LocalRange, today, zone
from tokenledger.ordering import parse_sort
from tokenledger.report_params import InvalidParameter
from tokenledger.reports import UserUsageReport, user_usage
from tokenledger.web import formatting
from tokenledger.web.context import AppContext

PATH = "/reporting/user-usage"
EXPORT_PATH = "/api/v1/reports/user-usage/export"
PAGE_SIZE = 50
TZ_COOKIE = "tl_tz"
DEFAULT_SORT = "-total_tokens"
# Table columns that sort, with the sort key their header uses.
COLUMNS = (
    ("user", "User", "name", False),
    ("requests", "Requests", "requests", True),
    ("tokens", "Total tokens", "total_tokens", True),
    ("time", "Usage time", "duration_ms", True),
    ("last", "Last active", "last_request_at", True),
)


@cache
def zone_names() -> list[str]:
    """Every IANA zone a viewer can pick (sorted; legacy aliases left out)."""
    return sorted(
        name
        for name in available_timezones()
        if ("/" in name and not name.startswith(("Etc/", "SystemV/", "US/"))) or name == "UTC"
    )


# A parameter of the page that cannot be used (the same as the API's, see report_params).
InvalidView = InvalidParameter


@dataclass(frozen=True)
class UsageView:
    """The state of the page, as carried by its URL."""

    start: date
    end: date
    tz: ZoneInfo
    today: date
    q: str = ""
    sort: str = DEFAULT_SORT
    page: int = 1
    tz_from_browser: bool = False

    @property
    def local_range(self) -> LocalRange:
        return LocalRange.of(self.start, self.end, self.tz)

    @property
    def offset(self) -> int:
        return (self.page - 1) * PAGE_SIZE

    def params(self, **changes: Any) -> dict[str, str]:
        view = replace(self, **changes)
        params = {
            "start": view.start.isoformat(),
            "end": view.end.isoformat(),
            "tz": view.tz.key,
        }
        if view.q:
            params["q"] = view.q
        if view.sort != DEFAULT_SORT:
            params["sort"] = view.sort
        if view.page != 1:
            params["page"] = str(view.page)
        return params

    def url(self, **changes: Any) -> str:
        return f"{PATH}?{urlencode(self.params(**changes))}"

    def export_url(self) -> str:
        params = self.params(page=1)
        params["sort"] = self.sort
        return f"{EXPORT_PATH}?{urlencode(params)}"

    def sort_url(self, key: str) -> str:
        """Clicking a header sorts by it; clicking the sorted header reverses."""
        column, descending = parse_sort(self.sort)
        if column == key:
            new_sort = key if descending else f"-{key}"
        else:
            new_sort = key if key == "name" else f"-{key}"
        return self.url(sort=new_sort, page=1)

    def aria_sort(self, key: str) -> str:
        column, descending = parse_sort(self.sort)
        if column != key:
            return "none"
        return "descending" if descending else "ascending"


def parse_view(ctx: AppContext, request: Request) -> UsageView:
    """The view named by the request's query (InvalidView naming a bad parameter)."""
    query = request.query_params
    tz_name = query.get("tz") or request.cookies.get(TZ_COOKIE) or ""
    # The page's form may send empty fields: an empty one is a default.
    asked = report_params.report_params(
        start=query.get("start") or None,
        end=query.get("end") or None,
        tz=tz_name or None,
        q=query.get("q"),
        sort_by=query.get("sort") or None,
        default_tz=ctx.settings.timezone,
        now=ctx.clock(),
        span=report_params.REPORT,
    )
    page_text = query.get("page") or "1"
    if not page_text.isdigit() or not 1 <= int(page_text) <= 1_000_000:
        raise InvalidView("page", "must be a page number")
    local_range = asked.local_range
    return UsageView(
        local_range.start,
        local_range.end,
        local_range.tz,
        today(local_range.tz, ctx.clock()),
        asked.users.search or "",
        asked.sort,
        int(page_text),
        tz_from_browser=bool(tz_name),
    )


def default_view(ctx: AppContext) -> UsageView:
    tz = zone(ctx.settings.timezone)
    current = today(tz, ctx.clock())
    return UsageView(current, current, tz, current)


@dataclass
class Page:
    """One page of the table, with the words around it."""

    view: UsageView
    report: UserUsageReport

    @property
    def first(self) -> int:
        return self.view.offset + 1 if self.report.rows else 0

    @property
    def last(self) -> int:
        return self.view.offset + len(self.report.rows)

    @property
    def pages(self) -> int:
        return max(1, -(-self.report.total_users // PAGE_SIZE))

    @property
    def previous_url(self) -> str | None:
        return self.view.url(page=self.view.page - 1) if self.view.page > 1 else None

    @property
    def next_url(self) -> str | None:
        if self.view.page >= self.pages:
            return None
        return self.view.url(page=self.view.page + 1)

    @property
    def range_phrase(self) -> str:
        return formatting.range_phrase(self.view.start, self.view.end)


def load_page(ctx: AppContext, view: UsageView) -> Page:
    report = user_usage(
        ctx.store,
        local_range=view.local_range,
        q=view.q or None,
        sort=view.sort,
        limit=PAGE_SIZE,
        offset=view.offset,
    )
    return Page(view, report)


def template_context(page: Page, error: str | None = None) -> dict[str, Any]:
    view = page.view
    return {
        "page": page,
        "view": view,
        "columns": COLUMNS,
        "zones": zone_names(),
        "error": error,
        "nav_section": "reporting",
        "nav_page": "user-usage",
        "tz_offset": formatting.utc_offset(
            view.tz, datetime.combine(view.end, time(12), tzinfo=view.tz)
        ),
        "range_label": formatting.range_label(view.start, view.end, view.today),
        "fmt": formatting,
    }
