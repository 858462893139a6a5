"""Every route, every parameter, hostile values: never a 5xx.

A sibling of ``test_route_matrix``: the routes are enumerated from the app (a new one
is covered without an edit), and so are their parameters (path, query and form fields
FastAPI knows of), plus the parameters the User Usage page reads from its URL itself.
Each parameter gets each hostile value on its own, sent by a signed-in admin (and, for
the API, with a report key), on SQLite and PostgreSQL: integers at 2^63 and beyond,
numbers in other scripts, NUL, lone surrogates and invalid UTF-8 (percent-encoded,
as they would arrive), control and bidirectional characters, long and empty values.
"""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI

from tests.conftest import make_event
from tests.support.console import make_account
from tests.web.signed_in import signed_in_client
from tests.web.test_route_matrix import ROUTES, budget_and_delivery, route_table
from tokenledger.auth import csrf
from tokenledger.auth.keys import create_key
from tokenledger.store.people import Person, import_people
from tokenledger.web import user_usage
from tokenledger.web.context import AppContext

# Percent-encoded already: a lone surrogate can only travel as bytes (CESU-8 here).
HOSTILE: dict[str, str] = {
    "2^63": "9223372036854775808",
    "-2^63-1": "-9223372036854775809",
    "20 digits": "99999999999999999999",
    "5,000 digits": "9" * 5000,
    "1e309": "1e309",
    "NaN": "NaN",
    "-1": "-1",
    "0": "0",
    "superscript two": quote("²"),
    "Arabic-Indic digits": quote("١٢٣"),
    "full-width digits": quote("１２"),
    "NUL": "%00",
    "NUL inside": "a%00b",
    "lone surrogate": "%ED%A0%80",
    "invalid UTF-8": "%FF%FE",
    "escape sequence": "%1B%5B31m",
    "line break": "a%0D%0Ab",
    "right-to-left override": quote("\u202e"),
    "path traversal": quote("../../etc/passwd", safe=""),
    "HTML": quote("<script>alert(1)</script>"),
    "SQL": quote("' OR 1=1 --"),
    "10,000 characters": "x" * 10_000,
    "empty": "",
    "year 0": "0000-01-01",
    "February 30": "2026-02-30",
    "year 10000": "10000-01-01",
}
# What the User Usage page reads from its URL itself (not declared to FastAPI).
_VIEW = ("start", "end", "tz", "q", "sort", "page", "team", "department", "group", "compare")
PAGE_PARAMS = {
    user_usage.PATH: _VIEW,
    user_usage.PERSON_PATH + "/{user_id}": (*_VIEW, "model", "status", "cursor"),
}


def _fields(dependant: Any, kind: str) -> list[str]:
    """The names of the ``kind`` parameters of a route and of all its dependencies."""
    own = [field.alias for field in getattr(dependant, kind)]
    return own + [name for sub in dependant.dependencies for name in _fields(sub, kind)]


def _parameters(route: Any) -> dict[str, list[str]]:
    """The route's parameter names by where they go: path, query, form."""
    if not hasattr(route, "dependant"):  # a mount: static files
        return {"path": ["path"], "query": ["v"], "form": []}
    page = list(PAGE_PARAMS.get(route.path, ()))
    return {
        "path": _fields(route.dependant, "path_params"),
        "query": _fields(route.dependant, "query_params") + page,
        "form": _fields(route.dependant, "body_params"),
    }


Request = tuple[str, str, str, bytes | None]


def _requests(path: str, route: Any, sample: dict[str, str]) -> list[Request]:
    """(parameter, value name, URL, form body) for each parameter and hostile value."""
    names = _parameters(route)
    requests = []
    for (where, parameter), (value_name, value) in itertools.product(
        [(where, name) for where, found in names.items() for name in found], HOSTILE.items()
    ):
        filled = dict(sample)
        query, form = "", None
        if where == "path":
            filled[parameter] = value
        elif where == "query":
            query = f"?{parameter}={value}"
        else:
            form = f"{parameter}={value}".encode()
        requests.append((parameter, value_name, path.format(**filled) + query, form))
    return requests


@pytest.fixture
def sample(app: FastAPI) -> dict[str, str]:
    """Ids of an account and a key that exist (not the admin's own: its session must
    outlive a password reset)."""
    ctx: AppContext = app.state.ctx
    subject = make_account(ctx.db, "subject@example.com")
    key = create_key(ctx.db, name="subject", scope="ingest", now_us=0)[0]
    import_people(ctx.db, [Person("person-1", name="Someone", team="Ops")], now_us=0)
    budget_id, delivery_id = budget_and_delivery(ctx.db)
    return {
        "account_id": str(subject.id),
        "key_id": str(key.id),
        "path": "app.css",
        "user_id": "person-1",
        "budget_id": str(budget_id),
        "delivery_id": str(delivery_id),
    }


@pytest.mark.parametrize(("method", "path"), sorted(ROUTES), ids=lambda value: str(value))
def test_no_hostile_parameter_value_reaches_a_5xx(
    method: str,
    path: str,
    app: FastAPI,
    backend: str,
    sample: dict[str, str],
    read_key: str,
    ingest_key: str,
) -> None:
    route = route_table(app)[(method, path)]
    failures = []
    with signed_in_client(app, role="admin") as admin:
        admin_token = admin.headers["X-CSRF-Token"]
        for parameter, value_name, url, form in _requests(path, route, sample):
            headers = {"Content-Type": "application/x-www-form-urlencoded"} if form else {}
            if path == "/api/v1/events":
                headers = {"Authorization": f"Bearer {ingest_key}"}
                answers = [admin.post(url, json={"events": [make_event()]}, headers=headers)]
            else:
                answers = [admin.request(method, url, content=form, headers=headers)]
                if method == "GET" and path.startswith("/api/v1/reports/"):
                    keyed = {"Authorization": f"Bearer {read_key}"}
                    answers.append(admin.get(url, headers=keyed))
                elif path == "/api/v1/budgets/check":
                    keyed = {"Authorization": f"Bearer {ingest_key}"}
                    answers.append(admin.get(url, headers=keyed))
                elif path == user_usage.PATH:  # its htmx fragment is another answer
                    answers.append(admin.get(url, headers={"HX-Request": "true"}))
            for answer in answers:
                if answer.status_code >= 500:
                    failures.append((parameter, value_name, answer.status_code, answer.text[:200]))
            assert (
                admin.headers["X-CSRF-Token"]
                == admin_token
                == csrf.token_for(admin.cookies["tokenledger_session"])
            ), "the admin's session must last the whole test"
    assert failures == []
