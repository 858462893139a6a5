"""The budget check the gateway makes before forwarding a request (the seam for the
budgets of issue 15).

The gateway asks a :class:`BudgetGate` about the person; a refusal is answered 429
with the provider-shaped ``budget_exceeded`` error, the budget and when it resets, and
``Retry-After``. Until budgets exist, :class:`AllowAll` lets everything through; the
budgets module provides the real gate, given to ``create_app(budget_gate=...)``.

A gate of the gateway's own database (:class:`SharedReadGate`) reads in the
transaction that found the caller's key: one transaction per request instead of two.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tokenledger.capture.contract import rfc3339_from_us

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from tokenledger.store.database import Database


@dataclass(frozen=True)
class BudgetInfo:
    """The budget that refused a request, as the error body shows it."""

    id: str
    metric: str  # "tokens", "requests", "cost_usd"...
    limit: int | Decimal
    used: int | Decimal
    period_start_us: int
    period_end_us: int  # when it resets

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "metric": self.metric,
            "limit": _number(self.limit),
            "used": _number(self.used),
            "period_start": rfc3339_from_us(self.period_start_us),
            "period_end": rfc3339_from_us(self.period_end_us),
        }


def _number(value: int | Decimal) -> int | str:
    """Counts as JSON integers, money as decimal strings (never a float)."""
    return value if isinstance(value, int) else str(value)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: int | None = None  # seconds to the period's end, when refused
    budget: BudgetInfo | None = None


ALLOWED = Decision(allowed=True)


class BudgetGate(Protocol):
    """Whether ``user_id`` may make a request now. Called from a worker thread (it may
    read the database), before anything is forwarded."""

    def check(self, user_id: str, *, now_us: int) -> Decision: ...


@runtime_checkable
class SharedReadGate(BudgetGate, Protocol):
    """A gate that can also read in a transaction already open on its database ``db``
    (the one in which the gateway found the caller's key)."""

    @property
    def db(self) -> Database: ...

    def check_in(self, conn: Connection, user_id: str, *, now_us: int) -> Decision:
        """:meth:`check`, read in ``conn``'s (read-only) transaction."""
        ...


class AllowAll:
    """No budgets: every request may go."""

    def check(self, user_id: str, *, now_us: int) -> Decision:
        return ALLOWED
