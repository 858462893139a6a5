"""The gateway with the real budgets (the default gate): a person over a ``block``
budget is refused in process, until the limit is raised or a new period begins."""

from __future__ import annotations

from typing import Any

import pytest

from tests.budgets.conftest import create, spend
from tests.gateway.test_gateway_app import CHAT, REQUEST
from tests.support.clock import FrozenClock
from tokenledger.budgets.check import Budgets
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore


@pytest.fixture
def budgets(db: Database) -> Budgets:
    return Budgets(UsageStore(db))


@pytest.fixture
def blocked_gateway(make_gateway: Any, db: Database, budgets: Budgets) -> Any:
    create(budgets, name="hard", limit=100_000, action="block")
    return make_gateway()


def test_the_gateway_refuses_a_person_over_a_block_budget_until_it_is_raised(
    blocked_gateway: Any, db: Database, budgets: Budgets, clock: FrozenClock
) -> None:
    spend(db, "emp-9", "2026-11-25T11:00:00+00:00", 99_999)
    headers = {"Authorization": f"Bearer {blocked_gateway.person_key('emp-9')}"}
    assert blocked_gateway.client.post(CHAT, json=REQUEST, headers=headers).status_code == 200
    refused = blocked_gateway.client.post(CHAT, json=REQUEST, headers=headers)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == str(int(5.5 * 86400))
    error = refused.json()["error"]
    assert error["code"] == "budget_exceeded"
    assert error["budget"]["limit"] == 100_000
    assert error["budget"]["period_end"] == "2026-12-01T00:00:00+00:00"
    clock.set("2026-12-01T00:00:00+00:00")  # a new period unblocks at its midnight
    assert blocked_gateway.client.post(CHAT, json=REQUEST, headers=headers).status_code == 200
