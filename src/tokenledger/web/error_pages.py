"""Error pages for the console (the API answers errors in JSON, see ``errors``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse

from tokenledger.web.templating import render


def error_page(
    request: Request,
    *,
    status: int,
    title: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"status": status, "title": title, "message": message},
        status_code=status,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )
