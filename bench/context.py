"""What every measurement step gets: the options, the backend, the datasets, servers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx2 as httpx
from tests.support.server import ServerProcess

from bench.backends import Backend
from bench.datasets import Dataset
from tokenledger.auth.keys import create_key
from tokenledger.clock import now_us, system_clock
from tokenledger.settings import Settings
from tokenledger.store import migrate
from tokenledger.store.database import open_database


@dataclass
class Options:
    events: int
    users: int
    seed: int
    days: int
    repetitions: int
    zone: ZoneInfo
    scale_events: int
    search_users: int
    search_events: int
    ingest_events: int
    import_events: int
    data_dir: Path
    rebuild: bool
    ingest_batch: int = 1000
    gateway_requests: int = 500
    gateway_streams: int = 500
    copy_from: Path | None = None  # PostgreSQL datasets copied from this SQLite data dir


@dataclass
class Context:
    options: Options
    backend: Backend
    main: Dataset
    datasets: dict[str, Dataset] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        path = self.options.data_dir / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def end(self) -> datetime:
        return self.main.end


def api_key(dataset_url: str, scope: str) -> str:
    """A new key of ``scope`` in the dataset's database."""
    db = open_database(Settings(database_url=dataset_url))
    try:
        migrate.upgrade(db)
        return create_key(db, name=f"bench {scope}", scope=scope, now_us=now_us(system_clock))[1]
    finally:
        db.dispose()


@dataclass
class Served:
    """A ``tokenledger serve`` process and a client holding a key for it."""

    server: ServerProcess
    client: httpx.Client

    @property
    def pid(self) -> int:
        assert self.server.process is not None
        return self.server.process.pid


@contextmanager
def serve(ctx: Context, dataset_url: str, *, scope: str = "report:read") -> Iterator[Served]:
    key = api_key(dataset_url, scope)
    with (
        ServerProcess(dataset_url, ctx.log_dir) as server,
        httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=600,
        ) as client,
    ):
        yield Served(server, client)


def rss_kib(pid: int) -> dict[str, int]:
    """Current (VmRSS) and peak (VmHWM) resident memory of ``pid`` in KiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in {"VmRSS", "VmHWM"}:
            found[name] = int(value.split()[0])
    return found
