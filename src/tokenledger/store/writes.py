"""The write path: store a batch of validated events and their rollups atomically.

One transaction per batch. Events are inserted with ``ON CONFLICT DO NOTHING`` so an
``event_id`` is stored at most once whatever the concurrency; only the rows that were
really inserted feed the rollups, so nothing is counted twice. The caller acknowledges
after this function returns, i.e. after the commit.

PostgreSQL writers take per-user advisory locks in key order first: batches that share
a user serialize, batches that don't run in parallel, and lock order rules out
deadlocks (any left, e.g. between event ids, are retried by ``Database.run_write``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from sqlalchemy import text
from sqlalchemy.engine import Connection

from tokenledger import prices
from tokenledger.events import HASH_VERSION, Event, Rejection
from tokenledger.search import search_key
from tokenledger.store import erasure, retention
from tokenledger.store.database import Database
from tokenledger.store.rollups import Level, Sums, aggregate
from tokenledger.store.schema import events, users

if TYPE_CHECKING:
    from tokenledger.store.usage_store import UsageStore

Status = Literal["accepted", "duplicate", "rejected"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one input item of a batch."""

    status: Status
    event_id: str | None = None
    rejection: Rejection | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    outcomes: list[Outcome]

    def count(self, status: Status) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)


def before_retention() -> Rejection:
    return Rejection.one(
        "before_retention",
        "started_at",
        "starts before the retention horizon: events that old were deleted, so this one "
        "could be a resend of a deleted event and is not stored",
    )


# What a write returns per event id it did not insert: the stored hash, or None when
# the event started before the retention horizon (absent: inserted).
Stored = dict[str, "StoredHash | None"]


def conflict(event_id: str) -> Rejection:
    return Rejection.one(
        "conflict",
        "event_id",
        f"{event_id!r} is already stored with different content (event ids are unique forever)",
    )


@dataclass
class _Pending:
    """A batch checked on its own: outcomes known so far, first occurrence of each id."""

    outcomes: list[Outcome | None]
    first_seen: dict[str, tuple[int, Event]]

    @property
    def candidates(self) -> list[Event]:
        return [event for _, event in self.first_seen.values()]


def _prepare(items: Sequence[Event | Rejection]) -> _Pending:
    outcomes: list[Outcome | None] = [None] * len(items)
    first_seen: dict[str, tuple[int, Event]] = {}
    for index, item in enumerate(items):
        if isinstance(item, Rejection):
            outcomes[index] = Outcome("rejected", rejection=item)
        elif item.event_id not in first_seen:
            first_seen[item.event_id] = (index, item)
        elif first_seen[item.event_id][1].content_hash == item.content_hash:
            outcomes[index] = Outcome("duplicate", item.event_id)
        else:
            outcomes[index] = Outcome("rejected", item.event_id, conflict(item.event_id))
    return _Pending(outcomes, first_seen)


def _finish(pending: _Pending, stored: Stored) -> BatchResult:
    outcomes = pending.outcomes
    for event_id, (index, event) in pending.first_seen.items():
        if event_id not in stored:
            outcomes[index] = Outcome("accepted", event_id)
            continue
        found = stored[event_id]
        if found is None:
            outcomes[index] = Outcome("rejected", event_id, before_retention())
        elif event.hash_in(found.version) == found.digest:
            outcomes[index] = Outcome("duplicate", event_id)
        else:
            outcomes[index] = Outcome("rejected", event_id, conflict(event_id))
    return BatchResult([outcome for outcome in outcomes if outcome is not None])


def store_batches(
    store: UsageStore, batches: Sequence[tuple[Sequence[Event | Rejection], int]]
) -> list[BatchResult]:
    """Store several ``(items, now_us)`` batches in one transaction (one commit), each
    with the outcomes it would have alone, as if stored one after the other."""
    pending = [_prepare(items) for items, _ in batches]
    if not any(part.first_seen for part in pending):
        return [_finish(part, {}) for part in pending]

    db = store.db

    def work(conn: Connection) -> list[Stored]:
        user_ids = {event.user_id for part in pending for event in part.candidates}
        db.dialect.lock_users(conn, (user_lock_key(user_id) for user_id in user_ids))
        horizon = retention.horizon(conn)
        return [
            _write(store, conn, part.candidates, now_us=now, horizon_us=horizon)
            if part.first_seen
            else {}
            for part, (_, now) in zip(pending, batches, strict=True)
        ]

    stored = db.run_write(work)
    return [_finish(part, found) for part, found in zip(pending, stored, strict=True)]


