"""Every setting of TokenLedger, read from ``TOKENLEDGER_*`` environment variables.

The README's settings table is checked against this class by a test, so a new field
needs a line there too.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
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

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
