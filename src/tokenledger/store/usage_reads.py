"""Usage queries over the rollups: per user over a range, per bucket for series.

Reports never scan raw events. A range ``[start, end)`` in UTC is split by
:func:`~tokenledger.localdays.plan_buckets` into whole UTC days (answered from the
running-total day rollup with two index seeks per user, however long the range), and
whole hours and quarter hours at the edges (small scans of the bucket rollups). Only a
zone with a historical non-quarter-hour offset leaves a sliver for the raw events; a
sliver before the retention horizon (its events deleted) raises
:class:`~tokenledger.store.retention.EventsRemoved` rather than answer short.

Every column list follows from the store's metrics; results are :data:`Raw` lists
(the metrics in declaration order, then first_us and last_us).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import TextClause

from tokenledger.localdays import BucketPlan, plan_buckets
from tokenledger.metrics import Derived, MetricSet, Raw
from tokenledger.store import retention
from tokenledger.store.rollups import TOTAL_ROLLUP, USER, USER_ROLLUP, Grain, Rollup
from tokenledger.store.schema import events
from tokenledger.usage import Profile, UserFilter

if TYPE_CHECKING:
    from tokenledger.store.usage_store import UsageStore

# SQLite's default limit of bound parameters is 999: lists of ids go in pieces.
_IDS_PER_STATEMENT = 900
_MISSING = -(2**63)  # the sort key of "no request" (ordering.py's)


class MetricSql:
    """The column lists of the usage queries, from a store's metrics (made once)."""

    def __init__(self, store: UsageStore) -> None:
        names = store.metric_columns
        # CAST: PostgreSQL's sum(bigint) is numeric.
        self.sums = ", ".join(f"CAST(sum({name}) AS BIGINT)" for name in names)
        self.row = ", ".join((*names, "first_us", "last_us"))
        self.running = ", ".join(f"hi.cum_{name} - coalesce(lo.cum_{name}, 0)" for name in names)
        render = store.db.dialect.render
        contributions = [render(metric.per_event.sql(events)) for metric in store.metrics.stored]
        # One raw event as a bucket row (columns named as in the bucket tables).
        self.raw_row = ", ".join(
            [
                *(f"{sql} AS {name}" for sql, name in zip(contributions, names, strict=True)),
                "started_us AS first_us",
                "started_us AS last_us",
            ]
        )
        self.raw_sums = ", ".join(f"CAST(sum({sql}) AS BIGINT)" for sql in contributions)
        self.raw_keys = {
            key.column: f"{render(key.sql(events))} AS {key.column}"
            for rollup in store.rollups
            for key in rollup.keys
        }


@dataclass(frozen=True)
class PageOrder:
    """The order and window of a page of the report, when SQL can sort it: by a metric
    (stored or derived) or the last request, then by user id."""

    column: str  # a metric's public name, or "last_request_at"
    descending: bool
    limit: int
    offset: int

    def sql(self, metrics: MetricSet, alias: str) -> str:
        """The sort key over ``alias`` (a row of per-user sums)."""
        if self.column == "last_request_at":
            return f"coalesce({alias}.last_us, {_MISSING})"  # no request sorts first
        item = metrics.find(self.column)
        parts = item.parts if isinstance(item, Derived) else (item.public,)
        stored = {metric.public: metric.name for metric in metrics.stored}
        return " + ".join(f"{alias}.{stored[part]}" for part in parts)


@dataclass
class UserPage:
    """A page of the report: how many users have usage, their totals (first request
    left out), the page's rows in order and their profiles."""

    people: int
    totals: Raw
    items: list[tuple[int, Raw]]
    profiles: dict[int, Profile]


