"""What request handlers need, built once per app by ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass, field

from tokenledger.auth.oidc import OidcClient, ProviderConfig
from tokenledger.budgets.check import Budgets
from tokenledger.budgets.service import AlertService
from tokenledger.clock import Clock
from tokenledger.gateway import upstreams
from tokenledger.gateway.budget import BudgetGate
from tokenledger.gateway.forward import UpstreamClient
from tokenledger.gateway.recording import Recorder
from tokenledger.gateway.service import Gateway
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
    # Asked before the gateway forwards a request (default: the budgets below).
    budget_gate: BudgetGate | None = None
    # Usage data: events, users, rollups (``db`` also holds accounts, keys, audit).
    store: UsageStore = field(init=False)
    # Ingest requests that arrive together share one commit.
    writes: GroupCommit = field(init=False)
    # The identity provider, when single sign-on is configured (its discovery document
    # and keys are cached here, per process).
    oidc: OidcClient | None = field(init=False)
    # The metering gateway: its upstreams (from TOKENLEDGER_GATEWAY_CONFIG) and their
    # connection pool.
    gateway: Gateway = field(init=False)
    # Budgets (the check API, the gateway's gate) and the alert thread.
    budgets: Budgets = field(init=False)
    alerts: AlertService = field(init=False)

    def __post_init__(self) -> None:
        self.store = UsageStore(self.db, erasure_key=self.settings.erasure_key_bytes)
        self.budgets = Budgets(self.store)
        self.alerts = AlertService(
            self.budgets,
            settings=self.settings,
            clock=self.clock,
            observer=self.metrics.alert_attempted,
        )
        self.writes = GroupCommit(
            self.store,
            observer=self.metrics.group_committed,
            on_commit=self.alerts.people_committed,
        )
        config = ProviderConfig.from_settings(self.settings)
        self.oidc = OidcClient(config, clock=self.clock) if config else None
        settings = self.settings
        self.gateway = Gateway(
            upstreams=upstreams.load(settings.gateway_config),
            client=UpstreamClient(
                timeout_s=settings.gateway_timeout_s,
                connections=settings.gateway_upstream_connections,
            ),
            budget=self.budget_gate or self.budgets,
            recorder=Recorder(
                self.writes, clock=self.clock, future_tolerance_s=settings.future_tolerance_s
            ),
            db=self.db,
            clock=self.clock,
            observer=self.metrics,
        )
