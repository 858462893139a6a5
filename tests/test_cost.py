"""What requests cost, computed here independently of the product: the catalogue's
published prices per million tokens typed in as constants, own prices, reported costs
and unknown models, in a +05:45 zone across local midnights, on both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from genai_prices import Usage, calc_price
from sqlalchemy import text

from tests.conftest import make_event
from tokenledger import prices
from tokenledger.ingest import ingest
from tokenledger.localdays import LocalRange, zone
from tokenledger.reports import user_usage
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore

NOW_US = 2**62
KATHMANDU = zone("Asia/Kathmandu")  # +05:45: local midnight is 18:15 UTC
MILLION = Decimal(1_000_000)


def nanos(dollars: Decimal) -> int:
    exact = dollars * 10**9
    assert exact == exact.to_integral_value(), "these cases have no sub-nano-dollar part"
    return int(exact)


# The catalogue's published prices (US dollars per million tokens), typed from it.
GPT_4O = {"input": Decimal("2.50"), "cached": Decimal("1.25"), "output": Decimal("10")}
SONNET_4 = {
    "input": Decimal("3"),
    "read": Decimal("0.30"),
    "write": Decimal("3.75"),
    "output": Decimal("15"),
}
O3_BEFORE_2025_06_10 = {"input": Decimal("10"), "output": Decimal("40")}
O3_FROM_2025_06_10 = {"input": Decimal("2"), "output": Decimal("8")}
# An own price for gpt-4o at OpenAI from 2026-11-25 (UTC) on.
OWN_GPT_4O = {"input": Decimal("2.00"), "cached": Decimal("0.50"), "output": Decimal("8")}

# OpenAI, cached input: 10,000 input tokens of which 4,000 cached, 1,000 output.
OPENAI_CACHED = nanos(
    (6000 * GPT_4O["input"] + 4000 * GPT_4O["cached"] + 1000 * GPT_4O["output"]) / MILLION
)
# Anthropic: 20,000 input of which 12,000 cache reads and 3,000 cache writes, 500 output.
ANTHROPIC_CACHE = nanos(
    (
        5000 * SONNET_4["input"]
        + 12000 * SONNET_4["read"]
        + 3000 * SONNET_4["write"]
        + 500 * SONNET_4["output"]
    )
    / MILLION
)
# Reasoning: 1,000 input, 3,000 output of which 2,500 reasoning (billed as output).
REASONING = nanos(
    (1000 * O3_FROM_2025_06_10["input"] + 3000 * O3_FROM_2025_06_10["output"]) / MILLION
)
O3_OLD = nanos(
    (1000 * O3_BEFORE_2025_06_10["input"] + 1000 * O3_BEFORE_2025_06_10["output"]) / MILLION
)
O3_NEW = nanos((1000 * O3_FROM_2025_06_10["input"] + 1000 * O3_FROM_2025_06_10["output"]) / MILLION)
OWN = nanos(
    (6000 * OWN_GPT_4O["input"] + 4000 * OWN_GPT_4O["cached"] + 1000 * OWN_GPT_4O["output"])
    / MILLION
)
REPORTED = 123_456_789


def test_the_constants_are_what_they_say() -> None:
    assert (OPENAI_CACHED, ANTHROPIC_CACHE, REASONING) == (30_000_000, 37_350_000, 26_000_000)
    assert (O3_OLD, O3_NEW, OWN) == (50_000_000, 10_000_000, 22_000_000)


def _event(event_id: str, started_at: str, **fields: Any) -> dict[str, Any]:
    return make_event(
        event_id=event_id, user={"id": "u-np", "name": "Nima"}, started_at=started_at, **fields
    )


EVENTS = [
    # Local 2026-11-24 23:55 in Kathmandu.
    _event("openai-cached", "2026-11-24T18:10:00Z", model="gpt-4o", provider="openai",
           input_tokens=10_000, cache_read_tokens=4_000, output_tokens=1_000),
    # Local 2026-11-24 23:59:59.
    _event("reasoning", "2026-11-24T18:14:59Z", model="o3", provider="openai",
           input_tokens=1_000, output_tokens=3_000, reasoning_tokens=2_500),
    # Local 2026-11-25 00:05.
    _event("anthropic-cache", "2026-11-24T18:20:00Z", model="claude-sonnet-4",
           provider="anthropic", input_tokens=20_000, cache_read_tokens=12_000,
           cache_write_tokens=3_000, output_tokens=500),
    # Local 2026-11-25 06:15, UTC 2026-11-25: the own price applies.
    _event("own-price", "2026-11-25T00:30:00Z", model="gpt-4o", provider="openai",
           input_tokens=10_000, cache_read_tokens=4_000, output_tokens=1_000),
    # Reported: its cost, whatever the prices.
    _event("reported", "2026-11-25T00:31:00Z", model="gpt-4o", provider="openai",
           cost_usd="0.123456789"),
    # A model no price covers: unpriced, not free.
    _event("unknown", "2026-11-24T18:17:00Z", model="acme-llm-1", provider="acme"),
    # o3's price changed on 2025-06-10 (UTC): both sides fall on local 2025-06-10.
    _event("o3-old", "2025-06-09T18:25:00Z", model="o3", provider="openai",
           input_tokens=1_000, output_tokens=1_000),
    _event("o3-new", "2025-06-10T00:05:00Z", model="o3", provider="openai",
           input_tokens=1_000, output_tokens=1_000),
]  # fmt: skip

EXPECTED = {
    "openai-cached": (OPENAI_CACHED, "catalogue"),
    "reasoning": (REASONING, "catalogue"),
    "anthropic-cache": (ANTHROPIC_CACHE, "catalogue"),
    "own-price": (OWN, "own_price"),
    "reported": (REPORTED, "reported"),
    "unknown": (None, "unpriced"),
    "o3-old": (O3_OLD, "catalogue"),
    "o3-new": (O3_NEW, "catalogue"),
}


@pytest.fixture
def store(db: Database) -> UsageStore:
    own = prices.parse_price(
        {
            "model": "gpt-4o",
            "provider": "openai",
            "valid_from": "2026-11-25",
            "input": "2.00",
            "cache_read": "0.50",
            "output": "8",
        }
    )
    prices.set_price(db, own, now_us=0, actor="tests")
    store = UsageStore(db)
    assert ingest(store, EVENTS, now_us=NOW_US).count("accepted") == len(EVENTS)
    return store


def _local(start: str, end: str) -> LocalRange:
    return LocalRange.of(date.fromisoformat(start), date.fromisoformat(end), KATHMANDU)


def _cost(store: UsageStore, start: str, end: str) -> tuple[str, int]:
    totals = user_usage(store, local_range=_local(start, end)).totals.json_values()
    return str(totals["cost_usd"]), int(totals["unpriced_requests"])


def test_each_event_costs_what_its_prices_say(store: UsageStore) -> None:
    with store.db.read() as conn:
        found = {
            row[0]: (row[1], row[2])
            for row in conn.execute(text("SELECT event_id, cost_nanos, cost_source FROM events"))
        }
    assert found == EXPECTED


def test_reports_in_a_545_zone_sum_the_event_costs_across_local_midnights(
    store: UsageStore,
) -> None:
    assert _cost(store, "2026-11-24", "2026-11-24") == ("0.056000000", 0)
    assert _cost(store, "2026-11-25", "2026-11-25") == ("0.182806789", 1)
    assert _cost(store, "2026-11-24", "2026-11-25") == ("0.238806789", 1)
    # Both sides of o3's price change fall on local 2025-06-10.
    assert _cost(store, "2025-06-10", "2025-06-10") == ("0.060000000", 0)
    assert _cost(store, "2025-06-09", "2025-06-09") == ("0.000000000", 0)
    report = user_usage(store, local_range=_local("2026-11-24", "2026-11-25"))
    [row] = report.rows
    assert row.usage.json_values()["cost_usd"] == "0.238806789"
    assert row.usage["unpriced_requests"] == 1


@pytest.mark.parametrize(
    ("model", "provider", "usage", "when", "expected"),
    [
        ("gpt-4o", "openai", Usage(input_tokens=10_000, cache_read_tokens=4_000,
         output_tokens=1_000), "2026-11-24", OPENAI_CACHED),
        ("claude-sonnet-4", "anthropic", Usage(input_tokens=20_000, cache_read_tokens=12_000,
         cache_write_tokens=3_000, output_tokens=500), "2026-11-24", ANTHROPIC_CACHE),
        ("o3", "openai", Usage(input_tokens=1_000, output_tokens=3_000), "2026-11-24", REASONING),
        ("o3", "openai", Usage(input_tokens=1_000, output_tokens=1_000), "2025-06-09", O3_OLD),
        ("o3", "openai", Usage(input_tokens=1_000, output_tokens=1_000), "2025-06-10", O3_NEW),
    ],
)  # fmt: skip
def test_genai_prices_counts_tokens_as_the_event_contract_does(
    model: str, provider: str, usage: Usage, when: str, expected: int
) -> None:
    """The package's own calc_price: input includes cache reads and writes, output
    includes reasoning (the claim the catalogue's use rests on)."""
    moment = datetime.fromisoformat(f"{when}T12:00:00").replace(tzinfo=UTC)
    price = calc_price(usage, model, provider_id=provider, genai_request_timestamp=moment)
    assert price.total_price * 10**9 == expected


def test_an_own_price_without_cache_prices_counts_cache_tokens_as_input(db: Database) -> None:
    price = prices.parse_price(
        {"model": "local-llama", "valid_from": "2026-01-01", "input": "0.1", "output": "0.3"}
    )
    prices.set_price(db, price, now_us=0, actor="tests")
    store = UsageStore(db)
    events = [
        _event("before", "2025-12-31T23:59:59Z", model="local-llama", provider="vllm"),
        _event("after", "2026-01-01T00:00:00Z", model="local-llama", provider="vllm",
               input_tokens=1_000, cache_read_tokens=600, cache_write_tokens=100,
               output_tokens=7),
    ]  # fmt: skip
    assert ingest(store, events, now_us=NOW_US).count("accepted") == 2
    with db.read() as conn:
        found = dict(conn.execute(text("SELECT event_id, cost_nanos FROM events")).all())
    # 1,000 x $0.10 + 7 x $0.30 per million = $0.0001021; nothing before its date.
    assert found == {"before": None, "after": 102_100}


@pytest.mark.parametrize(
    ("input_tokens", "expected"),
    [
        # claude-sonnet-4-6 before 2026-03-13: $3 input and $15 output per million up
        # to 200,000 input tokens; past that, $6 and $22.50 for all the tokens.
        (200_000, nanos((200_000 * Decimal(3) + 1_000 * Decimal(15)) / MILLION)),
        (200_001, nanos((200_001 * Decimal(6) + 1_000 * Decimal("22.5")) / MILLION)),
        (250_000, nanos((250_000 * Decimal(6) + 1_000 * Decimal("22.5")) / MILLION)),
        (1, nanos((1 * Decimal(3) + 1_000 * Decimal(15)) / MILLION)),
    ],
)
def test_a_tiered_price_applies_its_tier_to_every_token(
    db: Database, input_tokens: int, expected: int
) -> None:
    store = UsageStore(db)
    event = _event(
        "tiered",
        "2026-01-15T12:00:00Z",
        model="claude-sonnet-4-6",
        provider="anthropic",
        input_tokens=input_tokens,
        output_tokens=1_000,
    )
    assert ingest(store, [event], now_us=NOW_US).count("accepted") == 1
    with db.read() as conn:
        assert conn.execute(text("SELECT cost_nanos FROM events")).scalar_one() == expected
