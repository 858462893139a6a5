"""Item 8: one person's events, newest first, paged by keyset (the person view).

The person with the most events in the main dataset is opened over the dataset's whole
year: the first page of their requests (50, newest first) and the 100th (reached by
following each page's cursor, as "Older requests" does), then their person report
(cards, series, per model, heat map) for the last 31 days. Keyset paging seeks the
index on (user_pk, started_us, id) from the last row shown, so the 100th page should
cost what the first does; OFFSET would read the 4,950 rows before it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text

from bench.context import Context
from bench.progress import say
from bench.stats import interleaved, summarize
from tokenledger.localdays import LocalRange
from tokenledger.person import EVENTS_PAGE_SIZE, events_page, person_report
from tokenledger.store import migrate
from tokenledger.store.usage_store import UsageStore

PAGES = (1, 100)


def run(ctx: Context) -> dict[str, Any]:
    dataset = ctx.main
    db = dataset.open()
    try:
        migrate.upgrade(db)  # the index of migration 0009_i14, on datasets built before it
        store = UsageStore(db)
        with db.read() as conn:
            user_pk, events = conn.execute(
                text(
                    "SELECT user_pk, count(*) FROM events GROUP BY user_pk "
                    "ORDER BY count(*) DESC, user_pk LIMIT 1"
                )
            ).one()
            user_id = conn.execute(
                text("SELECT external_id FROM users WHERE id = :pk"), {"pk": user_pk}
            ).scalar_one()
        zone = ctx.options.zone
        end = dataset.end.astimezone(zone).date()
        year = LocalRange.of(end - timedelta(days=364), end, zone)
        cursors: dict[int, str | None] = {1: None}
        cursor = None
        for number in range(1, max(PAGES)):
            page = events_page(store, user_id=user_id, local_range=year, cursor=cursor)
            cursor = page.next_cursor
            if cursor is None:
                break
            cursors[number + 1] = cursor
        actions = {
            f"page {number}": _page(store, user_id, year, cursors[number])
            for number in PAGES
            if number in cursors
        }
        month = LocalRange.of(end - timedelta(days=30), end, zone)
        actions["report 31 days"] = lambda: person_report(store, user_id=user_id, local_range=month)
        say(f"Person: {user_id} ({events:,} events), {len(actions)} actions x repetitions")
        samples = interleaved(actions, repetitions=ctx.options.repetitions)
    finally:
        db.dispose()
    return {
        "status": "ok",
        "user_events": int(events),
        "page_size": EVENTS_PAGE_SIZE,
        "pages_reached": max(cursors),
        "server_ms": {name: summarize(values) for name, values in samples.items()},
    }


def _page(store: UsageStore, user_id: str, local_range: LocalRange, cursor: str | None) -> Any:
    return lambda: events_page(store, user_id=user_id, local_range=local_range, cursor=cursor)
