"""gateway person keys: the person an API key speaks for

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

A ``gateway`` key names one person (``user_id``, the id their usage is counted under);
every other key has none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("user_id")
