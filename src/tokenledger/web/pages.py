"""Console pages (server-rendered; htmx swaps fragments of them)."""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse

from tokenledger.web import user_usage
from tokenledger.web.deps import Ctx, PageViewer, ReportsAvailable
from tokenledger.web.templating import render

router = APIRouter(include_in_schema=False)


def wants_fragment(request: Request) -> bool:
    """An htmx swap (not a history restore, which needs the whole page)."""
    return bool(request.headers.get("hx-request")) and not request.headers.get(
        "hx-history-restore-request"
    )


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse(user_usage.PATH, status_code=303)


@router.get("/api/docs")
def api_docs(request: Request) -> HTMLResponse:
    """The API reference: Swagger UI over /api/openapi.json (public, like the schema)."""
    return render(request, "api_docs.html", {"openapi_url": request.app.openapi_url})


@router.get(user_usage.PATH, dependencies=[ReportsAvailable])
async def user_usage_page(request: Request, ctx: Ctx, _viewer: PageViewer) -> HTMLResponse:
    """Reporting > User Usage: the full page, or the results fragment for htmx."""
    status, error = 200, None
    try:
        view = user_usage.parse_view(ctx, request)
    except user_usage.InvalidView as exc:
        view, error = user_usage.default_view(ctx), str(exc)
        status = 200 if wants_fragment(request) else 400
    view, notice = user_usage.clamp_to_today(view)
    fragment = wants_fragment(request)
    page = await run_in_threadpool(
        functools.partial(user_usage.load_page, with_options=not fragment), ctx, view
    )
    context = {
        **user_usage.template_context(page, error, notice=notice, now=ctx.clock()),
        "oob": fragment,
        "adjusted": notice is not None or page.view != view,
    }
    response = render(
        request,
        "_usage_results.html" if fragment else "user_usage.html",
        context,
        status_code=status,
    )
    if fragment:  # the URL of what is shown (a page past the end shows the last one)
        response.headers["HX-Push-Url"] = page.view.url()
    response.headers["Vary"] = "HX-Request, Cookie"
    response.headers["Cache-Control"] = "no-store"
    return response
