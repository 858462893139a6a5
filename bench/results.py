"""Results: the machine, the targets, the JSON file of a run."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Files a run writes itself; changes to them do not make the commit "dirty".
_OUTPUTS = ("bench/results", "docs/benchmarks.md")


def machine() -> dict[str, Any]:
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.partition(":")[2].strip()
            break
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "cpu": cpu,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.rstrip() if done.returncode == 0 else ""

    # Porcelain lines are "XY path": a stripped first line (" M docs/...") lost its
    # first column, and this page's own prose then counted as a change.
    changed = [
        line[3:]
        for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
        if not line[3:].startswith(_OUTPUTS)
    ]
    return {"commit": git("rev-parse", "HEAD") or "unknown", "dirty": bool(changed)}


@dataclass(frozen=True)
class Target:
    id: str
    title: str
    goal: str
    unit: str

    def check(self, results: dict[str, Any]) -> dict[str, Any]:
        value, met, note = _evaluate(self.id, results.get("steps", {}))
        return {
            "id": self.id,
            "title": self.title,
            "goal": self.goal,
            "value": value,
            "unit": self.unit,
            "met": met,
            "note": note,
        }


TARGETS = (
    Target("ingest_http", "Ingest over HTTP (median)", ">= 50,000", "events/s"),
    Target("import_rate", "`tokenledger import`, time order (median)", ">= 100,000", "events/s"),
    Target("import_random", "`tokenledger import`, random vs time order", ">= 0.7", "x"),
    Target("report_p95", "Slowest report p95 over HTTP", "<= 100", "ms"),
    Target("group_by_ratio", "365-day report vs plain GROUP BY (medians)", ">= 20", "x faster"),
    Target(
        "duckdb_ratio",
        "Rollups vs DuckDB scan, every range (worst median ratio)",
        ">= 1",
        "x faster",
    ),
    Target("export_rate", "Events export (median)", ">= 250,000", "rows/s"),
    Target("export_rss", "Server RSS growth during export", "< 100", "MiB"),
    Target("search_p95", "Search p95 over HTTP, 100,000 users", "<= 50", "ms"),
    Target("scaling", "Report latency ratio, large / small (worst median)", "<= 1.5", "x"),
    Target("page", "User Usage page: first rows", "<= 300", "ms"),
    Target("gateway_plain", "Gateway: added latency p95, non-streaming", "<= 5", "ms"),
    Target("gateway_first_byte", "Gateway: added time to first byte p95, streaming", "<= 5", "ms"),
    Target("gateway_streams", "Gateway: concurrent streams without an error", ">= 500", "streams"),
    Target("budget_check_p95", "Budget check API p95 over HTTP, 3 budgets", "<= 5", "ms"),
)


def _missing(step: dict[str, Any] | None) -> tuple[None, None, str] | None:
    if step is None:
        return None, None, "step not run"
    if step.get("status") != "ok":
        return None, None, str(step.get("reason") or step.get("error") or step.get("status"))
    return None


def _evaluate(target: str, steps: dict[str, Any]) -> tuple[float | None, bool | None, str]:
    step_name = {
        "ingest_http": "ingest",
        "import_rate": "ingest",
        "import_random": "ingest",
        "report_p95": "reports",
        "group_by_ratio": "compare",
        "duckdb_ratio": "compare",
        "export_rate": "export",
        "export_rss": "export",
        "search_p95": "search",
        "scaling": "scaling",
        "page": "page",
        "gateway_plain": "gateway",
        "gateway_first_byte": "gateway",
        "gateway_streams": "gateway",
        "budget_check_p95": "budgets",
    }[target]
    step = steps.get(step_name)
    missing = _missing(step)
    if missing is not None:
        return missing
    assert step is not None
    if target == "ingest_http":
        value = step["http"]["events_per_s"]["median"]
        return value, value >= 50_000, ""
    if target == "import_rate":
        value = step["import"]["events_per_s"]["median"]
        net = step["import"]["median_events_per_s_without_startup"]
        return value, value >= 100_000, f"{net or '-'} without the process start"
    if target == "import_random":
        if "random_vs_time_order" not in step["import"]:
            return None, None, "not measured in this run"
        value = step["import"]["random_vs_time_order"]
        return value, value >= 0.7, ""
    if target == "report_p95":
        worst = max(step["reports"], key=lambda row: row["http_ms"]["p95"])
        value = worst["http_ms"]["p95"]
        return value, value <= 100, f"slowest: {worst['name']}"
    if target == "group_by_ratio":
        row = next(row for row in step["reports"] if row["name"] == "365 days")
        value = row["group_by_over_rollups"]
        return value, value >= 20, ""
    if target == "duckdb_ratio":
        worst = min(step["reports"], key=lambda row: row["duckdb_over_rollups"])
        value = worst["duckdb_over_rollups"]
        return value, value >= 1, f"slowest against DuckDB: {worst['name']}"
    if target in {"export_rate", "export_rss"}:
        events = next(row for row in step["exports"] if row["granularity"] == "events")
        if target == "export_rate":
            value = events["rows_per_s"]["median"]
            return value, value >= 250_000, ""
        value = max(row["rss_growth_mib"] for row in step["exports"])
        return value, value < 100, ""
    if target == "search_p95":
        largest = max(step["datasets"], key=lambda row: row["users"])
        value = max(length["http_ms"]["p95"] for length in largest["lengths"])
        return value, value <= 50 and largest["users"] >= 100_000, f"{largest['users']:,} users"
    if target == "scaling":
        value = step["worst_ratio_median"]
        note = f"{step['small']['events']:,} vs {step['large']['events']:,} events"
        return value, value <= 1.5, note
    if target.startswith("gateway"):
        return _gateway(target, step)
    if target == "budget_check_p95":
        value = step["check"]["request_ms"]["p95"]
        ratio = step["ingest"]["ratio_three_to_none"]
        return value, value <= 5, f"ingest with 3 budgets: x{ratio} of none"
    painted = step.get("first_row_painted_ms")  # older results: only the script's view
    value = (painted or step["first_rows_ms"])["p95"]
    note = f"{step['users_in_range']:,} users in range"
    if painted:
        note += f"; seen by a script after the page's own: p95 {step['first_rows_ms']['p95']:,} ms"
    return value, value <= 300, note


def _gateway(target: str, step: dict[str, Any]) -> tuple[float | None, bool | None, str]:
    if target == "gateway_streams":
        concurrent = step["concurrent"]
        clean = concurrent["errors"] == 0 and concurrent["recorded_all"]
        value = concurrent["streams"] if clean else 0
        note = f"{concurrent['errors']} errors; wall time x{concurrent['ratio_wall']} of direct"
        return value, value >= 500, note
    figure = step["plain" if target == "gateway_plain" else "first_byte"]
    value = figure["added_p95_ms"]
    return value, value <= 5, f"p95 x{figure['ratio_p95']} of calling the fake directly"


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [target.check(results) for target in TARGETS]


def write_json(results: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{results['date'][:10]}-{results['backend']}.json"
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return path


def merged(runs: dict[str, dict[str, Any]], run: dict[str, Any]) -> dict[str, Any]:
    """``run`` (some steps) merged into the newest results of its backend in ``runs``:
    its steps replace theirs, the rest is kept, and ``reruns`` says which steps were
    measured when, at which commit. Unchanged when the backend has no results yet."""
    base = runs.get(run["backend"])
    if base is None:
        return run
    rerun = {
        "steps": sorted(run["steps"]),
        "date": run["date"],
        "commit": run["commit"],
        "repetitions": run["options"]["repetitions"],
    }
    return {
        **base,
        "datasets": {**base["datasets"], **run["datasets"]},
        "steps": {**base["steps"], **run["steps"]},
        "reruns": [*base.get("reruns", []), rerun],
    }


def latest(folder: Path) -> dict[str, dict[str, Any]]:
    """The newest results file of each backend in ``folder``."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        found[data["backend"]] = data
    return found
