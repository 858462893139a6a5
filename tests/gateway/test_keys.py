"""Gateway keys: a person key names its person (command line and Keys page), the page
shows the person as the directory of users knows them, and creating and revoking are
audited with the person."""

from __future__ import annotations

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.conftest import make_event
from tests.support.console import make_account, post_form, sign_in
from tokenledger.auth import audit
from tokenledger.auth.keys import create_key, list_keys
from tokenledger.cli import app as cli
from tokenledger.store.database import Database

runner = CliRunner()


def _cli(database_url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(cli, ["--database-url", database_url, *args])
    return result.exit_code, result.stdout + result.stderr


def result_secret(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("tl_"))


def test_keys_create_for_a_person_on_the_command_line(database_url: str, db: Database) -> None:
    code, out = _cli(database_url, "keys", "create", "--scope", "gateway", "--user-id", "emp-1042")
    assert code == 0, out
    assert "for emp-1042" in out
    assert result_secret(out).startswith("tl_")
    [key] = list_keys(db)
    assert (key.scope, key.user_id, key.name) == ("gateway", "emp-1042", "emp-1042")
    code, listing = _cli(database_url, "keys", "list")
    assert "emp-1042" in listing
    assert _cli(database_url, "keys", "create", "--scope", "gateway")[0] == 2  # no person
    code, out = _cli(
        database_url, "keys", "create", "--scope", "ingest", "--name", "x", "--user-id", "e"
    )
    assert code == 2
    assert "only a gateway key names a person" in out
    assert _cli(database_url, "keys", "revoke", str(key.id))[0] == 0
    created, revoked = (
        audit.entries(db, action=audit.KEY_CREATED),
        audit.entries(db, action=audit.KEY_REVOKED),
    )
    assert created[0].details["user_id"] == "emp-1042"
    assert revoked[0].details == {
        "key_id": key.id,
        "name": "emp-1042",
        "prefix": key.prefix,
        "scope": "gateway",
        "user_id": "emp-1042",
    }


def test_the_keys_page_shows_each_gateway_keys_person(client: TestClient, db: Database) -> None:
    make_account(db, "admin@example.com", "admin")
    assert sign_in(client, "admin@example.com").status_code == 303
    ingest = create_key(db, name="events", scope="ingest", now_us=0)[1]
    event = make_event(
        user={"id": "emp-1042", "name": "Nguyễn Thị Thảo", "email": "thao@example.com"}
    )
    stored = client.post(
        "/api/v1/events", json={"events": [event]}, headers={"Authorization": f"Bearer {ingest}"}
    )
    assert stored.status_code == 200
    made = post_form(client, "/admin/keys", {"name": "", "scope": "gateway", "user_id": "emp-1042"})
    assert made.status_code == 303
    post_form(client, "/admin/keys", {"name": "", "scope": "gateway", "user_id": "emp-new"})
    page = client.get("/admin/keys").text
    row = page.split("Nguyễn Thị Thảo")[1].split("</tr>")[0]
    assert "thao@example.com" in row
    assert "emp-1042" in row
    assert "emp-new" in page  # a person without usage yet: their id
    refused = post_form(client, "/admin/keys", {"name": "", "scope": "gateway", "user_id": ""})
    assert refused.status_code == 400
    assert "needs the user id of its person" in refused.text
    actors = {entry.actor for entry in audit.entries(db, action=audit.KEY_CREATED)}
    assert "admin@example.com" in actors
    assert {key.user_id for key in list_keys(db)} == {None, "emp-1042", "emp-new"}
