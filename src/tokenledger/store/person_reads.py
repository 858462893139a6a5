"""One person's raw events: pages newest first (by keyset, never OFFSET) and a scan for
the person view's per-model table and weekday-hour heat map.

Both read ``ix_events_user_started`` (user_pk, started_us, id): one person's events in a
range are a range scan of that index, whatever the size of the table, so per-model
figures come from the events themselves rather than from a per-model rollup.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

if TYPE_CHECKING:
    from tokenledger.store.usage_store import UsageStore


@dataclass(frozen=True)
class PersonRow:
    """A person as ``users`` holds them (activity span None before any request)."""

    user_pk: int
    user_id: str
    name: str | None
    email: str | None
    team: str | None
    department: str | None
    first_us: int | None
    last_us: int | None


def person(store: UsageStore, user_id: str) -> PersonRow | None:
    with store.db.read() as conn:
        row = conn.execute(
            text(
                "SELECT id, external_id, name, email, team, department, first_us, last_us "
                "FROM users WHERE external_id = :id"
            ),
            {"id": user_id},
        ).one_or_none()
    if row is None:
        return None
    first_us, last_us = row[6], row[7]
    if first_us > last_us:  # known from the directory only: no request yet
        first_us = last_us = None
    return PersonRow(row[0], row[1], row[2], row[3], row[4], row[5], first_us, last_us)


_SCAN_SQL = (
    "SELECT started_us, model, provider, status, duration_ms, input_tokens, output_tokens, "
    "cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_nanos FROM events "
    "WHERE user_pk = :pk AND started_us >= :a AND started_us < :b"
)


def scan(store: UsageStore, *, user_pk: int, start_us: int, end_us: int) -> Iterator[Sequence[Any]]:
    """Every event of the person in ``[start_us, end_us)`` (any order), streamed."""
    with store.db.read() as conn:
        result = conn.execution_options(stream_results=True, yield_per=5000).execute(
            text(_SCAN_SQL), {"pk": user_pk, "a": start_us, "b": end_us}
        )
        yield from result


PAGE_COLUMNS = (
    "id",
    "started_us",
    "event_id",
    "model",
    "provider",
    "status",
    "duration_ms",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "metadata",
)


def page(
    store: UsageStore,
    *,
    user_pk: int,
    start_us: int,
    end_us: int,
    before: tuple[int, int] | None,
    model: str | None,
    status: str | None,
    page_size: int,
) -> list[Sequence[Any]]:
    """The next ``page_size`` events of the person, newest first, strictly before the
    keyset ``before`` = (started_us, id) (None: from the end of the range), with
    :data:`PAGE_COLUMNS`. ``model`` "" selects events without one."""
    params: dict[str, Any] = {"pk": user_pk, "a": start_us, "b": end_us, "n": page_size}
    clauses = ["user_pk = :pk", "started_us >= :a", "started_us < :b"]
    if before is not None:
        # (started_us, id) < (:bu, :bid), written so both databases seek the index.
        clauses.append("started_us <= :bu AND (started_us < :bu OR id < :bid)")
        params["bu"], params["bid"] = before
    if model is not None:
        if model == "":
            clauses.append("model IS NULL")
        else:
            clauses.append("model = :model")
            params["model"] = model
    if status is not None:
        clauses.append("status = :status")
        params["status"] = status
    query = (
        f"SELECT {', '.join(PAGE_COLUMNS)} FROM events WHERE {' AND '.join(clauses)} "
        "ORDER BY started_us DESC, id DESC LIMIT :n"
    )
    with store.db.read() as conn:
        return list(conn.execute(text(query), params).all())
