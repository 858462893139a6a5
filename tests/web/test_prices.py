"""Admin > Prices and ``/api/v1/prices``: set, list, delete, reprice, each audited; bad
input is a clear error naming the field and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import make_event
from tests.web.signed_in import signed_in_client
from tokenledger import prices
from tokenledger.auth import audit
from tokenledger.store.database import Database


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def admin(app: FastAPI) -> Any:
    with signed_in_client(app, role="admin") as client:
        yield client


def test_the_api_sets_lists_and_deletes_prices_exactly(
    admin: TestClient, get_report: Callable[..., Any], db: Database
) -> None:
    body = {
        "model": "llama-70b",
        "provider": "vllm",
        "valid_from": "2026-11-01",
        "input": "0.000000001",
        "cache_read": 0.1,
        "output": "12.5",
    }
    response = admin.put("/api/v1/prices", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": 1,
        "model": "llama-70b",
        "provider": "vllm",
        "valid_from": "2026-11-01",
        "input_per_million_usd": "0.000000001",
        "cache_read_per_million_usd": "0.1",
        "cache_write_per_million_usd": None,
        "output_per_million_usd": "12.5",
    }
    # Same model, provider and date: replaced, not added.
    assert admin.put("/api/v1/prices", json={**body, "output": "13"}).status_code == 200
    listed = get_report("/api/v1/prices").json()["prices"]
    assert [price["output_per_million_usd"] for price in listed] == ["13"]
    assert admin.delete("/api/v1/prices/1").json()["model"] == "llama-70b"
    assert admin.delete("/api/v1/prices/1").status_code == 404
    actions = [entry.action for entry in reversed(audit.entries(db))]
    assert actions[-3:] == [audit.PRICE_SET, audit.PRICE_SET, audit.PRICE_DELETED]
    replaced = audit.entries(db, action=audit.PRICE_SET)[0]
    assert replaced.details["before"]["output_per_million_usd"] == "12.5"
    assert replaced.details["price"]["output_per_million_usd"] == "13"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"input": "-1"}, "input", "must be a number >= 0"),
        ({"input": "abc"}, "input", "must be a decimal number"),
        ({"output": None}, "output", "is required"),
        ({"cache_write": True}, "cache_write", "must be a decimal number of US dollars"),
        ({"valid_from": "2026-02-30"}, "valid_from", "must be a date YYYY-MM-DD"),
        ({"model": " "}, "model", "is required"),
        ({"model": "a\x00b"}, "model", "must not contain control characters"),
        ({"colour": "red"}, "colour", "is not a known field"),
    ],
)
def test_a_bad_price_is_a_400_naming_the_field(
    admin: TestClient, db: Database, change: dict[str, Any], field: str, message: str
) -> None:
    body = {"model": "m", "valid_from": "2026-11-01", "input": "1", "output": "2", **change}
    response = admin.put("/api/v1/prices", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_price", field)
    assert message in error["message"]
    assert prices.list_prices(db) == []
    assert audit.entries(db, action=audit.PRICE_SET) == []


def test_the_page_sets_a_price_offers_to_reprice_and_reprices(
    admin: TestClient, post_events: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    unknown = make_event(model="llama-70b", provider="vllm", input_tokens=1_000_000)
    assert post_events([unknown]).status_code == 200
    page = admin.get("/admin/prices").text
    assert "llama-70b" in page  # listed among the unpriced models
    form = {
        "model": "llama-70b",
        "provider": "",
        "valid_from": "2026-11-25",
        "input": "0.25",
        "cache_read": "",
        "cache_write": "",
        "output": "1",
    }
    response = admin.post("/admin/prices", data=form, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == (
        "/admin/prices?done=set&from=2026-11-25&model=llama-70b"
    )
    page = admin.get(response.headers["location"]).text
    assert 'name="from_date" type="date" value="2026-11-25"' in page
    assert "The price is saved" in page
    before = get_report(start="2026-11-25", end="2026-11-25", tz="UTC").json()["totals"]
    assert (before["cost_usd"], before["unpriced_requests"]) == ("0.000000000", 1)
    response = admin.post(
        "/admin/prices/reprice",
        data={"from_date": "2026-11-25", "model": "llama-70b"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/admin/prices?done=repriced"
    after = get_report(start="2026-11-25", end="2026-11-25", tz="UTC").json()["totals"]
    # 1,000,000 input tokens x $0.25 per million + 40 output x $1 per million.
    assert (after["cost_usd"], after["unpriced_requests"]) == ("0.250040000", 0)


def test_the_page_shows_a_bad_price_without_saving_it(admin: TestClient, db: Database) -> None:
    form = {"model": "m", "valid_from": "2026-11-01", "input": "1.0000000001", "output": "2"}
    response = admin.post("/admin/prices", data=form)
    assert response.status_code == 400
    assert "input: has more than 9 decimal places" in response.text
    assert 'value="1.0000000001"' in response.text
    assert prices.list_prices(db) == []
    bad_date = admin.post("/admin/prices/reprice", data={"from_date": "yesterday"})
    assert bad_date.status_code == 400
    assert "from_date: must be a date YYYY-MM-DD" in bad_date.text
