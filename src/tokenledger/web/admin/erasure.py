"""Admin > Audit > Erase a person: erase a person on request, confirmed by typing their
user id twice (``tokenledger people erase`` does the same; see ``store/erasure.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from tokenledger.clock import now_us
from tokenledger.erasure import erase_person
from tokenledger.store import erasure
from tokenledger.web.admin.common import FormText, admin_page, changed
from tokenledger.web.deps import Ctx, PageAdmin, client_address

router = APIRouter(prefix="/admin", include_in_schema=False)

NOTICES = {
    "erased": (
        "The person is erased: their usage stays in every total, under their pseudonym "
        "(written in the audit log)."
    ),
}


def _page(
    request: Request, ctx: Ctx, *, status: int = 200, done: str | None = None, **values: Any
) -> Response:
    return admin_page(
        request,
        ctx,
        "admin/erasure.html",
        "audit",  # reached from the Audit page, where erasures are recorded
        status=status,
        notice=NOTICES.get(done or ""),
        key_set=ctx.store.erasure_key is not None,
        form={"user_id": "", **values.pop("form", {})},
        **values,
    )


@router.get("/erasure")
def erasure_page(
    request: Request, ctx: Ctx, _admin: PageAdmin, done: str | None = None
) -> Response:
    return _page(request, ctx, done=done)


@router.post("/erasure")
def erase(
    request: Request,
    ctx: Ctx,
    admin: PageAdmin,
    user_id: FormText = "",
    confirm_user_id: FormText = "",
) -> Response:
    """Erase the person ``user_id`` once ``confirm_user_id`` repeats it exactly."""
    form = {"user_id": user_id[:255]}
    if not user_id:
        return _page(request, ctx, status=400, error="user_id: enter the person's user id.")
    if confirm_user_id != user_id:
        error = "confirm_user_id: type the same user id again to confirm the erasure."
        return _page(request, ctx, status=400, error=error, form=form)
    try:
        erase_person(
            ctx.store,
            user_id=user_id,
            actor=admin.email,
            now_us=now_us(ctx.clock),
            client=client_address(request),
        )
    except erasure.ErasureKeyMissing as exc:
        return _page(request, ctx, status=400, error=str(exc), form=form)
    except erasure.UnknownPerson as exc:
        return _page(request, ctx, status=404, error=f"user_id: {exc.args[0]}.", form=form)
    return changed("/admin/erasure", "erased")
