"""Report parameters: one parser, and one set of messages, for every way to ask.

The JSON API, the User Usage page (and its htmx fragment), the CSV export and
``tokenledger export`` all name a report the same way: local dates ``start`` and
``end`` (inclusive; each defaults to today), an IANA zone ``tz``, a search ``q`` (and,
for series, a ``user_id``), a ``sort``, and for lists a ``limit`` and ``offset``. Each
is checked here; a bad one raises :class:`InvalidParameter` naming it, which the web
layer answers with a 400 (or shows on the page) and the command line with its usage
error.

Every range is bounded, so that no request can ask for unbounded work (see
:data:`SPANS` and docs/reliability.md, "Limits").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from tokenledger.localdays import LocalRange, parse_date, zone
from tokenledger.metrics import METRICS, MetricSet
from tokenledger.ordering import DEFAULT_SORT, parse_sort
from tokenledger.usage import UserFilter

MAX_TEXT = 200  # characters of a search
MAX_USER_ID = 255
MAX_ATTRIBUTE = 255  # a team or department
# The value of a team or department filter that selects the people without one.
NO_VALUE = "(none)"
MAX_ZONE = 64
MAX_SORT = 40
MAX_LIMIT = 500  # rows of one page of the JSON report
MAX_OFFSET = 10_000_000
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


class InvalidParameter(ValueError):
    """A report parameter that cannot be used; ``str()`` is ``"<field>: <message>"``."""

    code = "invalid_parameter"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = f"{field}: {message}"


@dataclass(frozen=True)
class Span:
    """The longest range one kind of request may cover, and how its 400 reads."""

    max_days: int
    noun: str  # "reports", "daily series", ...
    field: str = "end"  # the parameter the message names

    def check(self, local_range: LocalRange) -> None:
        days = (local_range.end - local_range.start).days + 1
        if days > self.max_days:
            raise InvalidParameter(self.field, f"{self.noun} cover at most {self.max_days} days")


# A report (JSON or page), a summary export and a daily series answer one row per user
# or day, so ten years are cheap; an hourly series answers one point per hour; a daily
# export does one query per local day and an events export reads every event: each is
# bounded so that one request cannot keep the server busy for long.
MAX_DAYS = 3660  # ten years
REPORT = Span(MAX_DAYS, "reports")
DAILY_SERIES = Span(MAX_DAYS, "daily series", field="interval")
HOURLY_SERIES = Span(93, "hourly series", field="interval")
EXPORTS = {
    "summary": Span(MAX_DAYS, "summary exports"),
    "daily": Span(MAX_DAYS, "daily exports"),
    "events": Span(MAX_DAYS, "events exports"),
    "models": Span(MAX_DAYS, "model exports"),
    "teams": Span(MAX_DAYS, "team exports"),
}
SPANS = (REPORT, DAILY_SERIES, HOURLY_SERIES, *EXPORTS.values())


def local_range(
    *,
    start: str | None,
    end: str | None,
    tz: str | None,
    default_tz: str,
    now: datetime,
    span: Span,
) -> LocalRange:
    """The range named by ``start``, ``end`` and ``tz``; each missing date (None) is
    today in the zone, a missing or empty zone is ``default_tz``."""
    if tz is not None and len(tz) > MAX_ZONE:
        raise InvalidParameter("tz", f"must have at most {MAX_ZONE} characters")
    try:
        zone_info = zone(tz or default_tz)
    except ValueError as exc:
        raise InvalidParameter("tz", str(exc)) from exc
    first, last = _date(start, "start"), _date(end, "end")
    try:
        found = LocalRange.around(first, last, zone_info, now)
    except ValueError as exc:
        field = "end" if "before start" in str(exc) else "start"
        raise InvalidParameter(field, str(exc)) from exc
    span.check(found)
    return found


def _date(value: str | None, field: str) -> date | None:
    if value is None:
        return None
    try:
        return parse_date(value)
    except ValueError as exc:
        raise InvalidParameter(field, str(exc)) from exc


def text(value: str | None, field: str, *, max_length: int = MAX_TEXT) -> str | None:
    """A text to match (a search, a user id): no NUL (PostgreSQL cannot hold it in
    text, and nothing stored contains one) and a bounded length."""
    if value is None:
        return None
    if "\x00" in value:
        raise InvalidParameter(field, "must not contain NUL")
    if len(value) > max_length:
        raise InvalidParameter(field, f"must have at most {max_length} characters")
    return value


def sort(value: str | None, metrics: MetricSet = METRICS) -> str:
    """A sort key (``-total_tokens`` when there is none)."""
    if value is None:
        return DEFAULT_SORT
    if len(value) > MAX_SORT:
        raise InvalidParameter("sort", f"must have at most {MAX_SORT} characters")
    try:
        parse_sort(value, metrics)
    except ValueError as exc:
        raise InvalidParameter("sort", str(exc)) from exc
    return value


def bounded(value: int, field: str, *, low: int, high: int) -> int:
    """An integer parameter within ``[low, high]``."""
    if not low <= value <= high:
        raise InvalidParameter(field, f"must be between {low} and {high}")
    return value


@dataclass(frozen=True)
class ReportParams:
    """A report's range, whose usage it covers, and (for lists) the order of rows."""

    local_range: LocalRange
    users: UserFilter
    sort: str = DEFAULT_SORT


def report_params(
    *,
    start: str | None,
    end: str | None,
    tz: str | None,
    q: str | None = None,
    user_id: str | None = None,
    sort_by: str | None = None,
    default_tz: str,
    now: datetime,
    span: Span,
    attributes: Mapping[str, str | None] | None = None,
) -> ReportParams:
    """Every common parameter at once, checked in the order a person reads them.
    ``attributes`` are filters on people's attributes by name (``{"team": "Ops"}``):
    empty or None is no filter, :data:`NO_VALUE` the people without one."""
    found = local_range(start=start, end=end, tz=tz, default_tz=default_tz, now=now, span=span)
    users = UserFilter(
        q=text(q, "q"),
        user_id=text(user_id, "user_id", max_length=MAX_USER_ID),
        where=attribute_filter(attributes or {}),
    )
    return ReportParams(found, users, sort(sort_by))


def attribute_filter(values: Mapping[str, str | None]) -> tuple[tuple[str, str | None], ...]:
    """The ``UserFilter.where`` of attribute filters as sent (see :func:`report_params`)."""
    where: list[tuple[str, str | None]] = []
    for name, value in values.items():
        checked = text(value, name, max_length=MAX_ATTRIBUTE)
        if checked:
            where.append((name, None if checked == NO_VALUE else checked))
    return tuple(where)
