"""Shared by the commands: the Typer app, consoles, settings and the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from tokenledger.settings import Settings
from tokenledger.store import migrate as migrations
from tokenledger.store.database import Database, open_database
from tokenledger.store.usage_store import UsageStore

app = typer.Typer(
    help="TokenLedger: exact per-user AI usage. Settings come from TOKENLEDGER_* variables.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
# No Rich markup: what is printed includes user data (key and account names).
console = Console(stderr=True, markup=False, highlight=False)
out = Console(markup=False, highlight=False)


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


def usage_store(db: Database) -> UsageStore:
    """The usage store of ``db`` with the settings' erasure key (so ingest stores an
    erased person's events erased)."""
    return UsageStore(db, erasure_key=settings().erasure_key_bytes)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def cells(*values: str | None) -> list[Text]:
    """Table cells as plain text: names and details are user data, not Rich markup."""
    return [Text(value or "") for value in values]


@app.callback()
def main_options(
    database_url: Annotated[
        str | None,
        typer.Option(help="Database URL (overrides TOKENLEDGER_DATABASE_URL)."),
    ] = None,
) -> None:
    overrides = {"database_url": database_url} if database_url else {}
    State.settings = Settings(**overrides)  # type: ignore[arg-type]
