"""Budgets: the check API's latency, and what budgets cost ingest.

Check: three budgets (everyone: tokens a month, block; everyone: requests a day;
one person's own monthly tokens) are added to the main dataset for the step and
removed after it; one client asks ``GET /api/v1/budgets/check`` for up to 1,000 people of
the dataset (every tenth call the heaviest person's, who has all three budgets), one
after the other (each answer read), ``repetitions x 50`` times after a warm-up. A
figure is one request's time over HTTP (all calls, and the heaviest person's alone).
Each check is followed by a ``/healthz`` call to the same server, whose times are the
floor of the HTTP stack and of the machine at that moment (on a shared machine the
p95 is mostly other processes' doing), and the server's CPU time during the checks
is reported per check (from /proc: a noise-proof measure of the work a check costs).
The checks start once the server's alert thread has logged its start-up sweep of
everyone's budgets (a second of work at 10,000 people, once per start; later sweeps
read only the people whose usage moved), whose duration is reported.

Ingest: native HTTP ingest as in the ingest step (4 clients, batches of 1000) into two
empty databases, one without budgets and one with the same three, rounds interleaved so
that a noisy minute hurts both alike; the ratio of their median rates is reported (the
after-commit crossing check runs in the server's alert thread, beside the writes).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx2 as httpx
from sqlalchemy import text

from bench.context import Context, Served, serve
from bench.progress import say
from bench.stats import summarize
from bench.steps.ingest import CLIENTS, _events, _native_bodies, _post_all
from tokenledger.budgets.check import Budgets
from tokenledger.settings import Settings
from tokenledger.store.database import open_database
from tokenledger.store.usage_store import UsageStore

CHECKS_PER_REPETITION = 50


def run(ctx: Context) -> dict[str, Any]:
    return {"status": "ok", "check": check_latency(ctx), "ingest": ingest_ratio(ctx)}


@contextmanager
def three_budgets(url: str, person: str) -> Iterator[list[int]]:
    """Three budgets in database ``url`` while the block runs (deleted after it)."""
    db = open_database(Settings(database_url=url))
    budgets = Budgets(UsageStore(db))
    common = {"scope_value": None, "timezone": "Europe/Paris", "thresholds": None}
    specs: list[dict[str, Any]] = [
        {
            **common,
            "name": "bench month",
            "scope": "everyone",
            "metric": "tokens",
            "limit": 50_000_000,
            "period": "month",
            "action": "block",
        },
        {
            **common,
            "name": "bench day",
            "scope": "everyone",
            "metric": "requests",
            "limit": 5_000,
            "period": "day",
            "action": "alert",
        },
        {
            **common,
            "name": "bench person",
            "scope": "person",
            "scope_value": person,
            "metric": "tokens",
            "limit": 90_000_000,
            "period": "month",
            "action": "block",
        },
    ]
    made = [budgets.create(actor="bench", client=None, now_us=0, **spec).id for spec in specs]
    try:
        yield made
    finally:
        for budget_id in made:
            budgets.delete(budget_id, actor="bench", client=None, now_us=0)
        db.dispose()


def _people(url: str, count: int) -> list[str]:
    """The heaviest person of the dataset (most events) first, then ``count - 1``
    others drawn at random."""
    db = open_database(Settings(database_url=url))
    try:
        with db.read() as conn:
            found = [row[0] for row in conn.execute(text("SELECT external_id FROM users"))]
            heaviest = conn.execute(
                text(
                    "SELECT u.external_id FROM users u JOIN (SELECT user_pk, count(*) AS n "
                    "FROM events GROUP BY user_pk ORDER BY n DESC LIMIT 1) top "
                    "ON top.user_pk = u.id"
                )
            ).scalar()
    finally:
        db.dispose()
    if heaviest is None:
        return []
    others = [user_id for user_id in found if user_id != heaviest]
    return [heaviest, *random.Random(7).sample(others, min(count - 1, len(others)))]


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _first_sweep_s(log_path: Path, timeout_s: float = 600) -> float:
    """Wait for the server's start-up sweep of everyone's budgets (its alert thread
    logs it) and return how long it took: the checks are timed in steady state, not
    beside that one-off second of work."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            if "budget alerts: swept everyone in" in line:
                return float(line.split("swept everyone in ", 1)[1].split(" s", 1)[0])
        time.sleep(0.2)
    raise RuntimeError(f"no sweep of everyone logged within {timeout_s} s in {log_path}")


