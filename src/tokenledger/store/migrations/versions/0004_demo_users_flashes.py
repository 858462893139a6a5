"""demo users marked, one-time flashes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

``demo_users`` lists the AI users ``tokenledger demo`` made up. Demo data loaded before
this revision is found by its event ids (``demo-<user id>-<YYYYmmddTHHMMSS>-<n>``) and
listed too, so ``tokenledger demo --remove`` and the console's banner know about it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "demo_users",
        sa.Column("user_pk", _ID, autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(["user_pk"], ["users.id"]),
        sa.PrimaryKeyConstraint("user_pk"),
    )
    op.create_table(
        "flashes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # Demo data of earlier versions: users with an event whose id is the demo's.
    op.execute(
        "INSERT INTO demo_users (user_pk) SELECT DISTINCT e.user_pk FROM events e "
        "JOIN users u ON u.id = e.user_pk "
        "WHERE e.event_id LIKE 'demo-%' "
        "AND substr(e.event_id, 1, length(u.external_id) + 6) = 'demo-' || u.external_id || '-' "
        "AND substr(e.event_id, length(u.external_id) + 15, 1) = 'T' "
        "AND substr(e.event_id, length(u.external_id) + 22, 1) = '-'"
    )


def downgrade() -> None:
    op.drop_table("flashes")
    op.drop_table("demo_users")
