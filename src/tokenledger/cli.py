"""The ``tokenledger`` command line. Thin: parse, call the modules, print."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from tokenledger.auth import accounts as console_accounts
from tokenledger.auth import audit as audit_log
from tokenledger.auth import bootstrap, passwords
from tokenledger.auth import keys as api_keys
from tokenledger.clock import now_us, system_clock
from tokenledger.export import CsvExport, ExportOutcome, ExportRequest, Granularity, audit_details
from tokenledger.localdays import LocalRange, parse_date, zone
from tokenledger.reports import UserFilter
from tokenledger.settings import Settings
from tokenledger.store import migrate as migrations
from tokenledger.store import rollups
from tokenledger.store.database import Database, DatabaseUnavailable, open_database

app = typer.Typer(
    help="TokenLedger: exact per-user AI usage. Settings come from TOKENLEDGER_* variables.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="API keys for applications (ingest) and readers (report:read).")
app.add_typer(keys_app, name="keys")
accounts_app = typer.Typer(
    help="Console accounts (the people who read reports): role admin or viewer."
)
app.add_typer(accounts_app, name="accounts")
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
        _first_admin(db, current)
        console.print(f"TokenLedger serving on http://{bind_host}:{bind_port}")
        console.print(f"  Sign in at http://{bind_host}:{bind_port}/sign-in  (API docs: /api/docs)")
        serve_app(create_app(current, db=db), current, host=bind_host, port=bind_port)


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


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="What the key is for, e.g. 'chat gateway'.")],
    scope: Annotated[str, typer.Option(help="ingest or report:read.")],
) -> None:
    """Create an API key and print it (once: it is not stored, only its hash)."""
    try:
        with database() as db:
            key, secret = api_keys.create_key(
                db, name=name, scope=scope, now_us=now_us(system_clock), actor=audit_log.cli_actor()
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
            *_cells(
                str(key.id),
                key.name,
                key.prefix + "…",
                key.scope,
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


def _new_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt(
        f"Password (at least {passwords.MIN_LENGTH} characters)",
        hide_input=True,
        confirmation_prompt=True,
        err=True,
    )
    return password


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
]
EmailArgument = Annotated[str, typer.Argument(help="The account's e-mail address.")]


@contextmanager
def _account_change(email: str) -> Iterator[tuple[Database, console_accounts.Account]]:
    """The database and the account ``email``; exit 2 with the reason on a refusal."""
    try:
        with database() as db:
            account = console_accounts.find_account(db, email)
            if account is None:
                raise LookupError(f"no account with e-mail {email.strip().lower()}")
            yield db, account
    except (LookupError, ValueError) as exc:
        console.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from exc


@accounts_app.command("create")
def accounts_create(
    email: Annotated[str, typer.Option(help="E-mail address: what the person signs in with.")],
    role: Annotated[str, typer.Option(help="admin or viewer.")],
    name: Annotated[str, typer.Option(help="Display name (optional).")] = "",
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a console account (the password is asked for, or read from stdin)."""
    try:
        console_accounts.check_role(role)
        password = _new_password(password_stdin)
        with database() as db:
            account = console_accounts.create_account(
                db,
                email=email,
                password=password,
                role=role,
                display_name=name,
                actor=audit_log.cli_actor(),
                now_us=now_us(system_clock),
            )
    except ValueError as exc:
        console.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from exc
    console.print(f"Created {account.role} account {account.email}.", markup=False)


def _cells(*values: str | None) -> list[Text]:
    """Table cells as plain text: names and details are user data, not Rich markup."""
    return [Text(value or "") for value in values]


@accounts_app.command("list")
def accounts_list() -> None:
    """List console accounts."""
    from tokenledger.localdays import iso, zone

    utc = zone("UTC")
    table = Table("email", "name", "role", "status", "last sign-in (UTC)")
    with database() as db:
        found = console_accounts.list_accounts(db)
    for account in found:
        last = iso(account.last_sign_in_us, utc)
        table.add_row(
            *_cells(
                account.email,
                account.display_name,
                account.role,
                "enabled" if account.enabled else "disabled",
                last[:16].replace("T", " ") if last else "never",
            )
        )
    out.print(table)


@accounts_app.command("disable")
def accounts_disable(email: EmailArgument) -> None:
    """Disable an account: it cannot sign in, and its open sessions end now."""
    with _account_change(email) as (db, account):
        console_accounts.set_enabled(
            db, account.id, enabled=False, actor=audit_log.cli_actor(), now_us=now_us(system_clock)
        )
    console.print(f"{account.email} is disabled.", markup=False)