def _write(
    store: UsageStore,
    conn: Connection,
    batch: list[Event],
    *,
    now_us: int,
    horizon_us: int | None,
) -> Stored:
    """Insert what is new; return ``{event_id: stored hash}`` for ids already stored
    (None for an event before the retention horizon, not stored). On PostgreSQL the
    caller holds the batch's user locks.

    The events of an erased person are stored erased (``store/erasure.py``): under
    their erased id, so that a resend of an old one is found, compared by its keyed
    hash."""
    db = store.db
    early: Stored = {}
    if horizon_us is not None:
        early = {event.event_id: None for event in batch if event.started_us < horizon_us}
        batch = [event for event in batch if event.event_id not in early]
    batch = store.pricer.price_all(batch, prices.load(conn))
    user_pks, erased = _ensure_users(store, conn, batch)
    originals: dict[str, Event] = {}
    if erased:
        key = store.erasure_key
        assert key is not None
        for index, event in enumerate(batch):
            if event.user_id in erased:
                batch[index] = erasure.erased_event(key, event)
                originals[batch[index].event_id] = event
    inserted = _insert_events(db, conn, batch, user_pks, now_us=now_us)
    new_events = [event for event in batch if event.event_id in inserted]
    if new_events:
        _update_profiles(db, conn, new_events, user_pks)
        write_rollups(
            store,
            conn,
            aggregate(new_events, user_pks, metrics=store.metrics, rollups=store.rollups),
        )
    leftover = [event.event_id for event in batch if event.event_id not in inserted]
    stored: Stored = {**early, **_stored_hashes(db, conn, leftover)}
    for erased_id, event in originals.items():
        if erased_id in stored:
            stored[event.event_id] = _unkeyed(store, event, stored.pop(erased_id))
    return stored


def _unkeyed(store: UsageStore, event: Event, found: StoredHash | None) -> StoredHash | None:
    """The stored hash of an erased person's event as the original event's own hash
    when the keyed hashes match (a retry), else an empty one (a conflict)."""
    if found is None or store.erasure_key is None:
        return found
    mine = event.hash_in(found.version)
    same = mine is not None and erasure.erased_hash(store.erasure_key, mine) == found.digest
    return StoredHash(found.version, mine if same and mine is not None else b"")


def user_lock_key(user_id: str) -> int:
    return int.from_bytes(hashlib.sha256(user_id.encode()).digest()[:8], "big", signed=True)


