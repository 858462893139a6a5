"""CSV exports of the User Usage report: per user, per user and local day, or per event.

An export is an iterable of byte chunks. The header row leaves first, before any query,
then rows follow a bounded piece at a time, so memory stays flat however many rows
there are. No transaction is held while the consumer (perhaps a slow HTTP client)
reads: the summary, each local day and each page of events is read in its own short
transaction, then written out. Starlette may call ``next()`` from a different thread
each time, and an abandoned download must not pin a connection.

Text cells that a spreadsheet would run as a formula get a leading ``'`` (OWASP's CSV
injection advice); numbers are never touched. A failure after the first chunk
propagates to the caller: the HTTP response then ends without its last chunk (a broken
download), and nothing about the error is ever written into the file.
"""

from __future__ import annotations

import csv
import io
import re
import threading
import unicodedata
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from tokenledger.localdays import IsoFormatter, LocalRange, iso
from tokenledger.metrics import METRICS, MetricSet, dollars_text
from tokenledger.metrics import seconds as seconds  # part of this module's interface
from tokenledger.model_usage import model_usage
from tokenledger.ordering import parse_sort
from tokenledger.reports import UserUsage, all_rows, day_rows, usage_by_attribute
from tokenledger.search import fold
from tokenledger.store import event_pages
from tokenledger.store.event_pages import Offset
from tokenledger.store.port import UsagePort, UsageQueries
from tokenledger.usage import UserFilter

Granularity = Literal["summary", "daily", "events", "models", "teams"]
# A person's attributes, at the end of each row of people (before metrics declared
# after the first format): their current values (store/dimensions.py).
ATTRIBUTE_COLUMNS = ("department", "team")
Cell = str | int | None

MEDIA_TYPE = "text/csv; charset=utf-8"
BOM = "\ufeff".encode()
EVENT_PAGE_SIZE = 2000
CHUNK_CHARS = 64 * 1024

# The metric columns of the first file format, in its order: files keep this layout
# for the programs that read them. Metrics declared later are appended at the end of
# each row (after the columns that follow these).
FIRST_FORMAT_METRICS = (
    "requests",
    "error_requests",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "usage_seconds",
)
EVENT_COLUMNS = (
    "event_id",
    "user_id",
    "name",
    "email",
    "started_at",
    "duration_ms",
    "model",
    "provider",
    "status",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    *ATTRIBUTE_COLUMNS,
    "usage_missing",  # 1: the request's usage never arrived (its tokens are a floor)
    # Added with cost: exact dollars (empty when unpriced) and where the cost came from.
    "cost_usd",
    "cost_source",
)


@dataclass(frozen=True)
class Layout:
    """The columns of the summary and daily files for a set of metrics."""

    metrics: MetricSet

    @property
    def first_metrics(self) -> tuple[str, ...]:
        """Public names of the metrics in the first format's columns, in its order."""
        by_csv = {item.csv: item.public for item in self.metrics.declared}
        return tuple(by_csv[name] for name in FIRST_FORMAT_METRICS)

    @property
    def later_metrics(self) -> tuple[str, ...]:
        first = set(FIRST_FORMAT_METRICS)
        return tuple(item.public for item in self.metrics.declared if item.csv not in first)

    def _usage_columns(self) -> tuple[str, ...]:
        return (
            "user_id",
            "name",
            "email",
            *FIRST_FORMAT_METRICS,
            "first_request_at",
            "last_request_at",
        )

    def _later_columns(self) -> tuple[str, ...]:
        return tuple(self.metrics.find(name).csv for name in self.later_metrics)

    @property
    def summary(self) -> tuple[str, ...]:
        return (
            *self._usage_columns(),
            "range_start",
            "range_end",
            "timezone",
            *ATTRIBUTE_COLUMNS,
            *self._later_columns(),
        )

    @property
    def daily(self) -> tuple[str, ...]:
        return (
            "date",
            *self._usage_columns(),
            "timezone",
            *ATTRIBUTE_COLUMNS,
            *self._later_columns(),
        )

    @property
    def models(self) -> tuple[str, ...]:
        """Usage by model (a format of its own): every metric in declaration order."""
        return (
            "model",
            "provider",
            *(item.csv for item in self.metrics.declared),
            "cost_share",
            "first_request_at",
            "last_request_at",
            "range_start",
            "range_end",
            "timezone",
        )

    def teams(self, by: str = "team") -> tuple[str, ...]:
        """One row per team (or department: ``by``)."""
        return (
            by,
            "people_active",
            "people",
            *FIRST_FORMAT_METRICS,
            "first_request_at",
            "last_request_at",
            "range_start",
            "range_end",
            "timezone",
            *self._later_columns(),
        )

    def columns(self, granularity: Granularity, by: str = "team") -> tuple[str, ...]:
        if granularity == "summary":
            return self.summary
        if granularity == "daily":
            return self.daily
        if granularity == "models":
            return self.models
        if granularity == "teams":
            return self.teams(by)
        return EVENT_COLUMNS


