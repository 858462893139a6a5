"""The database schema (SQLAlchemy Core). Alembic migrations create exactly this.

Instants are BIGINT microseconds since the epoch (UTC), the same on SQLite and
PostgreSQL, so bucket arithmetic is identical on both.

Rollup tables are built from the declarations of :mod:`tokenledger.store.rollups` and
:mod:`tokenledger.metrics` (all written in the transaction that stores their events):

* ``rollup_user_quarter`` / ``rollup_user_hour``: per user and UTC 15-minute / hour
  bucket, plain sums, clustered by (bucket, user) so the edges of a range are one scan;
* ``rollup_user_day``: per user and UTC day with activity, *cumulative* sums up to the
  end of that day, so any run of whole UTC days costs two index seeks per user however
  long it is (the day's own first/last request instants are kept beside them);
* ``rollup_total_quarter`` / ``rollup_total_hour``: the same over all users, for charts.

A new metric is a column ``<name>`` in every bucket table and ``cum_<name>`` in every
day table (BIGINT NOT NULL DEFAULT 0): its migration adds them, then refills the
rollups from the events.

Rollups are derived data (``tokenledger rebuild-rollups`` rewrites them), so they carry
no foreign keys: a key check per rollup row would slow every ingest for nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from sqlalchemy import (
    DDL,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
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

from tokenledger.metrics import METRICS, MetricSet
from tokenledger.store import search_index
from tokenledger.store.rollups import ROLLUPS, Level, Rollup, levels

metadata = MetaData()

# SQLite needs INTEGER (not BIGINT) for an auto-incrementing rowid primary key.
Id = BigInteger().with_variant(Integer(), "sqlite")


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
    # The person's latest non-empty team and department (as name and e-mail: from the
    # events, or the directory's, which wins: see people_directory).
    Column("department", String(255)),
    Column("department_at_us", BigInteger),
    Column("team", String(255)),
    Column("team_at_us", BigInteger),
)


def _create_search_index(target: Table, connection: Connection, **_: object) -> None:
    """The trigram index of ``search_key`` (made by DDL: ``store/search_index.py``)."""
    search_index.create(connection)


event.listen(users, "after_create", _create_search_index)

# The people directory as last imported (``tokenledger people import``): a non-empty
# value here is the person's (in ``users``) whatever their events say; an empty one
# leaves that field to the events.
people_directory = Table(
    "people_directory",
    metadata,
    Column("user_pk", Id, ForeignKey("users.id"), primary_key=True, autoincrement=False),
    Column("name", String(255)),
    Column("email", String(320)),
    Column("department", String(255)),
    Column("team", String(255)),
    Column("imported_us", BigInteger, nullable=False),
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
    # 1 when the metadata says "usage_missing": true (Event.usage_missing).
    Column("usage_missing", SmallInteger, nullable=False, server_default="0"),
    # The event's cost in nano-dollars (NULL: unpriced, unknown) and where it came
    # from: reported, own_price, catalogue or unpriced (tokenledger/pricing.py).
    Column("cost_nanos", BigInteger),
    Column("cost_source", String(16), nullable=False, server_default="unpriced"),
    Index("ix_events_started", "started_us", "id"),
    # A person's events in time order (the person view's pages, by model, heat map).
    Index("ix_events_user_started", "user_pk", "started_us", "id"),
)


def rollup_tables(
    target: MetaData, *, metrics: MetricSet = METRICS, rollups: Iterable[Rollup] = ROLLUPS
) -> dict[Level, Table]:
    """The tables of every rollup level: key columns, one column per metric, the span."""
    return {level: _rollup_table(target, level, metrics) for level in levels(rollups)}


def _rollup_table(target: MetaData, level: Level, metrics: MetricSet) -> Table:
    rollup, name = level.rollup, level.table
    keys = [Column(key.column, key.sql_type, nullable=False) for key in rollup.keys]
    if level.grain.running:
        return Table(
            name,
            target,
            Column("id", Id, primary_key=True, autoincrement=True),
            *keys,
            Column("day", Integer, nullable=False),
            *_metric_columns(metrics, prefix="cum_"),
            Column("day_first_us", BigInteger),
            Column("day_last_us", BigInteger),
            Index(f"ux_{name}", *rollup.key_columns, "day", unique=True),
        )
    for key in keys:
        key.primary_key = True
    table = Table(
        name,
        target,
        Column("bucket", BigInteger, primary_key=True),
        *keys,
        *_metric_columns(metrics),
        Column("first_us", BigInteger, nullable=False),
        Column("last_us", BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    if level.grain in rollup.seek_by_key:
        key_names = "_".join(key.name for key in rollup.keys)
        Index(
            f"ix_{name}_{key_names}",
            *(table.c[column] for column in rollup.key_columns),
            table.c.bucket,
        )
    return table


def _metric_columns(metrics: MetricSet, prefix: str = "") -> list[Column[int]]:
    return [
        Column(f"{prefix}{metric.name}", metric.sql_type(), nullable=False, server_default="0")
        for metric in metrics.stored
    ]


ROLLUP_TABLES = rollup_tables(metadata)

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
    # A ``gateway`` key's person (``users.external_id``, who may not have usage yet).
    Column("user_id", String(255)),
)

# Own prices (negotiated rates, self-hosted models): US dollars per million tokens of
# each kind, as integer nano-dollars, for a model (and a provider, '' for any) from a
# UTC date on; an own price wins over the catalogue (tokenledger/prices.py).
prices = Table(
    "prices",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("model", String(255), nullable=False),
    Column("provider", String(255), nullable=False, server_default=""),
    Column("valid_from", Date, nullable=False),
    Column("input_nanos", BigInteger, nullable=False),
    Column("cache_read_nanos", BigInteger),  # NULL: the input price
    Column("cache_write_nanos", BigInteger),  # NULL: the input price
    Column("output_nanos", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Index("ux_prices", "model", "provider", "valid_from", unique=True),
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
    # Argon2id, PHC string; empty for an account that signs in only with single sign-on.
    Column("password_hash", String(255), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("last_sign_in_us", BigInteger),
    # The OpenID Connect identity (issuer and ``sub``) the account signs in with, if any.
    Column("sso_issuer", String(255)),
    Column("sso_subject", String(255)),
    Index("ux_accounts_sso", "sso_issuer", "sso_subject", unique=True),
)

# Single sign-on attempts between the redirect to the provider and its answer. Only
# hashes of ``state`` and of the browser's pre-session CSRF token are stored; a row is
# marked used by the first answer, so a replayed answer is recognised (and refused).
sso_flows = Table(
    "sso_flows",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("state_hash", LargeBinary(32), nullable=False, unique=True),
    Column("browser_hash", LargeBinary(32), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("code_verifier", String(128), nullable=False),
    Column("redirect_uri", String(2048), nullable=False),
    Column("next_path", String(2048), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("used_us", BigInteger),
    Index("ix_sso_flows_created", "created_us"),
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

# The AI users ``tokenledger demo`` made up: the console shows a "Demo data" banner
# while any is listed, and ``tokenledger demo --remove`` deletes their demo events.
demo_users = Table(
    "demo_users",
    metadata,
    Column("user_pk", Id, ForeignKey("users.id"), primary_key=True, autoincrement=False),
)

# One-time messages carried across a redirect (post/redirect/get), e.g. a new key's
# secret: stored XOR a one-time pad that only the browser's cookie holds, so neither
# the database nor the cookie alone reveals it; read once, then deleted.
flashes = Table(
    "flashes",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_us", BigInteger, nullable=False),
    Column("sealed", LargeBinary, nullable=False),
)

# Sign-in attempts refused while sign-in is paused (throttled), counted rather than
# written to the audit log one by one: one audit entry per pause (``audit_id``) and
# here how many attempts it refused. ``subject_hash`` is the paused e-mail's or client
# address's hash; ``until_us`` is when that pause ends.
sign_in_refusals = Table(
    "sign_in_refusals",
    metadata,
    Column("audit_id", Id, primary_key=True, autoincrement=False),
    Column("subject_hash", LargeBinary(32), nullable=False),
    Column("until_us", BigInteger, nullable=False),
    Column("refused", BigInteger, nullable=False),
    Index("ix_sign_in_refusals_subject", "subject_hash", "until_us"),
)

# Named values the ledger keeps about itself: ``retained_from_us`` is the instant before
# which retention deleted the raw events (no row: every event is kept).
ledger_state = Table(
    "ledger_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
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


@contextmanager
def audit_log_deletes_allowed(conn: Connection) -> Iterator[None]:
    """Inside the caller's write transaction, let DELETE through the audit log's guard
    (for ``tokenledger audit-archive`` only). The guard is back before the transaction
    commits; if the block fails, the rollback restores it (DDL is transactional on both
    backends)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DROP TRIGGER audit_log_no_delete")
        yield
        conn.exec_driver_sql(AUDIT_LOG_TRIGGERS["sqlite"][1])
    else:
        conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
        yield
        conn.exec_driver_sql("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change")


