"""``tokenledger people``: the people directory (team and department of each person)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tokenledger import people as directory_file
from tokenledger.auth import audit as audit_log
from tokenledger.cli.common import app, console, database
from tokenledger.clock import now_us, system_clock
from tokenledger.store.people import directory

people_app = typer.Typer(
    help="The people directory: name, e-mail, department and team of each person."
)
app.add_typer(people_app, name="people")


@people_app.command("import")
def people_import(
    path: Annotated[
        Path,
        typer.Argument(help="CSV file with the columns user_id,name,email,department,team."),
    ],
) -> None:
    """Load a directory: its non-empty values win over what events send. Re-running
    updates; unknown ids become people without usage. A bad row refuses the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        console.print(f"error: cannot read {path}: {exc.strerror}")
        raise typer.Exit(2) from exc
    try:
        people = directory_file.parse_upload(data)
    except directory_file.DirectoryError as exc:
        console.print(f"error: {path.name}: nothing imported:")
        for error in exc.errors:
            console.print(f"  {error}")
        if exc.more:
            console.print("  (and more)")
        raise typer.Exit(2) from exc
    with database() as db:
        result = directory_file.import_directory(
            db,
            people,
            now_us=now_us(system_clock),
            actor=audit_log.cli_actor(),
            source=path.name,
        )
    console.print(
        f"{len(people)} people: {result.created} new, {result.updated} updated, "
        f"{result.unchanged} unchanged."
    )


@people_app.command("export")
def people_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Write the directory as imported (CSV, the columns of `people import`)."""
    with database() as db:
        chunks = directory_file.directory_csv(directory(db))
        if output is None:
            for chunk in chunks:
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
        else:
            with output.open("wb") as file:
                for chunk in chunks:
                    file.write(chunk)
