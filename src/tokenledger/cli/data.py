"""Data commands: ``demo``, ``import``, ``verify`` and ``rebuild-rollups``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokenledger.cli.common import app, console, database, progress_bar, settings
from tokenledger.clock import now_us, system_clock
from tokenledger.store.usage_store import UsageStore


@app.command()
def verify() -> None:
    """Recompute every rollup from the raw events; exit 1 on any difference."""
    with database() as db:
        differences = UsageStore(db).verify()
    for table, count in differences.items():
        console.print(f"{table}: {'ok' if count == 0 else f'{count} rows differ'}")
    if any(differences.values()):
        console.print("Rollups differ from the events: run `tokenledger rebuild-rollups`.")
        raise typer.Exit(1)
    console.print("All rollups match the events.")


@app.command("rebuild-rollups")
def rebuild_rollups() -> None:
    """Rewrite every rollup from the raw events (one transaction)."""
    with database() as db:
        counts = UsageStore(db).rebuild()
    for table, count in counts.items():
        console.print(f"{table}: {count} rows")


@app.command()
def demo(
    users: Annotated[int, typer.Option(min=1, help="How many people.")] = 300,
    days: Annotated[int, typer.Option(min=1, help="How many days up to now.")] = 90,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 7,
    if_empty: Annotated[bool, typer.Option(help="Do nothing if events exist.")] = False,
) -> None:
    """Load realistic demo usage through the normal ingest path."""
    from tokenledger.demo import demo_events
    from tokenledger.ingest import Tally, ingest

    with database() as db:
        store = UsageStore(db)
        if if_empty and store.has_events():
            console.print("Events exist already; demo data not loaded.")
            return
        events = list(demo_events(now=system_clock(), days=days, users=users, seed=seed))
        tally = Tally()
        with progress_bar() as progress:
            task = progress.add_task("Loading demo events", total=len(events))
            for start in range(0, len(events), 1000):
                batch = events[start : start + 1000]
                tally = tally.plus(ingest(store, batch, now_us=now_us(system_clock)))
                progress.advance(task, len(batch))
    console.print(
        f"Demo: {tally.accepted} events accepted, {tally.duplicate} already there, "
        f"{tally.rejected} rejected ({users} users, {days} days)."
    )


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help=".jsonl or .csv")],
    batch_size: Annotated[int, typer.Option(min=1, max=1000)] = 1000,
    show: Annotated[int, typer.Option(help="Rejected lines to list.")] = 20,
) -> None:
    """Import events from JSON Lines or CSV (same validation as the API)."""
    from tokenledger.importer import import_records, open_records

    current = settings()
    try:
        with database() as db, progress_bar() as progress, open_records(file) as records:
            task = progress.add_task(f"Importing {file.name}", total=None)
            summary = import_records(
                UsageStore(db),
                records,
                now_us=lambda: now_us(system_clock),
                future_tolerance_s=current.future_tolerance_s,
                batch_size=batch_size,
                progress=lambda n: progress.advance(task, n),
            )
    except (UnicodeDecodeError, ValueError) as exc:
        console.print(f"error: {file}: {exc}")
        raise typer.Exit(2) from exc
    console.print(
        f"{summary.lines} lines: {summary.accepted} accepted, {summary.duplicate} duplicate, "
        f"{summary.rejected} rejected."
    )
    for line, code, message in summary.rejections[:show]:
        console.print(f"  line {line}: {code}: {message}", markup=False, highlight=False)
    if summary.rejected > show:
        console.print(f"  ... and {summary.rejected - show} more rejected lines")
    if summary.rejected:
        raise typer.Exit(1)
