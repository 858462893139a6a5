"""A real OpenID Connect provider on 127.0.0.1: ``oidc-provider-mock`` in a subprocess.

It is a complete provider (Authlib's server side): discovery, a key set, an
authorization page where a person "signs in" by typing a subject, the token, userinfo
and end-session endpoints. Any client id and secret are accepted. People and their
claims (e-mail, groups...) are set with ``set_person``. It requires a nonce in every
authorization request (``--require-nonce``). It does not check PKCE (it ignores the
code challenge): ``tests/web/test_sso.py`` checks our side of PKCE against ``FakeIdP``.

It runs in its own process because importing it loads Authlib's deprecated
``authlib.jose`` (a warning, which the test process turns into an error).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx2 as httpx

from tests.support.postgres import free_port


class MockProvider:
    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"oidc-provider-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> MockProvider:
        command = [sys.executable, "-m", "oidc_provider_mock"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--require-nonce"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the OpenID provider exited early:\n{self.log()}")
            try:
                discovery = f"{self.issuer}/.well-known/openid-configuration"
                if httpx.get(discovery, timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the OpenID provider did not become ready:\n{self.log()}")

    def set_person(self, sub: str, **claims: Any) -> None:
        """What the provider says about ``sub`` from now on (its next tokens)."""
        response = httpx.put(f"{self.issuer}/users/{quote(sub, safe='')}", json=claims, timeout=10)
        assert response.status_code == 204, response.text

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> MockProvider:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
