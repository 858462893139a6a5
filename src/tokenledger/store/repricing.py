"""The SQL of ``tokenledger reprice``: the events whose cost comes from prices (not a
reported cost) from an instant on, optionally of one model; their totals, their rows
page by page, and the update of their costs. The caller rewrites the rollups with
``recompute.rebuild_part`` in the same transaction."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

_PAGE = 2000


@dataclass(frozen=True)
class Selection:
    """The events a reprice covers."""

    from_us: int
    model: str | None = None

    @property
    def where(self) -> str:
        clause = "started_us >= :from_us AND cost_source <> 'reported'"
        return clause + (" AND model = :model" if self.model is not None else "")

    @property
    def params(self) -> dict[str, Any]:
        found: dict[str, Any] = {"from_us": self.from_us}
        if self.model is not None:
            found["model"] = self.model
        return found


@dataclass(frozen=True)
class Totals:
    events: int
    cost_nanos: int
    unpriced: int
    first_us: int | None
    last_us: int | None


def totals(conn: Connection, selection: Selection) -> Totals:
    row = conn.execute(
        text(
            "SELECT count(*), coalesce(sum(cost_nanos), 0), "
            "coalesce(sum(CASE WHEN cost_nanos IS NULL THEN 1 ELSE 0 END), 0), "
            f"min(started_us), max(started_us) FROM events WHERE {selection.where}"
        ),
        selection.params,
    ).one()
    return Totals(int(row[0]), int(row[1]), int(row[2]), row[3], row[4])


def users(conn: Connection, selection: Selection) -> list[tuple[int, str]]:
    """``(pk, external id)`` of the users the selection's events belong to."""
    query = text(
        "SELECT id, external_id FROM users WHERE id IN "
        f"(SELECT DISTINCT user_pk FROM events WHERE {selection.where}) ORDER BY id"
    )
    return [(int(row[0]), row[1]) for row in conn.execute(query, selection.params)]


def users_sql(pks: Sequence[int]) -> str:
    """A SELECT of these user pks (integers written in: ``rebuild_part`` takes SQL)."""
    return f"SELECT id FROM users WHERE id IN ({', '.join(str(int(pk)) for pk in pks)})"


def pages(conn: Connection, selection: Selection) -> Iterator[Sequence[Any]]:
    """The selection's events by id, a page at a time: ``id, model, provider,
    started_us, input, output, cache_read, cache_write, cost_nanos, cost_source``."""
    after = 0
    while True:
        rows = conn.execute(
            text(
                "SELECT id, model, provider, started_us, input_tokens, output_tokens, "
                "cache_read_tokens, cache_write_tokens, cost_nanos, cost_source FROM events "
                f"WHERE {selection.where} AND id > :after ORDER BY id LIMIT {_PAGE}"
            ),
            {**selection.params, "after": after},
        ).all()
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def set_costs(conn: Connection, changes: Sequence[tuple[int | None, str, int]]) -> None:
    """Write ``(cost_nanos, cost_source, event id)`` of changed events."""
    if changes:
        conn.execute(
            text("UPDATE events SET cost_nanos = :cost, cost_source = :source WHERE id = :id"),
            [
                {"cost": cost, "source": source, "id": event_pk}
                for cost, source, event_pk in changes
            ],
        )
