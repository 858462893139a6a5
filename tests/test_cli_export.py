"""``tokenledger export``: the endpoint's bytes from the command line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.conftest import make_event
from tokenledger.cli import app
from tokenledger.store.database import Database, DatabaseUnavailable
from tokenledger.store.usage_store import UsageStore

runner = CliRunner()
RANGE = ["--start", "2026-11-24", "--end", "2026-11-25", "--tz", "Asia/Kolkata"]


def _events() -> list[dict[str, Any]]:
    people = [
        {"id": "emp-1", "name": "Nguyễn Thị Thảo", "email": "thao@example.com"},
        {"id": "=1+1", "name": "@SUM(1)"},
    ]
    return [
        make_event(
            user=people[n % 2],
            started_at=f"2026-11-2{4 + n % 2}T{n:02d}:00:00Z",
            input_tokens=10 * n,
        )
        for n in range(12)
    ]


def _cli(database_url: str, *args: str) -> Any:
    return runner.invoke(app, ["--database-url", database_url, "export", *args])


@pytest.mark.parametrize("granularity", ["summary", "daily", "events"])
def test_cli_writes_the_endpoints_bytes_to_a_file_and_to_stdout(
    database_url: str,
    post_events: Callable[..., Any],
    get_report: Callable[..., Any],
    tmp_path: Path,
    granularity: str,
) -> None:
    assert post_events(_events()).status_code == 200
    api = get_report(
        "/api/v1/reports/user-usage/export",
        start="2026-11-24",
        end="2026-11-25",
        tz="Asia/Kolkata",
        granularity=granularity,
        bom="1",
    )
    (tmp_path / "out").mkdir()
    output = tmp_path / "out" / "usage.csv"
    result = _cli(database_url, *RANGE, "--granularity", granularity, "--bom", "-o", str(output))
    assert result.exit_code == 0, result.output
    assert output.read_bytes() == api.content
    rows = api.content.count(b"\r\n") - 1
    assert f"{rows} rows written to {output}" in result.stderr
    assert list(output.parent.iterdir()) == [output]  # no partial file left behind

    to_stdout = _cli(database_url, *RANGE, "--granularity", granularity, "--bom", "-o", "-")
    assert to_stdout.exit_code == 0
    assert to_stdout.stdout_bytes == api.content


def test_cli_search_and_sort(database_url: str, post_events: Callable[..., Any]) -> None:
    assert post_events(_events()).status_code == 200
    result = _cli(database_url, *RANGE, "--q", "nguyen", "--sort", "user_id")
    assert result.exit_code == 0
    lines = result.stdout_bytes.decode().split("\r\n")
    assert [line.split(",")[0] for line in lines[1:-1]] == ["emp-1"]
    everyone = _cli(database_url, *RANGE, "--sort", "user_id").stdout_bytes.decode()
    assert [line.split(",")[0] for line in everyone.split("\r\n")[1:-1]] == ["'=1+1", "emp-1"]


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["--tz", "Mars/Olympus"], "--tz"),
        (["--start", "2024-13-01"], "--start"),
        (["--start", "20241101"], "--start"),
        (["--start", "2024-11-02", "--end", "2024-11-01"], "--end"),
        (["--sort", "-bogus"], "--sort"),
        (["--granularity", "hourly"], "--granularity"),
    ],
)
def test_cli_refuses_bad_options(database_url: str, args: list[str], hint: str) -> None:
    result = _cli(database_url, *args)
    assert result.exit_code == 2
    assert hint in result.stderr


def test_a_failed_export_leaves_no_file(
    database_url: str,
    db: Database,
    post_events: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert post_events(_events()).status_code == 200

    def broken(_store: UsageStore, **_kwargs: Any) -> Any:
        raise DatabaseUnavailable("disk I/O error")

    monkeypatch.setattr(UsageStore, "event_lines", broken)
    (tmp_path / "out").mkdir()
    output = tmp_path / "out" / "usage.csv"
    result = _cli(database_url, *RANGE, "--granularity", "events", "-o", str(output))
    assert result.exit_code == 1
    assert "disk I/O error" in result.stderr
    assert list(output.parent.iterdir()) == []