# Budgets (docs/budgets.md): a limit of one metric per person and local period, for
# everyone, the people of a team or department (an attribute of ``users``) or one person.
# ``limit_value`` is in the metric's stored unit (nano-dollars for cost: exact).
budgets = Table(
    "budgets",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("scope", String(32), nullable=False),  # everyone, person, or an attribute
    Column("scope_value", String(255)),  # the person's user id or the attribute's value
    Column("metric", String(32), nullable=False),
    Column("limit_value", BigInteger, nullable=False),
    Column("period", String(8), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("thresholds", String(64), nullable=False),  # percents, e.g. "50,80,100"
    Column("action", String(8), nullable=False),  # alert or block
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

# Where alerts go: a webhook (signed with its own secret), a Slack-compatible incoming
# webhook, or an e-mail address (over the SMTP server of the settings).
alert_channels = Table(
    "alert_channels",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("target", String(2048), nullable=False),
    Column("secret", String(128), nullable=False, server_default=""),
    Column("enabled", Boolean, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    # page (the Budgets page, the CLI) or settings (TOKENLEDGER_ALERT_*; no secret here)
    Column("source", String(16), nullable=False, server_default="page"),
)

# A person's usage crossed a threshold of a budget in a period: at most one row per
# (budget, person, period, threshold) whatever the processes and retries (the unique
# key; rows are inserted with ON CONFLICT DO NOTHING), and its deliveries (the outbox)
# are written in the same transaction.
budget_crossings = Table(
    "budget_crossings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("budget_id", BigInteger, nullable=False),
    Column("user_pk", BigInteger, nullable=False),
    Column("period_start_us", BigInteger, nullable=False),
    Column("period_end_us", BigInteger, nullable=False),
    Column("threshold", Integer, nullable=False),
    Column("used", BigInteger, nullable=False),
    Column("limit_value", BigInteger, nullable=False),
    Column("crossed_us", BigInteger, nullable=False),
    Index(
        "ux_budget_crossings", "budget_id", "user_pk", "period_start_us", "threshold", unique=True
    ),
)

# The outbox: one row per crossing and channel, tried until sent or 24 hours old.
# ``next_try_us`` is when it may be tried next; a sender claims a row by moving it
# forward (a lease), so only one process tries it at a time.
alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("crossing_id", BigInteger, ForeignKey("budget_crossings.id"), nullable=False),
    Column("channel_id", BigInteger, ForeignKey("alert_channels.id"), nullable=False),
    Column("status", String(8), nullable=False),  # pending, sent, failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_try_us", BigInteger, nullable=False),
    Column("deadline_us", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("sent_us", BigInteger),
    Column("last_code", Integer),
    Column("last_error", String(500)),
    Index("ux_alert_deliveries", "crossing_id", "channel_id", unique=True),
    Index("ix_alert_deliveries_due", "status", "next_try_us"),
)

# Every attempt to deliver an alert, as the Budgets page lists it.
alert_attempts = Table(
    "alert_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("delivery_id", BigInteger, ForeignKey("alert_deliveries.id"), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("outcome", String(8), nullable=False),  # sent or error
    Column("response_code", Integer),
    Column("error", String(500)),
    Column("next_try_us", BigInteger),
    Index("ix_alert_attempts_delivery", "delivery_id", "id"),
)
