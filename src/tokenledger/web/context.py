"""What request handlers need, built once per app by ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass, field

from tokenledger.clock import Clock
from tokenledger.settings import Settings
from tokenledger.store.database import Database
from tokenledger.store.group_commit import GroupCommit
from tokenledger.store.usage_store import UsageStore


@dataclass
class AppContext:
    settings: Settings
    db: Database
    clock: Clock
    # Usage data: events, users, rollups (``db`` also holds accounts, keys, audit).
    store: UsageStore = field(init=False)
    # Ingest requests that arrive together share one commit.
    writes: GroupCommit = field(init=False)

    def __post_init__(self) -> None:
        self.store = UsageStore(self.db)
        self.writes = GroupCommit(self.store)
