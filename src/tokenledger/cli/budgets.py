"""``tokenledger budgets``: budgets and where their alerts go."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer
from rich.table import Table

from tokenledger.auth import audit as audit_log
from tokenledger.budgets.check import Budgets
from tokenledger.budgets.model import EVERYONE, InvalidBudget, limit_json
from tokenledger.cli.common import app, cells, console, database, out
from tokenledger.clock import now_us, system_clock
from tokenledger.store import budgets as budget_store
from tokenledger.store.usage_store import UsageStore

budgets_app = typer.Typer(help="Budgets: limits per person and period, their alerts.")
app.add_typer(budgets_app, name="budgets")
CHANNEL_KINDS = ("webhook", "slack", "email")


@budgets_app.command("create")
def budgets_create(
    name: Annotated[str, typer.Option(help="What the budget is, e.g. 'monthly tokens'.")],
    metric: Annotated[str, typer.Option(help="tokens, requests (cost_usd once cost exists).")],
    limit: Annotated[str, typer.Option(help="The limit: a whole number; money in dollars.")],
    period: Annotated[str, typer.Option(help="day, week (from Monday), month, quarter, year.")],
    scope: Annotated[
        str, typer.Option(help="everyone, person, or a person attribute (team, department).")
    ] = EVERYONE,
    scope_value: Annotated[
        str, typer.Option(help="The person's user id, or the team or department.")
    ] = "",
    timezone: Annotated[str, typer.Option(help="IANA zone of the periods.")] = "UTC",
    thresholds: Annotated[str, typer.Option(help="Alert thresholds in percent.")] = "50,80,100",
    action: Annotated[str, typer.Option(help="At 100 %: alert or block.")] = "alert",
) -> None:
    """Create a budget."""
    try:
        with database() as db:
            budget = Budgets(UsageStore(db)).create(
                actor=audit_log.cli_actor(),
                client=None,
                now_us=now_us(system_clock),
                name=name,
                scope=scope,
                scope_value=scope_value or None,
                metric=metric,
                limit=limit,
                period=period,
                timezone=timezone,
                thresholds=thresholds,
                action=action,
            )
    except InvalidBudget as exc:
        console.print(f"error: {exc}")
        raise typer.Exit(2) from exc
    console.print(f"Created budget {budget.id} '{budget.name}'.")


@budgets_app.command("list")
def budgets_list() -> None:
    """List budgets."""
    table = Table(
        "id", "name", "scope", "metric", "limit", "period", "zone", "thresholds", "action"
    )
    with database() as db:
        budgets = Budgets(UsageStore(db))
        found = budgets.all()
    for budget in found:
        limit = limit_json(budgets.metrics, budget.metric, budget.limit)
        table.add_row(
            *cells(
                str(budget.id),
                budget.name,
                budget.scope_text(),
                budget.metric,
                str(limit),
                budget.period,
                budget.timezone,
                ",".join(str(t) for t in budget.thresholds),
                budget.action,
            )
        )
    out.print(table)


@budgets_app.command("delete")
def budgets_delete(budget_id: Annotated[int, typer.Argument(help="Budget id.")]) -> None:
    """Delete a budget (its alerts already recorded stay in the delivery log)."""
    try:
        with database() as db:
            budget = Budgets(UsageStore(db)).delete(
                budget_id, actor=audit_log.cli_actor(), client=None, now_us=now_us(system_clock)
            )
    except LookupError as exc:
        console.print(f"error: {exc}")
        raise typer.Exit(2) from exc
    console.print(f"Deleted budget {budget.id} '{budget.name}'.")


@budgets_app.command("add-channel")
def budgets_add_channel(
    kind: Annotated[str, typer.Option(help="webhook, slack or email.")],
    target: Annotated[str, typer.Option(help="The URL, or the e-mail address.")],
) -> None:
    """Send alerts to a webhook, a Slack incoming webhook or an e-mail address. A
    webhook's signing secret is printed once."""
    if kind not in CHANNEL_KINDS:
        console.print(f"error: kind must be one of {', '.join(CHANNEL_KINDS)}")
        raise typer.Exit(2)
    secret = secrets.token_urlsafe(32) if kind == "webhook" else ""
    at = now_us(system_clock)
    with database() as db, db.write() as conn:
        channel_id = budget_store.insert_channel(
            conn, kind=kind, target=target, secret=secret, now_us=at
        )
        audit_log.record_in(
            conn,
            actor=audit_log.cli_actor(),
            action=audit_log.ALERT_CHANNEL_CHANGED,
            details={"channel_id": channel_id, "kind": kind, "target": target, "enabled": True},
            now_us=at,
        )
    console.print(f"Added alert channel {channel_id} ({kind}).")
    if secret:
        out.print(secret, markup=False, highlight=False)
