"""The container image: its Dockerfile and compose.yaml, and its install steps run for
real. Containers cannot run on the test machine (see docs/operations.md), so the test
runs the image's install script into a temporary prefix, as the Dockerfile does, and
starts what it installed: ready, and it takes an event."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import yaml

from tests.conftest import make_event
from tests.support.server import ServerProcess

ROOT = Path(__file__).resolve().parents[1]


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def _only(instruction: str) -> list[str]:
    return [arguments for name, arguments in _instructions() if name == instruction]


def test_the_image_installs_with_the_script_and_runs_as_a_user() -> None:
    (base,) = _only("ARG")
    assert re.fullmatch(r"PYTHON_IMAGE=docker\.io/library/python:3\.11-slim-\w+", base)
    assert _only("FROM") == ["${PYTHON_IMAGE}"]
    installs = [run for run in _only("RUN") if "container-install.sh" in run]
    assert installs == [
        "sh /build/scripts/container-install.sh /build /opt/tokenledger && rm -rf /build"
    ]
    (user,) = _only("USER")
    assert user not in {"root", "0"}
    assert any(f"--create-home {user}" in run for run in _only("RUN"))
    assert json.loads(_only("VOLUME")[0]) == ["/var/lib/tokenledger"]
    assert (
        "TOKENLEDGER_DATABASE_URL=sqlite:////var/lib/tokenledger/tokenledger.db" in _only("ENV")[1]
    )
    everywhere = "0.0.0.0"  # noqa: S104 (in the container, as a container must)
    assert json.loads(_only("CMD")[0]) == ["tokenledger", "serve", "--host", everywhere]
    assert "/readyz" in _only("HEALTHCHECK")[0]


def test_compose_runs_the_image_with_postgresql() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    app, database = compose["services"]["tokenledger"], compose["services"]["postgres"]
    assert app["build"] == "."
    assert app["environment"]["TOKENLEDGER_DATABASE_URL"].startswith(
        "postgresql+psycopg://tokenledger:${POSTGRES_PASSWORD"
    )
    assert app["environment"]["TOKENLEDGER_DATABASE_URL"].endswith("@postgres:5432/tokenledger")
    assert app["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "/readyz" in " ".join(app["healthcheck"]["test"])
    assert database["image"] == "docker.io/library/postgres:15"
    assert database["environment"]["POSTGRES_DB"] == "tokenledger"
    assert database["volumes"] == ["postgres-data:/var/lib/postgresql/data"]


def _build_context(target: Path) -> None:
    """What the Dockerfile's COPY lines put in /build, put in ``target``."""
    for arguments in _only("COPY"):
        *sources, destination = arguments.split()
        for source in sources:
            into = target / destination.removeprefix("/build/").removeprefix("/build")
            if (ROOT / source).is_dir():
                shutil.copytree(
                    ROOT / source, into, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
                )
            else:
                into = into / source if destination.endswith("/") else into
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ROOT / source, into)


def test_what_the_install_script_installs_serves_and_takes_an_event(tmp_path: Path) -> None:
    context, prefix, volume = tmp_path / "build", tmp_path / "opt", tmp_path / "volume"
    _build_context(context)
    assert (context / "scripts" / "container-install.sh").is_file()
    installed = subprocess.run(
        ["sh", str(context / "scripts" / "container-install.sh"), str(context), str(prefix)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr
    tokenledger = str(prefix / "bin" / "tokenledger")
    database_url = f"sqlite:///{volume / 'tokenledger.db'}"
    server = ServerProcess(
        database_url,
        tmp_path,
        command=[tokenledger],
        TOKENLEDGER_ADMIN_PASSWORD="container-admin-password",
    )
    with server:
        assert httpx.get(f"{server.url}/readyz").json() == {"status": "ready"}
        made = subprocess.run(
            [
                tokenledger,
                "--database-url",
                database_url,
                "keys",
                "create",
                "--name",
                "c",
                "--scope",
                "ingest",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        key = made.stdout.strip().splitlines()[-1]
        now = datetime.now(UTC).replace(microsecond=0).isoformat()
        sent = httpx.post(
            f"{server.url}/api/v1/events",
            json={"events": [make_event(started_at=now)]},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert (sent.status_code, sent.json()["accepted"]) == (200, 1)
    # It ran the installed copy, not the sources of this checkout.
    assert (
        "/opt/lib/python"
        in subprocess.run(
            [
                str(prefix / "bin" / "python"),
                "-c",
                "import tokenledger; print(tokenledger.__file__)",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