def _chunks(db: Database, values: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    """``values`` in pieces of ``size`` for SQLite (a placeholder each), whole where
    they go as one array."""
    if db.dialect.lists_as_arrays:
        size = max(len(values), 1)
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _ensure_users(
    store: UsageStore, conn: Connection, batch: list[Event]
) -> tuple[dict[str, int], set[str]]:
    """``{external_id: users.id}`` for every user in the batch, creating missing ones,
    and the user ids of the batch that were erased (their events are stored under
    their pseudonym, which is then in the mapping)."""
    user_ids = {event.user_id for event in batch}
    aliases = erasure.pseudonyms(store.erasure_key, user_ids)
    wanted = sorted(user_ids | aliases.keys())
    found: dict[str, int] = {}
    dialect = store.db.dialect
    select = dialect.with_list(
        f"SELECT external_id, id FROM users WHERE {dialect.any_of('external_id', 'ids', 'text')}",
        "ids",
    )
    for chunk in _chunks(store.db, wanted):
        found.update(conn.execute(select, {"ids": list(chunk)}).all())
    erased = {aliases[alias] for alias in aliases if alias in found} - found.keys()
    batch = [event for event in batch if event.user_id not in erased]
    wanted = sorted({event.user_id for event in batch})
    missing = [user_id for user_id in wanted if user_id not in found]
    if missing:
        spans: dict[str, list[int]] = {}
        for event in batch:
            span = spans.setdefault(event.user_id, [event.started_us, event.started_us])
            span[0] = min(span[0], event.started_us)
            span[1] = max(span[1], event.started_us)
        rows = [
            {
                "external_id": user_id,
                "search_key": search_key(user_id, None, None),
                "first_us": spans[user_id][0],
                "last_us": spans[user_id][1],
            }
            for user_id in missing
        ]
        if dialect.at_once(len(rows)):
            columns = ("external_id", "search_key", "first_us", "last_us")
            result = conn.exec_driver_sql(
                f"INSERT INTO users ({', '.join(columns)}) SELECT * FROM "
                f"{dialect.rows_from_arrays(users, columns)} RETURNING external_id, id",
                _columns([tuple(row[column] for column in columns) for row in rows]),
            )
        else:  # rows come back in any order, with their ids: one statement per 500 or so
            result = conn.execute(users.insert().returning(users.c.external_id, users.c.id), rows)
        found.update(result.all())
    return found, erased


_EVENT_COLUMNS = (
    "event_id",
    "user_pk",
    "started_us",
    "duration_ms",
    "model",
    "provider",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "status",
    "metadata",
    "content_hash",
    "hash_version",
    "ingested_us",
    "usage_missing",
    "cost_nanos",
    "cost_source",
)
_EVENTS_PER_STATEMENT = 500


def _insert_events(
    db: Database,
    conn: Connection,
    batch: list[Event],
    user_pks: dict[str, int],
    *,
    now_us: int,
) -> set[str]:
    """Insert the batch; return the ids that were really inserted."""
    # Sorted, so that concurrent PostgreSQL writers wait on ids in one order.
    ordered = sorted(batch, key=lambda event: event.event_id)
    rows = [
        (
            event.event_id,
            user_pks[event.user_id],
            event.started_us,
            event.duration_ms,
            event.model,
            event.provider,
            event.input_tokens,
            event.output_tokens,
            event.cache_read_tokens,
            event.cache_write_tokens,
            event.reasoning_tokens,
            event.status,
            event.metadata,
            event.content_hash,
            HASH_VERSION,
            now_us,
            1 if event.usage_missing else 0,
            event.cost_nanos,
            event.cost_source,
        )
        for event in ordered
    ]
    if not rows:
        return set()
    head = f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) "
    tail = " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
    dialect = db.dialect
    if dialect.at_once(len(rows)):  # one statement, one array per column
        source = dialect.rows_from_arrays(events, _EVENT_COLUMNS)
        found = conn.exec_driver_sql(f"{head}SELECT * FROM {source}{tail}", _columns(rows))
        return {row[0] for row in found}
    one_row = "(" + ", ".join([dialect.param] * len(_EVENT_COLUMNS)) + ")"
    inserted: set[str] = set()
    for start in range(0, len(rows), _EVENTS_PER_STATEMENT):
        chunk = rows[start : start + _EVENTS_PER_STATEMENT]
        sql = head + "VALUES " + ", ".join([one_row] * len(chunk)) + tail
        params = tuple(value for row in chunk for value in row)
        inserted.update(row[0] for row in conn.exec_driver_sql(sql, params))
    return inserted


def _columns(rows: Sequence[Sequence[Any]]) -> tuple[list[Any], ...]:
    """``rows`` as one list per column (the parameters of ``rows_from_arrays``)."""
    return tuple(list(column) for column in zip(*rows, strict=True))


class StoredHash(NamedTuple):
    """The content hash of a stored event, and the version it was made in."""

    version: int
    digest: bytes


def _stored_hashes(db: Database, conn: Connection, event_ids: list[str]) -> dict[str, StoredHash]:
    stored: dict[str, StoredHash] = {}
    select = db.dialect.with_list(
        "SELECT event_id, hash_version, content_hash FROM events "
        f"WHERE {db.dialect.any_of('event_id', 'ids', 'text')}",
        "ids",
    )
    for chunk in _chunks(db, event_ids):
        stored.update(
            (row[0], StoredHash(row[1], bytes(row[2])))
            for row in conn.execute(select, {"ids": list(chunk)})
        )
    return stored


