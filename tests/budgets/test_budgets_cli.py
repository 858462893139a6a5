"""``tokenledger budgets``: create, list, delete, add a channel; bad input names its
field and changes nothing."""

from __future__ import annotations

from typer.testing import CliRunner

from tokenledger.auth import audit
from tokenledger.cli import app
from tokenledger.store import budgets as budget_store
from tokenledger.store.database import Database


def run(database_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--database-url", database_url, "budgets", *args])
    return result.exit_code, result.output


def test_create_list_delete(database_url: str, db: Database) -> None:
    code, output = run(
        database_url,
        "create",
        "--name",
        "nz month",
        "--metric",
        "cost_usd",
        "--limit",
        "40.5",
        "--period",
        "month",
        "--timezone",
        "Pacific/Auckland",
        "--action",
        "block",
    )
    assert code == 0, output
    assert "Created budget 1 'nz month'." in output
    code, output = run(database_url, "list")
    assert code == 0
    assert "nz" in output  # a table (cells wrap in the test's narrow terminal)
    with db.read() as conn:
        (budget,) = budget_store.load_budgets(conn)
    assert (budget.limit, budget.timezone, budget.thresholds, budget.action) == (
        40_500_000_000,
        "Pacific/Auckland",
        (50, 80, 100),
        "block",
    )
    code, output = run(
        database_url,
        "create",
        "--name",
        "x",
        "--metric",
        "tokens",
        "--limit",
        "10",
        "--period",
        "fortnight",
    )
    assert code == 2
    assert "period: must be one of day, week, month, quarter, year" in output
    code, output = run(database_url, "delete", "1")
    assert (code, output.strip()) == (0, "Deleted budget 1 'nz month'.")
    assert run(database_url, "delete", "1")[0] == 2
    with db.read() as conn:
        assert budget_store.load_budgets(conn) == []
    actions = [entry.action for entry in audit.entries(db, limit=2)]
    assert actions == [audit.BUDGET_DELETED, audit.BUDGET_CREATED]


def test_add_a_webhook_prints_its_secret_once(database_url: str, db: Database) -> None:
    code, output = run(
        database_url, "add-channel", "--kind", "webhook", "--target", "https://hooks.example.com/tl"
    )
    assert code == 0, output
    with db.read() as conn:
        (channel,) = budget_store.load_channels(conn)
    assert channel.secret in output
    assert (channel.kind, channel.target, channel.enabled) == (
        "webhook",
        "https://hooks.example.com/tl",
        True,
    )
    assert run(database_url, "add-channel", "--kind", "pager", "--target", "x")[0] == 2
