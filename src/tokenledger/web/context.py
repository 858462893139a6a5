"""What request handlers need, built once per app by ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass, field

from tokenledger.auth.oidc import OidcClient, ProviderConfig
from tokenledger.clock import Clock
from tokenledger.observability.metrics import Metrics, create_metrics
from tokenledger.settings import Settings
from tokenledger.store.database import Database
from tokenledger.store.group_commit import GroupCommit
from tokenledger.store.usage_store import UsageStore


@dataclass
class AppContext:
    settings: Settings
    db: Database
    clock: Clock
    metrics: Metrics = field(default_factory=create_metrics)
    # Hashes of ``metrics`` keys found valid (accepted while the database is down).
    metrics_keys_seen: set[bytes] = field(default_factory=set)
    # Usage data: events, users, rollups (``db`` also holds accounts, keys, audit).
    store: UsageStore = field(init=False)
    # Ingest requests that arrive together share one commit.
    writes: GroupCommit = field(init=False)
    # The identity provider, when single sign-on is configured (its discovery document
    # and keys are cached here, per process).
    oidc: OidcClient | None = field(init=False)

    def __post_init__(self) -> None:
        self.store = UsageStore(self.db)
        self.writes = GroupCommit(self.store, observer=self.metrics.group_committed)
        config = ProviderConfig.from_settings(self.settings)
        self.oidc = OidcClient(config, clock=self.clock) if config else None
