"""The query parameters the report routes share: how the API documents them, and
the one parser (:mod:`tokenledger.report_params`) that checks them.

FastAPI only converts types here (integers, booleans, choices); every rule of a text
parameter (its format, length, zone, range) is the parser's, so the API, the page and
the command line answer a bad value with the same message. The OpenAPI document still
states each rule (pattern, length, choices) for clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

from tokenledger import report_params
from tokenledger.ordering import sort_columns
from tokenledger.report_params import ReportParams, Span
from tokenledger.web.context import AppContext

DateParam = Annotated[
    str | None,
    Query(
        description="Local date YYYY-MM-DD (inclusive); default today in `tz`.",
        json_schema_extra={"pattern": report_params.DATE_PATTERN, "format": "date"},
    ),
]
TzParam = Annotated[
    str | None,
    Query(
        description="IANA time zone; default TOKENLEDGER_TIMEZONE.",
        json_schema_extra={"maxLength": report_params.MAX_ZONE},
    ),
]
QParam = Annotated[
    str | None,
    Query(
        description="Substring of name, e-mail or user id; case and accents ignored.",
        json_schema_extra={"maxLength": report_params.MAX_TEXT},
    ),
]
UserIdParam = Annotated[
    str | None,
    Query(
        description="Only this user (the `user.id` of the events).",
        json_schema_extra={"maxLength": report_params.MAX_USER_ID},
    ),
]
TeamParam = Annotated[
    str | None,
    Query(
        description=f"Only the people of this team; `{report_params.NO_VALUE}`: those without one.",
        json_schema_extra={"maxLength": report_params.MAX_ATTRIBUTE},
    ),
]
DepartmentParam = Annotated[
    str | None,
    Query(
        description="Only the people of this department; "
        f"`{report_params.NO_VALUE}`: those without one.",
        json_schema_extra={"maxLength": report_params.MAX_ATTRIBUTE},
    ),
]
SortParam = Annotated[
    str,
    Query(
        description=f"One of {', '.join(sort_columns())}; prefix '-' for descending.",
        json_schema_extra={
            "maxLength": report_params.MAX_SORT,
            "enum": [*sort_columns(), *(f"-{column}" for column in sort_columns())],
        },
    ),
]
LimitParam = Annotated[int, Query(ge=1, le=report_params.MAX_LIMIT)]
OffsetParam = Annotated[int, Query(ge=0, le=report_params.MAX_OFFSET)]


@dataclass(frozen=True)
class RangeQuery:
    """The local range a report route names (``start``, ``end``, ``tz``), as sent."""

    start: str | None = None
    end: str | None = None
    tz: str | None = None


@dataclass(frozen=True)
class PeopleQuery(RangeQuery):
    """The range and the people (search, team, department) a report route names."""

    q: str | None = None
    team: str | None = None
    department: str | None = None


async def range_query(
    start: DateParam = None, end: DateParam = None, tz: TzParam = None
) -> RangeQuery:
    return RangeQuery(start=start, end=end, tz=tz)


async def people_query(
    start: DateParam = None,
    end: DateParam = None,
    tz: TzParam = None,
    q: QParam = None,
    team: TeamParam = None,
    department: DepartmentParam = None,
) -> PeopleQuery:
    return PeopleQuery(start=start, end=end, tz=tz, q=q, team=team, department=department)


# Route parameters: one declaration of the shared query parameters, documented once.
# (The factories are async only so that FastAPI calls them on the event loop.)
RangeArgs = Annotated[RangeQuery, Depends(range_query)]
PeopleArgs = Annotated[PeopleQuery, Depends(people_query)]


def parse(
    ctx: AppContext,
    asked: RangeQuery,
    *,
    span: Span,
    user_id: str | None = None,
    sort: str | None = None,
) -> ReportParams:
    """The report a request names, in the app's default zone and at the app's clock
    (InvalidParameter, answered 400, naming a bad one)."""
    people = asked if isinstance(asked, PeopleQuery) else PeopleQuery()
    return report_params.report_params(
        start=asked.start,
        end=asked.end,
        tz=asked.tz,
        q=people.q,
        user_id=user_id,
        sort_by=sort,
        default_tz=ctx.settings.timezone,
        now=ctx.clock(),
        span=span,
        attributes={"team": people.team, "department": people.department},
    )
