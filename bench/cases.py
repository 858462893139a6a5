"""The reports the benchmark asks for, the same way in-process and over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tokenledger.localdays import LocalRange
from tokenledger.model_usage import ModelUsageReport, model_usage
from tokenledger.reports import UserUsageReport, user_usage
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore

RANGES = (("today", 1), ("7 days", 7), ("31 days", 31), ("365 days", 365))
SEARCH_TERM = "ngu"  # folds to match Nguyễn and other names; a few percent of users


@dataclass(frozen=True)
class ReportCase:
    """One User Usage report: the last ``days`` local days up to the dataset's end."""

    label: str
    days: int
    q: str | None = None
    sort: str = "-total_tokens"
    offset: int = 0
    limit: int = 50

    @property
    def name(self) -> str:
        variant = ""
        if self.q:
            variant = f", q={self.q}"
        if self.offset:
            variant += f", page {self.offset // self.limit + 1} by {self.sort}"
        return self.label + variant

    def local_range(self, end: datetime, tz: ZoneInfo) -> LocalRange:
        last = end.astimezone(tz).date()
        return LocalRange.of(last - timedelta(days=self.days - 1), last, tz)

    def query(self, end: datetime, tz: ZoneInfo) -> dict[str, Any]:
        """The HTTP query string of ``GET /api/v1/reports/user-usage``."""
        local_range = self.local_range(end, tz)
        params: dict[str, Any] = {
            "start": _iso(local_range.start),
            "end": _iso(local_range.end),
            "tz": tz.key,
            "sort": self.sort,
            "limit": self.limit,
            "offset": self.offset,
        }
        if self.q:
            params["q"] = self.q
        return params

    def run(self, db: Database, end: datetime, tz: ZoneInfo) -> Callable[[], UserUsageReport]:
        """The in-process report (what the server computes) as a callable."""
        local_range = self.local_range(end, tz)
        store = UsageStore(db)

        def report() -> UserUsageReport:
            return user_usage(
                store,
                local_range=local_range,
                q=self.q,
                sort=self.sort,
                limit=self.limit,
                offset=self.offset,
            )

        return report


def http_report(client: Any, params: dict[str, Any]) -> Callable[[], object]:
    """``GET /api/v1/reports/user-usage`` with ``params`` as a callable (body read)."""
    return http_get(client, "/api/v1/reports/user-usage", params)


def http_get(client: Any, path: str, params: dict[str, Any]) -> Callable[[], object]:
    """``GET path`` with ``params`` as a callable (body read)."""

    def get() -> object:
        response = client.get(path, params=params)
        if response.status_code != 200:
            raise RuntimeError(f"report answered {response.status_code}: {response.text[:300]}")
        return response.content

    return get


def model_report(db: Database, local_range: LocalRange) -> Callable[[], ModelUsageReport]:
    """The in-process model report (usage and cost per model) as a callable."""
    store = UsageStore(db)

    def report() -> ModelUsageReport:
        return model_usage(store, local_range=local_range)

    return report


def _iso(day: date) -> str:
    return day.isoformat()


def report_cases() -> list[ReportCase]:
    """Each range without and with a search term, and page 2 sorted by requests."""
    cases = []
    for label, days in RANGES:
        cases.append(ReportCase(label, days))
        cases.append(ReportCase(label, days, q=SEARCH_TERM))
        cases.append(ReportCase(label, days, sort="-requests", offset=50))
    return cases