SUMMARY_COLUMNS = Layout(METRICS).summary
DAILY_COLUMNS = Layout(METRICS).daily
COLUMNS: dict[Granularity, tuple[str, ...]] = {
    "summary": SUMMARY_COLUMNS,
    "daily": DAILY_COLUMNS,
    "events": EVENT_COLUMNS,
    "models": Layout(METRICS).models,
    "teams": Layout(METRICS).teams(),
}

# What spreadsheets read as the start of a formula: = + - @ and | (DDE), in ASCII and
# in their small (U+FE62...) and full-width (U+FF0B...) forms.
_FORMULA_SIGNS = frozenset("=+-@|\ufe62\ufe63\ufe66\ufe6b\uff0b\uff0d\uff1d\uff20\uff5c")
# Characters a spreadsheet may skip or trim before it: white space (Unicode
# White_Space, plus the other ASCII separators) and invisible format characters
# (category Cf: zero-width space, byte order mark, bidirectional marks) or space
# separators (Zs).
_INVISIBLE = frozenset({"Cf", "Zs", "Zl", "Zp"})


def escape_cell(value: str) -> str:
    """``value`` made inert for spreadsheets: a leading ``'`` if it could start a
    formula, after any blank or invisible characters a spreadsheet may skip. Tab and
    carriage return at the very start are escaped too (OWASP)."""
    if not value or (value[0].isascii() and value[0].isalnum()):
        return value  # most cells: a name, an id, a model
    if value[0] in "\t\r":
        return "'" + value
    for char in value:
        if char in _FORMULA_SIGNS:
            return "'" + value
        if not (char.isspace() or unicodedata.category(char) in _INVISIBLE):
            return value
    return value


def _text(value: str | None) -> str | None:
    return None if value is None else escape_cell(value)


class _Escaped:
    """:func:`escape_cell` results kept for texts that repeat on many rows (people,
    models), up to a bound: past it, what is kept is dropped and learnt again."""

    __slots__ = ("_known", "_limit")

    def __init__(self, limit: int = 50_000) -> None:
        self._known: dict[Any, Any] = {}
        self._limit = limit

    def find(self, key: Any) -> Any:
        return self._known.get(key)

    def keep(self, key: Any, value: Any) -> Any:
        if len(self._known) >= self._limit:
            self._known.clear()
        self._known[key] = value
        return value

    def text(self, value: str | None) -> str | None:
        if value is None:
            return None
        found = self._known.get(value)
        kept: str = self.keep(value, escape_cell(value)) if found is None else found
        return kept


@dataclass(frozen=True)
class ExportRequest:
    """What to export: the report's filters plus the granularity."""

    local_range: LocalRange
    users: UserFilter = field(default_factory=UserFilter)
    sort: str = "-total_tokens"
    granularity: Granularity = "summary"
    bom: bool = False
    by: str = "team"  # what a ``teams`` export groups by: team or department

    def __post_init__(self) -> None:
        parse_sort(self.sort)  # ValueError now rather than after the first byte
        if self.granularity not in COLUMNS:
            raise ValueError(f"unknown granularity {self.granularity!r}")
        if self.by not in ATTRIBUTE_COLUMNS:
            raise ValueError(f"unknown grouping {self.by!r}")


def _slug(value: str, limit: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold(value)).strip("-")[:limit].strip("-")


