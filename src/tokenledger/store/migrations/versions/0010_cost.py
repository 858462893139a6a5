"""Cost: each event's cost (nano-dollars) and its source; cost in every rollup; own
prices; usage per user and model (rollup_user_model_hour / _day)

Events stored before this revision carry no cost: they are unpriced (``cost_nanos``
NULL, ``cost_source`` 'unpriced'), so each rollup row's ``unpriced_requests`` is its
``requests`` and its cost 0, which is what the update below writes (no recount).
``tokenledger reprice --from DATE`` prices them afterwards.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# The rollup tables at this revision: plain sums per bucket, running totals per day.
BUCKET_TABLES = (
    "rollup_user_quarter",
    "rollup_user_hour",
    "rollup_total_quarter",
    "rollup_total_hour",
)
DAY_TABLES = ("rollup_user_day",)
METRICS = ("cost_nanos", "unpriced_requests")
# Every metric at this revision, and its contribution from one event (SQL).
ALL_METRICS = (
    ("requests", "1"),
    ("error_requests", "CASE WHEN status = 'error' THEN 1 ELSE 0 END"),
    ("input_tokens", "input_tokens"),
    ("output_tokens", "output_tokens"),
    ("cache_read_tokens", "coalesce(cache_read_tokens, 0)"),
    ("cache_write_tokens", "coalesce(cache_write_tokens, 0)"),
    ("reasoning_tokens", "coalesce(reasoning_tokens, 0)"),
    ("duration_ms", "duration_ms"),
    ("usage_missing_requests", "usage_missing"),
    ("cost_nanos", "coalesce(cost_nanos, 0)"),
    ("unpriced_requests", "CASE WHEN cost_nanos IS NULL THEN 1 ELSE 0 END"),
)
KEYS = ("user_pk", "model", "provider")
US_PER_HOUR = 3_600_000_000
US_PER_DAY = 86_400_000_000


def _bucket(step: int) -> str:
    """Floor division of started_us by ``step`` (SQL ``/`` truncates toward zero)."""
    return (
        f"(CASE WHEN started_us >= 0 THEN started_us / {step} "
        f"ELSE -((-started_us - 1) / {step}) - 1 END)"
    )


def _grouped(step: int, first: str, last: str) -> str:
    sums = ", ".join(f"sum({sql}) AS {name}" for name, sql in ALL_METRICS)
    return (
        f"SELECT {_bucket(step)} AS bucket, user_pk, coalesce(model, '') AS model, "
        f"coalesce(provider, '') AS provider, {sums}, min(started_us) AS {first}, "
        f"max(started_us) AS {last} FROM events GROUP BY 1, 2, 3, 4"
    )


def _metric_columns(prefix: str = "") -> list[sa.Column[int]]:
    return [_metric(f"{prefix}{name}") for name, _ in ALL_METRICS]


def _create_user_model_rollup() -> None:
    keys: list[sa.Column[Any]] = [
        sa.Column("user_pk", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("provider", sa.String(length=255), nullable=False),
    ]
    op.create_table(
        "rollup_user_model_hour",
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        *keys,
        *_metric_columns(),
        sa.Column("first_us", sa.BigInteger(), nullable=False),
        sa.Column("last_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", *KEYS),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_rollup_user_model_hour_user_model_provider",
        "rollup_user_model_hour",
        [*KEYS, "bucket"],
        unique=False,
    )
    op.create_table(
        "rollup_user_model_day",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        *[sa.Column(c.name, c.type, nullable=False) for c in keys],
        sa.Column("day", sa.Integer(), nullable=False),
        *_metric_columns("cum_"),
        sa.Column("day_first_us", sa.BigInteger(), nullable=True),
        sa.Column("day_last_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ux_rollup_user_model_day", "rollup_user_model_day", [*KEYS, "day"], unique=True
    )
    names = [name for name, _ in ALL_METRICS]
    columns = ", ".join(names)
    op.execute(
        f"INSERT INTO rollup_user_model_hour (bucket, {', '.join(KEYS)}, {columns}, "
        f"first_us, last_us) SELECT * FROM ({_grouped(US_PER_HOUR, 'first_us', 'last_us')}) AS g"
    )
    running = ", ".join(
        f"sum({name}) OVER (PARTITION BY user_pk, model, provider ORDER BY bucket)"
        for name in names
    )
    op.execute(
        f"INSERT INTO rollup_user_model_day ({', '.join(KEYS)}, day, "
        f"{', '.join(f'cum_{name}' for name in names)}, day_first_us, day_last_us) "
        f"SELECT user_pk, model, provider, bucket, {running}, day_first_us, day_last_us "
        f"FROM ({_grouped(US_PER_DAY, 'day_first_us', 'day_last_us')}) AS g"
    )


def _metric(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)


def upgrade() -> None:
    op.add_column("events", sa.Column("cost_nanos", sa.BigInteger(), nullable=True))
    op.add_column(
        "events",
        sa.Column("cost_source", sa.String(length=16), server_default="unpriced", nullable=False),
    )
    op.create_table(
        "prices",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("provider", sa.String(length=255), server_default="", nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("input_nanos", sa.BigInteger(), nullable=False),
        sa.Column("cache_read_nanos", sa.BigInteger(), nullable=True),
        sa.Column("cache_write_nanos", sa.BigInteger(), nullable=True),
        sa.Column("output_nanos", sa.BigInteger(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ux_prices", "prices", ["model", "provider", "valid_from"], unique=True)
    for table in BUCKET_TABLES:
        for name in METRICS:
            op.add_column(table, _metric(name))
        op.execute(f"UPDATE {table} SET unpriced_requests = requests")
    _create_user_model_rollup()
    for table in DAY_TABLES:
        for name in METRICS:
            op.add_column(table, _metric(f"cum_{name}"))
        op.execute(f"UPDATE {table} SET cum_unpriced_requests = cum_requests")


def downgrade() -> None:
    op.drop_index("ux_rollup_user_model_day", table_name="rollup_user_model_day")
    op.drop_table("rollup_user_model_day")
    op.drop_index(
        "ix_rollup_user_model_hour_user_model_provider", table_name="rollup_user_model_hour"
    )
    op.drop_table("rollup_user_model_hour")
    op.drop_index("ux_prices", table_name="prices")
    op.drop_table("prices")
    for table in BUCKET_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name in METRICS:
                batch_op.drop_column(name)
    for table in DAY_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name in METRICS:
                batch_op.drop_column(f"cum_{name}")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("cost_source")
        batch_op.drop_column("cost_nanos")
