"""The gateway of one app: from an incoming request to a refusal or a forwarded call.

Before anything is forwarded: the key (401/403), the body (400; its size is limited
as ingest's), the person (400), an upstream for the model (404) and the budget check
(429). Requests refused here reach no upstream and are not recorded. The key and,
when the person is known from it or the headers, their budgets are read in one
transaction, in one trip to a worker thread.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx2
import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from tokenledger.auth.keys import ApiKey
from tokenledger.clock import Clock, now_us
from tokenledger.gateway import callers, forward
from tokenledger.gateway.budget import BudgetGate, Decision, SharedReadGate
from tokenledger.gateway.callers import Caller
from tokenledger.gateway.calls import Call
from tokenledger.gateway.endpoints import Endpoint
from tokenledger.gateway.errors import GatewayError, error_response
from tokenledger.gateway.exchange import Exchange
from tokenledger.gateway.observer import Observer, Unobserved
from tokenledger.gateway.recording import Recorder
from tokenledger.gateway.upstreams import Upstream, Upstreams
from tokenledger.store.database import Database, DatabaseUnavailable

EVENT_ID_PREFIX = "gateway:"


@dataclass
class Gateway:
    upstreams: Upstreams
    client: forward.UpstreamClient
    budget: BudgetGate
    recorder: Recorder
    db: Database
    clock: Clock
    observer: Observer = field(default_factory=Unobserved)
    # The gate, when it can read in the key's transaction (it uses the same database).
    _shared_gate: SharedReadGate | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        gate = self.budget
        if isinstance(gate, SharedReadGate) and gate.db is self.db:
            self._shared_gate = gate

    async def handle(self, request: Request, endpoint: Endpoint) -> ASGIApp:
        """The answer to a gateway request: a refusal, or the forwarded call."""
        try:
            if endpoint.name == "models":
                return await self._models(request)
            return await self._accept(request, endpoint)
        except GatewayError as refused:
            return self._refusal(endpoint, refused)
        except DatabaseUnavailable as exc:
            unavailable = GatewayError(
                503,
                "database_unavailable",
                f"the gateway cannot check keys right now ({exc}); retry later",
                headers={"Retry-After": "5"},
            )
            return self._refusal(endpoint, unavailable)

    def _refusal(self, endpoint: Endpoint, refused: GatewayError) -> Response:
        self.observer.gateway_answered(
            kind=endpoint.kind,
            endpoint=endpoint.name,
            upstream="",
            status=refused.status,
            error=refused.code,
        )
        return error_response(endpoint.kind, refused)

    async def _accept(self, request: Request, endpoint: Endpoint) -> Exchange:
        started_s, started_us = time.monotonic(), now_us(self.clock)
        headers = {name.lower(): value for name, value in request.headers.items()}
        # One trip to a worker thread: the key, and the budget when the person is known
        # before the body is read (a person key, or the X-TokenLedger-User header).
        key, caller = await run_in_threadpool(self._admit, headers, started_us)
        body = await request.body()
        document = callers.request_document(body)
        if caller is None:  # named in the body
            caller = callers.identify(key, headers, document, endpoint.kind)
            await run_in_threadpool(self._check_budget, caller.user_id, started_us)
        model = document.get("model") if isinstance(document.get("model"), str) else None
        upstream = self._upstream(endpoint, model)
        forwarded, drop_usage_chunk = _upstream_body(endpoint, document, body)
        call = Call(
            endpoint=endpoint,
            upstream=upstream,
            caller=caller,
            body=forwarded,
            headers=headers,
            query=request.url.query,
            stream=document.get("stream") is True,
            requested_model=model,
            event_id=EVENT_ID_PREFIX + uuid.uuid4().hex,
            started_us=started_us,
            started_s=started_s,
            drop_usage_chunk=drop_usage_chunk,
        )
        return Exchange(
            call, client=self.client.client(), record=self._record, observer=self.observer
        )

    def _admit(self, headers: dict[str, str], at_us: int) -> tuple[ApiKey, Caller | None]:
        """The caller's key and, when it is known without the body, the person (whose
        budget is then checked, in the key's transaction when the gate can)."""
        secret = callers.presented_secret(headers)
        decision: Decision | None = None
        with self.db.read() as conn:
            key = callers.key_in(conn, secret)
            caller = callers.named_in_headers(key, headers)
            if caller is not None and self._shared_gate is not None:
                decision = self._shared_gate.check_in(conn, caller.user_id, now_us=at_us)
        callers.touch(self.db, key, now_us=at_us)
        if caller is not None:
            if decision is None:
                decision = self.budget.check(caller.user_id, now_us=at_us)
            _allowed(caller.user_id, decision)
        return key, caller

    def _check_budget(self, user_id: str, at_us: int) -> None:
        _allowed(user_id, self.budget.check(user_id, now_us=at_us))

    async def _record(self, event: dict[str, Any]) -> None:
        await run_in_threadpool(self.recorder.store, event)

    def _upstream(self, endpoint: Endpoint, model: str | None) -> Upstream:
        upstream = self.upstreams.for_model(endpoint.kind, model)
        if upstream is not None:
            return upstream
        if not self.upstreams.of_kind(endpoint.kind):
            message = f"the gateway has no {endpoint.kind} upstream configured"
        elif model is None:
            message = "the request names no model"
        else:
            message = f"the model {model!r} is not available through this gateway"
        raise GatewayError(404, "model_not_found", message, param="model")

    async def _models(self, request: Request) -> Response:
        """The models of every OpenAI-compatible upstream that its allow-list lets through."""
        headers = {name.lower(): value for name, value in request.headers.items()}
        await run_in_threadpool(callers.authenticate, self.db, headers, now_us=now_us(self.clock))
        client = self.client.client()
        models: dict[Any, Any] = {}  # by id: a model two upstreams offer is listed once
        for upstream in self.upstreams.of_kind("openai"):
            listing = await _listing(client, upstream, headers)
            if isinstance(listing, Response):
                return listing
            for item in listing:
                if upstream.allows(item.get("id")):
                    models.setdefault(item.get("id"), item)
        body = orjson.dumps({"object": "list", "data": list(models.values())})
        return Response(body, media_type="application/json")