def export_filename(request: ExportRequest) -> str:
    """E.g. ``user-usage_2026-11-01_2026-11-25.csv``; ASCII letters, digits, ``-_.`` only."""
    kind = "user-usage" if request.granularity == "summary" else f"user-usage-{request.granularity}"
    if request.granularity == "teams" and request.by != "team":
        kind = f"user-usage-{request.by}s"
    parts = [kind, request.local_range.start.isoformat(), request.local_range.end.isoformat()]
    q = request.users.q
    if q and q.strip():
        parts.append(_slug(q) or "search")
    return "_".join(parts) + ".csv"


# -- rows ---------------------------------------------------------------------------


class _UsageCells:
    """The cells of a user's usage in the layout of a set of metrics."""

    def __init__(self, metrics: MetricSet, tz: ZoneInfo) -> None:
        layout = Layout(metrics)
        self._first = metrics.csv_cells(layout.first_metrics)
        self._later = metrics.csv_cells(layout.later_metrics) if layout.later_metrics else None
        self._tz = tz

    def head(self, row: UserUsage) -> list[Cell]:
        """Identity, the first format's metrics and the first and last request."""
        usage = row.usage
        return [
            escape_cell(row.user_id),
            _text(row.name),
            _text(row.email),
            *self._first(usage.raw),
            iso(usage.first_us, self._tz),
            iso(usage.last_us, self._tz),
        ]

    def tail(self, row: UserUsage) -> list[Cell]:
        """The metrics declared after the first format, for the end of the row."""
        if self._later is None:
            return []
        return list(self._later(row.usage.raw))


class ExportCancelled(Exception):
    """The export was stopped before its end (its client went away)."""


def _go_on() -> None:
    """A check that never stops an export."""


def summary_rows(
    store: UsagePort, *, request: ExportRequest, check: Callable[[], None] = _go_on
) -> Iterator[list[Cell]]:
    """The report's rows for the whole range, in the report's order.

    This is the report itself: one list with a small row per active user (10,000 users
    are a few megabytes), read in one transaction, then written out.
    """
    local_range = request.local_range
    check()
    with store.read() as reader:
        rows = all_rows(reader, local_range, request.users, sort=request.sort)
        attributes = _attribute_cells(reader, rows)
    cells = _UsageCells(store.metrics, local_range.tz)
    start, end = local_range.start.isoformat(), local_range.end.isoformat()
    zone_cell = escape_cell(local_range.tz.key)
    for row in rows:
        yield [*cells.head(row), start, end, zone_cell, *attributes[row.user_pk], *cells.tail(row)]


def _attribute_cells(reader: UsageQueries, rows: list[UserUsage]) -> dict[int, list[Cell]]:
    """Each row's person's attributes (:data:`ATTRIBUTE_COLUMNS`) as cells."""
    found = reader.attributes((row.user_pk for row in rows), ATTRIBUTE_COLUMNS)
    return {pk: [_text(value) for value in values] for pk, values in found.items()}


def team_rows(
    store: UsagePort, *, request: ExportRequest, check: Callable[[], None] = _go_on
) -> Iterator[list[Cell]]:
    """One row per team (or department): its people's usage summed; people without
    one last, under an empty value."""
    local_range = request.local_range
    check()
    groups = usage_by_attribute(
        store, local_range=local_range, attribute=request.by, users=request.users
    )
    first = store.metrics.csv_cells(Layout(store.metrics).first_metrics)
    later_metrics = Layout(store.metrics).later_metrics
    later = store.metrics.csv_cells(later_metrics) if later_metrics else None
    start, end = local_range.start.isoformat(), local_range.end.isoformat()
    zone_cell = escape_cell(local_range.tz.key)
    for group in groups:
        usage = group.usage
        yield [
            _text(group.value),
            group.people,
            group.all_people,
            *first(usage.raw),
            iso(usage.first_us, local_range.tz),
            iso(usage.last_us, local_range.tz),
            start,
            end,
            zone_cell,
            *(later(usage.raw) if later is not None else ()),
        ]


