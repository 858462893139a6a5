"""The application factory: everything is built here, nothing at import time."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response

from tokenledger import __version__
from tokenledger.clock import Clock, system_clock
from tokenledger.settings import Settings
from tokenledger.store.database import Database, open_database
from tokenledger.web import api, errors, exports, pages
from tokenledger.web.context import AppContext
from tokenledger.web.deps import SignInRequired
from tokenledger.web.security import SecurityHeadersMiddleware
from tokenledger.web.templating import STATIC_DIR, CachedStaticFiles, build_templates


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    clock: Clock = system_clock,
) -> FastAPI:
    """Build the TokenLedger web app. The database must already be migrated."""
    settings = settings or Settings()
    app = FastAPI(
        title="TokenLedger",
        version=__version__,
        summary="Exact per-user AI usage: ingest events, read reports, export CSV.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        default_response_class=errors.JSON,
    )
    app.state.ctx = AppContext(settings=settings, db=db or open_database(settings), clock=clock)
    app.state.templates = build_templates()
    errors.install(app)
    app.add_exception_handler(SignInRequired, _to_sign_in)
    app.add_middleware(SecurityHeadersMiddleware)
    app.include_router(api.router)
    app.include_router(exports.router)
    app.include_router(pages.router)
    app.mount("/static", CachedStaticFiles(directory=STATIC_DIR), name="static")
    _install_openapi(app)
    return app


async def _to_sign_in(request: Request, _exc: Exception) -> Response:
    """Pages that need an account send the browser to sign in, then back here."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"/sign-in?{urlencode({'next': target})}"
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def _install_openapi(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = api.install_openapi_schemas(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def app_from_environment() -> FastAPI:
    """Entry point for ``uvicorn --factory`` (settings from TOKENLEDGER_*)."""
    return create_app(Settings())