class UsageReader:
    """Range queries over the rollups, on one connection (one snapshot)."""

    def __init__(self, store: UsageStore, conn: Connection) -> None:
        self.store = store
        self.db = store.db
        self.conn = conn
        self.metrics = store.metrics
        self.sql = store.metric_sql
        self._days = USER_ROLLUP.table(Grain.DAY)
        self._serial = False  # whether this transaction's plans are kept serial

    # -- per key ------------------------------------------------------------------

    def per_user(self, start_us: int, end_us: int, users: UserFilter) -> dict[int, Raw]:
        """Usage per user pk over ``[start_us, end_us)`` (users with requests only), as
        :data:`Raw` lists, without first requests from whole days (see
        :meth:`fill_first`): a report over 10,000s of users builds no object per user.

        One statement: the matching users are found once (a search text is a scan of
        the users table; no index serves a substring), then the whole days (two index
        seeks per user) and the edges (scans of the hour and quarter rollups).
        """
        return self._per_key(USER_ROLLUP, start_us, end_us, users, first=False)

    def usage_by(
        self, rollup: Rollup, start_us: int, end_us: int, users: UserFilter
    ) -> dict[tuple[Any, ...], Raw]:
        """Usage per key of ``rollup`` (its key values in order, e.g. ``(user_pk,
        model, provider)``) over ``[start_us, end_us)``, first requests included.

        Whole days come from the rollup's running totals (two seeks per key present
        in the days' table), the edges from its hour and quarter tables, or from the
        events where it has no such grain. A rollup without a user key cannot be
        filtered by user (ValueError).
        """
        found = self._per_key(rollup, start_us, end_us, users, first=True)
        if len(rollup.keys) == 1:
            return {(key,): values for key, values in found.items()}
        return found

    def per_user_page(
        self, start_us: int, end_us: int, users: UserFilter, *, order: PageOrder
    ) -> UserPage:
        """One page of :meth:`per_user` in report order, with the count and totals of
        every row, all in one statement: the page's rows (and their profiles) are all
        that reach Python, not one row per matching user.

        The order is a metric or the last request (then the user id, ascending, byte
        order: Python's order of the texts), as :mod:`tokenledger.ordering` sorts;
        the rows' first requests are left for :meth:`fill_first`, as the totals'.
        """
        found = self._per_key_sql(USER_ROLLUP, start_us, end_us, users, first=False)
        n = self.metrics.size
        if found is None:
            return UserPage(0, self.metrics.empty(), [], {})
        ctes, selects, params = found
        names = self.store.metric_columns
        columns = ", ".join(("user_pk", *names, "first_us", "last_us"))
        key = order.sql(self.metrics, "r")
        direction = "DESC" if order.descending else "ASC"
        by = f"{key} {direction}, {self.db.dialect.binary('u.external_id')}"
        totals = ", ".join(f"CAST(sum({name}) AS BIGINT)" for name in names)
        # Only the rows up to the page's last (with any that tie with it) meet the
        # people table for the tie-break: the page's key bound comes from the sums
        # alone (a top-N of one column), not from joining and sorting every row.
        reach = ">=" if order.descending else "<="
        query = (
            f"WITH {''.join(f'{cte}, ' for cte in ctes)}"
            f"{_one_row_per_user(selects, columns, names)}, "
            f"t AS (SELECT count(*) AS people, {totals}, max(last_us) AS latest FROM r), "
            f"b AS (SELECT {key} AS k FROM r ORDER BY k {direction} LIMIT 1 OFFSET :last), "
            f"p AS (SELECT r.*, u.external_id, u.name, u.email FROM r "
            f"JOIN users u ON u.id = r.user_pk "
            f"WHERE {key} {reach} coalesce((SELECT k FROM b), :unbounded) "
            f"ORDER BY {by} LIMIT :limit OFFSET :offset) "
            f"SELECT t.*, p.* FROM t LEFT JOIN p ON 1 = 1 ORDER BY "
            f"{order.sql(self.metrics, 'p')} {direction}, {self.db.dialect.binary('p.external_id')}"
        )
        params.update(
            limit=order.limit,
            offset=order.offset,
            last=max(order.offset + order.limit - 1, 0),
            # Past the last row there is no bound: every key is within this one.
            unbounded=_MISSING if order.descending else -_MISSING - 1,
        )
        self._keep_serial()
        rows = self.conn.execute(text(query), params).all()
        head = rows[0]
        total: Raw = [*(value or 0 for value in head[1 : n + 1]), None, head[n + 1]]
        items: list[tuple[int, Raw]] = []
        profiles: dict[int, Profile] = {}
        for row in rows:
            page = row[n + 2 :]
            if page[0] is None:
                continue
            items.append((page[0], list(page[1 : n + 3])))
            profiles[page[0]] = (page[n + 3], page[n + 4], page[n + 5])
        return UserPage(int(head[0]), total, items, profiles)

    def _per_key(
        self, rollup: Rollup, start_us: int, end_us: int, users: UserFilter, *, first: bool
    ) -> dict[Any, Raw]:
        """Usage per key: the key value itself for a rollup of one key, else a tuple."""
        result: dict[Any, Raw] = {}
        found = self._per_key_sql(rollup, start_us, end_us, users, first=first)
        if found is not None:
            ctes, selects, params = found
            query = f"WITH {', '.join(ctes)} " if ctes else ""
            self._keep_serial()
            union = " UNION ALL ".join(selects)
            self._add_rows(result, text(query + union), params, len(rollup.keys))
        return result

    def _keep_serial(self) -> None:
        """Before the first usage-by-key statement of this transaction: no parallel
        plan (see :meth:`~tokenledger.store.dialect.Dialect.keep_serial`)."""
        if not self._serial:
            self.db.dialect.keep_serial(self.conn)
            self._serial = True

    def _per_key_sql(
        self, rollup: Rollup, start_us: int, end_us: int, users: UserFilter, *, first: bool
    ) -> tuple[list[str], list[str], dict[str, Any]] | None:
        """The statement of :meth:`_per_key`: its CTEs, the SELECTs of rows ``(key...,
        metrics..., first_us, last_us)`` (the whole days', then the edges': each has at
        most one row per key) and its parameters; None when the range has no piece."""
        by_user = USER in rollup.keys
        if users.active and not by_user:
            raise ValueError(f"the {rollup.name} rollup has no user key to filter by")
        plan = plan_buckets(start_us, end_us, use_days=Grain.DAY in rollup.grains)
        params: dict[str, Any] = {"a": start_us, "b": end_us}
        ctes: list[str] = []
        member = ""
        if by_user:
            match_sql, match_params = self.store.match_users(users, "u")
            params.update(match_params)
            # Users whose activity span misses the range cannot have usage in it.
            ctes.append(
                "m AS MATERIALIZED (SELECT u.id AS user_pk FROM users u "
                f"WHERE {match_sql} AND u.last_us >= :a AND u.first_us < :b)"
            )
            member = " AND user_pk IN (SELECT user_pk FROM m)"
        selects: list[str] = []
        if plan.days is not None:
            params["ds"], params["de"] = plan.days
            selects.append(self._whole_days(rollup, ctes, member, first=first))
        edges = self._edge_select(rollup, plan, params, member if users.active else "")
        if edges:
            selects.append(edges)
        if not selects:
            return None
        return ctes, selects, params

    def _whole_days(self, rollup: Rollup, ctes: list[str], member: str, *, first: bool) -> str:
        """The whole days: each key's running totals at the end minus at the start."""
        table = rollup.table(Grain.DAY)
        keys = rollup.key_columns
        if rollup.keys == (USER,):
            source = "m"  # the matching users are the keys
        else:  # the keys present in the days before the range's end
            source = "k"
            where = f"day < :de{member}"
            ctes.append(
                f"k AS MATERIALIZED (SELECT DISTINCT {', '.join(keys)} FROM {table} WHERE {where})"
            )
        days = self.db.dialect.whole_days(table, keys, source, self.sql.running, first=first)
        ctes.extend(days.ctes)
        return days.select

    def _edge_select(
        self, rollup: Rollup, plan: BucketPlan, params: dict[str, Any], member: str
    ) -> str:
        """The hour, quarter-hour and raw pieces of the range, summed per key."""
        keys = ", ".join(rollup.key_columns)
        raw_keys = ", ".join(self.sql.raw_keys[key.column] for key in rollup.keys)
        pieces: list[tuple[str, int, int]] = []  # (table, first, last) in its own units
        for grain, ranges in ((Grain.HOUR, plan.hours), (Grain.QUARTER, plan.quarters)):
            for first, last in ranges:
                pieces.append(_piece(rollup, grain, first, last))
        pieces += [("events", first, last) for first, last in plan.raw]
        for table, first, _ in pieces:
            if table == "events":
                self._check_retained(first)
        parts: list[str] = []
        for index, (table, first, last) in enumerate(pieces):
            if table == "events":
                row, column = ", ".join(filter(None, (raw_keys, self.sql.raw_row))), "started_us"
            else:
                row, column = ", ".join(filter(None, (keys, self.sql.row))), "bucket"
            parts.append(
                f"SELECT {row} FROM {table} "
                f"WHERE {column} >= :lo{index} AND {column} < :hi{index}{member}"
            )
            params[f"lo{index}"], params[f"hi{index}"] = first, last
        if not parts:
            return ""
        group = f" GROUP BY {keys}" if keys else ""
        selected = ", ".join(filter(None, (keys, self.sql.sums, "min(first_us), max(last_us)")))
        return f"SELECT {selected} FROM ({' UNION ALL '.join(parts)}) AS e{group}"

    def _add_rows(
        self, result: dict[Any, Raw], query: TextClause, params: dict[str, Any], width: int
    ) -> None:
        """Add each row ``(key..., metrics..., first_us, last_us)`` to ``result`` (keyed
        by the key value for one key, else by the tuple). Tens of thousands of rows:
        the merge is written out here rather than called per row."""
        n = self.metrics.size
        for row in self.conn.execute(query, params).all():
            key = row[0] if width == 1 else tuple(row[:width])
            current = result.get(key)
            if current is None:
                result[key] = list(row[width:])
                continue
            for i in range(n):
                current[i] += row[width + i]
            first, last = row[width + n], row[width + n + 1]
            if first is not None and (current[n] is None or first < current[n]):
                current[n] = first
            if last is not None and (current[n + 1] is None or last > current[n + 1]):
                current[n + 1] = last

    def fill_first(self, result: dict[int, Raw], start_us: int, end_us: int) -> None:
        """Set the first request where the whole-day part of the range may hold it.

        The day part gives sums and the last request but not the first; one seek per
        user finds the first day with activity. Call it only for the rows shown
        unless sorting by first request.
        """
        plan = plan_buckets(start_us, end_us)
        if plan.days is None:
            return
        day_start, day_end = plan.days
        n = self.metrics.size
        # One statement per 900 users, not one per user.
        query = text(
            f"SELECT u.id, (SELECT d.day_first_us FROM {self._days} d "
            " WHERE d.user_pk = u.id AND d.day >= :ds AND d.day < :de "
            " ORDER BY d.day LIMIT 1) FROM users u WHERE u.id IN :pks"
        ).bindparams(bindparam("pks", expanding=True))
        pks = list(result)
        for start in range(0, len(pks), _IDS_PER_STATEMENT):
            params = {
                "pks": pks[start : start + _IDS_PER_STATEMENT],
                "ds": day_start,
                "de": day_end,
            }
            for user_pk, first in self.conn.execute(query, params):
                values = result[user_pk]
                if first is not None and (values[n] is None or first < values[n]):
                    values[n] = first

    def profiles(self, user_pks: Iterable[int]) -> dict[int, Profile]:
        """``{pk: (external_id, name, email)}``."""
        found: dict[int, Profile] = {}
        pks = list(user_pks)
        query = text("SELECT id, external_id, name, email FROM users WHERE id IN :ids").bindparams(
            bindparam("ids", expanding=True)
        )
        for start in range(0, len(pks), _IDS_PER_STATEMENT):
            for row in self.conn.execute(query, {"ids": pks[start : start + _IDS_PER_STATEMENT]}):
                found[row[0]] = (row[1], row[2], row[3])
        return found

    def attributes(
        self, user_pks: Iterable[int], names: Sequence[str]
    ) -> dict[int, tuple[Any, ...]]:
        """``{pk: (value of each attribute in names)}`` (declared attributes only)."""
        columns = ", ".join(self.store.attribute(name).column for name in names)
        query = text(f"SELECT id, {columns} FROM users WHERE id IN :ids").bindparams(
            bindparam("ids", expanding=True)
        )
        found: dict[int, tuple[Any, ...]] = {}
        pks = list(user_pks)
        for start in range(0, len(pks), _IDS_PER_STATEMENT):
            for row in self.conn.execute(query, {"ids": pks[start : start + _IDS_PER_STATEMENT]}):
                found[row[0]] = tuple(row[1:])
        return found

    def people_per_value(self, name: str, users: UserFilter) -> dict[Any, int]:
        """How many people the filter matches per value of attribute ``name``."""
        column = self.store.attribute(name).column
        match_sql, params = self.store.match_users(users, "users")
        query = text(f"SELECT {column}, count(*) FROM users WHERE {match_sql} GROUP BY {column}")
        return {row[0]: int(row[1]) for row in self.conn.execute(query, params)}

    def matching_users(self, users: UserFilter) -> Iterator[tuple[int, Profile]]:
        """Every user the filter matches, with or without usage: ``(pk, profile)``."""
        match_sql, params = self.store.match_users(users, "users")
        query = text(f"SELECT id, external_id, name, email FROM users WHERE {match_sql}")
        for row in self.conn.execute(query, params):
            yield row[0], (row[1], row[2], row[3])

    # -- series -------------------------------------------------------------------

    def series(self, buckets: Sequence[tuple[int, int]], users: UserFilter) -> list[Raw]:
        """Usage for each ``[start_us, end_us)`` in ``buckets`` (adjacent, ascending)."""
        plans = [plan_buckets(start, end, use_days=False) for start, end in buckets]
        hours = {h for plan in plans for lo, hi in plan.hours for h in range(lo, hi)}
        quarters = {q for plan in plans for lo, hi in plan.quarters for q in range(lo, hi)}
        hour_rows = self._bucket_sums(Grain.HOUR, hours, users)
        quarter_rows = self._bucket_sums(Grain.QUARTER, quarters, users)
        add = self.metrics.add
        out = []
        for plan in plans:
            usage = self.metrics.empty()
            for lo, hi in plan.hours:
                for h in range(lo, hi):
                    if h in hour_rows:
                        add(usage, hour_rows[h])
            for lo, hi in plan.quarters:
                for q in range(lo, hi):
                    if q in quarter_rows:
                        add(usage, quarter_rows[q])
            for lo, hi in plan.raw:
                add(usage, self._raw_sum(lo, hi, users))
            out.append(usage)
        return out

    def _bucket_sums(
        self, grain: Literal[Grain.HOUR, Grain.QUARTER], wanted: set[int], users: UserFilter
    ) -> dict[int, Raw]:
        if not wanted:
            return {}
        lo, hi = min(wanted), max(wanted) + 1
        # Sparse quarter hours (the edges of local hours or days) are looked up.
        sparse = grain is Grain.QUARTER and len(wanted) < (hi - lo) // 4
        where = "bucket IN :wanted" if sparse else "bucket >= :lo AND bucket < :hi"
        params: dict[str, Any] = {"lo": lo, "hi": hi, "wanted": sorted(wanted)}
        if users.active:
            match_sql, match_params = self.store.match_users(users, "users")
            params.update(match_params)
            query = text(
                f"SELECT bucket, {self.sql.sums}, min(first_us), max(last_us) "
                f"FROM {USER_ROLLUP.table(grain)} WHERE {where} AND user_pk IN "
                f"(SELECT id FROM users WHERE {match_sql}) GROUP BY bucket"
            )
        else:
            names = ", ".join(self.store.metric_columns)
            query = text(
                f"SELECT bucket, {names}, first_us, last_us FROM {TOTAL_ROLLUP.table(grain)} "
                f"WHERE {where}"
            )
        if sparse:
            query = query.bindparams(bindparam("wanted", expanding=True))
        else:
            del params["wanted"]
        return {row[0]: list(row[1:]) for row in self.conn.execute(query, params)}

    def _check_retained(self, start_us: int) -> None:
        """EventsRemoved if raw events from ``start_us`` on were deleted by retention
        (the horizon is read only when a query needs raw events)."""
        horizon = retention.horizon(self.conn)
        if horizon is not None and start_us < horizon:
            raise retention.EventsRemoved(horizon)

    def _raw_sum(self, lo: int, hi: int, users: UserFilter) -> Raw:
        self._check_retained(lo)
        match_sql, params = self.store.match_users(users, "users")
        member = f" AND user_pk IN (SELECT id FROM users WHERE {match_sql})" if users.active else ""
        row = self.conn.execute(
            text(
                f"SELECT {self.sql.raw_sums}, min(started_us), max(started_us) FROM events "
                f"WHERE started_us >= :lo AND started_us < :hi{member}"
            ),
            {"lo": lo, "hi": hi, **params},
        ).one()
        n = self.metrics.size
        return [*(value or 0 for value in row[:n]), row[n], row[n + 1]]