def model_rows(
    store: UsagePort, *, request: ExportRequest, check: Callable[[], None] = _go_on
) -> Iterator[list[Cell]]:
    """Usage by model (and provider) of the matching people, most expensive first."""
    local_range = request.local_range
    check()
    report = model_usage(store, local_range=local_range, users=request.users)
    metrics = store.metrics
    cells = metrics.csv_cells([item.public for item in metrics.declared])
    tz = local_range.tz
    tail = [local_range.start.isoformat(), local_range.end.isoformat(), escape_cell(tz.key)]
    for row in report.rows:
        usage = row.usage
        yield [
            escape_cell(row.model),
            escape_cell(row.provider),
            *cells(usage.raw),
            row.share_text,
            iso(usage.first_us, tz),
            iso(usage.last_us, tz),
            *tail,
        ]


def daily_rows(
    store: UsagePort, *, request: ExportRequest, check: Callable[[], None] = _go_on
) -> Iterator[list[Cell]]:
    """One row per user and local day with usage, day by day, each day in report order.

    ``check`` runs before each day: most days of a long range may have no row at all,
    so this is where a stopped export notices it, not only when a row leaves."""
    local_range = request.local_range
    cells = _UsageCells(store.metrics, local_range.tz)
    zone_cell = escape_cell(local_range.tz.key)
    for day, start_us, end_us in local_range.day_bounds():
        check()
        date_cell = day.isoformat()
        # Each day's rollup rows are read once: not into the reports' page caches.
        with store.scan() as reader:
            rows = day_rows(reader, start_us, end_us, request.users, sort=request.sort)
            attributes = _attribute_cells(reader, rows)
        for row in rows:
            yield [
                date_cell,
                *cells.head(row),
                zone_cell,
                *attributes[row.user_pk],
                *cells.tail(row),
            ]


def event_records(
    store: UsagePort,
    *,
    local_range: LocalRange,
    users: UserFilter,
    page_size: int = EVENT_PAGE_SIZE,
    check: Callable[[], None] = _go_on,
) -> Iterator[Sequence[Any]]:
    """Every matching event in ``local_range``, chronological (then by id), a page at a time.

    Each page is its own short transaction. Events are never updated or deleted, so
    paging by the keyset neither repeats nor skips one; events stored after the export
    began (id above the highest one then) are left out, so the file is the ledger as
    it stood at the start (exactly on SQLite, whose writers are serial).
    """
    pages = _keyset_pages(
        store,
        local_range=local_range,
        page_size=page_size,
        check=check,
        fetch=store.event_page,
        users=users,
    )
    for page in pages:
        yield from page


def _keyset_pages(
    store: UsagePort,
    *,
    local_range: LocalRange,
    page_size: int,
    check: Callable[[], None],
    fetch: Callable[..., Sequence[Sequence[Any]]],
    **query: Any,
) -> Iterator[Sequence[Sequence[Any]]]:
    """The pages ``fetch`` returns for ``local_range``, each after the previous one's
    last (started_us, id) keyset, of the events stored when the first page was asked
    (rows start with ``id, started_us``). ``query`` goes to every ``fetch``."""
    check()
    last_id = store.last_event_id()
    if last_id is None:
        return
    after = (local_range.start_us, 0)  # ids start at 1
    while True:
        check()
        page = fetch(
            after=after,
            end_us=local_range.end_us,
            last_id=last_id,
            page_size=page_size,
            **query,
        )
        yield page
        if len(page) < page_size:
            return
        after = (page[-1][1], page[-1][0])
        del page  # no reference kept here while the next page is read


def event_rows(
    store: UsagePort,
    *,
    request: ExportRequest,
    page_size: int = EVENT_PAGE_SIZE,
    check: Callable[[], None] = _go_on,
) -> Iterator[list[Cell]]:
    """One row per request: the audit trail. Missing cache/reasoning counts are 0.

    Every row's cells built in Python; :func:`event_text` writes the same file
    faster, the database writing most lines.
    """
    records = event_records(
        store,
        local_range=request.local_range,
        users=request.users,
        page_size=page_size,
        check=check,
    )
    return _EventCells(request.local_range.tz).rows(records)


