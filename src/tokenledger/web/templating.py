"""Jinja2 templates and static files with content-hashed URLs.

``static("app.css")`` renders ``/static/app.css?v=<hash of the file>``: browsers cache
static files for a year and still never run stale code after an upgrade.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from tokenledger.web.demo_banner import demo_data_check

WEB_DIR = Path(__file__).parent
STATIC_DIR = WEB_DIR / "static"
TEMPLATE_DIR = WEB_DIR / "templates"


@cache
def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def static_url(name: str) -> str:
    path = (STATIC_DIR / name).resolve()
    if not path.is_relative_to(STATIC_DIR.resolve()) or not path.is_file():
        raise FileNotFoundError(f"no static file {name!r}")
    return f"/static/{name}?v={_file_hash(path)}"


class CachedStaticFiles(StaticFiles):
    """Static files; versioned URLs (``?v=``) are cached for a year."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        query = scope.get("query_string", b"")
        if response.status_code == 200 and query.startswith(b"v="):
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        else:
            response.headers["Cache-Control"] = "no-cache"
        return response


def build_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
    templates.env.globals["static"] = static_url
    templates.env.autoescape = True
    return templates


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render ``name`` with the request's viewer and CSRF token in the context."""
    templates: Jinja2Templates = request.app.state.templates
    full_context: dict[str, Any] = {
        "viewer": getattr(request.state, "viewer", None),
        "csrf_token": getattr(request.state, "csrf_token", ""),
        "demo_data_present": demo_data_check(request),
        **(context or {}),
    }
    return templates.TemplateResponse(
        request, name, full_context, status_code=status_code, headers=headers
    )
