"""Shared fixtures: a fresh, migrated database per test on SQLite and PostgreSQL.

PostgreSQL runs in a throwaway cluster started for the session. Without the server
binaries the PostgreSQL variants are skipped, except with CI=true, where that fails.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from tests.support.clock import FrozenClock
from tests.support.postgres import Cluster, PostgresUnavailable, start_cluster
from tokenledger.auth.keys import create_key
from tokenledger.settings import Settings
from tokenledger.store import migrate
from tokenledger.store.database import Database, open_database
from tokenledger.web.app import create_app

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
_counter = itertools.count()

# Longest first: `make test` runs on two workers, and a test of a few minutes that
# happens to start last makes the whole run wait for it alone. These start first (in
# their shuffled order); the rest keep theirs and fill the gaps.
SLOW_FIRST = (
    "tests/bench/",
    "tests/reliability/",
    "tests/test_container.py",
    "tests/web/test_route_hostile_params.py",
)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.startswith(SLOW_FIRST))


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    try:
        cluster = start_cluster()
    except PostgresUnavailable as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"PostgreSQL not available: {exc}")
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def postgres_template(postgres_cluster: Cluster) -> str:
    admin = create_engine(postgres_cluster.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE tl_template"))
    admin.dispose()
    db = open_database(Settings(database_url=postgres_cluster.url("tl_template")))
    migrate.upgrade(db)
    db.dispose()
    return "tl_template"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = open_database(Settings(database_url=f"sqlite:///{path}"))
    migrate.upgrade(db)
    db.dispose()
    return path


def fresh_database_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    """A new, migrated, empty database of ``backend``; returns its URL."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / f"tokenledger-{next(_counter)}.db"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    cluster: Cluster = request.getfixturevalue("postgres_cluster")
    template_name: str = request.getfixturevalue("postgres_template")
    name = f"tl_{os.getpid()}_{next(_counter)}"
    admin = create_engine(cluster.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {template_name}"))
    admin.dispose()
    return cluster.url(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    return fresh_database_url(request, backend, tmp_path)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = open_database(settings)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock("2026-11-25T12:00:00+00:00")


@pytest.fixture
def app(settings: Settings, db: Database, clock: FrozenClock) -> FastAPI:
    return create_app(settings, db=db, clock=clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def ingest_key(db: Database) -> str:
    return create_key(db, name="tests ingest", scope="ingest", now_us=0)[1]


@pytest.fixture
def read_key(db: Database) -> str:
    return create_key(db, name="tests reader", scope="report:read", now_us=0)[1]


def make_event(**overrides: Any) -> dict[str, Any]:
    """A valid event; keyword arguments replace fields (``None`` removes one)."""
    event: dict[str, Any] = {
        "event_id": f"evt-{next(_counter)}",
        "user": {"id": "u-alice", "name": "Alice Martin", "email": "alice@example.com"},
        "started_at": "2026-11-25T10:00:00Z",
        "duration_ms": 1500,
        "model": "gpt-4o",
        "provider": "openai",
        "input_tokens": 100,
        "output_tokens": 40,
    }
    for key, value in overrides.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value
    return event


@pytest.fixture
def post_events(client: TestClient, ingest_key: str) -> Callable[..., Any]:
    def post(events: list[dict[str, Any]], *, key: str | None = None) -> Any:
        return client.post(
            "/api/v1/events",
            json={"events": events},
            headers={"Authorization": f"Bearer {key or ingest_key}"},
        )

    return post


@pytest.fixture
def get_report(client: TestClient, read_key: str) -> Callable[..., Any]:
    def get(path: str = "/api/v1/reports/user-usage", **params: Any) -> Any:
        response = client.get(path, params=params, headers={"Authorization": f"Bearer {read_key}"})
        return response

    return get
