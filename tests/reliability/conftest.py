"""Fixtures of the reliability tests: real servers (stopped at teardown) and API keys
made with the command line, as an administrator would."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.console import PASSWORD
from tests.support.server import ServerProcess
from tokenledger.cli import app


@dataclass(frozen=True)
class Keys:
    ingest: str
    read: str


def create_keys(database_url: str) -> Keys:
    """An ``ingest`` and a ``report:read`` key, created by ``tokenledger keys create``."""
    runner = CliRunner()
    secrets = {}
    for scope in ("ingest", "report:read"):
        result = runner.invoke(
            app,
            ["--database-url", database_url, "keys", "create", "--name", scope, "--scope", scope],
        )
        assert result.exit_code == 0, result.output
        secrets[scope] = result.stdout.strip().splitlines()[-1]
    return Keys(ingest=secrets["ingest"], read=secrets["report:read"])


def create_account(database_url: str, email: str, *, role: str = "viewer") -> None:
    """A console account with the tests' password, made by ``tokenledger accounts
    create``, as an administrator would."""
    command = ["accounts", "create", "--email", email, "--role", role, "--password-stdin"]
    result = CliRunner().invoke(
        app, ["--database-url", database_url, *command], input=f"{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output


class Servers:
    """Starts ``tokenledger serve`` processes and makes sure none outlives the test."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[ServerProcess] = []

    def start(
        self,
        database_url: str,
        *,
        respect_file_modes: bool = False,
        open_files: int | None = None,
        **env: str,
    ) -> ServerProcess:
        server = ServerProcess(
            database_url,
            self.log_dir,
            respect_file_modes=respect_file_modes,
            open_files=open_files,
            **env,
        )
        self.started.append(server)
        return server.start()

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    started = Servers(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()
