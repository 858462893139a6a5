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


SSO = {
    "oidc_issuer": "https://idp.example.com/realms/acme",
    "oidc_client_id": "tokenledger",
    "oidc_admin_groups": "tl-admins",
}


def test_single_sign_on_is_off_by_default_and_local_sign_in_on() -> None:
    settings = Settings()
    assert (settings.sso_enabled, settings.local_sign_in) == (False, True)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"oidc_issuer": "http://idp.example.com"}, "https://"),
        ({"oidc_issuer": "https://idp.example.com/?tenant=1"}, "query"),
        ({"oidc_client_id": " "}, "oidc_client_id is required"),
        ({"oidc_scopes": "email profile"}, "must include openid"),
        ({"oidc_admin_groups": "", "oidc_viewer_groups": " , "}, "at least one group"),
        ({"oidc_issuer": "", "local_sign_in": False}, "nobody could sign in"),
        ({"break_glass_admin": "root"}, "e-mail address"),
    ],
)
def test_single_sign_on_settings_that_cannot_work_are_refused(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**{**SSO, **changes})  # type: ignore[arg-type]


def test_a_loopback_provider_may_use_plain_http() -> None:
    settings = Settings(**{**SSO, "oidc_issuer": "http://127.0.0.1:9400"})
    assert settings.sso_enabled


def test_local_sign_in_can_be_turned_off_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        **SSO,
        "local_sign_in": "false",
        "break_glass_admin": "Root@Localhost",
    }.items():
        monkeypatch.setenv(f"TOKENLEDGER_{name.upper()}", value)
    settings = Settings()
    assert (settings.local_sign_in, settings.break_glass_admin) == (False, "root@localhost")
    assert settings.oidc_provider_name == "SSO"
