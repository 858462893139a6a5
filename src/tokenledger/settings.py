"""Every setting of TokenLedger, read from ``TOKENLEDGER_*`` environment variables.

The README's settings table is checked against this class by a test, so a new field
needs a line there too.
"""

from __future__ import annotations

from functools import cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration of one TokenLedger instance."""

    model_config = SettingsConfigDict(env_prefix="TOKENLEDGER_", extra="ignore")

    database_url: str = Field(
        "sqlite:///./tokenledger.db",
        description=(
            "SQLAlchemy URL of the database. SQLite file by default; "
            "`postgresql+psycopg://user:pass@host/db` for PostgreSQL."
        ),
    )
    timezone: str = Field(
        "UTC",
        description="IANA time zone used for reports when a request does not name one.",
    )
    host: str = Field("127.0.0.1", description="Address `tokenledger serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `tokenledger serve` listens on.")
    workers: int = Field(
        1, ge=1, le=64, description="Web server processes `serve` starts (one per core is typical)."
    )
    sqlite_synchronous: str = Field(
        "FULL",
        description=(
            "SQLite `synchronous` pragma: FULL (acknowledged events survive power loss) "
            "or NORMAL (faster; survives a crash of the process, not of the machine)."
        ),
    )
    sqlite_busy_timeout_ms: int = Field(
        10000, ge=0, description="How long a SQLite writer waits for the write lock (ms)."
    )
    pool_size: int = Field(
        8,
        ge=1,
        description="Database connections kept per process (on a SQLite file, as many "
        "again for the events export's reads, with a small page cache).",
    )
    max_body_bytes: int = Field(
        5 * 1024 * 1024, ge=1024, description="Largest accepted ingest request body (bytes)."
    )
    max_batch_events: int = Field(
        1000, ge=1, description="Largest number of events in one ingest request."
    )
    body_timeout_s: float = Field(
        30.0, gt=0, description="Seconds a client may take to send a request body (408 after)."
    )
    header_timeout_s: int = Field(
        10,
        ge=1,
        description=(
            "Seconds a client may take to send a request's line and headers, from "
            "connecting or from its previous answer (408 and the connection is closed after)."
        ),
    )
    keep_alive_s: int = Field(
        5, ge=1, description="Seconds an idle HTTP keep-alive connection is kept open."
    )
    max_connections: int = Field(
        1000, ge=10, description="Concurrent connections served; more get HTTP 503 at once."
    )
    max_connections_per_client: int = Field(
        100,
        ge=1,
        description=(
            "Concurrent connections from one client address; more get HTTP 429 at once. "
            "Trusted proxies are not capped."
        ),
    )
    future_tolerance_s: int = Field(
        300, ge=0, description="How far in the future `started_at` may be (seconds)."
    )
    otel_user_attributes: str = Field(
        "user.id,enduser.id,langfuse.user.id,gen_ai.request.user",
        description=(
            "Comma-separated span (then resource) attributes naming the person of an "
            "OpenTelemetry GenAI span, first present wins; without one, usage is counted "
            "under `service:<service.name>`."
        ),
    )
    admin_email: str = Field(
        "admin@localhost",
        description="E-mail of the first admin, created by `serve` when no enabled admin exists.",
    )
    admin_password: SecretStr = Field(
        SecretStr(""),
        description=(
            "Password of that first admin (12+ characters). Empty: one is generated and "
            "printed once to the terminal."
        ),
    )
    session_idle_timeout_s: int = Field(
        1800, ge=60, description="A console session ends after this many seconds without use."
    )
    session_lifetime_s: int = Field(
        43200, ge=60, description="A console session ends this many seconds after sign-in."
    )
    secure_cookies: Literal["auto", "always", "never"] = Field(
        "auto",
        description=(
            "`auto`: the session cookie is `Secure` (and `__Host-` prefixed) when the request "
            "came over HTTPS; `always` or `never` force it."
        ),
    )
    trusted_proxies: str = Field(
        "",
        description=(
            "Comma-separated addresses or networks of reverse proxies whose "
            "`X-Forwarded-Proto`, `X-Forwarded-For` and `X-Forwarded-Host` are believed."
        ),
    )
    sign_in_account_limit: int = Field(
        10, ge=1, description="Failed sign-ins per e-mail in the window before refusing more."
    )
    sign_in_client_limit: int = Field(
        50, ge=1, description="Failed sign-ins per client address in the window before refusing."
    )
    max_password_hashes: int = Field(
        2,
        ge=1,
        le=64,
        description=(
            "Password hashes (Argon2id, 19 MiB each) computed at once per process; more "
            "wait their turn (up to 10 s, then HTTP 503)."
        ),
    )
    sign_in_window_s: int = Field(
        900, ge=1, description="The window (seconds) in which failed sign-ins are counted."
    )
    # Single sign-on (OpenID Connect); docs/sso.md explains each setting.
    oidc_issuer: str = Field(
        "",
        description=(
            "Issuer URL of the OpenID Connect provider, exactly as its discovery document "
            "states it. Empty: single sign-on is off. HTTPS (plain HTTP only on loopback)."
        ),
    )
    oidc_client_id: str = Field("", description="Client id registered at the provider.")
    oidc_client_secret: SecretStr = Field(
        SecretStr(""), description="Client secret registered at the provider."
    )
    oidc_provider_name: str = Field(
        "SSO", description='Name on the sign-in button: "Sign in with <name>".'
    )
    oidc_scopes: str = Field(
        "openid email profile",
        description="Scopes asked for, space-separated; must include `openid`.",
    )
    oidc_groups_claim: str = Field(
        "groups",
        description=(
            "Claim holding the person's groups (a dotted path such as `realm_access.roles` "
            "reaches into an object)."
        ),
    )
    oidc_admin_groups: str = Field(
        "", description="Comma-separated groups whose members sign in as `admin`."
    )
    oidc_viewer_groups: str = Field(
        "", description="Comma-separated groups whose members sign in as `viewer`."
    )
    oidc_allowed_domains: str = Field(
        "",
        description=(
            "Comma-separated e-mail domains allowed to sign in with the provider; "
            "empty: any domain."
        ),
    )
    oidc_require_verified_email: bool = Field(
        True,
        description="Refuse ID tokens whose `email_verified` claim is not true.",
    )
    local_sign_in: bool = Field(
        True,
        description=(
            "Whether accounts may sign in with a password. `false` (needs single sign-on) "
            "leaves only the break-glass admin."
        ),
    )
    break_glass_admin: str = Field(
        "",
        description=(
            "E-mail of the one local admin who may still sign in with a password when "
            "local sign-in is off (at `/sign-in?local=1`)."
        ),
    )
    gateway_config: str = Field(
        "",
        description=(
            "Path of the gateway's TOML file of upstreams (name, kind, base URL, the "
            "environment variable holding the upstream key, optional model allow-list). "
            "Empty: no upstream; see docs/gateway.md."
        ),
    )
    gateway_timeout_s: float = Field(
        600,
        gt=0,
        description=(
            "Seconds the gateway waits for an upstream (to connect: at most 10) and "
            "between two pieces of its answer; after that the client gets 504."
        ),
    )
    gateway_upstream_connections: int = Field(
        1000,
        ge=1,
        description="Connections to the upstreams a process keeps open at most (all together).",
    )
    retention_days: int | None = Field(
        None,
        ge=1,
        description=(
            "Delete raw events that started more than this many whole UTC days ago "
            "(`serve` hourly, or `tokenledger retention run`); rollups and every report "
            "are kept. Empty: keep every event forever. See docs/operations.md."
        ),
    )
    erasure_key: SecretStr = Field(
        SecretStr(""),
        description=(
            "Server secret for the pseudonyms of erased people (`tokenledger people "
            "erase`): at least 32 characters, never changed once used. Empty: erasure "
            "is refused. See docs/operations.md."
        ),
    )
    # Budget alerts (docs/budgets.md).
    public_url: str = Field(
        "http://127.0.0.1:8000",
        description="Address people open TokenLedger at; alerts link to a person's page there.",
    )
    alert_sweep_s: float = Field(
        30,
        gt=0,
        description=(
            "Seconds between two sweeps of the budgets for threshold crossings (each "
            "commit's people are checked at once; a sweep reads the people whose usage "
            "moved since, everyone at start-up, after a budget change and every 10th)."
        ),
    )
    alert_retry_base_s: float = Field(
        30,
        gt=0,
        description=(
            "First wait before an alert delivery is tried again; it doubles on each failure "
            "(at most one hour), for 24 hours."
        ),
    )
    alert_send_timeout_s: float = Field(
        10,
        gt=0,
        description=(
            "Seconds one alert delivery may take (webhook answer, SMTP exchange); a process "
            "that dies while sending leaves the alert to be tried again after twice that."
        ),
    )
    smtp_host: str = Field("", description="SMTP server for e-mail alerts; empty: no e-mail.")
    smtp_port: int = Field(587, ge=1, le=65535, description="Port of the SMTP server.")
    smtp_starttls: bool = Field(True, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_user: str = Field("", description="SMTP user name; empty: no login.")
    smtp_password: SecretStr = Field(SecretStr(""), description="SMTP password.")
    smtp_from: str = Field("tokenledger@localhost", description="Sender address of e-mail alerts.")
    # Alert channels set here replace those of the same kind on the Budgets page.
    alert_webhook_url: str = Field(
        "",
        description=(
            "Webhook every budget alert is posted to (signed with the secret below); set, "
            "it replaces the webhooks added on the Budgets page."
        ),
    )
    alert_webhook_secret: SecretStr = Field(
        SecretStr(""),
        description="Signing secret of the settings' webhook (at least 16 characters).",
    )
    alert_slack_url: str = Field(
        "",
        description=(
            "Slack-compatible incoming webhook for alert text; set, it replaces the Slack "
            "channels added on the Budgets page."
        ),
    )
    alert_email_to: str = Field(
        "",
        description=(
            "Comma-separated addresses e-mailed every alert over the SMTP server above; "
            "set, they replace the e-mail channels added on the Budgets page."
        ),
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info",
        description=(
            "Least severe log lines `serve` writes (JSON, one per line, on standard error): "
            "`info` includes one line per request."
        ),
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("sqlite_synchronous")
    @classmethod
    def _synchronous_mode(cls, value: str) -> str:
        mode = value.upper()
        if mode not in {"FULL", "NORMAL", "EXTRA"}:
            raise ValueError("must be FULL, NORMAL or EXTRA")
        return mode

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        proxy_networks(value)
        return value

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        value = value.strip()
        if value:
            parts = urlsplit(value)
            loopback = parts.hostname in {"localhost", "127.0.0.1", "::1"}
            if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
                raise ValueError("must be an https:// URL (http:// only on a loopback address)")
            if parts.query or parts.fragment:
                raise ValueError("must not have a query or fragment")
        return value

    @field_validator("oidc_provider_name")
    @classmethod
    def _provider_name(cls, value: str) -> str:
        return " ".join(value.split())[:60] or "SSO"

    @field_validator("break_glass_admin")
    @classmethod
    def _break_glass_email(cls, value: str) -> str:
        value = value.strip().lower()
        if value and "@" not in value:
            raise ValueError("must be the e-mail address of a local admin account")
        return value

    @field_validator("erasure_key")
    @classmethod
    def _erasure_key(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (or empty: no erasure)")
        return value

    @property
    def erasure_key_bytes(self) -> bytes | None:
        """The erasure key as bytes (None when unset)."""
        return self.erasure_key.get_secret_value().encode() or None

    @model_validator(mode="after")
    def _single_sign_on(self) -> Settings:
        if not self.oidc_issuer:
            if not self.local_sign_in:
                raise ValueError(
                    "local_sign_in can only be turned off when single sign-on is configured "
                    "(TOKENLEDGER_OIDC_ISSUER), or nobody could sign in"
                )
            return self
        if not self.oidc_client_id.strip():
            raise ValueError("oidc_client_id is required with oidc_issuer")
        if "openid" not in self.oidc_scopes.split():
            raise ValueError("oidc_scopes must include openid")
        if not (split_list(self.oidc_admin_groups) or split_list(self.oidc_viewer_groups)):
            raise ValueError(
                "oidc_admin_groups or oidc_viewer_groups must name at least one group, "
                "or nobody could sign in with the provider"
            )
        return self

    @model_validator(mode="after")
    def _alert_channels(self) -> Settings:
        for name in ("alert_webhook_url", "alert_slack_url"):
            url = getattr(self, name)
            if url and not url.startswith(("https://", "http://")):
                raise ValueError(f"{name} must be an http(s) URL")
        if self.alert_webhook_url and len(self.alert_webhook_secret.get_secret_value()) < 16:
            raise ValueError(
                "alert_webhook_secret (at least 16 characters) is required with alert_webhook_url"
            )
        for address in split_list(self.alert_email_to):
            if "@" not in address or len(address) > 320:
                raise ValueError(f"alert_email_to: {address[:40]!r} is not an e-mail address")
        if split_list(self.alert_email_to) and not self.smtp_host:
            raise ValueError("alert_email_to needs an SMTP server (smtp_host)")
        return self

    @property
    def sso_enabled(self) -> bool:
        return bool(self.oidc_issuer)

    @property
    def otel_user_attribute_names(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.otel_user_attributes.split(",") if name.strip())

    @property
    def trusted_proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return proxy_networks(self.trusted_proxies)


def split_list(value: str) -> tuple[str, ...]:
    """``"a, b,,c"`` as ``("a", "b", "c")``."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


@cache
def proxy_networks(value: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """``"10.0.0.1, 192.168.0.0/16"`` as networks (ValueError naming a bad entry)."""
    networks = []
    for part in value.split(","):
        if part.strip():
            try:
                networks.append(ip_network(part.strip(), strict=False))
            except ValueError as exc:
                raise ValueError(f"not an address or network: {part.strip()!r}") from exc
    return tuple(networks)