def event_text(
    store: UsagePort,
    *,
    request: ExportRequest,
    page_size: int = EVENT_PAGE_SIZE,
    check: Callable[[], None] = _go_on,
) -> Iterator[tuple[str, int]]:
    """The rows of :func:`event_rows` as CSV text, a page at a time: ``(text, rows)``.

    The database writes each line (``store/event_pages.py``: the cells, the formula
    guard's common case, the local time from the zone's offset per UTC hour learnt
    here); the few lines it leaves out (a text to quote or guard, an hour in which the
    zone changes its offset) are written here as :func:`event_rows` writes them.
    Paged as :func:`event_records` pages.
    """
    local_range = request.local_range
    spans = IsoFormatter(local_range.tz).spans(local_range.start_us, local_range.end_us)
    offsets = [Offset(*span) for span in spans]
    cells = _EventCells(local_range.tz)
    pages = _keyset_pages(
        store,
        local_range=local_range,
        page_size=page_size,
        check=check,
        fetch=store.event_lines,
        users=request.users,
        offsets=offsets,
    )
    for page in pages:
        lines = [row[2] for row in page]
        # A line with a cell that needed quoting (a comma, quote or line break in it)
        # is written again here, as one the database left out.
        missing = [row[0] for row, line in zip(page, lines, strict=True) if not _plain(line)]
        if missing:
            records = store.event_records(missing)
            written = dict(zip(missing, _csv_lines(cells.rows(records)), strict=True))
            lines = [written.get(row[0], line) for row, line in zip(page, lines, strict=True)]
        yield "".join(lines), len(page)


_COMMAS = event_pages.CELLS - 1


def _plain(line: str | None) -> bool:
    """Whether a line from the database is the CSV line: no cell needed quoting."""
    return (
        line is not None
        and line.count(",") == _COMMAS
        and '"' not in line
        and "\n" not in line[:-1]
        and "\r" not in line[:-2]
    )


def _csv_lines(rows: Iterable[Sequence[Cell]]) -> Iterator[str]:
    """Each row as a line of :func:`csv_chunks`'s CSV."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    for row in rows:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


class _EventCells:
    """The cells of events, escaped: per user and per model / provider / status text
    once, not once per row (a million rows carry a few thousand distinct texts)."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.timestamp = IsoFormatter(tz)
        self.people, self.texts = _Escaped(), _Escaped(limit=10_000)

    def rows(self, records: Iterable[Sequence[Any]]) -> Iterator[list[Cell]]:
        timestamp, people, texts = self.timestamp, self.people, self.texts
        for (
            _pk,
            started_us,
            event_id,
            user_pk,
            user_id,
            name,
            email,
            duration_ms,
            model,
            provider,
            status,
            input_tokens,
            output_tokens,
            cache_read_tokens,
            cache_write_tokens,
            reasoning_tokens,
            department,
            team,
            usage_missing,
            cost_nanos,
            cost_source,
        ) in records:
            person = people.find(user_pk)
            if person is None:
                person = people.keep(
                    user_pk,
                    (
                        (escape_cell(user_id), _text(name), _text(email)),
                        (_text(department), _text(team)),
                    ),
                )
            yield [
                escape_cell(event_id),
                *person[0],
                timestamp(started_us),
                duration_ms,
                texts.text(model),
                texts.text(provider),
                texts.text(status),
                input_tokens,
                output_tokens,
                input_tokens + output_tokens,
                cache_read_tokens or 0,
                cache_write_tokens or 0,
                reasoning_tokens or 0,
                *person[1],
                usage_missing,
                "" if cost_nanos is None else dollars_text(cost_nanos),
                cost_source,
            ]


# -- CSV ----------------------------------------------------------------------------


