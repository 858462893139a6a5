"""Every export in the audit log: an entry when it starts, and one with its outcome.

The first is written before the first byte (an export whose start cannot be recorded
does not start); the second when the stream ends, however it ends: complete, failed,
stopped because its client went away, or interrupted. An export that a crash cuts off
keeps its start entry.
"""

from __future__ import annotations

from collections.abc import Callable

from tokenledger.auth import audit
from tokenledger.clock import Clock, now_us
from tokenledger.export import CsvExport, ExportOutcome, audit_details, audit_filters
from tokenledger.store.database import Database


def audit_export(
    export: CsvExport,
    db: Database,
    *,
    actor: str,
    client: str | None,
    clock: Clock,
    observe: Callable[[ExportOutcome], None] | None = None,
) -> None:
    """Record that ``export`` starts, and arrange for its outcome to be recorded (and
    told to ``observe``, for metrics)."""
    audit.record(
        db,
        actor=actor,
        action=audit.EXPORT_STARTED,
        details={"filters": audit_filters(export.request)},
        now_us=now_us(clock),
        client=client,
    )

    def finished(outcome: ExportOutcome) -> None:
        if observe is not None:
            observe(outcome)
        audit.record(
            db,
            actor=actor,
            action=audit.EXPORT,
            details=audit_details(export.request, outcome),
            now_us=now_us(clock),
            client=client,
        )

    export.on_finish = finished
