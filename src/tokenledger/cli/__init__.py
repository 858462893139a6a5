"""The ``tokenledger`` command line. Thin: parse, call the modules, print.

Each module adds its commands to the one Typer ``app`` (``common``).
"""

from __future__ import annotations

from tokenledger.cli import (
    accounts,
    backup,
    budgets,
    data,
    export,
    keys,
    lifecycle,
    people,
    prices,
    server,
)
from tokenledger.cli.common import app

__all__ = [
    "accounts",
    "app",
    "backup",
    "budgets",
    "data",
    "export",
    "keys",
    "lifecycle",
    "main",
    "people",
    "prices",
    "server",
]


def main() -> None:
    app(prog_name="tokenledger")
