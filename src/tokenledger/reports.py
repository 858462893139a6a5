"""Who used how much between two local dates: the User Usage report and usage series.

Reports never scan raw events. A range ``[start, end)`` in UTC is split by
:func:`~tokenledger.localdays.plan_buckets` into whole UTC days (answered from the
cumulative day rollup with two index seeks per user, however long the range), and
whole hours and quarter hours at the edges (small scans of the bucket rollups). Only a
zone with a historical non-quarter-hour offset leaves a sliver for the raw events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import TextClause

from tokenledger.localdays import BucketPlan, LocalRange, plan_buckets
from tokenledger.search import like_pattern
from tokenledger.store.database import Database
from tokenledger.store.rollups import RAW_SUMS
from tokenledger.store.schema import METRICS

_N = len(METRICS)
SORT_COLUMNS = (
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
)
_TEXT_SORTS = {"user_id", "name", "email"}


@dataclass(slots=True)
class Usage:
    """Sums over a set of requests."""

    requests: int = 0
    error_requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    duration_ms: int = 0
    first_us: int | None = None
    last_us: int | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, values: Sequence[Any], first_us: int | None, last_us: int | None) -> None:
        self.requests += values[0]
        self.error_requests += values[1]
        self.input_tokens += values[2]
        self.output_tokens += values[3]
        self.cache_read_tokens += values[4]
        self.cache_write_tokens += values[5]
        self.reasoning_tokens += values[6]
        self.duration_ms += values[7]
        if first_us is not None and (self.first_us is None or first_us < self.first_us):
            self.first_us = first_us
        if last_us is not None and (self.last_us is None or last_us > self.last_us):
            self.last_us = last_us

    def merge(self, other: Usage) -> None:
        # Field by field: totals merge every user's row, so this runs 10,000s of times.
        self.requests += other.requests
        self.error_requests += other.error_requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.duration_ms += other.duration_ms
        first_us, last_us = other.first_us, other.last_us
        if first_us is not None and (self.first_us is None or first_us < self.first_us):
            self.first_us = first_us
        if last_us is not None and (self.last_us is None or last_us > self.last_us):
            self.last_us = last_us

    def metrics(self) -> dict[str, int]:
        values = {name: getattr(self, name) for name in METRICS}
        values["total_tokens"] = self.total_tokens
        return values


@dataclass(slots=True)
class UserUsage:
    """One row of the User Usage report."""

    user_pk: int
    user_id: str
    name: str | None
    email: str | None
    usage: Usage


@dataclass
class UserUsageReport:
    range: LocalRange
    total_users: int
    totals: Usage
    rows: list[UserUsage]


@dataclass(frozen=True)
class UserFilter:
    """Which users a report covers: a search text and/or one user id."""

    q: str | None = None
    user_id: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.q and self.q.strip()) or self.user_id is not None

    def sql(self, alias: str = "users") -> tuple[str, dict[str, Any]]:
        clauses, params = [], {}
        if self.q and self.q.strip():
            clauses.append(f"{alias}.search_key LIKE :q_pattern ESCAPE '\\'")
            params["q_pattern"] = like_pattern(self.q)
        if self.user_id is not None:
            clauses.append(f"{alias}.external_id = :user_id")
            params["user_id"] = self.user_id
        return " AND ".join(clauses) or "1 = 1", params


class UsageReader:
    """Range queries over the rollups, on one connection (one snapshot)."""

    def __init__(self, db: Database, conn: Connection) -> None:
        self.db = db
        self.conn = conn

    # -- per user ---------------------------------------------------------------

    def per_user(
        self, start_us: int, end_us: int, users: UserFilter, *, with_first: bool = True
    ) -> dict[int, Usage]:
        """Usage per user pk over ``[start_us, end_us)`` (users with requests only)."""
        plan = plan_buckets(start_us, end_us)
        result: dict[int, Usage] = {}
        if plan.days is not None:
            self._add_days(result, plan, start_us, end_us, users)
        self._add_edges(result, plan, users)
        if with_first and plan.days is not None:
            self.fill_first(result, plan)
        return result

    def _add_edges(self, result: dict[int, Usage], plan: BucketPlan, users: UserFilter) -> None:
        """The hour, quarter-hour and raw pieces of the range, in one statement: a
        search text is matched once (a scan of the users table; no index serves a
        substring) and only the matching users' rows leave the database."""
        parts: list[str] = []
        params: dict[str, Any] = {}
        pieces = [("rollup_user_hour", "bucket", r) for r in plan.hours]
        pieces += [("rollup_user_quarter", "bucket", r) for r in plan.quarters]
        pieces += [("events", "started_us", r) for r in plan.raw]
        for index, (table, column, (first, last)) in enumerate(pieces):
            columns = _RAW_ROW if table == "events" else _BUCKET_ROW
            parts.append(
                f"SELECT {columns} FROM {table} "
                f"WHERE {column} >= :lo{index} AND {column} < :hi{index}"
            )
            params[f"lo{index}"], params[f"hi{index}"] = first, last
        if not parts:
            return
        prefix = member = ""
        if users.active:
            match_sql, match_params = users.sql()
            prefix = f"WITH m AS MATERIALIZED (SELECT id FROM users WHERE {match_sql}) "
            member = " AND user_pk IN (SELECT id FROM m)"
            params.update(match_params)
        union = " UNION ALL ".join(part + member for part in parts)
        query = (
            f"{prefix}SELECT user_pk, {_sums()}, min(first_us), max(last_us) "
            f"FROM ({union}) AS e GROUP BY user_pk"
        )
        self._add_rows(result, text(query), params)

    def _add_rows(
        self, result: dict[int, Usage], query: TextClause, params: dict[str, Any]
    ) -> None:
        for row in self.conn.execute(query, params):
            usage = result.get(row[0])
            if usage is None:  # the metrics, first_us, last_us: Usage's own field order
                result[row[0]] = Usage(*row[1 : 3 + _N])
            else:
                usage.add(row[1 : 1 + _N], row[1 + _N], row[2 + _N])

    def _add_days(
        self,
        result: dict[int, Usage],
        plan: BucketPlan,
        start_us: int,
        end_us: int,
        users: UserFilter,
    ) -> None:
        assert plan.days is not None
        day_start, day_end = plan.days
        match_sql, match_params = users.sql("u")
        diffs = ", ".join(f"hi.cum_{name} - coalesce(lo.cum_{name}, 0)" for name in METRICS)
        # Users whose activity span misses the range cannot have usage in it.
        matched = (
            f"SELECT u.id FROM users u WHERE {match_sql} AND u.last_us >= :a AND u.first_us < :b"
        )
        if self.db.is_sqlite:
            query = text(
                f"WITH m AS MATERIALIZED ({matched}), "
                "s AS MATERIALIZED (SELECT m.id AS user_pk, "
                " (SELECT d.id FROM rollup_user_day d WHERE d.user_pk = m.id AND d.day < :de "
                "  ORDER BY d.day DESC LIMIT 1) AS hi_id, "
                " (SELECT d.id FROM rollup_user_day d WHERE d.user_pk = m.id AND d.day < :ds "
                "  ORDER BY d.day DESC LIMIT 1) AS lo_id FROM m) "
                f"SELECT s.user_pk, {diffs}, NULL, hi.day_last_us FROM s "
                "JOIN rollup_user_day hi ON hi.id = s.hi_id "
                "LEFT JOIN rollup_user_day lo ON lo.id = s.lo_id "
                "WHERE hi.day >= :ds"
            )
        else:
            query = text(
                f"SELECT m.id, {diffs}, NULL, hi.day_last_us FROM ({matched}) m "
                "JOIN LATERAL (SELECT * FROM rollup_user_day d WHERE d.user_pk = m.id "
                " AND d.day < :de ORDER BY d.day DESC LIMIT 1) hi ON hi.day >= :ds "
                "LEFT JOIN LATERAL (SELECT * FROM rollup_user_day d WHERE d.user_pk = m.id "
                " AND d.day < :ds ORDER BY d.day DESC LIMIT 1) lo ON true"
            )
        self._add_rows(
            result,
            query,
            {"ds": day_start, "de": day_end, "a": start_us, "b": end_us, **match_params},
        )

    def fill_first(self, result: dict[int, Usage], plan: BucketPlan | None = None) -> None:
        """Set ``first_us`` where the whole-day part may hold the first request.

        The day part gives sums and the last request but not the first; one seek per
        user finds the first day with activity. Call it only for the rows shown
        unless sorting by first request.
        """
        if plan is None or plan.days is None:
            return
        day_start, day_end = plan.days
        query = text(
            "SELECT day_first_us FROM rollup_user_day WHERE user_pk = :pk "
            "AND day >= :ds AND day < :de ORDER BY day LIMIT 1"
        )
        for user_pk, usage in result.items():
            first = self.conn.execute(
                query, {"pk": user_pk, "ds": day_start, "de": day_end}
            ).scalar()
            if first is not None and (usage.first_us is None or first < usage.first_us):
                usage.first_us = first

    def profiles(self, user_pks: Iterable[int]) -> dict[int, tuple[str, str | None, str | None]]:
        """``{pk: (external_id, name, email)}``."""
        found: dict[int, tuple[str, str | None, str | None]] = {}
        pks = list(user_pks)
        query = text("SELECT id, external_id, name, email FROM users WHERE id IN :ids").bindparams(
            bindparam("ids", expanding=True)
        )
        for start in range(0, len(pks), 900):
            for row in self.conn.execute(query, {"ids": pks[start : start + 900]}):
                found[row[0]] = (row[1], row[2], row[3])
        return found

    def matching_users(
        self, users: UserFilter
    ) -> Iterator[tuple[int, str, str | None, str | None]]:
        match_sql, params = users.sql()
        yield from self.conn.execute(
            text(f"SELECT id, external_id, name, email FROM users WHERE {match_sql}"), params
        )

    # -- series -------------------------------------------------------------------

    def series(self, buckets: Sequence[tuple[int, int]], users: UserFilter) -> list[Usage]:
        """Usage for each ``[start_us, end_us)`` in ``buckets`` (adjacent, ascending)."""
        plans = [plan_buckets(start, end, use_days=False) for start, end in buckets]
        hours = {h for plan in plans for lo, hi in plan.hours for h in range(lo, hi)}
        quarters = {q for plan in plans for lo, hi in plan.quarters for q in range(lo, hi)}
        hour_rows = self._bucket_sums("hour", hours, users)
        quarter_rows = self._bucket_sums("quarter", quarters, users)
        out = []
        for plan in plans:
            usage = Usage()
            for lo, hi in plan.hours:
                for h in range(lo, hi):
                    if h in hour_rows:
                        usage.merge(hour_rows[h])
            for lo, hi in plan.quarters:
                for q in range(lo, hi):
                    if q in quarter_rows:
                        usage.merge(quarter_rows[q])
            for lo, hi in plan.raw:
                usage.merge(self._raw_sum(lo, hi, users))
            out.append(usage)
        return out

    def _bucket_sums(
        self, grain: Literal["hour", "quarter"], wanted: set[int], users: UserFilter
    ) -> dict[int, Usage]:
        if not wanted:
            return {}
        lo, hi = min(wanted), max(wanted) + 1
        if users.active:
            match_sql, params = users.sql()
            query = text(
                f"SELECT bucket, {_sums()}, min(first_us), max(last_us) FROM rollup_user_{grain} "
                f"WHERE bucket >= :lo AND bucket < :hi AND user_pk IN "
                f"(SELECT id FROM users WHERE {match_sql}) GROUP BY bucket"
            )
        else:
            params = {}
            names = ", ".join(METRICS)
            query = text(
                f"SELECT bucket, {names}, first_us, last_us FROM rollup_total_{grain} "
                "WHERE bucket >= :lo AND bucket < :hi"
            )
        if grain == "quarter" and len(wanted) < (hi - lo) // 4:
            # Sparse quarter hours (the edges of local hours or days): look them up.
            query = text(
                str(query).replace("bucket >= :lo AND bucket < :hi", "bucket IN :wanted")
            ).bindparams(bindparam("wanted", expanding=True))
            params = {**params, "wanted": sorted(wanted)}
        found: dict[int, Usage] = {}
        for row in self.conn.execute(query, {"lo": lo, "hi": hi, **params}):
            usage = found[row[0]] = Usage()
            usage.add(row[1 : 1 + _N], row[1 + _N], row[2 + _N])
        return found

    def _raw_sum(self, lo: int, hi: int, users: UserFilter) -> Usage:
        match_sql, params = users.sql()
        member = f" AND user_pk IN (SELECT id FROM users WHERE {match_sql})" if users.active else ""
        row = self.conn.execute(
            text(
                f"SELECT {_raw_sums()}, min(started_us), max(started_us) FROM events "
                f"WHERE started_us >= :lo AND started_us < :hi{member}"
            ),
            {"lo": lo, "hi": hi, **params},
        ).one()
        usage = Usage()
        usage.add([value or 0 for value in row[:_N]], row[_N], row[_N + 1])
        return usage