def _one_row_per_user(selects: list[str], columns: str, names: Sequence[str]) -> str:
    """The CTE ``r``: each user's usage from ``selects`` (at most one row per user
    each). One SELECT is ``r`` itself; the whole days' and the edges' rows are joined
    by user (not summed again by a GROUP BY over both, which sorts every row)."""
    if len(selects) == 1:
        return f"r({columns}) AS MATERIALIZED ({selects[0]})"
    whole, edges = selects
    sums = ", ".join(f"w.{name} + coalesce(e.{name}, 0)" for name in names)
    first = "CASE WHEN e.first_us IS NULL OR w.first_us <= e.first_us THEN w.first_us END"
    last = "CASE WHEN e.last_us IS NULL OR w.last_us >= e.last_us THEN w.last_us END"
    return (
        f"w({columns}) AS MATERIALIZED ({whole}), e({columns}) AS MATERIALIZED ({edges}), "
        f"r({columns}) AS MATERIALIZED ("
        f"SELECT w.user_pk, {sums}, coalesce({first}, e.first_us), coalesce({last}, e.last_us) "
        "FROM w LEFT JOIN e ON e.user_pk = w.user_pk "
        "UNION ALL SELECT * FROM e WHERE NOT EXISTS (SELECT 1 FROM w WHERE w.user_pk = e.user_pk))"
    )


def _piece(rollup: Rollup, grain: Grain, first: int, last: int) -> tuple[str, int, int]:
    """Where buckets ``[first, last)`` of ``grain`` are read from for ``rollup``: its
    own table of that grain, else its quarter-hour table, else the raw events."""
    if grain in rollup.grains:
        return rollup.table(grain), first, last
    if Grain.QUARTER in rollup.grains:
        factor = grain.us // Grain.QUARTER.us
        return rollup.table(Grain.QUARTER), first * factor, last * factor
    return "events", first * grain.us, last * grain.us
