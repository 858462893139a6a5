"""Search text folding: case and accents are ignored ("dang" finds "Đặng")."""

from __future__ import annotations

import unicodedata

# Letters that Unicode does not decompose into a base letter plus a mark.
_EXTRA = str.maketrans(
    {
        "đ": "d",
        "ð": "d",
        "ħ": "h",
        "ı": "i",
        "ł": "l",
        "ø": "o",
        "œ": "oe",
        "æ": "ae",
        "þ": "th",
        "ŧ": "t",
        "ŋ": "n",
    }
)


def fold(text: str) -> str:
    """Lower-case ``text`` and strip its accents, for matching."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.translate(_EXTRA)


def search_key(external_id: str, name: str | None, email: str | None) -> str:
    """What a user's row is matched against: name, email and id, folded."""
    return "\n".join(fold(part) for part in (name or "", email or "", external_id))
