"""The gateway's world: a fake provider on 127.0.0.1, a gateway configuration that
points at it, keys, and a reading of the ledger.

``served`` is a real ``tokenledger serve`` (one per module, SQLite) for the official
clients; ``gateway_app`` is the app in process on the test's database (both backends).
Each test uses its own people, so the tests of a module do not see each other's usage.
"""

from __future__ import annotations

import itertools
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.clock import FrozenClock
from tests.support.fake_upstream import FakeUpstream
from tests.support.server import ServerProcess
from tokenledger.auth.keys import create_key
from tokenledger.gateway.budget import BudgetGate
from tokenledger.settings import Settings
from tokenledger.store.database import Database, open_database
from tokenledger.store.schema import events, users
from tokenledger.web.app import create_app

UPSTREAM_KEY = "sk-upstream-never-shown-1234567890"
KEY_ENV = "TL_TEST_UPSTREAM_KEY"
_people = itertools.count(1)


def person() -> str:
    """A user id no other test uses."""
    return f"emp-{next(_people):04d}"


def gateway_config(path: Path, upstream: FakeUpstream) -> Path:
    """A configuration with one upstream of each kind, both the fake, and one more
    OpenAI upstream that only allows ``o3-*`` models (to show routing by model)."""
    path.write_text(
        f"""
[[upstreams]]
name = "reasoning"
kind = "openai"
base_url = "{upstream.openai_base}/"
key_env = "{KEY_ENV}"
models = ["o3-*"]
provider = "openai-reasoning"

[[upstreams]]
name = "fake-openai"
kind = "openai"
base_url = "{upstream.openai_base}"
key_env = "{KEY_ENV}"

[[upstreams]]
name = "fake-anthropic"
kind = "anthropic"
base_url = "{upstream.url}"
key_env = "{KEY_ENV}"
""",
        encoding="utf-8",
    )
    return path


@dataclass
class Ledger:
    """The events the gateway recorded, read from the database."""

    db: Database

    def events(self, user_id: str) -> list[dict[str, Any]]:
        query = (
            select(events, users.c.external_id)
            .join(users, users.c.id == events.c.user_pk)
            .where(users.c.external_id == user_id)
            .order_by(events.c.id)
        )
        with self.db.read() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
        for row in rows:
            row["metadata"] = orjson.loads(row["metadata"]) if row["metadata"] else None
        return rows

    def wait_for(self, user_id: str, count: int = 1, timeout_s: float = 20) -> list[dict[str, Any]]:
        """The person's events once there are ``count`` (for events recorded after a
        client left, which no answer waits for)."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.events(user_id)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def tokens(row: dict[str, Any]) -> dict[str, int | None]:
    return {
        "input": row["input_tokens"],
        "output": row["output_tokens"],
        "cache_read": row["cache_read_tokens"],
        "cache_write": row["cache_write_tokens"],
        "reasoning": row["reasoning_tokens"],
    }


@dataclass
class Served:
    url: str
    upstream: FakeUpstream
    ledger: Ledger
    server: ServerProcess
    db: Database
    app_key: str

    def person_key(self, user_id: str) -> str:
        return create_key(self.db, name="", scope="gateway", user_id=user_id, now_us=0)[1]

    @property
    def openai_base(self) -> str:
        return f"{self.url}/gateway/openai/v1"

    @property
    def anthropic_base(self) -> str:
        return f"{self.url}/gateway/anthropic"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(slow_s=60) as fake:
        yield fake


@pytest.fixture(scope="module")
def served(
    upstream: FakeUpstream, sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("gateway")
    path = folder / "gateway.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    db = open_database(Settings(database_url=url))
    app_key = create_key(db, name="chat app", scope="gateway-app", now_us=0)[1]
    config = gateway_config(folder / "gateway.toml", upstream)
    env = {"TOKENLEDGER_GATEWAY_CONFIG": str(config), KEY_ENV: UPSTREAM_KEY}
    try:
        with ServerProcess(url, folder, **env) as server:
            yield Served(server.url, upstream, Ledger(db), server, db, app_key)
    finally:
        db.dispose()


@dataclass
class InProcess:
    """The app in this process, on the test's database."""

    client: TestClient
    upstream: FakeUpstream
    ledger: Ledger
    db: Database

    def person_key(self, user_id: str) -> str:
        return create_key(self.db, name="", scope="gateway", user_id=user_id, now_us=0)[1]


@pytest.fixture
def make_gateway(
    upstream: FakeUpstream,
    settings: Settings,
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., InProcess]]:
    monkeypatch.setenv(KEY_ENV, UPSTREAM_KEY)
    config = gateway_config(tmp_path / "gateway.toml", upstream)
    clients: list[TestClient] = []

    def make(budget_gate: BudgetGate | None = None, **changes: Any) -> InProcess:
        tuned = settings.model_copy(update={"gateway_config": str(config), **changes})
        app = create_app(tuned, db=db, clock=clock, budget_gate=budget_gate)
        client = TestClient(app, raise_server_exceptions=False)
        clients.append(client.__enter__())
        return InProcess(client, upstream, Ledger(db), db)

    yield make
    for client in clients:
        client.__exit__(None, None, None)
