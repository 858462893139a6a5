"""single sign-on: accounts' OpenID Connect identity, pending sign-in flows

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sso_issuer", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("sso_subject", sa.String(length=255), nullable=True))
        batch_op.create_index("ux_accounts_sso", ["sso_issuer", "sso_subject"], unique=True)

    op.create_table(
        "sso_flows",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("state_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("browser_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2048), nullable=False),
        sa.Column("next_path", sa.String(length=2048), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("used_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("state_hash"),
    )
    with op.batch_alter_table("sso_flows", schema=None) as batch_op:
        batch_op.create_index("ix_sso_flows_created", ["created_us"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sso_flows", schema=None) as batch_op:
        batch_op.drop_index("ix_sso_flows_created")
    op.drop_table("sso_flows")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index("ux_accounts_sso")
        batch_op.drop_column("sso_subject")
        batch_op.drop_column("sso_issuer")
