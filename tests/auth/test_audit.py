"""The audit log: append-only (a trigger on both backends), newest first, paged."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tokenledger.auth import audit
from tokenledger.auth.keys import create_key, revoke_key
from tokenledger.store.database import Database


def test_entries_are_newest_first_and_page_both_ways(db: Database) -> None:
    for n in range(7):
        audit.record(
            db,
            actor=f"user{n}@example.com",
            action=audit.EXPORT if n % 2 else audit.SIGN_IN,
            details={"rows": n, "filters": {"q": "ngu<y>ễn"}},
            now_us=n,
            client="192.0.2.1",
        )
    newest = audit.entries(db, limit=3)
    assert [e.actor for e in newest] == [f"user{n}@example.com" for n in (6, 5, 4)]
    older = audit.entries(db, before_id=newest[-1].id, limit=3)
    assert [e.details["rows"] for e in older] == [3, 2, 1]
    newer = audit.entries(db, after_id=older[0].id, limit=2)
    assert [e.details["rows"] for e in newer] == [5, 4]
    exports = audit.entries(db, action=audit.EXPORT, limit=10)
    assert [e.details["rows"] for e in exports] == [5, 3, 1]
    assert exports[0].details["filters"] == {"q": "ngu<y>ễn"}
    assert audit.has_entries(db, action=None, before_id=older[-1].id)
    assert not audit.has_entries(db, action=None, after_id=newest[0].id)


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"]
)
def test_the_database_refuses_to_change_or_delete_entries(db: Database, statement: str) -> None:
    audit.record(db, actor="ada@example.com", action=audit.SIGN_IN, now_us=1)
    with pytest.raises(DBAPIError, match="append-only"), db.write() as conn:
        conn.execute(text(statement))
    (entry,) = audit.entries(db)
    assert entry.actor == "ada@example.com"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_postgresql_refuses_truncate(db: Database) -> None:
    audit.record(db, actor="ada@example.com", action=audit.SIGN_IN, now_us=1)
    with pytest.raises(DBAPIError, match="append-only"), db.write() as conn:
        conn.execute(text("TRUNCATE audit_log"))


def test_key_creation_and_revocation_are_audited(db: Database) -> None:
    key, secret = create_key(
        db, name="gateway", scope="ingest", now_us=10, actor="ada@example.com", client="192.0.2.9"
    )
    revoke_key(db, key.id, now_us=20, actor="ada@example.com")
    revoke_key(db, key.id, now_us=30, actor="ada@example.com")  # already revoked: no entry
    entries = audit.entries(db)
    assert [(e.action, e.actor, e.at_us) for e in entries] == [
        ("key_revoked", "ada@example.com", 20),
        ("key_created", "ada@example.com", 10),
    ]
    expected = {"key_id": key.id, "name": "gateway", "scope": "ingest", "prefix": key.prefix}
    assert entries[0].details == entries[1].details == expected
    assert secret not in repr(entries)
    assert entries[1].client == "192.0.2.9"
