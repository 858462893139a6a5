"""The database schema (SQLAlchemy Core). Alembic migrations create exactly this.

Instants are BIGINT microseconds since the epoch (UTC), the same on SQLite and
PostgreSQL, so bucket arithmetic is identical on both.

Rollups, all written in the transaction that stores their events:

* ``rollup_user_quarter`` / ``rollup_user_hour``: per user and UTC 15-minute / hour
  bucket, plain sums, clustered by (bucket, user) so the edges of a range are one scan;
* ``rollup_user_day``: per user and UTC day with activity, *cumulative* sums up to the
  end of that day, so any run of whole UTC days costs two index seeks per user however
  long it is (the day's own first/last request instants are kept beside them);
* ``rollup_total_quarter`` / ``rollup_total_hour``: the same over all users, for charts.

Rollups are derived data (``tokenledger rebuild-rollups`` rewrites them), so they carry
no foreign keys: a key check per rollup row would slow every ingest for nothing.
"""

from __future__ import annotations

from sqlalchemy import (
    DDL,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    event,
)

metadata = MetaData()

# SQLite needs INTEGER (not BIGINT) for an auto-incrementing rowid primary key.
Id = BigInteger().with_variant(Integer(), "sqlite")

METRICS = (
    "requests",
    "error_requests",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "duration_ms",
)


def _metric_columns(prefix: str = "") -> list[Column[int]]:
    return [
        Column(f"{prefix}{name}", BigInteger, nullable=False, server_default="0")
        for name in METRICS
    ]


users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("external_id", String(255), nullable=False, unique=True),
    Column("name", String(255)),
    Column("name_at_us", BigInteger),
    Column("email", String(320)),
    Column("email_at_us", BigInteger),
    # Name, email and id folded (case and accents removed) for search.
    Column("search_key", Text, nullable=False),
    Column("first_us", BigInteger, nullable=False),
    Column("last_us", BigInteger, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", String(255), nullable=False, unique=True),
    Column("user_pk", Id, ForeignKey("users.id"), nullable=False),
    Column("started_us", BigInteger, nullable=False),
    Column("duration_ms", BigInteger, nullable=False),
    Column("model", String(255)),
    Column("provider", String(255)),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cache_read_tokens", BigInteger),
    Column("cache_write_tokens", BigInteger),
    Column("reasoning_tokens", BigInteger),
    Column("status", String(8), nullable=False),
    Column("metadata", Text),
    # sha256 of the canonical event: tells a retry (duplicate) from a conflict, in the
    # version of events.content_hash it was made with (1 for events stored before it).
    Column("content_hash", LargeBinary(32), nullable=False),
    Column("hash_version", SmallInteger, nullable=False, server_default="1"),
    Column("ingested_us", BigInteger, nullable=False),
    Index("ix_events_started", "started_us", "id"),
)


def _bucket_table(name: str, *, per_user: bool) -> Table:
    keys: list[Column[int]] = [Column("bucket", BigInteger, primary_key=True)]
    if per_user:
        keys.append(Column("user_pk", BigInteger, primary_key=True))
    return Table(
        name,
        metadata,
        *keys,
        *_metric_columns(),
        Column("first_us", BigInteger, nullable=False),
        Column("last_us", BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )


rollup_user_quarter = _bucket_table("rollup_user_quarter", per_user=True)
rollup_user_hour = _bucket_table("rollup_user_hour", per_user=True)
Index("ix_rollup_user_hour_user", rollup_user_hour.c.user_pk, rollup_user_hour.c.bucket)
rollup_total_quarter = _bucket_table("rollup_total_quarter", per_user=False)
rollup_total_hour = _bucket_table("rollup_total_hour", per_user=False)

rollup_user_day = Table(
    "rollup_user_day",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_pk", BigInteger, nullable=False),
    Column("day", Integer, nullable=False),
    *_metric_columns("cum_"),
    Column("day_first_us", BigInteger),
    Column("day_last_us", BigInteger),
    Index("ux_rollup_user_day", "user_pk", "day", unique=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("prefix", String(32), nullable=False),
    # sha256 of the whole key; keys are 256-bit random, so a fast hash is enough.
    Column("key_hash", LargeBinary(32), nullable=False, unique=True),
    Column("scope", String(32), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("last_used_us", BigInteger),
    Column("revoked_us", BigInteger),
)

# Console accounts: the people who read reports (not the AI users in ``users``).
accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),  # stored lower-cased
    Column("display_name", String(255), nullable=False, server_default=""),
    Column("role", String(16), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("password_hash", String(255), nullable=False),  # Argon2id, PHC string
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("last_sign_in_us", BigInteger),
)

# Signed-in browser sessions. Only the SHA-256 of the cookie value is stored; deleting
# a row signs that browser out.
sessions = Table(
    "sessions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("last_seen_us", BigInteger, nullable=False),
    Index("ix_sessions_account", "account_id"),
)

# Failed sign-ins of the last window, for throttling. The e-mail is hashed so a password
# typed into the e-mail field is never stored.
sign_in_failures = Table(
    "sign_in_failures",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at_us", BigInteger, nullable=False),
    Column("email_hash", LargeBinary(32), nullable=False),
    Column("client", String(64), nullable=False),
    Index("ix_sign_in_failures_email", "email_hash", "at_us"),
    Index("ix_sign_in_failures_client", "client", "at_us"),
)

# Who did what. Append-only: the application never updates or deletes a row, and a
# trigger (below, and in migration 0002) refuses UPDATE and DELETE on both backends.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at_us", BigInteger, nullable=False),
    Column("actor", String(400), nullable=False),
    Column("action", String(64), nullable=False),
    Column("details", Text, nullable=False),  # JSON object
    Column("client", String(64)),
    Index("ix_audit_log_action", "action", "id"),
)

AUDIT_LOG_TRIGGERS = {
    "sqlite": (
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    ),
    "postgresql": (
        "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
        "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
    ),
}
for _dialect, _statements in AUDIT_LOG_TRIGGERS.items():
    for _statement in _statements:
        trigger = DDL(_statement).execute_if(dialect=_dialect)  # type: ignore[no-untyped-call]
        event.listen(audit_log, "after_create", trigger)
