"""The shapes of the API's answers, for the OpenAPI document.

Handlers build plain dicts (fast for big reports); these models only document them,
and the schema fuzzing test checks every answer against them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from tokenledger.metrics import METRICS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldErrorOut(_Strict):
    code: str
    field: str
    message: str


class EventOutcome(_Strict):
    """What happened to the event at ``index`` of the request."""

    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    event_id: str | None = Field(None, description="Absent when the event had no string id.")
    code: str | None = Field(None, description="Why it was rejected (rejected only).")
    field: str | None = None
    message: str | None = None
    errors: list[FieldErrorOut] | None = Field(
        None, description="Every problem found, when there were several."
    )


class IngestResult(_Strict):
    accepted: int
    duplicates: int
    rejected: int
    results: list[EventOutcome]


def _metric_fields() -> dict[str, Any]:
    """One field per metric of the registry: an integer, or a decimal string for money."""
    fields: dict[str, Any] = {}
    for item in METRICS.declared:
        kind: Any = str if item.unit.money else int
        description = item.label + (" (US dollars, exact decimal)" if item.unit.money else "")
        fields[item.public] = (kind, Field(description=description))
    return fields


Metrics: type[BaseModel] = create_model("Metrics", __base__=_Strict, **_metric_fields())


class UserRow(Metrics):
    user_id: str
    name: str | None
    email: str | None
    first_request_at: str | None = Field(description="ISO 8601 in the report's zone.")
    last_request_at: str | None


class RangeOut(_Strict):
    start: str
    end: str
    start_at: str = Field(description="The range's first instant, in its zone.")
    end_at: str = Field(description="The instant just after the range, in its zone.")
    timezone: str
    events_retained_from: str | None = Field(
        None,
        description=(
            "When the range starts before the raw events kept by retention: the first "
            "instant whose individual events are kept, in the range's zone (totals stay "
            "exact; the events export starts there). Else null."
        ),
    )


class UserUsageReport(_Strict):
    range: RangeOut
    tz: str
    q: str
    sort: str
    limit: int
    offset: int
    total_users: int
    totals: Metrics
    users: list[UserRow]


class SeriesPoint(Metrics):
    start: str = Field(description="Local start of the hour or day, ISO 8601.")


class UsageSeries(_Strict):
    range: RangeOut
    tz: str
    interval: Literal["hour", "day"]
    points: list[SeriesPoint]


class OwnPriceOut(_Strict):
    """An own price: US dollars per million tokens, exact decimal strings."""

    id: int
    model: str
    provider: str | None = Field(description="None: any provider.")
    valid_from: str = Field(description="First UTC date it applies, YYYY-MM-DD.")
    input_per_million_usd: str
    cache_read_per_million_usd: str | None = Field(description="None: the input price.")
    cache_write_per_million_usd: str | None = Field(description="None: the input price.")
    output_per_million_usd: str


class OwnPrices(_Strict):
    prices: list[OwnPriceOut]


class OwnPriceIn(_Strict):
    """An own price to set (replacing the one of the same model, provider and date)."""

    model: str
    provider: str | None = None
    valid_from: str = Field(description="First UTC date it applies, YYYY-MM-DD.")
    input: str | float = Field(description="US dollars per million input tokens.")
    cache_read: str | float | None = Field(None, description="Default: the input price.")
    cache_write: str | float | None = Field(None, description="Default: the input price.")
    output: str | float = Field(description="US dollars per million output tokens.")


class ModelRow(Metrics):
    model: str = Field(description="As the events name it; empty when they name none.")
    provider: str = Field(description="Empty when the events name none.")
    cost_share: str | None = Field(
        description="This model's part of the range's cost, 0 to 1 (4 places); null when "
        "the range's cost is 0."
    )


class GroupTotals(Metrics):
    people_active: int = Field(description="People with requests in the range.")
    people: int = Field(description="Every person counted, with requests or not.")
    first_request_at: str | None
    last_request_at: str | None


class ModelUsageOut(_Strict):
    range: RangeOut
    tz: str
    q: str
    sort: str
    totals: Metrics
    models: list[ModelRow]


class GroupRow(GroupTotals):
    team: str | None = Field(None, description="With `by=team`; null: no team.")
    department: str | None = Field(None, description="With `by=department`; null: none.")
    label: str = Field(description='The value, or "No team" / "No department".')


class TeamUsageReport(_Strict):
    range: RangeOut
    tz: str
    by: Literal["team", "department"]
    q: str
    totals: GroupTotals
    groups: list[GroupRow]
