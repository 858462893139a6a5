"""``tokenledger keys``: API keys for applications and readers."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tokenledger.auth import audit as audit_log
from tokenledger.auth import keys as api_keys
from tokenledger.cli.common import app, cells, console, database, out
from tokenledger.clock import now_us, system_clock

keys_app = typer.Typer(
    help=(
        "API keys for applications (ingest), readers (report:read), Prometheus (metrics) "
        "and the gateway (gateway: one person's; gateway-app: an application's)."
    )
)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    scope: Annotated[
        str, typer.Option(help="ingest, report:read, metrics, gateway or gateway-app.")
    ],
    name: Annotated[
        str,
        typer.Option(help="What the key is for, e.g. 'chat gateway' (a gateway key: its user id)."),
    ] = "",
    user_id: Annotated[
        str,
        typer.Option(
            "--user-id", help="A gateway key's person: the user id their usage is counted under."
        ),
    ] = "",
) -> None:
    """Create an API key and print it (once: it is not stored, only its hash)."""
    try:
        with database() as db:
            key, secret = api_keys.create_key(
                db,
                name=name,
                scope=scope,
                user_id=user_id or None,
                now_us=now_us(system_clock),
                actor=audit_log.cli_actor(),
            )
    except ValueError as exc:
        console.print(f"error: {exc}")
        raise typer.Exit(2) from exc
    person = f" for {key.user_id}" if key.user_id else ""
    console.print(
        f"Created key {key.id} ({key.scope}) '{key.name}'{person}. It is shown only now:",
        markup=False,
    )
    out.print(secret, markup=False, highlight=False)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (prefix only; secrets are never stored)."""
    table = Table("id", "name", "prefix", "scope", "person", "created", "last used", "revoked")
    from tokenledger.localdays import iso, zone

    utc = zone("UTC")
    with database() as db:
        found = api_keys.list_keys(db)
    for key in found:
        table.add_row(
            *cells(
                str(key.id),
                key.name,
                key.prefix + "…",
                key.scope,
                key.user_id or "",
                iso(key.created_us, utc),
                iso(key.last_used_us, utc) or "never",
                iso(key.revoked_us, utc) or "",
            )
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="Key id (see keys list).")]) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    try:
        with database() as db:
            key = api_keys.revoke_key(
                db, key_id, now_us=now_us(system_clock), actor=audit_log.cli_actor()
            )
    except LookupError as exc:
        console.print(f"error: {exc}")
        raise typer.Exit(2) from exc
    console.print(f"Key {key.id} '{key.name}' is revoked.")
