"""Schema migrations (Alembic), applied by ``tokenledger migrate`` and ``serve``."""

from __future__ import annotations

from functools import cache

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

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


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str | None:
    """The newest revision this version of TokenLedger knows."""
    return _scripts().get_current_head()


def is_known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of this version's (not a newer version's)."""
    return revision in {script.revision for script in _scripts().walk_revisions()}


def is_up_to_date(db: Database) -> bool:
    return current_revision(db) == head_revision()
