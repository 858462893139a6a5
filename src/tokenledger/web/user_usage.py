"""Reporting > User Usage: from the page's URL to what its template shows.

The URL carries the whole view (``start``, ``end``, ``tz``, ``q``, ``sort``, ``page``,
``per_page``, the ``team`` and ``department`` filters, the ``group`` view by team or
department and the ``compare`` toggle), so a link reproduces it and Back works. The
route returns the full page, or only the results fragment when htmx asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request

from tokenledger import report_params
from tokenledger.budgets.check import BudgetUse
from tokenledger.budgets.model import limit_json
from tokenledger.clock import now_us
from tokenledger.localdays import LocalRange, today, zone
from tokenledger.metrics import METRICS, MetricSet
from tokenledger.model_usage import ModelUsageReport, model_usage
from tokenledger.ordering import parse_sort as parse_report_sort
from tokenledger.report_params import InvalidParameter
from tokenledger.reports import (
    Comparison,
    GroupUsage,
    UserUsageReport,
    previous_usage,
    usage_by_attribute,
    usage_by_change,
    user_usage,
)
from tokenledger.usage import UserFilter
from tokenledger.web import formatting, zone_picker
from tokenledger.web.context import AppContext

PATH = "/reporting/user-usage"
PERSON_PATH = "/reporting/people"
GROUPS = {"team": "By team", "department": "By department"}
EXPORT_PATH = "/api/v1/reports/user-usage/export"
PRICES_PATH = "/admin/prices"  # where an admin prices the unpriced requests
PAGE_SIZES = (50, 100, 500)
PAGE_SIZE = PAGE_SIZES[0]
TZ_COOKIE = "tl_tz"
DEFAULT_SORT = "-total_tokens"
# Table columns that sort, with the sort key their header uses.
COLUMNS = (
    ("user", "User", "name", False),
    ("requests", "Requests", "requests", True),
    ("tokens", "Total tokens", "total_tokens", True),
    ("cost", "Cost", "cost_usd", True),
    ("time", "Usage time", "duration_ms", True),
    ("last", "Last active", "last_request_at", True),
)
# How the screen-reader caption names a sort column ("sorted by total tokens, descending").
SORT_WORDS = {
    "user_id": "user id",
    "name": "name",
    "email": "e-mail",
    "duration_ms": "usage time",
    "cost_usd": "cost",
    "first_request_at": "first request",
    "last_request_at": "last active",
    "token_change": "change of tokens vs the previous period",
}


# With the compare toggle, the table also sorts by the change of tokens against the
# previous range (in tokens: "who grew most"), a key of this page only.
CHANGE_SORT = "token_change"


def parse_sort(sort: str) -> tuple[str, bool]:
    """A sort of the page: the report's keys, and the change of tokens."""
    if sort.lstrip("-") == CHANGE_SORT:
        return CHANGE_SORT, sort.startswith("-")
    return parse_report_sort(sort)


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
    per_page: int = PAGE_SIZE
    team: str = ""
    department: str = ""
    group: str = ""  # "team" or "department": the By team / By department view
    compare: bool = False  # the change against the previous range, per person

    # Only the people at or over this percent of a budget now (None: everyone).
    over: int | None = None

    @property
    def users(self) -> UserFilter:
        where = report_params.attribute_filter({"team": self.team, "department": self.department})
        return UserFilter(q=self.q or None, where=where)

    def person_url(self, user_id: str) -> str:
        """A person's page, keeping this view (its Back link returns here)."""
        return f"{PERSON_PATH}/{quote(user_id, safe='')}?{urlencode(self.params())}"

    @property
    def local_range(self) -> LocalRange:
        return LocalRange.of(self.start, self.end, self.tz)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

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
        if view.per_page != PAGE_SIZE:
            params["per_page"] = str(view.per_page)
        for name in ("team", "department", "group"):
            if getattr(view, name):
                params[name] = getattr(view, name)
        if view.compare:
            params["compare"] = "1"
        if view.over is not None:
            params["over"] = str(view.over)
        return params

    def url(self, **changes: Any) -> str:
        return f"{PATH}?{urlencode(self.params(**changes))}"

    def export_url(self, granularity: str = "summary") -> str:
        params = self.params(page=1, per_page=PAGE_SIZE, group="", compare=False, over=None)
        params["sort"] = self.sort
        params["granularity"] = granularity
        return f"{EXPORT_PATH}?{urlencode(params)}"

    @property
    def sort_phrase(self) -> str:
        """``total tokens, descending``: the sort in words."""
        column, descending = parse_sort(self.sort)
        words = SORT_WORDS.get(column, column.replace("_", " "))
        return f"{words}, {'descending' if descending else 'ascending'}"

    def sort_url(self, key: str) -> str:
        """Clicking a header sorts by it; clicking the sorted header reverses."""
        column, descending = parse_sort(self.sort)
        if column == key:
            new_sort = key if descending else f"-{key}"
        else:
            new_sort = key if key == "name" else f"-{key}"
        return self.url(sort=new_sort, page=1)

    def compare_url(self) -> str:
        """The compare toggle; turning it off leaves a sort by change."""
        if self.compare and parse_sort(self.sort)[0] == CHANGE_SORT:
            return self.url(compare=False, sort=DEFAULT_SORT, page=1)
        return self.url(compare=not self.compare)

    def aria_sort(self, key: str) -> str:
        column, descending = parse_sort(self.sort)
        if column != key:
            return "none"
        return "descending" if descending else "ascending"


