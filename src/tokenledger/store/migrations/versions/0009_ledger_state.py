"""ledger state: named values the ledger keeps about itself (the retention horizon)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

``ledger_state`` holds one integer per name; ``retained_from_us`` is the instant before
which raw events were deleted by retention (absent: every event is kept).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("ledger_state")
