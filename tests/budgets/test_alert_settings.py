"""Alert channels set by the settings (TOKENLEDGER_ALERT_*): a signed webhook, Slack
text and e-mail over STARTTLS with a login, against real receivers on 127.0.0.1; and
the rule when the page and the settings both set a kind (the settings win). Both
backends."""

from __future__ import annotations

import datetime as dt
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from tests.budgets.conftest import create, spend
from tests.budgets.test_alerts import add_channel, deliveries, verify
from tests.budgets.test_budget_model import us
from tests.support.clock import FrozenClock
from tests.support.postgres import free_port
from tests.support.webhook_receiver import WebhookReceiver
from tests.web.signed_in import signed_in_client
from tokenledger.auth import audit
from tokenledger.budgets.check import Budgets
from tokenledger.budgets.service import AlertService
from tokenledger.settings import Settings
from tokenledger.store import budgets as budget_store
from tokenledger.store.database import Database
from tokenledger.web.app import create_app

SETTINGS_SECRET = "settings-secret-0123456789"
NOW_S = us("2026-11-25T12:00:00+00:00") // 1_000_000


def channels(db: Database) -> list[budget_store.Channel]:
    with db.read() as conn:
        return budget_store.load_channels(conn)


@pytest.fixture
def hooks() -> Iterator[tuple[WebhookReceiver, WebhookReceiver, WebhookReceiver]]:
    """Three receivers: the settings' webhook, the page's webhook, a Slack webhook."""
    with WebhookReceiver() as one, WebhookReceiver() as two, WebhookReceiver() as three:
        yield one, two, three


def test_a_kind_set_in_the_settings_replaces_the_page_channels_of_that_kind(
    db: Database,
    budgets: Budgets,
    settings: Settings,
    clock: FrozenClock,
    hooks: tuple[WebhookReceiver, WebhookReceiver, WebhookReceiver],
) -> None:
    from_settings, from_page, slack = hooks
    add_channel(db, "webhook", from_page.url, "page-secret")
    add_channel(db, "slack", slack.url)
    tuned = settings.model_copy(
        update={
            "alert_webhook_url": from_settings.url,
            "alert_webhook_secret": SecretStr(SETTINGS_SECRET),
        }
    )
    service = AlertService(budgets, settings=tuned, clock=clock)
    try:
        assert service.sync_channels() == 1
        assert AlertService(budgets, settings=tuned, clock=clock).sync_channels() == 0  # once
        create(budgets, name="daily", limit=100, period="day", thresholds="100")
        spend(db, "emp-1", "2026-11-25T10:00:00+00:00", 100)
        assert service.sweep() == 1
        service.deliver_due()
    finally:
        service.stop()
    # The settings' webhook, signed with the settings' secret; the page's webhook
    # gets nothing; the page's Slack channel (a kind the settings leave alone) does.
    (alert,) = from_settings.accepted
    assert verify(SETTINGS_SECRET, alert.headers, alert.body, NOW_S)
    assert orjson.loads(alert.body)["person"]["user_id"] == "emp-1"
    assert from_page.received == []
    assert len(slack.accepted) == 1
    (made,) = [c for c in channels(db) if c.source == "settings"]
    assert (made.kind, made.target, made.secret) == ("webhook", from_settings.url, "")
    changes = [e for e in audit.entries(db, limit=10) if e.action == audit.ALERT_CHANNEL_CHANGED]
    assert [(e.actor, e.details["source"]) for e in changes] == [("settings", "settings")]

    # The setting removed: its channel is turned off and the page's webhook is used again.
    service = AlertService(budgets, settings=settings, clock=clock)
    try:
        assert service.sync_channels() == 1
        spend(db, "emp-2", "2026-11-25T10:00:00+00:00", 100)
        assert service.sweep() == 1
        service.deliver_due()
    finally:
        service.stop()
    assert len(from_settings.received) == 1
    (alert,) = from_page.accepted
    assert verify("page-secret", alert.headers, alert.body, NOW_S)
    assert len(slack.accepted) == 2
    assert {row.status for row in deliveries(db)} == {"sent"}