def parse_view(ctx: AppContext, request: Request) -> UsageView:
    """The view named by the request's query (InvalidView naming a bad parameter)."""
    query = request.query_params
    tz_name = query.get("tz") or request.cookies.get(TZ_COOKIE) or ""
    compare = query.get("compare") in {"1", "true", "on"}
    sort = query.get("sort") or None
    change_sort = compare and sort is not None and sort.lstrip("-") == CHANGE_SORT
    # The page's form may send empty fields: an empty one is a default.
    asked = report_params.report_params(
        start=query.get("start") or None,
        end=query.get("end") or None,
        tz=tz_name or None,
        q=query.get("q"),
        sort_by=None if change_sort else sort,
        default_tz=ctx.settings.timezone,
        now=ctx.clock(),
        span=report_params.REPORT,
        attributes={"team": query.get("team"), "department": query.get("department")},
    )
    group = query.get("group") or ""
    if group and group not in GROUPS:
        raise InvalidView("group", f"must be one of {', '.join(GROUPS)}")
    page_text = query.get("page") or "1"
    # ASCII digits only ("²" is a digit to str.isdigit, not to int), and few of them.
    if not (page_text.isascii() and page_text.isdigit() and len(page_text) <= 7):
        raise InvalidView("page", "must be a page number")
    if not 1 <= int(page_text) <= 1_000_000:
        raise InvalidView("page", "must be a page number")
    per_page = _per_page(query.get("per_page"))
    local_range = asked.local_range
    return UsageView(
        local_range.start,
        local_range.end,
        local_range.tz,
        today(local_range.tz, ctx.clock()),
        asked.users.search or "",
        sort if change_sort and sort is not None else asked.sort,
        int(page_text),
        tz_from_browser=bool(tz_name),
        per_page=per_page,
        team=query.get("team") or "",
        department=query.get("department") or "",
        group=group,
        compare=compare,
        over=_over(query.get("over")),
    )


def _over(value: str | None) -> int | None:
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and 1 <= int(value) <= 1000):
        raise InvalidView("over", "must be a percent of budget from 1 to 1000")
    return int(value)


def _per_page(value: str | None) -> int:
    if not value:
        return PAGE_SIZE
    if not value.isdigit() or int(value) not in PAGE_SIZES:
        raise InvalidView("per_page", f"must be one of {', '.join(map(str, PAGE_SIZES))}")
    return int(value)


