"""Schema migrations (Alembic), applied by ``tokenledger migrate`` and ``serve``."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from tokenledger.store.database import Database


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", "tokenledger.store:migrations")
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (the newest by default)."""
    config = alembic_config()
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
