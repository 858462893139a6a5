"""Every setting of TokenLedger, read from ``TOKENLEDGER_*`` environment variables.

The README's settings table is checked against this class by a test, so a new field
needs a line there too.
"""

from __future__ import annotations

from functools import cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
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
    pool_size: int = Field(8, ge=1, description="Database connections kept per process.")
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
    future_tolerance_s: int = Field(
        300, ge=0, description="How far in the future `started_at` may be (seconds)."
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
    sign_in_window_s: int = Field(
        900, ge=1, description="The window (seconds) in which failed sign-ins are counted."
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

    @property
    def trusted_proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return proxy_networks(self.trusted_proxies)


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
