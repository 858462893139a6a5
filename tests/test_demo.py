"""Demo data: marked when loaded, shown by a banner, removed exactly (rollups included)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alembic import command
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import make_event
from tests.test_cli import run
from tests.web.signed_in import signed_in_client
from tokenledger.demo import demo_events
from tokenledger.ingest import ingest
from tokenledger.localdays import to_us
from tokenledger.store import migrate
from tokenledger.store.database import Database
from tokenledger.store.demo_data import has_demo_data, mark_demo_users, remove_demo_data
from tokenledger.store.usage_store import UsageStore

NOW_US = to_us(datetime(2026, 12, 1, tzinfo=UTC))
REAL = [
    # A real person whose id looks like the old demo's ids, active in the demo's days.
    make_event(event_id="real-1", user={"id": "u0001", "name": "Real One"}),
    make_event(event_id="real-2", user={"id": "alice"}, started_at="2026-11-20T08:00:00Z"),
    # A real event id that starts like the demo's, but is not one of a demo user's.
    make_event(event_id="demo-alice-1", user={"id": "alice"}, started_at="2026-11-21T08:00:00Z"),
]


def _snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Everything derived from events, by external ids (pks differ between databases)."""
    queries = {
        "events": "SELECT event_id, u.external_id, started_us, input_tokens FROM events e "
        "JOIN users u ON u.id = e.user_pk",
        "users": "SELECT external_id, name, first_us, last_us FROM users",
        "rollup_user_hour": "SELECT u.external_id, r.bucket, r.requests, r.input_tokens, "
        "r.first_us FROM rollup_user_hour r JOIN users u ON u.id = r.user_pk",
        "rollup_user_day": "SELECT u.external_id, r.day, r.cum_requests, r.cum_input_tokens "
        "FROM rollup_user_day r JOIN users u ON u.id = r.user_pk",
        "rollup_total_quarter": "SELECT bucket, requests, input_tokens, first_us, last_us "
        "FROM rollup_total_quarter",
        "rollup_total_hour": "SELECT bucket, requests, output_tokens FROM rollup_total_hour",
    }
    with db.read() as conn:
        return {name: sorted(map(tuple, conn.execute(text(sql)))) for name, sql in queries.items()}


def test_demo_remove_leaves_exactly_the_real_data(database_url: str, db: Database) -> None:
    assert ingest(UsageStore(db), REAL, now_us=NOW_US).count("accepted") == 3
    real_only = _snapshot(db)
    code, _, err = run(database_url, "demo", "--users", "12", "--days", "8")
    assert code == 0, err
    assert "tokenledger demo --remove" in err
    assert has_demo_data(db)
    with db.read() as conn:
        demo_count = conn.execute(
            text("SELECT count(*) FROM events WHERE event_id LIKE 'demo-demo:%'")
        ).scalar_one()
    assert demo_count > 100
    assert _snapshot(db) != real_only

    code, _, err = run(database_url, "demo", "--remove")
    assert code == 0, err
    assert f"Demo data removed: {demo_count} events and 12 people" in err
    assert not has_demo_data(db)
    assert _snapshot(db) == real_only  # rollups and user spans as if never loaded
    assert UsageStore(db).verify() == dict.fromkeys(UsageStore(db).verify(), 0)
    assert run(database_url, "verify")[0] == 0
    assert run(database_url, "demo", "--remove")[2].startswith("Demo data removed: 0 events")


def test_a_demo_person_with_real_events_keeps_them(db: Database) -> None:
    demo = list(demo_events(now=_now(), days=3, users=2, seed=1))
    assert ingest(UsageStore(db), demo, now_us=NOW_US).count("accepted") == len(demo)
    first = demo[0]["user"]["id"]
    mark_demo_users(db, external_ids=[first, demo[-1]["user"]["id"]])
    mine = make_event(event_id="mine", user={"id": first})
    assert ingest(UsageStore(db), [mine], now_us=NOW_US).count("accepted") == 1
    removed = remove_demo_data(UsageStore(db))
    assert (removed.events, removed.users, removed.users_kept) == (len(demo), 1, 1)
    with db.read() as conn:
        left = conn.execute(
            text("SELECT e.event_id, u.external_id FROM events e JOIN users u ON u.id = e.user_pk")
        ).all()
    assert [tuple(row) for row in left] == [("mine", first)]
    assert not any(UsageStore(db).verify().values())


def _now() -> datetime:
    return datetime(2026, 11, 25, 12, tzinfo=UTC)


def test_demo_data_of_earlier_versions_is_found_by_the_migration(db: Database) -> None:
    legacy = make_event(event_id="demo-u0007-20261120T093012-0", user={"id": "u0007"})
    assert ingest(UsageStore(db), [legacy, *REAL], now_us=NOW_US).count("accepted") == 4
    assert not has_demo_data(db)  # loaded "before" the migration that marks it
    config = migrate.alembic_config()
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")
    migrate.upgrade(db)
    assert has_demo_data(db)
    removed = remove_demo_data(UsageStore(db))
    assert (removed.events, removed.users, removed.users_kept) == (1, 1, 0)
    with db.read() as conn:
        ids = sorted(r[0] for r in conn.execute(text("SELECT event_id FROM events")))
    assert ids == ["demo-alice-1", "real-1", "real-2"]


def test_every_page_says_demo_data_while_it_is_there(app: FastAPI, db: Database) -> None:
    banner = "<strong>Demo data</strong>"
    with signed_in_client(app, role="admin") as page:
        assert banner not in page.get("/reporting/user-usage").text
        demo = list(demo_events(now=_now(), days=3, users=2, seed=1))
        ingest(UsageStore(db), demo, now_us=NOW_US)
        mark_demo_users(db, external_ids=[event["user"]["id"] for event in demo])
        for path in ("/reporting/user-usage", "/admin/keys", "/admin/accounts", "/account"):
            assert banner in page.get(path).text, path
        fragment = page.get("/reporting/user-usage", headers={"HX-Request": "true"}).text
        assert banner not in fragment  # fragments swap into a page that has it
        remove_demo_data(UsageStore(db))
        assert banner not in page.get("/reporting/user-usage").text
    with TestClient(app) as visitor:
        assert "tokenledger accounts reset-password" in visitor.get("/sign-in").text
