"""An OpenID Connect provider for unit tests, with the test's own signing keys.

It serves what a provider serves (discovery, key set, token and userinfo endpoints)
through an ``httpx2.MockTransport`` given to the app's ``OidcClient``, so the app's
real HTTP client, Authlib and joserfc do all the work. Its token endpoint checks what
a provider checks (client secret, redirect URI, single-use codes, the PKCE verifier
against the challenge), and ``authorize`` plays the person signing in: it checks the
authorization request and returns the callback URL with a fresh code. Any claim or
header of the ID token can be overridden, or the token signed with another key, to
produce each kind of bad token.

The browser tests use a real provider (``oidc-provider-mock``) instead.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.support.clock import FrozenClock
from tokenledger.auth.oidc import OidcClient, ProviderConfig
from tokenledger.web.context import AppContext

ISSUER = "https://idp.example.com/realms/acme"
CLIENT_ID = "tokenledger"
CLIENT_SECRET = "client-secret-for-tests"
ADMINS = "tl-admins"
VIEWERS = "tl-viewers"


@cache
def signing_key(kid: str) -> RSAKey:
    """An RSA key per key id, made once per test process (generating one is slow)."""
    return RSAKey.generate_key(2048, parameters={"kid": kid})


def person(
    sub: str = "person-1",
    *,
    email: str = "ada@example.com",
    groups: list[str] | None = None,
    **claims: Any,
) -> dict[str, Any]:
    """The claims the provider has about someone (verified e-mail, in the admins)."""
    return {
        "sub": sub,
        "email": email,
        "email_verified": True,
        "name": "Ada Lovelace",
        "groups": [ADMINS] if groups is None else groups,
        **claims,
    }


@dataclass
class Grant:
    claims: dict[str, Any]
    client_id: str
    redirect_uri: str
    nonce: str
    challenge: str
    header: dict[str, Any]
    signed_with: RSAKey
    used: bool = False


@dataclass
class FakeIdP:
    clock: FrozenClock
    issuer: str = ISSUER
    published: list[RSAKey] = field(default_factory=lambda: [signing_key("key-1")])
    current: RSAKey = field(default_factory=lambda: signing_key("key-1"))
    end_session: bool = True
    down: bool = False  # every request fails to connect
    token_lifetime_s: int = 300
    key_set_fetches: int = 0
    metadata_overrides: dict[str, Any] = field(default_factory=dict)
    userinfo_claims: dict[str, dict[str, Any]] = field(default_factory=dict)
    _grants: dict[str, Grant] = field(default_factory=dict)
    _access: dict[str, str] = field(default_factory=dict)

    # Wiring

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """Settings of a TokenLedger using this provider."""
        return {
            "oidc_issuer": self.issuer,
            "oidc_client_id": CLIENT_ID,
            "oidc_client_secret": CLIENT_SECRET,
            "oidc_provider_name": "Acme ID",
            "oidc_admin_groups": ADMINS,
            "oidc_viewer_groups": f"{VIEWERS}, tl-readers",
            **overrides,
        }

    @property
    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self._handle)

    def client(self) -> OidcClient:
        config = ProviderConfig(self.issuer, CLIENT_ID, CLIENT_SECRET, "openid email profile")
        return OidcClient(config, clock=self.clock, transport=self.transport)

    def attach(self, app: FastAPI) -> FastAPI:
        """Make ``app`` talk to this provider."""
        ctx: AppContext = app.state.ctx
        assert ctx.oidc is not None, "the app's settings must configure single sign-on"
        ctx.oidc = OidcClient(ctx.oidc.config, clock=self.clock, transport=self.transport)
        return app

    # The person at the provider

    def authorize(
        self,
        authorization_url: str,
        claims: dict[str, Any],
        *,
        header: dict[str, Any] | None = None,
        signed_with: RSAKey | None = None,
    ) -> str:
        """Check the authorization request, then "sign in" as ``claims``: the callback
        URL with a new code. ``claims`` may override any ID token claim (``aud``,
        ``exp``...); ``header`` and ``signed_with`` change the token's signature."""
        parts = urlsplit(authorization_url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{self.issuer}/auth"
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        assert query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256"
        assert "openid" in query["scope"].split()
        assert query["state"]
        assert query["nonce"]
        code = secrets.token_urlsafe(16)
        self._grants[code] = Grant(
            claims=claims,
            client_id=query["client_id"],
            redirect_uri=query["redirect_uri"],
            nonce=query["nonce"],
            challenge=query["code_challenge"],
            header=header or {},
            signed_with=signed_with or self.current,
        )
        return f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"

    def rotate(self, kid: str) -> RSAKey:
        """Sign with a new key from now on, publishing it beside the old one."""
        self.current = signing_key(kid)
        self.published = [*self.published, self.current]
        return self.current

    # Endpoints

    def metadata(self) -> dict[str, Any]:
        document = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/auth",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/certs",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        }
        if self.end_session:
            document["end_session_endpoint"] = f"{self.issuer}/logout"
        return {**document, **self.metadata_overrides}

    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        if self.down:
            raise httpx2.ConnectError("connection refused", request=request)
        path = str(request.url).removeprefix(self.issuer).split("?")[0]
        if path == "/.well-known/openid-configuration":
            return httpx2.Response(200, json=self.metadata())
        if path == "/certs":
            self.key_set_fetches += 1
            return httpx2.Response(200, json={"keys": [k.as_dict() for k in self.published]})
        if path == "/token" and request.method == "POST":
            return self._token(request)
        if path == "/userinfo":
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            sub = self._access.get(token)
            if sub is None:
                return httpx2.Response(401, json={"error": "invalid_token"})
            return httpx2.Response(200, json={"sub": sub, **self.userinfo_claims.get(sub, {})})
        return httpx2.Response(404, json={"error": "not_found"})

    def _token(self, request: httpx2.Request) -> httpx2.Response:
        form = {name: values[0] for name, values in parse_qs(request.content.decode()).items()}
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return httpx2.Response(401, json={"error": "invalid_client"})
        grant = self._grants.get(form.get("code", ""))
        if grant is None or grant.used or form.get("grant_type") != "authorization_code":
            return httpx2.Response(400, json={"error": "invalid_grant"})
        grant.used = True
        if form.get("redirect_uri") != grant.redirect_uri or grant.client_id != CLIENT_ID:
            return httpx2.Response(400, json={"error": "invalid_grant"})
        if _s256(form.get("code_verifier", "")) != grant.challenge:
            answer = {"error": "invalid_grant", "error_description": "PKCE"}
            return httpx2.Response(400, json=answer)
        access_token = secrets.token_urlsafe(16)
        self._access[access_token] = str(grant.claims.get("sub"))
        body = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": self.id_token(grant),
        }
        return httpx2.Response(200, json=body)

    def id_token(self, grant: Grant) -> str:
        now = int(self.clock().timestamp())
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + self.token_lifetime_s,
            "nonce": grant.nonce,
            **grant.claims,
        }
        header = {"alg": "RS256", "kid": grant.signed_with.kid, **grant.header}
        return jwt.encode(header, claims, grant.signed_with)

    def sign(self, claims: dict[str, Any], *, header: dict[str, Any] | None = None) -> str:
        """A token with exactly these claims, signed with the current key."""
        return jwt.encode(
            {"alg": "RS256", "kid": self.current.kid, **(header or {})}, claims, self.current
        )


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_in_with(
    client: TestClient,
    idp: FakeIdP,
    claims: dict[str, Any],
    *,
    next: str = "/",
    **authorize: Any,
) -> httpx2.Response:
    """The whole flow for a test client: start, "sign in" at the provider, come back.
    Returns the answer to the callback."""
    start = client.get("/sign-in/sso", params={"next": next}, follow_redirects=False)
    assert start.status_code == 303, start.text
    callback = idp.authorize(start.headers["location"], claims, **authorize)
    return client.get(callback, follow_redirects=False)
