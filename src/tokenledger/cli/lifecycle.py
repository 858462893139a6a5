"""Data over the years: ``retention run`` and ``people erase``."""

from __future__ import annotations

from typing import Annotated

import typer

from tokenledger.auth import audit
from tokenledger.cli.common import app, console, database, settings, usage_store
from tokenledger.cli.people import people_app
from tokenledger.clock import now_us, system_clock
from tokenledger.localdays import iso, zone
from tokenledger.store import erasure

retention_app = typer.Typer(help="Delete raw events older than TOKENLEDGER_RETENTION_DAYS.")
app.add_typer(retention_app, name="retention")


@retention_app.command("run")
def retention_run(
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="Events per transaction.")
    ] = 1000,
) -> None:
    """Delete raw events older than TOKENLEDGER_RETENTION_DAYS now (for cron); rollups
    and reports are kept."""
    from tokenledger import retention

    days = settings().retention_days
    if days is None:
        console.print("TOKENLEDGER_RETENTION_DAYS is not set: every event is kept.")
        raise typer.Exit(2)
    with database() as db:
        done = retention.apply(
            usage_store(db), days=days, now=now_us(system_clock), batch_size=batch_size
        )
    start = iso(done.horizon_us, zone("UTC"))
    console.print(
        f"Deleted {done.deleted} events that started before {start} "
        f"({done.batches} transactions); rollups kept.",
        soft_wrap=True,
    )


@people_app.command("erase")
def people_erase(
    user_id: Annotated[str, typer.Option("--user-id", help="The person's user id.")],
) -> None:
    """Erase a person: name, e-mail and their events' metadata removed, user id replaced
    by a pseudonym; their usage stays in every total. Audited."""
    from tokenledger.erasure import erase_person

    with database() as db:
        try:
            done = erase_person(
                usage_store(db),
                user_id=user_id,
                actor=audit.cli_actor(),
                now_us=now_us(system_clock),
            )
        except (erasure.ErasureKeyMissing, erasure.UnknownPerson) as exc:
            console.print(f"error: {exc.args[0]}", soft_wrap=True)
            raise typer.Exit(2) from exc
    console.print(
        f"Erased: now {done.pseudonym}; {done.events} events rewritten; "
        f"cleared {', '.join(done.cleared)}.",
        soft_wrap=True,
    )