def _sums() -> str:
    # CAST: PostgreSQL's sum(bigint) is numeric.
    return ", ".join(f"CAST(sum({name}) AS BIGINT)" for name in METRICS)


_BUCKET_ROW = ", ".join(("user_pk", *METRICS, "first_us", "last_us"))
# One raw event as a bucket row (columns named as in the bucket tables).
_RAW_ROW = (
    "user_pk, 1 AS requests, CASE WHEN status = 'error' THEN 1 ELSE 0 END AS error_requests, "
    "input_tokens, output_tokens, coalesce(cache_read_tokens, 0) AS cache_read_tokens, "
    "coalesce(cache_write_tokens, 0) AS cache_write_tokens, "
    "coalesce(reasoning_tokens, 0) AS reasoning_tokens, duration_ms, "
    "started_us AS first_us, started_us AS last_us"
)


def _raw_sums() -> str:
    return ", ".join(f"CAST({expression} AS BIGINT)" for expression in RAW_SUMS)


# -- the report --------------------------------------------------------------------


def parse_sort(sort: str) -> tuple[str, bool]:
    """``"-total_tokens"`` -> ``("total_tokens", True)``; ValueError if unknown."""
    descending = sort.startswith("-")
    column = sort[1:] if descending else sort
    if column not in SORT_COLUMNS:
        raise ValueError(f"unknown sort column {column!r}; one of {', '.join(SORT_COLUMNS)}")
    return column, descending


