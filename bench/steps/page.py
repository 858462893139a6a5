"""Item 7: the User Usage page in Chromium, navigation to the first table rows.

NOT MEASURED YET. The signed-in page ``/reporting/user-usage`` is being built in
parallel; until this build serves it and the harness knows how to sign in, the step
records why it has no figure instead of inventing one. What it will do: sign in with
Playwright's Chromium, open the page for a range with 10,000 users, and time from
navigation start to the first ``<tbody> <tr>`` being visible, over the repetitions.
"""

from __future__ import annotations

from typing import Any

from bench.context import Context, serve

PAGE = "/reporting/user-usage"


def run(ctx: Context) -> dict[str, Any]:
    with serve(ctx, ctx.main.url) as served:
        status = served.client.get(PAGE, follow_redirects=False).status_code
    if status == 404:
        return {
            "status": "not_available",
            "reason": f"not available in this build (GET {PAGE} answers 404)",
        }
    return {
        "status": "not_measured",
        "reason": (
            f"GET {PAGE} answers {status}, but the harness cannot sign in to the page yet; "
            "this step is a placeholder"
        ),
    }
