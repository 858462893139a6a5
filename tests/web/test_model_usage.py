"""Usage by model: ``GET /api/v1/reports/model-usage``, the ``models`` export and the
page's models table agree with sums computed here from the events."""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import make_event
from tests.web.signed_in import signed_in_client

KATHMANDU = "Asia/Kathmandu"
# Catalogue prices per million tokens (input, output): gpt-4o at OpenAI, o3 at OpenAI
# (after 2025-06-10); "acme-llm" is unknown (unpriced), "house" reports its cost.
PRICES = {("gpt-4o", "openai"): (Decimal("2.5"), Decimal("10")), ("o3", "openai"): (2, 8)}
CHOICES = [("gpt-4o", "openai"), ("o3", "openai"), ("acme-llm", "acme"), ("house", "")]


def _events(count: int) -> list[dict[str, Any]]:
    rng = random.Random(13)
    start = datetime(2026, 11, 20, 12, tzinfo=UTC)
    events = []
    for n in range(count):
        model, provider = rng.choice(CHOICES)
        extra: dict[str, Any] = (
            {"cost_usd": f"0.{rng.randrange(10**6):06d}"} if model == "house" else {}
        )
        events.append(
            make_event(
                event_id=f"m{n}",
                user={
                    "id": f"u{n % 4}",
                    "name": ["Ana", "Bo", "Cy", "Di"][n % 4],
                    **({"team": "Red"} if n % 4 < 2 else {}),
                },
                started_at=(start + timedelta(minutes=20 * n)).isoformat(),
                model=model,
                provider=provider or None,
                input_tokens=rng.randrange(1, 5000),
                output_tokens=rng.randrange(1, 900),
                status=rng.choice(["ok", "ok", "ok", "error"]),
                **extra,
            )
        )
    return events


def _cost_nanos(event: dict[str, Any]) -> int | None:
    if "cost_usd" in event:
        return int(Decimal(event["cost_usd"]) * 10**9)
    rates = PRICES.get((event["model"], event.get("provider") or ""))
    if rates is None:
        return None
    exact = (rates[0] * event["input_tokens"] + rates[1] * event["output_tokens"]) * 1000
    assert exact == int(exact)  # whole nano-dollars for these prices
    return int(exact)


def _expected(
    events: list[dict[str, Any]], day: str, q: str = "", team: str = ""
) -> dict[tuple[str, str], Any]:
    tz = ZoneInfo(KATHMANDU)
    found: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    for event in events:
        local = datetime.fromisoformat(event["started_at"]).astimezone(tz).date().isoformat()
        name = ["Ana", "Bo", "Cy", "Di"][int(event["user"]["id"][1:])]
        if local != day or q.lower() not in name.lower():
            continue
        if team and event["user"].get("team") != team:
            continue
        sums = found[(event["model"], event.get("provider") or "")]
        cost = _cost_nanos(event)
        sums[0] += 1
        sums[1] += event["status"] == "error"
        sums[2] += event["input_tokens"]
        sums[3] += event["output_tokens"]
        sums[4] += cost or 0
        sums[5] += cost is None
    return {
        key: (r, e, i, o, format(Decimal(c).scaleb(-9), "f"), u)
        for key, (r, e, i, o, c, u) in found.items()
    }


def _shown(rows: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    return {
        (row["model"], row["provider"]): (
            int(row["requests"]),
            int(row["error_requests"]),
            int(row["input_tokens"]),
            int(row["output_tokens"]),
            row["cost_usd"],
            int(row["unpriced_requests"]),
        )
        for row in rows
    }


def test_model_report_api_and_export_match_the_events(
    post_events: Callable[..., Any], get_report: Callable[..., Any]
) -> None:
    events = _events(240)
    assert post_events(events).status_code == 200
    cases = [("2026-11-21", "", ""), ("2026-11-22", "bo", ""), ("2026-11-23", "", "Red")]
    for day, q, team in cases:
        params = {"start": day, "end": day, "tz": KATHMANDU, "q": q, "team": team}
        report = get_report("/api/v1/reports/model-usage", **params).json()
        expected = _expected(events, day, q, team)
        assert _shown(report["models"]) == expected
        costs = [Decimal(row["cost_usd"]) for row in report["models"]]
        assert costs == sorted(costs, reverse=True)  # most expensive first
        total = sum(costs)
        assert Decimal(report["totals"]["cost_usd"]) == total
        if total:
            shares = [Decimal(row["cost_share"]) for row in report["models"]]
            assert abs(sum(shares) - 1) <= Decimal("0.0001") * len(shares)
        body = get_report(
            "/api/v1/reports/user-usage/export", granularity="models", **params
        ).content.decode()
        rows = list(csv.DictReader(io.StringIO(body)))
        assert _shown(rows) == expected
        assert [row["model"] for row in rows] == [row["model"] for row in report["models"]]
        assert {row["timezone"] for row in rows} <= {KATHMANDU}
    assert get_report("/api/v1/reports/model-usage", sort="-bogus").status_code == 400


def test_the_page_shows_the_models_table(app: Any, post_events: Callable[..., Any]) -> None:
    events = _events(60)
    assert post_events(events).status_code == 200
    with signed_in_client(app) as viewer:
        page = viewer.get(
            "/reporting/user-usage",
            params={"start": "2026-11-21", "end": "2026-11-21", "tz": KATHMANDU},
        ).text
    assert 'id="models-table"' in page
    expected = _expected(events, "2026-11-21")
    assert len(expected) == 4
    for model, provider in expected:
        assert f'data-model="{model}" data-provider="{provider}"' in page
    assert "Usage by model" in page