@accounts_app.command("enable")
def accounts_enable(email: EmailArgument) -> None:
    """Enable a disabled account again."""
    with _account_change(email) as (db, account):
        console_accounts.set_enabled(
            db, account.id, enabled=True, actor=audit_log.cli_actor(), now_us=now_us(system_clock)
        )
    console.print(f"{account.email} is enabled.", markup=False)


@accounts_app.command("set-role")
def accounts_set_role(
    email: EmailArgument, role: Annotated[str, typer.Argument(help="admin or viewer.")]
) -> None:
    """Change an account's role (open sessions get it at their next request)."""
    with _account_change(email) as (db, account):
        changed = console_accounts.set_role(
            db, account.id, role=role, actor=audit_log.cli_actor(), now_us=now_us(system_clock)
        )
    console.print(f"{changed.email} is now {changed.role}.", markup=False)


@accounts_app.command("reset-password")
def accounts_reset_password(email: EmailArgument, password_stdin: PasswordStdin = False) -> None:
    """Set a new password (asked for, or read from stdin); signs the account out."""
    with _account_change(email) as (db, account):
        console_accounts.set_password(
            db,
            account.id,
            password=_new_password(password_stdin),
            actor=audit_log.cli_actor(),
            now_us=now_us(system_clock),
        )
    console.print(f"The password of {account.email} is reset.", markup=False)


@app.command("audit")
def audit_command(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many entries.")] = 50,
    action: Annotated[
        str | None, typer.Option(help=f"Only this action: {', '.join(audit_log.ACTIONS)}.")
    ] = None,
) -> None:
    """Show the audit log, newest first, one entry per line."""
    import json

    from tokenledger.localdays import iso, zone

    utc = zone("UTC")
    with database() as db:
        found = audit_log.entries(db, action=action, limit=limit)
    for entry in found:
        client = f"  from {entry.client}" if entry.client else ""
        details = json.dumps(entry.details, ensure_ascii=False) if entry.details else ""
        out.print(
            f"#{entry.id}  {iso(entry.at_us, utc)}  {entry.action}  {entry.actor}{client}  "
            f"{details}".rstrip(),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


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


def _local_range(start: str | None, end: str | None, tz: str | None) -> LocalRange:
    """The range named by --start/--end/--tz, defaults as in the API (today in tz)."""
    try:
        zone_info = zone(tz or settings().timezone)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--tz") from exc
    try:
        return LocalRange.around(
            _date_option(start, "--start"), _date_option(end, "--end"), zone_info, system_clock()
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--end") from exc


def _date_option(value: str | None, hint: str) -> date | None:
    if value is None:
        return None
    try:
        return parse_date(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=hint) from exc


def _audit_export(db: Database, request: ExportRequest, outcome: ExportOutcome) -> None:
    audit_log.record(
        db,
        actor=audit_log.cli_actor(),
        action=audit_log.EXPORT,
        details=audit_details(request, outcome),
        now_us=now_us(system_clock),
    )


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
        typer.Option(help="summary: per user; daily: per user and local day; events: per request."),
    ] = "summary",
    bom: Annotated[bool, typer.Option(help="Start with a UTF-8 byte order mark (Excel).")] = False,
    output: Annotated[
        str, typer.Option("--output", "-o", help="File to write, or - for standard output.")
    ] = "-",
) -> None:
    """Export usage as CSV: the same bytes as the console's Export to CSV."""
    try:
        request = ExportRequest(
            local_range=_local_range(start, end, tz),
            users=UserFilter(q=q),
            sort=sort,
            granularity=granularity,
            bom=bom,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--sort") from exc
    try:
        with database() as db:
            csv_export = CsvExport(
                db, request, on_finish=lambda outcome: _audit_export(db, request, outcome)
            )
            if output == "-":
                _write_stream(typer.get_binary_stream("stdout"), csv_export)
                return
            with _rows_progress() as progress:
                task = progress.add_task(f"Exporting {output}", total=None)
                _write_file(
                    Path(output),
                    csv_export,
                    progress=lambda: progress.update(task, completed=csv_export.rows_written),
                )
                rows = csv_export.rows_written
                progress.update(task, total=rows, completed=rows)
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


def _rows_progress() -> Progress:
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


def main() -> None:
    app(prog_name="tokenledger")
