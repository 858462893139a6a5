"""The one rule for every name a person types into the console or the command line:
account display names and API key names (and the check inside e-mail addresses).

Whitespace runs become one space; characters that do not show, or that change how
the text around them shows, are refused: control characters (NUL, newline, ESC...),
format characters (bidirectional overrides such as U+202E, zero-width spaces, the byte
order mark), line and paragraph separators and lone surrogates. Zero-width (non-)
joiners stay: Persian and Indic names, and emoji sequences, need them.
"""

from __future__ import annotations

import unicodedata

_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_JOINERS = frozenset({"\u200c", "\u200d"})


def has_hidden_characters(text: str) -> bool:
    """Whether ``text`` holds a character the rule refuses."""
    return any(
        unicodedata.category(char) in _HIDDEN and char not in _JOINERS
        for char in text
        if not char.isalnum()
    )


def clean_name(value: str, *, what: str, required: bool = False, max_length: int = 255) -> str:
    """``value`` with whitespace runs made one space; ValueError naming ``what`` when
    it is empty (if ``required``), too long or holds a refused character."""
    name = " ".join(value.split())
    if has_hidden_characters(name):
        raise ValueError(f"the {what} must not contain control, format or invisible characters")
    if required and not name:
        raise ValueError(f"the {what} must not be empty")
    if len(name) > max_length:
        raise ValueError(f"the {what} must be at most {max_length} characters")
    return name


def clean_user_id(value: str, *, what: str = "user id") -> str:
    """A person's id (``user.id`` of their events) as typed or sent: kept exactly as it
    is, so it must be 1 to 255 characters with nothing hidden and no space around it;
    ValueError naming ``what`` otherwise."""
    if not value:
        raise ValueError(f"the {what} must not be empty")
    if len(value) > 255:
        raise ValueError(f"the {what} must be at most 255 characters")
    if value != value.strip():
        raise ValueError(f"the {what} must not start or end with a space")
    if has_hidden_characters(value):
        raise ValueError(f"the {what} must not contain control, format or invisible characters")
    return value
