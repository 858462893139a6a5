"""The people directory: `tokenledger people import/export` and Admin > People."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import make_event
from tests.support.console import csrf_token
from tests.test_cli import run
from tests.web.signed_in import signed_in_client
from tokenledger.auth import audit
from tokenledger.ingest import ingest
from tokenledger.store.database import Database
from tokenledger.store.usage_store import UsageStore

HEADER = "user_id,name,email,department,team\r\n"
DIRECTORY = (
    HEADER
    + "u-ann,Ann Lee,ann@example.com,Engineering,Platform\r\n"
    + "u-new,Newcomer,,Sales,\r\n"
    + 'u-eq,"=Eq, Inc",,,"-Ops"\r\n'
)


def _people(db: Database) -> list[tuple[str | None, ...]]:
    with db.read() as conn:
        rows = conn.execute(
            text("SELECT external_id, name, email, department, team FROM users ORDER BY 1")
        ).all()
    return [tuple(row) for row in rows]


def test_import_export_and_re_import(database_url: str, db: Database, tmp_path: Path) -> None:
    events = [make_event(user={"id": "u-ann", "name": "A.", "team": "Ops", "department": "IT"})]
    assert ingest(UsageStore(db), events, now_us=2**62).count("accepted") == 1
    path = tmp_path / "people.csv"
    path.write_text(DIRECTORY, newline="")
    code, _, err = run(database_url, "people", "import", str(path))
    assert code == 0, err
    assert "3 people: 2 new, 1 updated, 0 unchanged." in err
    assert _people(db) == [
        ("u-ann", "Ann Lee", "ann@example.com", "Engineering", "Platform"),
        ("u-eq", "=Eq, Inc", None, None, "-Ops"),
        ("u-new", "Newcomer", None, "Sales", None),
    ]
    # Again: nothing changes.
    code, _, err = run(database_url, "people", "import", str(path))
    assert "3 people: 0 new, 0 updated, 3 unchanged." in err
    # The export writes the same directory back (formula-like cells made inert), and
    # importing it changes nothing.
    code, out, _ = run(database_url, "people", "export")
    assert code == 0
    assert out.splitlines() == [
        HEADER.strip(),
        "u-ann,Ann Lee,ann@example.com,Engineering,Platform",
        "u-eq,\"'=Eq, Inc\",,,'-Ops",
        "u-new,Newcomer,,Sales,",
    ]
    exported = tmp_path / "exported.csv"
    assert run(database_url, "people", "export", "-o", str(exported))[0] == 0
    code, _, err = run(database_url, "people", "import", str(exported))
    assert "3 people: 0 new, 0 updated, 3 unchanged." in err
    assert [entry.action for entry in audit.entries(db, action=audit.PEOPLE_IMPORTED)] == [
        audit.PEOPLE_IMPORTED
    ] * 3


def test_a_bad_row_refuses_the_file_naming_row_and_column(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(
        HEADER + "u-1,One,,,\r\nu-2,,not-an-address,,\r\n,,,,\r\nu-3,,," + "x" * 256 + ",\r\n"
        "u-1,,,,\r\n",
        newline="",
    )
    code, _, err = run(database_url, "people", "import", str(path))
    assert code == 2
    assert "row 3, column email: is not a valid e-mail address" in err
    assert "row 5, column department: must have at most 255 characters" in err
    assert "row 6, column user_id: repeats the user id of row 2" in err
    assert _people(db) == []  # nothing stored, not even the good row
    path.write_text("id,name\r\nu-1,One\r\n", newline="")
    code, _, err = run(database_url, "people", "import", str(path))
    assert code == 2
    assert "row 1: the header must be user_id,name,email,department,team" in err
    path.write_bytes(HEADER.encode() + b"u-\xff,,,,\r\n")
    assert "not UTF-8" in run(database_url, "people", "import", str(path))[2]
    assert _people(db) == []


def _upload(client: TestClient, body: str, *, token: str | None) -> object:
    data = {"csrf_token": token} if token else {}
    return client.post(
        "/admin/people",
        data=data,
        files={"file": ("people.csv", body.encode(), "text/csv")},
        follow_redirects=False,
    )


def test_the_admin_page_imports_an_upload(app: FastAPI, db: Database) -> None:
    with signed_in_client(app, role="admin") as page:
        token = csrf_token(page)
        page.headers.pop("X-CSRF-Token")  # a plain form post: the token in the form
        done = _upload(page, DIRECTORY, token=token)
        assert done.status_code == 303, done.text  # type: ignore[attr-defined]
        shown = page.get("/admin/people").text
        assert "Imported people.csv: 3 people, 3 new, 0 updated, 0 unchanged." in shown
        assert "3 people in the directory" in shown
        assert "Imported people.csv" not in page.get("/admin/people").text  # once
        entry = audit.entries(db, action=audit.PEOPLE_IMPORTED)[0]
        assert entry.actor == "admin@example.com"
        assert entry.details["created"] == 3
        csv = page.get("/admin/people/directory.csv")
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text.startswith(HEADER + "u-ann,Ann Lee")

        bad = _upload(page, HEADER + "u-9,,,,\r\nu-10,,x@,,\r\n", token=token)
        assert bad.status_code == 400  # type: ignore[attr-defined]
        assert "row 3, column email: is not a valid e-mail address" in re.sub(
            r"\s+",
            " ",
            bad.text,  # type: ignore[attr-defined]
        )
        assert len(_people(db)) == 3
        # Without the form's token: refused, nothing imported.
        refused = _upload(page, HEADER + "u-11,,,,\r\n", token=None)
        assert refused.status_code == 403  # type: ignore[attr-defined]
        assert len(_people(db)) == 3
    with signed_in_client(app, role="viewer") as viewer:
        assert viewer.get("/admin/people", follow_redirects=False).status_code == 403
        assert _upload(viewer, HEADER + "u-12,,,,\r\n", token=None).status_code == 403  # type: ignore[attr-defined]
    assert len(_people(db)) == 3


def test_the_export_command_takes_people_filters(database_url: str, db: Database) -> None:
    events = [
        make_event(user={"id": "u-a", "team": "Ops"}, started_at="2026-11-25T10:00:00Z"),
        make_event(user={"id": "u-b", "department": "IT"}, started_at="2026-11-25T11:00:00Z"),
    ]
    assert ingest(UsageStore(db), events, now_us=2**62).count("accepted") == 2
    day = ("--start", "2026-11-25", "--tz", "UTC")
    code, out, err = run(database_url, "export", *day, "--team", "Ops")
    assert code == 0, err
    assert [line.split(",")[0] for line in out.splitlines()[1:]] == ["u-a"]
    code, out, _ = run(database_url, "export", *day, "--granularity", "teams", "--by", "department")
    assert [line.split(",")[:3] for line in out.splitlines()[1:]] == [
        ["IT", "1", "1"],
        ["", "1", "1"],
    ]
    code, out, _ = run(database_url, "export", *day, "--granularity", "events", "--user-id", "u-b")
    assert len(out.splitlines()) == 2
    code, _, err = run(database_url, "export", *day, "--team", "x" * 256)
    assert code == 2
    assert "team: must have at most 255 characters" in err
