"""``GET /api/v1/reports/model-usage``: usage and cost per model for a range."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from tokenledger.model_usage import ModelUsage, model_usage
from tokenledger.report_params import REPORT
from tokenledger.web import params
from tokenledger.web.api import range_fields, usage_json
from tokenledger.web.deps import Ctx, ReportReader, ReportsAvailable
from tokenledger.web.errors import error_responses
from tokenledger.web.params import PeopleArgs
from tokenledger.web.schemas import ModelUsageOut

router = APIRouter()

ModelSort = Literal["-cost_usd", "-requests", "-total_tokens", "model"]


def model_row_json(row: ModelUsage, tz: Any) -> dict[str, Any]:
    return {
        "model": row.model,
        "provider": row.provider,
        **usage_json(row.usage, tz),
        "cost_share": row.share_text,
    }


@router.get(
    "/api/v1/reports/model-usage",
    summary="Usage and cost per model",
    dependencies=[ReportsAvailable],
    response_model=None,
    responses={200: {"model": ModelUsageOut}, **error_responses(400, 401, 403, 503)},
)
def get_model_usage(
    ctx: Ctx,
    _reader: ReportReader,
    asked: PeopleArgs,
    sort: ModelSort = "-cost_usd",
) -> dict[str, Any]:
    """Requests, errors, tokens, cost, share of cost and unpriced requests per model
    (and provider) of the people matching `q` (and `team`, `department`), between two
    local dates."""
    report_params = params.parse(ctx, asked, span=REPORT)
    local_range = report_params.local_range
    report = model_usage(ctx.store, local_range=local_range, users=report_params.users, sort=sort)
    return {
        **range_fields(ctx, local_range),
        "q": asked.q or "",
        "sort": sort,
        "totals": report.totals.json_values(),
        "models": [model_row_json(row, local_range.tz) for row in report.rows],
    }
