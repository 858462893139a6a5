"""Item 1: ingest throughput over HTTP and through ``tokenledger import``.

HTTP: one ``tokenledger serve`` process on an empty database, 4 clients posting
batches of 1000 events to ``/api/v1/events`` at the same time; then the same, on
another empty database, as OTLP GenAI spans (protobuf, 1000 spans per request) to
``/v1/traces``. Bodies are encoded
before the clock starts. A repetition is a round in which each client posts its share
of batches; its rate is the round's events over the round's wall time (the slowest
client ends it, so the figure errs low). Every answer must accept all 1000 events.

Import: ``tokenledger import`` of JSON Lines files, one process per file, into one
database that grows as a back-fill would. A file's rate includes the start of the
process, which is measured on its own (an empty file) and reported beside it. Then
the same events shuffled (each file spans the whole year, like a back-fill merged
from several logs) into another empty database: the ratio of the two medians.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from bench.context import Context, serve
from bench.generate import Generator
from bench.progress import say
from bench.stats import percentile, summarize

CLIENTS = 4
BATCH = 1000


def run(ctx: Context) -> dict[str, Any]:
    return {
        "status": "ok",
        "http": http_ingest(ctx),
        "otlp": otlp_ingest(ctx),
        "import": file_import(ctx),
    }


def _events(ctx: Context, count: int, seed_offset: int) -> list[dict[str, Any]]:
    options = ctx.options
    generator = Generator(
        events=count,
        users=options.users,
        seed=options.seed + seed_offset,
        days=options.days,
        end=datetime.now(UTC),
    )
    return list(generator.events())


def http_ingest(ctx: Context) -> dict[str, Any]:
    """Native events, ``POST /api/v1/events``."""
    return _http_rounds(ctx, "ingest-http", "/api/v1/events", "application/json", _native_bodies)


def otlp_ingest(ctx: Context) -> dict[str, Any]:
    """The same events as OTLP GenAI spans, ``POST /v1/traces`` (protobuf, 1000 spans
    per request), measured like native ingest in the same run."""
    return _http_rounds(ctx, "ingest-otlp", "/v1/traces", "application/x-protobuf", otlp_bodies)


def _native_bodies(events: list[dict[str, Any]], batch: int = BATCH) -> list[bytes]:
    return [
        orjson.dumps({"events": events[start : start + batch]})
        for start in range(0, len(events), batch)
    ]


def _span(event: dict[str, Any], number: int) -> Span:
    start_ns = int(datetime.fromisoformat(event["started_at"]).timestamp()) * 10**9
    attributes = {
        "user.id": event["user"]["id"],
        "user.name": event["user"].get("name"),
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": event.get("provider"),
        "gen_ai.request.model": event.get("model"),
        "gen_ai.usage.input_tokens": event["input_tokens"],
        "gen_ai.usage.output_tokens": event["output_tokens"],
        "gen_ai.usage.cache_read.input_tokens": event.get("cache_read_tokens"),
    }
    return Span(
        trace_id=number.to_bytes(16, "big"),
        span_id=(number + 1).to_bytes(8, "big"),
        name="chat",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start_ns,
        end_time_unix_nano=start_ns + event["duration_ms"] * 1_000_000,
        attributes=[
            KeyValue(
                key=key,
                value=AnyValue(int_value=value)
                if isinstance(value, int)
                else AnyValue(string_value=value),
            )
            for key, value in attributes.items()
            if value is not None
        ],
    )


def otlp_bodies(events: list[dict[str, Any]], batch: int = BATCH) -> list[bytes]:
    """``ExportTraceServiceRequest``s of ``batch`` spans, as an exporter would send them."""
    bodies = []
    for start in range(0, len(events), batch):
        spans = [_span(event, start + n) for n, event in enumerate(events[start : start + batch])]
        request = ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    resource=Resource(
                        attributes=[
                            KeyValue(key="service.name", value=AnyValue(string_value="bench"))
                        ]
                    ),
                    scope_spans=[ScopeSpans(scope=InstrumentationScope(name="bench"), spans=spans)],
                )
            ]
        )
        bodies.append(request.SerializeToString())
    return bodies


def _http_rounds(
    ctx: Context,
    database: str,
    path: str,
    content_type: str,
    encode: Callable[[list[dict[str, Any]], int], list[bytes]],
) -> dict[str, Any]:
    options = ctx.options
    rounds = options.repetitions
    batch = options.ingest_batch
    per_client = max(1, -(-options.ingest_events // (rounds * CLIENTS * batch)))
    per_round = CLIENTS * per_client
    bodies = encode(_events(ctx, (rounds + 1) * per_round * batch, seed_offset=1), batch)
    url = ctx.backend.fresh(database)
    latencies: list[float] = []
    rates: list[float] = []
    say(f"HTTP {path}: {CLIENTS} clients, {rounds} rounds of {per_round * batch:,} events")
    post = partial(_post_all, path=path, content_type=content_type, batch=batch)
    with serve(ctx, url, scope="ingest") as served, ThreadPoolExecutor(CLIENTS) as pool:
        clients = [
            httpx.Client(
                base_url=served.server.url, headers=dict(served.client.headers), timeout=600
            )
            for _ in range(CLIENTS)
        ]
        try:
            for number in range(rounds + 1):  # round 0 warms up
                mine = bodies[number * per_round : (number + 1) * per_round]
                begin = time.perf_counter()
                futures = [pool.submit(post, clients[i], mine[i::CLIENTS]) for i in range(CLIENTS)]
                round_latencies = [ms for future in futures for ms in future.result()]
                elapsed = time.perf_counter() - begin
                if number:
                    latencies += round_latencies
                    rates.append(per_round * batch / elapsed)
        finally:
            for client in clients:
                client.close()
    return {
        "clients": CLIENTS,
        "batch_size": batch,
        "events": rounds * per_round * batch,
        "events_per_s": summarize(rates, digits=0),
        "request_ms": summarize(latencies),
    }


def _post_all(
    client: httpx.Client, bodies: list[bytes], *, path: str, content_type: str, batch: int
) -> list[float]:
    latencies = []
    for body in bodies:
        begin = time.perf_counter()
        response = client.post(path, content=body, headers={"Content-Type": content_type})
        latencies.append((time.perf_counter() - begin) * 1000)
        if response.status_code != 200 or not _all_stored(response, content_type, batch):
            raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:300]}")
    return latencies


def _all_stored(response: httpx.Response, content_type: str, batch: int) -> bool:
    if content_type == "application/x-protobuf":  # no partial_success: every span stored
        answer = ExportTraceServiceResponse.FromString(response.content)
        return not answer.HasField("partial_success")
    return bool(orjson.loads(response.content)["accepted"] == batch)


def file_import(ctx: Context) -> dict[str, Any]:
    """The files in time order, then the same events in random order (a back-fill of
    a gateway's log, a merge of several sources) into another empty database."""
    options = ctx.options
    events = _events(ctx, options.repetitions * options.import_events, seed_offset=2)
    ordered = _import_files(ctx, events, "ingest-import", "in time order")
    random.Random(options.seed).shuffle(events)
    shuffled = _import_files(ctx, events, "ingest-import-random", "in random order")
    return {
        **ordered,
        "random_order": shuffled,
        "random_vs_time_order": round(
            shuffled["events_per_s"]["median"] / ordered["events_per_s"]["median"], 2
        ),
    }


def _import_files(
    ctx: Context, events: list[dict[str, Any]], database: str, order: str
) -> dict[str, Any]:
    options = ctx.options
    files = options.repetitions
    folder = options.data_dir / "import"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(files):
        path = folder / f"events-{number:02d}.jsonl"
        chunk = events[number * options.import_events : (number + 1) * options.import_events]
        path.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in chunk))
        paths.append(path)
    empty = folder / "empty.jsonl"
    empty.write_bytes(b"")
    url = ctx.backend.fresh(database)
    say(f"Import: {files} files of {options.import_events:,} events, {order}")
    startup = [_import(url, empty) for _ in range(3)]
    seconds = [_import(url, path) for path in paths]
    start_s = percentile(startup, 0.5)
    rates = [options.import_events / s for s in seconds]
    # Without the start: only meaningful when a file takes well beyond it.
    work_s = percentile(seconds, 0.5) - start_s
    net = round(options.import_events / work_s) if work_s > start_s else None
    for path in [*paths, empty]:
        path.unlink()
    return {
        "files": files,
        "events_per_file": options.import_events,
        "events_per_s": summarize(rates, digits=0),
        "median_events_per_s_without_startup": net,
        "process_startup_s": round(start_s, 2),
    }


def _import(url: str, path: Path) -> float:
    begin = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tokenledger", "--database-url", url, "import", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - begin
    if done.returncode != 0:
        raise RuntimeError(f"tokenledger import failed ({done.returncode}): {done.stderr[-500:]}")
    return elapsed
