"""``GET /api/v1/budgets/check``: may this person make an AI request now?

For gateways outside TokenLedger (the built-in gateway asks the same code in process).
An ``ingest`` or ``budget:check`` key; a few index reads per call.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from tokenledger.auth import names
from tokenledger.auth.keys import ApiKey, find_key_in, touch_due
from tokenledger.budgets.check import Budgets, BudgetUse
from tokenledger.budgets.model import limit_json
from tokenledger.clock import now_us
from tokenledger.localdays import iso
from tokenledger.web.deps import Ctx, key_for, note_key_used
from tokenledger.web.errors import ApiError, error_responses

router = APIRouter()

CHECK_SCOPES = ("budget:check", "ingest")


def use_json(budgets: Budgets, use: BudgetUse) -> dict[str, Any]:
    budget, metrics = use.budget, budgets.metrics
    return {
        "id": budget.id,
        "metric": budget.metric,
        "limit": limit_json(metrics, budget.metric, budget.limit),
        "used": limit_json(metrics, budget.metric, use.used),
        "remaining": limit_json(metrics, budget.metric, use.remaining),
        "period_start": iso(use.period.start_us, budget.tz),
        "period_end": iso(use.period.end_us, budget.tz),
        "action": budget.action,
    }


def check_json(budgets: Budgets, uses: list[BudgetUse], *, at_us: int) -> dict[str, Any]:
    return {
        "allowed": budgets.decide(uses, now_us=at_us).allowed,
        "budgets": [use_json(budgets, use) for use in uses],
    }


@router.get(
    "/api/v1/budgets/check",
    summary="Check a person's budgets",
    response_model=None,
    responses=error_responses(400, 401, 403, 503),
)
async def check_budgets(
    request: Request,
    ctx: Ctx,
    user_id: Annotated[str, Query(description="The person (the `user.id` of their events).")],
) -> Response:
    """Whether `user_id` may make a request now (`allowed` is false while a `block`
    budget is at or over 100 %), and their use of each budget that applies to them in
    its current period. Needs an `ingest` or `budget:check` key. Money is a decimal
    string of dollars."""
    # Called before every AI request: one worker thread hop and one read transaction
    # for the key and the check together.
    answer, key = await run_in_threadpool(_checked, request, ctx, user_id)
    if touch_due(key, now_us=now_us(ctx.clock)):  # a write, once a minute: not in the read
        await run_in_threadpool(note_key_used, ctx, key)
    # Plain JSON types only (money is a string): encoded as is, not walked first.
    return Response(orjson.dumps(answer), media_type="application/json")


def _checked(request: Request, ctx: Ctx, user_id: str) -> tuple[dict[str, Any], ApiKey]:
    budgets = ctx.budgets
    with budgets.store.read() as reader:
        key = key_for(request, CHECK_SCOPES, partial(find_key_in, reader.conn))
        try:
            names.clean_user_id(user_id)
        except ValueError as exc:
            raise ApiError(400, "invalid_parameter", str(exc), field="user_id") from exc
        at_us = now_us(ctx.clock)
        uses = budgets.uses_of(user_id, now_us=at_us, reader=reader)
    return check_json(budgets, uses, at_us=at_us), key
