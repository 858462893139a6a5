"""Item 8: the gateway's overhead, against a fake provider on this machine.

The fake provider (``tests/support/fake_upstream.py``) runs in a process of its own
and answers at once; ``tokenledger serve`` (one process, a fresh database, SQLite
``FULL``) forwards to it. Each figure is measured twice in the same run, interleaved:
straight to the fake, and through the gateway, so the difference is what the gateway
adds (its key check, the budget check, forwarding and metering; the event is
committed right after the answer ends, docs/gateway.md, so its commit is in neither
figure, only in the CPU the server has left for the next request):

- a non-streaming Chat Completions request: the whole answer, one after the other;
- a streamed one: the time to the first byte of the answer (the rest is read too);
- ``--gateway-streams`` (500) streams at once, each of 9 events 20 ms apart: every one
  must complete with the whole text and no error, and the ledger must then hold
  one event per request sent through the gateway.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx2 as httpx
import orjson
from sqlalchemy import func, select
from tests.support.fake_upstream import PIECES
from tests.support.server import ServerProcess

from bench.context import Context
from bench.progress import say
from bench.stats import percentile, ratio, summarize
from tokenledger.auth.keys import create_key
from tokenledger.settings import Settings
from tokenledger.store import migrate
from tokenledger.store.database import open_database
from tokenledger.store.schema import events

BODY: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
STREAM_BODY = {**BODY, "stream": True}
PACED_BODY = {**STREAM_BODY, "model": "gpt-4o-paced"}  # events EVENT_GAP_S apart
EVENT_GAP_S = 0.02
WARMUP = 20
PERSON = "bench-gateway-person"
KEY_ENV = "TL_BENCH_UPSTREAM_KEY"  # given to the server below


@contextmanager
def _fake_upstream() -> Iterator[str]:
    """The fake provider in its own process; yields its OpenAI base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_upstream", str(EVENT_GAP_S)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(15)


def _database(ctx: Context) -> tuple[str, str]:
    """A fresh database with a person's gateway key; returns its URL and the key."""
    url = ctx.backend.fresh("gateway")
    db = open_database(Settings(database_url=url))
    try:
        migrate.upgrade(db)
        key = create_key(db, name="", scope="gateway", user_id=PERSON, now_us=0)[1]
    finally:
        db.dispose()
    return url, key


def _recorded(url: str) -> int:
    db = open_database(Settings(database_url=url))
    try:
        with db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar_one())
    finally:
        db.dispose()


