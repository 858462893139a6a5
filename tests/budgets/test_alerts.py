"""Alerts: each threshold crossing recorded once and delivered once, signed, retried
with backoff for 24 hours, resent by an admin; webhook, Slack text and e-mail (a real
SMTP server on 127.0.0.1); the app's own thread after an ingest. Both backends."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any

import orjson
import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.budgets.conftest import create, spend
from tests.budgets.test_budget_model import us
from tests.support.clock import FrozenClock
from tests.support.postgres import free_port
from tests.support.webhook_receiver import WebhookReceiver
from tokenledger.auth import audit
from tokenledger.budgets.check import Budgets
from tokenledger.budgets.service import FULL_SWEEP_EVERY, AlertService
from tokenledger.settings import Settings
from tokenledger.store import budgets as budget_store
from tokenledger.store.database import Database
from tokenledger.web.app import create_app

SECRET = "whsec-tests"


def verify(secret: str, headers: dict[str, str], body: bytes, now_s: int) -> bool:
    """The signature check of docs/budgets.md."""
    timestamp = headers["x-tokenledger-timestamp"]
    if abs(now_s - int(timestamp)) > 300:
        return False  # too old (or from the future): a replay
    signed = timestamp.encode() + b"." + body
    expected = "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["x-tokenledger-signature"])


def add_channel(db: Database, kind: str, target: str, secret: str = "") -> int:
    with db.write() as conn:
        return budget_store.insert_channel(conn, kind=kind, target=target, secret=secret, now_us=0)


def deliveries(db: Database) -> list[budget_store.DeliveryRow]:
    with db.read() as conn:
        return budget_store.delivery_log(conn)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as started:
        yield started


@pytest.fixture
def attempts() -> list[tuple[str, str]]:
    """(channel, outcome) of each delivery attempt, as the metrics are told."""
    return []


@pytest.fixture
def service(
    budgets: Budgets, settings: Settings, clock: FrozenClock, attempts: list[tuple[str, str]]
) -> Iterator[AlertService]:
    def observe(*, channel: str, status: str) -> None:
        attempts.append((channel, status))

    made = AlertService(budgets, settings=settings, clock=clock, observer=observe)
    yield made
    made.stop()


def test_each_crossing_is_recorded_once_and_delivered_once_signed(
    db: Database, budgets: Budgets, service: AlertService, receiver: WebhookReceiver
) -> None:
    budget = create(budgets, name="monthly", limit=1000, timezone="Pacific/Auckland")
    add_channel(db, "webhook", receiver.url, SECRET)
    spend(db, "emp-1", "2026-11-25T10:00:00+00:00", 600)
    assert service.sweep() == 1  # 50 %
    assert service.sweep() == 0
    service.people_committed(["emp-1"])
    assert service.check_committed() == 0
    spend(db, "emp-1", "2026-11-25T10:05:00+00:00", 400)  # 80 % and 100 % at once
    service.people_committed(["emp-1", "emp-1"])
    assert service.check_committed() == 2
    assert service.sweep() == 0
    service.deliver_due()
    service.deliver_due()
    assert len(receiver.received) == len(receiver.accepted) == 3
    now_s = us("2026-11-25T12:00:00+00:00") // 1_000_000
    for item in receiver.accepted:
        assert verify(SECRET, item.headers, item.body, now_s)
        assert not verify("another secret", item.headers, item.body, now_s)
        assert not verify(SECRET, item.headers, item.body + b" ", now_s)
        assert not verify(SECRET, item.headers, item.body, now_s + 301)  # replayed later
    payloads = sorted(
        (orjson.loads(item.body) for item in receiver.accepted), key=lambda p: p["threshold"]
    )
    assert [p["threshold"] for p in payloads] == [50, 80, 100]
    first = payloads[0]
    assert first == {
        "alert_id": first["alert_id"],
        "budget": {
            "id": budget.id,
            "name": "monthly",
            "scope": "everyone",
            "period": "month",
            "timezone": "Pacific/Auckland",
            "action": "alert",
        },
        "person": {"user_id": "emp-1", "name": None, "email": None},
        "metric": "tokens",
        "limit": 1000,
        "used": 600,
        "threshold": 50,
        "period": {"start": "2026-11-01T00:00:00+13:00", "end": "2026-12-01T00:00:00+13:00"},
        "url": "http://127.0.0.1:8000/reporting/user-usage?q=emp-1",
    }
    assert {row.status for row in deliveries(db)} == {"sent"}


def test_the_periodic_sweep_reads_everyone_only_when_it_must(
    db: Database, budgets: Budgets, service: AlertService
) -> None:
    """Events written by another process (no after-commit check here) are found by
    the next sweep, which reads only their people; nothing written, nothing read;
    everyone after a budget changes and every FULL_SWEEP_EVERY sweeps."""
    create(budgets, limit=1000)
    spend(db, "emp-1", "2026-11-25T10:00:00+00:00", 600)
    assert service.sweep_changed() == ("everyone", 1)  # the first: emp-1 at 50 %
    assert service.sweep_changed() == ("nothing", 0)
    spend(db, "emp-2", "2026-11-25T10:01:00+00:00", 900)
    assert service.sweep_changed() == ("people", 2)  # emp-2 at 50 % and 80 %
    assert service.sweep_changed() == ("people", 0)  # read once more (a late commit)
    assert service.sweep_changed() == ("nothing", 0)
    spend(db, "emp-1", "2026-11-25T10:02:00+00:00", 400)
    assert service.sweep_changed() == ("people", 2)  # emp-1 at 80 % and 100 %
    create(budgets, name="daily", limit=500, period="day")
    assert service.sweep_changed() == ("everyone", 6)  # the new budget: 3 each
    kinds = [service.sweep_changed()[0] for _ in range(FULL_SWEEP_EVERY)]
    assert kinds == ["nothing"] * (FULL_SWEEP_EVERY - 1) + ["everyone"]
    assert len(deliveries(db)) == 0  # no channel: crossings recorded, nothing to send
    with db.read() as conn:
        recorded = conn.execute(text("SELECT count(*) FROM budget_crossings")).scalar_one()
    assert recorded == 11


def test_a_receiver_failing_three_times_gets_the_alert_once_after_backoff(
    db: Database,
    budgets: Budgets,
    service: AlertService,
    clock: FrozenClock,
    attempts: list[tuple[str, str]],
) -> None:
    create(budgets, limit=100, thresholds="100")
    add_channel(db, "webhook", "", SECRET)  # replaced below
    with WebhookReceiver(fail_first=3) as receiver:
        with db.write() as conn:
            conn.execute(budget_store.alert_channels.update().values(target=receiver.url))
        spend(db, "emp-2", "2026-11-25T10:00:00+00:00", 100)
        assert service.sweep() == 1
        for wait_s in (0, 30, 60, 120):  # 30 s, doubling
            clock.advance(seconds=wait_s)
            service.deliver_due()
            service.deliver_due()  # not due again yet: nothing more is sent
        assert len(receiver.received) == 4
        assert len(receiver.accepted) == 1
    (row,) = deliveries(db)
    assert (row.status, row.attempts, row.last_code) == ("sent", 4, 200)
    with db.read() as conn:
        tried = budget_store.attempts_of(conn, delivery_id=row.id)
    start = us("2026-11-25T12:00:00+00:00")
    assert [(t["outcome"], t["response_code"], t["at_us"], t["next_try_us"]) for t in tried] == [
        ("error", 500, start, start + 30_000_000),
        ("error", 500, start + 30_000_000, start + 90_000_000),
        ("error", 500, start + 90_000_000, start + 210_000_000),
        ("sent", 200, start + 210_000_000, None),
    ]
    assert attempts == [("webhook", "retrying")] * 3 + [("webhook", "sent")]  # the metric


def test_delivery_gives_up_after_24_hours_and_an_admin_can_resend(
    db: Database, budgets: Budgets, service: AlertService, clock: FrozenClock
) -> None:
    create(budgets, limit=100, thresholds="100")
    with WebhookReceiver(fail_first=10**6) as receiver:
        add_channel(db, "webhook", receiver.url, SECRET)
        spend(db, "emp-3", "2026-11-25T10:00:00+00:00", 100)
        service.sweep()
        start = us("2026-11-25T12:00:00+00:00")
        for _ in range(100):
            service.deliver_due()
            (row,) = deliveries(db)
            if row.status != "pending":
                break
            clock.advance(microseconds=row.next_try_us - us(clock().isoformat()))
        (row,) = deliveries(db)
    assert row.status == "failed"
    with db.read() as conn:
        tried = budget_store.attempts_of(conn, delivery_id=row.id)
    gaps = [b["at_us"] - a["at_us"] for a, b in itertools.pairwise(tried)]
    assert gaps[:3] == [30_000_000, 60_000_000, 120_000_000]
    assert max(gaps) == 3600 * 1_000_000 == gaps[-1]  # at most an hour apart
    assert tried[-1]["at_us"] - start <= 24 * 3600 * 1_000_000
    assert tried[-1]["next_try_us"] is None
    assert len(receiver.received) == len(tried)
    with WebhookReceiver() as receiver:
        with db.write() as conn:
            conn.execute(budget_store.alert_channels.update().values(target=receiver.url))
        service.resend(row.id, actor="admin@example.com", client="10.0.0.9")
        service.deliver_due()
        assert len(receiver.accepted) == 1
    assert deliveries(db)[0].status == "sent"
    assert audit.entries(db, limit=1)[0].action == audit.ALERT_RESENT
    with pytest.raises(LookupError):
        service.resend(10**9, actor="admin@example.com", client=None)


def test_slack_text_and_email_over_a_real_smtp_server(
    db: Database,
    budgets: Budgets,
    settings: Settings,
    clock: FrozenClock,
    receiver: WebhookReceiver,
) -> None:
    got: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            got.append(envelope)
            return "250 OK"

    port = free_port()
    smtp = Controller(Handler(), hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        tuned = settings.model_copy(
            update={
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "smtp_starttls": False,
                "smtp_from": "ledger@example.com",
            }
        )
        service = AlertService(budgets, settings=tuned, clock=clock)
        create(budgets, name="daily", limit=200, period="day", thresholds="100")
        add_channel(db, "slack", receiver.url)
        add_channel(db, "email", "finops@example.com")
        spend(db, "emp-4", "2026-11-25T10:00:00+00:00", 250)
        assert service.sweep() == 1
        service.deliver_due()
    finally:
        service.stop()
        smtp.stop()
    (slack,) = receiver.accepted
    text = (
        "emp-4 reached 100% of budget daily: 250 of 200 tokens used "
        "(2026-11-25T00:00:00+00:00 to 2026-11-26T00:00:00+00:00)"
    )
    link = "http://127.0.0.1:8000/reporting/user-usage?q=emp-4"
    assert orjson.loads(slack.body) == {"text": f"{text} <{link}>"}
    (mail,) = got
    assert mail.mail_from == "ledger@example.com"
    assert mail.rcpt_tos == ["finops@example.com"]
    message = message_from_bytes(mail.content, policy=policy.default)
    assert message["Subject"] == text
    body = message.get_body().get_content()  # type: ignore[union-attr]
    assert body.replace("\r\n", "\n") == f"{text}\n\n{link}\n"
    assert {row.status for row in deliveries(db)} == {"sent"}


def test_an_email_without_an_smtp_server_is_an_error_retried(
    db: Database, budgets: Budgets, service: AlertService
) -> None:
    create(budgets, limit=10, thresholds="100")
    add_channel(db, "email", "finops@example.com")
    spend(db, "emp-5", "2026-11-25T10:00:00+00:00", 10)
    service.sweep()
    service.deliver_due()
    (row,) = deliveries(db)
    assert row.status == "pending"
    assert row.last_error == "no SMTP server configured (TOKENLEDGER_SMTP_HOST)"


def test_a_late_event_crosses_a_threshold_of_last_month(
    db: Database,
    budgets: Budgets,
    service: AlertService,
    clock: FrozenClock,
    receiver: WebhookReceiver,
) -> None:
    create(budgets, limit=1000, thresholds="80")
    add_channel(db, "webhook", receiver.url, SECRET)
    clock.set("2026-12-02T00:00:00+00:00")
    spend(db, "emp-6", "2026-11-30T23:00:00+00:00", 900)
    service.people_committed(["emp-6"])
    assert service.check_committed() == 1
    service.deliver_due()
    (item,) = receiver.accepted
    period = orjson.loads(item.body)["period"]
    assert period == {"start": "2026-11-01T00:00:00+00:00", "end": "2026-12-01T00:00:00+00:00"}


def test_the_app_alerts_after_an_ingest_on_its_own(
    settings: Settings,
    db: Database,
    clock: FrozenClock,
    budgets: Budgets,
    receiver: WebhookReceiver,
    ingest_key: str,
) -> None:
    from tests.conftest import make_event

    create(budgets, limit=1000)
    add_channel(db, "webhook", receiver.url, SECRET)
    app = create_app(settings.model_copy(update={"alert_sweep_s": 3600}), db=db, clock=clock)
    with TestClient(app) as client:
        event = make_event(user={"id": "emp-7"}, input_tokens=800, output_tokens=0)
        answer = client.post(
            "/api/v1/events",
            json={"events": [event]},
            headers={"Authorization": f"Bearer {ingest_key}"},
        )
        assert answer.status_code == 200
        deadline = time.monotonic() + 30
        while len(receiver.accepted) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    thresholds = sorted(orjson.loads(item.body)["threshold"] for item in receiver.accepted)
    assert thresholds == [50, 80]


def test_commits_wake_the_thread_without_reading_deliveries_each_time(
    service: AlertService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy ingest wakes the alert thread after every commit: the people are checked
    each time, the due deliveries only when a crossing was recorded, a delivery was
    queued again, or the last look is a second old."""
    looks: list[float] = []
    real = service.deliver_due

    def counted() -> float:
        looks.append(time.monotonic())
        return real()

    monkeypatch.setattr(service, "deliver_due", counted)
    service.start()
    deadline = time.monotonic() + 10
    while not looks and time.monotonic() < deadline:
        time.sleep(0.01)
    assert looks, "the first turn looks for due deliveries"
    began, first = time.monotonic(), len(looks)
    for number in range(40):  # 40 commits of people without budgets, 10 ms apart
        service.people_committed([f"nobody-{number}"])
        time.sleep(0.01)
    spent = time.monotonic() - began
    # One look per second at most (plus one at a boundary), not one per commit.
    assert len(looks) - first <= int(spent) + 1
    before = len(looks)
    service._deliver_now.set()  # what a resend does
    service._wake.set()
    deadline = time.monotonic() + 0.5
    while len(looks) == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(looks) > before  # at once, not after the second
