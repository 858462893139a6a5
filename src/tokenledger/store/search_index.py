"""The trigram index of people's search keys: a substring search costs its matches.

Search matches the folded text of a person (``users.search_key``: name, e-mail and id,
case and accents removed) by plain substring. Without an index every search reads the
whole users table; with this one, a search of three letters or more reads the people
whose key holds each of its trigrams:

* PostgreSQL: a GIN index of ``pg_trgm`` on ``users.search_key`` (``LIKE '%...%'``
  uses it). The extension is a trusted one (PostgreSQL 13+): the database's owner may
  create it. Where it cannot be created, no index is made and the same search reads the
  table, as before.
* SQLite: an FTS5 table with the trigram tokenizer (case-sensitive: the key is folded
  already) over ``users.search_key`` (external content: no copy of the text), kept up
  to date by triggers on ``users``: an inserted or deleted person, or an update that
  changes the key (``WHEN``: the write path's per-batch updates of ``last_us`` that
  leave the key alone cost nothing more).

The database keeps the index current on either backend: the write path needs no change.
Shorter searches (one or two letters have no trigram) read the table, as before. The
matches are exactly the plain substring test's (on SQLite that test also runs on what
the index found; ``tests/store/test_search_index.py`` compares both).
"""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

SQLITE_TABLE = "users_search"
POSTGRES_INDEX = "ix_users_search_trgm"
MIN_LETTERS = 3  # a trigram

_SQLITE_CREATE = (
    f"CREATE VIRTUAL TABLE {SQLITE_TABLE} USING fts5(search_key, content='users', "
    "content_rowid='id', tokenize='trigram case_sensitive 1')",
    f"CREATE TRIGGER {SQLITE_TABLE}_insert AFTER INSERT ON users BEGIN "
    f"INSERT INTO {SQLITE_TABLE} (rowid, search_key) VALUES (new.id, new.search_key); END",
    f"CREATE TRIGGER {SQLITE_TABLE}_delete AFTER DELETE ON users BEGIN "
    f"INSERT INTO {SQLITE_TABLE} ({SQLITE_TABLE}, rowid, search_key) "
    "VALUES ('delete', old.id, old.search_key); END",
    f"CREATE TRIGGER {SQLITE_TABLE}_update AFTER UPDATE OF search_key ON users "
    "WHEN old.search_key IS NOT new.search_key BEGIN "
    f"INSERT INTO {SQLITE_TABLE} ({SQLITE_TABLE}, rowid, search_key) "
    "VALUES ('delete', old.id, old.search_key); "
    f"INSERT INTO {SQLITE_TABLE} (rowid, search_key) VALUES (new.id, new.search_key); END",
    # The people already there.
    f"INSERT INTO {SQLITE_TABLE} ({SQLITE_TABLE}) VALUES ('rebuild')",
)
_SQLITE_DROP = (
    f"DROP TRIGGER IF EXISTS {SQLITE_TABLE}_insert",
    f"DROP TRIGGER IF EXISTS {SQLITE_TABLE}_delete",
    f"DROP TRIGGER IF EXISTS {SQLITE_TABLE}_update",
    f"DROP TABLE IF EXISTS {SQLITE_TABLE}",
)


def create(conn: Connection) -> bool:
    """Make the index of the users table on ``conn`` (filled with the people there);
    False when this PostgreSQL cannot have ``pg_trgm`` (searches then read the table)."""
    if conn.dialect.name == "sqlite":
        for statement in _SQLITE_CREATE:
            conn.exec_driver_sql(statement)
        return True
    available = conn.exec_driver_sql(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'"
    ).first()
    if available is None:
        return False
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError:  # not allowed to (a role without CREATE on the database)
        return False
    conn.exec_driver_sql(
        f"CREATE INDEX {POSTGRES_INDEX} ON users USING gin (search_key gin_trgm_ops)"
    )
    return True


def drop(conn: Connection) -> None:
    """Remove the index (the extension stays: other tables may use it)."""
    if conn.dialect.name == "sqlite":
        for statement in _SQLITE_DROP:
            conn.exec_driver_sql(statement)
    else:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {POSTGRES_INDEX}")


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's filter of schema comparisons: everything but this index's own tables
    and index (made by DDL, not declared as SQLAlchemy tables)."""
    return name is None or not (name == POSTGRES_INDEX or name.startswith(SQLITE_TABLE))
