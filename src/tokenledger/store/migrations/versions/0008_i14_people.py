"""people: team and department of a person, the people directory

Revision ID: 0008_i14
Revises: 0007_i13 (re-chained on branch i15: 0006 on its own)
Create Date: 2026-12-01

``users`` gains each person's latest team and department (from events' ``user.team``
and ``user.department``, as name and e-mail); ``people_directory`` holds the directory
as last imported, whose non-empty values win over the events'.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_i14"
down_revision = "0007_i13"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Nullable columns without a default: no table rewrite on either database.
    op.add_column("users", sa.Column("department", sa.String(length=255), nullable=True))
    op.add_column("users", sa.Column("department_at_us", sa.BigInteger(), nullable=True))
    op.add_column("users", sa.Column("team", sa.String(length=255), nullable=True))
    op.add_column("users", sa.Column("team_at_us", sa.BigInteger(), nullable=True))
    op.create_table(
        "people_directory",
        sa.Column("user_pk", _ID, autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("department", sa.String(length=255), nullable=True),
        sa.Column("team", sa.String(length=255), nullable=True),
        sa.Column("imported_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_pk"], ["users.id"]),
        sa.PrimaryKeyConstraint("user_pk"),
    )


def downgrade() -> None:
    op.drop_table("people_directory")
    # A plain DROP COLUMN (SQLite 3.35+): recreating ``users`` would break the foreign
    # keys that point to it.
    for column in ("team_at_us", "team", "department_at_us", "department"):
        op.execute(f"ALTER TABLE users DROP COLUMN {column}")
