"""The trigram search index finds exactly what the plain substring test finds, and
follows the people as they are added, renamed and removed (both backends)."""

from __future__ import annotations

import random

from sqlalchemy import create_engine, inspect, text

from tokenledger.search import fold, search_key
from tokenledger.store import search_index
from tokenledger.store.database import Database
from tokenledger.store.people import Person, import_people
from tokenledger.store.schema import metadata
from tokenledger.store.usage_store import UsageStore
from tokenledger.usage import UserFilter

NOW_US = 1_790_000_000_000_000
# Pieces of names: accents, letters that do not decompose, LIKE and FTS5 syntax,
# quotes, a backslash, and characters whose folding changes their length.
SYLLABLES = (
    "ngu",
    "yễn",
    "Đặ",
    "ng",
    "sha",
    "rma",
    "Lef",
    "èvre",
    "Kow",
    "alc",
    "zyk",
    "ana",
    "stá",
    "sia",
    "Øst",
    "Æbe",
    "ß",
    "ﬁ",
    "℡",
    "50%",
    "a_b",
    'q"t',
    "o'r",
    "b\\s",
    "NEAR",
    "AND",
    "*",
    "^",
    ":",
    "-",
    " ",
)


def _people(count: int, seed: int = 18) -> list[Person]:
    rng = random.Random(seed)

    def word(parts: int) -> str:
        return "".join(rng.choice(SYLLABLES) for _ in range(parts))

    return [
        Person(
            f"u-{index}-{word(1)}",
            name=word(rng.randint(1, 4)) if rng.random() < 0.9 else None,
            email=f"{word(2)}@{word(1)}.example" if rng.random() < 0.7 else None,
        )
        for index in range(count)
    ]


def _found(store: UsageStore, q: str) -> set[str]:
    with store.read() as reader:
        return {profile[0] for _, profile in reader.matching_users(UserFilter(q=q))}


def _expected(people: list[Person], q: str) -> set[str]:
    needle = fold(q.strip())
    return {p.user_id for p in people if needle in search_key(p.user_id, p.name, p.email)}


def test_indexed_search_matches_the_plain_substring_test(db: Database) -> None:
    people = _people(400)
    import_people(db, people, now_us=NOW_US)
    store = UsageStore(db)
    rng = random.Random(7)
    queries = {"nguyen", "NGUYỄN", "dang", "50%", "a_b", "%", "_", '"', 'q"t', "b\\s", "\\"}
    queries |= {"near", "and", "*", "st:", "-k", "fi", "tel", "ss", "ae", "øst", "zzzz"}
    for person in rng.sample(people, 60):
        key = search_key(person.user_id, person.name, person.email)
        length = rng.randint(1, 6)
        start = rng.randint(0, max(len(key) - length, 0))
        queries.add(key[start : start + length])
    checked = 0
    for q in sorted(queries):
        if not q.strip():
            continue
        assert _found(store, q) == _expected(people, q), q
        checked += len(fold(q.strip())) >= search_index.MIN_LETTERS
    assert checked > 40  # most queries went through the index


def test_the_index_follows_renames_and_new_people(db: Database) -> None:
    store = UsageStore(db)
    import_people(db, [Person("u-1", name="Nguyễn Văn An")], now_us=NOW_US)
    assert _found(store, "nguyen") == {"u-1"}
    import_people(
        db, [Person("u-1", name="Trần Thị Bình"), Person("u-2", name="An Nguyen")], now_us=NOW_US
    )
    assert _found(store, "nguyen") == {"u-2"}
    assert _found(store, "tran thi") == {"u-1"}
    with db.write() as conn:
        conn.execute(text("DELETE FROM people_directory"))
        conn.execute(text("DELETE FROM users WHERE external_id = 'u-2'"))
    assert _found(store, "nguyen") == set()
    if db.dialect.name == "sqlite":
        with db.read() as conn:
            check = "INSERT INTO users_search (users_search) VALUES ('integrity-check')"
            assert conn.execute(text("SELECT count(*) FROM users_search")).scalar() == 1
        with db.write() as conn:
            conn.execute(text(check))  # fails if the index and the table disagree


def _index_objects(db: Database) -> set[str]:
    found = inspect(db.engine)
    names = set(found.get_table_names())
    names |= {index["name"] or "" for index in found.get_indexes("users")}
    return {name for name in names if not search_index.include_name(name, "table", {})}


def test_migrations_and_schema_py_both_make_the_index(db: Database) -> None:
    expected = (
        search_index.SQLITE_TABLE if db.dialect.name == "sqlite" else search_index.POSTGRES_INDEX
    )
    assert expected in _index_objects(db)
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (external_id, search_key, first_us, last_us) "
                "VALUES ('u', 'nguyen\nx\nu', 0, 0)"
            )
        )
        found = conn.execute(
            text("SELECT rowid FROM users_search WHERE users_search MATCH '\"guy\"'")
        ).all()
    engine.dispose()
    assert len(found) == 1
