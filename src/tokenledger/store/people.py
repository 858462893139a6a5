"""The people directory: who belongs to which team and department, as an admin loads it.

``people_directory`` holds the directory as last imported, one row per person. A
non-empty value there is the person's (copied into ``users``, where reports read it)
whatever their events send; an empty one leaves that field to the events (see
``PROFILE_FIELDS`` in :mod:`tokenledger.store.writes`). A person the directory names
who has sent nothing yet gets a ``users`` row with no activity span (first request after
last: no range can hold it) until their first event.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import astuple, dataclass

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from tokenledger.search import search_key
from tokenledger.store.database import Database
from tokenledger.store.schema import people_directory, users
from tokenledger.store.writes import user_lock_key

# The activity span of a person without requests: no range contains it, and the first
# event's instant replaces both ends (min / max).
NO_FIRST_US = 2**62
NO_LAST_US = -(2**62)

FIELDS = ("name", "email", "department", "team")
_CHUNK = 500


@dataclass(frozen=True)
class Person:
    """One row of the directory: a user id and the values it sets (None: no value)."""

    user_id: str
    name: str | None = None
    email: str | None = None
    department: str | None = None
    team: str | None = None

    @property
    def values(self) -> tuple[str | None, ...]:
        return astuple(self)[1:]


@dataclass(frozen=True)
class ImportResult:
    created: int  # people not known before
    updated: int  # people whose directory row changed
    unchanged: int


def import_people(db: Database, people: Sequence[Person], *, now_us: int) -> ImportResult:
    """Write ``people`` (distinct user ids) into the directory in one transaction; rows
    equal to the stored ones change nothing."""

    def work(conn: Connection) -> ImportResult:
        db.dialect.lock_users(conn, (user_lock_key(person.user_id) for person in people))
        created = updated = 0
        for start in range(0, len(people), _CHUNK):
            chunk = people[start : start + _CHUNK]
            known = _known(conn, [person.user_id for person in chunk])
            for person in chunk:
                found = known.get(person.user_id)
                if found is None:
                    _create(conn, person, now_us=now_us)
                    created += 1
                elif found[1] != person.values:
                    _update(conn, found[0], found[1], person, now_us=now_us)
                    updated += 1
        return ImportResult(created, updated, len(people) - created - updated)

    return db.run_write(work)


def _known(
    conn: Connection, user_ids: list[str]
) -> dict[str, tuple[int, tuple[str | None, ...] | None]]:
    """``{user id: (users.id, the directory's values or None)}`` of known people."""
    columns = ", ".join(f"d.{name}" for name in FIELDS)
    query = text(
        f"SELECT u.external_id, u.id, d.user_pk, {columns} FROM users u "
        "LEFT JOIN people_directory d ON d.user_pk = u.id WHERE u.external_id IN :ids"
    ).bindparams(bindparam("ids", expanding=True))
    return {
        row[0]: (row[1], None if row[2] is None else tuple(row[3:]))
        for row in conn.execute(query, {"ids": user_ids})
    }


def _create(conn: Connection, person: Person, *, now_us: int) -> None:
    values = dict(zip(FIELDS, person.values, strict=True))
    user_pk = conn.execute(
        users.insert().returning(users.c.id),
        {
            "external_id": person.user_id,
            **values,
            "search_key": search_key(person.user_id, person.name, person.email),
            "first_us": NO_FIRST_US,
            "last_us": NO_LAST_US,
        },
    ).scalar_one()
    conn.execute(people_directory.insert(), {"user_pk": user_pk, **values, "imported_us": now_us})


def _update(
    conn: Connection,
    user_pk: int,
    before: tuple[str | None, ...] | None,
    person: Person,
    *,
    now_us: int,
) -> None:
    values = dict(zip(FIELDS, person.values, strict=True))
    if before is None:
        conn.execute(
            people_directory.insert(), {"user_pk": user_pk, **values, "imported_us": now_us}
        )
    else:
        conn.execute(
            people_directory.update()
            .where(people_directory.c.user_pk == user_pk)
            .values(**values, imported_us=now_us)
        )
    # A directory value replaces the person's; a value the directory drops is cleared
    # (its time too), so that the next event's value is taken.
    current = conn.execute(
        text(f"SELECT external_id, {', '.join(FIELDS)} FROM users WHERE id = :pk"),
        {"pk": user_pk},
    ).one()
    changes: dict[str, str | None] = {}
    for index, name in enumerate(FIELDS):
        new, old = person.values[index], None if before is None else before[index]
        if new is not None:
            changes[name], changes[f"{name}_at_us"] = new, None
        elif old is not None:
            changes[name], changes[f"{name}_at_us"] = None, None
    if changes:
        profile = {name: current[1 + index] for index, name in enumerate(FIELDS)} | changes
        changes["search_key"] = search_key(current[0], profile["name"], profile["email"])
        conn.execute(users.update().where(users.c.id == user_pk).values(**changes))


def directory(db: Database) -> Iterator[Person]:
    """The directory as imported, by user id (streamed)."""
    query = text(
        f"SELECT u.external_id, {', '.join(f'd.{name}' for name in FIELDS)} "
        "FROM people_directory d JOIN users u ON u.id = d.user_pk ORDER BY u.external_id"
    )
    with db.read() as conn:
        for row in conn.execution_options(stream_results=True, yield_per=1000).execute(query):
            yield Person(*row)
