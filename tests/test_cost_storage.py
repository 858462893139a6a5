"""Cost in the event contract and in storage: ``cost_usd`` validated, each event's exact
cost and its source stored, summed in every rollup level, checked by ``verify``."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from sqlalchemy import text

from tests.conftest import make_event
from tokenledger.events import Event, Rejection, validate_event
from tokenledger.ingest import ingest
from tokenledger.store import migrate
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore

NOW_US = 2**62


@pytest.mark.parametrize(
    ("sent", "nanos"),
    [
        ("0.0123", 12_300_000),
        ("0", 0),
        (0, 0),
        (3, 3_000_000_000),
        (0.00022500000000000002, 225_000),  # LiteLLM's float: its shortest spelling
        ("0.0000000005", 0),  # half a nano-dollar: half to even
        ("0.0000000015", 2),
        ("1000000", 10**15),
        ("12.345678912345", 12_345_678_912),
    ],
)
def test_a_reported_cost_is_kept_to_the_nano_dollar(sent: Any, nanos: int) -> None:
    event = validate_event(make_event(cost_usd=sent), now_us=NOW_US)
    assert isinstance(event, Event)
    assert (event.reported_cost_nanos, event.cost_nanos, event.cost_source) == (
        nanos,
        nanos,
        "reported",
    )


@pytest.mark.parametrize(
    ("sent", "code", "message"),
    [
        ("-0.1", "invalid_value", "cost_usd: must be a decimal number of US dollars"),
        (-1, "out_of_range", "cost_usd: must be >= 0"),
        ("abc", "invalid_value", "cost_usd: must be a decimal number of US dollars"),
        ("1e-3", "invalid_value", "cost_usd: must be a decimal number of US dollars"),
        (" 1", "invalid_value", "cost_usd: must be a decimal number of US dollars"),
        ("NaN", "invalid_value", "cost_usd: must be a decimal number of US dollars"),
        (1e308, "out_of_range", "cost_usd: must be at most 1000000"),
        ("1000000.000000001", "out_of_range", "cost_usd: must be at most 1000000"),
        (True, "invalid_type", "cost_usd: must be a decimal string or a number"),
        ([1], "invalid_type", "cost_usd: must be a decimal string or a number"),
        ({"usd": 1}, "invalid_type", "cost_usd: must be a decimal string or a number"),
    ],
)
def test_a_bad_cost_is_refused_naming_the_field(sent: Any, code: str, message: str) -> None:
    rejection = validate_event(make_event(cost_usd=sent), now_us=NOW_US)
    assert isinstance(rejection, Rejection)
    assert len(rejection.errors) == 1
    assert (rejection.code, rejection.field) == (code, "cost_usd")
    assert rejection.message.startswith(message)


def test_the_reported_cost_is_part_of_the_content() -> None:
    plain = validate_event(make_event(event_id="e"), now_us=NOW_US)
    costed = validate_event(make_event(event_id="e", cost_usd="0.01"), now_us=NOW_US)
    same = validate_event(make_event(event_id="e", cost_usd=0.01), now_us=NOW_US)
    assert isinstance(plain, Event)
    assert isinstance(costed, Event)
    assert isinstance(same, Event)
    assert plain.content_hash != costed.content_hash
    assert costed.content_hash == same.content_hash  # "0.01" and 0.01 are one cost


def _stored(db: Database) -> dict[str, tuple[int | None, str]]:
    with db.read() as conn:
        rows = conn.execute(text("SELECT event_id, cost_nanos, cost_source FROM events"))
        return {row[0]: (row[1], row[2]) for row in rows}


def _rollup_sums(db: Database, store: UsageStore) -> set[tuple[str, int, int]]:
    found = set()
    with db.read() as conn:
        for level in store.levels:
            prefix = "cum_" if level.grain.running else ""
            sql = (
                f"SELECT sum({prefix}cost_nanos), sum({prefix}unpriced_requests) FROM {level.table}"
            )
            if level.grain.running:  # the running total of each key's last day
                same = " AND ".join(
                    f"t.{key} = {level.table}.{key}" for key in level.rollup.key_columns
                )
                sql += f" WHERE day = (SELECT max(day) FROM {level.table} AS t WHERE {same})"
            cost, unpriced = conn.execute(text(sql)).one()
            found.add((level.table, int(cost), int(unpriced)))
    return found


def test_each_event_stores_its_cost_and_source_and_every_rollup_sums_them(
    db: Database,
) -> None:
    store = UsageStore(db)
    events = [
        # gpt-4o in the catalogue: $2.50 per million input, $10 per million output:
        # 1000 x 2.5 + 100 x 10 = 3500 per million = $0.0035.
        make_event(event_id="cat", input_tokens=1000, output_tokens=100),
        make_event(event_id="rep", cost_usd="0.5", model="no-such-model"),
        make_event(event_id="unk", model="no-such-model", provider="nowhere"),
        make_event(event_id="none", model=None, provider=None, user={"id": "u-bo"}),
    ]
    assert ingest(store, events, now_us=NOW_US).count("accepted") == 4
    assert _stored(db) == {
        "cat": (3_500_000, "catalogue"),
        "rep": (500_000_000, "reported"),
        "unk": (None, "unpriced"),
        "none": (None, "unpriced"),
    }
    assert _rollup_sums(db, store) == {(level.table, 503_500_000, 2) for level in store.levels}
    assert not any(store.verify().values())
    with db.write() as conn:
        conn.execute(text("UPDATE rollup_user_hour SET unpriced_requests = 0"))
        conn.execute(text("UPDATE rollup_total_quarter SET cost_nanos = cost_nanos + 1"))
    differences = store.verify()
    assert differences["rollup_user_hour"] > 0
    assert differences["rollup_total_quarter"] > 0
    store.rebuild()
    assert not any(store.verify().values())


def test_the_migration_counts_events_stored_before_it_as_unpriced(db: Database) -> None:
    store = UsageStore(db)
    events = [make_event(event_id=f"e{i}", cost_usd="0.25") for i in range(3)]
    assert ingest(store, events, now_us=NOW_US).count("accepted") == 3
    config = migrate.alembic_config()
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0006")
    migrate.upgrade(db)
    assert _stored(db) == {f"e{i}": (None, "unpriced") for i in range(3)}
    assert _rollup_sums(db, store) == {(level.table, 0, 3) for level in store.levels}
    assert not any(store.verify().values())
