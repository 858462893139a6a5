"""events.usage_missing and the metric usage_missing_requests in every rollup

A request whose usage never arrived (the gateway marks it ``"usage_missing": true`` in
its metadata) is counted, so reports can say how many requests have no usage instead
of showing a silent 0. Events stored before this revision are marked from their
metadata, and the rollups they fed get their counts (usually none: the gateway that
writes the mark arrives with this revision).

This migration spells out its tables and SQL as they are at this revision (never the
live declarations, which later revisions extend).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

US_PER_QUARTER = 15 * 60 * 1_000_000
US_PER_HOUR = 60 * 60 * 1_000_000
US_PER_DAY = 24 * US_PER_HOUR
# (table, its key columns besides the bucket, bucket width)
BUCKET_TABLES = (
    ("rollup_user_quarter", ("user_pk",), US_PER_QUARTER),
    ("rollup_user_hour", ("user_pk",), US_PER_HOUR),
    ("rollup_total_quarter", (), US_PER_QUARTER),
    ("rollup_total_hour", (), US_PER_HOUR),
)
DAY_TABLE = "rollup_user_day"
_CHUNK = 500


def _bucket(step: int) -> str:
    return (
        f"(CASE WHEN started_us >= 0 THEN started_us / {step} "
        f"ELSE -((-started_us - 1) / {step}) - 1 END)"
    )


def upgrade() -> None:
    counted = sa.Column("usage_missing", sa.SmallInteger(), server_default="0", nullable=False)
    op.add_column("events", counted)
    for table, _keys, _step in BUCKET_TABLES:
        op.add_column(
            table,
            sa.Column(
                "usage_missing_requests", sa.BigInteger(), server_default="0", nullable=False
            ),
        )
    op.add_column(
        DAY_TABLE,
        sa.Column(
            "cum_usage_missing_requests", sa.BigInteger(), server_default="0", nullable=False
        ),
    )
    if _mark_events():
        _count_in_rollups()


def _mark_events() -> int:
    """Set events.usage_missing from the metadata of the events stored before."""
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT id, metadata FROM events WHERE metadata LIKE '%usage_missing%'")
    ).all()
    marked = []
    for row_id, metadata in rows:
        document = json.loads(metadata)
        if isinstance(document, dict) and document.get("usage_missing") is True:
            marked.append(row_id)
    update = sa.text("UPDATE events SET usage_missing = 1 WHERE id IN :ids").bindparams(
        sa.bindparam("ids", expanding=True)
    )
    for start in range(0, len(marked), _CHUNK):
        conn.execute(update, {"ids": marked[start : start + _CHUNK]})
    return len(marked)


def _count_in_rollups() -> None:
    conn = op.get_bind()
    for table, keys, step in BUCKET_TABLES:
        key_select = "".join(f"{key}, " for key in keys)
        same_key = "".join(f"{table}.{key} = s.{key} AND " for key in keys)
        conn.execute(
            sa.text(
                f"UPDATE {table} SET usage_missing_requests = s.n FROM ("
                f"SELECT {key_select}{_bucket(step)} AS bucket, count(*) AS n FROM events "
                f"WHERE usage_missing = 1 GROUP BY {key_select}{_bucket(step)}) AS s "
                f"WHERE {same_key}{table}.bucket = s.bucket"
            )
        )
    conn.execute(
        sa.text(
            f"UPDATE {DAY_TABLE} SET cum_usage_missing_requests = ("
            "SELECT count(*) FROM events e WHERE e.user_pk = "
            f"{DAY_TABLE}.user_pk AND e.usage_missing = 1 AND "
            f"e.started_us < ({DAY_TABLE}.day + 1) * {US_PER_DAY}) "
            f"WHERE user_pk IN (SELECT user_pk FROM events WHERE usage_missing = 1)"
        )
    )


def downgrade() -> None:
    for table in (*(table for table, _keys, _step in BUCKET_TABLES), DAY_TABLE):
        column = "cum_usage_missing_requests" if table == DAY_TABLE else "usage_missing_requests"
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column(column)
    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_column("usage_missing")
