"""``tokenledger import FILE``: events from JSON Lines or CSV, through the ingest path.

Lines are read lazily and stored in batches, so files of any size work in constant
memory. Each batch is one transaction: stored whole or not at all, so an import cut
short stores its first batches and re-running the file adds only what is missing.
Batches are ten times as large as an API request's: a file is a back-fill, and each
commit (one fsync, one lookup of the batch's users, one upsert per rollup row) costs
less per event the more events share it. Every line gets an outcome; rejected lines
are reported with their number. Re-running the same file adds nothing (every event
comes back ``duplicate``).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tokenledger.events import Rejection, validate_event
from tokenledger.ingest import EnvelopeError, loads_strict
from tokenledger.store.port import UsagePort
from tokenledger.store.writes import Outcome

CSV_INT_FIELDS = (
    "duration_ms",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
CSV_FIELDS = (
    "event_id",
    "user_id",
    "user_name",
    "user_email",
    "started_at",
    *CSV_INT_FIELDS,
    "model",
    "provider",
    "status",
    "metadata",
)
# Lines per transaction (``tokenledger import --batch-size``).
BATCH_SIZE = 10_000
MAX_BATCH_SIZE = 50_000


@dataclass
class ImportSummary:
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    # (line number, code, message) of each rejected line
    rejections: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return self.accepted + self.duplicate + self.rejected


def _int_cell(value: str) -> Any:
    """CSV cells are text: whole numbers become ints, anything else stays text
    (and is then rejected by validation with the field named)."""
    stripped = value.strip()
    if stripped.isdigit() or (stripped.startswith("-") and stripped[1:].isdigit()):
        return int(stripped)
    return value


def csv_records(stream: IO[str]) -> Iterator[tuple[int, Any]]:
    reader = csv.DictReader(stream)
    unknown = set(reader.fieldnames or ()) - set(CSV_FIELDS)
    if unknown:
        raise ValueError(f"unknown CSV column(s): {', '.join(sorted(unknown))}")
    for row in reader:
        line = reader.line_num
        event: dict[str, Any] = {}
        user: dict[str, Any] = {}
        for name, value in row.items():
            if value is None or value == "" or name is None:
                continue
            if name.startswith("user_"):
                user[name.removeprefix("user_")] = value
            elif name in CSV_INT_FIELDS:
                event[name] = _int_cell(value)
            elif name == "metadata":
                try:
                    event[name] = loads_strict(value.encode())
                except EnvelopeError:
                    event[name] = value  # rejected by validation: not an object
            else:
                event[name] = value
        if user:
            event["user"] = user
        yield line, event


class _BadLine:
    def __init__(self, message: str) -> None:
        self.message = message


def jsonl_records(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    for number, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            yield number, loads_strict(raw)
        except EnvelopeError as exc:
            yield number, _BadLine(exc.message)


def _batches(records: Iterable[tuple[int, Any]], size: int) -> Iterator[list[tuple[int, Any]]]:
    batch: list[tuple[int, Any]] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def import_records(
    store: UsagePort,
    records: Iterable[tuple[int, Any]],
    *,
    now_us: Callable[[], int],
    future_tolerance_s: int = 300,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    summary = ImportSummary()
    for batch in _batches(records, batch_size):
        now = now_us()
        items = [
            Rejection.one("invalid_json", "", raw.message)
            if isinstance(raw, _BadLine)
            else validate_event(raw, now_us=now, future_tolerance_s=future_tolerance_s)
            for _, raw in batch
        ]
        result = store.store_batch(items, now_us=now)
        for (line, _), outcome in zip(batch, result.outcomes, strict=True):
            _count(summary, line, outcome)
        if progress is not None:
            progress(len(batch))
    return summary


def _count(summary: ImportSummary, line: int, outcome: Outcome) -> None:
    if outcome.status == "accepted":
        summary.accepted += 1
    elif outcome.status == "duplicate":
        summary.duplicate += 1
    else:
        summary.rejected += 1
        rejection = outcome.rejection
        assert rejection is not None
        summary.rejections.append((line, rejection.code, rejection.message))


@contextmanager
def open_records(path: Path) -> Iterator[Iterator[tuple[int, Any]]]:
    """Records of ``path`` (CSV by extension ``.csv``, JSON Lines otherwise)."""
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as text_stream:
            yield csv_records(text_stream)
    else:
        with path.open("rb") as binary:
            yield jsonl_records(binary)
