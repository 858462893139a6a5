"""The fast path of event validation (``events.plain_fields``) against the model.

The fast path may give up on any event (the model then decides), but an event it
accepts must be one the model accepts, with the same values. Hypothesis mixes valid
and invalid values of every field, missing and unknown fields, to hold it to that.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tokenledger.events import (
    MAX_COUNT,
    Event,
    EventIn,
    model_fields,
    plain_fields,
    validate_event,
)
from tokenledger.localdays import to_us

PLAIN: dict[str, Any] = {
    "event_id": "req-1",
    "user": {"id": "emp-1", "name": "Åsa Tanaka", "email": "asa@example.com"},
    "started_at": "2026-11-25T09:30:00.123+01:00",
    "duration_ms": 1200,
    "model": "gpt-4o",
    "provider": "openai",
    "input_tokens": 900,
    "output_tokens": 120,
    "cache_read_tokens": 100,
    "reasoning_tokens": 20,
    "status": "ok",
    "cost_usd": "0.000225",
    "metadata": {"app": "chat", "nested": [1, 2.5, {"x": None}]},
}

TEXTS = ["", " ", "a", "x" * 255, "x" * 256, "é" * 255, "tab\there", "nul\x00", "lone \ud800"]
NUMBERS = [0, 1, 7, MAX_COUNT, MAX_COUNT + 1, -1, 1.0, 2.5, True, False, "12", None]
TIMES = [
    "2026-11-25T09:30:00Z",
    "2026-11-25t09:30:00.5z",
    "2026-11-25 09:30:00+05:30",
    "2026-11-25T09:30:00",
    "2026-02-30T09:30:00Z",
    "2026-11-25T09:30:00.1234567890Z",
    "2026-11-25T25:30:00Z",
    "yesterday",
    "١٩٩٩-01-01T00:00:00Z",
    "2026-11-25T09:30:00\ud800Z",
    None,
    1,
]
EMAILS = ["", "a@b.c", "no-at", "ü@exämple.de", "a" * 65 + "@x.io", "a@-x.io", "t\t@x.io", None]
COSTS = ["0.1", "1e3", "-1", "1000000.0000000001", 0, 3, 0.1, float("inf"), -0.5, True, [], None]
METADATA = [
    {},
    {"a": "line\nbreak"},
    {"a": "\ud800"},
    {"\x00": 1},
    {"n": 2**63},
    {"f": float("nan")},
    {1: "non-text key"},
    {"deep": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]},
    {"usage_missing": True},
    [],
    "text",
    None,
]
USERS = [
    {"id": "u"},
    {"id": "u", "nick": "x"},
    {"id": ""},
    {"name": "no id"},
    {"id": "u", "email": None, "team": None},
    "u",
    None,
    *({"id": "u", "email": email} for email in EMAILS),
    *({"id": text, "name": text, "department": text} for text in TEXTS),
]
SPECIAL: dict[str, list[Any]] = {
    "started_at": TIMES,
    "cost_usd": COSTS,
    "metadata": METADATA,
    "status": ["ok", "error", "OK", "", None, 1],
    "user": USERS,
}
CANDIDATES = {name: SPECIAL.get(name, [*TEXTS, *NUMBERS]) for name in [*PLAIN, "extra"]}
ABSENT = object()  # the field left out


def _agree(raw: dict[str, Any]) -> None:
    fast = plain_fields(raw)
    try:
        parsed = EventIn.model_validate(raw)
    except ValidationError:
        assert fast is None, raw
        return
    if fast is not None:
        assert fast == model_fields(parsed), raw


def test_the_fast_path_agrees_with_the_model_on_every_single_change() -> None:
    accepted = 0
    for name, values in CANDIDATES.items():
        for value in [ABSENT, *values]:
            raw = {key: item for key, item in PLAIN.items() if key != name}
            if value is not ABSENT:
                raw[name] = value
            _agree(raw)
            accepted += plain_fields(raw) is not None
    assert accepted > 50  # it does take the fast path for many of them


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    raw = dict(PLAIN)
    for name in draw(st.lists(st.sampled_from(list(CANDIDATES)), max_size=5, unique=True)):
        value = draw(st.sampled_from([ABSENT, *CANDIDATES[name]]))
        if value is ABSENT:
            raw.pop(name, None)
        else:
            raw[name] = value
    return raw


@settings(max_examples=300, deadline=None)
@given(events())
def test_the_fast_path_agrees_with_the_model_on_any_mix_of_changes(raw: dict[str, Any]) -> None:
    _agree(raw)


def test_a_plain_event_takes_the_fast_path_and_becomes_the_same_event() -> None:
    fields = plain_fields(PLAIN)
    assert fields is not None
    assert fields["cost_usd"] == 225_000  # nano-dollars
    event = validate_event(PLAIN, now_us=to_us_now(), future_tolerance_s=300)
    assert isinstance(event, Event)
    assert event.reported_cost_nanos == 225_000
    assert event.user_name == "Åsa Tanaka"
    assert event.metadata == '{"app":"chat","nested":[1,2.5,{"x":null}]}'


def test_an_event_the_fast_path_gives_up_on_is_worded_by_the_model() -> None:
    raw = {**PLAIN, "duration_ms": -1, "color": "red"}
    assert plain_fields(raw) is None
    rejection = validate_event(raw, now_us=to_us_now(), future_tolerance_s=300)
    assert not isinstance(rejection, Event)
    assert [(e.code, e.field) for e in rejection.errors] == [
        ("out_of_range", "duration_ms"),
        ("unknown_field", "color"),
    ]


def to_us_now() -> int:
    from datetime import UTC, datetime

    return to_us(datetime.now(UTC))
