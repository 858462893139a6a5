"""A test client acting as a signed-in console account."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from tokenledger.web import deps


@contextmanager
def signed_in_client(app: FastAPI, *, role: str = "viewer") -> Iterator[TestClient]:
    viewer = deps.Viewer(1, f"{role}@example.com", f"Test {role}", role)

    @app.middleware("http")
    async def as_viewer(request: Request, call_next):  # type: ignore[no-untyped-def]
        request.state.viewer = viewer
        request.state.csrf_token = "test-token"
        return await call_next(request)

    with TestClient(app) as client:
        yield client
