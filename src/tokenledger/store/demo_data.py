"""Demo data in a database: which AI users ``tokenledger demo`` made up, and removing
exactly what it loaded.

A demo event is an event of a listed demo user whose id is the demo's
(``demo-<user id>-<YYYYmmddTHHMMSS>-<n>``). Removing deletes those events, rewrites the
rollups they fed (in the same transaction), and deletes the demo users left without
events; a demo user that also has other events keeps them, and stays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from tokenledger.store import recompute
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore

DEMO_USERS = "SELECT user_pk FROM demo_users"
# The ids the demo gives its events: demo-<user id>-<YYYYmmddTHHMMSS>-<n>.
DEMO_EVENT_ID = (
    "substr(e.event_id, 1, length(u.external_id) + 6) = 'demo-' || u.external_id || '-' "
    "AND substr(e.event_id, length(u.external_id) + 15, 1) = 'T' "
    "AND substr(e.event_id, length(u.external_id) + 22, 1) = '-'"
)
_DEMO_EVENTS = (
    "FROM events e JOIN users u ON u.id = e.user_pk "
    f"WHERE e.user_pk IN ({DEMO_USERS}) AND {DEMO_EVENT_ID}"
)
_CHUNK = 900


@dataclass(frozen=True, slots=True)
class DemoRemoval:
    events: int  # demo events deleted
    users: int  # demo users deleted
    users_kept: int  # demo users kept because they have other events


def mark_demo_users(db: Database, *, external_ids: Iterable[str]) -> None:
    """List the users with these ids as demo users (those that exist)."""
    ids = list(external_ids)
    query = text(
        "INSERT INTO demo_users (user_pk) SELECT id FROM users "
        f"WHERE external_id IN :ids AND id NOT IN ({DEMO_USERS})"
    ).bindparams(bindparam("ids", expanding=True))
    with db.write() as conn:
        for start in range(0, len(ids), _CHUNK):
            conn.execute(query, {"ids": ids[start : start + _CHUNK]})


def has_demo_data(db: Database) -> bool:
    with db.read() as conn:
        return conn.execute(text("SELECT 1 FROM demo_users LIMIT 1")).first() is not None


def remove_demo_data(store: UsageStore) -> DemoRemoval:
    """Delete the demo events, their rollups and the demo users (one transaction)."""
    return store.db.run_write(lambda conn: _remove(store, conn))


def _remove(store: UsageStore, conn: Connection) -> DemoRemoval:
    users = [row[0] for row in conn.execute(text(DEMO_USERS))]
    count, first_us, last_us = conn.execute(
        text(f"SELECT count(*), min(e.started_us), max(e.started_us) {_DEMO_EVENTS}")
    ).one()
    if count:
        conn.execute(text(f"DELETE FROM events WHERE id IN (SELECT e.id {_DEMO_EVENTS})"))
        recompute.rebuild_part(store, conn, users_sql=DEMO_USERS, start_us=first_us, end_us=last_us)
    conn.execute(text("DELETE FROM demo_users"))
    deleted = 0
    query = text(
        "DELETE FROM users WHERE id IN :ids "
        "AND NOT EXISTS (SELECT 1 FROM events e WHERE e.user_pk = users.id)"
    ).bindparams(bindparam("ids", expanding=True))
    for start in range(0, len(users), _CHUNK):
        deleted += conn.execute(query, {"ids": users[start : start + _CHUNK]}).rowcount
    return DemoRemoval(events=int(count), users=deleted, users_kept=len(users) - deleted)
