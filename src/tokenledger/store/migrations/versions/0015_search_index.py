"""search index: trigrams of the people's search keys (pg_trgm GIN; SQLite FTS5)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30

Search as you type matched the folded text of every person by substring, reading the
whole users table each time. The index (``store/search_index.py``) makes a search of
three letters or more read only the people whose key holds its trigrams. Building it
reads every person once (seconds at 100,000 people).
"""

from __future__ import annotations

from alembic import op

from tokenledger.store import search_index

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    search_index.create(op.get_bind())


def downgrade() -> None:
    search_index.drop(op.get_bind())
