"""Data commands: ``demo`` (and ``demo --remove``), ``import``, ``verify`` and
``rebuild-rollups``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokenledger.cli.common import app, console, database, progress_bar, settings, usage_store
from tokenledger.clock import now_us, system_clock
from tokenledger.importer import BATCH_SIZE, MAX_BATCH_SIZE
from tokenledger.localdays import iso, zone


@app.command()
def verify() -> None:
    """Recompute every rollup from the raw events; exit 1 on any difference."""
    with database() as db:
        store = usage_store(db)
        differences = store.verify()
        checked_from = store.retained_from()
    _say_window(checked_from)
    for table, count in differences.items():
        console.print(f"{table}: {'ok' if count == 0 else f'{count} rows differ'}")
    if any(differences.values()):
        console.print("Rollups differ from the events: run `tokenledger rebuild-rollups`.")
        raise typer.Exit(1)
    console.print("All rollups match the events.")


def _say_window(horizon_us: int | None) -> None:
    if horizon_us is not None:
        console.print(
            f"Checked from {iso(horizon_us, zone('UTC'))} on: retention deleted the events "
            "before it (TOKENLEDGER_RETENTION_DAYS); the rollups before it are kept as they "
            "are, and running totals are checked from their last value before it.",
            soft_wrap=True,
        )


@app.command("rebuild-rollups")
def rebuild_rollups() -> None:
    """Rewrite every rollup from the raw events (one transaction)."""
    with database() as db:
        store = usage_store(db)
        counts = store.rebuild()
        _say_window(store.retained_from())
    for table, count in counts.items():
        console.print(f"{table}: {count} rows")


@app.command()
def demo(
    users: Annotated[int, typer.Option(min=1, help="How many people.")] = 300,
    days: Annotated[int, typer.Option(min=1, help="How many days up to now.")] = 90,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 7,
    if_empty: Annotated[bool, typer.Option(help="Do nothing if events exist.")] = False,
    remove: Annotated[
        bool,
        typer.Option(
            "--remove",
            help="Delete the demo data instead: its events, rollups and people, nothing else.",
        ),
    ] = False,
) -> None:
    """Load realistic demo usage through the normal ingest path (marked as demo data:
    the console shows a banner until `tokenledger demo --remove`)."""
    from tokenledger.store import demo_data

    if remove:
        with database() as db:
            removed = demo_data.remove_demo_data(usage_store(db))
        console.print(
            f"Demo data removed: {removed.events} events and {removed.users} people, "
            "with their rollups."
        )
        if removed.users_kept:
            console.print(
                f"{removed.users_kept} demo people also have other events: "
                "they and those events were kept."
            )
        return
    _load_demo(users=users, days=days, seed=seed, if_empty=if_empty)


def _load_demo(*, users: int, days: int, seed: int, if_empty: bool) -> None:
    from tokenledger.demo import demo_events, demo_users
    from tokenledger.ingest import Tally, ingest
    from tokenledger.store import demo_data

    with database() as db:
        store = usage_store(db)
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
        demo_data.mark_demo_users(
            db, external_ids=(user.user_id for user in demo_users(users, seed))
        )
    console.print(
        f"Demo: {tally.accepted} events accepted, {tally.duplicate} already there, "
        f"{tally.rejected} rejected ({users} users, {days} days). "
        "Remove it with `tokenledger demo --remove`."
    )


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help=".jsonl or .csv")],
    batch_size: Annotated[
        int, typer.Option(min=1, max=MAX_BATCH_SIZE, help="Lines per transaction.")
    ] = BATCH_SIZE,
    show: Annotated[int, typer.Option(help="Rejected lines to list.")] = 20,
) -> None:
    """Import events from JSON Lines or CSV (same validation as the API)."""
    from tokenledger.importer import import_records, open_records

    current = settings()
    try:
        with database() as db, progress_bar() as progress, open_records(file) as records:
            task = progress.add_task(f"Importing {file.name}", total=None)
            summary = import_records(
                usage_store(db),
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