# The profile fields kept from events: (users column, Event attribute). Each keeps the
# latest non-empty value by event time (its instant in ``<column>_at_us``), unless the
# people directory holds a value for it (see people_directory in store/schema.py).
PROFILE_FIELDS = (
    ("name", "user_name"),
    ("email", "user_email"),
    ("department", "user_department"),
    ("team", "user_team"),
)


@dataclass
class _Seen:
    """What one batch says about a user: activity span, latest value of each field."""

    first_us: int
    last_us: int
    latest: dict[str, tuple[str, int]] = field(default_factory=dict)

    def observe(self, event: Event) -> None:
        started = event.started_us
        self.first_us = min(self.first_us, started)
        self.last_us = max(self.last_us, started)
        latest = self.latest
        for column, attribute in PROFILE_FIELDS:
            value = getattr(event, attribute)
            if value:
                current = latest.get(column)
                if current is None or started >= current[1]:
                    latest[column] = (value, started)


def _newer(candidate: int | None, current: int | None) -> bool:
    return candidate is not None and (current is None or candidate >= current)


_PROFILE_SELECT = (
    "SELECT u.id, u.external_id, u.first_us, u.last_us, "
    + ", ".join(f"u.{column}, u.{column}_at_us, d.{column}" for column, _ in PROFILE_FIELDS)
    + " FROM users u LEFT JOIN people_directory d ON d.user_pk = u.id WHERE {member}"
)
_PROFILE_UPDATE = (
    "UPDATE users SET "
    + ", ".join(
        f"{column} = :{column}, {column}_at_us = :{column}_at_us" for column, _ in PROFILE_FIELDS
    )
    + ", search_key = :search_key, first_us = :first_us, last_us = :last_us WHERE id = :pk"
)


def _update_profiles(
    db: Database, conn: Connection, new_events: list[Event], user_pks: dict[str, int]
) -> None:
    """Keep the latest non-empty value of each profile field (by event time), where
    the people directory has none, and the activity span."""
    seen: dict[int, _Seen] = {}
    for event in new_events:
        pk = user_pks[event.user_id]
        if pk not in seen:
            seen[pk] = _Seen(event.started_us, event.started_us)
        seen[pk].observe(event)
    member = db.dialect.any_of("u.id", "ids", "bigint")
    rows = conn.execute(
        db.dialect.with_list(_PROFILE_SELECT.format(member=member), "ids"), {"ids": sorted(seen)}
    )
    profile_updates: list[dict[str, Any]] = []
    span_updates: list[tuple[int | None, ...]] = []
    for row in rows:
        batch = seen[row[0]]
        first_us, last_us = min(row[2], batch.first_us), max(row[3], batch.last_us)
        update: dict[str, Any] = {"pk": row[0], "first_us": first_us, "last_us": last_us}
        changed: set[str] = set()
        for index, (column, _) in enumerate(PROFILE_FIELDS):
            value, at_us, directory = row[4 + 3 * index : 7 + 3 * index]
            latest = batch.latest.get(column)
            if directory is None and latest is not None and _newer(latest[1], at_us):
                if latest[0] != value:
                    changed.add(column)
                value, at_us = latest
            update[column], update[f"{column}_at_us"] = value, at_us
        if changed:
            update["search_key"] = search_key(row[1], update["name"], update["email"])
            profile_updates.append(update)
        elif (first_us, last_us) != (row[2], row[3]) or any(
            update[f"{column}_at_us"] != row[5 + 3 * index]
            for index, (column, _) in enumerate(PROFILE_FIELDS)
        ):
            # The common case (time moves on, same values): the search key stays.
            span_updates.append(
                (
                    *(update[f"{column}_at_us"] for column, _ in PROFILE_FIELDS),
                    first_us,
                    last_us,
                    row[0],
                )
            )
    if profile_updates:
        profile_updates.sort(key=lambda update: int(update["pk"]))
        conn.execute(text(_PROFILE_UPDATE), profile_updates)
    if span_updates:
        span_updates.sort(key=lambda update: update[-1] or 0)
        dialect, p = db.dialect, db.dialect.param
        spans = (*(f"{column}_at_us" for column, _ in PROFILE_FIELDS), "first_us", "last_us")
        if dialect.at_once(len(span_updates)):  # the people hold their user locks
            source = dialect.rows_from_arrays(users, (*spans, "id"))
            conn.exec_driver_sql(
                f"UPDATE users AS u SET {', '.join(f'{c} = v.{c}' for c in spans)} "
                f"FROM {source} WHERE u.id = v.id",
                _columns(span_updates),
            )
            return
        assignments = ", ".join(f"{column} = {p}" for column in spans)
        conn.exec_driver_sql(f"UPDATE users SET {assignments} WHERE id = {p}", span_updates)


