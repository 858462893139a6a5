"""alert channels from the settings: where each channel was configured

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30

``alert_channels.source`` is ``page`` for a channel added on the Budgets page or with
``tokenledger budgets add-channel``, ``settings`` for one the server made from its
``TOKENLEDGER_ALERT_*`` settings (docs/budgets.md: a kind set in the settings wins).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "alert_channels",
        sa.Column("source", sa.String(length=16), nullable=False, server_default="page"),
    )


def downgrade() -> None:
    with op.batch_alter_table("alert_channels") as batch_op:
        batch_op.drop_column("source")
