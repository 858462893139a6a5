"""Admin > Erasure: a person erased from the console, confirmed by typing the id again."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from tests.conftest import make_event
from tests.support.clock import FrozenClock
from tests.web.signed_in import signed_in_client
from tokenledger.auth import audit
from tokenledger.ingest import ingest
from tokenledger.localdays import to_us
from tokenledger.settings import Settings
from tokenledger.store import erasure
from tokenledger.store.database import Database
from tokenledger.usage import UserFilter
from tokenledger.web.app import create_app

KEY = "a console erasure key, forty characters."


@pytest.fixture
def app(settings: Settings, db: Database, clock: FrozenClock) -> FastAPI:
    with_key = Settings(database_url=settings.database_url, erasure_key=KEY)
    return create_app(with_key, db=db, clock=clock)


def _names(app: FastAPI) -> list[tuple[str, str | None, str | None]]:
    with app.state.ctx.store.read() as reader:
        return sorted(profile for _, profile in reader.matching_users(UserFilter()))


def test_an_admin_erases_a_person_after_typing_the_id_again(app: FastAPI) -> None:
    store = app.state.ctx.store
    ingest(
        store, [make_event(), make_event(user={"id": "u-bob"})], now_us=to_us(app.state.ctx.clock())
    )
    with signed_in_client(app, role="admin") as admin:
        assert 'href="/admin/erasure"' in admin.get("/admin/audit").text
        page = admin.get("/admin/erasure")
        assert page.status_code == 200
        assert "Type the user id again to confirm" in page.text
        wrong = admin.post(
            "/admin/erasure", data={"user_id": "u-alice", "confirm_user_id": "u-alic"}
        )
        assert wrong.status_code == 400
        assert "type the same user id again" in wrong.text
        assert ("u-alice", "Alice Martin", "alice@example.com") in _names(app)
        unknown = admin.post(
            "/admin/erasure", data={"user_id": "nobody", "confirm_user_id": "nobody"}
        )
        assert unknown.status_code == 404
        done = admin.post(
            "/admin/erasure",
            data={"user_id": "u-alice", "confirm_user_id": "u-alice"},
            follow_redirects=False,
        )
        assert done.status_code == 303
        assert "The person is erased" in admin.get(done.headers["location"]).text
    alias = erasure.pseudonym(KEY.encode(), "u-alice")
    assert _names(app) == [(alias, None, None), ("u-bob", None, None)]
    (entry,) = audit.entries(app.state.ctx.db, action=audit.PERSON_ERASED)
    assert entry.actor == "admin@example.com"
    assert "u-alice" not in str(entry.details)


def test_a_viewer_cannot_erase(app: FastAPI) -> None:
    ingest(app.state.ctx.store, [make_event()], now_us=to_us(app.state.ctx.clock()))
    with signed_in_client(app, role="viewer") as viewer:
        refused = viewer.post(
            "/admin/erasure", data={"user_id": "u-alice", "confirm_user_id": "u-alice"}
        )
        assert refused.status_code == 403
    assert ("u-alice", "Alice Martin", "alice@example.com") in _names(app)
