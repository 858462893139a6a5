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
from tokenledger.search import fold
from tokenledger.store.database import Database
from tokenledger.store.rollups import RAW_SUMS
from tokenledger.store.schema import METRICS

_N = len(METRICS)
# Usage as a plain list: the metrics in METRICS order, then first_us and last_us.
Raw = list[Any]
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

    def sql(self, alias: str = "users", *, sqlite: bool) -> tuple[str, dict[str, Any]]:
        """A WHERE condition on ``alias`` (a users row) and its parameters.

        The search is a plain substring test of the folded text (instr / strpos): no
        pattern language to escape, and faster than LIKE on 100,000s of users.
        """
        clauses, params = [], {}
        if self.q and self.q.strip():
            function = "instr" if sqlite else "strpos"
            clauses.append(f"{function}({alias}.search_key, :q_folded) > 0")
            params["q_folded"] = fold(self.q.strip())
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
        raw = self.per_user_raw(start_us, end_us, users)
        if with_first:
            self.fill_first(raw, plan_buckets(start_us, end_us))
        return {pk: Usage(*values) for pk, values in raw.items()}

    def per_user_raw(self, start_us: int, end_us: int, users: UserFilter) -> dict[int, Raw]:
        """Like :meth:`per_user` but as plain lists (metrics, first_us, last_us), without
        first requests from whole days (see :meth:`fill_first`): a report over 10,000s of
        users builds no object per user.

        One statement: the matching users are found once (a search text is a scan of
        the users table; no index serves a substring), then the whole days (two index
        seeks per user) and the edges (scans of the hour and quarter rollups).
        """
        plan = plan_buckets(start_us, end_us)
        params: dict[str, Any] = {"a": start_us, "b": end_us}
        match_sql, match_params = users.sql("u", sqlite=self.db.is_sqlite)
        params.update(match_params)
        # Users whose activity span misses the range cannot have usage in it.
        ctes = [
            "m AS MATERIALIZED (SELECT u.id FROM users u "
            f"WHERE {match_sql} AND u.last_us >= :a AND u.first_us < :b)"
        ]
        selects: list[str] = []
        if plan.days is not None:
            params["ds"], params["de"] = plan.days
            ctes.extend(self._day_ctes())
            selects.append(self._day_select())
        edges = self._edge_select(plan, params, filtered=users.active)
        if edges:
            selects.append(edges)
        result: dict[int, Raw] = {}
        if selects:
            query = f"WITH {', '.join(ctes)} " + " UNION ALL ".join(selects)
            self._add_rows(result, text(query), params)
        return result

    def _day_ctes(self) -> list[str]:
        if not self.db.is_sqlite:
            return []
        return [
            "s AS MATERIALIZED (SELECT m.id AS user_pk, "
            " (SELECT d.id FROM rollup_user_day d WHERE d.user_pk = m.id AND d.day < :de "
            "  ORDER BY d.day DESC LIMIT 1) AS hi_id, "
            " (SELECT d.id FROM rollup_user_day d WHERE d.user_pk = m.id AND d.day < :ds "
            "  ORDER BY d.day DESC LIMIT 1) AS lo_id FROM m)"
        ]

    def _day_select(self) -> str:
        """The whole days: each user's running totals at the end minus at the start."""
        diffs = ", ".join(f"hi.cum_{name} - coalesce(lo.cum_{name}, 0)" for name in METRICS)
        if self.db.is_sqlite:  # ids by seek in the CTE, then rows by rowid
            return (
                f"SELECT s.user_pk, {diffs}, NULL, hi.day_last_us FROM s "
                "JOIN rollup_user_day hi ON hi.id = s.hi_id "
                "LEFT JOIN rollup_user_day lo ON lo.id = s.lo_id "
                "WHERE hi.day >= :ds"
            )
        return (
            f"SELECT m.id, {diffs}, NULL, hi.day_last_us FROM m "
            "JOIN LATERAL (SELECT * FROM rollup_user_day d WHERE d.user_pk = m.id "
            " AND d.day < :de ORDER BY d.day DESC LIMIT 1) hi ON hi.day >= :ds "
            "LEFT JOIN LATERAL (SELECT * FROM rollup_user_day d WHERE d.user_pk = m.id "
            " AND d.day < :ds ORDER BY d.day DESC LIMIT 1) lo ON true"
        )

    @staticmethod
    def _edge_select(plan: BucketPlan, params: dict[str, Any], *, filtered: bool) -> str:
        """The hour, quarter-hour and raw pieces of the range, summed per user."""
        parts: list[str] = []
        pieces = [("rollup_user_hour", "bucket", r) for r in plan.hours]
        pieces += [("rollup_user_quarter", "bucket", r) for r in plan.quarters]
        pieces += [("events", "started_us", r) for r in plan.raw]
        member = " AND user_pk IN (SELECT id FROM m)" if filtered else ""
        for index, (table, column, (first, last)) in enumerate(pieces):
            columns = _RAW_ROW if table == "events" else _BUCKET_ROW
            parts.append(
                f"SELECT {columns} FROM {table} "
                f"WHERE {column} >= :lo{index} AND {column} < :hi{index}{member}"
            )
            params[f"lo{index}"], params[f"hi{index}"] = first, last
        if not parts:
            return ""
        return (
            f"SELECT user_pk, {_sums()}, min(first_us), max(last_us) "
            f"FROM ({' UNION ALL '.join(parts)}) AS e GROUP BY user_pk"
        )

    def _add_rows(self, result: dict[int, Raw], query: TextClause, params: dict[str, Any]) -> None:
        """Add each row ``(user_pk, metrics..., first_us, last_us)`` to ``result``."""
        for row in self.conn.execute(query, params).all():
            current = result.get(row[0])
            if current is None:
                result[row[0]] = list(row[1:])
                continue
            for i in range(_N):
                current[i] += row[1 + i]
            first_us, last_us = row[1 + _N], row[2 + _N]
            if first_us is not None and (current[_N] is None or first_us < current[_N]):
                current[_N] = first_us
            if last_us is not None and (current[_N + 1] is None or last_us > current[_N + 1]):
                current[_N + 1] = last_us

    def fill_first(self, result: dict[int, Raw], plan: BucketPlan | None = None) -> None:
        """Set the first request where the whole-day part may hold it.

        The day part gives sums and the last request but not the first; one seek per
        user finds the first day with activity. Call it only for the rows shown
        unless sorting by first request.
        """
        if plan is None or plan.days is None:
            return
        day_start, day_end = plan.days
        # One statement per 900 users (SQLite's bound-parameter budget), not one per user.
        query = text(
            "SELECT u.id, (SELECT d.day_first_us FROM rollup_user_day d "
            " WHERE d.user_pk = u.id AND d.day >= :ds AND d.day < :de "
            " ORDER BY d.day LIMIT 1) FROM users u WHERE u.id IN :pks"
        ).bindparams(bindparam("pks", expanding=True))
        pks = list(result)
        for start in range(0, len(pks), 900):
            params = {"pks": pks[start : start + 900], "ds": day_start, "de": day_end}
            for user_pk, first in self.conn.execute(query, params):
                values = result[user_pk]
                if first is not None and (values[_N] is None or first < values[_N]):
                    values[_N] = first

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
        match_sql, params = users.sql(sqlite=self.db.is_sqlite)
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
            match_sql, params = users.sql(sqlite=self.db.is_sqlite)
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
        match_sql, params = users.sql(sqlite=self.db.is_sqlite)
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


