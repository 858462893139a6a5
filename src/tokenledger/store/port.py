"""The store port: what the rest of TokenLedger asks of the usage data.

Ingest, reports, exports and the commands use only these two interfaces, never SQL.
:class:`~tokenledger.store.usage_store.UsageStore` implements them for SQLite and
PostgreSQL; another backend (e.g. ClickHouse for scale-out) implements the same
methods, summing the same metrics (``metrics``) into its own storage.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from tokenledger.events import Event, Rejection
from tokenledger.metrics import MetricSet, Raw
from tokenledger.store.event_pages import Offset
from tokenledger.store.rollups import Rollup
from tokenledger.store.usage_reads import PageOrder, UserPage
from tokenledger.store.writes import BatchResult
from tokenledger.usage import Profile, UserFilter

Batch = tuple[Sequence[Event | Rejection], int]  # (validated items, now_us)


class UsageQueries(Protocol):
    """Usage over ranges, read on one snapshot. Ranges are UTC microseconds
    ``[start_us, end_us)``; usage comes as :data:`~tokenledger.metrics.Raw` lists."""

    metrics: MetricSet

    def per_user(self, start_us: int, end_us: int, users: UserFilter) -> dict[int, Raw]:
        """Usage per user (by internal key) with requests in the range; the first
        request may be missing where whole days hold it (see :meth:`fill_first`)."""
        ...

    def per_user_page(
        self, start_us: int, end_us: int, users: UserFilter, *, order: PageOrder
    ) -> UserPage:
        """One page of :meth:`per_user` in ``order``, with the count and totals of all."""
        ...

    def fill_first(self, result: dict[int, Raw], start_us: int, end_us: int) -> None:
        """Complete the first request of each user in ``result``."""
        ...

    def profiles(self, user_pks: Iterable[int]) -> dict[int, Profile]:
        """``{user pk: (user id, name, e-mail)}``."""
        ...

    def usage_by(
        self, rollup: Rollup, start_us: int, end_us: int, users: UserFilter
    ) -> dict[tuple[Any, ...], Raw]:
        """Usage per key of ``rollup`` (e.g. per user and model), first requests
        included."""
        ...

    def attributes(
        self, user_pks: Iterable[int], names: Sequence[str]
    ) -> dict[int, tuple[Any, ...]]:
        """``{user pk: (value of each attribute)}`` (store/dimensions.py)."""
        ...

    def matching_users(self, users: UserFilter) -> Iterator[tuple[int, Profile]]:
        """Every user the filter matches, active or not."""
        ...

    def people_per_value(self, name: str, users: UserFilter) -> dict[Any, int]:
        """How many people the filter matches per value of attribute ``name``
        (None: without one), active or not."""
        ...

    def series(self, buckets: Sequence[tuple[int, int]], users: UserFilter) -> list[Raw]:
        """Usage of each of ``buckets`` (adjacent ranges, ascending)."""
        ...


class UsagePort(Protocol):
    """Writes, reads and checks of usage data."""

    metrics: MetricSet

    def store_batches(self, batches: Sequence[Batch]) -> list[BatchResult]:
        """Store several batches in one transaction, each with the outcomes it would
        have alone; returns after the commit."""
        ...

    def store_batch(self, items: Sequence[Event | Rejection], *, now_us: int) -> BatchResult: ...

    def read(self) -> AbstractContextManager[UsageQueries]:
        """Queries on one read-only snapshot."""
        ...

    def scan(self) -> AbstractContextManager[UsageQueries]:
        """:meth:`read` for rows read once (a piece of a long export): on SQLite, on a
        connection with a small page cache (``Database.scan``)."""
        ...

    def has_events(self) -> bool: ...

    def retained_from(self) -> int | None:
        """The instant before which retention deleted the raw events (None: none)."""
        ...

    def last_event_id(self) -> int | None: ...

    def event_page(
        self,
        *,
        after: tuple[int, int],
        end_us: int,
        last_id: int,
        users: UserFilter,
        page_size: int,
    ) -> Sequence[Sequence[Any]]:
        """The next events in (started_us, id) order after the keyset ``after``."""
        ...

    def event_lines(
        self,
        *,
        after: tuple[int, int],
        end_us: int,
        last_id: int,
        users: UserFilter,
        page_size: int,
        offsets: Sequence[Offset],
    ) -> Sequence[Sequence[Any]]:
        """The page of :meth:`event_page` as ``id, started_us, CSV line or None``."""
        ...

    def event_records(self, ids: Sequence[int]) -> Sequence[Sequence[Any]]:
        """The events ``ids`` as :meth:`event_page` rows, in time order."""
        ...

    def verify(self) -> dict[str, int]:
        """Rows of each rollup that differ from a recomputation from the events."""
        ...

    def rebuild(self) -> dict[str, int]:
        """Recompute every rollup from the events."""
        ...
