"""Budgets: the list (how many people are over each threshold now), create / edit /
delete with a preview, the alert channels and the delivery log with resend.

Any signed-in account sees the page; only admins change anything (every change is
audited by :mod:`tokenledger.budgets.check`).
"""

from __future__ import annotations

import secrets
from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from tokenledger.auth import audit
from tokenledger.budgets.check import Budgets
from tokenledger.budgets.model import (
    ACTIONS,
    EVERYONE,
    PERIODS,
    PERSON,
    Budget,
    InvalidBudget,
    available_metrics,
    limit_json,
)
from tokenledger.clock import now_us
from tokenledger.store import budgets as budget_store
from tokenledger.web.admin.common import FormText, admin_page, changed
from tokenledger.web.context import AppContext
from tokenledger.web.deps import Ctx, PageAdmin, PageViewer, RowId, client_address
from tokenledger.web.error_pages import error_page
from tokenledger.web.templating import render

router = APIRouter(prefix="/admin", include_in_schema=False)
PATH = "/admin/budgets"
CHANNEL_KINDS = ("webhook", "slack", "email")
PREVIEW_PERCENT = 80
NOTICES = {
    "created": "The budget is created. It applies from this very request.",
    "saved": "The budget is saved. It applies from this very request.",
    "deleted": "The budget is deleted. Alerts already recorded are still delivered.",
    "channel": "The alert channel is added.",
    "resent": "The alert is queued to be sent again.",
}
FIELDS = (
    "name",
    "scope",
    "scope_value",
    "metric",
    "limit",
    "period",
    "timezone",
    "thresholds",
    "action",
)


def _form(budgets: Budgets, budget: Budget | None, default_tz: str) -> dict[str, str]:
    if budget is None:
        return {
            "name": "",
            "scope": EVERYONE,
            "scope_value": "",
            "metric": "tokens",
            "limit": "",
            "period": "month",
            "timezone": default_tz,
            "thresholds": "50,80,100",
            "action": "alert",
        }
    return {
        "name": budget.name,
        "scope": budget.scope,
        "scope_value": budget.scope_value or "",
        "metric": budget.metric,
        "limit": str(limit_json(budgets.metrics, budget.metric, budget.limit)),
        "period": budget.period,
        "timezone": budget.timezone,
        "thresholds": ",".join(str(t) for t in budget.thresholds),
        "action": budget.action,
    }


def over_thresholds(ctx: AppContext) -> dict[int, list[tuple[int, int]]]:
    """Per budget: (threshold, people at or over it now) for each of its thresholds."""
    at = now_us(ctx.clock)
    found = ctx.budgets.uses_of_people(period_of=lambda b: b.period_at(at))
    counts: Counter[tuple[int, int]] = Counter()
    for person in found.values():
        for use in person.uses:
            for threshold in use.budget.thresholds:
                if use.reached(threshold):
                    counts[(use.budget.id, threshold)] += 1
    return {
        budget.id: [(t, counts[(budget.id, t)]) for t in budget.thresholds]
        for budget in ctx.budgets.all()
    }


def _page(
    request: Request,
    ctx: Ctx,
    *,
    status: int = 200,
    done: str | None = None,
    edit: Budget | None = None,
    form: dict[str, str] | None = None,
    **values: Any,
) -> Response:
    budgets = ctx.budgets
    with ctx.db.read() as conn:
        channels = budget_store.load_channels(conn)
        log = budget_store.delivery_log(conn, limit=100)
    return admin_page(
        request,
        ctx,
        "admin/budgets.html",
        "budgets",
        status=status,
        notice=NOTICES.get(done or ""),
        budgets=budgets.all(),
        over=over_thresholds(ctx),
        limit_text=lambda b: limit_json(budgets.metrics, b.metric, b.limit),
        edit=edit,
        form=form or _form(budgets, edit, ctx.settings.timezone),
        scopes=(EVERYONE, PERSON, *budgets.columns),
        metrics=available_metrics(budgets.metrics),
        periods=PERIODS,
        actions=ACTIONS,
        channels=channels,
        active_channels={c.id for c in budget_store.active_channels(channels)},
        channel_kinds=CHANNEL_KINDS,
        deliveries=log,
        **{"preview_percent": PREVIEW_PERCENT, **values},
    )


@router.get("/budgets")
def budgets_page(
    request: Request, ctx: Ctx, _viewer: PageViewer, done: str | None = None, edit: int = 0
) -> Response:
    budget = next((b for b in ctx.budgets.all() if b.id == edit), None) if edit else None
    return _page(request, ctx, done=done, edit=budget)


def _given(values: dict[str, str]) -> dict[str, Any]:
    return {**values, "scope_value": values["scope_value"] or None}


