"""Pages of raw events in time order, by keyset (for the events export).

A page is the next ``page_size`` events after a keyset ``(started_us, id)``, read in
its own short transaction: an event's keyset never changes (erasure rewrites only its
id text, hash and metadata, ``tokenledger reprice`` only its cost), so paging never
repeats one; the only events it can miss are those retention deletes meanwhile, which
are gone anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from tokenledger.usage import UserFilter

if TYPE_CHECKING:
    from tokenledger.store.usage_store import UsageStore

_PAGE_SQL = (
    "SELECT e.id, e.started_us, e.event_id, e.user_pk, u.external_id, u.name, u.email, "
    "e.duration_ms, "
    "e.model, e.provider, e.status, e.input_tokens, e.output_tokens, "
    "e.cache_read_tokens, e.cache_write_tokens, e.reasoning_tokens, "
    "u.department, u.team, e.usage_missing, e.cost_nanos, e.cost_source "
    "FROM events e JOIN users u ON u.id = e.user_pk "
    # Keyset (started_us, id) > (:after_us, :after_id), written so that both SQLite and
    # PostgreSQL seek ix_events_started on its first column.
    "WHERE e.started_us >= :after_us AND e.started_us < :end_us "
    "AND (e.started_us > :after_us OR e.id > :after_id) "
    "AND e.id <= :last_id{member} "
    "ORDER BY e.started_us, e.id LIMIT :page_size"
)


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
    with store.db.read() as conn:
        return conn.execute(text(_PAGE_SQL.format(member=member)), params).all()
