"""The SQL of budgets and alerts: budgets, channels, crossings, the outbox.

A crossing is inserted with ``ON CONFLICT DO NOTHING`` on its unique key (budget,
person, period start, threshold), and only a row really inserted gets its deliveries,
in the same transaction: whatever the processes, retries and restarts, each crossing
is recorded, and queued for each channel, exactly once. A sender claims a due delivery
by moving its ``next_try_us`` forward in one conditional UPDATE (only one process wins),
so a process that dies while sending leaves the row due again when the lease ends.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, insert, select, text, update
from sqlalchemy.engine import Connection

from tokenledger.budgets.model import Budget, Period
from tokenledger.localdays import plan_buckets
from tokenledger.metrics import Raw
from tokenledger.store.rollups import USER_ROLLUP, Grain
from tokenledger.store.schema import (
    alert_attempts,
    alert_channels,
    alert_deliveries,
    budget_crossings,
    budgets,
    users,
)
from tokenledger.usage import UserFilter

if TYPE_CHECKING:
    from tokenledger.store.usage_reads import UsageReader

# ``ledger_state`` name of the budgets' version: raised by every change of a budget,
# so each process can keep the definitions and re-read them only when it moved.
VERSION = "budgets_version"


def _budget(row: Any) -> Budget:
    return Budget(
        id=row.id,
        name=row.name,
        scope=row.scope,
        scope_value=row.scope_value,
        metric=row.metric,
        limit=row.limit_value,
        period=row.period,
        timezone=row.timezone,
        thresholds=tuple(int(part) for part in row.thresholds.split(",")),
        action=row.action,
        created_us=row.created_us,
        updated_us=row.updated_us,
    )


def load_budgets(conn: Connection) -> list[Budget]:
    return [_budget(row) for row in conn.execute(select(budgets).order_by(budgets.c.id))]


def find_budget(conn: Connection, budget_id: int) -> Budget | None:
    row = conn.execute(select(budgets).where(budgets.c.id == budget_id)).first()
    return None if row is None else _budget(row)


def bump_version(conn: Connection) -> None:
    """Mark the budgets changed (in the transaction of the change)."""
    conn.execute(
        text(
            "INSERT INTO ledger_state (name, value) VALUES (:name, 1) "
            "ON CONFLICT (name) DO UPDATE SET value = ledger_state.value + 1"
        ),
        {"name": VERSION},
    )


def sweep_marks(conn: Connection) -> tuple[int, int]:
    """``(newest event row id, budgets' version)``: what a sweep compares with the
    last one's to know whether usage or budgets may have moved (two index reads)."""
    row = conn.execute(
        text(
            "SELECT (SELECT max(id) FROM events), "
            f"(SELECT value FROM ledger_state WHERE name = '{VERSION}')"
        )
    ).one()
    return int(row[0] or 0), int(row[1] or 0)


def people_with_events_after(conn: Connection, *, event_row_id: int) -> list[str]:
    """The people (external ids) of the events stored with a row id above
    ``event_row_id`` (a range of the primary key)."""
    query = text(
        "SELECT DISTINCT u.external_id FROM events e JOIN users u ON u.id = e.user_pk "
        "WHERE e.id > :after"
    )
    return [row[0] for row in conn.execute(query, {"after": event_row_id})]


def insert_budget(conn: Connection, *, fields: dict[str, Any], now_us: int) -> int:
    values = {**fields, "created_us": now_us, "updated_us": now_us}
    budget_id: int = conn.execute(insert(budgets).returning(budgets.c.id), values).scalar_one()
    bump_version(conn)
    return budget_id


def update_budget(conn: Connection, *, budget_id: int, fields: dict[str, Any], now_us: int) -> bool:
    changed = conn.execute(
        update(budgets).where(budgets.c.id == budget_id).values(**fields, updated_us=now_us)
    )
    bump_version(conn)
    return changed.rowcount == 1


def delete_budget(conn: Connection, *, budget_id: int) -> bool:
    deleted = conn.execute(delete(budgets).where(budgets.c.id == budget_id)).rowcount == 1
    bump_version(conn)
    return deleted


@dataclass(frozen=True)
class Person:
    pk: int
    user_id: str
    name: str | None
    email: str | None
    attributes: dict[str, str | None]


# The check's two statements skip SQLAlchemy's statement building (as the write path
# does): driver SQL with the driver's placeholder, its text built once per shape.


def version_and_person(
    conn: Connection, *, param: str, user_id: str, attributes: dict[str, str]
) -> tuple[int, Person | None]:
    """The budgets' version (0 before any change) and the person ``user_id`` (None
    without usage yet), in one statement; ``param`` is the driver's placeholder."""
    row = conn.exec_driver_sql(_person_sql(param, tuple(attributes.values())), (user_id,)).one()
    person = None
    if row[1] is not None:
        person = Person(row[1], row[2], row[3], row[4], dict(zip(attributes, row[5:], strict=True)))
    return int(row[0] or 0), person


@cache
def _person_sql(param: str, columns: tuple[str, ...]) -> str:
    chosen = ", ".join(f"u.{name}" for name in ("id", "external_id", "name", "email", *columns))
    return (
        f"SELECT (SELECT value FROM ledger_state WHERE name = '{VERSION}'), {chosen} "
        f"FROM (SELECT 1 AS one) o LEFT JOIN users u ON u.external_id = {param}"
    )


def person_usage(
    reader: UsageReader, *, param: str, user_pk: int, periods: Collection[Period]
) -> dict[Period, Raw]:
    """One person's usage in each of ``periods``, in one statement: per period, the
    running totals of the day rollup at its two bounds (one index seek each) and the
    hour and quarter-hour edges of a zone's midnights (seeks of the person's buckets).

    A period with a raw sliver (a zone of a historical non-quarter-hour offset) is
    read by the general path, which also honours the retention horizon."""
    found: dict[Period, Raw] = {}
    ordered = sorted(periods, key=lambda p: (p.start_us, p.end_us))
    shape: list[tuple[int, int, int]] = []  # (days, hour pieces, quarter pieces) per period
    params: list[int] = []
    for period in ordered:
        found[period] = reader.metrics.empty()
        plan = plan_buckets(period.start_us, period.end_us)
        if plan.raw:
            users = UserFilter(user_pks=frozenset([user_pk]))
            got = reader.per_user(period.start_us, period.end_us, users).get(user_pk)
            if got is not None:
                found[period] = got
            shape.append((0, 0, 0))
            continue
        if plan.days is not None:
            start, end = plan.days
            params += [user_pk, start, user_pk, end, start]
        for first, last in (*plan.hours, *plan.quarters):
            params += [user_pk, first, last]
        shape.append((int(plan.days is not None), len(plan.hours), len(plan.quarters)))
    sql = _usage_sql(reader.sql.running, reader.sql.sums, param, tuple(shape))
    if sql:
        width = reader.metrics.size
        for row in reader.conn.exec_driver_sql(sql, tuple(params)):
            values = found[ordered[row[0]]]
            for i in range(width):
                values[i] += row[1 + i] or 0
    return found


@cache
def _usage_sql(running: str, sums: str, p: str, shape: tuple[tuple[int, int, int], ...]) -> str:
    """The statement of :func:`person_usage` for periods of ``shape``."""
    days, hours, quarters = (USER_ROLLUP.table(g) for g in (Grain.DAY, Grain.HOUR, Grain.QUARTER))
    bound = (
        f"(SELECT d.id FROM {days} d WHERE d.user_pk = {p} AND d.day < {p} "
        "ORDER BY d.day DESC LIMIT 1)"
    )
    selects: list[str] = []
    for index, (whole_days, hour_pieces, quarter_pieces) in enumerate(shape):
        if whole_days:
            selects.append(
                f"SELECT {index}, {running} FROM {days} hi LEFT JOIN {days} lo "
                f"ON lo.id = {bound} WHERE hi.id = {bound} AND hi.day >= {p}"
            )
        for table in [hours] * hour_pieces + [quarters] * quarter_pieces:
            selects.append(
                f"SELECT {index}, {sums} FROM {table} "
                f"WHERE user_pk = {p} AND bucket >= {p} AND bucket < {p}"
            )
    return " UNION ALL ".join(selects)


def find_people(
    conn: Connection, *, user_pks: Iterable[int], attributes: dict[str, str]
) -> dict[int, Person]:
    """The people ``user_pks`` (in pieces: SQLite binds at most 999 parameters)."""
    columns = [users.c[column] for column in attributes.values()]
    query = select(users.c.id, users.c.external_id, users.c.name, users.c.email, *columns).where(
        users.c.id.in_(bindparam("pks", expanding=True))
    )
    pks, found = sorted(set(user_pks)), {}
    for start in range(0, len(pks), 900):
        for row in conn.execute(query, {"pks": pks[start : start + 900]}):
            found[row[0]] = Person(
                row[0], row[1], row[2], row[3], dict(zip(attributes, row[4:], strict=True))
            )
    return found


def people_pks(conn: Connection, *, user_ids: Iterable[str]) -> frozenset[int]:
    """The ``users.id`` of the people ``user_ids`` (those known; in pieces)."""
    query = select(users.c.id).where(users.c.external_id.in_(bindparam("ids", expanding=True)))
    wanted, found = sorted(set(user_ids)), set[int]()
    for start in range(0, len(wanted), 900):
        found.update(conn.execute(query, {"ids": wanted[start : start + 900]}).scalars())
    return frozenset(found)


# -- channels -------------------------------------------------------------------------


PAGE, SETTINGS = "page", "settings"  # where a channel was configured


@dataclass(frozen=True)
class Channel:
    id: int
    kind: str  # webhook, slack, email
    target: str  # a URL or an e-mail address
    secret: str  # a page webhook's; a settings channel's stays in the settings
    enabled: bool
    source: str = PAGE


def insert_channel(conn: Connection, *, kind: str, target: str, secret: str, now_us: int) -> int:
    channel_id: int = conn.execute(
        insert(alert_channels).returning(alert_channels.c.id),
        {"kind": kind, "target": target, "secret": secret, "enabled": True, "created_us": now_us},
    ).scalar_one()
    return channel_id


def set_channel_enabled(conn: Connection, *, channel_id: int, enabled: bool) -> bool:
    changed = conn.execute(
        update(alert_channels).where(alert_channels.c.id == channel_id).values(enabled=enabled)
    )
    return changed.rowcount == 1


def load_channels(conn: Connection) -> list[Channel]:
    query = select(
        alert_channels.c.id,
        alert_channels.c.kind,
        alert_channels.c.target,
        alert_channels.c.secret,
        alert_channels.c.enabled,
        alert_channels.c.source,
    ).order_by(alert_channels.c.id)
    return [Channel(*row) for row in conn.execute(query)]


def active_channels(channels: Iterable[Channel]) -> list[Channel]:
    """The channels a new alert goes to: the enabled ones, except that a kind set in
    the settings replaces the page's channels of that kind."""
    enabled = [channel for channel in channels if channel.enabled]
    from_settings = {channel.kind for channel in enabled if channel.source == SETTINGS}
    return [c for c in enabled if c.source == SETTINGS or c.kind not in from_settings]


def sync_settings_channels(
    conn: Connection, *, wanted: Sequence[tuple[str, str]], now_us: int
) -> list[tuple[int, str, str, bool]]:
    """Make the enabled settings channels exactly ``wanted`` ((kind, target) pairs):
    a missing one is added (or enabled again), one no longer set is disabled (its
    alerts stay in the log). Returns the changes: (id, kind, target, enabled)."""
    current = [c for c in load_channels(conn) if c.source == SETTINGS]
    changes: list[tuple[int, str, str, bool]] = []
    for kind, target in wanted:
        same = next((c for c in current if (c.kind, c.target) == (kind, target)), None)
        if same is None:
            channel_id: int = conn.execute(
                insert(alert_channels).returning(alert_channels.c.id),
                {
                    "kind": kind,
                    "target": target,
                    "secret": "",
                    "enabled": True,
                    "created_us": now_us,
                    "source": SETTINGS,
                },
            ).scalar_one()
            changes.append((channel_id, kind, target, True))
        elif not same.enabled:
            set_channel_enabled(conn, channel_id=same.id, enabled=True)
            changes.append((same.id, kind, target, True))
    for channel in current:
        if channel.enabled and (channel.kind, channel.target) not in wanted:
            set_channel_enabled(conn, channel_id=channel.id, enabled=False)
            changes.append((channel.id, channel.kind, channel.target, False))
    return changes


# -- crossings and the outbox ---------------------------------------------------------


@dataclass(frozen=True)
class Crossing:
    budget_id: int
    user_pk: int
    period_start_us: int
    period_end_us: int
    threshold: int
    used: int
    limit: int


def record_crossings(
    conn: Connection,
    *,
    crossings: Sequence[Crossing],
    channel_ids: Sequence[int],
    now_us: int,
    deadline_us: int,
) -> list[int]:
    """Insert each crossing not yet recorded, and its deliveries to ``channel_ids``;
    returns the ids of the crossings inserted now (in the caller's transaction)."""
    inserted: list[int] = []
    statement = text(
        "INSERT INTO budget_crossings (budget_id, user_pk, period_start_us, period_end_us, "
        "threshold, used, limit_value, crossed_us) VALUES (:budget_id, :user_pk, "
        ":period_start_us, :period_end_us, :threshold, :used, :limit, :now) "
        "ON CONFLICT (budget_id, user_pk, period_start_us, threshold) DO NOTHING RETURNING id"
    )
    for crossing in sorted(crossings, key=lambda c: (c.budget_id, c.user_pk, c.threshold)):
        row = conn.execute(statement, {**crossing.__dict__, "now": now_us}).first()
        if row is not None:
            inserted.append(row[0])
    if inserted and channel_ids:
        conn.execute(
            insert(alert_deliveries),
            [
                {
                    "crossing_id": crossing_id,
                    "channel_id": channel_id,
                    "status": "pending",
                    "attempts": 0,
                    "next_try_us": now_us,
                    "deadline_us": deadline_us,
                    "created_us": now_us,
                }
                for crossing_id in inserted
                for channel_id in channel_ids
            ],
        )
    return inserted


def due_deliveries(conn: Connection, *, now_us: int, limit: int = 100) -> list[int]:
    """Ids of the pending deliveries whose next try has come, oldest first."""
    query = (
        select(alert_deliveries.c.id)
        .where(alert_deliveries.c.status == "pending", alert_deliveries.c.next_try_us <= now_us)
        .order_by(alert_deliveries.c.next_try_us, alert_deliveries.c.id)
        .limit(limit)
    )
    return list(conn.execute(query).scalars())


def next_due_us(conn: Connection) -> int | None:
    """When the earliest pending delivery is due (None when none is pending)."""
    query = select(alert_deliveries.c.next_try_us).where(alert_deliveries.c.status == "pending")
    found: int | None = conn.execute(
        query.order_by(alert_deliveries.c.next_try_us).limit(1)
    ).scalar()
    return found


def claim(conn: Connection, *, delivery_id: int, now_us: int, lease_until_us: int) -> bool:
    """Take delivery ``delivery_id`` for one attempt: True for the one process that
    moved its next try forward to the end of the lease."""
    changed = conn.execute(
        update(alert_deliveries)
        .where(
            alert_deliveries.c.id == delivery_id,
            alert_deliveries.c.status == "pending",
            alert_deliveries.c.next_try_us <= now_us,
        )
        .values(next_try_us=lease_until_us, attempts=alert_deliveries.c.attempts + 1)
    )
    return changed.rowcount == 1


@dataclass(frozen=True)
class Alert:
    """Everything a delivery says: the crossing, its budget, person and channel."""

    delivery_id: int
    crossing_id: int
    attempts: int
    deadline_us: int
    channel: Channel
    budget: Budget | None  # None once the budget was deleted
    budget_id: int
    person: Person
    threshold: int
    used: int
    limit: int
    period_start_us: int
    period_end_us: int


def load_alert(conn: Connection, *, delivery_id: int) -> Alert | None:
    d, c = alert_deliveries, budget_crossings
    row = conn.execute(
        select(
            d.c.id,
            d.c.crossing_id,
            d.c.attempts,
            d.c.deadline_us,
            d.c.channel_id,
            c.c.budget_id,
            c.c.user_pk,
            c.c.threshold,
            c.c.used,
            c.c.limit_value,
            c.c.period_start_us,
            c.c.period_end_us,
        )
        .join(c, c.c.id == d.c.crossing_id)
        .where(d.c.id == delivery_id)
    ).first()
    if row is None:
        return None
    channel = next(ch for ch in load_channels(conn) if ch.id == row.channel_id)
    person = find_people(conn, user_pks=[row.user_pk], attributes={})[row.user_pk]
    return Alert(
        delivery_id=row.id,
        crossing_id=row.crossing_id,
        attempts=row.attempts,
        deadline_us=row.deadline_us,
        channel=channel,
        budget=find_budget(conn, row.budget_id),
        budget_id=row.budget_id,
        person=person,
        threshold=row.threshold,
        used=row.used,
        limit=row.limit_value,
        period_start_us=row.period_start_us,
        period_end_us=row.period_end_us,
    )


def record_attempt(
    conn: Connection,
    *,
    delivery_id: int,
    now_us: int,
    sent: bool,
    code: int | None,
    error: str | None,
    next_try_us: int | None,
) -> None:
    """Record one attempt; the delivery is then sent, due again at ``next_try_us``,
    or failed (no next try: its 24 hours are over)."""
    status = "sent" if sent else ("pending" if next_try_us is not None else "failed")
    conn.execute(
        insert(alert_attempts),
        {
            "delivery_id": delivery_id,
            "at_us": now_us,
            "outcome": "sent" if sent else "error",
            "response_code": code,
            "error": error[:500] if error else None,
            "next_try_us": next_try_us,
        },
    )
    conn.execute(
        update(alert_deliveries)
        .where(alert_deliveries.c.id == delivery_id)
        .values(
            status=status,
            next_try_us=next_try_us if next_try_us is not None else now_us,
            sent_us=now_us if sent else None,
            last_code=code,
            last_error=error[:500] if error else None,
        )
    )


def resend(conn: Connection, *, delivery_id: int, now_us: int, deadline_us: int) -> bool:
    """Queue delivery ``delivery_id`` again now, for another 24 hours."""
    changed = conn.execute(
        update(alert_deliveries)
        .where(alert_deliveries.c.id == delivery_id)
        .values(status="pending", next_try_us=now_us, deadline_us=deadline_us)
    )
    return changed.rowcount == 1


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    status: str
    attempts: int
    next_try_us: int
    created_us: int
    sent_us: int | None
    last_code: int | None
    last_error: str | None
    channel_kind: str
    channel_target: str
    budget_id: int
    user_id: str
    threshold: int
    period_start_us: int


def delivery_log(conn: Connection, *, limit: int = 100) -> list[DeliveryRow]:
    """The newest deliveries, with what each was about."""
    d, c, ch = alert_deliveries, budget_crossings, alert_channels
    query = (
        select(
            d.c.id,
            d.c.status,
            d.c.attempts,
            d.c.next_try_us,
            d.c.created_us,
            d.c.sent_us,
            d.c.last_code,
            d.c.last_error,
            ch.c.kind,
            ch.c.target,
            c.c.budget_id,
            users.c.external_id,
            c.c.threshold,
            c.c.period_start_us,
        )
        .join(c, c.c.id == d.c.crossing_id)
        .join(ch, ch.c.id == d.c.channel_id)
        .join(users, users.c.id == c.c.user_pk)
        .order_by(d.c.id.desc())
        .limit(limit)
    )
    rows: list[tuple[Any, ...]] = [tuple(row) for row in conn.execute(query)]
    return [DeliveryRow(*row) for row in rows]


def attempts_of(conn: Connection, *, delivery_id: int) -> list[dict[str, Any]]:
    query = (
        select(alert_attempts)
        .where(alert_attempts.c.delivery_id == delivery_id)
        .order_by(alert_attempts.c.id)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def known_crossings(
    conn: Connection, *, budget_ids: Sequence[int], user_pks: Sequence[int], since_us: int
) -> set[tuple[int, int, int, int]]:
    """The recorded (budget, person, period start, threshold) of these budgets and
    people in periods starting at or after ``since_us`` (seeks of the unique key)."""
    c = budget_crossings
    query = select(c.c.budget_id, c.c.user_pk, c.c.period_start_us, c.c.threshold).where(
        c.c.budget_id.in_(bindparam("budgets", expanding=True)),
        c.c.user_pk.in_(bindparam("pks", expanding=True)),
        c.c.period_start_us >= since_us,
    )
    found: set[tuple[int, int, int, int]] = set()
    pks = sorted(set(user_pks))
    for start in range(0, len(pks), 800):
        params = {"budgets": list(budget_ids), "pks": pks[start : start + 800]}
        found.update((row[0], row[1], row[2], row[3]) for row in conn.execute(query, params))
    return found
