"""Pages of raw events in time order, by keyset (for the events export).

A page is the next ``page_size`` events after a keyset ``(started_us, id)``, read in
its own short transaction: an event's keyset never changes (erasure rewrites only its
id text, hash and metadata, ``tokenledger reprice`` only its cost), so paging never
repeats one; the only events it can miss are those retention deletes meanwhile, which
are gone anyway. Pages are read by :meth:`Database.scan` (on SQLite, connections with a
small page cache of their own: events read once must not fill the reports' caches).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, text

from tokenledger.usage import UserFilter

if TYPE_CHECKING:
    from tokenledger.store.usage_store import UsageStore

_COLUMNS_SQL = (
    "SELECT e.id, e.started_us, e.event_id, e.user_pk, u.external_id, u.name, u.email, "
    "e.duration_ms, "
    "e.model, e.provider, e.status, e.input_tokens, e.output_tokens, "
    "e.cache_read_tokens, e.cache_write_tokens, e.reasoning_tokens, "
    "u.department, u.team, e.usage_missing, e.cost_nanos, e.cost_source "
    "FROM events e JOIN users u ON u.id = e.user_pk"
)
_KEYSET_SQL = (
    # Keyset (started_us, id) > (:after_us, :after_id), written so that both SQLite and
    # PostgreSQL seek ix_events_started on its first column.
    "WHERE e.started_us >= :after_us AND e.started_us < :end_us "
    "AND (e.started_us > :after_us OR e.id > :after_id) "
    "AND e.id <= :last_id{member} "
    "ORDER BY e.started_us, e.id LIMIT :page_size"
)
_PAGE_SQL = f"{_COLUMNS_SQL} {_KEYSET_SQL}"


def _keyset(
    store: UsageStore,
    *,
    after: tuple[int, int],
    end_us: int,
    last_id: int,
    users: UserFilter,
    page_size: int,
) -> tuple[dict[str, Any], str]:
    """The parameters of :data:`_KEYSET_SQL` and its ``member`` condition."""
    params: dict[str, Any] = {
        "after_us": after[0],
        "after_id": after[1],
        "end_us": end_us,
        "last_id": last_id,
        "page_size": page_size,
    }
    member = ""
    if users.active:
        match_sql, match_params = store.match_users(users, "users")
        member = f" AND e.user_pk IN (SELECT id FROM users WHERE {match_sql})"
        params.update(match_params)
    return params, member


def last_event_id(store: UsageStore) -> int | None:
    """The id of the newest stored event (None when there is none)."""
    with store.db.read() as conn:
        value = conn.execute(text("SELECT max(id) FROM events")).scalar()
    return None if value is None else int(value)


def event_page(
    store: UsageStore,
    *,
    after: tuple[int, int],
    end_us: int,
    last_id: int,
    users: UserFilter,
    page_size: int,
) -> Sequence[Sequence[Any]]:
    """The next ``page_size`` events after the keyset ``after`` = (started_us, id) and
    before ``end_us``, of ids up to ``last_id``, as rows of ``id, started_us, event_id,
    user_pk, user_id, name, email`` then the event's fields, then the person's
    department and team."""
    params, member = _keyset(
        store, after=after, end_us=end_us, last_id=last_id, users=users, page_size=page_size
    )
    with store.db.scan() as conn:
        return conn.execute(text(_PAGE_SQL.format(member=member)), params).all()


@dataclass(frozen=True)
class Offset:
    """A zone's constant offset from UTC over the instants ``[start_us, end_us)``, and
    its ISO 8601 text (e.g. ``+05:30``)."""

    start_us: int
    end_us: int
    offset_us: int
    suffix: str


# The events export's cells, in its columns' order: ("text", column) is written as it
# is (NULL empty) where it cannot start a formula; ("number", SQL) in decimal;
# "timestamp" and "cost" are spelt by the dialect.
_CELLS = (
    ("text", "e.event_id"),
    ("text", "u.external_id"),
    ("text", "u.name"),
    ("text", "u.email"),
    ("timestamp", ""),
    ("number", "e.duration_ms"),
    ("text", "e.model"),
    ("text", "e.provider"),
    ("text", "e.status"),
    ("number", "e.input_tokens"),
    ("number", "e.output_tokens"),
    ("number", "e.input_tokens + e.output_tokens"),
    ("number", "coalesce(e.cache_read_tokens, 0)"),
    ("number", "coalesce(e.cache_write_tokens, 0)"),
    ("number", "coalesce(e.reasoning_tokens, 0)"),
    ("text", "u.department"),
    ("text", "u.team"),
    ("number", "e.usage_missing"),
    ("cost", "e.cost_nanos"),
    ("text", "e.cost_source"),
)


CELLS = len(_CELLS)


def line_page(
    store: UsageStore,
    *,
    after: tuple[int, int],
    end_us: int,
    last_id: int,
    users: UserFilter,
    page_size: int,
    offsets: Sequence[Offset],
) -> Sequence[Sequence[Any]]:
    """The page :func:`event_page` reads, as rows of ``id, started_us, line``: the
    event's cells joined by commas, ending in CRLF, written by the database, or NULL
    where Python must write it: a text that may start a formula (its first character
    not an ASCII letter or digit), a negative cost, or an instant outside ``offsets``
    (an hour in which the zone changes its offset). A line is the CSV line only if
    no cell needed quoting: :data:`CELLS` - 1 commas, and no quote or line break (the
    caller checks)."""
    spell = store.db.dialect
    params, member = _keyset(
        store, after=after, end_us=end_us, last_id=last_id, users=users, page_size=page_size
    )
    params.update(spell.csv_params(len(_CELLS)))
    local, suffix = ["CASE"], ["CASE"]
    for index, offset in enumerate(offsets):
        within = f"WHEN e.started_us >= :os{index} AND e.started_us < :oe{index}"
        local.append(f"{within} THEN e.started_us + :ou{index}")
        suffix.append(f"{within} THEN :ox{index}")
        params[f"os{index}"], params[f"oe{index}"] = offset.start_us, offset.end_us
        params[f"ou{index}"], params[f"ox{index}"] = offset.offset_us, offset.suffix
    cells, plain = [], ["x.local_us >= 0", "(e.cost_nanos IS NULL OR e.cost_nanos >= 0)"]
    for kind, sql in _CELLS:
        if kind == "text":
            cells.append(sql)
            plain.append(spell.csv_plain(sql))
        elif kind == "number":
            cells.append(sql)
        elif kind == "timestamp":
            cells.append(f"{spell.csv_timestamp('x.local_us')} || x.suffix")
        else:
            cells.append(f"CASE WHEN {sql} IS NULL THEN '' ELSE {spell.csv_dollars(sql)} END")
    line = spell.csv_line(cells)
    if not offsets:  # a range of no instant: no line
        local, suffix = ["CASE WHEN 1 = 0 THEN 0"], ["CASE WHEN 1 = 0 THEN ''"]
    query = (
        f"SELECT e.id, e.started_us, CASE WHEN {' AND '.join(plain)} THEN {line} END "
        "FROM (SELECT e.id, e.started_us, "
        f"{' '.join(local)} END AS local_us, {' '.join(suffix)} END AS suffix "
        f"FROM events e {_KEYSET_SQL.format(member=member)}) x "
        "JOIN events e ON e.id = x.id JOIN users u ON u.id = e.user_pk "
        "ORDER BY x.started_us, x.id"
    )
    with store.db.scan() as conn:
        return conn.execute(text(query), params).all()


def records(store: UsageStore, ids: Sequence[int]) -> Sequence[Sequence[Any]]:
    """The events ``ids`` as :func:`event_page` rows, in time order."""
    query = text(f"{_COLUMNS_SQL} WHERE e.id IN :ids ORDER BY e.started_us, e.id").bindparams(
        bindparam("ids", expanding=True)
    )
    with store.db.scan() as conn:
        return conn.execute(query, {"ids": list(ids)}).all()
