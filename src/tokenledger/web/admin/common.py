"""What the admin pages share: their layout context, redirects after a change."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Form, Request
from starlette.responses import RedirectResponse, Response

from tokenledger.localdays import zone
from tokenledger.web.context import AppContext
from tokenledger.web.templating import render

FormText = Annotated[str, Form()]


def time_formatter(ctx: AppContext) -> Callable[[int | None], str]:
    """Instants as the admin pages show them, in the server's report zone."""
    tz = zone(ctx.settings.timezone)

    def when(us: int | None) -> str:
        if us is None:
            return ""
        moment = datetime.fromtimestamp(us / 1_000_000, UTC).astimezone(tz)
        return moment.strftime("%Y-%m-%d %H:%M ") + (moment.tzname() or tz.key)

    return when


def admin_page(
    request: Request,
    ctx: AppContext,
    name: str,
    section: str,
    *,
    status: int = 200,
    notice: str | None = None,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> Response:
    """Render admin template ``name`` under the ``section`` tab of the navigation."""
    context = {"nav_section": section, "when": time_formatter(ctx), "notice": notice, **values}
    return render(request, name, context, status_code=status, headers=headers)


def changed(path: str, done: str) -> RedirectResponse:
    """After a change, back to ``path``, which shows the ``done`` notice."""
    return RedirectResponse(f"{path}?done={done}", status_code=303)
