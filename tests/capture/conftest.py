"""A running ``tokenledger serve`` for the real clients, and how to read what it stored.

One server per module (SQLite; the storage path is the one of ``POST /api/v1/events``,
tested on both backends by tests/web/test_capture_api.py). Each test uses its own
people, so the tests of a module do not see each other's usage.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.support.server import ServerProcess
from tokenledger.auth.keys import create_key
from tokenledger.settings import Settings
from tokenledger.store.database import open_database

# LiteLLM reads it at import: never fetch prices over the network.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"


@dataclass(frozen=True)
class Served:
    url: str
    ingest_key: str
    read_key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.ingest_key}"}

    def _get(self, path: str, **params: str) -> httpx.Response:
        today = datetime.now(UTC).date()
        span = {"start": str(today - timedelta(days=1)), "end": str(today + timedelta(days=1))}
        response = httpx.get(
            f"{self.url}{path}",
            params={**span, "tz": "UTC", **params},
            headers={"Authorization": f"Bearer {self.read_key}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response

    def usage(self, user_id: str) -> dict[str, Any]:
        """The User Usage report's row of ``user_id``."""
        rows = self._get("/api/v1/reports/user-usage", q=user_id).json()["users"]
        [row] = [row for row in rows if row["user_id"] == user_id]
        return dict(row)

    def events(self, user_id: str) -> list[dict[str, str]]:
        """The events export (the audit trail) of ``user_id``."""
        text = self._get("/api/v1/reports/user-usage/export", granularity="events", q=user_id).text
        return [row for row in csv.DictReader(io.StringIO(text)) if row["user_id"] == user_id]


@pytest.fixture(scope="module")
def served(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("capture")
    path = folder / "capture.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    db = open_database(Settings(database_url=url))
    ingest_key = create_key(db, name="capture", scope="ingest", now_us=0)[1]
    read_key = create_key(db, name="reader", scope="report:read", now_us=0)[1]
    db.dispose()
    with ServerProcess(url, folder) as server:
        yield Served(server.url, ingest_key, read_key)


def tokens_of(row: dict[str, Any]) -> dict[str, int]:
    names = (
        "requests",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
    )
    return {name: int(row[name]) for name in names}
