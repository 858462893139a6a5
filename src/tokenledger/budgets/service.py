"""The alert thread of a server process: it records crossings and sends the outbox.

Started and stopped by the app (``create_app``'s lifespan). It checks the people of
each commit as soon as they are handed over (:meth:`AlertService.people_committed`),
sweeps at start-up and every ``alert_sweep_s`` (see :meth:`AlertService.sweep_changed`:
everyone when needed, else the people whose usage moved), and sends each due delivery:
claimed by one process at a time (a lease in the row), retried with exponential
backoff (``alert_retry_base_s`` doubling, at most an hour apart) until 24 hours after
the crossing, each attempt recorded. A process killed while sending leaves its row due
again when the lease ends; a server stopped with pending alerts sends them after the
restart.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Protocol

import httpx2

from tokenledger.auth import audit
from tokenledger.budgets import alerts, channels, delivery
from tokenledger.budgets.check import Budgets
from tokenledger.clock import Clock, now_us
from tokenledger.settings import Settings
from tokenledger.store import budgets as budget_store
from tokenledger.store import migrate

log = logging.getLogger("tokenledger.alerts")

US = 1_000_000
MAX_RETRY_US = 3600 * US
SENDERS = 4  # deliveries tried at once by one process (each waits on the network)
# A sweep of everyone at least every this many sweeps (at 30 s: every 5 minutes), for
# what moves usage without new events (``tokenledger reprice``, ``rebuild-rollups``).
FULL_SWEEP_EVERY = 10


def retry_delay_us(attempts: int, *, base_s: float) -> int:
    """The wait after the ``attempts``-th failed attempt: base, 2 base, 4 base... <= 1 h."""
    delay: int = int(base_s * US) * 2 ** min(attempts - 1, 40)
    return min(delay, MAX_RETRY_US)


class AttemptObserver(Protocol):
    """Told of each delivery attempt (for metrics): its channel kind and outcome."""

    def __call__(self, *, channel: str, status: str) -> None: ...


class AlertService:
    def __init__(
        self,
        budgets: Budgets,
        *,
        settings: Settings,
        clock: Clock,
        observer: AttemptObserver | None = None,
    ) -> None:
        self.budgets = budgets
        self.observer = observer
        self.settings = settings
        self.clock = clock
        self._people: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._deliver_now = threading.Event()  # a delivery was queued again (resend)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: httpx2.Client | None = None
        self._senders: ThreadPoolExecutor | None = None
        # Since the last sweep of everyone: (event row id, budgets' version) seen by
        # each sweep, oldest first (None: no sweep of everyone yet).
        self._marks: list[tuple[int, int]] | None = None

    @property
    def client(self) -> httpx2.Client:
        """The HTTP client of webhooks (made on first use; no cookies, no redirects)."""
        if self._client is None:
            no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
            self._client = httpx2.Client(
                follow_redirects=False, trust_env=False, cookies=no_cookies
            )
        return self._client

    # -- the thread -------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="tokenledger-alerts", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join()
        if self._senders is not None:
            self._senders.shutdown()
            self._senders = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def people_committed(self, user_ids: Iterable[str]) -> None:
        """Check these people soon (called after a commit; never blocks)."""
        for user_id in user_ids:
            self._people.put(user_id)
        self._wake.set()

    def _run(self) -> None:
        next_sweep = 0.0
        # When due deliveries are looked for again: at most a second apart, and at once
        # after new crossings or a resend; not on every commit that wakes the thread
        # (at a busy ingest that is every batch: two reads each, for nothing).
        next_delivery = 0.0
        synced = False
        while not self._stop.is_set():
            wait = 1.0
            try:
                if not synced:  # before the first sweep records any crossing
                    # Nothing is written before the schema is the newest: a write
                    # lock taken now would stand in the way of the migration.
                    if not migrate.is_up_to_date(self.budgets.db):
                        self._stop.wait(1.0)
                        continue
                    self.sync_channels()
                    synced = True
                found = 0
                if time.monotonic() >= next_sweep:
                    began = time.monotonic()
                    swept, found = self.sweep_changed()
                    if swept != "nothing":
                        log.info(
                            "budget alerts: swept %s in %.3f s, %d new crossings",
                            swept,
                            time.monotonic() - began,
                            found,
                        )
                    next_sweep = time.monotonic() + self.settings.alert_sweep_s
                found += self.check_committed()
                if found or self._deliver_now.is_set() or time.monotonic() >= next_delivery:
                    self._deliver_now.clear()
                    next_delivery = time.monotonic() + self.deliver_due()
                wait = max(0.0, next_delivery - time.monotonic())
            except Exception:  # the database may be away: try again on the next turn
                log.exception("budget alerts: a turn failed")
            self._wake.wait(max(0.01, min(wait, next_sweep - time.monotonic())))
            self._wake.clear()

    # -- turns (public so tests and commands can run them in order) --------------------

    def sync_channels(self) -> int:
        """Write the settings' alert channels to the database; how many changed."""
        return channels.sync(self.budgets.db, self.settings, now_us=now_us(self.clock))

    def sweep(self) -> int:
        """Record the crossings of everyone with usage; how many were new."""
        with self.budgets.db.read() as conn:
            marks = budget_store.sweep_marks(conn)
        return self._sweep_everyone(marks)

    def _sweep_everyone(self, marks: tuple[int, int]) -> int:
        found = alerts.detect(self.budgets, now_us=now_us(self.clock))
        self._marks = [marks]
        return found

    def sweep_changed(self) -> tuple[str, int]:
        """The periodic sweep: ``(what was swept, how many crossings were new)``.

        Everyone (``"everyone"``) at the first sweep, after a budget changed, and every
        :data:`FULL_SWEEP_EVERY` sweeps; else the people of the events stored since
        the sweep before the last one (``"people"``: a write whose row id was taken
        before a later one's commit is still seen, the sweep after it); nothing
        (``"nothing"``) when no event was stored since. At 10,000 people a sweep of
        everyone costs about a second of CPU, which a gateway's budget checks on the
        same server would otherwise share every ``alert_sweep_s``.
        """
        previous = self._marks
        people: list[str] | None = None  # None: everyone
        with self.budgets.db.read() as conn:
            marks = budget_store.sweep_marks(conn)
            if previous and marks[1] == previous[-1][1] and len(previous) < FULL_SWEEP_EVERY:
                after = previous[-2][0] if len(previous) > 1 else previous[0][0]
                people = (
                    []
                    if marks[0] == after
                    else budget_store.people_with_events_after(conn, event_row_id=after)
                )
        if people is None or not previous:
            return "everyone", self._sweep_everyone(marks)
        self._marks = [*previous, marks]
        if not people:
            return "nothing", 0
        found = alerts.detect(self.budgets, now_us=now_us(self.clock), user_ids=people)
        return "people", found

    def check_committed(self) -> int:
        """Record the crossings of the people handed over since the last turn."""
        people: set[str] = set()
        while True:
            try:
                people.add(self._people.get_nowait())
            except queue.Empty:
                break
        if not people:
            return 0
        return alerts.detect(self.budgets, now_us=now_us(self.clock), user_ids=people)

    def deliver_due(self) -> float:
        """Try each due delivery once; the seconds until the next one is due (<= 1)."""
        db = self.budgets.db
        with db.read() as conn:
            due = budget_store.due_deliveries(conn, now_us=now_us(self.clock))
        if len(due) == 1:
            self._attempt(due[0])
        elif due:
            if self._senders is None:
                self._senders = ThreadPoolExecutor(SENDERS, thread_name_prefix="tokenledger-alert")
            list(self._senders.map(self._attempt, due))
        with db.read() as conn:
            following = budget_store.next_due_us(conn)
        if following is None:
            return 1.0
        return min(1.0, max(0.0, (following - now_us(self.clock)) / US))

    def _attempt(self, delivery_id: int) -> None:
        db = self.budgets.db
        start = now_us(self.clock)
        # A claimed delivery is due again after this if its attempt is never recorded.
        lease_us = int(2 * self.settings.alert_send_timeout_s * US)
        with db.write() as conn:
            claimed = budget_store.claim(
                conn, delivery_id=delivery_id, now_us=start, lease_until_us=start + lease_us
            )
            alert = budget_store.load_alert(conn, delivery_id=delivery_id) if claimed else None
        if alert is None:
            return  # another process has it
        result = delivery.send(
            alert,
            client=self.client,
            settings=self.settings,
            metrics=self.budgets.metrics,
            now_s=start // US,
        )
        finished = now_us(self.clock)
        next_try: int | None = None
        if not result.sent:
            next_try = finished + retry_delay_us(
                alert.attempts, base_s=self.settings.alert_retry_base_s
            )
            if next_try > alert.deadline_us:
                next_try = None
        with db.write() as conn:
            budget_store.record_attempt(
                conn,
                delivery_id=delivery_id,
                now_us=finished,
                sent=result.sent,
                code=result.code,
                error=result.error,
                next_try_us=next_try,
            )
        if self.observer is not None:
            status = "sent" if result.sent else "retrying" if next_try is not None else "gave_up"
            self.observer(channel=alert.channel.kind, status=status)

    def resend(self, delivery_id: int, *, actor: str, client: str | None) -> None:
        """Queue a delivery again now, for another 24 hours (audited)."""
        at = now_us(self.clock)
        with self.budgets.db.write() as conn:
            if not budget_store.resend(
                conn, delivery_id=delivery_id, now_us=at, deadline_us=at + alerts.DELIVERY_WINDOW_US
            ):
                raise LookupError(f"no alert delivery with id {delivery_id}")
            audit.record_in(
                conn,
                actor=actor,
                action=audit.ALERT_RESENT,
                details={"delivery_id": delivery_id},
                now_us=at,
                client=client,
            )
        self._deliver_now.set()
        self._wake.set()