_METRIC_INDEX = {name: index for index, name in enumerate(METRICS)}
_MISSING = -(2**63)  # sorts "no request" before every instant


def _raw_key(column: str) -> Any:
    """Sort key of a :data:`Raw` for a usage column."""
    if column == "total_tokens":
        return lambda raw: raw[2] + raw[3]
    if column in {"first_request_at", "last_request_at"}:
        index = _N if column == "first_request_at" else _N + 1
        return lambda raw: _MISSING if raw[index] is None else raw[index]
    index = _METRIC_INDEX[column]
    return lambda raw: raw[index]


def _text_key(value: str | None) -> tuple[str, str, str]:
    """Names sort as search matches them: folded ("Åsa" with the A's, "Łukasz" with the
    L's), then case-folded and as written, so the order is total."""
    text_value = value or ""
    return (fold(text_value), text_value.casefold(), text_value)


def _profile_key(column: str) -> Any:
    position = {"user_id": 0, "name": 1, "email": 2}[column]
    return lambda profile: _text_key(profile[position])


def sort_rows(rows: list[UserUsage], sort: str) -> None:
    """Sort in place by ``sort``; ties broken by user id (ascending)."""
    column, descending = parse_sort(sort)
    rows.sort(key=lambda row: row.user_id)
    if column in _TEXT_SORTS:
        rows.sort(key=lambda row: _text_key(getattr(row, column)), reverse=descending)
    else:
        key = _raw_key(column)
        rows.sort(key=lambda row: key(_as_raw(row.usage)), reverse=descending)


def _as_raw(usage: Usage) -> Raw:
    return [*(getattr(usage, name) for name in METRICS), usage.first_us, usage.last_us]


