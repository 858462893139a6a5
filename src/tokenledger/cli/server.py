"""``migrate`` and ``serve`` (which also creates the first admin)."""

from __future__ import annotations

from typing import Annotated

import typer

from tokenledger.auth import accounts, bootstrap, sso
from tokenledger.cli.common import app, console, database, settings
from tokenledger.clock import now_us, system_clock
from tokenledger.gateway import upstreams
from tokenledger.settings import Settings
from tokenledger.store import erasure
from tokenledger.store import migrate as migrations
from tokenledger.store.database import Database


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
    gateway = _gateway_upstreams(current)
    open_files = raise_open_file_limit(current.max_connections)
    if open_files < current.max_connections:
        console.print(
            f"warning: at most {open_files} open files (ulimit -n): fewer connections than "
            f"TOKENLEDGER_MAX_CONNECTIONS={current.max_connections} can be accepted"
        )
    with database() as db:
        _first_admin(db, current)
        problem = sso.break_glass_problem(db, current)
        if problem:
            console.print(f"warning: {problem}", markup=False, highlight=False)
        if current.erasure_key_bytes is None and erasure.has_erased(db):
            console.print(
                "warning: people were erased but TOKENLEDGER_ERASURE_KEY is not set: their "
                "resent events would be stored as new, with their data (docs/operations.md)",
                soft_wrap=True,
            )
        console.print(f"TokenLedger serving on http://{bind_host}:{bind_port}")
        console.print(f"  Sign in at http://{bind_host}:{bind_port}/sign-in  (API docs: /api/docs)")
        _say_admins(db)
        if gateway.all:
            names = ", ".join(f"{up.name} ({up.kind})" for up in gateway.all)
            console.print(f"  Gateway at /gateway/openai/v1 and /gateway/anthropic: {names}")
        serve_app(create_app(current, db=db), current, host=bind_host, port=bind_port)


def _gateway_upstreams(current: Settings) -> upstreams.Upstreams:
    """The gateway's upstreams, or exit 2 saying what is wrong with their file."""
    try:
        return upstreams.load(current.gateway_config)
    except upstreams.GatewayConfigError as exc:
        console.print(f"error: TOKENLEDGER_GATEWAY_CONFIG: {exc}", markup=False)
        raise typer.Exit(2) from exc


def _first_admin(db: Database, current: Settings) -> None:
    """Create the first admin when none exists, and say how to sign in. A generated
    password is shown only on a terminal, never written where a log could keep it."""
    try:
        first = bootstrap.ensure_first_admin(
            db,
            email=current.admin_email,
            password=current.admin_password.get_secret_value(),
            may_generate=console.is_terminal,
            actor="tokenledger serve (first run)",
            now_us=now_us(system_clock),
        )
    except ValueError as exc:  # a bad TOKENLEDGER_ADMIN_EMAIL or _PASSWORD
        console.print(f"error: TOKENLEDGER_ADMIN_EMAIL / _PASSWORD: {exc}", markup=False)
        raise typer.Exit(2) from exc
    if first is None:
        return
    if first.problem:
        console.print(f"warning: {first.problem}", markup=False, highlight=False)
        return
    console.print(f"First run: created the admin account {first.email}.", markup=False)
    if first.generated_password:
        console.print(
            f"  Its password, shown only now: {first.generated_password}\n"
            "  Sign in with it, then change it under your name at the top right.",
            markup=False,
            highlight=False,
        )
    else:
        console.print("  Its password is the one in TOKENLEDGER_ADMIN_PASSWORD.")


def _say_admins(db: Database) -> None:
    """At every start, who can sign in as admin, and what to do if the password is lost."""
    admins = [a.email for a in accounts.list_accounts(db) if a.role == "admin" and a.enabled]
    if not admins:
        return
    shown = ", ".join(admins[:3]) + (f" and {len(admins) - 3} more" if len(admins) > 3 else "")
    console.print(f"  Admin account{'s' if len(admins) > 1 else ''}: {shown}", markup=False)
    console.print(
        f"  Lost the password? Run: tokenledger accounts reset-password {admins[0]}",
        markup=False,
        highlight=False,
    )
