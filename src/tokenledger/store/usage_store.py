"""The usage store: the one door to events, users and rollups.

Everything that reads or writes usage goes through a :class:`UsageStore`: the write
path, the usage queries of reports and exports, pages of events, ``verify`` and
``rebuild-rollups``. It carries the metrics and rollups it was made with (the
product's by default), so every query and table it touches follows from those
declarations.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import Any

from sqlalchemy import Column, MetaData, Table
from sqlalchemy.sql import visitors

from tokenledger.events import Event, Rejection
from tokenledger.metrics import METRICS, MetricSet
from tokenledger.pricing import Pricer, default_pricer
from tokenledger.search import fold
from tokenledger.store import event_pages, recompute, retention, writes
from tokenledger.store.database import Database
from tokenledger.store.dimensions import USER_ATTRIBUTES, UserAttribute
from tokenledger.store.rollups import ROLLUPS, Level, Rollup, levels
from tokenledger.store.schema import ROLLUP_TABLES, events, rollup_tables
from tokenledger.store.usage_reads import MetricSql, UsageReader
from tokenledger.usage import UserFilter


class UsageStore:
    """Usage data in one database, summed by ``metrics`` into ``rollups``."""

    def __init__(
        self,
        db: Database,
        *,
        metrics: MetricSet = METRICS,
        rollups: Sequence[Rollup] = ROLLUPS,
        attributes: Sequence[UserAttribute] = USER_ATTRIBUTES,
        erasure_key: bytes | None = None,
        pricer: Pricer | None = None,
    ) -> None:
        self.db = db
        # The server secret of erased persons' pseudonyms (``store/erasure.py``).
        self.erasure_key = erasure_key
        self.pricer = pricer or default_pricer()
        self.metrics = metrics
        self.rollups = tuple(rollups)
        self.attributes = {attribute.name: attribute for attribute in attributes}

    @cached_property
    def levels(self) -> list[Level]:
        return levels(self.rollups)

    @cached_property
    def tables(self) -> dict[Level, Table]:
        if self.metrics is METRICS and self.rollups == ROLLUPS:
            return ROLLUP_TABLES
        return rollup_tables(MetaData(), metrics=self.metrics, rollups=self.rollups)

    @cached_property
    def metric_columns(self) -> tuple[str, ...]:
        """The column of each stored metric, in order."""
        return tuple(metric.name for metric in self.metrics.stored)

    @cached_property
    def metric_sql(self) -> MetricSql:
        """The usage queries' column lists for these metrics (built once)."""
        return MetricSql(self)

    @cached_property
    def metric_event_columns(self) -> tuple[str, ...]:
        """The columns of ``events`` that the metrics are computed from."""
        found: list[str] = []
        for metric in self.metrics.stored:
            for item in visitors.iterate(metric.per_event.sql(events)):
                if isinstance(item, Column) and item.name not in found:
                    found.append(item.name)
        return tuple(found)

    def match_users(self, users: UserFilter, alias: str) -> tuple[str, dict[str, Any]]:
        """A WHERE condition on ``alias`` (a users row) and its parameters.

        The search is a substring test of the folded text, served by the trigram
        index from three letters on (``store/search_index.py``).
        """
        clauses: list[str] = []
        params: dict[str, Any] = {}
        search = users.search
        if search is not None:
            condition, search_params = self.db.dialect.search(alias, fold(search))
            clauses.append(condition)
            params.update(search_params)
        if users.user_id is not None:
            clauses.append(f"{alias}.external_id = :user_id")
            params["user_id"] = users.user_id
        if users.user_pks is not None:  # integers from the database: inlined
            pks = ", ".join(str(int(pk)) for pk in sorted(users.user_pks))
            clauses.append(f"{alias}.id IN ({pks})" if pks else "1 = 0")
        for index, (name, value) in enumerate(users.where):
            column = f"{alias}.{self.attribute(name).column}"
            if value is None:
                clauses.append(f"{column} IS NULL")
            else:
                clauses.append(f"{column} = :where{index}")
                params[f"where{index}"] = value
        return " AND ".join(clauses) or "1 = 1", params

    def attribute(self, name: str) -> UserAttribute:
        """The declared attribute ``name`` (ValueError for any other)."""
        found = self.attributes.get(name)
        if found is None:
            known = ", ".join(self.attributes) or "none"
            raise ValueError(f"unknown attribute {name!r}; declared: {known}")
        return found

    # -- writes ---------------------------------------------------------------------

    def store_batches(
        self, batches: Sequence[tuple[Sequence[Event | Rejection], int]]
    ) -> list[writes.BatchResult]:
        """Store several ``(items, now_us)`` batches in one transaction (one commit)."""
        return writes.store_batches(self, batches)

    def store_batch(self, items: Sequence[Event | Rejection], *, now_us: int) -> writes.BatchResult:
        """Store the valid events of ``items``; one outcome per item, in order."""
        return self.store_batches([(items, now_us)])[0]

    # -- reads ----------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[UsageReader]:
        """Usage queries on one read-only snapshot."""
        with self.db.read() as conn:
            yield UsageReader(self, conn)

    @contextmanager
    def scan(self) -> Iterator[UsageReader]:
        """:meth:`read` on the scan pool (rows read once: each day of a daily export)."""
        with self.db.scan() as conn:
            yield UsageReader(self, conn)

    def retained_from(self) -> int | None:
        """The instant before which retention deleted the raw events (None: none)."""
        return retention.retained_from(self.db)

    def has_events(self) -> bool:
        return self.last_event_id() is not None

    def last_event_id(self) -> int | None:
        """The id of the newest stored event (None when there is none)."""
        return event_pages.last_event_id(self)

    def event_page(
        self,
        *,
        after: tuple[int, int],
        end_us: int,
        last_id: int,
        users: UserFilter,
        page_size: int,
    ) -> Sequence[Sequence[Any]]:
        """The next ``page_size`` events after the keyset ``after`` = (started_us, id)
        and before ``end_us``, of ids up to ``last_id`` (one short transaction), as rows
        of ``id, started_us, event_id, user_pk, user_id, name, email`` then the event's
        fields."""
        return event_pages.event_page(
            self, after=after, end_us=end_us, last_id=last_id, users=users, page_size=page_size
        )

    def event_lines(
        self,
        *,
        after: tuple[int, int],
        end_us: int,
        last_id: int,
        users: UserFilter,
        page_size: int,
        offsets: Sequence[event_pages.Offset],
    ) -> Sequence[Sequence[Any]]:
        """The page :meth:`event_page` reads as ``id, started_us, CSV line or None``
        (the events export's line, written by the database where it can)."""
        return event_pages.line_page(
            self,
            after=after,
            end_us=end_us,
            last_id=last_id,
            users=users,
            page_size=page_size,
            offsets=offsets,
        )

    def event_records(self, ids: Sequence[int]) -> Sequence[Sequence[Any]]:
        """The events ``ids`` as :meth:`event_page` rows, in time order."""
        return event_pages.records(self, ids)

    # -- checks ---------------------------------------------------------------------

    def verify(self) -> dict[str, int]:
        """Rows that differ between each rollup table and the events (0 = clean)."""
        return recompute.verify(self)

    def rebuild(self) -> dict[str, int]:
        """Rewrite every rollup from the events; the new row counts."""
        return recompute.rebuild(self)
