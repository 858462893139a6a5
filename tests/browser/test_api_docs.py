"""The API reference page works offline and under the Content-Security-Policy."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveSite

pytestmark = pytest.mark.browser


def test_api_reference_renders_every_operation(page: Page, live: LiveSite) -> None:
    blocked: list[str] = []
    page.on(
        "console",
        lambda message: (
            blocked.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(f"{live.url}/api/docs")
    operations = page.locator(".opblock-summary-path")
    expect(operations.first).to_be_visible()
    paths = set(operations.all_inner_texts())
    assert {
        "/api/v1/events",
        "/api/v1/reports/user-usage",
        "/api/v1/reports/usage-series",
        "/api/v1/reports/user-usage/export",
    } <= {path.replace("\u200b", "") for path in paths}
    assert blocked == []
