"""Run ``tokenledger serve`` as a real subprocess on a free port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx2 as httpx

from tests.support.postgres import free_port


class ServerProcess:
    def __init__(
        self,
        database_url: str,
        log_dir: Path,
        *,
        respect_file_modes: bool = False,
        open_files: int | None = None,
        command: list[str] | None = None,
        **env: str,
    ) -> None:
        # How to run ``tokenledger``: this interpreter's, or an installed one's.
        self.command = command or [sys.executable, "-m", "tokenledger"]
        self.prefix: list[str] = []
        if respect_file_modes and os.geteuid() == 0:
            # As root, file modes bind only a process without the capability to
            # override them (the tests run as root in CI; a server usually does not).
            self.prefix += ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
        if open_files is not None:  # a soft limit, as a service manager may set it
            self.prefix += ["prlimit", f"--nofile={open_files}:"]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.log_path = log_dir / f"server-{self.port}.log"
        self.env = {
            **os.environ,
            "TOKENLEDGER_DATABASE_URL": database_url,
            "TOKENLEDGER_PORT": str(self.port),
            "TOKENLEDGER_HOST": "127.0.0.1",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> ServerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.prefix, *self.command, "serve"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become ready:\n{self.log()}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """kill -9: no shutdown, no flush."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
