"""The upstreams file: what it may say, and the clear error for what it may not."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenledger.gateway.upstreams import GatewayConfigError, load

GOOD = """
[[upstreams]]
name = "azure"
kind = "openai"
base_url = "https://example.openai.azure.com/openai/v1/"
key_env = "AZURE_KEY"
models = ["gpt-4o*"]
provider = "azure"

[[upstreams]]
name = "local"
kind = "openai"
base_url = "http://127.0.0.1:11434/v1"
"""


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_upstreams_and_routing_by_model(tmp_path: Path) -> None:
    upstreams = load(_write(tmp_path, GOOD), {"AZURE_KEY": "secret-value-123"})
    azure, local = upstreams.all
    assert azure.base_url == "https://example.openai.azure.com/openai/v1"
    assert azure.key == "secret-value-123"
    assert "secret-value-123" not in repr(upstreams)
    assert (local.key, local.provider, local.models) == ("", "openai", None)
    assert upstreams.for_model("openai", "gpt-4o-mini") is azure
    assert upstreams.for_model("openai", "llama3") is local
    assert upstreams.for_model("anthropic", "claude") is None
    assert load("").all == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD, "the environment variable AZURE_KEY is not set"),
        ("[[upstreams]]\nname = 'x'\nkind = 'gemini'\nbase_url = 'http://h'", "kind must be"),
        ("[[upstreams]]\nname = 'x'\nkind = 'openai'\nbase_url = 'ftp://h'", "base_url must be"),
        ("[[upstreams]]\nname = 'x'\nkind = 'openai'\nbase_url = 'http://h'\nkey = 's'", "'key'"),
        ("[[upstreams]]\nkind = 'openai'\nbase_url = 'http://h'", "name must be"),
        (
            "[[upstreams]]\nname = 'x'\nkind = 'openai'\nbase_url = 'http://h'\nmodels = 'a'",
            "models",
        ),
        ("[gateway]\n", "unknown section 'gateway'"),
        ("upstreams = [", "not valid TOML"),
        (
            "[[upstreams]]\nname='x'\nkind='openai'\nbase_url='http://h'\n"
            "[[upstreams]]\nname='x'\nkind='openai'\nbase_url='http://h'",
            "two upstreams are named 'x'",
        ),
    ],
)
def test_a_bad_file_is_refused_with_where_and_why(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(GatewayConfigError, match=message):
        load(_write(tmp_path, text), {})


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(GatewayConfigError, match=r"missing\.toml: cannot be read"):
        load(str(tmp_path / "missing.toml"), {})
