"""Readiness: can this process serve? The database must answer, be migrated to the
newest revision, and (SQLite) be writable, or every ingest would get a 503."""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from tokenledger.store import migrate
from tokenledger.store.database import Database, DatabaseUnavailable

log = logging.getLogger("tokenledger.health")


def not_ready_because(db: Database) -> str | None:
    """None when ready; else the reason, in a few words that reveal nothing of the
    set-up (the detail goes to the log)."""
    try:
        db.check_writable()
        if not migrate.is_up_to_date(db):
            log.warning("not ready: the database schema is not at the newest revision")
            return "database not migrated"
    except (DatabaseUnavailable, SQLAlchemyError) as exc:
        log.warning("not ready: database unavailable", extra={"detail": _first_line(exc)})
        return "database unavailable"
    return None


def _first_line(exc: Exception) -> str:
    original = getattr(exc, "orig", None) or exc  # the driver's message, without the SQL
    lines = str(original).strip().splitlines()
    return lines[0] if lines else type(original).__name__
