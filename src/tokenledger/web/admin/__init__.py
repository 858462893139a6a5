"""Admin pages: Accounts (``accounts``), Keys (``keys``), People (``people``: the
directory), Prices (``prices``), Budgets (``budgets``), the Audit log (``audit``) and
Erasure of a person (``erasure``). Every route needs the admin role, read from the
database on this very request (``PageAdmin``), except reading the Budgets page (any
signed-in account)."""

from __future__ import annotations

from fastapi import APIRouter

from tokenledger.web.admin import accounts, audit, budgets, erasure, keys, people, prices


def build_router() -> APIRouter:
    # Each section's router carries the ``/admin`` prefix itself: FastAPI includes
    # routers lazily, and a route's own path is what metrics and logs name it by.
    router = APIRouter(include_in_schema=False)
    for section in (accounts, keys, people, prices, budgets, audit, erasure):
        router.include_router(section.router)
    return router