def check_latency(ctx: Context) -> dict[str, Any]:
    people = _people(ctx.main.url, 1000)
    if not people:
        return {"status": "no_people"}
    calls = ctx.options.repetitions * CHECKS_PER_REPETITION
    say(f"Budgets: {calls} checks over HTTP, 3 budgets")
    samples: list[float] = []
    heaviest: list[float] = []
    floor: list[float] = []
    cpu_s = 0.0
    with three_budgets(ctx.main.url, people[0]), serve(ctx, ctx.main.url, scope="ingest") as served:
        startup_sweep_s = _first_sweep_s(served.server.log_path)
        for number in range(calls + CHECKS_PER_REPETITION):  # the first 50 warm up
            # Every tenth call is the heaviest person's (with the three budgets).
            user_id = people[0] if number % 10 == 0 else people[number % len(people)]
            cpu_before = _cpu_s(served.pid)
            begin = time.perf_counter()
            answer = served.client.get("/api/v1/budgets/check", params={"user_id": user_id})
            elapsed = (time.perf_counter() - begin) * 1000
            cpu_used = _cpu_s(served.pid) - cpu_before
            if answer.status_code != 200 or len(answer.json()["budgets"]) < 2:
                raise RuntimeError(f"check answered {answer.status_code}: {answer.text[:300]}")
            # The same server's floor at the same moment: a request that reads nothing.
            begin = time.perf_counter()
            served.client.get("/healthz").raise_for_status()
            floor_ms = (time.perf_counter() - begin) * 1000
            if number >= CHECKS_PER_REPETITION:
                samples.append(elapsed)
                floor.append(floor_ms)
                cpu_s += cpu_used
                if user_id == people[0]:
                    heaviest.append(elapsed)
    return {
        "budgets": 3,
        "people": len(people),
        "request_ms": summarize(samples),
        "heaviest_request_ms": summarize(heaviest),
        "healthz_ms": summarize(floor),
        "server_cpu_ms_per_check": round(cpu_s * 1000 / calls, 2),
        "startup_sweep_s": startup_sweep_s,
    }


def ingest_ratio(ctx: Context) -> dict[str, Any]:
    options = ctx.options
    rounds = options.repetitions
    batch = options.ingest_batch
    per_client = max(1, -(-(options.ingest_events // 4) // (rounds * CLIENTS * batch)))
    per_round = CLIENTS * per_client
    bodies = _native_bodies(_events(ctx, (rounds + 1) * per_round * batch, seed_offset=5), batch)
    say(f"Budgets: ingest with 3 budgets and none, {rounds} rounds of {per_round * batch:,}")
    rates: dict[str, list[float]] = {"none": [], "three": []}
    with ExitStack() as stack:
        servers: dict[str, Served] = {}
        for name in rates:
            url = ctx.backend.fresh(f"budgets-ingest-{name}")
            servers[name] = stack.enter_context(serve(ctx, url, scope="ingest"))
            if name == "three":
                stack.enter_context(three_budgets(url, "bench-person"))
        pool = stack.enter_context(ThreadPoolExecutor(CLIENTS))
        post = partial(
            _post_all, path="/api/v1/events", content_type="application/json", batch=batch
        )
        for number in range(rounds + 1):  # round 0 warms up
            mine = bodies[number * per_round : (number + 1) * per_round]
            for name, served in servers.items():
                clients = [
                    httpx.Client(
                        base_url=served.server.url, headers=dict(served.client.headers), timeout=600
                    )
                    for _ in range(CLIENTS)
                ]
                try:
                    begin = time.perf_counter()
                    futures = [
                        pool.submit(post, clients[i], mine[i::CLIENTS]) for i in range(CLIENTS)
                    ]
                    for future in futures:
                        future.result()
                    elapsed = time.perf_counter() - begin
                finally:
                    for client in clients:
                        client.close()
                if number:
                    rates[name].append(per_round * batch / elapsed)
    none, three = summarize(rates["none"], digits=0), summarize(rates["three"], digits=0)
    return {
        "events_per_round": per_round * batch,
        "none_events_per_s": none,
        "three_budgets_events_per_s": three,
        "ratio_three_to_none": round(three["median"] / none["median"], 3),
    }
