"""``tokenledger prices`` (own prices) and ``tokenledger reprice``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tokenledger import prices as own_prices
from tokenledger import reprice as repricing
from tokenledger.auth import audit as audit_log
from tokenledger.cli.common import app, cells, console, database, out
from tokenledger.clock import now_us, system_clock
from tokenledger.localdays import parse_date
from tokenledger.store.usage_store import UsageStore

prices_app = typer.Typer(
    help="Own prices (US dollars per million tokens) that win over the built-in catalogue."
)
app.add_typer(prices_app, name="prices")

PerMillion = Annotated[
    str | None, typer.Option(help="US dollars per million tokens (exact decimal).")
]


@prices_app.command("list")
def prices_list() -> None:
    """List the own prices."""
    table = Table(
        "id", "model", "provider", "valid from", "input", "cache read", "cache write", "output"
    )
    with database() as db:
        found = own_prices.list_prices(db)
    for price in found:
        shown = price.json()
        table.add_row(
            *cells(
                str(price.id),
                price.model,
                price.provider or "any",
                shown["valid_from"],
                *(shown[f"{kind}_per_million_usd"] or "= input" for kind in own_prices.KINDS),
            )
        )
    out.print(table)


@prices_app.command("set")
def prices_set(
    model: Annotated[str, typer.Option(help="The model name as events carry it.")],
    valid_from: Annotated[
        str, typer.Option("--from", help="First UTC date it applies, YYYY-MM-DD.")
    ],
    input_price: Annotated[
        str, typer.Option("--input", help="US dollars per million input tokens.")
    ],
    output_price: Annotated[
        str, typer.Option("--output", help="US dollars per million output tokens.")
    ],
    provider: Annotated[
        str, typer.Option(help="Only events of this provider (default: any).")
    ] = "",
    cache_read: PerMillion = None,
    cache_write: PerMillion = None,
) -> None:
    """Set an own price (replacing the one of the same model, provider and date).
    Events already stored keep their cost until `tokenledger reprice`."""
    try:
        price = own_prices.parse_price(
            {
                "model": model,
                "provider": provider,
                "valid_from": valid_from,
                "input": input_price,
                "cache_read": cache_read,
                "cache_write": cache_write,
                "output": output_price,
            }
        )
    except own_prices.InvalidPrice as exc:
        console.print(f"error: {exc}")
        raise typer.Exit(2) from exc
    with database() as db:
        stored = own_prices.set_price(
            db, price, now_us=now_us(system_clock), actor=audit_log.cli_actor()
        )
    console.print(
        f"Price {stored.id} set for {stored.model} from {stored.valid_from}. To apply it to "
        f"events already stored: tokenledger reprice --from {stored.valid_from} "
        f"--model {stored.model}"
    )


@prices_app.command("delete")
def prices_delete(
    price_id: Annotated[int, typer.Argument(help="Price id (see prices list).")],
) -> None:
    """Delete an own price."""
    try:
        with database() as db:
            deleted = own_prices.delete_price(
                db, price_id, now_us=now_us(system_clock), actor=audit_log.cli_actor()
            )
    except LookupError as exc:
        console.print(f"error: {exc}")
        raise typer.Exit(2) from exc
    console.print(f"Price {price_id} ({deleted.model} from {deleted.valid_from}) is deleted.")


@app.command()
def reprice(
    from_date: Annotated[
        str, typer.Option("--from", help="First UTC date to reprice, YYYY-MM-DD.")
    ],
    model: Annotated[str | None, typer.Option(help="Only events of this model.")] = None,
) -> None:
    """Recompute the cost of stored events from a date on (not reported costs) with
    the current prices, rewrite their rollups, and record the totals before/after."""
    try:
        day = parse_date(from_date)
    except ValueError as exc:
        console.print(f"error: --from {exc}")
        raise typer.Exit(2) from exc
    with database() as db:
        result = repricing.reprice(
            UsageStore(db),
            from_date=day,
            model=model,
            now_us=now_us(system_clock),
            actor=audit_log.cli_actor(),
        )
    shown = result.json()
    console.print(
        f"{result.events} events repriced, {result.changed} changed. Cost "
        f"{shown['before']['cost_usd']} -> {shown['after']['cost_usd']} USD; unpriced "
        f"{result.before.unpriced} -> {result.after.unpriced}."
    )