Profile = tuple[str, str | None, str | None]


def _order(
    reader: UsageReader,
    items: list[tuple[int, Raw]],
    profiles: dict[int, Profile],
    sort: str,
    window: slice | None,
) -> None:
    """Sort ``items`` in report order: exact everywhere when ``profiles`` holds every
    user, else exact inside ``window`` (ids are fetched only for the rows that tie with
    the window's edges; sorting 10,000 numbers is cheap, 10,000 id look-ups are not)."""
    column, descending = parse_sort(sort)
    if column in _TEXT_SORTS:
        key = _profile_key(column)
        items.sort(key=lambda item: profiles[item[0]][0])
        items.sort(key=lambda item: key(profiles[item[0]]), reverse=descending)
        return
    raw_key = _raw_key(column)
    items.sort(key=lambda item: raw_key(item[1]), reverse=descending)
    if window is None:
        groups: list[tuple[int, int]] = [(0, len(items))]
    else:
        first, stop, _ = window.indices(len(items))
        if first >= stop:
            return
        low, high = raw_key(items[first][1]), raw_key(items[stop - 1][1])
        while first > 0 and raw_key(items[first - 1][1]) == low:
            first -= 1
        while stop < len(items) and raw_key(items[stop][1]) == high:
            stop += 1
        groups = [(first, stop)]
    for lo, hi in groups:
        block = items[lo:hi]
        missing = [pk for pk, _ in block if pk not in profiles]
        profiles.update(reader.profiles(missing))
        block.sort(key=lambda item: profiles[item[0]][0])
        block.sort(key=lambda item: raw_key(item[1]), reverse=descending)
        items[lo:hi] = block


@dataclass
class _Rows:
    items: list[tuple[int, Raw]]  # (user pk, raw usage) in report order
    profiles: dict[int, Profile]


def _collect(
    reader: UsageReader,
    local_range: LocalRange,
    users: UserFilter,
    *,
    sort: str,
    include_inactive: bool,
    window: slice | None,
) -> _Rows:
    column, _ = parse_sort(sort)
    plan = plan_buckets(local_range.start_us, local_range.end_us)
    raw = reader.per_user_raw(local_range.start_us, local_range.end_us, users)
    profiles: dict[int, Profile] = {}
    if include_inactive:
        for pk, user_id, name, email in reader.matching_users(users):
            profiles[pk] = (user_id, name, email)
            if pk not in raw:
                raw[pk] = [0] * _N + [None, None]
    everything = window is None or column in _TEXT_SORTS or column == "first_request_at"
    if everything:
        profiles.update(reader.profiles(pk for pk in raw if pk not in profiles))
        reader.fill_first({pk: values for pk, values in raw.items() if values[0]}, plan)
    items = list(raw.items())
    _order(reader, items, profiles, sort, None if everything else window)
    if not everything:
        assert window is not None
        page = dict(items[window])
        reader.fill_first({pk: values for pk, values in page.items() if values[0]}, plan)
        profiles.update(reader.profiles(pk for pk in page if pk not in profiles))
    return _Rows(items, profiles)


def _user_usage(pk: int, values: Raw, profiles: dict[int, Profile]) -> UserUsage:
    user_id, name, email = profiles[pk]
    return UserUsage(pk, user_id, name, email, Usage(*values))


def all_rows(
    reader: UsageReader,
    local_range: LocalRange,
    users: UserFilter,
    *,
    sort: str,
    include_inactive: bool = False,
) -> list[UserUsage]:
    """Every matching user's row in report order, complete (for exports)."""
    rows = _collect(
        reader, local_range, users, sort=sort, include_inactive=include_inactive, window=None
    )
    return [_user_usage(pk, values, rows.profiles) for pk, values in rows.items]


def _totals(items: list[tuple[int, Raw]]) -> Usage:
    """Sums over every row (column by column, in C); the first request is left out
    (it is not known without a seek per user) and the last is the latest."""
    if not items:
        return Usage()
    columns = list(zip(*(values for _, values in items), strict=True))
    sums = [sum(columns[i]) for i in range(_N)]
    lasts = [value for value in columns[_N + 1] if value is not None]
    totals = Usage(*sums)
    totals.last_us = max(lasts) if lasts else None
    return totals


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
        rows = _collect(
            UsageReader(db, conn),
            local_range,
            UserFilter(q=q),
            sort=sort,
            include_inactive=include_inactive,
            window=window,
        )
    page = [_user_usage(pk, values, rows.profiles) for pk, values in rows.items[window]]
    return UserUsageReport(local_range, len(rows.items), _totals(rows.items), page)


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