def _metric_key(column: str) -> Any:
    def key(row: UserUsage) -> int:
        usage = row.usage
        if column == "total_tokens":
            return usage.total_tokens
        if column in {"first_request_at", "last_request_at"}:
            value = usage.first_us if column == "first_request_at" else usage.last_us
            return value if value is not None else -(2**63)
        result: int = getattr(usage, column)
        return result

    return key


def _text_key(column: str) -> Any:
    def key(row: UserUsage) -> tuple[str, str]:
        value: str = getattr(row, column) or ""
        return (value.casefold(), value)

    return key


def sort_rows(rows: list[UserUsage], sort: str) -> None:
    """Sort in place by ``sort``; ties broken by user id (ascending)."""
    column, descending = parse_sort(sort)
    key = _text_key(column) if column in _TEXT_SORTS else _metric_key(column)
    rows.sort(key=lambda row: row.user_id)
    rows.sort(key=key, reverse=descending)


def _fill_profiles(reader: UsageReader, rows: Sequence[UserUsage]) -> None:
    profiles = reader.profiles(row.user_pk for row in rows)
    for row in rows:
        row.user_id, row.name, row.email = profiles[row.user_pk]


def _sorted_window(
    reader: UsageReader, rows: list[UserUsage], sort: str, window: slice
) -> list[UserUsage]:
    """``rows`` sorted by a usage column, exact (ties by user id) inside ``window``.

    Sorting 10,000 rows by a number is cheap; fetching every user id for the tie
    break is not, so ids are fetched only for the rows that tie with the window's
    edges. Rows outside the window stay in number order.
    """
    column, descending = parse_sort(sort)
    key = _metric_key(column)
    rows.sort(key=key, reverse=descending)
    first, stop, _ = window.indices(len(rows))
    if first >= stop:
        return rows
    low_key, high_key = key(rows[first]), key(rows[stop - 1])
    lo = first
    while lo > 0 and key(rows[lo - 1]) == low_key:
        lo -= 1
    hi = stop
    while hi < len(rows) and key(rows[hi]) == high_key:
        hi += 1
    block = rows[lo:hi]
    _fill_profiles(reader, block)
    block.sort(key=lambda row: row.user_id)
    block.sort(key=key, reverse=descending)
    rows[lo:hi] = block
    return rows


