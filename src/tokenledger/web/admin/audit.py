"""Admin > Audit log: newest first, filtered by action, paged by entry id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from tokenledger.auth import audit
from tokenledger.web.admin.common import admin_page
from tokenledger.web.deps import MAX_ROW_ID, Ctx, PageAdmin

router = APIRouter(prefix="/admin", include_in_schema=False)

PAGE_SIZE = 50


@router.get("/audit")
def audit_page(
    request: Request,
    ctx: Ctx,
    _admin: PageAdmin,
    action: Annotated[str, Query(max_length=64)] = "",
    before: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_ROW_ID)] = None,
) -> Response:
    action = action if action in audit.ACTIONS else ""
    found = audit.entries(ctx.db, action=action, before_id=before, after_id=after, limit=PAGE_SIZE)
    newer = older = None
    if found:
        if audit.has_entries(ctx.db, action=action, after_id=found[0].id):
            newer = found[0].id
        if audit.has_entries(ctx.db, action=action, before_id=found[-1].id):
            older = found[-1].id
    return admin_page(
        request,
        ctx,
        "admin/audit.html",
        "audit",
        entries=found,
        actions=audit.ACTIONS,
        action=action,
        newer=newer,
        older=older,
    )
