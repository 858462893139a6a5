"""The gateway's routes: ``/gateway/openai/v1/...`` and ``/gateway/anthropic/v1/messages``
(docs/gateway.md). Each hands the request to the app's :class:`Gateway`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tokenledger.gateway import errors
from tokenledger.gateway.endpoints import ENDPOINTS, Endpoint
from tokenledger.web.context import AppContext
from tokenledger.web.errors import error_response

PREFIX = "/gateway/"

router = APIRouter(include_in_schema=False)


class _Answer(Response):
    """Any ASGI answer (a streamed call) where FastAPI expects a Response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _route(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def route(request: Request) -> Response:
        ctx: AppContext = request.app.state.ctx
        answer = await ctx.gateway.handle(request, endpoint)
        return answer if isinstance(answer, Response) else _Answer(answer)

    route.__name__ = f"gateway_{endpoint.kind}_{endpoint.name.replace('.', '_')}"
    return route


for _endpoint in ENDPOINTS:
    router.add_api_route(
        _endpoint.route, _route(_endpoint), methods=[_endpoint.method], response_model=None
    )


def body_refusal(
    path: str, status: int, code: str, message: str, headers: dict[str, str]
) -> Response:
    """A body refused for its size or slowness: in the provider's format on gateway
    routes, in ours elsewhere."""
    if path.startswith(PREFIX):
        return errors.refusal(path, status, code, message, headers)
    return error_response(status, code, message, headers=headers)
