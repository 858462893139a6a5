"""The people directory as a CSV file: ``user_id,name,email,department,team``.

:func:`read_directory` checks a whole file before anything is stored: every bad row
is named (row number as a spreadsheet shows it, column, reason), and one bad row
refuses the file. Cells are checked as the same fields of an event are (``user.id``,
``user.name``, ...). An empty cell is "no value": the person's events then decide.
:func:`directory_csv` writes the directory back, with cells made inert for
spreadsheets as every export does; reading such a file gives the same values.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pydantic import ValidationError

from tokenledger.auth import audit
from tokenledger.events import UserIn
from tokenledger.export import csv_chunks, escape_cell
from tokenledger.store.database import Database
from tokenledger.store.people import ImportResult, Person, import_people

COLUMNS = ("user_id", "name", "email", "department", "team")
_FIELD_COLUMN = {"id": "user_id", "name": "name", "email": "email"} | {
    "department": "department",
    "team": "team",
}
MAX_ERRORS = 20


@dataclass(frozen=True)
class RowError:
    row: int  # 1 is the header
    column: str
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


class DirectoryError(ValueError):
    """The file cannot be imported; ``errors`` names the first bad rows."""

    def __init__(self, errors: list[RowError], *, more: bool = False) -> None:
        self.errors = errors
        self.more = more
        shown = "; ".join(str(error) for error in errors)
        super().__init__(shown + ("; and more" if more else ""))


def _cell(value: str) -> str | None:
    """A cell's value: None when blank; an export's ``'`` before a formula sign undone."""
    if value.startswith("'") and escape_cell(value[1:]) == value:
        value = value[1:]
    return value if value.strip() else None


def read_directory(lines: Iterable[str]) -> list[Person]:
    """The people of a directory file (text lines, any line ending, an optional BOM);
    DirectoryError when the header or any row is wrong."""
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DirectoryError([RowError(1, "", f"is not valid CSV ({exc})")]) from exc
    if header is None:
        raise DirectoryError([RowError(1, "", "the file is empty; expected " + ",".join(COLUMNS))])
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    names = [name.strip().lower() for name in header]
    if names != list(COLUMNS):
        raise DirectoryError(
            [RowError(1, "", f"the header must be {','.join(COLUMNS)} (found {','.join(header)})")]
        )
    people: list[Person] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    row = 1
    try:
        for row, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue  # a blank line
            person, problems = _person(row, cells)
            if person is not None and person.user_id in seen:
                first = seen[person.user_id]
                problems.append(RowError(row, "user_id", f"repeats the user id of row {first}"))
            errors += problems
            if person is not None and not problems:
                seen[person.user_id] = row
                people.append(person)
            if len(errors) > MAX_ERRORS:
                break
    except csv.Error as exc:
        errors.append(RowError(row + 1, "", f"is not valid CSV ({exc})"))
    if errors:
        raise DirectoryError(errors[:MAX_ERRORS], more=len(errors) > MAX_ERRORS)
    return people


def _person(row: int, cells: list[str]) -> tuple[Person | None, list[RowError]]:
    if len(cells) != len(COLUMNS):
        message = f"has {len(cells)} cells; expected {len(COLUMNS)} ({','.join(COLUMNS)})"
        return None, [RowError(row, "", message)]
    values = dict(zip(COLUMNS, (_cell(cell) for cell in cells), strict=True))
    if values["user_id"] is None:
        return None, [RowError(row, "user_id", "is required")]
    try:
        user = UserIn.model_validate(
            {"id": values["user_id"]}
            | {name: values[name] for name in COLUMNS[1:] if values[name] is not None}
        )
    except ValidationError as exc:
        return None, [
            RowError(row, _FIELD_COLUMN.get(str(error["loc"][0]), ""), _message(error["msg"]))
            for error in exc.errors(include_url=False)
        ]
    return Person(user.id, user.name, user.email, user.department, user.team), []


def _message(message: str) -> str:
    for prefix in ("String should", "Value should", "Input should"):
        if message.startswith(prefix):
            return "must" + message[len(prefix) :]
    return message


def directory_csv(people: Iterable[Person]) -> Iterator[bytes]:
    """The directory as CSV chunks (header first), read back by :func:`read_directory`."""

    def cells(person: Person) -> list[str]:
        return [escape_cell(value or "") for value in (person.user_id, *person.values)]

    return csv_chunks(COLUMNS, (cells(person) for person in people))


def parse_upload(data: bytes) -> list[Person]:
    """The people of an uploaded directory file (UTF-8, with or without a BOM)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        message = f"the file is not UTF-8 text (byte {exc.start + 1})"
        raise DirectoryError([RowError(1, "", message)]) from exc
    return read_directory(io.StringIO(text, newline=""))


def import_directory(
    db: Database,
    people: list[Person],
    *,
    now_us: int,
    actor: str,
    source: str,
    client: str | None = None,
) -> ImportResult:
    """Store a checked directory and note it in the audit log."""
    result = import_people(db, people, now_us=now_us)
    details = {
        "source": source,
        "people": len(people),
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
    }
    audit.record(
        db, actor=actor, action=audit.PEOPLE_IMPORTED, details=details, now_us=now_us, client=client
    )
    return result