def all_rows(
    reader: UsageReader,
    local_range: LocalRange,
    users: UserFilter,
    *,
    sort: str,
    include_inactive: bool = False,
    window: slice | None = None,
) -> list[UserUsage]:
    """Every matching user's row in report order.

    With ``window`` (a page), only the rows in it are guaranteed to carry first
    request, user id, name and e-mail; without, every row does (exports).
    """
    column, _ = parse_sort(sort)
    plan = plan_buckets(local_range.start_us, local_range.end_us)
    everything = window is None or column in _TEXT_SORTS or column == "first_request_at"
    usage = reader.per_user(local_range.start_us, local_range.end_us, users, with_first=False)
    if include_inactive:
        rows = [
            UserUsage(pk, user_id, name, email, usage.get(pk) or Usage())
            for pk, user_id, name, email in reader.matching_users(users)
        ]
    else:
        rows = [UserUsage(pk, "", None, None, values) for pk, values in usage.items()]
        if everything:
            _fill_profiles(reader, rows)
    if everything:
        reader.fill_first({row.user_pk: row.usage for row in rows if row.usage.requests}, plan)
        sort_rows(rows, sort)
        return rows
    assert window is not None
    rows = _sorted_window(reader, rows, sort, window)
    page = rows[window]
    reader.fill_first({row.user_pk: row.usage for row in page if row.usage.requests}, plan)
    if not include_inactive:
        _fill_profiles(reader, page)
    return rows