def _sent_form(
    name: FormText = "",
    scope: FormText = EVERYONE,
    scope_value: FormText = "",
    metric: FormText = "",
    limit: FormText = "",
    period: FormText = "",
    timezone: FormText = "",
    thresholds: FormText = "",
    action: FormText = "",
) -> dict[str, str]:
    """The budget form's fields as sent, by name (FIELDS order)."""
    sent = (name, scope, scope_value, metric, limit, period, timezone, thresholds, action)
    return dict(zip(FIELDS, sent, strict=True))


BudgetForm = Annotated[dict[str, str], Depends(_sent_form)]


@router.post("/budgets/preview")
def budget_preview(
    request: Request,
    ctx: Ctx,
    _admin: PageAdmin,
    values: BudgetForm,
) -> Response:
    """How many people would be over 80 % of this budget this period (a fragment for
    htmx; the whole page without script)."""
    context: dict[str, Any] = {"preview_percent": PREVIEW_PERCENT}
    try:
        given = _given({**values, "name": values["name"] or "preview"})
        context["preview"] = ctx.budgets.preview(
            now_us=now_us(ctx.clock), percent=PREVIEW_PERCENT, **given
        )
    except InvalidBudget as exc:
        context["preview_error"] = str(exc)
    if request.headers.get("hx-request"):
        return render(request, "admin/_budget_preview.html", context)
    return _page(request, ctx, form=values, **context)


def _save(
    request: Request, ctx: Ctx, admin: Any, budget_id: int | None, values: dict[str, str]
) -> Response:
    who = {"actor": admin.email, "client": client_address(request), "now_us": now_us(ctx.clock)}
    try:
        if budget_id is None:
            ctx.budgets.create(**who, **_given(values))
        else:
            ctx.budgets.update(budget_id, **who, **_given(values))
    except InvalidBudget as exc:
        edit = None if budget_id is None else ctx.budgets.find(budget_id)
        return _page(request, ctx, status=400, error=str(exc), form=values, edit=edit)
    return changed(PATH, "created" if budget_id is None else "saved")


@router.post("/budgets")
def budget_create(
    request: Request,
    ctx: Ctx,
    admin: PageAdmin,
    values: BudgetForm,
) -> Response:
    return _save(request, ctx, admin, None, values)


@router.post("/budgets/channels")
def channel_add(
    request: Request, ctx: Ctx, admin: PageAdmin, kind: FormText = "", target: FormText = ""
) -> Response:
    """Add an alert channel; a webhook's signing secret is shown once."""
    target = target.strip()
    error = None
    if kind not in CHANNEL_KINDS:
        error = f"kind: must be one of {', '.join(CHANNEL_KINDS)}"
    elif kind == "email" and ("@" not in target or len(target) > 320):
        error = "target: must be an e-mail address"
    elif kind != "email" and not target.startswith(("https://", "http://")):
        error = "target: must be an http(s) URL"
    if error is not None:
        return _page(request, ctx, status=400, error=error)
    secret = secrets.token_urlsafe(32) if kind == "webhook" else ""
    at = now_us(ctx.clock)
    with ctx.db.write() as conn:
        channel_id = budget_store.insert_channel(
            conn, kind=kind, target=target[:2048], secret=secret, now_us=at
        )
        audit.record_in(
            conn,
            actor=admin.email,
            action=audit.ALERT_CHANNEL_CHANGED,
            details={"channel_id": channel_id, "kind": kind, "target": target, "enabled": True},
            now_us=at,
            client=client_address(request),
        )
    if secret:
        headers = {"Cache-Control": "no-store"}
        return _page(request, ctx, done="channel", secret=secret, headers=headers)
    return changed(PATH, "channel")


def _no_budget(request: Request) -> Response:
    return error_page(request, status=404, title="No such budget", message="It does not exist.")


@router.post("/budgets/{budget_id}")
def budget_update(
    request: Request,
    ctx: Ctx,
    admin: PageAdmin,
    budget_id: RowId,
    values: BudgetForm,
) -> Response:
    try:
        ctx.budgets.find(budget_id)
    except LookupError:
        return _no_budget(request)
    return _save(request, ctx, admin, budget_id, values)


@router.post("/budgets/{budget_id}/delete")
def budget_delete(request: Request, ctx: Ctx, admin: PageAdmin, budget_id: RowId) -> Response:
    try:
        ctx.budgets.delete(
            budget_id, actor=admin.email, client=client_address(request), now_us=now_us(ctx.clock)
        )
    except LookupError:
        return _no_budget(request)
    return changed(PATH, "deleted")


@router.post("/budgets/deliveries/{delivery_id}/resend")
def delivery_resend(request: Request, ctx: Ctx, admin: PageAdmin, delivery_id: RowId) -> Response:
    try:
        ctx.alerts.resend(delivery_id, actor=admin.email, client=client_address(request))
    except LookupError:
        return error_page(
            request, status=404, title="No such alert", message="This delivery does not exist."
        )
    return changed(PATH, "resent")
