"""``/api/v1/prices``: own prices. Reading them needs a report reader (a
``report:read`` key or a session); changing them needs a signed-in admin (with the
page's CSRF token), like the Prices page. Every change is in the audit log."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request

from tokenledger import prices
from tokenledger.clock import now_us
from tokenledger.web.deps import Ctx, ReportReader, RowId, Viewer, client_address, current_viewer
from tokenledger.web.errors import ApiError, error_responses
from tokenledger.web.schemas import OwnPriceIn, OwnPriceOut, OwnPrices

router = APIRouter()


def _admin(request: Request) -> Viewer:
    viewer = current_viewer(request)
    if viewer is None:
        raise ApiError(401, "unauthorized", "sign in as an admin to change prices")
    if not viewer.is_admin:
        raise ApiError(403, "forbidden", "only admins change prices")
    return viewer


@router.get(
    "/api/v1/prices",
    summary="Own prices",
    response_model=None,
    responses={200: {"model": OwnPrices}, **error_responses(401, 403, 503)},
)
def get_prices(ctx: Ctx, _reader: ReportReader) -> dict[str, Any]:
    """The admins' own prices (the built-in catalogue is not listed)."""
    return {"prices": [price.json() for price in prices.list_prices(ctx.db)]}


@router.put(
    "/api/v1/prices",
    summary="Set an own price",
    response_model=None,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": OwnPriceIn.model_json_schema()}},
        }
    },
    responses={200: {"model": OwnPriceOut}, **error_responses(400, 401, 403, 503)},
)
async def put_price(request: Request, ctx: Ctx) -> dict[str, Any]:
    """Set a price (signed-in admin). Events already stored keep their cost until
    repriced (`tokenledger reprice` or the Prices page)."""
    viewer = _admin(request)
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", "the body must be a JSON object") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    try:
        price = prices.parse_price(body)
    except prices.InvalidPrice as exc:
        raise ApiError(400, "invalid_price", str(exc), field=exc.field) from exc
    stored = prices.set_price(
        ctx.db, price, now_us=now_us(ctx.clock), actor=viewer.email, client=client_address(request)
    )
    return stored.json()


@router.delete(
    "/api/v1/prices/{price_id}",
    summary="Delete an own price",
    response_model=None,
    responses={200: {"model": OwnPriceOut}, **error_responses(400, 401, 403, 404, 503)},
)
def delete_price(request: Request, ctx: Ctx, price_id: RowId) -> dict[str, Any]:
    viewer = _admin(request)
    try:
        deleted = prices.delete_price(
            ctx.db,
            price_id,
            now_us=now_us(ctx.clock),
            actor=viewer.email,
            client=client_address(request),
        )
    except LookupError as exc:
        raise ApiError(404, "not_found", f"no own price with id {price_id}") from exc
    return deleted.json()