def clamp_to_today(view: UsageView) -> tuple[UsageView, str | None]:
    """Dates after today hold no usage yet: move them to today, and say so."""
    if view.end <= view.today:
        return view, None
    start = min(view.start, view.today)
    clamped = replace(view, start=start, end=view.today)
    return clamped, (
        f"The dates asked for went past today ({formatting.short_date(view.today)}); "
        "the range now ends today."
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
    models: ModelUsageReport | None = None
    # The team and department filters' choices: (value, people), "no value" last.
    options: dict[str, list[tuple[str | None, int]]] = field(default_factory=dict)
    groups: list[GroupUsage] = field(default_factory=list)  # the By team view
    previous: Comparison | None = None  # the compare toggle: the previous range's usage
    # Each row's person's tightest budget this period (None: no budget exists).
    budgets: dict[str, BudgetUse] | None = None
    metrics: MetricSet = METRICS

    def budget_amount(self, use: BudgetUse, value: int) -> str:
        """A use, limit or remainder as the page writes it (money in dollars)."""
        shown = limit_json(self.metrics, use.budget.metric, value)
        return shown if isinstance(shown, str) else formatting.number(shown)

    @property
    def first(self) -> int:
        return self.view.offset + 1 if self.report.rows else 0

    @property
    def last(self) -> int:
        return self.view.offset + len(self.report.rows)

    @property
    def pages(self) -> int:
        return pages_for(self.report.total_users, self.view.per_page)

    def page_url(self, number: int) -> str | None:
        """The URL of page ``number``; None when it is this page or no page."""
        if number == self.view.page or not 1 <= number <= self.pages:
            return None
        return self.view.url(page=number)

    @property
    def range_phrase(self) -> str:
        return formatting.range_phrase(self.view.start, self.view.end)


def pages_for(users: int, per_page: int) -> int:
    return max(1, -(-users // per_page))


def _report(ctx: AppContext, view: UsageView) -> UserUsageReport:
    users = view.users
    if view.over is not None:
        over = ctx.budgets.people_over(view.over, now_us=now_us(ctx.clock))
        users = replace(users, user_pks=over)
    column, descending = parse_sort(view.sort)
    if column == CHANGE_SORT:
        return usage_by_change(
            ctx.store,
            local_range=view.local_range,
            users=users,
            descending=descending,
            limit=view.per_page,
            offset=view.offset,
        )
    return user_usage(
        ctx.store,
        local_range=view.local_range,
        users=users,
        sort=view.sort,
        limit=view.per_page,
        offset=view.offset,
    )


def filter_options(ctx: AppContext) -> dict[str, list[tuple[str | None, int]]]:
    """Each attribute's values in use, with their number of people; None (no value) last."""
    options = {}
    with ctx.store.read() as reader:
        for name in ("team", "department"):
            counts = reader.people_per_value(name, UserFilter())
            options[name] = sorted(
                counts.items(), key=lambda item: (item[0] is None, (item[0] or "").casefold())
            )
    return options


def load_page(ctx: AppContext, view: UsageView, *, with_options: bool = True) -> Page:
    """The page the view names; a page past the last one shows the last one. The
    filters' choices are read for a full page only (a fragment leaves the form as is)."""
    report = _report(ctx, view)
    last = pages_for(report.total_users, view.per_page)
    if view.page > last:
        view = replace(view, page=last)
        report = _report(ctx, view)
    models = model_usage(ctx.store, local_range=view.local_range, users=view.users)
    page = Page(view, report, models, filter_options(ctx) if with_options else {})
    if view.group:
        page.groups = usage_by_attribute(
            ctx.store, local_range=view.local_range, attribute=view.group, users=view.users
        )
    if view.compare:
        page.previous = previous_usage(ctx.store, local_range=view.local_range, users=view.users)
    if ctx.budgets.all():
        people = [row.user_id for row in report.rows]
        page.budgets = ctx.budgets.tightest_of(people, now_us=now_us(ctx.clock))
        page.metrics = ctx.budgets.metrics
    return page


def template_context(
    page: Page, error: str | None = None, *, notice: str | None = None, now: datetime
) -> dict[str, Any]:
    view = page.view
    return {
        "page": page,
        "view": view,
        "columns": COLUMNS,
        "groups_views": GROUPS,
        "no_value": report_params.NO_VALUE,
        "page_sizes": PAGE_SIZES,
        # Only the full page lists the zones (a fragment leaves the picker as it is).
        "zone_groups": lambda: zone_picker.zone_groups(now, view.tz.key),
        "error": error,
        "notice": notice,
        "nav_section": "reporting",
        "nav_page": "user-usage",
        "tz_offset": formatting.utc_offset(
            view.tz, datetime.combine(view.end, time(12), tzinfo=view.tz)
        ),
        "range_label": formatting.range_label(view.start, view.end, view.today),
        "fmt": formatting,
        "prices_path": PRICES_PATH,
    }
