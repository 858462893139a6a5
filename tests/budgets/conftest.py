"""Budgets on the test's database, and usage put in it at given instants."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.conftest import make_event
from tokenledger.budgets.check import Budgets
from tokenledger.budgets.model import Budget
from tokenledger.ingest import ingest
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore

_ids = itertools.count()
FAR_FUTURE_US = 4_102_444_800_000_000  # 2100: every test instant is in the past


@pytest.fixture
def budgets(db: Database) -> Budgets:
    return Budgets(UsageStore(db))


def spend(db: Database, user_id: str, started_at: str, tokens: int, **more: Any) -> None:
    """One event of ``tokens`` input tokens by ``user_id`` at ``started_at`` (``more``:
    other fields, e.g. ``cost_usd``; ``team`` and ``department`` go to the user)."""
    user = {"id": user_id}
    for attribute in ("team", "department"):
        if attribute in more:
            user[attribute] = more.pop(attribute)
    event = make_event(
        event_id=f"spend-{next(_ids)}",
        user=user,
        started_at=started_at,
        input_tokens=tokens,
        output_tokens=0,
        **more,
    )
    result = ingest(UsageStore(db), [event], now_us=FAR_FUTURE_US)
    assert result.count("accepted") == 1, result


def create(budgets: Budgets, **changes: Any) -> Budget:
    given: dict[str, Any] = {
        "name": "monthly tokens",
        "scope": "everyone",
        "scope_value": None,
        "metric": "tokens",
        "limit": 1000,
        "period": "month",
        "timezone": "UTC",
        "thresholds": None,
        "action": "alert",
        **changes,
    }
    return budgets.create(actor="tests", client=None, now_us=0, **given)
