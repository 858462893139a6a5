"""The "Demo data" banner: shown on every console page while the database holds demo
data (``tokenledger demo``), until ``tokenledger demo --remove``."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request

from tokenledger.store.database import DatabaseUnavailable
from tokenledger.store.demo_data import has_demo_data


def demo_data_check(request: Request) -> Callable[[], bool]:
    """For templates: asks the database only when a whole page is rendered."""

    def present() -> bool:
        ctx = getattr(request.app.state, "ctx", None)
        if ctx is None:
            return False
        try:
            return has_demo_data(ctx.db)
        except DatabaseUnavailable:  # the page says what is wrong; no banner then
            return False

    return present