def csv_chunks(
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    bom: bool = False,
    chunk_chars: int | None = None,
    on_rows: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """RFC 4180 CSV (minimal quoting, CRLF) in UTF-8 chunks of about ``chunk_chars``
    characters; the header row is a chunk of its own, the first. Cells are written as
    they are: the rows' builders escape text (:func:`escape_cell`) and write decimals
    in plain notation. ``on_rows(n)`` tells of the ``n`` rows in each chunk before it
    leaves."""
    chunk_chars = chunk_chars or CHUNK_CHARS
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    write, size = writer.writerow, buffer.tell
    pending = 0

    def take() -> bytes:
        nonlocal pending
        if on_rows is not None:
            on_rows(pending)
        pending = 0
        chunk = buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
        return chunk

    write(header)
    yield (BOM if bom else b"") + take()
    for row in rows:
        write(row)
        pending += 1
        if size() >= chunk_chars:
            yield take()
    if size():
        yield take()


def text_chunks(
    header: Sequence[str],
    pieces: Iterable[tuple[str, int]],
    *,
    bom: bool = False,
    on_rows: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """:func:`csv_chunks` of rows already written as CSV text: ``(text, rows)`` pieces,
    each a chunk (after the header's, alone first)."""
    yield from csv_chunks(header, (), bom=bom)
    for piece, rows in pieces:
        if on_rows is not None:
            on_rows(rows)
        yield piece.encode()


@dataclass(frozen=True)
class ExportOutcome:
    """How an export ended: rows written, and whether the file was finished (False:
    aborted, by a failure, its client going away or being stopped)."""

    rows: int
    complete: bool


def audit_filters(request: ExportRequest) -> dict[str, Any]:
    """The filters of an export, as the audit log keeps them."""
    local_range = request.local_range
    filters: dict[str, Any] = {
        "start": local_range.start.isoformat(),
        "end": local_range.end.isoformat(),
        "timezone": local_range.tz.key,
        "q": request.users.q or "",
        "sort": request.sort,
        "granularity": request.granularity,
    }
    # Filters added later are named only when used.
    if request.users.user_id is not None:
        filters["user_id"] = request.users.user_id
    for name, value in request.users.where:
        filters[name] = value
    if request.granularity == "teams":
        filters["by"] = request.by
    return filters


def audit_details(request: ExportRequest, outcome: ExportOutcome) -> dict[str, Any]:
    """What the audit log keeps about an export's end: its filters and the rows that
    left."""
    return {"filters": audit_filters(request), "rows": outcome.rows, "complete": outcome.complete}


class CsvExport:
    """One export as an iterable of CSV byte chunks.

    ``rows_written`` counts the data rows put into chunks so far; ``on_finish`` gets an
    :class:`ExportOutcome` once the stream ends, finished, failed or abandoned (e.g.
    for an audit entry). :meth:`cancel` (from any thread) stops the work between two
    pieces (the summary, a local day, a page of events): the iteration then raises
    :class:`ExportCancelled`.
    """

    def __init__(
        self,
        store: UsagePort,
        request: ExportRequest,
        *,
        page_size: int | None = None,
        on_finish: Callable[[ExportOutcome], None] | None = None,
    ) -> None:
        self.store = store
        self.request = request
        self.page_size = page_size or EVENT_PAGE_SIZE
        self.on_finish = on_finish
        self.rows_written = 0
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    def _check(self) -> None:
        if self._cancelled.is_set():
            raise ExportCancelled()

    @property
    def filename(self) -> str:
        return export_filename(self.request)

    @property
    def columns(self) -> tuple[str, ...]:
        return Layout(self.store.metrics).columns(self.request.granularity, self.request.by)

    def rows(self) -> Iterator[list[Cell]]:
        request = self.request
        check = self._check
        if request.granularity == "summary":
            return summary_rows(self.store, request=request, check=check)
        if request.granularity == "daily":
            return daily_rows(self.store, request=request, check=check)
        if request.granularity == "models":
            return model_rows(self.store, request=request, check=check)
        if request.granularity == "teams":
            return team_rows(self.store, request=request, check=check)
        return event_rows(self.store, request=request, page_size=self.page_size, check=check)

    def _count(self, rows: int) -> None:
        self.rows_written += rows

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks()

    def chunks(self) -> Generator[bytes, None, None]:
        """The CSV bytes; closing the generator early ends the export (aborted)."""
        complete = False
        try:
            if self.request.granularity == "events":
                pieces = event_text(
                    self.store, request=self.request, page_size=self.page_size, check=self._check
                )
                yield from text_chunks(
                    self.columns, pieces, bom=self.request.bom, on_rows=self._count
                )
            else:
                yield from csv_chunks(
                    self.columns, self.rows(), bom=self.request.bom, on_rows=self._count
                )
            complete = True
        finally:
            if self.on_finish is not None:
                self.on_finish(ExportOutcome(self.rows_written, complete))
