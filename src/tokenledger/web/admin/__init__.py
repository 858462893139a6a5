"""Admin pages: Accounts (``accounts``), Keys (``keys``) and the Audit log (``audit``).
Every route needs the admin role, read from the database on this very request
(``PageAdmin``)."""

from __future__ import annotations

from fastapi import APIRouter

from tokenledger.web.admin import accounts, audit, keys


def build_router() -> APIRouter:
    router = APIRouter(prefix="/admin", include_in_schema=False)
    for section in (accounts, keys, audit):
        router.include_router(section.router)
    return router
