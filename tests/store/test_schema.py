"""The migrations create exactly the tables of ``schema.py``, and downgrade cleanly."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from tokenledger.store import migrate, search_index
from tokenledger.store.database import Database
from tokenledger.store.schema import audit_log, metadata


def test_migrated_database_matches_schema_py(db: Database) -> None:
    with db.engine.connect() as conn:
        opts = {"compare_type": True, "include_name": search_index.include_name}
        context = MigrationContext.configure(conn, opts=opts)
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_revision_0002_downgrades_and_upgrades_again(db: Database) -> None:
    config = migrate.alembic_config()
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
    assert "audit_log" not in inspect(db.engine).get_table_names()
    migrate.upgrade(db)
    assert {"accounts", "sessions", "sign_in_failures", "audit_log"} <= set(
        inspect(db.engine).get_table_names()
    )
    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    assert migrate.current_revision(db) == head


def test_revision_0003_sso_downgrades_and_upgrades_again(db: Database) -> None:
    config = migrate.alembic_config()
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")
    assert "sso_flows" not in inspect(db.engine).get_table_names()
    assert "sso_subject" not in {
        column["name"] for column in inspect(db.engine).get_columns("accounts")
    }
    migrate.upgrade(db)
    assert "sso_flows" in inspect(db.engine).get_table_names()
    assert migrate.is_up_to_date(db)


def test_schema_py_alone_also_makes_the_audit_log_append_only() -> None:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            audit_log.insert(), {"at_us": 1, "actor": "a", "action": "sign_in", "details": "{}"}
        )
    for statement in ("UPDATE audit_log SET actor = 'b'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    engine.dispose()