def write_rollups(store: UsageStore, conn: Connection, sums: dict[Level, Sums]) -> None:
    """Add ``sums`` to every rollup table (keys in sorted order)."""
    for level, rows in sums.items():
        if level.grain.running:
            _add_to_running_days(store, conn, level, rows)
            continue
        ordered = [(*key, *rows[key]) for key in sorted(rows)]
        if store.db.dialect.at_once(len(ordered)):  # one statement, rows in key order
            conn.exec_driver_sql(_bucket_upsert(store, level, at_once=True), _columns(ordered))
        else:
            conn.exec_driver_sql(_bucket_upsert(store, level, at_once=False), ordered)


def _bucket_upsert(store: UsageStore, level: Level, *, at_once: bool) -> str:
    dialect, table, names = store.db.dialect, level.table, store.metric_columns
    keys = (*level.rollup.key_columns, "bucket")
    columns = (*keys, *names, "first_us", "last_us")
    updates = [f"{name} = {table}.{name} + excluded.{name}" for name in names]
    updates.append(f"first_us = {dialect.least(f'{table}.first_us', 'excluded.first_us')}")
    updates.append(f"last_us = {dialect.greatest(f'{table}.last_us', 'excluded.last_us')}")
    if at_once:
        rows = f"SELECT * FROM {dialect.rows_from_arrays(store.tables[level], columns)}"
    else:
        rows = f"VALUES ({', '.join([dialect.param] * len(columns))})"
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) {rows} "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(updates)}"
    )


def _add_to_running_days(store: UsageStore, conn: Connection, level: Level, days: Sums) -> None:
    """Add each (key, day) delta to that day's row and every later row of the key.

    A missing (key, day) row is first created holding the key's running totals up to
    the day before, so that afterwards every row is "all usage up to the end of this
    UTC day". Events arriving in time order touch only the newest row. A key with
    several days in the batch (a back-fill) has each row updated once: the rows from
    one of its days up to its next get the deltas summed so far.
    """
    dialect, table, n = store.db.dialect, level.table, store.metrics.size
    cum = [f"cum_{name}" for name in store.metric_columns]
    key_columns = level.rollup.key_columns
    keys = sorted(days)
    created = ", ".join(f"coalesce(prev.{c}, 0)" for c in cum)
    conflict = f"ON CONFLICT ({''.join(f'{c}, ' for c in key_columns)}day) DO NOTHING"
    insert_head = (
        f"INSERT INTO {table} ({''.join(f'{c}, ' for c in key_columns)}day, {', '.join(cum)}) "
    )
    # The deltas: for each (key, day), the sums of the batch's days of the key up to
    # it, added to the rows from that day up to (not including) the key's next day.
    rows: list[tuple[Any, ...]] = []
    summed: list[int] = []
    for position, key in enumerate(keys):
        values = days[key]
        if position and keys[position - 1][:-1] == key[:-1]:
            summed = [a + b for a, b in zip(summed, values[:n], strict=True)]
        else:
            summed = values[:n]
        following = keys[position + 1] if position + 1 < len(keys) else None
        until = following[-1] if following and following[:-1] == key[:-1] else _NO_DAY
        rows.append((*key, until, values[n], values[n + 1], *summed))
    if dialect.at_once(len(rows)):
        _add_to_running_days_at_once(store, conn, level, keys, rows, insert_head, conflict)
        return
    p = dialect.param
    same_key = "".join(f"{column} = {p} AND " for column in key_columns)
    conn.exec_driver_sql(
        f"{insert_head}SELECT {', '.join([p] * (len(key_columns) + 1))}, {created} "
        "FROM (SELECT 1 AS one) AS o LEFT JOIN ("
        f"  SELECT * FROM {table} WHERE {same_key}day < {p}"
        "  ORDER BY day DESC LIMIT 1"
        f") AS prev ON true WHERE true {conflict}",
        [(*key, *key) for key in keys],
    )
    first = dialect.least(f"coalesce(day_first_us, {p})", p)
    last = dialect.greatest(f"coalesce(day_last_us, {p})", p)
    width = len(key_columns) + 1
    conn.exec_driver_sql(
        f"UPDATE {table} SET "
        + ", ".join(f"{c} = {c} + {p}" for c in cum)
        + f", day_first_us = CASE WHEN day = {p} THEN {first} ELSE day_first_us END"
        + f", day_last_us = CASE WHEN day = {p} THEN {last} ELSE day_last_us END"
        + f" WHERE {same_key}day >= {p} AND day < {p}",
        [_update_params(row, width) for row in rows],
    )


