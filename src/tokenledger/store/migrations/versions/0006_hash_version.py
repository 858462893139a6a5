"""events.hash_version: the version of each stored event's content hash

Events stored before this revision carry version 1 (the positional hash); new ones
are written with the version the application computes (2: by field name).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: no table rewrite on PostgreSQL 11+, a plain ADD COLUMN on SQLite.
    op.add_column(
        "events",
        sa.Column("hash_version", sa.SmallInteger(), server_default="1", nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("hash_version")
