"""The ``tokenledger`` command line. Thin: parse, call the modules, print."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tokenledger.auth import keys as api_keys
from tokenledger.clock import now_us, system_clock
from tokenledger.settings import Settings
from tokenledger.store import migrate as migrations
from tokenledger.store import rollups
from tokenledger.store.database import Database, open_database

app = typer.Typer(
    help="TokenLedger: exact per-user AI usage. Settings come from TOKENLEDGER_* variables.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="API keys for applications (ingest) and readers (report:read).")
app.add_typer(keys_app, name="keys")
console = Console(stderr=True)
out = Console()


class State:
    settings: Settings | None = None


def settings() -> Settings:
    if State.settings is None:
        State.settings = Settings()
    return State.settings


@contextmanager
def database(*, migrate: bool = True) -> Iterator[Database]:
    """The configured database (migrated unless told otherwise), closed afterwards."""
    db = open_database(settings())
    try:
        if migrate:
            migrations.upgrade(db)
        yield db
    finally:
        db.dispose()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@app.callback()
def main_options(
    database_url: Annotated[
        str | None,
        typer.Option(help="Database URL (overrides TOKENLEDGER_DATABASE_URL)."),
    ] = None,
) -> None:
    overrides = {"database_url": database_url} if database_url else {}
    State.settings = Settings(**overrides)  # type: ignore[arg-type]


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    with database() as db:
        console.print(f"Database is at revision {migrations.current_revision(db)}.")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Migrate the database, then serve the web console and the API."""
    from tokenledger.web.app import create_app
    from tokenledger.web.server import raise_open_file_limit
    from tokenledger.web.server import serve as serve_app

    current = settings()
    bind_host, bind_port = host or current.host, port or current.port
    open_files = raise_open_file_limit(current.max_connections)
    if open_files < current.max_connections:
        console.print(
            f"warning: at most {open_files} open files (ulimit -n): fewer connections than "
            f"TOKENLEDGER_MAX_CONNECTIONS={current.max_connections} can be accepted"
        )
    with database() as db:
        console.print(
            f"TokenLedger serving on http://{bind_host}:{bind_port}  (API docs: /api/docs)"
        )
        serve_app(create_app(current, db=db), current, host=bind_host, port=bind_port)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="What the key is for, e.g. 'chat gateway'.")],
    scope: Annotated[str, typer.Option(help="ingest or report:read.")],
) -> None:
    """Create an API key and print it (once: it is not stored, only its hash)."""
    try:
        with database() as db:
            key, secret = api_keys.create_key(
                db, name=name, scope=scope, now_us=now_us(system_clock)
            )
    except ValueError as exc:
        console.print(f"error: {exc}")
        raise typer.Exit(2) from exc
    console.print(f"Created key {key.id} ({key.scope}) '{key.name}'. It is shown only now:")
    out.print(secret, markup=False, highlight=False)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (prefix only; secrets are never stored)."""
    table = Table("id", "name", "prefix", "scope", "created", "last used", "revoked")
    from tokenledger.localdays import iso, zone

    utc = zone("UTC")
    with database() as db:
        found = api_keys.list_keys(db)
    for key in found:
        table.add_row(
            str(key.id),
            key.name,
            key.prefix + "…",
            key.scope,
            iso(key.created_us, utc),
            iso(key.last_used_us, utc) or "never",
            iso(key.revoked_us, utc) or "",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="Key id (see keys list).")]) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    try:
        with database() as db:
            key = api_keys.revoke_key(db, key_id, now_us=now_us(system_clock))
    except LookupError as exc:
        console.print(f"error: {exc}")
        raise typer.Exit(2) from exc
    console.print(f"Key {key.id} '{key.name}' is revoked.")


@app.command()
def verify() -> None:
    """Recompute every rollup from the raw events; exit 1 on any difference."""
    with database() as db:
        differences = rollups.verify(db)
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
        counts = rollups.rebuild(db)
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
    from sqlalchemy import text

    from tokenledger.demo import demo_events
    from tokenledger.ingest import Tally, ingest

    with database() as db:
        if if_empty:
            with db.read() as conn:
                if conn.execute(text("SELECT 1 FROM events LIMIT 1")).first():
                    console.print("Events exist already; demo data not loaded.")
                    return
        events = list(demo_events(now=system_clock(), days=days, users=users, seed=seed))
        tally = Tally()
        with _progress() as progress:
            task = progress.add_task("Loading demo events", total=len(events))
            for start in range(0, len(events), 1000):
                batch = events[start : start + 1000]
                tally = tally.plus(ingest(db, batch, now_us=now_us(system_clock)))
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
        with database() as db, _progress() as progress, open_records(file) as records:
            task = progress.add_task(f"Importing {file.name}", total=None)
            summary = import_records(
                db,
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


def main() -> None:
    app(prog_name="tokenledger")
