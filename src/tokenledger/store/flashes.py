"""One-time flashes: sealed messages kept between a POST and the GET it redirects to."""

from __future__ import annotations

from sqlalchemy import delete, insert

from tokenledger.store.database import Database
from tokenledger.store.schema import flashes


def put_flash(db: Database, *, flash_id: str, sealed: bytes, now_us: int, max_age_us: int) -> None:
    """Store a flash (and forget the flashes nobody came back for)."""
    with db.write() as conn:
        conn.execute(delete(flashes).where(flashes.c.created_us < now_us - max_age_us))
        conn.execute(insert(flashes).values(id=flash_id, sealed=sealed, created_us=now_us))


def take_flash(db: Database, *, flash_id: str, now_us: int, max_age_us: int) -> bytes | None:
    """The flash's sealed bytes, deleted as they are read: a flash is read once."""
    with db.write() as conn:
        row = conn.execute(
            delete(flashes)
            .where(flashes.c.id == flash_id)
            .returning(flashes.c.sealed, flashes.c.created_us)
        ).first()
    if row is None or row.created_us < now_us - max_age_us:
        return None
    return bytes(row.sealed)
