"""Admin > Prices: own prices (set, delete), the models no price covers, and repricing
stored events after a change."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from tokenledger import prices
from tokenledger import reprice as repricing
from tokenledger.clock import now_us
from tokenledger.localdays import parse_date
from tokenledger.web.admin.common import FormText, admin_page, changed
from tokenledger.web.deps import Ctx, PageAdmin, RowId, client_address
from tokenledger.web.error_pages import error_page

router = APIRouter(prefix="/admin", include_in_schema=False)

PATH = "/admin/prices"
NOTICES = {
    "set": "The price is saved. Events stored from now on use it; reprice below to apply "
    "it to events already stored.",
    "deleted": "The price is deleted. Reprice to apply the change to events already stored.",
    "repriced": "Events repriced. The audit log has the totals before and after.",
}
FORM_FIELDS = ("model", "provider", "valid_from", *prices.KINDS)


def _prices_page(
    request: Request,
    ctx: Ctx,
    *,
    status: int = 200,
    done: str | None = None,
    **values: Any,
) -> Response:
    form = dict.fromkeys(FORM_FIELDS, "") | values.pop("form", {})
    reprice_form = {"from_date": "", "model": ""} | values.pop("reprice_form", {})
    if done == "set" and not reprice_form["from_date"]:
        reprice_form = {
            "from_date": request.query_params.get("from", ""),
            "model": request.query_params.get("model", ""),
        }
    return admin_page(
        request,
        ctx,
        "admin/prices.html",
        "prices",
        status=status,
        notice=NOTICES.get(done or ""),
        prices=[price.json() for price in prices.list_prices(ctx.db)],
        unpriced=prices.unpriced_models(ctx.db),
        form=form,
        reprice_form=reprice_form,
        **values,
    )


@router.get("/prices")
def prices_page(request: Request, ctx: Ctx, _admin: PageAdmin, done: str | None = None) -> Response:
    return _prices_page(request, ctx, done=done)


@router.post("/prices")
def price_set(
    request: Request,
    ctx: Ctx,
    admin: PageAdmin,
    model: FormText = "",
    provider: FormText = "",
    valid_from: FormText = "",
    input: FormText = "",
    cache_read: FormText = "",
    cache_write: FormText = "",
    output: FormText = "",
) -> Response:
    """Save an own price; back to the page, which offers to reprice from its date."""
    form = {
        "model": model,
        "provider": provider,
        "valid_from": valid_from,
        "input": input,
        "cache_read": cache_read,
        "cache_write": cache_write,
        "output": output,
    }
    try:
        price = prices.parse_price(form)
    except prices.InvalidPrice as exc:
        shown = {name: value[:255] for name, value in form.items()}
        return _prices_page(request, ctx, status=400, error=str(exc), form=shown)
    stored = prices.set_price(
        ctx.db,
        price,
        now_us=now_us(ctx.clock),
        actor=admin.email,
        client=client_address(request),
    )
    query = {"done": "set", "from": stored.valid_from.isoformat(), "model": stored.model}
    return RedirectResponse(f"{PATH}?{urlencode(query)}", status_code=303)


@router.post("/prices/{price_id}/delete")
def price_delete(request: Request, ctx: Ctx, admin: PageAdmin, price_id: RowId) -> Response:
    try:
        prices.delete_price(
            ctx.db,
            price_id,
            now_us=now_us(ctx.clock),
            actor=admin.email,
            client=client_address(request),
        )
    except LookupError:
        return error_page(
            request, status=404, title="No such price", message="This price does not exist."
        )
    return changed(PATH, "deleted")


@router.post("/prices/reprice")
async def prices_reprice(
    request: Request, ctx: Ctx, admin: PageAdmin, from_date: FormText = "", model: FormText = ""
) -> Response:
    """Reprice the stored events from a date (of one model, if given)."""
    try:
        day = parse_date(from_date.strip())
    except ValueError as exc:
        form = {"from_date": from_date[:40], "model": model[:255]}
        return _prices_page(request, ctx, status=400, error=f"from_date: {exc}", reprice_form=form)
    await run_in_threadpool(
        repricing.reprice,
        ctx.store,
        from_date=day,
        model=model.strip() or None,
        now_us=now_us(ctx.clock),
        actor=admin.email,
        client=client_address(request),
    )
    return changed(PATH, "repriced")
