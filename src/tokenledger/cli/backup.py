"""``backup`` and ``restore``: a SQLite database, copied while the server runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokenledger.cli.common import app, console, database
from tokenledger.store import backup as backups


@app.command()
def backup(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="Where to write the backup.")],
    force: Annotated[bool, typer.Option(help="Replace FILE if it exists.")] = False,
) -> None:
    """Copy the SQLite database to FILE while the server runs (consistent: the
    database as of one commit). For PostgreSQL, use pg_dump (docs/operations.md)."""
    try:
        with database(migrate=False) as db:
            made = backups.backup(db, file, overwrite=force)
    except backups.BackupError as exc:
        console.print(f"error: {exc}", soft_wrap=True)
        raise typer.Exit(2) from exc
    console.print(
        f"Backed up {made.events} events (schema {made.revision}) to {made.path}: "
        f"{made.size_bytes} bytes.",
        soft_wrap=True,
    )


@app.command()
def restore(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="A file made by `backup`.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Replace the SQLite database by the backup FILE, then migrate it. Stop the
    server first: what was stored after the backup was taken is lost."""
    with database(migrate=False) as db:
        try:
            backups.sqlite_file(db, "tokenledger restore")
            found = backups.inspect(file)
            console.print(
                f"{file}: {found.events} events, schema {found.revision}.", soft_wrap=True
            )
            if not yes and not typer.confirm(
                "Replace everything in the database by this backup? Stop the server first",
                err=True,
            ):
                raise typer.Exit(1)
            backups.restore(db, file)
        except backups.BackupError as exc:
            console.print(f"error: {exc}", soft_wrap=True)
            raise typer.Exit(2) from exc
    console.print("Restored. Run `tokenledger verify` to check the rollups against the events.")
