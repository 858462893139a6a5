"""Sending one alert: a signed webhook, Slack-compatible text, or an e-mail.

A webhook gets the alert as JSON with ``X-TokenLedger-Timestamp`` (Unix seconds) and
``X-TokenLedger-Signature: v1=<hex>``, the HMAC-SHA256 with the webhook's secret of
``<timestamp>.<body>``; ``X-TokenLedger-Alert`` is the crossing's id, the same for
every attempt and resend (receivers can drop a repeat with it). Any 2xx is delivered.
"""

from __future__ import annotations

import hashlib
import hmac
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

import httpx2
import orjson

from tokenledger.budgets.model import limit_json
from tokenledger.localdays import iso, zone
from tokenledger.metrics import MetricSet
from tokenledger.settings import Settings
from tokenledger.store.budgets import SETTINGS, Alert


@dataclass(frozen=True)
class Result:
    sent: bool
    code: int | None = None
    error: str | None = None


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=`` and the hex HMAC-SHA256 of ``<timestamp>.<body>`` with ``secret``."""
    message = timestamp.encode() + b"." + body
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def payload(alert: Alert, *, metrics: MetricSet, public_url: str) -> dict[str, Any]:
    budget = alert.budget
    metric = budget.metric if budget is not None else "tokens"
    person = alert.person
    tz = budget.tz if budget is not None else zone("UTC")
    return {
        "alert_id": alert.crossing_id,
        "budget": {
            "id": alert.budget_id,
            "name": budget.name if budget is not None else None,
            "scope": budget.scope_text() if budget is not None else None,
            "period": budget.period if budget is not None else None,
            "timezone": budget.timezone if budget is not None else None,
            "action": budget.action if budget is not None else None,
        },
        "person": {"user_id": person.user_id, "name": person.name, "email": person.email},
        "metric": metric,
        "limit": limit_json(metrics, metric, alert.limit),
        "used": limit_json(metrics, metric, alert.used),
        "threshold": alert.threshold,
        "period": {"start": iso(alert.period_start_us, tz), "end": iso(alert.period_end_us, tz)},
        "url": person_link(public_url, person.user_id),
    }


def person_link(public_url: str, user_id: str) -> str:
    """The User Usage page searched for the person (their id is part of the search)."""
    return f"{public_url.rstrip('/')}/reporting/user-usage?q={quote(user_id, safe='')}"


def summary(data: dict[str, Any]) -> str:
    """The alert as one line of text (Slack, the e-mail's subject)."""
    person = data["person"]
    who = person["name"] or person["user_id"]
    return (
        f"{who} reached {data['threshold']}% of budget "
        f"{data['budget']['name'] or data['budget']['id']}: {data['used']} of "
        f"{data['limit']} {data['metric']} used ({data['period']['start']} to "
        f"{data['period']['end']})"
    )


def send(
    alert: Alert, *, client: httpx2.Client, settings: Settings, metrics: MetricSet, now_s: int
) -> Result:
    """One attempt to deliver ``alert`` on its channel (webhooks through ``client``,
    kept open between alerts: building a client costs more than a local POST)."""
    data = payload(alert, metrics=metrics, public_url=settings.public_url)
    kind = alert.channel.kind
    try:
        if kind == "email":
            return _email(alert.channel.target, data, settings)
        if kind == "slack":
            body = orjson.dumps({"text": f"{summary(data)} <{data['url']}>"})
            return _post(client, alert.channel.target, body, {}, settings.alert_send_timeout_s)
        body = orjson.dumps(data)
        timestamp = str(now_s)
        secret = alert.channel.secret
        if alert.channel.source == SETTINGS:  # kept in the settings, not the database
            secret = settings.alert_webhook_secret.get_secret_value()
        headers = {
            "X-TokenLedger-Timestamp": timestamp,
            "X-TokenLedger-Signature": signature(secret, timestamp, body),
            "X-TokenLedger-Alert": str(alert.crossing_id),
        }
        return _post(client, alert.channel.target, body, headers, settings.alert_send_timeout_s)
    except (httpx2.HTTPError, OSError, smtplib.SMTPException) as exc:
        return Result(False, None, f"{type(exc).__name__}: {exc}"[:500])


def _post(
    client: httpx2.Client, url: str, body: bytes, headers: dict[str, str], timeout_s: float
) -> Result:
    answer = client.post(
        url,
        content=body,
        headers={"Content-Type": "application/json", "User-Agent": "TokenLedger", **headers},
        timeout=timeout_s,
    )
    if 200 <= answer.status_code < 300:
        return Result(True, answer.status_code)
    return Result(False, answer.status_code, f"HTTP {answer.status_code}")


def _email(address: str, data: dict[str, Any], settings: Settings) -> Result:
    if not settings.smtp_host:
        return Result(False, None, "no SMTP server configured (TOKENLEDGER_SMTP_HOST)")
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = address
    message["Subject"] = summary(data)[:200]
    message.set_content(f"{summary(data)}\n\n{data['url']}\n")
    with smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=settings.alert_send_timeout_s
    ) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
        smtp.send_message(message)
    return Result(True, 250)
