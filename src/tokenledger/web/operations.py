"""What operators and their tools call: readiness and Prometheus metrics.

(``/healthz``, "the process is up", is in ``api``.)
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tokenledger.auth.keys import hash_key
from tokenledger.observability import health, metrics
from tokenledger.store.database import DatabaseUnavailable
from tokenledger.web.deps import Ctx, require_key
from tokenledger.web.errors import JSON

router = APIRouter(include_in_schema=False)
_metrics_key = require_key("metrics")


@router.get("/readyz")
async def readyz(ctx: Ctx) -> Response:
    """200 when the database answers, is migrated and can be written; else 503."""
    reason = await run_in_threadpool(health.not_ready_because, ctx.db)
    if reason is None:
        return JSON({"status": "ready"})
    return JSON(
        {"status": "not ready", "reason": reason}, status_code=503, headers={"Retry-After": "5"}
    )


def metrics_reader(request: Request, ctx: Ctx) -> None:
    """A ``metrics`` key. One seen valid before keeps working while the database is
    unavailable: an outage is what the metrics must show, not hide."""
    presented = hash_key(request.headers.get("authorization", ""))
    try:
        _metrics_key(request, ctx)
    except DatabaseUnavailable:
        if presented not in ctx.metrics_keys_seen:
            raise
    else:
        ctx.metrics_keys_seen.add(presented)


@router.get("/metrics", dependencies=[Depends(metrics_reader)])
def get_metrics(ctx: Ctx) -> Response:
    """Every metric in Prometheus' text format (all worker processes added up)."""
    return Response(ctx.metrics.exposition(ctx.db), media_type=metrics.CONTENT_TYPE)
