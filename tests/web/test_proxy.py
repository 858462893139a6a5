"""Forwarded headers count only from trusted proxies."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.clock import FrozenClock
from tests.support.console import csrf_token, make_account, sign_in
from tokenledger.settings import Settings, proxy_networks
from tokenledger.store.database import Database
from tokenledger.web import proxy
from tokenledger.web.app import create_app

TRUSTED = proxy_networks("10.0.0.0/8, ::1")


def scope(peer: str, **headers: str) -> dict[str, Any]:
    raw = [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return {"type": "http", "client": (peer, 5000), "scheme": "http", "headers": raw}


def test_client_address() -> None:
    forwarded = {"x_forwarded_for": "198.51.100.1, 203.0.113.5, 10.0.0.9"}
    assert proxy.client_address(scope("10.0.0.1", **forwarded), TRUSTED) == "203.0.113.5"
    assert proxy.client_address(scope("192.0.2.1", **forwarded), TRUSTED) == "192.0.2.1"
    assert proxy.client_address(scope("10.0.0.1"), TRUSTED) == "10.0.0.1"
    assert proxy.client_address(scope("::1", x_forwarded_for="10.0.0.2"), TRUSTED) == "10.0.0.2"
    assert proxy.client_address(scope("10.0.0.1", x_forwarded_for="junk"), TRUSTED) == "junk"


def test_scheme_and_host() -> None:
    headers = {
        "x_forwarded_proto": "https",
        "x_forwarded_host": "ledger.example",
        "host": "app:8000",
    }
    assert proxy.scheme(scope("10.0.0.1", **headers), TRUSTED) == "https"
    assert proxy.host(scope("10.0.0.1", **headers), TRUSTED) == "ledger.example"
    assert proxy.scheme(scope("192.0.2.1", **headers), TRUSTED) == "http"
    assert proxy.host(scope("192.0.2.1", **headers), TRUSTED) == "app:8000"
    assert proxy.scheme(scope("10.0.0.1", x_forwarded_proto="http"), TRUSTED) == "http"


def test_a_bad_trusted_proxies_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="not an address"):
        Settings(trusted_proxies="10.0.0.0/8, proxy.internal")


@pytest.fixture
def backend() -> str:
    return "sqlite"


def test_origin_check_uses_the_forwarded_host_behind_a_trusted_proxy(
    settings: Settings, db: Database, clock: FrozenClock
) -> None:
    make_account(db, "ada@example.com")
    app: FastAPI = create_app(
        settings.model_copy(update={"trusted_proxies": "10.0.0.1"}), db=db, clock=clock
    )
    forwarded = {"X-Forwarded-Host": "ledger.example", "Host": "127.0.0.1:8000"}
    browser = TestClient(app, client=("10.0.0.1", 1), headers=forwarded, follow_redirects=False)
    sign_in(browser, "ada@example.com")
    token = csrf_token(browser)
    form = {"display_name": "Ada", "csrf_token": token}
    ok = browser.post("/account", data=form, headers={"Origin": "http://ledger.example"})
    assert ok.status_code == 303
    refused = browser.post("/account", data=form, headers={"Origin": "http://127.0.0.1:8000"})
    assert refused.status_code == 403
