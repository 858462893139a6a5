"""What a mapping hands over: an event as ``POST /api/v1/events`` takes it, or why not.

The mappings may also produce values the event contract does not accept yet; they are
computed and tested, and dropped here until the contract has them: enabling one is
removing its name from :data:`PENDING_FIELDS` (LiteLLM's ``response_cost`` as
``cost_usd`` and the key's team as ``user.team`` were the first; both are taken now).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tokenledger.events import Rejection

PENDING_FIELDS: frozenset[str] = frozenset()

RawEvent = dict[str, Any]
Mapped = RawEvent | Rejection

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_contract(event: RawEvent) -> RawEvent:
    """``event`` without the fields in :data:`PENDING_FIELDS` (``user.x`` names a
    field of ``user``)."""
    kept = {name: value for name, value in event.items() if name not in PENDING_FIELDS}
    user = kept.get("user")
    if isinstance(user, dict):
        kept["user"] = {
            name: value for name, value in user.items() if f"user.{name}" not in PENDING_FIELDS
        }
    return kept


def rfc3339_from_us(epoch_us: int) -> str:
    """An instant in microseconds since the epoch as RFC 3339 in UTC."""
    return (_EPOCH + timedelta(microseconds=epoch_us)).isoformat()


def rejection(field: str, message: str, *, code: str = "invalid_value") -> Rejection:
    return Rejection.one(code, field, message)
