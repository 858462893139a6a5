"""Erasure of a person (a leaver's request under privacy law), usage kept.

Erasing user id ``X``:

* the ``users`` row keeps its primary key (so every rollup row, which is keyed by it,
  stays as it is and every total keeps the person's usage) but its ``external_id``
  becomes the pseudonym ``erased-<HMAC-SHA256(key, X)>`` and its name, e-mail and
  their times are cleared (also its search key, rebuilt from the pseudonym alone);
* ``gateway`` keys naming ``X`` name the pseudonym instead;
* each of their events loses its metadata; its ``event_id`` (which a sender may have
  built from the user id) becomes ``erased-<HMAC-SHA256(key, event id)>`` and its
  content hash (a plain hash of the event, the erased values included, so guessable)
  becomes ``HMAC-SHA256(key, content hash)``.

The key is ``TOKENLEDGER_ERASURE_KEY``, a server secret: without it nobody can test a
guessed id or e-mail against the database. The same id and key always give the same
pseudonym, so erasing twice, or finishing an interrupted erasure, is the same
command again. Idempotency survives: ingest maps an event of an erased person the
same way before storing it (:func:`erased_ids` finds them by pseudonym in the lookup of
users it makes anyway), so a resend of an old event is found under its erased id and
its keyed hash tells a retry (duplicate) from a conflict, and a new event of that
person is stored erased.

Events are rewritten a range of event ids at a time (``batch_size`` ids), each its
own short transaction; the user row is renamed first, under the person's ingest lock,
so nothing un-erased is added after. The pass reads the events table once by its
primary key (no index by person: that would slow every ingest).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection

from tokenledger.events import Event
from tokenledger.search import search_key
from tokenledger.store import writes
from tokenledger.store.database import Database

if TYPE_CHECKING:
    from tokenledger.store.usage_store import UsageStore

PREFIX = "erased-"
BATCH_SIZE = 1000
# The personal fields of ``users``; the person's directory row goes too.
PERSONAL_COLUMNS = (
    "name",
    "name_at_us",
    "email",
    "email_at_us",
    "team",
    "team_at_us",
    "department",
    "department_at_us",
)


class ErasureKeyMissing(ValueError):
    def __init__(self) -> None:
        super().__init__("TOKENLEDGER_ERASURE_KEY is not set: erasure needs a server secret")


class UnknownPerson(LookupError):
    def __init__(self, user_id: str) -> None:
        super().__init__(f"no person with user id {user_id!r}")


@dataclass(frozen=True)
class Erasure:
    pseudonym: str
    events: int  # events rewritten by this run
    batches: int
    cleared: tuple[str, ...]  # the users columns cleared


def _mac(key: bytes, kind: bytes, value: bytes) -> bytes:
    return hmac.new(key, kind + b"\x00" + value, hashlib.sha256).digest()


def pseudonym(key: bytes, user_id: str) -> str:
    """The stable pseudonym of ``user_id`` under ``key``."""
    return PREFIX + _mac(key, b"user", user_id.encode()).hex()[:32]


def erased_event_id(key: bytes, event_id: str) -> str:
    return PREFIX + _mac(key, b"event", event_id.encode()).hex()


def erased_hash(key: bytes, digest: bytes) -> bytes:
    return _mac(key, b"hash", digest)


def erased_event(key: bytes, event: Event) -> Event:
    """``event`` as it is stored for an erased person."""
    return replace(
        event,
        event_id=erased_event_id(key, event.event_id),
        user_id=pseudonym(key, event.user_id),
        user_name=None,
        user_email=None,
        metadata=None,
        content_hash=erased_hash(key, event.content_hash),
    )


def pseudonyms(key: bytes | None, user_ids: Iterable[str]) -> dict[str, str]:
    """``{pseudonym: user id}`` for ``user_ids`` (empty without a key)."""
    if key is None:
        return {}
    return {pseudonym(key, user_id): user_id for user_id in user_ids}


def erase(store: UsageStore, *, user_id: str, batch_size: int = BATCH_SIZE) -> Erasure:
    """Erase ``user_id`` (or finish erasing it): see the module's description.
    UnknownPerson if neither the id nor its pseudonym is stored."""
    key = store.erasure_key
    if key is None:
        raise ErasureKeyMissing
    alias = pseudonym(key, user_id)
    db = store.db
    user_pk, cleared, last_id = db.run_write(lambda conn: _rename(store, conn, user_id, alias))
    rewritten = batches = 0
    for after in range(0, last_id, batch_size):
        rewritten += db.run_write(partial(_rewrite_events, store, user_pk, after, batch_size))
        batches += 1
    return Erasure(pseudonym=alias, events=rewritten, batches=batches, cleared=cleared)


def _rename(
    store: UsageStore, conn: Connection, user_id: str, alias: str
) -> tuple[int, tuple[str, ...], int]:
    """Rename the person (under their ingest lock: any later event of theirs is stored
    erased); their pk, the columns cleared, and the last event id to look at."""
    store.db.dialect.lock_users(conn, [writes.user_lock_key(user_id)])
    with secure_delete(conn):
        user_pk, cleared = _rename_locked(conn, user_id, alias)
    last_id = conn.execute(text("SELECT max(id) FROM events")).scalar()
    return user_pk, cleared, int(last_id or 0)


def _rename_locked(conn: Connection, user_id: str, alias: str) -> tuple[int, tuple[str, ...]]:
    rows = conn.execute(
        text("SELECT id, external_id FROM users WHERE external_id IN (:user_id, :alias)"),
        {"user_id": user_id, "alias": alias},
    ).all()
    if not rows:
        raise UnknownPerson(user_id)
    user_pk = next((row[0] for row in rows if row[1] == user_id), rows[0][0])
    cleared = PERSONAL_COLUMNS
    assignments = "".join(f", {column} = NULL" for column in cleared)
    conn.execute(
        text(
            f"UPDATE users SET external_id = :alias, search_key = :search{assignments} "
            "WHERE id = :pk"
        ),
        {"alias": alias, "search": search_key(alias, None, None), "pk": user_pk},
    )
    conn.execute(text("DELETE FROM people_directory WHERE user_pk = :pk"), {"pk": user_pk})
    conn.execute(
        text("UPDATE api_keys SET name = :alias WHERE user_id = :user_id AND name = :user_id"),
        {"alias": alias, "user_id": user_id},
    )
    conn.execute(
        text("UPDATE api_keys SET user_id = :alias WHERE user_id = :user_id"),
        {"alias": alias, "user_id": user_id},
    )
    return int(user_pk), cleared


def _rewrite_events(
    store: UsageStore, user_pk: int, after: int, batch_size: int, conn: Connection
) -> int:
    """Erase the events of ``user_pk`` among ids ``after + 1 .. after + batch_size``
    (a range of the primary key: no index by person is needed, and the whole pass reads
    the table once); how many were rewritten."""
    with secure_delete(conn):
        return _rewrite_some(store, user_pk, after, batch_size, conn)


def _rewrite_some(
    store: UsageStore, user_pk: int, after: int, batch_size: int, conn: Connection
) -> int:
    key = store.erasure_key
    assert key is not None
    rows = conn.execute(
        text(
            "SELECT id, event_id, content_hash FROM events "
            "WHERE id > :after AND id <= :until AND user_pk = :pk"
        ),
        {"pk": user_pk, "after": after, "until": after + batch_size},
    ).all()
    updates = [
        {"id": row[0], "event_id": erased_event_id(key, row[1]), "hash": erased_hash(key, row[2])}
        for row in rows
        if not is_erased_id(row[1])
    ]
    if updates:
        conn.execute(
            text(
                "UPDATE events SET event_id = :event_id, content_hash = :hash, metadata = NULL "
                "WHERE id = :id"
            ),
            updates,
        )
    return len(updates)


def is_erased_id(event_id: str) -> bool:
    """Whether ``event_id`` is an erased event's id (``erased-`` and 64 hex digits)."""
    rest = event_id[len(PREFIX) :]
    return (
        event_id.startswith(PREFIX)
        and len(rest) == 64
        and all(c in "0123456789abcdef" for c in rest)
    )


@contextmanager
def secure_delete(conn: Connection) -> Iterator[None]:
    """On SQLite, overwrite deleted and rewritten content with zeros during the block
    (otherwise the old bytes linger in free space of the file's pages); the pooled
    connection gets its setting back afterwards."""
    if conn.dialect.name != "sqlite":
        yield
        return
    before = conn.exec_driver_sql("PRAGMA secure_delete").scalar()
    conn.exec_driver_sql("PRAGMA secure_delete = ON")
    yield
    conn.exec_driver_sql(f"PRAGMA secure_delete = {int(before or 0)}")


def checkpoint(db: Database) -> None:
    """On SQLite, copy the WAL into the database file and empty it (the WAL holds the
    old page images until then)."""
    if db.engine.dialect.name == "sqlite":
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def has_erased(db: Database) -> bool:
    """Whether anyone was erased (a user id that is a pseudonym)."""
    with db.read() as conn:
        found = conn.execute(
            text("SELECT 1 FROM users WHERE substr(external_id, 1, 7) = :prefix LIMIT 1"),
            {"prefix": PREFIX},
        ).first()
    return found is not None
