"""The usage event (one AI request): the ingest contract and its validation.

Each event is validated on its own. A valid event becomes an immutable :class:`Event`
with its instant in microseconds (UTC) and a content hash that tells a harmless retry
(same content) from a conflicting reuse of an ``event_id``. An invalid one becomes a
:class:`Rejection` with a machine-readable code and a message naming the field.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from tokenledger.localdays import US_PER_SECOND, to_us

MAX_COUNT = 2**53
METADATA_MAX_BYTES = 8 * 1024
# The metadata key that marks a request whose usage never arrived (Event.usage_missing).
USAGE_MISSING = "usage_missing"
METADATA_MAX_DEPTH = 16
EARLIEST_US = to_us(datetime.fromisoformat("1900-01-01T00:00:00+00:00"))

Count = Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
# A reported cost: at most one million dollars per request, kept to the nano-dollar.
MAX_COST_USD = Decimal(1_000_000)
NANO = Decimal("1e-9")
_COST_TEXT = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,40})?")
Text255 = Annotated[StrictStr, Field(max_length=255)]

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})"
)
_NAIVE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?")
# WHATWG's "valid e-mail address", widened to accept non-ASCII letters (EAI/IDN).
_EMAIL = re.compile(
    r"[\w.!#$%&'*+/=?^`{|}~-]+@[^\W_](?:[\w-]{0,61}[^\W_])?(?:\.[^\W_](?:[\w-]{0,61}[^\W_])?)*"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# One scan finds any character that is refused somewhere; only then say which.
_SUSPECT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


_LONE_SURROGATE = "must be valid Unicode (lone surrogate)"


def escape_surrogates(value: str) -> str:
    """``value`` as UTF-8 can carry it: each lone surrogate (which JSON can hold but
    UTF-8 cannot) written as its ``\\udXXX`` escape. For text an answer echoes."""
    if not _SURROGATE.search(value):
        return value
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _clean_text(value: str, *, allow_controls: bool = False) -> str:
    if not _SUSPECT.search(value):
        return value
    if "\x00" in value:
        raise PydanticCustomError("invalid_string", "must not contain NUL characters")
    if _SURROGATE.search(value):
        raise PydanticCustomError("invalid_string", _LONE_SURROGATE)
    if not allow_controls and _CONTROL.search(value):
        raise PydanticCustomError("invalid_string", "must not contain control characters")
    return value


class UserIn(BaseModel):
    """``user`` of an event: who made the request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[StrictStr, Field(min_length=1, max_length=255)]
    name: Text255 | None = None
    email: Annotated[StrictStr, Field(max_length=320)] | None = None
    department: Text255 | None = None
    team: Text255 | None = None

    @field_validator("id", "name", "department", "team")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return None if value is None else _clean_text(value)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        _clean_text(value)
        if not _EMAIL.fullmatch(value) or len(value.partition("@")[0]) > 64:
            raise PydanticCustomError("invalid_email", "is not a valid e-mail address")
        return value


