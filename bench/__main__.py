"""``python -m bench``: build (or reuse) the datasets, measure, write the results.

See docs/benchmarks.md for what is measured and how to read the figures.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench import markdown, results
from bench.backends import Backend, PostgresBackend, SqliteBackend, start_kept_cluster
from bench.context import Context, Options
from bench.datasets import DatasetSpec, ensure
from bench.progress import say
from bench.steps import (
    budgets,
    compare,
    export,
    gateway,
    ingest,
    page,
    person,
    reports,
    scaling,
    search,
)

STEPS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "ingest": ingest.run,
    "reports": reports.run,
    "compare": compare.run,
    "export": export.run,
    "search": search.run,
    "scaling": scaling.run,
    "page": page.run,
    "gateway": gateway.run,
    "person": person.run,
    "budgets": budgets.run,
}
ROOT = results.ROOT


def count(text: str) -> int:
    """``20000``, ``200k``, ``1M``, ``10_000_000``."""
    cleaned = text.strip().replace("_", "").replace(",", "")
    factor = {"k": 1_000, "m": 1_000_000}.get(cleaned[-1:].lower(), 1)
    if factor > 1:
        cleaned = cleaned[:-1]
    try:
        value = int(float(cleaned) * factor)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a count: {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "TokenLedger benchmark: builds a realistic dataset (fixed seed) through the "
            "real ingest path, measures ingest, reports, search, export and scaling, "
            "compares the reports with a plain GROUP BY and DuckDB, and writes "
            "bench/results/<date>-<backend>.json and the tables of docs/benchmarks.md."
        ),
    )
    size = p.add_argument_group("datasets")
    size.add_argument("--events", type=count, default=10_000_000, help="main dataset (10M)")
    size.add_argument("--users", type=count, default=10_000, help="users of the main dataset")
    size.add_argument("--seed", type=int, default=42, help="random seed (42)")
    size.add_argument("--days", type=count, default=365, help="days of usage up to now")
    size.add_argument(
        "--scale-events", type=count, help="smaller dataset for the scaling ratio (events/10)"
    )
    size.add_argument(
        "--search-users", type=count, default=100_000, help="users of the search dataset"
    )
    size.add_argument("--search-events", type=count, help="events of it (= --scale-events)")
    size.add_argument("--rebuild", action="store_true", help="rebuild datasets, never reuse")
    size.add_argument(
        "--prepare", action="store_true", help="only build (or check) the datasets, measure nothing"
    )
    size.add_argument(
        "--copy-from-sqlite",
        dest="copy_from",
        type=Path,
        metavar="DIR",
        help="PostgreSQL: copy a missing dataset from the SQLite one of the same spec in "
        "DIR (built through the ingest path there) instead of building it (bench/copy.py)",
    )
    where = p.add_argument_group("database")
    where.add_argument(
        "--database-url",
        help="PostgreSQL server to use instead of SQLite (the user creates tlbench_* databases)",
    )
    where.add_argument(
        "--postgres",
        action="store_true",
        help="start a local PostgreSQL (kept in DATA_DIR/postgres) instead of SQLite",
    )
    run = p.add_argument_group("measurement")
    run.add_argument("--repetitions", type=count, default=20, help="warm repetitions (20)")
    run.add_argument("--zone", default="Asia/Kolkata", help="report time zone (+05:30)")
    run.add_argument("--ingest-events", type=count, default=240_000, help="HTTP ingest events")
    run.add_argument(
        "--ingest-batch", type=count, default=1000, help="events per ingest request (1000)"
    )
    run.add_argument("--import-events", type=count, default=20_000, help="events per imported file")
    run.add_argument(
        "--gateway-requests", type=count, default=500, help="gateway requests per latency figure"
    )
    run.add_argument(
        "--gateway-streams", type=count, default=500, help="gateway streams at once (500)"
    )
    run.add_argument(
        "--steps",
        default=",".join(STEPS),
        help=f"comma-separated subset of: {', '.join(STEPS)}",
    )
    out = p.add_argument_group("output")
    out.add_argument("--data-dir", type=Path, default=ROOT / "bench" / "data")
    out.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    out.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    out.add_argument("--no-docs", action="store_true", help="leave docs/benchmarks.md alone")
    out.add_argument(
        "--update",
        action="store_true",
        help="merge this run's steps into the newest results of the backend (the others "
        "kept; the tables name the steps re-run, with their commit and date)",
    )
    return p


def _backend(args: argparse.Namespace) -> Backend:
    if args.database_url and args.postgres:
        raise SystemExit("error: --database-url and --postgres exclude each other")
    if args.database_url:
        if not args.database_url.startswith("postgresql"):
            raise SystemExit("error: --database-url must be a postgresql+psycopg:// URL")
        return PostgresBackend(args.database_url)
    if args.postgres:
        cluster = start_kept_cluster(args.data_dir / "postgres")
        return PostgresBackend(cluster.admin_url, cluster)
    return SqliteBackend(args.data_dir)


def _options(args: argparse.Namespace) -> Options:
    scale = args.scale_events or max(1, args.events // 10)
    return Options(
        events=args.events,
        users=args.users,
        seed=args.seed,
        days=args.days,
        repetitions=args.repetitions,
        zone=ZoneInfo(args.zone),
        scale_events=scale,
        search_users=args.search_users,
        search_events=args.search_events or scale,
        ingest_events=args.ingest_events,
        ingest_batch=args.ingest_batch,
        import_events=args.import_events,
        data_dir=args.data_dir,
        rebuild=args.rebuild,
        copy_from=args.copy_from,
        gateway_requests=args.gateway_requests,
        gateway_streams=args.gateway_streams,
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    steps = [name.strip() for name in args.steps.split(",") if name.strip()]
    unknown = set(steps) - set(STEPS)
    if unknown:
        raise SystemExit(f"error: unknown step(s): {', '.join(sorted(unknown))}")
    options = _options(args)
    started = datetime.now(UTC)
    begin = time.monotonic()
    backend = _backend(args)
    try:
        ctx = _datasets(backend, options, steps)
        if args.prepare:
            say("Datasets ready; nothing measured (--prepare).")
            return 0
        outcome = _run_steps(ctx, steps)
        document: dict[str, Any] = {
            "schema": 1,
            "date": started.isoformat(timespec="seconds"),
            "backend": backend.name,
            "backend_version": backend.version(),
            "machine": results.machine(),
            "commit": results.commit(),
            "options": _options_json(options, steps),
            "datasets": {name: data.summary() for name, data in ctx.datasets.items()},
            "steps": outcome,
        }
        document["duration_s"] = round(time.monotonic() - begin)
        if args.update:
            document = results.merged(results.latest(args.results_dir), document)
        document["targets"] = results.targets(document)
    finally:
        backend.close()
    path = results.write_json(document, args.results_dir)
    say(f"Results: {path}")
    if not args.no_docs:
        markdown.update(args.docs, results.latest(args.results_dir))
        say(f"Tables: {args.docs}")
    for target in document["targets"]:
        say(f"  {target['title']}: {target['value']} {target['unit']} (goal {target['goal']})")
    failed = [name for name, step in outcome.items() if step["status"] == "error"]
    if failed:
        say(f"Steps that failed: {', '.join(failed)}")
    return 1 if failed else 0


def _datasets(backend: Backend, options: Options, steps: list[str]) -> Context:
    main_spec = DatasetSpec(options.events, options.users, options.seed, options.days)
    ctx = Context(
        options,
        backend,
        ensure(backend, main_spec, rebuild=options.rebuild, copy_from=options.copy_from),
    )
    ctx.datasets["main"] = ctx.main
    if "scaling" in steps:
        spec = DatasetSpec(options.scale_events, options.users, options.seed, options.days)
        ctx.datasets["scale"] = ensure(
            backend, spec, rebuild=options.rebuild, copy_from=options.copy_from
        )
    if "search" in steps:
        spec = DatasetSpec(options.search_events, options.search_users, options.seed, options.days)
        ctx.datasets["search"] = ensure(
            backend, spec, rebuild=options.rebuild, copy_from=options.copy_from
        )
    return ctx


def _run_steps(ctx: Context, steps: list[str]) -> dict[str, dict[str, Any]]:
    outcome: dict[str, dict[str, Any]] = {}
    for name in steps:
        say(f"Step {name}")
        begin = time.monotonic()
        try:
            outcome[name] = STEPS[name](ctx)
        except Exception as exc:  # one broken step must not lose the others' figures
            traceback.print_exc()
            outcome[name] = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
        outcome[name]["seconds"] = round(time.monotonic() - begin, 1)
    return outcome


def _options_json(options: Options, steps: list[str]) -> dict[str, Any]:
    return {
        "events": options.events,
        "users": options.users,
        "seed": options.seed,
        "days": options.days,
        "repetitions": options.repetitions,
        "zone": options.zone.key,
        "scale_events": options.scale_events,
        "search_users": options.search_users,
        "search_events": options.search_events,
        "ingest_events": options.ingest_events,
        "ingest_batch": options.ingest_batch,
        "import_events": options.import_events,
        "gateway_requests": options.gateway_requests,
        "gateway_streams": options.gateway_streams,
        "steps": steps,
    }


if __name__ == "__main__":
    sys.exit(main())