def test_the_budgets_page_says_which_channels_the_settings_replace(
    db: Database, settings: Settings, clock: FrozenClock
) -> None:
    add_channel(db, "webhook", "https://page.example.com/hook", "page-secret")
    add_channel(db, "email", "page@example.com")
    tuned = settings.model_copy(
        update={
            "alert_webhook_url": "https://settings.example.com/hook",
            "alert_webhook_secret": SecretStr(SETTINGS_SECRET),
        }
    )
    app = create_app(tuned, db=db, clock=clock)
    app.state.ctx.alerts.sync_channels()
    with signed_in_client(app, role="admin") as client:
        page = client.get("/admin/budgets").text
    items = {
        line.split('data-channel="')[1].split('"')[0]: line
        for line in page.split("<li ")
        if line.startswith("data-channel")
    }
    by_target = {c.target: str(c.id) for c in channels(db)}
    assert (
        "not used: the settings set this kind" in items[by_target["https://page.example.com/hook"]]
    )
    assert "from the settings" in items[by_target["https://settings.example.com/hook"]]
    assert "not used" not in items[by_target["page@example.com"]]


def _certificate(directory: Path) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1 (the SMTP server's STARTTLS)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context


def test_email_from_the_settings_over_starttls_with_a_login(
    db: Database, budgets: Budgets, settings: Settings, clock: FrozenClock, tmp_path: Path
) -> None:
    got: list[Any] = []
    logins: list[tuple[bytes, bytes]] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            got.append((envelope, session.authenticated))
            return "250 OK"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
        assert isinstance(auth, LoginPassword)
        logins.append((auth.login, auth.password))
        return AuthResult(success=auth.password == b"smtp-password")

    port = free_port()
    smtp = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        tls_context=_certificate(tmp_path),
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    smtp.start()
    tuned = Settings(
        database_url=settings.database_url,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=True,
        smtp_user="ledger",
        smtp_password="smtp-password",  # type: ignore[arg-type]
        smtp_from="ledger@example.com",
        alert_email_to="finops@example.com, cfo@example.com, finops@example.com",
    )
    service = AlertService(budgets, settings=tuned, clock=clock)
    try:
        assert service.sync_channels() == 2
        create(budgets, name="daily", limit=100, period="day", thresholds="100")
        spend(db, "emp-3", "2026-11-25T10:00:00+00:00", 100)
        assert service.sweep() == 1
        service.deliver_due()
    finally:
        service.stop()
        smtp.stop()
    assert logins == [(b"ledger", b"smtp-password")] * 2  # one session per e-mail
    assert sorted(envelope.rcpt_tos[0] for envelope, _ in got) == [
        "cfo@example.com",
        "finops@example.com",
    ]
    assert all(authenticated for _, authenticated in got)
    assert {row.status for row in deliveries(db)} == {"sent"}


def _wait(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    """Until ``condition`` holds (the app's own thread works beside the test)."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_the_settings_slack_webhook_and_the_app_thread_writing_the_channels(
    db: Database, settings: Settings, clock: FrozenClock
) -> None:
    with WebhookReceiver() as slack:
        tuned = settings.model_copy(update={"alert_slack_url": slack.url})
        app = create_app(tuned, db=db, clock=clock)
        with TestClient(app):  # the lifespan starts the alert thread, which syncs first
            _wait(lambda: bool(channels(db)))
            ctx = app.state.ctx
            create(ctx.budgets, name="daily", limit=100, period="day", thresholds="100")
            spend(db, "emp-4", "2026-11-25T10:00:00+00:00", 100)
            ctx.alerts.people_committed(["emp-4"])  # as ingest does after a commit
            _wait(lambda: bool(slack.accepted))
        assert [(c.kind, c.source) for c in channels(db)] == [("slack", "settings")]
        (message,) = slack.accepted
    assert orjson.loads(message.body)["text"].startswith("emp-4 reached 100% of budget daily")


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"alert_webhook_url": "ftp://example.com/hook"}, "alert_webhook_url"),
        ({"alert_webhook_url": "https://example.com/hook"}, "alert_webhook_secret"),
        ({"alert_slack_url": "hooks.slack.com/x"}, "alert_slack_url"),
        ({"alert_email_to": "finops", "smtp_host": "mail"}, "alert_email_to"),
        ({"alert_email_to": "finops@example.com"}, "smtp_host"),
    ],
)
def test_wrong_alert_settings_are_refused_naming_the_setting(
    given: dict[str, str], named: str
) -> None:
    with pytest.raises(ValidationError, match=named):
        Settings(**given)  # type: ignore[arg-type]
