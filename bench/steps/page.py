"""Item 7: the User Usage page in Chromium, from navigation to the first table rows.

A console account is created in the dataset's database; Playwright drives Debian's
Chromium (never a downloaded one): it signs in once, then opens the page for the last
365 days (about every user of the dataset is in range) again and again. Two figures,
both on the browser's own clock from the start of that navigation (the page's time
origin), so they cover the server's work, the transfer and rendering:

- painted: when the first row's name was painted (Element Timing: the page marks it
  ``elementtiming="usage-first-row"``), i.e. when a person sees the first rows;
- seen by a script: ``performance.now()`` once Playwright finds the first ``<tbody>``
  row visible; its script waits for the page's own deferred scripts (the chart
  library and the chart) to finish, so it comes later.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.context import Context, serve
from bench.progress import say
from bench.stats import summarize
from tokenledger.auth import accounts
from tokenledger.clock import now_us, system_clock
from tokenledger.settings import Settings
from tokenledger.store import migrate
from tokenledger.store.database import open_database

PAGE = "/reporting/user-usage"
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EMAIL = "bench.page@example.com"
# When the browser painted the first row's name (Element Timing: the page marks it
# ``elementtiming="usage-first-row"``), from the start of the navigation.
_FIRST_ROW_PAINTED = """() => new Promise((resolve, reject) => {
  setTimeout(() => reject(new Error("no element timing for the first row")), 10000);
  new PerformanceObserver((list, observer) => {
    const entry = list.getEntries().find((e) => e.identifier === "usage-first-row");
    if (entry) { observer.disconnect(); resolve(entry.renderTime || entry.loadTime); }
  }).observe({ type: "element", buffered: true });
})"""


def _account(url: str) -> str:
    """A viewer account in the dataset's database; returns its (new) password."""
    password = secrets.token_urlsafe(18)
    db = open_database(Settings(database_url=url))
    try:
        migrate.upgrade(db)
        found = accounts.find_account(db, EMAIL)
        if found is None:
            accounts.create_account(
                db,
                email=EMAIL,
                password=password,
                role="viewer",
                actor="bench",
                now_us=now_us(system_clock),
            )
        else:
            accounts.set_password(
                db, found.id, password=password, actor="bench", now_us=now_us(system_clock)
            )
    finally:
        db.dispose()
    return password


def run(ctx: Context) -> dict[str, Any]:
    if not CHROMIUM.exists():
        return {"status": "not_available", "reason": f"no Chromium at {CHROMIUM}"}
    from playwright.sync_api import sync_playwright

    password = _account(ctx.main.url)
    last = ctx.end.astimezone(ctx.options.zone).date()
    query = urlencode(
        {
            "start": (last - timedelta(days=364)).isoformat(),
            "end": last.isoformat(),
            "tz": ctx.options.zone.key,
        }
    )
    samples: list[float] = []
    painted: list[float] = []
    with serve(ctx, ctx.main.url) as served, sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{served.server.url}/sign-in")
            page.get_by_label("E-mail").fill(EMAIL)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{served.server.url}{PAGE}**")
            url = f"{served.server.url}{PAGE}?{query}"
            say(f"Page: {ctx.options.repetitions + 2} loads of {PAGE} (365 days)")
            users = 0
            for repetition in range(ctx.options.repetitions + 2):  # two to warm up
                page.goto(url, wait_until="commit")
                page.locator(".usage-table tbody tr").first.wait_for(state="visible")
                elapsed = float(page.evaluate("() => performance.now()"))
                painted.append(float(page.evaluate(_FIRST_ROW_PAINTED)))
                users = int(
                    page.locator("#usage-count [data-num]").last.get_attribute("data-num") or 0
                )
                if repetition >= 2:
                    samples.append(elapsed)
                else:
                    painted.pop()
        finally:
            browser.close()
    return {
        "status": "ok",
        "range_days": 365,
        "users_in_range": users,
        "first_rows_ms": summarize(samples),
        "first_row_painted_ms": summarize(painted),
    }