async def _listing(
    client: httpx2.AsyncClient, upstream: Upstream, headers: dict[str, str]
) -> list[dict[str, Any]] | Response:
    """``upstream``'s models, or its refusal passed on."""
    call_headers = {"authorization": f"Bearer {upstream.key}"} if upstream.key else {}
    try:
        response = await client.get(f"{upstream.base_url}/models", headers=call_headers)
    except httpx2.HTTPError as exc:
        error = GatewayError(
            502, "upstream_unreachable", f"the upstream cannot be used ({type(exc).__name__})"
        )
        return error_response("openai", error)
    if not 200 <= response.status_code < 300:
        return Response(
            response.content,
            status_code=response.status_code,
            media_type=response.headers.get("content-type"),
        )
    try:
        data = orjson.loads(response.content).get("data")
    except (orjson.JSONDecodeError, AttributeError):
        data = None
    if not isinstance(data, list):
        error = GatewayError(502, "upstream_failed", "the upstream's model list is not one")
        return error_response("openai", error)
    return [item for item in data if isinstance(item, dict)]


def _upstream_body(endpoint: Endpoint, document: dict[str, Any], body: bytes) -> tuple[bytes, bool]:
    """The body as forwarded, and whether the stream's usage chunk is the ledger's
    alone: Chat Completions and Completions streams report usage only when asked
    (``stream_options.include_usage``), so the gateway asks when the client did not."""
    if not (endpoint.asks_stream_usage and document.get("stream") is True):
        return body, False
    options = document.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        return body, False
    options = (
        {**options, "include_usage": True} if isinstance(options, dict) else {"include_usage": True}
    )
    return orjson.dumps({**document, "stream_options": options}), True


def _allowed(user_id: str, decision: Decision) -> None:
    if not decision.allowed:
        raise _over_budget(user_id, decision)


def _over_budget(user_id: str, decision: Decision) -> GatewayError:
    headers = {"x-should-retry": "false"}  # the clients' own retries would all be refused
    details: dict[str, Any] = {}
    message = f"{user_id} is over a budget"
    if decision.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, decision.retry_after_s))
    if decision.budget is not None:
        budget = decision.budget.to_json()
        details["budget"] = budget
        message += (
            f": {budget['used']} of {budget['limit']} {budget['metric']} used; "
            f"it resets at {budget['period_end']}"
        )
    return GatewayError(429, "budget_exceeded", message, headers=headers, details=details)
