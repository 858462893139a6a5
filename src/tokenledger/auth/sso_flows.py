"""Single sign-on attempts in progress: what the provider's answer must match.

Starting a sign-in stores a random ``state`` (hashed), a hash of the browser it started
in (its pre-session CSRF token), the ``nonce`` the ID token must carry and the PKCE
``code_verifier``. The provider's answer must bring the same state back to the same
browser within ``FLOW_TTL_S``, and only once: the first answer marks the attempt used,
so a replayed answer (the same code and state again) is recognised and refused.
Attempts are deleted once they are older than ``FLOW_TTL_S``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select, update

from tokenledger.store.database import Database
from tokenledger.store.schema import sso_flows

FLOW_TTL_S = 600
_US = 1_000_000


@dataclass(frozen=True, slots=True)
class Flow:
    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    next_path: str


class FlowRefused(Exception):
    """``reason``: ``wrong_state`` (unknown, expired or from another browser) or
    ``replayed_code`` (this answer was used already)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _hash(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def begin(db: Database, *, browser: str, redirect_uri: str, next_path: str, now_us: int) -> Flow:
    """Record a new attempt started by ``browser`` (ValueError if that is empty: an
    attempt bound to no browser could be completed in anyone's)."""
    if not browser:
        raise ValueError("an attempt must be bound to a browser")
    flow = Flow(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        code_verifier=secrets.token_urlsafe(48),  # 64 characters (RFC 7636: 43-128)
        redirect_uri=redirect_uri,
        next_path=next_path,
    )
    with db.write() as conn:
        conn.execute(delete(sso_flows).where(sso_flows.c.created_us <= now_us - FLOW_TTL_S * _US))
        conn.execute(
            sso_flows.insert(),
            {
                "state_hash": _hash(flow.state),
                "browser_hash": _hash(browser),
                "nonce": flow.nonce,
                "code_verifier": flow.code_verifier,
                "redirect_uri": redirect_uri,
                "next_path": next_path,
                "created_us": now_us,
            },
        )
    return flow


def consume(db: Database, *, state: str, browser: str, now_us: int) -> Flow:
    """The attempt ``state`` belongs to, marked used; FlowRefused if there is none for
    this browser, it is too old, or it was used already."""
    with db.write() as conn:
        row = conn.execute(
            select(sso_flows).where(sso_flows.c.state_hash == _hash(state)).with_for_update()
        ).first()
        if (
            row is None
            or not state
            or not browser
            or row.browser_hash != _hash(browser)
            or row.created_us <= now_us - FLOW_TTL_S * _US
        ):
            raise FlowRefused("wrong_state")
        if row.used_us is not None:
            raise FlowRefused("replayed_code")
        conn.execute(update(sso_flows).where(sso_flows.c.id == row.id).values(used_us=now_us))
    return Flow(state, row.nonce, row.code_verifier, row.redirect_uri, row.next_path)