def user_usage(
    db: Database,
    *,
    local_range: LocalRange,
    q: str | None = None,
    sort: str = "-total_tokens",
    limit: int = 50,
    offset: int = 0,
    include_inactive: bool = False,
) -> UserUsageReport:
    """The User Usage report: one page of rows plus totals over all matching users."""
    window = slice(offset, offset + limit)
    with db.read() as conn:
        rows = all_rows(
            UsageReader(db, conn),
            local_range,
            UserFilter(q=q),
            sort=sort,
            include_inactive=include_inactive,
            window=window,
        )
    totals = Usage()
    for row in rows:
        totals.merge(row.usage)
    totals.first_us = None  # not known without a seek per user; reports omit it
    return UserUsageReport(local_range, len(rows), totals, rows[window])


@dataclass
class SeriesPoint:
    start: datetime
    usage: Usage = field(default_factory=Usage)


def usage_series(
    db: Database,
    *,
    local_range: LocalRange,
    interval: Literal["hour", "day"],
    q: str | None = None,
    user_id: str | None = None,
) -> list[SeriesPoint]:
    """Usage per local hour or day of ``local_range`` (zero-filled)."""
    if interval == "day":
        starts: list[datetime] = []
        buckets = []
        for day, lo, hi in local_range.day_bounds():
            starts.append(datetime(day.year, day.month, day.day, tzinfo=local_range.tz))
            buckets.append((lo, hi))
    else:
        hours = list(local_range.hour_bounds())
        starts = [start for start, _, _ in hours]
        buckets = [(lo, hi) for _, lo, hi in hours]
    with db.read() as conn:
        values = UsageReader(db, conn).series(buckets, UserFilter(q=q, user_id=user_id))
    return [SeriesPoint(start, usage) for start, usage in zip(starts, values, strict=True)]
