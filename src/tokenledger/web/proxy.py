"""Who is on the other end: the client's address, and the scheme and host it used.

``X-Forwarded-For``, ``-Proto`` and ``-Host`` are believed only when the direct peer
is one of ``TOKENLEDGER_TRUSTED_PROXIES``; anyone else could write them.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.datastructures import Headers
from starlette.types import Scope

Networks = tuple[IPv4Network | IPv6Network, ...]


def is_trusted(host: str, networks: Networks) -> bool:
    """Whether ``host`` (an address) is one of the trusted proxies' ``networks``."""
    try:
        address = ip_address(host.strip())
    except ValueError:
        return False
    return any(address in network for network in networks)


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


def client_address(scope: Scope, networks: Networks) -> str:
    """The address of the browser or application: the peer, or behind trusted proxies
    the right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy."""
    peer = _peer(scope)
    if not is_trusted(peer, networks):
        return peer
    forwarded = Headers(scope=scope).getlist("x-forwarded-for")
    hops = [hop.strip() for header in forwarded for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop, networks):
            return hop[:64]
    return hops[0][:64] if hops else peer


def scheme(scope: Scope, networks: Networks) -> str:
    """``https`` or ``http``, as the browser sees it."""
    own = str(scope.get("scheme", "http"))
    if not is_trusted(_peer(scope), networks):
        return own
    forwarded = Headers(scope=scope).get("x-forwarded-proto")
    if not forwarded:
        return own
    # Each proxy may append; the first value is what the client used.
    return "https" if forwarded.split(",")[0].strip().lower() == "https" else "http"


def host(scope: Scope, networks: Networks) -> str:
    """The host (and port) the browser asked for: ``Host``, or from a trusted proxy
    its ``X-Forwarded-Host`` (proxies often rewrite ``Host``)."""
    headers = Headers(scope=scope)
    if is_trusted(_peer(scope), networks):
        forwarded = headers.get("x-forwarded-host")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return headers.get("host", "")
