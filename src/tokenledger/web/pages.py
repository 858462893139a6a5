"""Console pages (server-rendered; htmx swaps fragments of them)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import RedirectResponse

router = APIRouter(include_in_schema=False)


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/reporting/user-usage", status_code=303)
