"""Cost: each event's cost (nano-dollars) and its source; cost in every rollup

Events stored before this revision carry no cost: they are unpriced (``cost_nanos``
NULL, ``cost_source`` 'unpriced'), so each rollup row's ``unpriced_requests`` is its
``requests`` and its cost 0, which is what the update below writes (no recount).
``tokenledger reprice --from DATE`` prices them afterwards.

Revision ID: 0007_i13
Revises: 0007 (re-chained on branch i15: 0006 on its own)
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_i13"
down_revision = "0007"
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


def _metric(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)


def upgrade() -> None:
    op.add_column("events", sa.Column("cost_nanos", sa.BigInteger(), nullable=True))
    op.add_column(
        "events",
        sa.Column("cost_source", sa.String(length=16), server_default="unpriced", nullable=False),
    )
    for table in BUCKET_TABLES:
        for name in METRICS:
            op.add_column(table, _metric(name))
        op.execute(f"UPDATE {table} SET unpriced_requests = requests")
    for table in DAY_TABLES:
        for name in METRICS:
            op.add_column(table, _metric(f"cum_{name}"))
        op.execute(f"UPDATE {table} SET cum_unpriced_requests = cum_requests")


def downgrade() -> None:
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
