"""``tokenledger export``: the same CSV bytes as the export endpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, BinaryIO, Literal

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from tokenledger import report_params
from tokenledger.auth import audit as audit_log
from tokenledger.cli.common import app, console, database, settings, usage_store
from tokenledger.clock import system_clock
from tokenledger.export import CsvExport, ExportRequest, Granularity
from tokenledger.export_audit import audit_export
from tokenledger.localdays import iso
from tokenledger.reports import check_retained, events_removed_before
from tokenledger.store.database import DatabaseUnavailable
from tokenledger.store.retention import EventsRemoved


def _request(
    *,
    start: str | None,
    end: str | None,
    tz: str | None,
    q: str | None,
    sort: str,
    granularity: Granularity,
    bom: bool,
    people: PeopleOptions | None = None,
) -> ExportRequest:
    """The export the options name, checked by the report parameters' parser (a bad
    option is a usage error naming it, with the API's message)."""
    try:
        asked = report_params.report_params(
            start=start,
            end=end,
            tz=tz,
            q=q,
            sort_by=sort,
            default_tz=settings().timezone,
            now=system_clock(),
            span=report_params.EXPORTS[granularity],
            user_id=people.user_id if people else None,
            attributes={"team": people.team, "department": people.department} if people else None,
        )
    except report_params.InvalidParameter as exc:
        raise typer.BadParameter(exc.message, param_hint=f"--{exc.field}") from exc
    return ExportRequest(
        local_range=asked.local_range,
        users=asked.users,
        sort=asked.sort,
        granularity=granularity,
        bom=bom,
        by=people.by if people else "team",
    )


@dataclass(frozen=True)
class PeopleOptions:
    """Whose usage (one person, a team, a department) and, for ``teams``, by what."""

    user_id: str | None = None
    team: str | None = None
    department: str | None = None
    by: Literal["team", "department"] = "team"


@app.command()
def export(
    start: Annotated[
        str | None, typer.Option(help="First local date, YYYY-MM-DD (default: today).")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Last local date, inclusive (default: --start).")
    ] = None,
    tz: Annotated[
        str | None, typer.Option(help="IANA time zone (default: TOKENLEDGER_TIMEZONE).")
    ] = None,
    q: Annotated[
        str | None, typer.Option(help="Only users whose name, e-mail or id contains this.")
    ] = None,
    sort: Annotated[
        str, typer.Option(help="Report column to sort users by; prefix '-' for descending.")
    ] = "-total_tokens",
    granularity: Annotated[
        Granularity,
        typer.Option(
            help="summary: per user; daily: per user and local day; events: per request; "
            "models: per model and provider; "
            "teams: per team (--by)."
        ),
    ] = "summary",
    bom: Annotated[bool, typer.Option(help="Start with a UTF-8 byte order mark (Excel).")] = False,
    team: Annotated[
        str | None, typer.Option(help="Only this team's people; '(none)': without a team.")
    ] = None,
    department: Annotated[
        str | None, typer.Option(help="Only this department's people; '(none)': without one.")
    ] = None,
    user_id: Annotated[str | None, typer.Option(help="Only this person (their user id).")] = None,
    by: Annotated[
        str, typer.Option(help="What a teams export groups by: team or department.")
    ] = "team",
    output: Annotated[
        str, typer.Option("--output", "-o", help="File to write, or - for standard output.")
    ] = "-",
) -> None:
    """Export usage as CSV: the same bytes as the console's Export to CSV."""
    if by not in ("team", "department"):
        raise typer.BadParameter("must be team or department", param_hint="--by")
    people = PeopleOptions(user_id, team, department, "team" if by == "team" else "department")
    request = _request(
        start=start,
        end=end,
        tz=tz,
        q=q,
        sort=sort,
        granularity=granularity,
        bom=bom,
        people=people,
    )
    try:
        with database() as db:
            store = usage_store(db)
            csv_export = CsvExport(store, request)
            if granularity == "events":
                _say_retention(events_removed_before(store, request.local_range), request)
            else:
                check_retained(store, request.local_range)
            audit_export(
                csv_export, db, actor=audit_log.cli_actor(), client=None, clock=system_clock
            )
            # Closed however the writing ends (a full disk, Ctrl-C): the outcome is
            # recorded at once.
            with closing(csv_export.chunks()) as chunks:
                if output == "-":
                    _write_stream(typer.get_binary_stream("stdout"), chunks)
                    return
                with _rowsprogress() as progress:
                    task = progress.add_task(f"Exporting {output}", total=None)
                    _write_file(
                        Path(output),
                        chunks,
                        progress=lambda: progress.update(task, completed=csv_export.rows_written),
                    )
                rows = csv_export.rows_written
                progress.update(task, total=rows, completed=rows)
    except EventsRemoved as exc:
        console.print(f"error: --start: {exc}", soft_wrap=True)
        raise typer.Exit(2) from exc
    except (DatabaseUnavailable, OSError) as exc:
        console.print(
            f"error: export failed, nothing written to {output}: {exc}",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )
        raise typer.Exit(1) from exc
    console.print(
        f"{csv_export.rows_written} rows written to {output}.",
        soft_wrap=True,
        markup=False,
        highlight=False,
    )


def _rowsprogress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _write_stream(stream: BinaryIO, chunks: Iterable[bytes]) -> None:
    for chunk in chunks:
        stream.write(chunk)
    stream.flush()


def _write_file(path: Path, chunks: Iterable[bytes], *, progress: Callable[[], None]) -> None:
    """Write ``chunks`` to a temporary file beside ``path``, renamed only when complete,
    so a failed export never leaves a truncated file that looks whole."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("wb") as file:
            for chunk in chunks:
                file.write(chunk)
                progress()
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def _say_retention(retained_from: int | None, request: ExportRequest) -> None:
    """Say so when the events export starts before the events kept by retention."""
    if retained_from is not None:
        console.print(
            "note: raw events before "
            f"{iso(retained_from, request.local_range.tz)} were deleted by retention "
            "(TOKENLEDGER_RETENTION_DAYS): the file starts there; the summary and daily "
            "exports still cover the whole range.",
            soft_wrap=True,
        )