def _recorded_soon(url: str, count: int, timeout_s: float = 30) -> int:
    """The events stored once there are ``count`` (each is stored just after its
    answer ended), or when ``timeout_s`` is up."""
    deadline = time.monotonic() + timeout_s
    while (found := _recorded(url)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def run(ctx: Context) -> dict[str, Any]:
    url, key = _database(ctx)
    config = ctx.options.data_dir / "gateway.toml"
    with _fake_upstream() as upstream:
        config.write_text(
            f'[[upstreams]]\nname = "fake"\nkind = "openai"\nbase_url = "{upstream}"\n'
            f'key_env = "{KEY_ENV}"\n'
        )
        with ServerProcess(
            url,
            ctx.log_dir,
            TOKENLEDGER_GATEWAY_CONFIG=str(config),
            TL_BENCH_UPSTREAM_KEY="sk-bench",
            # The benchmark's streams all come from this one address.
            TOKENLEDGER_MAX_CONNECTIONS_PER_CLIENT=str(ctx.options.gateway_streams + 100),
        ) as server:
            gateway = f"{server.url}/gateway/openai/v1"
            headers = {"Authorization": f"Bearer {key}"}
            recorded_before = _recorded(url)
            plain = _latency(ctx, upstream, gateway, headers, _plain)
            first_byte = _latency(ctx, upstream, gateway, headers, _first_byte)
            concurrent = _concurrent(ctx, upstream, gateway, headers)
            expected = plain["n"] + first_byte["n"] + 2 * WARMUP + concurrent["streams"]
            recorded = _recorded_soon(url, recorded_before + expected) - recorded_before
    concurrent["recorded"] = recorded
    concurrent["recorded_all"] = recorded == expected
    return {"status": "ok", "plain": plain, "first_byte": first_byte, "concurrent": concurrent}


def _plain(client: httpx.Client, base: str) -> float:
    """Milliseconds to the whole answer."""
    begin = time.perf_counter()
    answer = client.post(f"{base}/chat/completions", json=BODY)
    elapsed = (time.perf_counter() - begin) * 1000
    if answer.status_code != 200:
        raise RuntimeError(f"{answer.status_code}: {answer.text[:200]}")
    return elapsed


def _first_byte(client: httpx.Client, base: str) -> float:
    """Milliseconds to the first byte of a streamed answer (which is then read whole)."""
    begin = time.perf_counter()
    with client.stream("POST", f"{base}/chat/completions", json=STREAM_BODY) as answer:
        chunks = answer.iter_raw()
        next(chunks)
        elapsed = (time.perf_counter() - begin) * 1000
        for _ in chunks:
            pass
    if answer.status_code != 200:
        raise RuntimeError(f"stream answered {answer.status_code}")
    return elapsed


def _latency(
    ctx: Context,
    upstream: str,
    gateway: str,
    headers: dict[str, str],
    request: Callable[[httpx.Client, str], float],
) -> dict[str, Any]:
    """Milliseconds of ``request`` straight and through the gateway, interleaved (one
    of each in turn, so that a noisy moment hurts both)."""
    count = ctx.options.gateway_requests
    name = request.__name__.strip("_").replace("_", " ")
    say(f"Gateway: {count} requests ({name}), straight and through the gateway")
    samples: dict[str, list[float]] = {"direct": [], "gateway": []}
    with httpx.Client(timeout=60) as direct, httpx.Client(timeout=60, headers=headers) as through:
        for repetition in range(WARMUP + count):
            straight, forwarded = request(direct, upstream), request(through, gateway)
            if repetition >= WARMUP:
                samples["direct"].append(straight)
                samples["gateway"].append(forwarded)
    added = [g - d for g, d in zip(samples["gateway"], samples["direct"], strict=True)]
    return {
        "n": count,
        "direct_ms": summarize(samples["direct"], digits=3),
        "gateway_ms": summarize(samples["gateway"], digits=3),
        "added_ms": summarize(added, digits=3),
        "added_p95_ms": round(
            percentile(samples["gateway"], 0.95) - percentile(samples["direct"], 0.95), 3
        ),
        "ratio_p95": ratio(
            percentile(samples["gateway"], 0.95), percentile(samples["direct"], 0.95)
        ),
    }


def _concurrent(
    ctx: Context, upstream: str, gateway: str, headers: dict[str, str]
) -> dict[str, Any]:
    streams = ctx.options.gateway_streams
    say(f"Gateway: {streams} streams at once, straight and through the gateway")
    direct = asyncio.run(_streams(upstream, {}, streams))
    through = asyncio.run(_streams(gateway, headers, streams))
    return {
        "streams": streams,
        "direct": direct,
        "gateway": through,
        "errors": through["errors"],
        "ratio_wall": ratio(through["wall_s"], direct["wall_s"]),
        "ratio_first_byte_p95": ratio(
            through["first_byte_ms"]["p95"], direct["first_byte_ms"]["p95"]
        ),
    }


async def _streams(base: str, headers: dict[str, str], count: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    first_bytes: list[float] = []
    errors: list[str] = []
    async with httpx.AsyncClient(timeout=120, limits=limits, headers=headers) as client:

        async def one() -> None:
            begin = time.perf_counter()
            try:
                async with client.stream(
                    "POST", f"{base}/chat/completions", json=PACED_BODY
                ) as answer:
                    body = b""
                    async for chunk in answer.aiter_raw():
                        if not body:
                            first_bytes.append((time.perf_counter() - begin) * 1000)
                        body += chunk
                if answer.status_code != 200 or not body.rstrip().endswith(b"[DONE]"):
                    errors.append(f"{answer.status_code}: {body[-200:]!r}")
                elif "".join(PIECES).encode() not in _text_of(body):
                    errors.append("incomplete text")
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

        begin = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        wall = time.perf_counter() - begin
    return {
        "wall_s": round(wall, 3),
        "first_byte_ms": summarize(first_bytes or [0.0], digits=2),
        "errors": len(errors),
        "error_samples": errors[:3],
    }


def _text_of(body: bytes) -> bytes:
    """The concatenated ``content`` deltas of a Chat Completions stream."""
    text = []
    for line in body.split(b"\n"):
        if line.startswith(b"data: {"):
            for choice in orjson.loads(line[6:]).get("choices", []):
                text.append(choice.get("delta", {}).get("content") or "")
    return "".join(text).encode()
