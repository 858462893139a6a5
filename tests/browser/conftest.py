"""Browser tests: Debian's Chromium driven by Playwright against a real server.

Chromium comes from the system (``/usr/bin/chromium``), never downloaded. Without it
the browser tests are skipped, except with CI=true, where that is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.conftest import IN_CI
from tests.support.server import ServerProcess
from tokenledger.auth.keys import create_key
from tokenledger.ingest import ingest
from tokenledger.localdays import to_us
from tokenledger.settings import Settings
from tokenledger.store import migrate
from tokenledger.store.database import open_database
from tokenledger.store.usage_store import UsageStore

CHROMIUM = os.environ.get("TOKENLEDGER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ADMIN_EMAIL = "ada.admin@example.com"
ADMIN_PASSWORD = "correct horse battery staple"
BROWSER_ZONE = "Asia/Colombo"  # +05:30; Chromium reports Kolkata as Asia/Calcutta

pytestmark = pytest.mark.browser


# Module scope: Playwright's sync API keeps an event loop in the test thread while it
# runs, which would break other tests that run one (asyncio.run) in the same process.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"Chromium is required in CI and was not found at {CHROMIUM}")
        pytest.skip(f"Chromium not found at {CHROMIUM} (make test installs it)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    yield browser
    browser.close()


PEOPLE = [
    ("emp-thao", "Nguyễn Thị Thảo", "thao@example.com"),
    ("emp-lam", "Đặng Văn Lâm", "lam@example.com"),
    ("emp-zoe", "Zoë Dubois", "zoe@example.com"),
    ("emp-evil", "<img src=x onerror=alert(1)>", "evil@example.com"),
] + [(f"emp-{n:03d}", f"Person {n:03d}", f"person{n:03d}@example.com") for n in range(1, 118)]


def seed_events(now: datetime) -> list[dict[str, Any]]:
    """121 people with usage today (so the table has 3 pages) and over 40 days.

    Today's events lie between the browser zone's midnight and ``now`` whatever the
    hour: spread over the last ~2.5 hours, squeezed into the time since midnight when
    less has passed (a run just after midnight in Colombo would otherwise find most
    people's "today" in yesterday)."""
    local_now = now.astimezone(ZoneInfo(BROWSER_ZONE))
    since_midnight = local_now - local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    spread = timedelta(minutes=17 * 2 + len(PEOPLE) + 1)  # the furthest offset, and more
    squeeze = min(1.0, since_midnight / spread)
    events = []
    for index, (user_id, name, email) in enumerate(PEOPLE):
        for day in range(0, 40, 3 + index % 4):
            for n in range(1 + index % 3):
                back = timedelta(minutes=17 * n + index)
                started = now - timedelta(days=day) - (back * squeeze if day == 0 else back)
                events.append(
                    {
                        "event_id": f"seed-{user_id}-{day}-{n}",
                        "user": {"id": user_id, "name": name, "email": email},
                        "started_at": started.isoformat(),
                        "duration_ms": 1000 + 137 * index + n,
                        "model": "gpt-4o",
                        "input_tokens": 100 + 7 * index + day,
                        "output_tokens": 10 + index % 13,
                    }
                )
    return events


@dataclass
class LiveSite:
    url: str
    read_key: str
    database_url: str

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(
            f"{self.url}{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.read_key}"},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    directory = tmp_path_factory.mktemp("browser")
    database_url = f"sqlite:///{directory / 'browser.db'}"
    db = open_database(Settings(database_url=database_url))
    migrate.upgrade(db)
    now = datetime.now(UTC) - timedelta(minutes=1)
    events = seed_events(now)
    for start in range(0, len(events), 1000):
        ingest(UsageStore(db), events[start : start + 1000], now_us=to_us(datetime.now(UTC)))
    read_key = create_key(db, name="browser tests", scope="report:read", now_us=to_us(now))[1]
    db.dispose()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tokenledger",
            "--database-url",
            database_url,
            "accounts",
            "create",
            "--email",
            ADMIN_EMAIL,
            "--role",
            "admin",
            "--name",
            "Ada Admin",
            "--password-stdin",
        ],
        input=ADMIN_PASSWORD,
        text=True,
        check=True,
        capture_output=True,
    )
    with ServerProcess(database_url, directory, TOKENLEDGER_TIMEZONE="UTC") as server:
        yield LiveSite(server.url, read_key, database_url)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        timezone_id=BROWSER_ZONE,
        locale="en-US",
        accept_downloads=True,
    )
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    assert errors == [], f"JavaScript errors on the page: {errors}"


def sign_in(page: Page, live: LiveSite, *, next_path: str = "/") -> None:
    page.goto(f"{live.url}/sign-in?next={next_path}")
    page.get_by_label("E-mail").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot under test-artifacts/ (docs/user-usage.png is one of them)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=full_page)
    return path
