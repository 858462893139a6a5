"""An export whose client goes away stops its work, and the audit log says so.

Against a real server: a daily export over ten years of which only the first and the
last day have usage. Nearly every day of it is a query that writes no row, so nothing
is sent for a long time; an export that only noticed a lost client when a write failed
would work through all 3,660 days and reach the last one. Stopped, it never does.
"""

from __future__ import annotations

import httpx2 as httpx

from tests.conftest import make_event
from tests.reliability.conftest import Servers, create_keys
from tests.reliability.workload import wait_until
from tokenledger.auth import audit
from tokenledger.clock import now_us, system_clock
from tokenledger.ingest import ingest
from tokenledger.settings import Settings
from tokenledger.store.database import open_database
from tokenledger.store.usage_store import UsageStore

RANGE = {"start": "2016-01-01", "end": "2026-01-07", "tz": "UTC", "granularity": "daily"}
FILTERS = {
    "start": "2016-01-01",
    "end": "2026-01-07",
    "timezone": "UTC",
    "q": "",
    "sort": "-total_tokens",
    "granularity": "daily",
}


def test_a_client_that_goes_away_stops_the_export(database_url: str, servers: Servers) -> None:
    db = open_database(Settings(database_url=database_url))
    try:
        first, last = "2016-01-01T10:00:00Z", "2026-01-07T10:00:00Z"
        events = [make_event(started_at=first), make_event(started_at=last)]
        assert ingest(UsageStore(db), events, now_us=now_us(system_clock)).count("accepted") == 2
        keys = create_keys(database_url)
        server = servers.start(database_url)
        headers = {"Authorization": f"Bearer {keys.read}"}
        url = f"{server.url}/api/v1/reports/user-usage/export"
        with (
            httpx.Client(timeout=30) as client,
            client.stream("GET", url, params=RANGE, headers=headers) as response,
        ):
            assert response.status_code == 200
            body = response.iter_raw()  # kept: a dropped iterator closes the response
            header = next(body)
            assert header.startswith(b"date,user_id,")
            (started,) = audit.entries(db, action=audit.EXPORT_STARTED)
            assert started.details == {"filters": FILTERS}
            assert audit.entries(db, action=audit.EXPORT) == []  # still at work
        # The connection is closed: the export stops within a day or two of work.
        wait_until(
            lambda: bool(audit.entries(db, action=audit.EXPORT)),
            timeout=60,
            message="the export's outcome in the audit log",
        )
        (ended,) = audit.entries(db, action=audit.EXPORT)
        assert ended.details == {"filters": FILTERS, "rows": 0, "complete": False}
        assert ended.actor == started.actor
        assert ended.id > started.id
        # The last day, 3,660 days on, was never reached: its row would have left with
        # the first day's, in the one chunk such a sparse file makes.
        assert "Traceback" not in server.log()
    finally:
        db.dispose()
