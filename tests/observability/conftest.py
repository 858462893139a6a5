"""Helpers of the observability tests: a metrics key, and metrics read back as numbers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from tests.conftest import IN_CI
from tests.support.postgres import Cluster, PostgresUnavailable, start_cluster
from tokenledger.auth.keys import create_key
from tokenledger.settings import Settings
from tokenledger.store import migrate
from tokenledger.store.database import Database, open_database

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def metrics_key(db: Database) -> str:
    return create_key(db, name="prometheus", scope="metrics", now_us=0)[1]


@pytest.fixture
def scrape(client: object, metrics_key: str) -> Callable[[], Samples]:
    def read() -> Samples:
        response = client.get(  # type: ignore[attr-defined]
            "/metrics", headers={"Authorization": f"Bearer {metrics_key}"}
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain; version=")
        return parse_metrics(response.text)

    return read


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster of this test alone, so the test can stop it."""
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


def migrated_database(cluster: Cluster) -> str:
    """The URL of a new, migrated database in ``cluster``."""
    admin = create_engine(cluster.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE tokenledger"))
    admin.dispose()
    url = cluster.url("tokenledger")
    db = open_database(Settings(database_url=url))
    migrate.upgrade(db)
    db.dispose()
    return url
