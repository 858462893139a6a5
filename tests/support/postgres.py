"""A throwaway PostgreSQL cluster in a temp dir on a free port (tests and bench).

initdb refuses to run as root, so as root the cluster is created and run by the
``postgres`` user in a directory that user owns.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    pass


def _find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    datadir: Path
    port: int
    pg_ctl: str
    as_postgres: bool

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        log = self.datadir.parent / "postgres.log"
        self._run(
            self.pg_ctl,
            "-D",
            str(self.datadir),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port} -k {self.datadir.parent} -c listen_addresses=127.0.0.1",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(self.pg_ctl, "-D", str(self.datadir), "-m", mode, "-w", "stop", check=False)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def start_cluster(*, fsync: bool = False) -> Cluster:
    """initdb + pg_ctl start; PostgresUnavailable when the binaries are missing."""
    initdb, pg_ctl = _find_binary("initdb"), _find_binary("pg_ctl")
    if not initdb or not pg_ctl:
        raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found")
    as_postgres = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="tokenledger-pg-"))
    if as_postgres:
        shutil.chown(base, "postgres", "postgres")
    datadir = base / "data"
    cluster = Cluster(datadir, free_port(), pg_ctl, as_postgres)
    cluster._run(
        initdb,
        "-D",
        str(datadir),
        "-A",
        "trust",
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
    )
    with (datadir / "postgresql.conf").open("a") as conf:
        conf.write(
            "\nmax_connections = 200\nshared_buffers = 256MB\n"
            f"fsync = {'on' if fsync else 'off'}\n"
            f"synchronous_commit = {'on' if fsync else 'off'}\nfull_page_writes = off\n"
        )
    if as_postgres:
        subprocess.run(["chown", "-R", "postgres:postgres", str(base)], check=True)
    cluster.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", cluster.port)) == 0:
                return cluster
        time.sleep(0.1)
    raise PostgresUnavailable("PostgreSQL did not start listening")