class EventIn(BaseModel):
    """One AI request as sent to ``POST /api/v1/events``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Annotated[StrictStr, Field(min_length=1, max_length=255)]
    user: UserIn
    started_at: Annotated[
        StrictStr,
        Field(
            description="RFC 3339 timestamp with offset, e.g. 2026-11-25T09:30:00+01:00",
            examples=["2026-11-25T09:30:00Z"],
            json_schema_extra={"pattern": f"^{_RFC3339.pattern}$"},
        ),
    ]
    duration_ms: Count
    model: Text255 | None = None
    provider: Text255 | None = None
    input_tokens: Count
    output_tokens: Count
    cache_read_tokens: Count | None = Field(None, description="Part of input_tokens.")
    cache_write_tokens: Count | None = Field(None, description="Part of input_tokens.")
    reasoning_tokens: Count | None = Field(None, description="Part of output_tokens.")
    status: Literal["ok", "error"] = "ok"
    cost_usd: StrictStr | StrictInt | StrictFloat | None = Field(
        None,
        description=(
            "What the request cost in US dollars, when the gateway computed it (e.g. "
            "LiteLLM's response_cost): a decimal string (preferred, exact) or a number "
            ">= 0, kept to the nano-dollar. Without it, the cost comes from the prices."
        ),
        examples=["0.000225"],
    )
    metadata: dict[str, Any] | None = Field(
        None, description="Free-form JSON object up to 8 KB; stored, not aggregated."
    )

    @field_validator("event_id", "model", "provider")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return None if value is None else _clean_text(value)

    @field_validator("started_at")
    @classmethod
    def _timestamp(cls, value: str) -> str:
        _clean_text(value)  # a lone surrogate is named as such, as in every text
        if not _RFC3339.fullmatch(value):
            if _NAIVE.fullmatch(value):
                raise PydanticCustomError(
                    "timestamp_without_offset",
                    "needs a UTC offset or Z (RFC 3339), e.g. 2026-11-25T09:30:00Z",
                )
            raise PydanticCustomError(
                "invalid_timestamp", "must be an RFC 3339 timestamp, e.g. 2026-11-25T09:30:00Z"
            )
        try:
            datetime.fromisoformat(value)
        except ValueError as exc:
            raise PydanticCustomError(
                "invalid_timestamp", "is not a real date and time: {reason}", {"reason": str(exc)}
            ) from exc
        return value

    @field_validator("cost_usd", mode="before")
    @classmethod
    def _cost(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise PydanticCustomError(
                "invalid_type", "must be a decimal string or a number of US dollars"
            )
        cost_nanos(value)
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        _check_json_value(value, depth=1)
        return value


def cost_nanos(value: str | int | float) -> int:
    """A reported cost in dollars as integer nano-dollars (rounded half to even);
    PydanticCustomError for a value that is not a plain decimal in range."""
    if isinstance(value, str):
        if not _COST_TEXT.fullmatch(value):
            raise PydanticCustomError(
                "invalid_value", 'must be a decimal number of US dollars, e.g. "0.0123"'
            )
        amount = Decimal(value)
    else:
        try:
            # A JSON number arrives as a float: its shortest spelling is what was sent.
            amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        except InvalidOperation as exc:  # pragma: no cover - repr of a float is decimal
            raise PydanticCustomError("invalid_value", "must be a number") from exc
        if not amount.is_finite():
            raise PydanticCustomError("out_of_range", "must be a finite number")
    if amount < 0:
        raise PydanticCustomError("out_of_range", "must be >= 0")
    if amount > MAX_COST_USD:
        raise PydanticCustomError("out_of_range", "must be at most 1000000 (US dollars)")
    return int(amount.quantize(NANO, rounding=ROUND_HALF_EVEN).scaleb(9))


def _check_json_value(value: Any, *, depth: int) -> None:
    if depth > METADATA_MAX_DEPTH:
        raise PydanticCustomError(
            "metadata_too_deep", "nests deeper than {max} levels", {"max": METADATA_MAX_DEPTH}
        )
    if isinstance(value, dict):
        for key, item in value.items():
            _clean_text(key, allow_controls=True)
            _check_json_value(item, depth=depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json_value(item, depth=depth + 1)
    elif isinstance(value, str):
        _clean_text(value, allow_controls=True)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        raise PydanticCustomError("out_of_range", "holds an integer that does not fit 64 bits")
    elif isinstance(value, float) and not math.isfinite(value):
        # JSON has no NaN or Infinity, but 1e309 reads as infinity: storing it would
        # turn it into null without a word.
        raise PydanticCustomError(
            "out_of_range", "holds a number beyond the 64-bit floating-point range"
        )


@dataclass(frozen=True, slots=True)
class Event:
    """A valid event, normalized for storage."""

    event_id: str
    user_id: str
    user_name: str | None
    user_email: str | None
    started_us: int
    duration_ms: int
    model: str | None
    provider: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int | None
    cache_write_tokens: int | None
    reasoning_tokens: int | None
    status: str
    metadata: str | None
    content_hash: bytes
    # The cost the event reported (``cost_usd``, nano-dollars); part of its content.
    reported_cost_nanos: int | None = None
    # Its cost as stored (nano-dollars; None = unpriced) and where that came from
    # (reported, own_price, catalogue, unpriced): set by the prices, not hashed.
    cost_nanos: int | None = None
    cost_source: str = "unpriced"
    # The metadata says ``"usage_missing": true`` (at its top level): the request's
    # usage never arrived (a stream cut before it; the gateway sets it), so its counts
    # are a floor, not the truth. Derived from the metadata, so not hashed apart.
    usage_missing: bool = False
    user_department: str | None = None
    user_team: str | None = None

    def priced(self, cost_nanos: int | None, cost_source: str) -> Event:
        """This event with its cost (a copy: the write path prices every event, and a
        plain constructor call is several times faster than ``dataclasses.replace``)."""
        return Event(
            self.event_id,
            self.user_id,
            self.user_name,
            self.user_email,
            self.started_us,
            self.duration_ms,
            self.model,
            self.provider,
            self.input_tokens,
            self.output_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.reasoning_tokens,
            self.status,
            self.metadata,
            self.content_hash,
            self.reported_cost_nanos,
            cost_nanos,
            cost_source,
            self.usage_missing,
            self.user_department,
            self.user_team,
        )

    def hash_in(self, version: int) -> bytes | None:
        """This event's content hash in ``version`` (to compare with a stored event)."""
        if version == HASH_VERSION:
            return self.content_hash
        fields = {name: getattr(self, attribute) for name, attribute in HASHED_FIELDS}
        return content_hash(fields, version=version)


