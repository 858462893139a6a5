"""The ``prices`` table: admins' own prices, read at every write, changed with an audit
entry in the same transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection, delete, insert, select, text, update

from tokenledger.store.schema import prices

_COLUMNS = (
    prices.c.id,
    prices.c.model,
    prices.c.provider,
    prices.c.valid_from,
    prices.c.input_nanos,
    prices.c.cache_read_nanos,
    prices.c.cache_write_nanos,
    prices.c.output_nanos,
    prices.c.created_us,
)


def rows(conn: Connection) -> Sequence[Any]:
    """Every own price, by model, provider and date."""
    query = select(*_COLUMNS).order_by(prices.c.model, prices.c.provider, prices.c.valid_from)
    return conn.execute(query).all()


def find(conn: Connection, *, model: str, provider: str, valid_from: date) -> Any | None:
    query = select(*_COLUMNS).where(
        prices.c.model == model, prices.c.provider == provider, prices.c.valid_from == valid_from
    )
    return conn.execute(query).first()


def upsert(conn: Connection, *, values: Mapping[str, Any], now_us: int) -> int:
    """Insert the price, or replace the one of the same model, provider and date; its id."""
    found = find(
        conn, model=values["model"], provider=values["provider"], valid_from=values["valid_from"]
    )
    if found is None:
        inserted: int = conn.execute(
            insert(prices).values(**values, created_us=now_us).returning(prices.c.id)
        ).scalar_one()
        return inserted
    conn.execute(update(prices).where(prices.c.id == found.id).values(**values))
    return int(found.id)


def remove(conn: Connection, price_id: int) -> Any | None:
    """Delete price ``price_id``; the deleted row, or None when there was none."""
    found = conn.execute(select(*_COLUMNS).where(prices.c.id == price_id)).first()
    if found is not None:
        conn.execute(delete(prices).where(prices.c.id == price_id))
    return found


def unpriced_models(conn: Connection, *, limit: int) -> Sequence[Any]:
    """The models (and providers) with the most unpriced requests: what to price next.
    A scan of the events; the Prices page is an admin's, seldom opened."""
    return conn.execute(
        text(
            "SELECT coalesce(model, '') AS model, coalesce(provider, '') AS provider, "
            "count(*) AS requests FROM events WHERE cost_nanos IS NULL "
            "GROUP BY coalesce(model, ''), coalesce(provider, '') "
            "ORDER BY requests DESC, model, provider LIMIT :limit"
        ),
        {"limit": limit},
    ).all()