def _update_params(row: tuple[Any, ...], width: int) -> tuple[Any, ...]:
    """A delta row ``(key..., day, until, first_us, last_us, sums...)`` as the
    parameters of the one-row UPDATE."""
    day, until, first_us, last_us = row[width - 1 : width + 3]
    return (*row[width + 3 :], day, first_us, first_us, day, last_us, last_us, *row[:width], until)


def _add_to_running_days_at_once(
    store: UsageStore,
    conn: Connection,
    level: Level,
    keys: list[tuple[Any, ...]],
    rows: list[tuple[Any, ...]],
    insert_head: str,
    conflict: str,
) -> None:
    """:func:`_add_to_running_days` in two statements over arrays (PostgreSQL).

    The new rows read the running totals before the statement: the same values as
    one statement per row would (a new row is a copy of the row before it until the
    deltas are added, so a later new row of the same key copies the same totals).
    Each existing row takes at most one delta (the ranges of a key do not overlap);
    the rows are locked in key order first, as one statement per row would, so that
    writers sharing rows without a user key (per model, in total) cannot deadlock.
    """
    dialect, table = store.db.dialect, level.table
    source = store.tables[level]
    key_columns = level.rollup.key_columns
    named = (*key_columns, "day")
    cum = [f"cum_{name}" for name in store.metric_columns]
    same = " AND ".join(f"t.{c} = v.{c}" for c in key_columns) or "true"
    conn.exec_driver_sql(
        f"{insert_head}SELECT {', '.join(f'v.{c}' for c in named)}, "
        f"{', '.join(f'coalesce(prev.{c}, 0)' for c in cum)} "
        f"FROM {dialect.rows_from_arrays(source, named)} LEFT JOIN LATERAL ("
        f"  SELECT * FROM {table} t WHERE {same} AND t.day < v.day"
        "  ORDER BY t.day DESC LIMIT 1"
        f") AS prev ON true {conflict}",
        _columns(keys),
    )
    deltas = (*named, "until", "first_us", "last_us", *cum)
    types = {"until": "day", "first_us": "day_first_us", "last_us": "day_last_us"}
    spans = dialect.rows_from_arrays(source, [types.get(c, c) for c in deltas], names=deltas)
    in_range = f"{same} AND t.day >= v.day AND t.day < v.until"
    keys_sql = ", ".join(f"t.{c}" for c in named)
    conn.exec_driver_sql(
        f"WITH v AS MATERIALIZED (SELECT * FROM {spans}), "
        f"locked AS (SELECT 1 FROM {table} t JOIN v ON {in_range} "
        f"ORDER BY {keys_sql} FOR UPDATE OF t) "
        f"UPDATE {table} AS t SET "
        + ", ".join(f"{c} = t.{c} + v.{c}" for c in cum)
        + ", day_first_us = CASE WHEN t.day = v.day THEN "
        + dialect.least("coalesce(t.day_first_us, v.first_us)", "v.first_us")
        + " ELSE t.day_first_us END, day_last_us = CASE WHEN t.day = v.day THEN "
        + dialect.greatest("coalesce(t.day_last_us, v.last_us)", "v.last_us")
        # The locks first (the scalar subquery runs once, before any row changes).
        + f" ELSE t.day_last_us END FROM v WHERE {in_range} AND (SELECT count(*) FROM locked) >= 0",
        _columns(rows),
    )


# After every day a rollup can hold (days since 1970 in a 32-bit column).
_NO_DAY = 2**31 - 1
