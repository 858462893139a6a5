"""usage per model over everyone (rollup_model_hour / _day)

The model report without a search or filter summed the per-person-and-model rollup:
at 10,000 people two index seeks per person and model, seconds per report. These
tables hold the same sums per (model, provider) only. They are filled from
``rollup_user_model_hour``, which holds every hour since revision 0010 (retention
keeps rollups), so they agree with it from the first report.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# The metrics at this revision, in declaration order.
METRICS = (
    "requests",
    "error_requests",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "duration_ms",
    "usage_missing_requests",
    "cost_nanos",
    "unpriced_requests",
)
KEYS = ("model", "provider")
HOURS_PER_DAY = 24


def _metric(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)


def _keys() -> list[sa.Column[str]]:
    return [sa.Column(key, sa.String(length=255), nullable=False) for key in KEYS]


def _day(column: str) -> str:
    """The UTC day of an hour bucket (floor division; buckets may be negative)."""
    per = HOURS_PER_DAY
    return (
        f"(CASE WHEN {column} >= 0 THEN {column} / {per} ELSE -((-{column} - 1) / {per}) - 1 END)"
    )


def upgrade() -> None:
    op.create_table(
        "rollup_model_hour",
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        *_keys(),
        *[_metric(name) for name in METRICS],
        sa.Column("first_us", sa.BigInteger(), nullable=False),
        sa.Column("last_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", *KEYS),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "rollup_model_day",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        *_keys(),
        sa.Column("day", sa.Integer(), nullable=False),
        *[_metric(f"cum_{name}") for name in METRICS],
        sa.Column("day_first_us", sa.BigInteger(), nullable=True),
        sa.Column("day_last_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ux_rollup_model_day", "rollup_model_day", [*KEYS, "day"], unique=True)
    keys = ", ".join(KEYS)
    columns = ", ".join(METRICS)
    sums = ", ".join(f"CAST(sum({name}) AS BIGINT)" for name in METRICS)
    op.execute(
        f"INSERT INTO rollup_model_hour (bucket, {keys}, {columns}, first_us, last_us) "
        f"SELECT bucket, {keys}, {sums}, min(first_us), max(last_us) "
        f"FROM rollup_user_model_hour GROUP BY bucket, {keys}"
    )
    running = ", ".join(
        f"CAST(sum({name}) OVER (PARTITION BY {keys} ORDER BY day) AS BIGINT)" for name in METRICS
    )
    named = ", ".join(f"CAST(sum({name}) AS BIGINT) AS {name}" for name in METRICS)
    op.execute(
        f"INSERT INTO rollup_model_day ({keys}, day, "
        f"{', '.join(f'cum_{name}' for name in METRICS)}, day_first_us, day_last_us) "
        f"SELECT {keys}, day, {running}, day_first_us, day_last_us FROM ("
        f"SELECT {keys}, {_day('bucket')} AS day, {named}, min(first_us) AS day_first_us, "
        f"max(last_us) AS day_last_us FROM rollup_model_hour GROUP BY {keys}, 3) AS g"
    )


def downgrade() -> None:
    op.drop_index("ux_rollup_model_day", table_name="rollup_model_day")
    op.drop_table("rollup_model_day")
    op.drop_table("rollup_model_hour")
