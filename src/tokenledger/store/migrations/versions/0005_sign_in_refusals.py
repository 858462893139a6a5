"""sign-in attempts refused while paused: counted, one audit entry per pause

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_refusals",
        sa.Column(
            "audit_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("subject_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("until_us", sa.BigInteger(), nullable=False),
        sa.Column("refused", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("audit_id"),
    )
    with op.batch_alter_table("sign_in_refusals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sign_in_refusals_subject", ["subject_hash", "until_us"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sign_in_refusals", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_refusals_subject")
    op.drop_table("sign_in_refusals")
