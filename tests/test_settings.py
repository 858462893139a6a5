"""Every setting is documented in the README's settings table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from tokenledger.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def _documented() -> dict[str, str]:
    rows = re.findall(r"^\| `(TOKENLEDGER_[A-Z0-9_]+)` \| `([^`]*)` \|", README.read_text(), re.M)
    return dict(rows)


def test_every_setting_is_in_the_readme_table() -> None:
    documented = _documented()
    expected = {f"TOKENLEDGER_{name.upper()}" for name in Settings.model_fields}
    assert set(documented) == expected


def test_documented_defaults_match_the_code() -> None:
    documented = _documented()
    for name, field in Settings.model_fields.items():
        assert documented[f"TOKENLEDGER_{name.upper()}"] == str(field.default).replace(
            "30.0", "30"
        ), name


def test_every_setting_has_help_text() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, name


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENLEDGER_TIMEZONE", "Asia/Kolkata")
    monkeypatch.setenv("TOKENLEDGER_PORT", "9001")
    settings = Settings()
    assert (settings.timezone, settings.port) == ("Asia/Kolkata", 9001)


def test_a_bad_setting_is_refused_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENLEDGER_TIMEZONE", "Mars/Base")
    with pytest.raises(ValidationError, match="timezone"):
        Settings()
