"""The upstreams the admin configured: where the gateway forwards, with which key.

They are read from a TOML file (``TOKENLEDGER_GATEWAY_CONFIG``)::

    [[upstreams]]
    name = "openai"                     # shown in events' metadata and in logs
    kind = "openai"                     # wire format: "openai" (or compatible), "anthropic"
    base_url = "https://api.openai.com/v1"
    key_env = "OPENAI_API_KEY"          # the environment variable holding the upstream key
    models = ["gpt-4o*", "o3-mini"]     # optional allow-list (shell-style patterns)
    provider = "openai"                 # optional: the events' provider (default: the kind)

An upstream's key is read from its environment variable once, at start; it is kept
out of every ``repr`` (so out of logs and pages) and sent only to that upstream.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

Kind = Literal["openai", "anthropic"]
KINDS: tuple[Kind, ...] = get_args(Kind)
_FIELDS = frozenset({"name", "kind", "base_url", "key_env", "models", "provider"})


class GatewayConfigError(ValueError):
    """The gateway's configuration file cannot be used (the message says where)."""


@dataclass(frozen=True)
class Upstream:
    name: str
    kind: Kind
    base_url: str  # without a trailing slash
    provider: str
    models: tuple[str, ...] | None = None  # None: any model
    key_env: str | None = None
    key: str = field(default="", repr=False)

    def allows(self, model: str | None) -> bool:
        if self.models is None:
            return True
        return model is not None and any(fnmatchcase(model, pattern) for pattern in self.models)


@dataclass(frozen=True)
class Upstreams:
    """Every configured upstream, in the file's order (the first that allows a model
    gets its requests)."""

    all: tuple[Upstream, ...] = ()

    def of_kind(self, kind: Kind) -> tuple[Upstream, ...]:
        return tuple(upstream for upstream in self.all if upstream.kind == kind)

    def for_model(self, kind: Kind, model: str | None) -> Upstream | None:
        return next((up for up in self.of_kind(kind) if up.allows(model)), None)


def load(path: str, environ: Mapping[str, str] | None = None) -> Upstreams:
    """The upstreams of the TOML file at ``path`` (none when ``path`` is empty)."""
    if not path:
        return Upstreams()
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise GatewayConfigError(f"{path}: cannot be read ({exc.strerror})") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GatewayConfigError(f"{path}: not valid TOML ({exc})") from exc
    return parse(document, environ=os.environ if environ is None else environ, source=path)


def parse(document: Mapping[str, Any], *, environ: Mapping[str, str], source: str) -> Upstreams:
    unknown = sorted(set(document) - {"upstreams"})
    if unknown:
        raise GatewayConfigError(f"{source}: unknown section {unknown[0]!r} (only [[upstreams]])")
    entries = document.get("upstreams", [])
    if not isinstance(entries, list):
        raise GatewayConfigError(f"{source}: 'upstreams' must be an array of tables")
    upstreams = [
        _upstream(entry, environ=environ, where=f"{source}: upstreams[{index}]")
        for index, entry in enumerate(entries)
    ]
    names = [upstream.name for upstream in upstreams]
    for name in names:
        if names.count(name) > 1:
            raise GatewayConfigError(f"{source}: two upstreams are named {name!r}")
    return Upstreams(tuple(upstreams))


def _upstream(entry: Any, *, environ: Mapping[str, str], where: str) -> Upstream:
    if not isinstance(entry, dict):
        raise GatewayConfigError(f"{where}: must be a table")
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise GatewayConfigError(f"{where}: unknown field {unknown[0]!r}")
    name = _text(entry, "name", where)
    where = f"{where} ({name})"
    kind = _text(entry, "kind", where)
    if kind not in KINDS:
        raise GatewayConfigError(f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    key_env = _text(entry, "key_env", where, required=False)
    key = ""
    if key_env:
        key = environ.get(key_env, "")
        if not key:
            raise GatewayConfigError(f"{where}: the environment variable {key_env} is not set")
    return Upstream(
        name=name,
        kind=kind,  # checked against KINDS above
        base_url=_base_url(_text(entry, "base_url", where), where),
        provider=_text(entry, "provider", where, required=False) or kind,
        models=_models(entry.get("models"), where),
        key_env=key_env or None,
        key=key,
    )


def _text(entry: dict[str, Any], name: str, where: str, *, required: bool = True) -> str:
    value = entry.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise GatewayConfigError(f"{where}: {name} must be a non-empty string")
    return value.strip()


def _base_url(value: str, where: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise GatewayConfigError(f"{where}: base_url must be an http:// or https:// URL")
    if parts.query or parts.fragment:
        raise GatewayConfigError(f"{where}: base_url must not have a query or fragment")
    return value.rstrip("/")


def _models(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(m, str) and m for m in value):
        raise GatewayConfigError(f"{where}: models must be a list of model names or patterns")
    return tuple(value)
