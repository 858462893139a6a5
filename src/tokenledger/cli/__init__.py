"""The ``tokenledger`` command line. Thin: parse, call the modules, print.

Each module adds its commands to the one Typer ``app`` (``common``).
"""

from __future__ import annotations

from tokenledger.cli import accounts, backup, data, export, keys, people, server
from tokenledger.cli.common import app

__all__ = ["accounts", "app", "backup", "data", "export", "keys", "main", "people", "server"]


def main() -> None:
    app(prog_name="tokenledger")
