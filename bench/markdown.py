"""docs/benchmarks.md: the tables of the newest run of each backend.

Only the part between the two markers is rewritten; the prose around it (method,
what limits each figure) is kept as written.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

BEGIN = "<!-- bench:results:begin (written by python -m bench; do not edit) -->"
END = "<!-- bench:results:end -->"
BACKENDS = (("sqlite", "SQLite"), ("postgresql", "PostgreSQL"))


def update(doc: Path, runs: dict[str, dict[str, Any]]) -> None:
    generated = "\n".join([BEGIN, "", render(runs), END])
    if doc.exists():
        text = doc.read_text()
        if BEGIN in text and END in text:
            before, _, rest = text.partition(BEGIN)
            _, _, after = rest.partition(END)
            doc.write_text(before + generated + after)
            return
        doc.write_text(text.rstrip() + "\n\n" + generated + "\n")
        return
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("# Benchmarks\n\n" + generated + "\n")


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _ms(stats: dict[str, Any]) -> str:
    return f"{stats['median']:,.1f} / {stats['p95']:,.1f} (±{stats['spread_pct']:.0f}%)"


def _rate(stats: dict[str, Any]) -> str:
    return f"{stats['median']:,.0f} (slowest 5%: {stats['p5']:,.0f}, ±{stats['spread_pct']:.0f}%)"


def _value(target: dict[str, Any]) -> str:
    if target["value"] is None:
        return f"n/a: {target['note']}"
    mark = "met" if target["met"] else "**missed**"
    value = target["value"]
    shown = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"
    note = f" ({target['note']})" if target["note"] else ""
    return f"{shown} {target['unit']}, {mark}{note}"


def render(runs: dict[str, dict[str, Any]]) -> str:
    present = [(key, label) for key, label in BACKENDS if key in runs]
    if not present:
        return "No results yet: run `make bench`.\n"
    parts = ["### Runs", ""]
    parts.append(
        _table(
            ["", *(label for _, label in present)],
            [
                ["date (UTC)", *(runs[key]["date"][:16].replace("T", " ") for key, _ in present)],
                ["commit", *(_commit(runs[key]) for key, _ in present)],
                ["machine", *(_machine(runs[key]) for key, _ in present)],
                ["database", *(runs[key]["backend_version"] for key, _ in present)],
                ["main dataset", *(_dataset(runs[key], "main") for key, _ in present)],
                ["repetitions", *(str(runs[key]["options"]["repetitions"]) for key, _ in present)],
                *(
                    [["steps re-run", *(_reruns(runs[key]) for key, _ in present)]]
                    if any(runs[key].get("reruns") for key, _ in present)
                    else []
                ),
            ],
        )
    )
    parts += ["", "### Targets", ""]
    goals = runs[present[0][0]]["targets"]
    rows = []
    for index, goal in enumerate(goals):
        rows.append(
            [
                goal["title"],
                f"{goal['goal']} {goal['unit']}",
                *(_value(runs[key]["targets"][index]) for key, _ in present),
            ]
        )
    parts.append(_table(["target", "goal", *(label for _, label in present)], rows))
    for key, label in present:
        parts += ["", *_details(label, runs[key])]
    return "\n".join(parts) + "\n"


def _reruns(run: dict[str, Any]) -> str:
    """The steps measured again after the run (``python -m bench --update``)."""
    return (
        "; ".join(
            f"{', '.join(rerun['steps'])} on {rerun['date'][:16].replace('T', ' ')} at "
            f"{_commit(rerun)}, {rerun['repetitions']} repetitions"
            for rerun in run.get("reruns", [])
        )
        or "none"
    )


def _commit(run: dict[str, Any]) -> str:
    found = run["commit"]
    return f"`{found['commit'][:10]}`" + (" (with uncommitted changes)" if found["dirty"] else "")


def _machine(run: dict[str, Any]) -> str:
    m = run["machine"]
    return f"{m['cores']} cores, {m['memory_gib']} GiB, {m['cpu']}"


def _dataset(run: dict[str, Any], name: str) -> str:
    data = run["datasets"].get(name)
    if not data:
        return "n/a"
    reused = ", reused" if data["reused"] else ""
    return (
        f"{data['events']:,} events, {data['users']:,} users, {data['days']} days{reused}; "
        f"{_loaded(data['load'])}"
    )


def _loaded(load: dict[str, Any]) -> str:
    if load.get("copied_from"):  # bench/copy.py
        return f"copied from the {load['copied_from']} dataset in {load['copy_s']:,} s"
    return f"loaded at {load['ingest_events_per_s']:,} events/s"


def _details(label: str, run: dict[str, Any]) -> list[str]:
    steps = run["steps"]
    out = [f"### {label} in detail", ""]
    out.append(
        "Times are median / p95 in milliseconds (± spread: interquartile range as a "
        f"share of the median), over {run['options']['repetitions']} warm repetitions."
    )
    for title, render_step, name in (
        ("Datasets", _datasets_md, None),
        ("1. Ingest", _ingest_md, "ingest"),
        ("2. Report latency", _reports_md, "reports"),
        ("3. Rollups vs plain GROUP BY vs DuckDB", _compare_md, "compare"),
        ("4. Export", _export_md, "export"),
        ("5. Search as you type", _search_md, "search"),
        ("6. Scaling", _scaling_md, "scaling"),
        ("7. User Usage page", _page_md, "page"),
        ("8. Gateway", _gateway_md, "gateway"),
        ("9. One person's events (keyset pages)", _person_md, "person"),
        ("10. Budgets", _budgets_md, "budgets"),
    ):
        out += ["", f"#### {title} ({label})", ""]
        step = run if name is None else steps.get(name)
        if step is None:
            out.append("Not run.")
        elif name is not None and step.get("status") != "ok":
            out.append(f"No figure: {step.get('reason') or step.get('error')}.")
        else:
            out.append(render_step(step))
    return out


def _person_md(step: dict[str, Any]) -> str:
    rows = [[name, _ms(stats)] for name, stats in step["server_ms"].items()]
    head = (
        f"The person with the most events ({step['user_events']:,}), pages of "
        f"{step['page_size']} newest first (pages reached: {step['pages_reached']}).\n\n"
    )
    return head + _table(["action", "server ms"], rows)


def _datasets_md(run: dict[str, Any]) -> str:
    rows = []
    for name, data in run["datasets"].items():
        load = data["load"]
        tenths = load.get("ingest_events_per_s_by_tenth") or []
        rows.append(
            [
                name,
                f"{data['events']:,}",
                f"{data['users']:,}",
                data["end"][:16].replace("T", " "),
                "yes" if data["reused"] else "no",
                f"{load['ingest_events_per_s']:,}"
                if not load.get("copied_from")
                else _loaded(load),
                f"{tenths[0]:,} → {tenths[-1]:,}" if tenths else "",
            ]
        )
    return _table(
        [
            "dataset",
            "events",
            "users",
            "data up to (UTC)",
            "reused",
            "bulk load, events/s",
            "first → last tenth",
        ],
        rows,
    )


def _http_row(title: str, http: dict[str, Any]) -> list[str]:
    return [
        f"{title}, {http['clients']} clients x batches of {http['batch_size']}",
        f"{http['events']:,}",
        _rate(http["events_per_s"]),
        f"request median / p95: {_ms(http['request_ms'])} ms",
    ]


def _ingest_md(step: dict[str, Any]) -> str:
    http, imported = step["http"], step["import"]
    otlp = [_http_row("OTLP `/v1/traces` (protobuf spans)", step["otlp"])] if "otlp" in step else []
    return _table(
        ["path", "events", "events/s: median (slowest 5%, ± spread)", "note"],
        [
            _http_row("HTTP `/api/v1/events`", http),
            *otlp,
            _import_row("`tokenledger import` (JSON Lines)", imported),
            *(
                [_import_row("the same in random time order", imported["random_order"])]
                if "random_order" in imported
                else []
            ),
        ],
    )


def _import_row(title: str, imported: dict[str, Any]) -> list[str]:
    return [
        title,
        f"{imported['files']} x {imported['events_per_file']:,}",
        _rate(imported["events_per_s"]),
        _import_note(imported),
    ]


def _import_note(imported: dict[str, Any]) -> str:
    start = imported["process_startup_s"]
    net = imported["median_events_per_s_without_startup"]
    if net is None:
        return f"each run includes a {start} s process start (files too small to separate it)"
    return f"{net:,} without the {start} s process start"


def _reports_md(step: dict[str, Any]) -> str:
    rows = [
        [
            f"{row['name']}",
            f"{row['start']} .. {row['end']}",
            _ms(row["server_ms"]),
            _ms(row["http_ms"]),
        ]
        for row in step["reports"]
    ]
    text = f"Zone {step['zone']}.\n\n" + _table(["report", "dates", "server", "HTTP"], rows)
    models = [
        [row["name"], f"{row['start']} .. {row['end']}", _ms(row["server_ms"]), _ms(row["http_ms"])]
        for row in step.get("model_reports", [])
    ]
    if models:
        text += "\n\nUsage and cost by model (`GET /api/v1/reports/model-usage`).\n\n"
        text += _table(["model report", "dates", "server", "HTTP"], models)
    return text


def _compare_md(step: dict[str, Any]) -> str:
    rows = [
        [
            row["name"],
            f"{row['users']:,}",
            _ms(row["rollups_ms"]),
            _ms(row["group_by_ms"]),
            _ms(row["duckdb_ms"]),
            f"{row['group_by_over_rollups']}x",
            f"{row['duckdb_over_rollups']}x",
            "yes" if row["agree"] else f"**NO** {row['users_differing']}",
        ]
        for row in step["reports"]
    ]
    return f"DuckDB {step['duckdb_version']}.\n\n" + _table(
        [
            "report",
            "users",
            "rollups",
            "GROUP BY",
            "DuckDB",
            "GROUP BY / rollups",
            "DuckDB / rollups",
            "identical numbers",
        ],
        rows,
    )


def _export_md(step: dict[str, Any]) -> str:
    rows = [
        [
            f"{row['granularity']} ({row['range']})",
            f"{row['rows']:,}",
            _rate(row["rows_per_s"]),
            f"{row['rss_before_mib']} → {row['rss_peak_mib']} (+{row['rss_growth_mib']})",
        ]
        for row in step["exports"]
    ]
    return _table(["export", "rows", "rows/s", "server RSS MiB: before → peak"], rows)


def _search_md(step: dict[str, Any]) -> str:
    rows = [
        [
            f"{data['users']:,}",
            f"{length['letters']} ({', '.join(length['queries'])})",
            f"{length['active_matching_users_mean']:,}",
            _ms(length["server_ms"]),
            _ms(length["http_ms"]),
        ]
        for data in step["datasets"]
        for length in data["lengths"]
    ]
    return f"Last {step['range_days']} days, page 1.\n\n" + _table(
        ["users", "letters typed", "matching users with usage", "server", "HTTP"], rows
    )


def _scaling_md(step: dict[str, Any]) -> str:
    small, large = step["small"]["events"], step["large"]["events"]
    rows = [
        [
            row["name"],
            _ms(row["small_ms"]),
            _ms(row["large_ms"]),
            row["ratio_median"],
            row["ratio_p95"],
        ]
        for row in step["reports"]
    ]
    return _table(
        ["report", f"{small:,} events", f"{large:,} events", "ratio (medians)", "ratio (p95)"],
        rows,
    )


def _page_md(step: dict[str, Any]) -> str:
    first = step["first_rows_ms"]
    seen = (
        f"a script on the page sees the first row {first['median']:,} ms after navigation "
        f"starts (p95 {first['p95']:,} ms, spread {first['spread_pct']}%, n = {first['n']})"
    )
    painted = step.get("first_row_painted_ms")
    if painted:
        seen = (
            f"the first row is painted {painted['median']:,} ms after navigation starts "
            f"(p95 {painted['p95']:,} ms, spread {painted['spread_pct']}%, n = "
            f"{painted['n']}); {seen}, once the page's own scripts (the chart) have run"
        )
    return f"Last {step['range_days']} days, {step['users_in_range']:,} users in range: {seen}."


def _gateway_md(step: dict[str, Any]) -> str:
    rows = [
        [
            title,
            _ms(figure["direct_ms"]),
            _ms(figure["gateway_ms"]),
            f"{figure['added_p95_ms']:,}",
            figure["ratio_p95"],
        ]
        for title, figure in (
            ("non-streaming, whole answer", step["plain"]),
            ("streaming, first byte", step["first_byte"]),
        )
    ]
    table = _table(
        ["request", "direct", "through the gateway", "added p95 (ms)", "ratio p95"], rows
    )
    concurrent = step["concurrent"]
    return (
        f"{table}\n\n{concurrent['streams']} streams at once: {concurrent['errors']} errors, "
        f"{concurrent['recorded']:,} events recorded; wall time "
        f"{concurrent['gateway']['wall_s']} s through the gateway, "
        f"{concurrent['direct']['wall_s']} s direct (x{concurrent['ratio_wall']}); "
        f"first byte p95 {concurrent['gateway']['first_byte_ms']['p95']} ms "
        f"(x{concurrent['ratio_first_byte_p95']})."
    )


def _budgets_md(step: dict[str, Any]) -> str:
    check, ingest = step["check"]["request_ms"], step["ingest"]
    heaviest = step["check"].get("heaviest_request_ms", {})
    return (
        f"`GET /api/v1/budgets/check` with {step['check']['budgets']} budgets: median "
        f"{check['median']} ms, p95 {check['p95']} ms over HTTP (n = {check['n']}, "
        f"{step['check'].get('people', '?')} people; the heaviest alone: p95 "
        f"{heaviest.get('p95', '?')} ms; /healthz on the same server at the same moments: "
        f"p95 {step['check'].get('healthz_ms', {}).get('p95', '?')} ms; server CPU per "
        f"check: {step['check'].get('server_cpu_ms_per_check', '?')} ms; timed after the "
        f"server's start-up sweep of everyone's budgets, which took "
        f"{step['check'].get('startup_sweep_s', '?')} s). Ingest "
        f"with 3 budgets: {ingest['three_budgets_events_per_s']['median']:,} events/s, "
        f"without: {ingest['none_events_per_s']['median']:,} events/s "
        f"(x{ingest['ratio_three_to_none']})."
    )
