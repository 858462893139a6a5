"""The application factory: everything is built here, nothing at import time."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response

from tokenledger import __version__, retention
from tokenledger.auth import passwords
from tokenledger.clock import Clock, system_clock
from tokenledger.gateway.budget import BudgetGate
from tokenledger.observability.metrics import count_database_errors
from tokenledger.observability.middleware import RequestObservation
from tokenledger.settings import Settings
from tokenledger.store.database import Database, open_database
from tokenledger.web import (
    admin,
    api,
    auth_pages,
    budgets_api,
    capture,
    errors,
    exports,
    gateway,
    model_usage_api,
    operations,
    pages,
    people_pages,
    prices_api,
    sso_pages,
)
from tokenledger.web.body_limits import BodyLimits, body_size_limit
from tokenledger.web.context import AppContext
from tokenledger.web.deps import AdminRequired, SignInRequired
from tokenledger.web.error_pages import error_page
from tokenledger.web.gateway import body_refusal
from tokenledger.web.security import SecurityHeadersMiddleware
from tokenledger.web.session_middleware import SessionMiddleware
from tokenledger.web.templating import STATIC_DIR, CachedStaticFiles, build_templates


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    clock: Clock = system_clock,
    budget_gate: BudgetGate | None = None,
) -> FastAPI:
    """Build the TokenLedger web app. The database must already be migrated.
    ``budget_gate`` is what the gateway asks before forwarding (default: the budgets)."""
    settings = settings or Settings()
    passwords.use_hash_threads(settings.max_password_hashes)
    ctx = AppContext(
        settings=settings,
        db=db or open_database(settings),
        clock=clock,
        budget_gate=budget_gate,
    )
    count_database_errors(ctx.db, ctx.metrics)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        pruning = retention.start(ctx.store, settings=settings, clock=clock)
        # The price catalogue loads in the background once the worker answers.
        threading.Thread(target=ctx.store.pricer.catalogue.warm, daemon=True).start()
        ctx.alerts.start()
        yield
        if pruning is not None:
            pruning.cancel()
        await ctx.gateway.client.aclose()
        ctx.writes.close()  # commit what was handed over before the process ends
        ctx.alerts.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="TokenLedger",
        version=__version__,
        summary="Exact per-user AI usage: ingest events, read reports, export CSV.",
        docs_url=None,  # served by pages.api_docs, without CDN or inline script
        redoc_url=None,
        openapi_url="/api/openapi.json",
        default_response_class=errors.JSON,
    )
    app.state.ctx = ctx
    app.state.templates = build_templates()
    errors.install(app)
    app.add_exception_handler(SignInRequired, _to_sign_in)
    app.add_exception_handler(AdminRequired, _admins_only)
    app.add_middleware(SessionMiddleware)  # inside the security headers: its pages get them
    app.add_middleware(  # outside the session layer: its CSRF check reads form bodies
        BodyLimits,
        timeout_s=settings.body_timeout_s,
        max_bytes=body_size_limit(settings.max_body_bytes),
        refusal=body_refusal,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestObservation)  # outermost: sees every answer, times all
    app.include_router(api.router)
    app.include_router(budgets_api.router)
    app.include_router(capture.router)
    app.include_router(gateway.router)
    app.include_router(exports.router)
    app.include_router(prices_api.router)
    app.include_router(model_usage_api.router)
    app.include_router(pages.router)
    app.include_router(people_pages.router)
    app.include_router(auth_pages.router)
    app.include_router(sso_pages.router)
    app.include_router(admin.build_router())
    app.include_router(operations.router)
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


async def _admins_only(request: Request, _exc: Exception) -> Response:
    return error_page(
        request,
        status=403,
        title="Admins only",
        message="This page is for admins. Your account can read reports and export them.",
    )


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
