"""``tokenledger prices list|set|delete`` and ``tokenledger reprice``: audited, exact,
and after a reprice ``verify`` is clean and reports show the new cost."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text

from tests.conftest import make_event
from tests.test_cli import run
from tokenledger import prices
from tokenledger.auth import audit
from tokenledger.ingest import ingest
from tokenledger.localdays import LocalRange, zone
from tokenledger.reports import user_usage
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore

NOW_US = 2**62


def test_prices_set_list_delete_are_audited(database_url: str, db: Database) -> None:
    code, _, err = run(
        database_url,
        *("prices", "set", "--model", "llama-70b", "--from", "2026-11-01"),
        *("--input", "0.20", "--output", "0.6", "--cache-read", "0.05"),
    )
    assert code == 0, err
    assert "tokenledger reprice --from 2026-11-01 --model llama-70b" in err
    code, out, _ = run(database_url, "prices", "list")
    assert code == 0
    assert "llama-70b" in out
    assert "= input" in out  # no cache-write price: cache writes cost as input
    [price] = prices.list_prices(db)
    assert price.json() == {
        "id": 1,
        "model": "llama-70b",
        "provider": None,
        "valid_from": "2026-11-01",
        "input_per_million_usd": "0.2",
        "cache_read_per_million_usd": "0.05",
        "cache_write_per_million_usd": None,
        "output_per_million_usd": "0.6",
    }
    code, _, err = run(database_url, "prices", "delete", "1")
    assert (code, err.strip()) == (0, "Price 1 (llama-70b from 2026-11-01) is deleted.")
    assert run(database_url, "prices", "delete", "1")[0] == 2
    actions = [entry.action for entry in audit.entries(db, limit=10)]
    assert actions == [audit.PRICE_DELETED, audit.PRICE_SET]
    [deleted] = audit.entries(db, action=audit.PRICE_DELETED)
    assert deleted.details["price"]["input_per_million_usd"] == "0.2"


def test_a_bad_price_is_refused_naming_the_field(database_url: str, db: Database) -> None:
    code, _, err = run(
        database_url,
        *("prices", "set", "--model", "m", "--from", "2026-11-01"),
        *("--input", "0.0000000001", "--output", "1"),
    )
    assert (code, err.strip()) == (2, "error: input: has more than 9 decimal places (nano-dollars)")
    code, _, err = run(
        database_url, "prices", "set", "--model", "m", "--from", "2026-13-01", "--input", "1",
        "--output", "-1",
    )  # fmt: skip
    assert code == 2
    assert err.startswith("error: valid_from: must be a date YYYY-MM-DD")
    assert audit.entries(db) == []


def test_reprice_applies_a_new_price_rewrites_rollups_and_audits_totals(
    database_url: str, db: Database
) -> None:
    store = UsageStore(db)
    events = [
        # Unknown to the catalogue: unpriced until an own price exists.
        make_event(event_id="a", model="llama-70b", started_at="2026-11-20T10:00:00Z",
                   input_tokens=1_000_000, output_tokens=500_000),
        make_event(event_id="b", model="llama-70b", started_at="2026-11-24T23:00:00Z",
                   input_tokens=2_000_000, output_tokens=0),
        make_event(event_id="c", model="llama-70b", started_at="2026-11-25T01:00:00Z",
                   input_tokens=10, output_tokens=10, cost_usd="1.5"),
    ]  # fmt: skip
    assert ingest(store, events, now_us=NOW_US).count("accepted") == 3
    day = LocalRange.of(date(2026, 11, 20), date(2026, 11, 25), zone("Asia/Kathmandu"))
    before = user_usage(store, local_range=day).totals.json_values()
    assert (before["cost_usd"], before["unpriced_requests"]) == ("1.500000000", 2)

    assert run(
        database_url,
        *("prices", "set", "--model", "llama-70b", "--from", "2026-11-21"),
        *("--input", "0.20", "--output", "0.60"),
    )[0] == 0  # fmt: skip
    code, _, err = run(database_url, "reprice", "--from", "2026-11-21", "--model", "llama-70b")
    assert code == 0, err
    # Only "b" is on or after 2026-11-21 and priced from prices: 2,000,000 x $0.20/M.
    assert "1 events repriced, 1 changed. Cost 0.000000000 -> 0.400000000 USD" in err
    after = user_usage(store, local_range=day).totals.json_values()
    assert (after["cost_usd"], after["unpriced_requests"]) == ("1.900000000", 1)
    assert not any(store.verify().values())
    assert run(database_url, "verify")[0] == 0
    [entry] = audit.entries(db, action=audit.REPRICED)
    assert entry.details == {
        "from": "2026-11-21",
        "model": "llama-70b",
        "events": 1,
        "changed": 1,
        "before": {"cost_usd": "0.000000000", "unpriced_requests": 1},
        "after": {"cost_usd": "0.400000000", "unpriced_requests": 0},
    }
    with db.read() as conn:
        found = dict(conn.execute(text("SELECT event_id, cost_source FROM events")).all())
    assert found == {"a": "unpriced", "b": "own_price", "c": "reported"}

    # From the first day, "a" is still unpriced (the price starts on the 21st).
    assert run(database_url, "reprice", "--from", "2026-11-01")[0] == 0
    assert user_usage(store, local_range=day).totals.json_values()["unpriced_requests"] == 1
    assert not any(store.verify().values())