@dataclass(frozen=True, slots=True)
class FieldError:
    code: str
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an event was not stored; ``errors`` lists every problem found."""

    errors: tuple[FieldError, ...]

    @property
    def code(self) -> str:
        return self.errors[0].code

    @property
    def field(self) -> str:
        return self.errors[0].field

    @property
    def message(self) -> str:
        return self.errors[0].message

    @classmethod
    def one(cls, code: str, field: str, message: str) -> Rejection:
        return cls((FieldError(code, field, f"{field}: {message}" if field else message),))


_PARTS = (
    ("cache_read_tokens", "input_tokens"),
    ("cache_write_tokens", "input_tokens"),
    ("reasoning_tokens", "output_tokens"),
)

_CODES = {
    "missing": "missing",
    "extra_forbidden": "unknown_field",
    "literal_error": "invalid_value",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
    "string_too_short": "too_short",
    "string_too_long": "too_long",
    "string_unicode": "invalid_string",  # a lone surrogate, like the checks of _clean_text
}
_MESSAGES = {
    "missing": "is required",
    "unknown_field": "is not a known field (check the spelling)",
}


def _friendly(message: str) -> str:
    for prefix in ("Input should", "String should", "Value should"):
        if message.startswith(prefix):
            return "must" + message[len(prefix) :]
    return message


def _field_name(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif parts:
            parts.append(f".{item}")
        else:
            parts.append(str(item))
    return "".join(parts)


def _rejection(exc: ValidationError) -> Rejection:
    errors: list[FieldError] = []
    for error in exc.errors(include_url=False):
        kind = error["type"]
        if kind.endswith("_type") or kind == "int_from_float":
            code = "invalid_type"
        elif kind in {"value_error", "assertion_error"}:
            code = "invalid_value"
        else:  # a known pydantic type, or one of our own PydanticCustomError codes
            code = _CODES.get(kind, kind)
        field = _field_name(tuple(error["loc"]))
        message = _MESSAGES.get(code) or _friendly(error["msg"])
        if kind in {"model_type", "dict_type", "model_attributes_type"}:
            message = "must be a JSON object"
        elif kind == "string_unicode":
            message = _LONE_SURROGATE
        errors.append(FieldError(code, field, f"{field}: {message}" if field else message))
    return Rejection(tuple(errors))


def _key_with_surrogate(value: Any) -> str | None:
    """The first key of a JSON object that holds a lone surrogate, escaped (pydantic
    cannot even name such a field)."""
    if isinstance(value, dict):
        for key in value:
            if _SURROGATE.search(key):
                return escape_surrogates(key)
    return None


def _non_blank(value: str | None) -> str | None:
    return value if value and value.strip() else None


def validate_event(raw: Any, *, now_us: int, future_tolerance_s: int = 300) -> Event | Rejection:
    """Validate one decoded JSON value as an event."""
    if not isinstance(raw, dict):
        return Rejection.one("invalid_type", "", "an event must be a JSON object")
    fields = plain_fields(raw)
    if fields is None:  # something to refuse, or to look at closer: the model decides
        for parent, value in (("", raw), ("user", raw.get("user"))):
            bad_key = _key_with_surrogate(value)
            if bad_key is not None:
                field = f"{parent}.{bad_key}" if parent else bad_key
                return Rejection.one("invalid_string", field, f"the field name {_LONE_SURROGATE}")
        try:
            parsed = EventIn.model_validate(raw)
        except ValidationError as exc:
            return _rejection(exc)
        fields = model_fields(parsed)
    return _event(fields, now_us=now_us, future_tolerance_s=future_tolerance_s)


# -- the fast path ---------------------------------------------------------------------
#
# Almost every event a gateway sends is valid, and plain: known fields, ordinary text,
# whole numbers in range. ``plain_fields`` checks exactly what the model checks for such
# an event, in plain Python (several times faster than building the model), and gives
# up (None) at the first thing it would have to refuse or cannot judge as simply; the
# model then validates the event and words every error. So an event is accepted by the
# fast path only if the model accepts it, with the same values
# (tests/test_event_fast_path.py holds the two to that).

# What both paths produce: the event's values as the model gives them, with
# ``cost_usd`` already in nano-dollars.
Fields = dict[str, Any]

_EVENT_KEYS = frozenset(EventIn.model_fields)
_USER_KEYS = frozenset(UserIn.model_fields)
_REQUIRED_COUNTS = ("duration_ms", "input_tokens", "output_tokens")
_OPTIONAL_COUNTS = ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
_OPTIONAL_TEXTS = ("model", "provider")
_USER_TEXTS = ("name", "department", "team")
_STATUSES = frozenset(("ok", "error"))


def _is_text(value: Any, longest: int, shortest: int = 0) -> bool:
    return (
        type(value) is str and shortest <= len(value) <= longest and _SUSPECT.search(value) is None
    )


def _is_count(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_COUNT


def plain_fields(raw: dict[Any, Any]) -> Fields | None:
    """The fields of a plain, valid event, or None (refuse it or look closer)."""
    get = raw.get
    user = get("user")
    if (
        type(raw) is not dict
        or not raw.keys() <= _EVENT_KEYS
        or type(user) is not dict
        or not user.keys() <= _USER_KEYS
        or not _is_text(get("event_id"), 255, 1)
        or not _is_text(user.get("id"), 255, 1)
    ):
        return None
    fields: Fields = {"event_id": raw["event_id"], "user_id": user["id"]}
    for name in _USER_TEXTS:
        value = user.get(name)
        if value is not None and not _is_text(value, 255):
            return None
        fields[f"user_{name}"] = value
    email = user.get("email")
    if email == "":
        email = None
    elif email is not None and not (
        _is_text(email, 320) and _EMAIL.fullmatch(email) and len(email.partition("@")[0]) <= 64
    ):
        return None
    fields["user_email"] = email
    started_at = get("started_at")
    if type(started_at) is not str or _SUSPECT.search(started_at):
        return None
    if not _RFC3339.fullmatch(started_at):
        return None
    try:
        datetime.fromisoformat(started_at)
    except ValueError:
        return None
    fields["started_at"] = started_at
    for name in _REQUIRED_COUNTS:
        value = get(name)
        if not _is_count(value):
            return None
        fields[name] = value
    for name in _OPTIONAL_COUNTS:
        value = get(name)
        if value is not None and not _is_count(value):
            return None
        fields[name] = value
    for name in _OPTIONAL_TEXTS:
        value = get(name)
        if value is not None and not _is_text(value, 255):
            return None
        fields[name] = value
    status = get("status", "ok")
    if type(status) is not str or status not in _STATUSES:
        return None
    fields["status"] = status
    cost = get("cost_usd")
    if cost is not None:
        if type(cost) not in (str, int, float):
            return None
        try:
            cost = cost_nanos(cost)
        except PydanticCustomError:
            return None
    fields["cost_usd"] = cost
    metadata = get("metadata")
    if metadata is not None:
        if type(metadata) is not dict:
            return None
        try:
            _check_json_value(metadata, depth=1)
        except (PydanticCustomError, TypeError):  # TypeError: a key that is not text
            return None
    fields["metadata"] = metadata
    return fields


def model_fields(parsed: EventIn) -> Fields:
    """The fields of an event the model validated."""
    user = parsed.user
    return {
        "event_id": parsed.event_id,
        "user_id": user.id,
        "user_name": user.name,
        "user_department": user.department,
        "user_team": user.team,
        "user_email": user.email,
        "started_at": parsed.started_at,
        "duration_ms": parsed.duration_ms,
        "input_tokens": parsed.input_tokens,
        "output_tokens": parsed.output_tokens,
        "cache_read_tokens": parsed.cache_read_tokens,
        "cache_write_tokens": parsed.cache_write_tokens,
        "reasoning_tokens": parsed.reasoning_tokens,
        "model": parsed.model,
        "provider": parsed.provider,
        "status": parsed.status,
        "cost_usd": None if parsed.cost_usd is None else cost_nanos(parsed.cost_usd),
        "metadata": parsed.metadata,
    }


def _event(fields: Fields, *, now_us: int, future_tolerance_s: int) -> Event | Rejection:
    """The event of valid ``fields``, or its rejection by the rules across fields."""
    for part, whole in _PARTS:
        value = fields[part]
        if value is not None and value > fields[whole]:
            return Rejection.one(
                "part_exceeds_whole",
                part,
                f"is larger than {whole} ({value} > {fields[whole]})",
            )
    started_us = to_us(datetime.fromisoformat(fields["started_at"]))
    if started_us > now_us + future_tolerance_s * US_PER_SECOND:
        return Rejection.one(
            "future_timestamp",
            "started_at",
            f"is more than {future_tolerance_s} s in the future",
        )
    if started_us < EARLIEST_US:
        return Rejection.one("out_of_range", "started_at", "must not be before 1900-01-01")
    given = fields["metadata"]
    metadata = None
    if given is not None:
        encoded = orjson.dumps(given, option=orjson.OPT_SORT_KEYS)
        if len(encoded) > METADATA_MAX_BYTES:
            return Rejection.one(
                "metadata_too_large",
                "metadata",
                f"is {len(encoded)} bytes as JSON; at most {METADATA_MAX_BYTES} are kept",
            )
        metadata = encoded.decode()
    reported = fields["cost_usd"]
    values: dict[str, Any] = {
        "event_id": fields["event_id"],
        "user_id": fields["user_id"],
        "user_name": _non_blank(fields["user_name"]),
        "user_email": fields["user_email"],
        "started_us": started_us,
        "duration_ms": fields["duration_ms"],
        "model": fields["model"],
        "provider": fields["provider"],
        "input_tokens": fields["input_tokens"],
        "output_tokens": fields["output_tokens"],
        "cache_read_tokens": fields["cache_read_tokens"],
        "cache_write_tokens": fields["cache_write_tokens"],
        "reasoning_tokens": fields["reasoning_tokens"],
        "status": fields["status"],
        "metadata": metadata,
        "reported_cost_nanos": reported,
        "user_department": _non_blank(fields["user_department"]),
        "user_team": _non_blank(fields["user_team"]),
    }
    return Event(
        **values,
        content_hash=_hash_v2(_hashed_fields(values)),
        cost_nanos=reported,
        cost_source="unpriced" if reported is None else "reported",
        usage_missing=bool(given and given.get(USAGE_MISSING) is True),
    )


# -- the content hash ------------------------------------------------------------------
#
# An event's content hash tells a retry (same content: "duplicate") from a reuse of its
# id with other content ("conflict"). Each stored event keeps the version of the hash it
# was stored with (``events.hash_version``), and a resend is compared in that version.
#
# Version 2 (current) hashes the fields *by name*, leaving out every absent optional
# field, so a field added to the contract later changes nothing for events that do not
# carry it. Version 1 (before 2026-12) hashed a fixed tuple of every field, absent ones
# as null; it is kept to compare resends of events stored then.

HASH_VERSION = 2

# (name in the contract, attribute of Event). A new optional event field is added here.
HASHED_FIELDS = (
    ("event_id", "event_id"),
    ("user.id", "user_id"),
    ("user.name", "user_name"),
    ("user.email", "user_email"),
    ("started_at", "started_us"),  # the instant (microseconds, UTC), not its spelling
    ("duration_ms", "duration_ms"),
    ("model", "model"),
    ("provider", "provider"),
    ("input_tokens", "input_tokens"),
    ("output_tokens", "output_tokens"),
    ("cache_read_tokens", "cache_read_tokens"),
    ("cache_write_tokens", "cache_write_tokens"),
    ("reasoning_tokens", "reasoning_tokens"),
    ("status", "status"),
    ("metadata", "metadata"),
    ("cost_usd", "reported_cost_nanos"),  # exact nano-dollars, not its spelling
    ("user.department", "user_department"),
    ("user.team", "user_team"),
)
# Version 1's tuple, frozen: the fields of the contract when it was made.
_V1_FIELDS = (
    "event_id",
    "user.id",
    "user.name",
    "user.email",
    "started_at",
    "duration_ms",
    "model",
    "provider",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "status",
    "metadata",
)
_V2_PREFIX = b"tokenledger event v2\n"


def _hashed_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """The present fields of an event by contract name (absent ones left out)."""
    return {
        name: values[attribute]
        for name, attribute in HASHED_FIELDS
        if values[attribute] is not None
    }


def content_hash(fields: Mapping[str, Any], *, version: int = HASH_VERSION) -> bytes | None:
    """The hash of an event's ``fields`` (by contract name) in ``version``; None when
    that version cannot express them (a field that version 1 did not know)."""
    present = {name: value for name, value in fields.items() if value is not None}
    if version == 2:
        return _hash_v2(present)
    if version == 1:
        if not present.keys() <= set(_V1_FIELDS):
            return None
        return hashlib.sha256(orjson.dumps([present.get(name) for name in _V1_FIELDS])).digest()
    raise ValueError(f"unknown content hash version {version}")


def _hash_v2(present: Mapping[str, Any]) -> bytes:
    encoded = orjson.dumps(present, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(_V2_PREFIX + encoded).digest()


def event_json_schema() -> dict[str, Any]:
    """JSON schema of one event (for the OpenAPI document)."""
    return EventIn.model_json_schema(ref_template="#/components/schemas/{model}")
