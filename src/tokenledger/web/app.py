"""The application factory: everything is built here, nothing at import time."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from tokenledger import __version__
from tokenledger.clock import Clock, system_clock
from tokenledger.settings import Settings
from tokenledger.store.database import Database, open_database
from tokenledger.web import api, errors, exports
from tokenledger.web.context import AppContext


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
    errors.install(app)
    app.include_router(api.router)
    app.include_router(exports.router)
    _install_openapi(app)
    return app


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
